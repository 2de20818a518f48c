//! Resource-server authentication: the verifiers that call `/introspect`,
//! follow `/revocations` and read the enrolled keys authenticate with HTTP
//! Basic (RFC 7617; RFC 6749 §2.3.1) and a shared secret whose SHA-256 is
//! configured in `[[resource_servers]]`.
//!
//! Ids and secrets are compared as sent: the RFC 6749 §2.3.1 form-encoding
//! step is not undone, so configure them from unreserved characters
//! (`A-Z a-z 0-9 - . _ ~`), for which encoded and plain agree.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64ct::{Base64, Encoding as _};
use subtle::{Choice, ConstantTimeEq as _};

use super::error::ApiError;
use crate::audit::AuditEntry;
use crate::issuer::audit;
use crate::secret::secret_hash;
use crate::state::AppState;

/// The `WWW-Authenticate` challenge sent with every refusal (RFC 7617 §2).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"holdfast\"";

/// Longest `Authorization` value decoded; a longer one is refused unread.
const MAX_AUTHORIZATION_LEN: usize = 1024;
/// Longest client id copied into a log line or an audit record.
const MAX_LOGGED_ID_LEN: usize = 64;

/// An authenticated resource server: its configured id.
///
/// Extracting it refuses the request with 401 `invalid_client` and
/// `WWW-Authenticate: Basic realm="holdfast"` (RFC 6749 §5.2) unless the
/// `Authorization: Basic` credentials match a configured resource server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer(pub String);

impl FromRequestParts<AppState> for ResourceServer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let values = parts.headers.get_all(header::AUTHORIZATION);
        let mut values = values.iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(refuse(state, parts, None, "credentials_missing"));
        };
        let Some((id, secret)) = basic_credentials(value) else {
            return Err(refuse(state, parts, None, "credentials_malformed"));
        };
        match authenticate(&state.settings.resource_servers, &id, &secret) {
            Some(id) => Ok(Self(id.to_owned())),
            None => Err(refuse(state, parts, Some(&id), "credentials_invalid")),
        }
    }
}

/// The configured id whose secret matches, if any.
///
/// Every entry is compared, in constant time, whatever the id: the time
/// taken says nothing about which ids exist or how much of a secret matched.
fn authenticate<'a>(
    configured: &'a [(String, [u8; 32])],
    id: &str,
    secret: &str,
) -> Option<&'a str> {
    let presented = secret_hash(secret);
    let mut found = None;
    for (known_id, known_hash) in configured {
        let matched: Choice =
            known_id.as_bytes().ct_eq(id.as_bytes()) & known_hash.as_slice().ct_eq(&presented);
        if bool::from(matched) {
            found = Some(known_id.as_str());
        }
    }
    found
}

/// `Authorization: Basic base64(id:secret)`, split (RFC 7617 §2).
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Base64::decode_vec(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    if id.is_empty() {
        return None;
    }
    Some((id.to_owned(), secret.to_owned()))
}

/// Logs, counts and audits a refusal, and builds the 401 answer.
fn refuse(state: &AppState, parts: &Parts, id: Option<&str>, check: &'static str) -> Response {
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let id: Option<String> = id.map(|id| id.chars().take(MAX_LOGGED_ID_LEN).collect());
    tracing::warn!(
        check,
        client_id = id.as_deref().unwrap_or(""),
        "resource server authentication refused"
    );
    state.metrics.refused("rs_auth_refused", check);
    audit(
        state,
        AuditEntry::new(
            state.clock.now(),
            "rs_auth_refused",
            id.as_deref().unwrap_or("anonymous"),
            "invalid_client",
        )
        .ip(client_ip.as_deref())
        .detail("check", check),
    );
    let mut response =
        ApiError::invalid_client("resource server authentication failed (HTTP Basic)")
            .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(BASIC_CHALLENGE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> Vec<(String, [u8; 32])> {
        vec![
            ("api".to_owned(), secret_hash("s3cret")),
            ("other".to_owned(), secret_hash("x")),
        ]
    }

    #[test]
    fn accepts_the_configured_secret_only_with_its_own_id() {
        let configured = configured();
        assert_eq!(authenticate(&configured, "api", "s3cret"), Some("api"));
        assert_eq!(authenticate(&configured, "other", "x"), Some("other"));
        assert_eq!(authenticate(&configured, "api", "x"), None);
        assert_eq!(authenticate(&configured, "api", "s3cre"), None);
        assert_eq!(authenticate(&configured, "nobody", "s3cret"), None);
        assert_eq!(authenticate(&[], "api", "s3cret"), None);
    }

    #[test]
    fn parses_basic_credentials() {
        let value = |s: &str| HeaderValue::from_str(s).unwrap();
        let encoded = Base64::encode_string(b"api:s3c:ret");
        assert_eq!(
            basic_credentials(&value(&format!("Basic {encoded}"))),
            Some(("api".to_owned(), "s3c:ret".to_owned()))
        );
        assert_eq!(
            basic_credentials(&value(&format!("basic {encoded}"))),
            Some(("api".to_owned(), "s3c:ret".to_owned()))
        );
        for refused in [
            format!("Bearer {encoded}"),
            format!("DPoP {encoded}"),
            "Basic !!!".to_owned(),
            format!("Basic {}", Base64::encode_string(b"no-colon")),
            format!("Basic {}", Base64::encode_string(b":secret-without-id")),
            format!("Basic {}", Base64::encode_string(&[0xff, b':', b'x'])),
            format!("Basic {}", "A".repeat(MAX_AUTHORIZATION_LEN)),
            "Basic".to_owned(),
        ] {
            assert_eq!(basic_credentials(&value(&refused)), None, "{refused}");
        }
    }
}

/// What the tests of the resource-server endpoints share: an issuer that
/// knows resource server `api` (secret `s3cret`), and a device holding an
/// enrolled key with a live session.
#[cfg(test)]
pub(super) mod fixtures {
    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode};
    use base64ct::{Base64, Encoding as _};
    use tower::ServiceExt as _;

    use crate::config::ResourceServerConfig;
    use crate::model::Role;
    use crate::revocation::{Target, revoke};
    use crate::secret::{random_id, secret_hash};
    use crate::store::RevocationEvent;
    use crate::testing::{TestDevice, TestIssuer};

    /// The resource server's id.
    pub(crate) const RS_ID: &str = "api";
    /// Its secret.
    pub(crate) const RS_SECRET: &str = "s3cret";

    /// An issuer that knows resource server [`RS_ID`].
    pub(crate) fn issuer() -> TestIssuer {
        let hash: String = secret_hash(RS_SECRET)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        TestIssuer::with_config(|c| {
            c.resource_servers = vec![ResourceServerConfig {
                id: RS_ID.into(),
                secret_sha256: hash,
            }];
        })
    }

    /// An `Authorization: Basic` value.
    pub(crate) fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            Base64::encode_string(format!("{id}:{secret}").as_bytes())
        )
    }

    /// The resource server's own credentials.
    pub(crate) fn rs_auth() -> String {
        basic(RS_ID, RS_SECRET)
    }

    /// Enrolls a device for a new principal (role `device`) and starts a
    /// session for it, directly in the store.
    pub(crate) fn enroll(issuer: &TestIssuer) -> TestDevice {
        issuer.enrolled_device(&format!("svc-{}", random_id()), &[Role::Device])
    }

    /// Revokes `target` now, as an admin (`admin:test`) would.
    pub(crate) fn admin_revoke(issuer: &TestIssuer, target: &Target) -> RevocationEvent {
        revoke(
            &issuer.state,
            target,
            "admin:test",
            None,
            "admin",
            issuer.now(),
        )
        .unwrap()
    }

    /// A form POST with extra headers.
    pub(crate) fn form(path: &str, body: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::from(body.to_owned())).unwrap()
    }

    /// A GET with extra headers.
    pub(crate) fn get(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).unwrap()
    }

    /// Sends `request` to the issuer's router: status, headers, JSON body
    /// (`null` when empty).
    pub(crate) async fn send(
        issuer: &TestIssuer,
        request: Request<Body>,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = issuer.router().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, body)
    }
}
