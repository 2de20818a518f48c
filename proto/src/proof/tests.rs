//! Every check of RFC 9449 §4.3 / §11, each with a test that tries to get
//! past it and asserts the exact refusal.

use getrandom::SysRng;
use proptest::prelude::*;

use super::*;
use crate::MemoryReplayGuard;
use crate::nonce::NonceSecret;
use crate::test_key::TestKey;
use crate::token::ath;

const NOW: u64 = 1_700_000_000;
const HTU: &str = "https://api.example.com/resource";
const TOKEN: &str = "an-access-token";

fn claims() -> serde_json::Value {
    serde_json::json!({"jti": "jti-1", "htm": "GET", "htu": HTU, "iat": NOW, "ath": ath(TOKEN)})
}

fn htu() -> Htu {
    Htu::parse(HTU).unwrap()
}

fn check(htu: &Htu) -> ProofCheck<'_> {
    ProofCheck {
        htm: "GET",
        htu,
        access_token: Some(TOKEN),
        bound_jkt: None,
        nonce: NonceCheck::NotRequired,
        now: UnixTime::from_secs(NOW),
    }
}

fn verify(proof: &str, check: &ProofCheck<'_>) -> Result<VerifiedProof, ProofError> {
    ProofVerifier::default().verify(proof, check, &MemoryReplayGuard::default())
}

/// Signs `claims` after `edit`, with the normal header, and verifies it.
fn verify_claims(edit: impl FnOnce(&mut serde_json::Value)) -> Result<VerifiedProof, ProofError> {
    let key = TestKey::new();
    let mut c = claims();
    edit(&mut c);
    let htu = htu();
    verify(&key.sign_raw(&key.header(), &c), &check(&htu))
}

#[test]
fn round_trip_sign_then_verify() {
    let key = TestKey::new();
    let htu = htu();
    let token = AccessToken::new(TOKEN);
    let request = ProofRequest {
        htm: "GET",
        htu: &htu,
        nonce: Some("n-1"),
        access_token: Some(&token),
    };
    let proof = build_proof(&key, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap();
    let jkt = key.jwk.thumbprint();
    let mut c = check(&htu);
    c.bound_jkt = Some(&jkt);
    c.nonce = NonceCheck::Exact("n-1");
    let verified = verify(&proof, &c).unwrap();
    assert_eq!(verified.jkt(), &jkt);
    assert_eq!(verified.iat(), UnixTime::from_secs(NOW));
    // 128 random bits in 22 base64url characters.
    assert_eq!(verified.jti().len(), 22);
}

#[test]
fn build_proof_makes_a_fresh_jti_each_time() {
    let key = TestKey::new();
    let htu = htu();
    let request = ProofRequest {
        htm: "GET",
        htu: &htu,
        nonce: None,
        access_token: None,
    };
    let a =
        inspect_proof(&build_proof(&key, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap())
            .unwrap();
    let b =
        inspect_proof(&build_proof(&key, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap())
            .unwrap();
    assert_ne!(a.claims["jti"], b.claims["jti"]);
    assert_eq!(a.header["typ"], "dpop+jwt");
    assert!(a.claims.get("ath").is_none());
    assert!(a.claims.get("nonce").is_none());
}

#[test]
fn rejects_multiple_or_missing_dpop_headers() {
    assert_eq!(single_dpop_header([b"a".as_slice()]), Ok("a"));
    assert_eq!(
        single_dpop_header(Vec::<&[u8]>::new()),
        Err(ProofError::MissingDpopHeader)
    );
    assert_eq!(
        single_dpop_header([b"a".as_slice(), b"b".as_slice()]),
        Err(ProofError::MultipleDpopHeaders)
    );
}

#[test]
fn rejects_malformed_jws() {
    let htu = htu();
    assert_eq!(
        verify("not.a.jwt.at.all", &check(&htu)),
        Err(ProofError::Malformed(JwsError::NotThreeParts))
    );
    assert_eq!(
        verify("", &check(&htu)),
        Err(ProofError::Malformed(JwsError::NotThreeParts))
    );
}

#[test]
fn rejects_proof_with_wrong_typ() {
    let key = TestKey::new();
    let htu = htu();
    for typ in [
        serde_json::json!("jwt"),
        serde_json::json!("DPOP+JWT"),
        serde_json::Value::Null,
    ] {
        let mut header = key.header();
        header["typ"] = typ;
        assert_eq!(
            verify(&key.sign_raw(&header, &claims()), &check(&htu)),
            Err(ProofError::TypMismatch)
        );
    }
}

#[test]
fn rejects_alg_none() {
    let key = TestKey::new();
    let htu = htu();
    let mut header = key.header();
    header["alg"] = "none".into();
    let proof = key.sign_raw(&header, &claims());
    let unsigned = format!("{}.", proof.rsplit_once('.').unwrap().0);
    let expected = Err(ProofError::AlgNotAllowed { alg: "none".into() });
    assert_eq!(verify(&proof, &check(&htu)), expected);
    assert_eq!(verify(&unsigned, &check(&htu)), expected);
}

#[test]
fn rejects_hmac_algs() {
    let key = TestKey::new();
    let htu = htu();
    for alg in ["HS256", "HS384", "HS512"] {
        let mut header = key.header();
        header["alg"] = alg.into();
        assert_eq!(
            verify(&key.sign_raw(&header, &claims()), &check(&htu)),
            Err(ProofError::AlgNotAllowed { alg: alg.into() })
        );
    }
}

#[test]
fn rejects_algs_not_on_allow_list() {
    let key = TestKey::new();
    let htu = htu();
    for alg in ["EdDSA", "RS256", "ES512", "XYZ"] {
        let mut header = key.header();
        header["alg"] = alg.into();
        assert_eq!(
            verify(&key.sign_raw(&header, &claims()), &check(&htu)),
            Err(ProofError::AlgNotAllowed { alg: alg.into() })
        );
    }
}

#[test]
fn rejects_alg_that_does_not_fit_the_key() {
    let key = TestKey::new();
    let htu = htu();
    let mut header = key.header();
    header["alg"] = "ES384".into();
    let verifier = ProofVerifier::new(
        AllowedAlgs::new([Alg::Es256, Alg::Es384]).unwrap(),
        IatWindow::default(),
    );
    assert_eq!(
        verifier.verify(
            &key.sign_raw(&header, &claims()),
            &check(&htu),
            &MemoryReplayGuard::default()
        ),
        Err(ProofError::AlgKeyMismatch { alg: "ES384" })
    );
}

#[test]
fn rejects_proof_without_jwk() {
    let key = TestKey::new();
    let htu = htu();
    let mut header = key.header();
    header.as_object_mut().unwrap().remove("jwk");
    assert_eq!(
        verify(&key.sign_raw(&header, &claims()), &check(&htu)),
        Err(ProofError::MissingJwk)
    );
}

#[test]
fn rejects_private_key_in_jwk() {
    let key = TestKey::new();
    let htu = htu();
    let mut header = key.header();
    header["jwk"]["d"] = "c2VjcmV0".into();
    assert_eq!(
        verify(&key.sign_raw(&header, &claims()), &check(&htu)),
        Err(ProofError::JwkHasPrivateKey("d"))
    );
    let mut header = key.header();
    header["jwk"] = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
    assert_eq!(
        verify(&key.sign_raw(&header, &claims()), &check(&htu)),
        Err(ProofError::InvalidJwk(JwkError::Symmetric))
    );
}

#[test]
fn rejects_jwk_not_on_curve() {
    let key = TestKey::new();
    let htu = htu();
    let mut header = key.header();
    header["jwk"] = serde_json::to_value(Jwk::p256([1; 32], [2; 32])).unwrap();
    assert_eq!(
        verify(&key.sign_raw(&header, &claims()), &check(&htu)),
        Err(ProofError::InvalidJwk(JwkError::InvalidPublicKey))
    );
}

#[test]
fn rejects_proof_signed_by_another_key() {
    let key = TestKey::new();
    let other = TestKey::new();
    let htu = htu();
    // The header names `key`, the signature is `other`'s.
    let proof = other.sign_raw(&key.header(), &claims());
    assert_eq!(
        verify(&proof, &check(&htu)),
        Err(ProofError::InvalidSignature)
    );
}

#[test]
fn rejects_tampered_claims() {
    let key = TestKey::new();
    let htu = htu();
    let proof = key.sign_raw(&key.header(), &claims());
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let (header, _) = input.split_once('.').unwrap();
    let mut c = claims();
    c["htm"] = "POST".into();
    let forged = format!("{header}.{}.{sig}", b64::encode(c.to_string().as_bytes()));
    assert_eq!(
        verify(&forged, &check(&htu)),
        Err(ProofError::InvalidSignature)
    );
}

#[test]
fn rejects_missing_claims() {
    for claim in ["jti", "htm", "htu", "iat"] {
        assert_eq!(
            verify_claims(|c| {
                c.as_object_mut().unwrap().remove(claim);
            }),
            Err(ProofError::MissingClaim(claim)),
            "{claim}"
        );
    }
    assert_eq!(
        verify_claims(|c| c["jti"] = "".into()),
        Err(ProofError::MissingClaim("jti"))
    );
}

#[test]
fn rejects_mistyped_claims() {
    assert_eq!(
        verify_claims(|c| c["iat"] = "1700000000".into()),
        Err(ProofError::MalformedClaims)
    );
    assert_eq!(
        verify_claims(|c| c["iat"] = (-1).into()),
        Err(ProofError::MalformedClaims)
    );
    assert_eq!(
        verify_claims(|c| c["htm"] = 1.into()),
        Err(ProofError::MalformedClaims)
    );
}

#[test]
fn rejects_overlong_jti() {
    assert_eq!(
        verify_claims(|c| c["jti"] = "j".repeat(MAX_JTI_LEN + 1).into()),
        Err(ProofError::JtiTooLong { max: MAX_JTI_LEN })
    );
    assert!(verify_claims(|c| c["jti"] = "j".repeat(MAX_JTI_LEN).into()).is_ok());
}

#[test]
fn rejects_wrong_htm() {
    for htm in ["POST", "get", "GET "] {
        assert_eq!(
            verify_claims(|c| c["htm"] = htm.into()),
            Err(ProofError::HtmMismatch {
                expected: "GET".into(),
                found: htm.into()
            })
        );
    }
}

#[test]
fn rejects_wrong_htu() {
    for htu in [
        "https://api.example.com/other",
        "http://api.example.com/resource",
        "https://evil.example.com/resource",
        "https://api.example.com:8443/resource",
        "https://api.example.com/resource/",
        "not a uri",
    ] {
        assert_eq!(
            verify_claims(|c| c["htu"] = htu.into()),
            Err(ProofError::HtuMismatch {
                expected: HTU.into(),
                found: htu.into()
            }),
            "{htu}"
        );
    }
}

#[test]
fn accepts_equivalent_htu_and_ignores_query_and_fragment() {
    for htu in [
        "HTTPS://API.example.com:443/resource",
        "https://api.example.com/./resource",
        "https://api.example.com/%72esource",
        "https://api.example.com/resource?x=1",
        "https://api.example.com/resource#f",
    ] {
        assert!(verify_claims(|c| c["htu"] = htu.into()).is_ok(), "{htu}");
    }
}

#[test]
fn rejects_stale_iat() {
    let window = IatWindow::default();
    assert_eq!(
        verify_claims(|c| c["iat"] = (NOW - window.max_age - 1).into()),
        Err(ProofError::IatTooOld {
            iat: UnixTime::from_secs(NOW - window.max_age - 1),
            now: UnixTime::from_secs(NOW),
            max_age: window.max_age
        })
    );
    assert!(verify_claims(|c| c["iat"] = (NOW - window.max_age).into()).is_ok());
}

#[test]
fn rejects_future_iat() {
    let window = IatWindow::default();
    assert_eq!(
        verify_claims(|c| c["iat"] = (NOW + window.max_future + 1).into()),
        Err(ProofError::IatInFuture {
            iat: UnixTime::from_secs(NOW + window.max_future + 1),
            now: UnixTime::from_secs(NOW),
            max_future: window.max_future
        })
    );
    assert!(verify_claims(|c| c["iat"] = (NOW + window.max_future).into()).is_ok());
}

#[test]
fn rejects_missing_ath_when_token_presented() {
    assert_eq!(
        verify_claims(|c| {
            c.as_object_mut().unwrap().remove("ath");
        }),
        Err(ProofError::AthMissing)
    );
}

#[test]
fn rejects_wrong_ath() {
    assert_eq!(
        verify_claims(|c| c["ath"] = ath("another-token").into()),
        Err(ProofError::AthMismatch)
    );
    assert_eq!(
        verify_claims(|c| c["ath"] = "".into()),
        Err(ProofError::AthMismatch)
    );
}

#[test]
fn rejects_token_bound_to_another_key() {
    let key = TestKey::new();
    let other = TestKey::new().jwk.thumbprint();
    let htu = htu();
    let mut c = check(&htu);
    c.bound_jkt = Some(&other);
    assert_eq!(
        verify(&key.sign_raw(&key.header(), &claims()), &c),
        Err(ProofError::JktMismatch)
    );
}

#[test]
fn rejects_missing_or_wrong_nonce_with_use_dpop_nonce() {
    let key = TestKey::new();
    let htu = htu();
    let mut c = check(&htu);
    c.nonce = NonceCheck::Exact("expected-nonce");
    let missing = verify(&key.sign_raw(&key.header(), &claims()), &c).unwrap_err();
    assert_eq!(missing, ProofError::NonceMissing);
    assert_eq!(missing.wire_code().as_str(), "use_dpop_nonce");

    let mut wrong = claims();
    wrong["nonce"] = "other-nonce".into();
    let err = verify(&key.sign_raw(&key.header(), &wrong), &c).unwrap_err();
    assert_eq!(err, ProofError::NonceInvalid);
    assert_eq!(err.wire_code().as_str(), "use_dpop_nonce");
}

#[test]
fn stateless_nonce_policy_accepts_fresh_and_refuses_stale() {
    let key = TestKey::new();
    let htu = htu();
    let issuer = NonceIssuer::new(NonceSecret::new(&[7; 32]).unwrap(), [], 60, 3).unwrap();
    let mut c = check(&htu);
    c.nonce = NonceCheck::Issuer(&issuer);

    let mut fresh = claims();
    fresh["nonce"] = issuer.issue(UnixTime::from_secs(NOW)).into();
    assert!(verify(&key.sign_raw(&key.header(), &fresh), &c).is_ok());

    let mut stale = claims();
    stale["jti"] = "jti-2".into();
    stale["nonce"] = issuer.issue(UnixTime::from_secs(NOW - 600)).into();
    assert_eq!(
        verify(&key.sign_raw(&key.header(), &stale), &c),
        Err(ProofError::NonceInvalid)
    );
}

#[test]
fn rejects_reused_jti() {
    let key = TestKey::new();
    let htu = htu();
    let verifier = ProofVerifier::default();
    let guard = MemoryReplayGuard::default();
    let proof = key.sign_raw(&key.header(), &claims());
    assert!(verifier.verify(&proof, &check(&htu), &guard).is_ok());
    assert_eq!(
        verifier.verify(&proof, &check(&htu), &guard),
        Err(ProofError::JtiReplayed)
    );
    // A new proof reusing the jti (new signature, same key and htu) is a replay too.
    let again = key.sign_raw(&key.header(), &claims());
    assert_ne!(again, proof);
    assert_eq!(
        verifier.verify(&again, &check(&htu), &guard),
        Err(ProofError::JtiReplayed)
    );
}

#[test]
fn failed_checks_do_not_burn_the_jti() {
    let key = TestKey::new();
    let htu = htu();
    let verifier = ProofVerifier::default();
    let guard = MemoryReplayGuard::default();
    let proof = key.sign_raw(&key.header(), &claims());
    // An attacker replays the captured proof against another method first.
    let mut wrong = check(&htu);
    wrong.htm = "DELETE";
    assert!(matches!(
        verifier.verify(&proof, &wrong, &guard),
        Err(ProofError::HtmMismatch { .. })
    ));
    let mut nonce = check(&htu);
    nonce.nonce = NonceCheck::Exact("n");
    assert_eq!(
        verifier.verify(&proof, &nonce, &guard),
        Err(ProofError::NonceMissing)
    );
    assert!(guard.is_empty());
    // The genuine request still succeeds.
    assert!(verifier.verify(&proof, &check(&htu), &guard).is_ok());
}

#[test]
fn replay_guard_failure_refuses_the_proof() {
    let key = TestKey::new();
    let htu = htu();
    let full = MemoryReplayGuard::new(0);
    let err = ProofVerifier::default()
        .verify(&key.sign_raw(&key.header(), &claims()), &check(&htu), &full)
        .unwrap_err();
    assert_eq!(err, ProofError::ReplayGuardUnavailable);
    assert_eq!(err.wire_code().as_str(), "server_error");
}

#[test]
fn error_descriptions_name_the_check() {
    let err = verify_claims(|c| c["htm"] = "POST".into()).unwrap_err();
    assert_eq!(err.wire_code().as_str(), "invalid_dpop_proof");
    assert_eq!(err.check(), "htm_mismatch");
    assert_eq!(
        err.to_string(),
        "DPoP proof htm \"POST\" does not match the request method \"GET\""
    );
}

#[test]
fn algs_param_lists_names() {
    assert_eq!(algs_param(&AllowedAlgs::default()), "ES256");
    assert_eq!(
        algs_param(&AllowedAlgs::new([Alg::Es256, Alg::EdDsa]).unwrap()),
        "ES256 EdDSA"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let htu = htu();
        let _ = verify(&text, &check(&htu));
        let _ = inspect_proof(&text);
    }

    #[test]
    fn arbitrary_jws_parts_never_panic(header in any::<Vec<u8>>(), payload in any::<Vec<u8>>(), sig in any::<Vec<u8>>()) {
        let proof = format!("{}.{}.{}", b64::encode(&header), b64::encode(&payload), b64::encode(&sig));
        let htu = htu();
        let _ = verify(&proof, &check(&htu));
    }

    #[test]
    fn arbitrary_signed_claims_never_panic(claims in proptest::collection::hash_map("[a-z]{1,5}", any::<i64>(), 0..8)) {
        let key = TestKey::new();
        let htu = htu();
        let proof = key.sign_raw(&key.header(), &serde_json::to_value(claims).unwrap());
        let _ = verify(&proof, &check(&htu));
    }
}
