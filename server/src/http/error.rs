//! Every refusal the issuer sends, built in one place: RFC 6749 §5.2 JSON
//! errors for the token-style endpoints, RFC 9449 §7.1 `WWW-Authenticate`
//! challenges for protected ones, `DPoP-Nonce` with `use_dpop_nonce`, and
//! `server_error` that hides internals (logged once here).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use holdfast_proto::{AllowedAlgs, ProofError, WireCode, dpop_challenge};
use serde_json::json;

use crate::store::StoreError;

/// Longest `error_description` sent, in bytes (then `…`). Descriptions can
/// echo client input (a parameter name, a parser's message): whatever the
/// input, the answer stays small.
pub const MAX_DESCRIPTION_BYTES: usize = 300;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// A fresh nonce to send in `DPoP-Nonce`.
    nonce: Option<String>,
    /// For protected resources: send `WWW-Authenticate: DPoP` with these algs.
    challenge: Option<AllowedAlgs>,
    /// The challenge names no error (the request carried no credentials).
    bare_challenge: bool,
}

impl ApiError {
    /// An OAuth error with `status`, `code` and a description for the client.
    /// The description is cut at [`MAX_DESCRIPTION_BYTES`] (marked `…`).
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        let mut description = description.into();
        if description.len() > MAX_DESCRIPTION_BYTES {
            let at = (0..=MAX_DESCRIPTION_BYTES)
                .rev()
                .find(|&i| description.is_char_boundary(i))
                .unwrap_or(0);
            description.truncate(at);
            description.push('…');
        }
        Self {
            status,
            code,
            description,
            nonce: None,
            challenge: None,
            bare_challenge: false,
        }
    }

    /// 401 for a protected-resource request that carried no credentials at
    /// all: the challenge is a bare `DPoP algs="…"`, without an error code
    /// (RFC 6750 §3.1, RFC 9449 §7.1). The body still says why.
    pub fn credentials_missing(algs: &AllowedAlgs, description: impl Into<String>) -> Self {
        let mut api = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
        api.challenge = Some(algs.clone());
        api.bare_challenge = true;
        api
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 400 `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// 401 `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    /// 403 `access_denied`.
    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", description)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    /// 500 `server_error`; the cause is logged here, once, and not sent.
    pub fn server(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }

    /// A refused DPoP proof at an issuer endpoint (400; RFC 9449 §5, §8):
    /// `use_dpop_nonce` carries a fresh nonce.
    pub fn proof(err: &ProofError, fresh_nonce: impl FnOnce() -> String) -> Self {
        let mut api = match err.wire_code() {
            WireCode::ServerError => return Self::server(err),
            code => Self::new(StatusCode::BAD_REQUEST, code.as_str(), err.to_string()),
        };
        if err.wire_code() == WireCode::UseDpopNonce {
            api.nonce = Some(fresh_nonce());
        }
        api
    }

    /// Turns this into a protected-resource refusal (401 unless already 403
    /// or 5xx) with `WWW-Authenticate: DPoP …` (RFC 9449 §7.1).
    #[must_use]
    pub fn at_resource(mut self, algs: &AllowedAlgs) -> Self {
        if self.status == StatusCode::BAD_REQUEST && self.code != "invalid_request" {
            self.status = StatusCode::UNAUTHORIZED;
        }
        self.challenge = Some(algs.clone());
        self
    }

    /// Adds a `DPoP-Nonce` header.
    #[must_use]
    pub fn with_nonce(mut self, nonce: String) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// The OAuth error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The `error_description`.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::server(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "error_description": self.description }));
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(algs) = &self.challenge {
            let error = (!self.bare_challenge).then_some((self.code, self.description.as_str()));
            let value = dpop_challenge(error, algs);
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(nonce) = self.nonce
            && let Ok(value) = HeaderValue::from_str(&nonce)
        {
            headers.insert("dpop-nonce", value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_echoing_input_stay_bounded_on_a_char_boundary() {
        let long = format!("parameter {:?} is repeated", "é".repeat(1000));
        let error = ApiError::invalid_request(long);
        assert!(error.description().len() <= MAX_DESCRIPTION_BYTES + '…'.len_utf8());
        assert!(error.description().ends_with('…'));
        let short = ApiError::invalid_request("the body must be form-encoded");
        assert_eq!(short.description(), "the body must be form-encoded");
    }
}
