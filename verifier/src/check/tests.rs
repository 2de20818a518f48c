//! Every check tries to get past it: each test names what it refuses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use getrandom::SysRng;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessToken, AccessTokenClaims, Alg, AllowedAlgs, Audience, Confirmation,
    Htu, IpBinding, IpBindingClaim, IssuerKeys, JwtHeader, MemoryReplayGuard, NonceCheck,
    ProofError, ProofRequest, ProofVerifier, Signer, TokenError, UnixTime, VerifyingKey,
    build_proof, sign_jwt,
};

use super::*;
use crate::registry::{DeviceEntry, FeedEvent, RegistryRefusal};

const NOW: u64 = 1_764_000_000;
const ISSUER: &str = "https://issuer.example";
const BASE: &str = "https://api.example";

struct Keys(HashMap<String, Arc<VerifyingKey>>);

impl IssuerKeys for Keys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.0.get(kid).cloned()
    }
}

struct World {
    issuer_key: SoftwareKey,
    keys: Keys,
    device: SoftwareKey,
    registry: Registry,
    proofs: ProofVerifier,
    replay: MemoryReplayGuard,
    tokens: TokenCache,
    audiences: Vec<String>,
}

impl World {
    fn new() -> Self {
        let issuer_key = SoftwareKey::generate().unwrap();
        let vk = Arc::new(VerifyingKey::new(issuer_key.public_jwk(), Alg::Es256).unwrap());
        let device = SoftwareKey::generate().unwrap();
        let registry = Registry::new();
        registry.apply_snapshot(
            vec![DeviceEntry {
                device_id: "d-1".into(),
                principal_id: "p-1".into(),
                jkt: device.public_jwk().thumbprint(),
                state: "active".into(),
                principal_disabled: false,
            }],
            None,
        );
        registry.mark_synced(UnixTime::from_secs(NOW));
        Self {
            issuer_key,
            keys: Keys(HashMap::from([("k1".to_owned(), vk)])),
            device,
            registry,
            proofs: ProofVerifier::default(),
            replay: MemoryReplayGuard::default(),
            tokens: TokenCache::default(),
            audiences: vec!["api".to_owned()],
        }
    }

    fn claims(&self) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "p-1".into(),
            aud: Audience::One("api".into()),
            exp: UnixTime::from_secs(NOW + 300),
            iat: UnixTime::from_secs(NOW),
            nbf: None,
            jti: "t-1".into(),
            client_id: "d-1".into(),
            scope: Some("read".into()),
            sid: Some("s-1".into()),
            cnf: Confirmation {
                jkt: self.device.public_jwk().thumbprint(),
            },
            amr: vec!["swk".into(), "pop".into()],
            ipb: None,
        }
    }

    fn token_signed_by(&self, key: &SoftwareKey, kid: &str, claims: &AccessTokenClaims) -> String {
        let header = JwtHeader {
            typ: ACCESS_TOKEN_TYP,
            kid: Some(kid),
            jwk: None,
        };
        sign_jwt(key, &header, claims).unwrap()
    }

    fn token(&self) -> String {
        self.token_signed_by(&self.issuer_key, "k1", &self.claims())
    }

    fn proof(&self, key: &SoftwareKey, method: &str, url: &str, token: &str) -> String {
        let htu = Htu::parse(url).unwrap();
        let token = AccessToken::new(token);
        let request = ProofRequest {
            htm: method,
            htu: &htu,
            nonce: None,
            access_token: Some(&token),
        };
        build_proof(key, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap()
    }

    fn check(
        &self,
        method: &str,
        path: &str,
        authorization: &[&str],
        dpop: &[&str],
    ) -> Result<VerifiedIdentity, VerifyError> {
        self.check_from(None, method, path, authorization, dpop)
    }

    /// [`World::check`] for a request from `client_ip`.
    fn check_from(
        &self,
        client_ip: Option<IpAddr>,
        method: &str,
        path: &str,
        authorization: &[&str],
        dpop: &[&str],
    ) -> Result<VerifiedIdentity, VerifyError> {
        let request = RequestParts {
            method,
            path,
            authorization: authorization.iter().map(|s| s.as_bytes()).collect(),
            dpop: dpop.iter().map(|s| s.as_bytes()).collect(),
            client_ip,
        };
        let ctx = CheckContext {
            issuer: ISSUER,
            audiences: &self.audiences,
            base_url: BASE,
            keys: &self.keys,
            registry: &self.registry,
            max_staleness: Some(5),
            proofs: &self.proofs,
            replay: &self.replay,
            nonce: NonceCheck::NotRequired,
            tokens: &self.tokens,
            leeway: 5,
            now: UnixTime::from_secs(NOW + 1),
        };
        check(&request, &ctx)
    }

    /// A good request, with `edit` applied to its parts.
    fn good(&self) -> (String, String) {
        let token = self.token();
        let proof = self.proof(&self.device, "GET", &format!("{BASE}/orders"), &token);
        (format!("DPoP {token}"), proof)
    }
}

#[test]
fn accepts_a_fresh_proof_with_its_token() {
    let w = World::new();
    let (auth, proof) = w.good();
    let id = w.check("GET", "/orders", &[&auth], &[&proof]).unwrap();
    assert_eq!(id.sub, "p-1");
    assert_eq!(id.client_id, "d-1");
    assert_eq!(id.sid, "s-1");
    assert_eq!(id.jkt, w.device.public_jwk().thumbprint());
}

#[test]
fn rejects_request_without_token_with_a_bare_challenge() {
    let w = World::new();
    let err = w.check("GET", "/orders", &[], &[]).unwrap_err();
    assert_eq!(err, VerifyError::MissingToken);
    assert_eq!(err.status(), 401);
    assert_eq!(
        err.www_authenticate(&AllowedAlgs::default()),
        "DPoP algs=\"ES256\""
    );
}

#[test]
fn rejects_stolen_token_without_proof() {
    let w = World::new();
    let (auth, _) = w.good();
    let err = w.check("GET", "/orders", &[&auth], &[]).unwrap_err();
    assert_eq!(err, VerifyError::Proof(ProofError::MissingDpopHeader));
    assert_eq!(err.status(), 401);
    assert_eq!(err.wire_code(), Some("invalid_dpop_proof"));
}

#[test]
fn rejects_bearer_downgrade() {
    let w = World::new();
    let (_, proof) = w.good();
    let err = w
        .check(
            "GET",
            "/orders",
            &[&format!("Bearer {}", w.token())],
            &[&proof],
        )
        .unwrap_err();
    assert_eq!(err, VerifyError::BearerDowngrade);
    assert_eq!(
        (err.status(), err.wire_code()),
        (401, Some("invalid_token"))
    );
}

#[test]
fn rejects_two_authorization_headers_and_two_schemes() {
    let w = World::new();
    let (auth, proof) = w.good();
    let err = w
        .check("GET", "/orders", &[&auth, &auth], &[&proof])
        .unwrap_err();
    assert_eq!(
        (err.status(), err.wire_code()),
        (400, Some("invalid_request"))
    );
    let both = format!("{auth}, Bearer {}", w.token());
    let err = w.check("GET", "/orders", &[&both], &[&proof]).unwrap_err();
    assert_eq!(
        (err.status(), err.wire_code()),
        (400, Some("invalid_request"))
    );
}

#[test]
fn rejects_token_with_a_proof_by_another_key() {
    let w = World::new();
    let thief = SoftwareKey::generate().unwrap();
    let token = w.token();
    let proof = w.proof(&thief, "GET", &format!("{BASE}/orders"), &token);
    let err = w
        .check("GET", "/orders", &[&format!("DPoP {token}")], &[&proof])
        .unwrap_err();
    assert_eq!(err, VerifyError::Proof(ProofError::JktMismatch));
}

#[test]
fn rejects_replayed_proof() {
    let w = World::new();
    let (auth, proof) = w.good();
    w.check("GET", "/orders", &[&auth], &[&proof]).unwrap();
    let err = w.check("GET", "/orders", &[&auth], &[&proof]).unwrap_err();
    assert_eq!(err, VerifyError::Proof(ProofError::JtiReplayed));
}

#[test]
fn rejects_proof_for_another_url_or_method() {
    let w = World::new();
    let (auth, proof) = w.good();
    assert!(matches!(
        w.check("GET", "/admin", &[&auth], &[&proof]),
        Err(VerifyError::Proof(ProofError::HtuMismatch { .. }))
    ));
    assert!(matches!(
        w.check("DELETE", "/orders", &[&auth], &[&proof]),
        Err(VerifyError::Proof(ProofError::HtmMismatch { .. }))
    ));
}

#[test]
fn rejects_token_signed_by_an_unknown_key() {
    let w = World::new();
    let forger = SoftwareKey::generate().unwrap();
    let token = w.token_signed_by(&forger, "k9", &w.claims());
    let proof = w.proof(&w.device, "GET", &format!("{BASE}/orders"), &token);
    let err = w
        .check("GET", "/orders", &[&format!("DPoP {token}")], &[&proof])
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::Token(TokenError::UnknownKey { kid: "k9".into() })
    );
}

#[test]
fn rejects_valid_token_bound_to_an_unenrolled_key() {
    // The issuer's own signing key minted it (a stolen signing key), for a
    // key the attacker holds: the registry has never seen that key.
    let w = World::new();
    let attacker = SoftwareKey::generate().unwrap();
    let mut claims = w.claims();
    claims.cnf.jkt = attacker.public_jwk().thumbprint();
    let token = w.token_signed_by(&w.issuer_key, "k1", &claims);
    let proof = w.proof(&attacker, "GET", &format!("{BASE}/orders"), &token);
    let err = w
        .check("GET", "/orders", &[&format!("DPoP {token}")], &[&proof])
        .unwrap_err();
    assert_eq!(err, VerifyError::Registry(RegistryRefusal::KeyNotEnrolled));
    assert_eq!(err.wire_code(), Some("invalid_token"));
}

fn event(kind: &str, id: &str, before: Option<u64>) -> FeedEvent {
    FeedEvent {
        cursor: 1,
        at: UnixTime::from_secs(NOW),
        kind: kind.into(),
        id: id.into(),
        before: before.map(UnixTime::from_secs),
        device: None,
    }
}

#[test]
fn rejects_revoked_session_device_principal_and_revoke_all() {
    for (kind, id, before, refusal) in [
        ("session", "s-1", None, RegistryRefusal::SessionRevoked),
        ("device", "d-1", None, RegistryRefusal::DeviceNotActive),
        ("principal", "p-1", None, RegistryRefusal::PrincipalDisabled),
        ("all_before", "", Some(NOW + 1), RegistryRefusal::RevokedAll),
    ] {
        let w = World::new();
        w.registry.apply_events(&[event(kind, id, before)]);
        let (auth, proof) = w.good();
        assert_eq!(
            w.check("GET", "/orders", &[&auth], &[&proof]),
            Err(VerifyError::Registry(refusal)),
            "{kind}"
        );
    }
}

#[test]
fn fails_closed_when_the_registry_is_stale() {
    let w = World::new();
    w.registry.mark_synced(UnixTime::from_secs(NOW - 60));
    let (auth, proof) = w.good();
    let err = w.check("GET", "/orders", &[&auth], &[&proof]).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Registry(RegistryRefusal::Stale { age: 61 })
    );
    assert_eq!(err.status(), 503);
}

#[test]
fn a_refused_request_does_not_burn_the_proof() {
    let w = World::new();
    let (auth, proof) = w.good();
    w.registry.mark_synced(UnixTime::from_secs(NOW - 60));
    assert!(w.check("GET", "/orders", &[&auth], &[&proof]).is_err());
    w.registry.mark_synced(UnixTime::from_secs(NOW));
    assert!(w.check("GET", "/orders", &[&auth], &[&proof]).is_ok());
}

#[test]
fn challenge_names_the_error() {
    let w = World::new();
    let (auth, proof) = w.good();
    w.check("GET", "/orders", &[&auth], &[&proof]).unwrap();
    let err = w.check("GET", "/orders", &[&auth], &[&proof]).unwrap_err();
    assert_eq!(
        err.www_authenticate(&AllowedAlgs::default()),
        "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof has already been used (jti replayed)\", algs=\"ES256\""
    );
}

/// A good request for a token whose session is bound by `mode` to
/// 192.0.2.10, from `client_ip`.
fn bound_request(
    mode: IpBinding,
    client_ip: Option<&str>,
) -> Result<VerifiedIdentity, VerifyError> {
    let w = World::new();
    let mut claims = w.claims();
    claims.ipb = IpBindingClaim::new(mode, Some("192.0.2.10".parse().unwrap()), 24, 56);
    let token = w.token_signed_by(&w.issuer_key, "k1", &claims);
    let proof = w.proof(&w.device, "GET", &format!("{BASE}/orders"), &token);
    w.check_from(
        client_ip.map(|ip| ip.parse().unwrap()),
        "GET",
        "/orders",
        &[&format!("DPoP {token}")],
        &[&proof],
    )
}

#[test]
fn strict_binding_admits_the_session_address_only() {
    assert!(bound_request(IpBinding::Strict, Some("192.0.2.10")).is_ok());
    assert!(bound_request(IpBinding::Strict, Some("::ffff:192.0.2.10")).is_ok());
    let err = bound_request(IpBinding::Strict, Some("192.0.2.11")).unwrap_err();
    assert_eq!(
        err,
        VerifyError::IpDeviation {
            sid: "s-1".into(),
            client_id: "d-1".into(),
            session_ip: Some("192.0.2.10".parse().unwrap()),
            request_ip: Some("192.0.2.11".parse().unwrap()),
        }
    );
    assert_eq!(
        (err.status(), err.wire_code(), err.check()),
        (401, Some("invalid_token"), "ip_deviation")
    );
    assert_eq!(
        err.www_authenticate(&AllowedAlgs::default()),
        "DPoP error=\"invalid_token\", error_description=\"request from an address outside \
         the session's IP binding\", algs=\"ES256\""
    );
}

#[test]
fn same_prefix_binding_admits_the_session_network_only() {
    assert!(bound_request(IpBinding::SamePrefix, Some("192.0.2.200")).is_ok());
    assert!(matches!(
        bound_request(IpBinding::SamePrefix, Some("192.0.3.10")),
        Err(VerifyError::IpDeviation { .. })
    ));
    assert!(matches!(
        bound_request(IpBinding::SamePrefix, Some("2001:db8::1")),
        Err(VerifyError::IpDeviation { .. })
    ));
}

#[test]
fn rejects_bound_token_when_the_client_address_is_unknown() {
    assert_eq!(
        bound_request(IpBinding::Strict, None),
        Err(VerifyError::IpDeviation {
            sid: "s-1".into(),
            client_id: "d-1".into(),
            session_ip: Some("192.0.2.10".parse().unwrap()),
            request_ip: None,
        })
    );
    assert!(matches!(
        bound_request(IpBinding::SamePrefix, None),
        Err(VerifyError::IpDeviation { .. })
    ));
}

#[test]
fn an_unbound_token_is_admitted_from_anywhere() {
    let w = World::new();
    let (auth, proof) = w.good();
    assert!(
        w.check_from(
            Some("203.0.113.5".parse().unwrap()),
            "GET",
            "/orders",
            &[&auth],
            &[&proof]
        )
        .is_ok()
    );
}

#[test]
fn rejects_stolen_bound_token_without_proof_as_a_proof_failure_not_a_deviation() {
    // Without the key, a request from elsewhere is refused for its proof:
    // it never becomes a deviation report that could revoke the session.
    let w = World::new();
    let mut claims = w.claims();
    claims.ipb = IpBindingClaim::new(
        IpBinding::Strict,
        Some("192.0.2.10".parse().unwrap()),
        24,
        56,
    );
    let token = w.token_signed_by(&w.issuer_key, "k1", &claims);
    let err = w
        .check_from(
            Some("198.51.100.1".parse().unwrap()),
            "GET",
            "/orders",
            &[&format!("DPoP {token}")],
            &[],
        )
        .unwrap_err();
    assert_eq!(err, VerifyError::Proof(ProofError::MissingDpopHeader));
}
