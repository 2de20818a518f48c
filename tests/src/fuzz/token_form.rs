//! The token endpoint's form (RFC 6749 §3.2, §4.4; RFC 7523 §3): the body
//! parsed by the server's own `OAuthForm` extractor, then the grant checks
//! that need no store.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::FromRequest as _;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse as _;
use holdfast_proto::endpoints::TOKEN_PATH;
use holdfast_proto::{
    AssertionCheck, CLIENT_ASSERTION_TYPE, MAX_JTI_LEN, Signer as _, UnixTime, assertion_client_id,
    verify_client_assertion,
};
use holdfast_server::http::ApiError;
use holdfast_server::http::extract::OAuthForm;
use holdfast_server::model::DeviceId;
use holdfast_server::secret::secret_hash;
use serde::Deserialize;

use super::jose::NOW;
use super::{SIGNED, Verdict, assert_bounded, device_key, header_and_payload, sign_compact};

/// The token endpoint's URL, an audience a client assertion may name.
pub const TOKEN_ENDPOINT: &str = "https://issuer.example/token";
/// The issuer's URL, the other acceptable audience.
pub const ISSUER_URL: &str = "https://issuer.example";
/// The one device the harness's store holds; its key is the fixed device key.
pub const DEVICE_ID: &str = "d-FuzzDevice0000000000AA";
/// The issuer's limits on client assertions (server/src/issuer.rs).
const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;
const LEEWAY_SECS: u64 = 5;

/// The token request parameters the handler reads: the same members as the
/// private `TokenForm` of server/src/http/token.rs. The replay test
/// `fuzz_corpus` sends every corpus body to the real endpoint and compares
/// the answers, so the two cannot drift apart unnoticed.
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    refresh_token: Option<String>,
}

/// Where the token endpoint's store-free checks leave a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormOutcome {
    /// Refused before any store lookup, with this wire error.
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// `error`.
        code: &'static str,
        /// `error_description`.
        description: String,
    },
    /// `client_credentials` with a client assertion that names a well-formed
    /// device id: the store looks that device up next.
    ClientCredentials {
        /// The device the assertion claims to be.
        client_id: DeviceId,
        /// The client assertion.
        assertion: String,
    },
    /// `refresh_token`: the store looks up the token's hash next.
    RefreshToken {
        /// SHA-256 of the refresh token, the store's key.
        hash: [u8; 32],
    },
}

impl FormOutcome {
    fn refused(error: ApiError) -> Self {
        let code = error.code();
        let description = error.description().to_owned();
        Self::Refused {
            status: error.into_response().status(),
            code,
            description,
        }
    }
}

/// The outcome of the token endpoint's store-free checks for `body`, in the
/// handler's order: the form, `grant_type`, the client authentication
/// method, the assertion's claimed client id.
pub fn token_form_outcome(body: &[u8]) -> FormOutcome {
    let form = match extract(body) {
        Ok(form) => form,
        Err(error) => return FormOutcome::refused(error),
    };
    let refused = FormOutcome::refused;
    match form.grant_type.as_deref() {
        Some("client_credentials") => {
            if form.client_assertion_type.as_deref() != Some(CLIENT_ASSERTION_TYPE) {
                return refused(ApiError::invalid_client(format!(
                    "client authentication must be private_key_jwt (client_assertion_type {CLIENT_ASSERTION_TYPE})"
                )));
            }
            let Some(assertion) = form.client_assertion else {
                return refused(ApiError::invalid_client("client_assertion is missing"));
            };
            let client_id = match assertion_client_id(&assertion) {
                Ok(id) => id,
                Err(e) => return refused(ApiError::invalid_client(e.to_string())),
            };
            match client_id.parse::<DeviceId>() {
                Ok(client_id) => FormOutcome::ClientCredentials {
                    client_id,
                    assertion,
                },
                Err(_) => refused(ApiError::invalid_client("unknown client")),
            }
        }
        Some("refresh_token") => match form.refresh_token {
            Some(token) => FormOutcome::RefreshToken {
                hash: secret_hash(&token),
            },
            None => refused(ApiError::invalid_request("refresh_token is missing")),
        },
        Some(_) => refused(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials or refresh_token",
        )),
        None => refused(ApiError::invalid_request("grant_type is missing")),
    }
}

/// The token endpoint's form parsing and the grant checks that need no
/// store (the store, sessions and audit are not fuzzed here).
///
/// The input is a form body; or [`SIGNED`] and `claims '\n' form`: the
/// harness signs `claims` with the device key as a client assertion and
/// appends it to `form` as `client_assertion`.
///
/// Invariants: the form is accepted only without repeated names, each
/// member is the one non-empty value sent for it (an empty one counts as
/// absent, RFC 6749 §3.2); every refusal's description is bounded; a client
/// assertion naming the harness's device is accepted only when signed by its
/// key, naming it as `iss` and `sub`, for this issuer, unexpired, and with a
/// bounded `jti`.
pub fn token_form(data: &[u8]) -> Verdict {
    let body = token_form_body(data);
    form_is_parsed_faithfully(&body);
    let accepted = match token_form_outcome(&body) {
        FormOutcome::Refused { description, .. } => {
            assert_bounded("token endpoint", &description);
            false
        }
        FormOutcome::ClientCredentials {
            client_id,
            assertion,
        } if client_id.as_str() == DEVICE_ID => check_assertion(&assertion),
        FormOutcome::ClientCredentials { .. } | FormOutcome::RefreshToken { .. } => true,
    };
    Verdict::from(accepted)
}

/// The request body a `token_form` input stands for: the input itself, or
/// for [`SIGNED`] inputs the form with the signed client assertion added.
pub fn token_form_body(data: &[u8]) -> Vec<u8> {
    match data.split_first() {
        Some((&SIGNED, rest)) => {
            let (claims, form) = header_and_payload(rest);
            let assertion = sign_compact(device_key(), br#"{"alg":"ES256","typ":"JWT"}"#, claims);
            let mut body = form.to_vec();
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(b"client_assertion=");
            body.extend_from_slice(assertion.as_bytes());
            body
        }
        _ => data.to_vec(),
    }
}

/// The server's `OAuthForm` extractor on an in-memory request.
fn extract(body: &[u8]) -> Result<TokenForm, ApiError> {
    let request = Request::builder()
        .method("POST")
        .uri(TOKEN_PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let future = pin!(OAuthForm::<TokenForm>::from_request(request, &()));
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result.map(|OAuthForm(form)| form),
        Poll::Pending => panic!("reading an in-memory body never waits"),
    }
}

/// The extractor's result agrees with a plain decoding of the pairs.
fn form_is_parsed_faithfully(body: &[u8]) {
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body);
    let form = match extract(body) {
        Ok(form) => form,
        Err(error) => {
            assert_eq!(error.code(), "invalid_request");
            assert_eq!(error.into_response().status(), StatusCode::BAD_REQUEST);
            return;
        }
    };
    let pairs = pairs.expect("an accepted form decodes");
    let mut names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "a repeated parameter was accepted");
    let sent = |name: &str| {
        pairs
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(form.grant_type.as_deref(), sent("grant_type"));
    assert_eq!(
        form.client_assertion_type.as_deref(),
        sent("client_assertion_type")
    );
    assert_eq!(form.client_assertion.as_deref(), sent("client_assertion"));
    assert_eq!(form.refresh_token.as_deref(), sent("refresh_token"));
}

/// RFC 7523 §3 with the harness's device as the store's answer. Returns
/// whether the assertion was accepted.
fn check_assertion(assertion: &str) -> bool {
    let audiences = [TOKEN_ENDPOINT, ISSUER_URL];
    let check = AssertionCheck {
        audiences: &audiences,
        now: UnixTime::from_secs(NOW),
        max_lifetime: MAX_ASSERTION_LIFETIME_SECS,
        leeway: LEEWAY_SECS,
    };
    let verified = match verify_client_assertion(assertion, device_key().public_jwk(), &check) {
        Ok(verified) => verified,
        Err(err) => {
            assert_bounded("AssertionError", &err.to_string());
            return false;
        }
    };
    assert_eq!(verified.client_id(), DEVICE_ID, "sub is the client id");
    let jws = holdfast_proto::CompactJws::parse(assertion).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(jws.payload()).unwrap();
    assert_eq!(claims["iss"], claims["sub"], "iss is sub");
    let aud = &claims["aud"];
    assert!(
        audiences
            .iter()
            .any(|a| aud == *a || aud.as_array().is_some_and(|l| l.iter().any(|x| x == *a))),
        "aud {aud}"
    );
    let exp = verified.exp().as_secs();
    assert!(
        exp > NOW - LEEWAY_SECS && exp <= NOW + MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS,
        "exp {exp} outside the lifetime"
    );
    assert!(!verified.jti().is_empty() && verified.jti().len() <= MAX_JTI_LEN);
    true
}
