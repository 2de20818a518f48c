//! The admin API over the router: the caller checks, step-up, and the
//! endpoints' effects.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use holdfast_hw::KeyKind;
use serde_json::{Value, json};

use super::super::rs_auth::fixtures::send;
use crate::model::{DeviceState, Role};
use crate::secret::secret_hash;
use crate::testing::{TestDevice, TestIssuer};

/// Status, headers and JSON body (`null` when empty) of an answer.
type Answer = (StatusCode, HeaderMap, Value);

const ADMIN_NET: [u8; 4] = [127, 0, 0, 1];
const OUTSIDE: [u8; 4] = [192, 0, 2, 7];

/// A DPoP proof by `caller`'s key for `method` `path`, carrying `ath`.
fn proof(issuer: &TestIssuer, caller: &TestDevice, method: &str, path: &str) -> String {
    caller.proof(issuer, method, path, Some(&caller.token))
}

fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    peer: [u8; 4],
    body: Option<&Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let mut request = builder.body(body).unwrap();
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(peer)), 40_000);
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// `Authorization: DPoP` with `caller`'s token and its proof for `method`
/// `path`.
fn dpop_headers(
    issuer: &TestIssuer,
    caller: &TestDevice,
    method: &str,
    path: &str,
) -> [(&'static str, String); 2] {
    [
        ("authorization", format!("DPoP {}", caller.token)),
        ("dpop", proof(issuer, caller, method, path)),
    ]
}

/// A well-formed admin call by `caller` from inside the allowlist.
fn call(
    issuer: &TestIssuer,
    caller: &TestDevice,
    method: &str,
    uri: &str,
    body: Option<&Value>,
) -> Request<Body> {
    let path = uri.split('?').next().unwrap();
    let headers = dpop_headers(issuer, caller, method, path);
    request(method, uri, &headers, ADMIN_NET, body)
}

/// `caller` asks for an enrollment code with `body`.
async fn create_code(issuer: &TestIssuer, caller: &TestDevice, body: &Value) -> Answer {
    let uri = "/admin/enrollment-codes";
    send(issuer, call(issuer, caller, "POST", uri, Some(body))).await
}

fn challenge(headers: &HeaderMap) -> &str {
    headers
        .get(header::WWW_AUTHENTICATE)
        .unwrap()
        .to_str()
        .unwrap()
}

/// The newest audit record with `event`.
fn last_audit(issuer: &TestIssuer, event: &str) -> crate::store::AuditRecord {
    let records = issuer.state.store.audit_range(1, 10_000).unwrap();
    records
        .into_iter()
        .rev()
        .find(|r| r.entry.event == event)
        .unwrap()
}

/// Asserts `got` is a refusal with `want` and `code`, and its challenge.
fn assert_refused(got: &Answer, want: StatusCode, code: &str) {
    let (status, headers, body) = got;
    assert_eq!(*status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let challenge = challenge(headers);
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{code}\"")),
        "{challenge}"
    );
    assert!(challenge.ends_with("algs=\"ES256\""), "{challenge}");
}

/// Asserts the newest `admin_refused` record names `check`; returns it.
fn assert_audited_refusal(issuer: &TestIssuer, check: &str) -> crate::store::AuditRecord {
    let record = last_audit(issuer, "admin_refused");
    assert_eq!(record.entry.details["check"], check);
    record
}

/// `caller` lists the devices: asserts the refusal (status, `error`,
/// challenge) and that it was audited with `check`; returns the record.
async fn assert_list_refused(
    issuer: &TestIssuer,
    caller: &TestDevice,
    want: (StatusCode, &str),
    check: &str,
) -> crate::store::AuditRecord {
    let got = send(issuer, call(issuer, caller, "GET", "/admin/devices", None)).await;
    assert_refused(&got, want.0, want.1);
    assert_audited_refusal(issuer, check)
}

/// Whether the stored session `id` is revoked.
fn session_revoked(issuer: &TestIssuer, id: &crate::model::SessionId) -> bool {
    let session = issuer.state.store.session(id).unwrap().unwrap();
    session.revoked.is_some()
}

/// An admin whose session started `age` seconds ago, with a fresh token
/// (as after a refresh).
fn admin_with_session_age(issuer: &TestIssuer, age: u64) -> TestDevice {
    let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
    issuer.clock.advance(age);
    admin.token = admin.access_token(issuer, |_| {});
    admin
}

#[tokio::test]
async fn admin_lists_devices() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);

    let (status, headers, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(body["devices"].as_array().unwrap().len(), 2);

    let uri = format!("/admin/devices?principal={}", user.principal.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let devices = body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["id"], user.device.id.as_str());

    let uri = format!("/admin/devices/{}", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["jkt"], user.device.jkt.as_str());

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices/d-nosuch", None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn admin_revokes_a_device_and_it_is_audited() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);

    let uri = format!("/admin/devices/{}/revoke", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "device");
    assert_eq!(body["id"], user.device.id.as_str());

    let store = issuer.state.store.as_ref();
    assert_eq!(
        store.device(&user.device.id).unwrap().unwrap().state,
        DeviceState::Revoked
    );
    assert!(session_revoked(&issuer, &user.session.id));
    let record = last_audit(&issuer, "revocation");
    assert_eq!(record.entry.actor, format!("admin:{}", admin.principal.id));
    assert_eq!(record.entry.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(record.entry.details["id"], user.device.id.as_str());
    // The feed event carries the device's entry, now revoked.
    assert_eq!(body["device"]["device_id"], user.device.id.as_str());
    assert_eq!(body["device"]["jkt"], user.device.jkt.as_str());
    assert_eq!(body["device"]["state"], "revoked");

    // Revocation is final.
    let uri = format!("/admin/devices/{}/enable", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn admin_disables_and_enables_a_device() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    let store = issuer.state.store.as_ref();

    let uri = format!("/admin/devices/{}/disable", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "disabled");
    assert_eq!(
        store.device(&user.device.id).unwrap().unwrap().state,
        DeviceState::Disabled
    );
    let record = last_audit(&issuer, "admin_action");
    assert_eq!(record.entry.details["action"], "device_disabled");
    assert_eq!(record.entry.actor, format!("admin:{}", admin.principal.id));

    let uri = format!("/admin/devices/{}/enable", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        store.device(&user.device.id).unwrap().unwrap().state,
        DeviceState::Active
    );
    // Enabling an active device changes nothing and publishes nothing.
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each change reached the feed verifiers follow, with the new state.
    let events = store.revocations_since(0, 100).unwrap();
    let changes: Vec<(&str, &str, Option<DeviceState>)> = events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.id.as_str(),
                e.device.as_ref().map(|d| d.state),
            )
        })
        .collect();
    let id = user.device.id.as_str();
    assert_eq!(
        changes,
        vec![
            ("device_state", id, Some(DeviceState::Disabled)),
            ("device_state", id, Some(DeviceState::Active)),
        ]
    );
    let entry = events[0].device.as_ref().unwrap();
    assert_eq!(entry.jkt, user.device.jkt);
    assert_eq!(entry.principal_id, user.principal.id);
    assert!(!entry.principal_disabled);
}

#[tokio::test]
async fn admin_lists_and_revokes_sessions_and_principals() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    let store = issuer.state.store.as_ref();

    let uri = format!("/admin/sessions?principal={}", user.principal.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], user.session.id.as_str());

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/sessions?device=nope", None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");

    let uri = format!("/admin/sessions/{}/revoke", user.session.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "session");
    assert!(session_revoked(&issuer, &user.session.id));

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/principals", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["principals"].as_array().unwrap().len(), 2);

    let uri = format!("/admin/principals/{}/revoke", user.principal.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        store
            .principal(&user.principal.id)
            .unwrap()
            .unwrap()
            .disabled
    );
}

#[tokio::test]
async fn rejects_device_role_token() {
    let issuer = TestIssuer::new();
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    let want = (StatusCode::FORBIDDEN, "access_denied");
    let record = assert_list_refused(&issuer, &user, want, "insufficient_role").await;
    assert_eq!(record.entry.actor, user.principal.id.as_str());
}

#[tokio::test]
async fn rejects_caller_outside_the_allowlist() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = dpop_headers(&issuer, &admin, "GET", "/admin/devices");
    let req = request("GET", "/admin/devices", &headers, OUTSIDE, None);
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
    let record = assert_audited_refusal(&issuer, "ip_not_allowed");
    assert_eq!(record.entry.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(record.entry.actor, "anonymous");
    assert!(
        issuer
            .state
            .metrics
            .render()
            .contains("holdfast_admin_refused_total{reason=\"ip_not_allowed\"} 1")
    );
}

#[tokio::test]
async fn rejects_caller_without_a_known_address() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut req = call(&issuer, &admin, "GET", "/admin/devices", None);
    req.extensions_mut().remove::<ConnectInfo<SocketAddr>>();
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
}

#[tokio::test]
async fn accepts_ipv4_mapped_peer_inside_the_allowlist() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut req = call(&issuer, &admin, "GET", "/admin/devices", None);
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(mapped));
    let (status, _, body) = send(&issuer, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn rejects_bearer_scheme() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = [
        ("authorization", format!("Bearer {}", admin.token)),
        ("dpop", proof(&issuer, &admin, "GET", "/admin/devices")),
    ];
    let (status, _, body) = send(
        &issuer,
        request("GET", "/admin/devices", &headers, ADMIN_NET, None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_audited_refusal(&issuer, "bearer_scheme");
}

#[tokio::test]
async fn rejects_two_authorization_headers_or_schemes() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let dpop = proof(&issuer, &admin, "GET", "/admin/devices");
    let two_headers = [
        ("authorization", format!("DPoP {}", admin.token)),
        ("authorization", format!("Bearer {}", admin.token)),
        ("dpop", dpop.clone()),
    ];
    let two_schemes = [
        (
            "authorization",
            format!("DPoP {}, Bearer {}", admin.token, admin.token),
        ),
        ("dpop", dpop),
    ];
    for headers in [&two_headers[..], &two_schemes[..]] {
        let (status, _, body) = send(
            &issuer,
            request("GET", "/admin/devices", headers, ADMIN_NET, None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn rejects_missing_authorization_with_bare_challenge() {
    let issuer = TestIssuer::new();
    let (status, headers, body) = send(
        &issuer,
        request("GET", "/admin/devices", &[], ADMIN_NET, None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(challenge(&headers), "DPoP algs=\"ES256\"");
    let record = last_audit(&issuer, "admin_refused");
    assert_eq!(record.entry.details["check"], "authorization_missing");
}

#[tokio::test]
async fn rejects_missing_dpop_header() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = [("authorization", format!("DPoP {}", admin.token))];
    let req = request("GET", "/admin/devices", &headers, ADMIN_NET, None);
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn rejects_proof_for_another_path() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = dpop_headers(&issuer, &admin, "GET", "/admin/sessions");
    let req = request("GET", "/admin/devices", &headers, ADMIN_NET, None);
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    let record = assert_audited_refusal(&issuer, "htu_mismatch");
    assert_eq!(record.entry.actor, admin.principal.id.as_str());
}

#[tokio::test]
async fn rejects_proof_by_another_key() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut thief = issuer.enrolled_device("mallory", &[Role::Device]);
    thief.token = admin.token.clone();
    let want = (StatusCode::UNAUTHORIZED, "invalid_dpop_proof");
    assert_list_refused(&issuer, &thief, want, "jkt_mismatch").await;
}

#[tokio::test]
async fn rejects_replayed_proof() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = dpop_headers(&issuer, &admin, "GET", "/admin/devices");
    let req = || request("GET", "/admin/devices", &headers, ADMIN_NET, None);
    let (status, _, body) = send(&issuer, req()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = send(&issuer, req()).await;
    assert_refused(&got, StatusCode::UNAUTHORIZED, "invalid_dpop_proof");
    assert_audited_refusal(&issuer, "jti_replayed");
}

#[tokio::test]
async fn rejects_token_signed_by_unknown_key() {
    let issuer = TestIssuer::new();
    let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
    let elsewhere = TestIssuer::new();
    let claims = admin.claims(&issuer);
    admin.token = elsewhere
        .state
        .keyring()
        .sign_access_token(&claims)
        .unwrap();
    let want = (StatusCode::UNAUTHORIZED, "invalid_token");
    assert_list_refused(&issuer, &admin, want, "unknown_key").await;
}

#[tokio::test]
async fn rejects_token_of_revoked_session() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut session = admin.session.clone();
    session.revoked = Some(crate::model::Revocation {
        at: issuer.now(),
        reason: "test".into(),
    });
    issuer.state.store.update_session(&session).unwrap();
    let want = (StatusCode::UNAUTHORIZED, "invalid_token");
    assert_list_refused(&issuer, &admin, want, "session_revoked").await;
}

#[tokio::test]
async fn revoke_all_requires_step_up() {
    let issuer = TestIssuer::new();
    // The session is older than step_up_max_age (300 s), though its token is
    // fresh (as after a refresh).
    let mut admin = admin_with_session_age(&issuer, 301);
    let got = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", None),
    )
    .await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    assert_eq!(
        got.2["error_description"],
        "step-up required: re-authenticate (new session) within 300 s"
    );
    assert_audited_refusal(&issuer, "step_up");
    assert_eq!(issuer.state.store.revoke_all_before().unwrap(), None);

    // A new session is a re-authentication.
    admin.start_session(&issuer);
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "all_before");
    assert_eq!(
        issuer.state.store.revoke_all_before().unwrap(),
        Some(issuer.now())
    );
}

#[tokio::test]
async fn revoke_all_takes_an_instant_but_not_a_future_one() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let future = json!({ "before": issuer.now().as_secs() + 10 });
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", Some(&future)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let past = json!({ "before": issuer.now().as_secs() - 10 });
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", Some(&past)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["before"], issuer.now().as_secs() - 10);
    let with_reason = json!({ "reason": "laptop stolen at the airport" });
    let (status, _, body) = send(
        &issuer,
        call(
            &issuer,
            &admin,
            "POST",
            "/admin/revoke-all",
            Some(&with_reason),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record = last_audit(&issuer, "revocation");
    assert_eq!(record.entry.details["note"], "laptop stolen at the airport");
    assert_eq!(record.entry.details["reason"], "admin");
    let typo = json!({ "befor": 1 });
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", Some(&typo)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn key_rotation_changes_kid_and_old_tokens_still_verify() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let old_kid = issuer.state.keyring().active_kid().to_owned();

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/keys/rotate", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_kid = body["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(issuer.state.keyring().active_kid(), new_kid);

    let (status, _, jwks) = send(&issuer, request("GET", "/jwks", &[], ADMIN_NET, None)).await;
    assert_eq!(status, StatusCode::OK);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    // The token signed by the retired key still works.
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        last_audit(&issuer, "admin_action").entry.details["action"],
        "keys_rotated"
    );
}

#[tokio::test]
async fn key_rotation_requires_step_up() {
    let issuer = TestIssuer::new();
    let admin = admin_with_session_age(&issuer, 400);
    let old_kid = issuer.state.keyring().active_kid().to_owned();
    let got = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/keys/rotate", None),
    )
    .await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    assert_eq!(issuer.state.keyring().active_kid(), old_kid);
}

#[tokio::test]
async fn audit_reads_a_range_and_verifies_the_chain() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    for action in ["disable", "enable"] {
        let uri = format!("/admin/devices/{}/{action}", user.device.id);
        let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/audit?from=1&limit=1", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"].as_array().unwrap().len(), 1);
    assert_eq!(body["records"][0]["seq"], 1);
    assert_eq!(body["next"], 2);

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/audit/verify", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["valid"], true, "{body}");
    assert_eq!(body["records"], 2);
}

#[tokio::test]
async fn admin_creates_a_device_enrollment_code() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let body =
        json!({ "principal": "bob", "roles": ["device"], "kinds": ["software"], "ttl_secs": 600 });
    let (status, headers, body) = create_code(&issuer, &admin, &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(body["expires_at"], issuer.now().as_secs() + 600);
    let code = body["code"].as_str().unwrap();
    let stored = issuer
        .state
        .store
        .enrollment_code(&secret_hash(code))
        .unwrap()
        .unwrap();
    assert_eq!(stored.allowed_kinds, vec![KeyKind::Software]);
    assert_eq!(stored.created_by, format!("admin:{}", admin.principal.id));
    let bob = issuer
        .state
        .store
        .principal_by_name("bob")
        .unwrap()
        .unwrap();
    assert_eq!(bob.roles, vec![Role::Device]);
    let record = last_audit(&issuer, "admin_action");
    assert_eq!(record.entry.details["action"], "enrollment_code_created");
    assert_eq!(record.entry.ip.as_deref(), Some("127.0.0.1"));
    assert!(!serde_json::to_string(&record).unwrap().contains(code));
}

#[tokio::test]
async fn admin_enrollment_code_requires_step_up() {
    let issuer = TestIssuer::new();
    let mut admin = admin_with_session_age(&issuer, 301);
    let body = json!({ "principal": "carol", "roles": ["admin"] });
    let got = create_code(&issuer, &admin, &body).await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    assert!(
        issuer
            .state
            .store
            .principal_by_name("carol")
            .unwrap()
            .is_none()
    );

    // A device code needs no step-up.
    let device_code = json!({ "principal": "dave" });
    let (status, _, resp) = create_code(&issuer, &admin, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{resp}");

    admin.start_session(&issuer);
    let (status, _, resp) = create_code(&issuer, &admin, &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
}

#[tokio::test]
async fn rejects_bad_enrollment_code_requests() {
    let issuer = TestIssuer::with_config(|c| c.policy.danger_accept_software_keys = false);
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    for body in [
        json!({ "principal": "bob", "kinds": ["floppy"] }),
        json!({ "principal": "bob", "kinds": ["software"] }),
        json!({ "principal": "bob", "ttl_secs": 0 }),
        json!({ "principal": "bob", "roles": ["root"] }),
        json!({ "roles": ["device"] }),
    ] {
        let (status, _, resp) = create_code(&issuer, &admin, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {resp}");
        assert_eq!(resp["error"], "invalid_request", "{body} → {resp}");
    }
}
