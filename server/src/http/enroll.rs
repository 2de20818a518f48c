//! `POST /enroll/challenge` and `POST /enroll`: a device proves possession
//! of its new key and redeems an enrollment code (see `crate::enrollment`
//! for the flow and its checks, and `docs/enrollment.md`).
//!
//! Every answer is JSON: a body that is not the expected JSON is refused as
//! RFC 6749 `invalid_request` (413 when too large), never with axum's plain
//! text, and is audited like any other refusal.

use axum::extract::State;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use holdfast_proto::endpoints::{ENROLL_CHALLENGE_PATH, ENROLL_PATH};

use super::error::ApiError;
use super::extract::{ClientIp, user_agent};
use crate::enrollment::{self, ChallengeRequest, EnrollError, EnrollRequest};
use crate::issuer::RequestContext;
use crate::state::AppState;

/// Longest description of a bad body sent back (it can echo client input).
const MAX_REASON_CHARS: usize = 200;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(ENROLL_CHALLENGE_PATH, post(challenge))
        .route(ENROLL_PATH, post(enroll))
}

/// `POST /enroll/challenge` → 200 `{"challenge","expires_in"}`, plus
/// `"tpm"` (the credential-activation challenge) when the body asks for a
/// TPM enrollment. No body, or an empty one, is a plain challenge.
async fn challenge(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ctx = RequestContext {
        ip: ip.0,
        user_agent: user_agent(&headers),
        now: state.clock.now(),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let err = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                EnrollError::BodyTooLarge
            } else {
                EnrollError::MalformedRequest(rejection.body_text())
            };
            enrollment::record_refusal(&state, &err, &ctx);
            return Err(err.into());
        }
    };
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        ChallengeRequest::default()
    } else {
        match serde_json::from_slice::<ChallengeRequest>(&body) {
            Ok(request) => request,
            Err(e) => {
                let err = EnrollError::MalformedRequest(
                    e.to_string().chars().take(MAX_REASON_CHARS).collect(),
                );
                enrollment::record_refusal(&state, &err, &ctx);
                return Err(err.into());
            }
        }
    };
    match enrollment::issue_challenge(&state, &request, ctx.now) {
        Ok(challenge) => Ok(no_store(StatusCode::OK, Json(challenge))),
        Err(err) => {
            enrollment::record_refusal(&state, &err, &ctx);
            Err(err.into())
        }
    }
}

/// `POST /enroll` → 201 with the new device, or an RFC 6749 error.
async fn enroll(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let ctx = RequestContext {
        ip: ip.0,
        user_agent: user_agent(&headers),
        now: state.clock.now(),
    };
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => {
            let err = rejected_body(&rejection);
            enrollment::record_refusal(&state, &err, &ctx);
            return Err(err.into());
        }
    };
    let enrolled = enrollment::enroll(&state, &request, &ctx)?;
    Ok(no_store(StatusCode::CREATED, Json(enrolled)))
}

impl From<EnrollError> for ApiError {
    /// Status by wire code (400 `invalid_request` / `invalid_grant`, 403
    /// `access_denied`), except 413 for an oversized body and 409 for a key
    /// enrolled already; storage failures become `server_error`.
    fn from(err: EnrollError) -> Self {
        let status = match &err {
            EnrollError::Store(cause) => return ApiError::server(cause),
            EnrollError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EnrollError::KeyAlreadyEnrolled => StatusCode::CONFLICT,
            _ if err.wire_code() == "access_denied" => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, err.wire_code(), err.to_string())
    }
}

/// Why axum could not read the body as an [`EnrollRequest`].
fn rejected_body(rejection: &JsonRejection) -> EnrollError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return EnrollError::BodyTooLarge;
    }
    let reason = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the Content-Type must be application/json".to_owned()
        }
        other => other.body_text().chars().take(MAX_REASON_CHARS).collect(),
    };
    EnrollError::MalformedRequest(reason)
}

/// Challenges and device records are not for caches (RFC 6749 §5.1 does
/// the same for tokens).
fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use base64ct::{Base64UrlUnpadded, Encoding as _};
    use holdfast_hw::{KeyKind, SoftwareKey};
    use holdfast_proto::{JwtHeader, Signer as _, sign_jwt};
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use super::*;
    use crate::enrollment::{ENROLL_PROOF_TYP, code_hash, create_code};
    use crate::model::{DeviceState, Role};
    use crate::secret::secret_hash;
    use crate::testing::{TEST_ISSUER, TestIssuer};

    const ALL_KINDS: &[KeyKind] = &[KeyKind::Software, KeyKind::Tpm, KeyKind::Yubikey];

    async fn send(
        issuer: &TestIssuer,
        path: &str,
        content_type: Option<&str>,
        body: Body,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::post(path);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = issuer
            .router()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, headers, value)
    }

    async fn challenge(issuer: &TestIssuer) -> String {
        let (status, headers, body) =
            send(issuer, ENROLL_CHALLENGE_PATH, None, Body::empty()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(body["expires_in"], 300);
        body["challenge"].as_str().unwrap().to_owned()
    }

    fn code(issuer: &TestIssuer, kinds: &[KeyKind], ttl_secs: u64) -> String {
        let state = &issuer.state;
        create_code(
            state,
            "alice",
            &[Role::Device],
            kinds,
            "admin:test",
            ttl_secs,
            issuer.now(),
        )
        .unwrap()
        .0
    }

    fn proof(key: &SoftwareKey, challenge: &str, code: &str, iat: u64) -> String {
        let header = JwtHeader {
            typ: ENROLL_PROOF_TYP,
            kid: None,
            jwk: Some(key.public_jwk()),
        };
        sign_jwt(
            key,
            &header,
            &json!({ "challenge": challenge, "code_hash": code_hash(code), "iat": iat }),
        )
        .unwrap()
    }

    /// A JWS with any header, signed by `key`.
    fn raw_jws(key: &SoftwareKey, header: &Value, claims: &Value) -> String {
        let encode = |v: &Value| Base64UrlUnpadded::encode_string(&serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", encode(header), encode(claims));
        let signature = key.try_sign(input.as_bytes()).unwrap();
        format!("{input}.{}", Base64UrlUnpadded::encode_string(&signature))
    }

    fn public_jwk(key: &SoftwareKey) -> Value {
        serde_json::from_str(&key.public_jwk().to_json()).unwrap()
    }

    fn body(code: &str, kind: &str, proof: &str) -> Value {
        json!({ "code": code, "kind": kind, "name": "laptop-42", "proof": proof, "attestation": null })
    }

    async fn enroll(issuer: &TestIssuer, body: &Value) -> (StatusCode, Value) {
        let (status, headers, value) = send(
            issuer,
            ENROLL_PATH,
            Some("application/json"),
            Body::from(body.to_string()),
        )
        .await;
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        (status, value)
    }

    /// The request body for `code` and `kind`, proved now by `key` over
    /// `challenge`.
    fn proved_body(
        issuer: &TestIssuer,
        key: &SoftwareKey,
        challenge: &str,
        code: &str,
        kind: &str,
    ) -> Value {
        body(
            code,
            kind,
            &proof(key, challenge, code, issuer.now().as_secs()),
        )
    }

    /// A software-key request body for `code` by a new key over a fresh
    /// challenge.
    async fn new_key_body(issuer: &TestIssuer, code: &str) -> Value {
        let key = SoftwareKey::generate().unwrap();
        let challenge = challenge(issuer).await;
        proved_body(issuer, &key, &challenge, code, "software")
    }

    /// A fresh code, key, challenge and the matching request body.
    async fn attempt(
        issuer: &TestIssuer,
        kinds: &[KeyKind],
        kind: &str,
    ) -> (SoftwareKey, String, String, Value) {
        let code = code(issuer, kinds, 3600);
        let key = SoftwareKey::generate().unwrap();
        let challenge = challenge(issuer).await;
        let body = proved_body(issuer, &key, &challenge, &code, kind);
        (key, code, challenge, body)
    }

    fn device_count(issuer: &TestIssuer) -> usize {
        issuer.state.store.devices().unwrap().len()
    }

    /// The newest audit record.
    fn last_audit(issuer: &TestIssuer) -> crate::store::AuditRecord {
        let mut records = issuer.state.store.audit_range(0, 10_000).unwrap();
        records.pop().unwrap()
    }

    /// Asserts the answer, that the refusal was audited with `check` and
    /// counted, and that no device was stored.
    fn assert_refused(
        issuer: &TestIssuer,
        before: usize,
        got: (StatusCode, Value),
        want: (StatusCode, &str, &str),
    ) {
        let (status, body) = got;
        let (want_status, want_error, check) = want;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (want_status, want_error),
            "{body}"
        );
        assert!(body["error_description"].is_string(), "{body}");
        let last = last_audit(issuer);
        assert_eq!(last.entry.event, "enrollment_refused");
        assert_eq!(last.entry.outcome, want_error);
        assert_eq!(last.entry.details["check"], check, "{:?}", last.entry);
        let metric = format!("holdfast_enrollment_refused_total{{reason=\"{check}\"}} 1");
        assert!(issuer.state.metrics.render().contains(&metric), "{metric}");
        assert_eq!(device_count(issuer), before, "a refusal stored a device");
        // One `device_enrolled` event per device, none for the refusal.
        assert_eq!(
            issuer.state.store.revocations_since(0, 100).unwrap().len(),
            before,
            "a refusal was published to the feed"
        );
    }

    /// Enrolls with `request` and asserts a 400 `invalid_request` refusal
    /// audited with `check`, as [`assert_refused`] does, no device stored.
    async fn assert_invalid_request(issuer: &TestIssuer, request: &Value, check: &str) {
        let got = enroll(issuer, request).await;
        let want = (StatusCode::BAD_REQUEST, "invalid_request", check);
        assert_refused(issuer, 0, got, want);
    }

    /// The stored enrollment code `code`.
    fn stored_code(issuer: &TestIssuer, code: &str) -> crate::model::EnrollmentCode {
        let hash = secret_hash(code);
        issuer.state.store.enrollment_code(&hash).unwrap().unwrap()
    }

    #[tokio::test]
    async fn enrolls_a_software_key() {
        let issuer = TestIssuer::new();
        let (key, code, _, request) = attempt(&issuer, ALL_KINDS, "software").await;
        let (status, body) = enroll(&issuer, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let jkt = key.public_jwk().thumbprint();
        let device = issuer.state.store.device_by_jkt(&jkt).unwrap().unwrap();
        let principal = issuer
            .state
            .store
            .principal_by_name("alice")
            .unwrap()
            .unwrap();
        assert_eq!(
            body,
            json!({
                "device_id": device.id.as_str(),
                "client_id": device.id.as_str(),
                "principal_id": principal.id.as_str(),
                "principal": "alice",
                "jkt": jkt.as_str(),
                "kind": "software",
                "token_endpoint": format!("{TEST_ISSUER}/token"),
                "issuer": TEST_ISSUER,
            })
        );
        assert_eq!(device.principal, principal.id);
        assert_eq!(device.name, "laptop-42");
        assert_eq!(&device.jwk, key.public_jwk());
        assert_eq!(device.kind, KeyKind::Software);
        assert_eq!(device.attestation.kind, "software");
        assert_eq!(device.state, DeviceState::Active);
        assert_eq!(device.created_at, issuer.now());

        // Published to the feed verifiers follow, with the device's entry.
        let events = issuer.state.store.revocations_since(0, 100).unwrap();
        let [event] = events.as_slice() else {
            panic!("expected one feed event, got {events:?}");
        };
        assert_eq!(
            serde_json::to_value(event).unwrap(),
            json!({
                "cursor": event.cursor,
                "at": issuer.now().as_secs(),
                "kind": "device_enrolled",
                "id": device.id.as_str(),
                "device": {
                    "device_id": device.id.as_str(),
                    "principal_id": principal.id.as_str(),
                    "jkt": jkt.as_str(),
                    "kind": "software",
                    "state": "active",
                    "principal_disabled": false,
                },
            })
        );

        // The code is spent.
        let record = stored_code(&issuer, &code);
        assert_eq!(record.used_by, Some(device.id.clone()));
        // Audited and counted.
        let last = last_audit(&issuer);
        assert_eq!(
            (last.entry.event.as_str(), last.entry.outcome.as_str()),
            ("device_enrolled", "ok")
        );
        assert_eq!(last.entry.details["jkt"], jkt.as_str());
        assert!(
            issuer
                .state
                .metrics
                .render()
                .contains("holdfast_enrollments_total 1")
        );
    }

    #[tokio::test]
    async fn enrolls_the_bootstrap_admin() {
        let issuer = TestIssuer::new();
        let code = enrollment::bootstrap_admin(&issuer.state, "root", issuer.now()).unwrap();
        let request = new_key_body(&issuer, &code).await;
        let (status, body) = enroll(&issuer, &request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["principal"], "root");
        let err = enrollment::bootstrap_admin(&issuer.state, "root", issuer.now()).unwrap_err();
        assert!(matches!(err, EnrollError::AlreadyBootstrapped), "{err:?}");
    }

    #[tokio::test]
    async fn rejects_reused_code() {
        let issuer = TestIssuer::new();
        let (_, code, _, request) = attempt(&issuer, ALL_KINDS, "software").await;
        assert_eq!(enroll(&issuer, &request).await.0, StatusCode::CREATED);
        let again = new_key_body(&issuer, &code).await;
        let before = device_count(&issuer);
        let got = enroll(&issuer, &again).await;
        assert_refused(
            &issuer,
            before,
            got,
            (StatusCode::BAD_REQUEST, "invalid_grant", "code_used"),
        );
    }

    #[tokio::test]
    async fn rejects_expired_code() {
        let issuer = TestIssuer::new();
        let code = code(&issuer, ALL_KINDS, 60);
        issuer.clock.advance(60);
        let request = new_key_body(&issuer, &code).await;
        let got = enroll(&issuer, &request).await;
        assert_refused(
            &issuer,
            0,
            got,
            (StatusCode::BAD_REQUEST, "invalid_grant", "code_expired"),
        );
    }

    #[tokio::test]
    async fn rejects_unknown_code() {
        let issuer = TestIssuer::new();
        let code = crate::secret::random_secret();
        let request = new_key_body(&issuer, &code).await;
        let got = enroll(&issuer, &request).await;
        assert_refused(
            &issuer,
            0,
            got,
            (StatusCode::BAD_REQUEST, "invalid_grant", "unknown_code"),
        );
    }

    #[tokio::test]
    async fn rejects_replayed_challenge() {
        let issuer = TestIssuer::new();
        let (_, _, challenge, request) = attempt(&issuer, ALL_KINDS, "software").await;
        assert_eq!(enroll(&issuer, &request).await.0, StatusCode::CREATED);
        // A new code and key, but the spent challenge.
        let code = code(&issuer, ALL_KINDS, 3600);
        let key = SoftwareKey::generate().unwrap();
        let request = proved_body(&issuer, &key, &challenge, &code, "software");
        let got = enroll(&issuer, &request).await;
        assert_refused(
            &issuer,
            1,
            got,
            (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "challenge_unknown",
            ),
        );
    }

    #[tokio::test]
    async fn rejects_expired_and_invented_challenges() {
        let issuer = TestIssuer::new();
        let code = code(&issuer, ALL_KINDS, 3600);
        let key = SoftwareKey::generate().unwrap();
        let request = proved_body(&issuer, &key, "invented", &code, "software");
        assert_invalid_request(&issuer, &request, "challenge_unknown").await;

        let challenge = challenge(&issuer).await;
        issuer.clock.advance(300);
        let request = proved_body(&issuer, &key, &challenge, &code, "software");
        let (status, body) = enroll(&issuer, &request).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        assert_eq!(device_count(&issuer), 0);
    }

    #[tokio::test]
    async fn rejects_proof_signed_by_another_key_than_its_jwk() {
        let issuer = TestIssuer::new();
        let code = code(&issuer, ALL_KINDS, 3600);
        let (signer, claimed) = (
            SoftwareKey::generate().unwrap(),
            SoftwareKey::generate().unwrap(),
        );
        let challenge = challenge(&issuer).await;
        let header = JwtHeader {
            typ: ENROLL_PROOF_TYP,
            kid: None,
            jwk: Some(claimed.public_jwk()),
        };
        let claims = json!({ "challenge": challenge, "code_hash": code_hash(&code), "iat": issuer.now().as_secs() });
        let proof = sign_jwt(&signer, &header, &claims).unwrap();
        let request = body(&code, "software", &proof);
        assert_invalid_request(&issuer, &request, "proof_signature_invalid").await;
    }

    #[tokio::test]
    async fn rejects_proof_for_another_codes_hash() {
        let issuer = TestIssuer::new();
        let (mine, theirs) = (
            code(&issuer, ALL_KINDS, 3600),
            code(&issuer, ALL_KINDS, 3600),
        );
        let key = SoftwareKey::generate().unwrap();
        let challenge = challenge(&issuer).await;
        // A proof made for `theirs`, presented with `mine`.
        let request = body(
            &mine,
            "software",
            &proof(&key, &challenge, &theirs, issuer.now().as_secs()),
        );
        assert_invalid_request(&issuer, &request, "code_hash_mismatch").await;
        for code in [mine, theirs] {
            let record = stored_code(&issuer, &code);
            assert_eq!(record.used_by, None);
        }
    }

    #[tokio::test]
    async fn rejects_private_key_in_jwk() {
        let issuer = TestIssuer::new();
        let code = code(&issuer, ALL_KINDS, 3600);
        let key = SoftwareKey::generate().unwrap();
        let challenge = challenge(&issuer).await;
        let mut jwk = public_jwk(&key);
        jwk["d"] = json!(Base64UrlUnpadded::encode_string(&[7u8; 32]));
        let header = json!({ "typ": ENROLL_PROOF_TYP, "alg": "ES256", "jwk": jwk });
        let claims = json!({ "challenge": challenge, "code_hash": code_hash(&code), "iat": issuer.now().as_secs() });
        let jws = raw_jws(&key, &header, &claims);
        let request = body(&code, "software", &jws);
        assert_invalid_request(&issuer, &request, "jwk_has_private_key").await;
    }

    #[tokio::test]
    async fn rejects_proof_headers_other_than_enroll_es256_p256() {
        let issuer = TestIssuer::new();
        let code = code(&issuer, ALL_KINDS, 3600);
        let key = SoftwareKey::generate().unwrap();
        let challenge = challenge(&issuer).await;
        let claims = json!({ "challenge": challenge, "code_hash": code_hash(&code), "iat": issuer.now().as_secs() });
        // RFC 8037 §A.1's Ed25519 public key.
        let ed25519 = json!({ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" });
        let cases = [
            (
                json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key) }),
                "proof_typ_mismatch",
            ),
            (
                json!({ "alg": "ES256", "jwk": public_jwk(&key) }),
                "proof_typ_mismatch",
            ),
            (
                json!({ "typ": ENROLL_PROOF_TYP, "alg": "ES384", "jwk": public_jwk(&key) }),
                "proof_alg_not_allowed",
            ),
            (
                json!({ "typ": ENROLL_PROOF_TYP, "alg": "none", "jwk": public_jwk(&key) }),
                "proof_alg_not_allowed",
            ),
            (
                json!({ "typ": ENROLL_PROOF_TYP, "alg": "ES256" }),
                "proof_jwk_missing",
            ),
            (
                json!({ "typ": ENROLL_PROOF_TYP, "alg": "ES256", "jwk": { "kty": "oct", "k": "AAAA" } }),
                "proof_jwk_invalid",
            ),
            (
                json!({ "typ": ENROLL_PROOF_TYP, "alg": "ES256", "jwk": ed25519 }),
                "proof_key_not_p256",
            ),
        ];
        for (header, check) in cases {
            let got = enroll(
                &issuer,
                &body(&code, "software", &raw_jws(&key, &header, &claims)),
            )
            .await;
            let last = last_audit(&issuer);
            assert_eq!(last.entry.details["check"], check, "{header}");
            assert_eq!(
                (got.0, got.1["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request"))
            );
        }
        let header = json!({ "typ": ENROLL_PROOF_TYP, "alg": "ES256", "jwk": public_jwk(&key) });
        let bad_claims =
            json!({ "challenge": challenge, "code_hash": code_hash(&code), "iat": "now" });
        let old = json!({ "challenge": challenge, "code_hash": code_hash(&code), "iat": issuer.now().as_secs() - 301 });
        for (jws, check) in [
            (
                raw_jws(&key, &header, &bad_claims),
                "proof_claims_malformed",
            ),
            (raw_jws(&key, &header, &old), "iat_outside_window"),
            ("not-a-jws".to_owned(), "proof_malformed"),
        ] {
            assert_invalid_request(&issuer, &body(&code, "software", &jws), check).await;
        }
    }

    #[tokio::test]
    async fn rejects_software_keys_when_policy_refuses_them() {
        let issuer = TestIssuer::with_config(|c| c.policy.danger_accept_software_keys = false);
        let (_, _, _, request) = attempt(&issuer, ALL_KINDS, "software").await;
        let (status, body) = enroll(&issuer, &request).await;
        assert_eq!(
            body["error_description"],
            "this issuer's policy does not accept software keys"
        );
        assert_refused(
            &issuer,
            0,
            (status, body),
            (StatusCode::FORBIDDEN, "access_denied", "kind_not_accepted"),
        );
    }

    #[tokio::test]
    async fn rejects_kind_the_code_does_not_allow() {
        let issuer = TestIssuer::new();
        let (_, _, _, request) = attempt(&issuer, &[KeyKind::Yubikey], "software").await;
        let (status, body) = enroll(&issuer, &request).await;
        assert_eq!(
            body["error_description"],
            "this enrollment code does not allow software keys"
        );
        assert_refused(
            &issuer,
            0,
            (status, body),
            (StatusCode::FORBIDDEN, "access_denied", "kind_not_allowed"),
        );
    }

    #[tokio::test]
    async fn rejects_tpm_kind_without_attestation() {
        let issuer = TestIssuer::new();
        let (_, _, _, request) = attempt(&issuer, ALL_KINDS, "tpm").await;
        assert_invalid_request(&issuer, &request, "attestation_required").await;
    }

    #[tokio::test]
    async fn rejects_tpm_attestation_when_no_tpm_roots_are_configured() {
        let issuer = TestIssuer::new();
        let (_, _, _, mut request) = attempt(&issuer, ALL_KINDS, "tpm").await;
        request["attestation"] = json!({ "format": "tpm2", "ak_cert": "AAAA" });
        let (status, body) = enroll(&issuer, &request).await;
        assert_eq!(
            body["error_description"],
            "tpm attestation is not configured on this issuer: set attestation.tpm_roots \
             (HOLDFAST_TPM_ROOTS) to the TPM manufacturers' root CAs"
        );
        assert_refused(
            &issuer,
            0,
            (status, body),
            (
                StatusCode::FORBIDDEN,
                "access_denied",
                "attestation_not_configured",
            ),
        );
    }

    #[tokio::test]
    async fn rejects_malformed_yubikey_evidence() {
        let issuer = TestIssuer::new();
        let (_, _, _, mut request) = attempt(&issuer, ALL_KINDS, "yubikey").await;
        request["attestation"] = json!({ "slot_certificate": "not base64!" });
        let (status, body) = enroll(&issuer, &request).await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("the yubikey attestation evidence is malformed: "),
            "{body}"
        );
        assert_refused(
            &issuer,
            0,
            (status, body),
            (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "attestation_malformed",
            ),
        );
    }

    #[tokio::test]
    async fn a_tpm_challenge_without_roots_is_refused_and_audited() {
        let issuer = TestIssuer::new();
        let body = Body::from(r#"{"tpm":{"ek_certificate":"MAA","ak_public":"AAE"}}"#);
        let (status, _, body) = send(&issuer, ENROLL_CHALLENGE_PATH, None, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "access_denied");
        let last = issuer
            .state
            .store
            .audit_range(0, 1000)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(last.entry.event, "enrollment_refused");
        assert_eq!(last.entry.details["check"], "attestation_not_configured");
    }

    #[tokio::test]
    async fn a_challenge_body_with_unknown_members_is_refused() {
        let issuer = TestIssuer::new();
        let body = Body::from(r#"{"piv":{}}"#);
        let (status, _, body) = send(&issuer, ENROLL_CHALLENGE_PATH, None, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
    }

    #[tokio::test]
    async fn rejects_attestation_for_a_software_key() {
        let issuer = TestIssuer::new();
        let (_, _, _, mut request) = attempt(&issuer, ALL_KINDS, "software").await;
        request["attestation"] = json!({});
        assert_invalid_request(&issuer, &request, "attestation_unexpected").await;
    }

    #[tokio::test]
    async fn rejects_same_key_enrolled_twice() {
        let issuer = TestIssuer::new();
        let (key, _, _, request) = attempt(&issuer, ALL_KINDS, "software").await;
        assert_eq!(enroll(&issuer, &request).await.0, StatusCode::CREATED);
        let code = code(&issuer, ALL_KINDS, 3600);
        let challenge = challenge(&issuer).await;
        let again = proved_body(&issuer, &key, &challenge, &code, "software");
        let (status, body) = enroll(&issuer, &again).await;
        assert_eq!(body["error_description"], "this key is already enrolled");
        assert_refused(
            &issuer,
            1,
            (status, body),
            (
                StatusCode::CONFLICT,
                "invalid_request",
                "key_already_enrolled",
            ),
        );
        // The second code was not spent.
        let record = stored_code(&issuer, &code);
        assert_eq!(record.used_by, None);
    }

    #[tokio::test]
    async fn rejects_bad_device_names() {
        let issuer = TestIssuer::new();
        let (_, _, _, mut request) = attempt(&issuer, ALL_KINDS, "software").await;
        request["name"] = json!("laptop\n2025-01-01 admin logged in");
        assert_invalid_request(&issuer, &request, "device_name_invalid").await;
    }

    #[tokio::test]
    async fn rejects_malformed_json_with_an_oauth_error() {
        let issuer = TestIssuer::new();
        let (status, headers, body) = send(
            &issuer,
            ENROLL_PATH,
            Some("application/json"),
            Body::from("{\"code\": "),
        )
        .await;
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_refused(
            &issuer,
            0,
            (status, body),
            (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "malformed_request",
            ),
        );

        let (_, _, _, request) = attempt(&issuer, ALL_KINDS, "software").await;
        let mut cases = Vec::new();
        let mut unknown_kind = request.clone();
        unknown_kind["kind"] = json!("tpm2");
        cases.push(unknown_kind);
        let mut extra_member = request.clone();
        extra_member["jwk"] = json!({});
        cases.push(extra_member);
        let mut missing_proof = request.clone();
        missing_proof.as_object_mut().unwrap().remove("proof");
        cases.push(missing_proof);
        cases.push(json!([request]));
        for case in cases {
            let (status, body) = enroll(&issuer, &case).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{case}"
            );
        }
        // Not JSON at all.
        let (status, _, body) =
            send(&issuer, ENROLL_PATH, None, Body::from(request.to_string())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        assert_eq!(
            body["error_description"],
            "the request body is not valid: the Content-Type must be application/json"
        );
        assert_eq!(device_count(&issuer), 0);
    }

    #[tokio::test]
    async fn rejects_oversized_body() {
        let issuer = TestIssuer::new();
        let (_, _, _, mut request) = attempt(&issuer, ALL_KINDS, "software").await;
        request["name"] = json!("x".repeat(crate::http::MAX_BODY_BYTES));
        let got = enroll(&issuer, &request).await;
        assert_refused(
            &issuer,
            0,
            got,
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "body_too_large",
            ),
        );
    }
}
