//! Extractors that do the checking before a handler runs: the one `DPoP`
//! header, RFC 6749 form bodies that fail as `invalid_request`, the client
//! address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use holdfast_proto::single_dpop_header;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The request's single `DPoP` header (RFC 9449 §4.3 step 1), unparsed.
/// Missing and duplicate headers are refused here, as `invalid_dpop_proof`.
#[derive(Debug)]
pub struct DpopHeader(pub String);

impl<S: Send + Sync> FromRequestParts<S> for DpopHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let values = parts.headers.get_all("dpop").iter().map(|v| v.as_bytes());
        single_dpop_header(values)
            .map(|proof| Self(proof.to_owned()))
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    e.to_string(),
                )
            })
    }
}

/// The client's address: the TCP peer. (Trusted-proxy `X-Forwarded-For`
/// handling arrives with the verifying proxy.)
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer))
    }
}

impl ClientIp {
    /// The address as text, for records and audit.
    pub fn text(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

/// The `User-Agent`, truncated.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    Some(ua.chars().take(200).collect())
}

/// An `application/x-www-form-urlencoded` body (RFC 6749 §3.2) whose
/// rejection is an RFC 6749 `invalid_request`, not axum's plain text.
#[derive(Debug)]
pub struct OAuthForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OAuthForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(ApiError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| super::unreadable_body(&e))?;
        // RFC 6749 §3.2: parameters sent without a value are treated as
        // omitted; a repeated parameter is an error.
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&bytes)?;
        let mut seen = std::collections::HashSet::new();
        for (name, _) in &pairs {
            if !seen.insert(name.as_str()) {
                return Err(ApiError::invalid_request(format!(
                    "parameter {name:?} is repeated"
                )));
            }
        }
        let pairs: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let value = serde_json::Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        );
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::invalid_request(format!("bad form: {e}")))
    }
}

fn serde_urlencoded_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|_| ApiError::invalid_request("the form body is not valid"))
}
