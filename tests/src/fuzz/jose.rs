//! JOSE targets: DPoP proofs, JWKs and RFC 7638 thumbprints, RFC 9068
//! access tokens.

use std::sync::Arc;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use holdfast_proto::{
    AccessTokenClaims, Alg, AllowedAlgs, CompactJws, IatWindow, IssuerKeys, Jkt, Jwk, JwkError,
    JwsError, MAX_JTI_LEN, MemoryReplayGuard, NonceCheck, NonceIssuer, NonceSecret, ProofCheck,
    ProofError, ProofVerifier, Signer as _, TokenCheck, UnixTime, VerifiedProof, VerifyingKey, ath,
    inspect_proof, single_dpop_header, verify_access_token,
};

use super::Verdict;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{
    SIGNED, SIGNED_HEADER, assert_bounded, device_key, header_and_payload, issuer_key, sign_compact,
};

/// The verifier's clock: 4 s after the `iat` of RFC 9449 Figure 2, so the
/// RFC's proofs of Figures 2 and 13 are inside the window.
pub const NOW: u64 = 1_562_262_620;
/// The token endpoint of RFC 9449 §4 and §5.
pub const TOKEN_HTU: &str = "https://server.example.com/token";
/// The protected resource of RFC 9449 §7.
pub const RESOURCE_HTU: &str = "https://resource.example.org/protectedresource";
/// The access token of RFC 9449 Figure 12 (its proof, Figure 13, has `ath`).
pub const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
/// The nonce a proof must carry under [`ProofFlags::NONCE_EXACT`].
pub const EXACT_NONCE: &str = "eyJ7S_zG.eyJH0-Z.HX4w-7v";
/// The issuer of access tokens, and the audience they must name.
pub const ISSUER: &str = "https://issuer.example";
/// The audience a resource accepts.
pub const AUDIENCE: &str = "https://api.example";
/// The `kid` of the fixed issuer key.
pub const ISSUER_KID: &str = "issuer-key-1";
/// Seconds of leeway for `exp` and `nbf`.
const LEEWAY: u64 = 5;

/// The policy byte after [`SIGNED`] in a `dpop_proof` input.
pub struct ProofFlags;

impl ProofFlags {
    /// A resource request (`GET` [`RESOURCE_HTU`] with [`RFC_ACCESS_TOKEN`]),
    /// else a token request (`POST` [`TOKEN_HTU`], no token).
    pub const RESOURCE: u8 = 1 << 0;
    /// The proof must carry [`EXACT_NONCE`].
    pub const NONCE_EXACT: u8 = 1 << 1;
    /// The proof must carry a nonce from [`nonce_issuer`].
    pub const NONCE_ISSUER: u8 = 1 << 2;
    /// The token is bound to the fixed device key.
    pub const BOUND_DEVICE: u8 = 1 << 3;
    /// The token is bound to the RFC 9449 example key.
    pub const BOUND_OTHER: u8 = 1 << 4;
}

/// The nonce issuer of the `dpop_proof` target (fixed secret, 60 s steps).
pub fn nonce_issuer() -> NonceIssuer {
    NonceIssuer::new(NonceSecret::new(&[7; 32]).unwrap(), [], 60, 3).unwrap()
}

/// RFC 9449 §4: compact JWS / DPoP proof parsing and full verification.
///
/// The input is a proof, checked twice (as a token request and as a
/// resource request with the RFC's access token) by a verifier that allows
/// every asymmetric algorithm; or [`SIGNED`], a [`ProofFlags`] byte and a
/// claims set, signed with the usual header by the device key; or
/// [`SIGNED_HEADER`] and `header '\n' claims`, signed by the device key.
///
/// Invariants: a refused proof leaves the replay guard untouched (§11.1: the
/// guard is consulted last) and its message is bounded; an accepted proof
/// satisfies every check when re-checked independently from its decoded
/// claims, inspects to the same thumbprint, was signed by the key it names,
/// and is refused as a replay the second time.
pub fn dpop_proof(data: &[u8]) -> Verdict {
    let accepted = match data.split_first() {
        Some((&SIGNED, rest)) => {
            let (flags, claims) = rest.split_first().unwrap_or((&0, &[][..]));
            let header = format!(
                r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#,
                device_key().public_jwk().to_json()
            );
            let proof = sign_compact(device_key(), header.as_bytes(), claims);
            check_proof(&proof, *flags, &ProofVerifier::default(), true)
        }
        Some((&SIGNED_HEADER, rest)) => {
            let (header, claims) = header_and_payload(rest);
            let proof = sign_compact(device_key(), header, claims);
            check_proof(&proof, 0, &ProofVerifier::default(), true)
        }
        _ => {
            // The server's first step: exactly one DPoP header, as text.
            let Ok(proof) = single_dpop_header([data]) else {
                return Verdict::Refused;
            };
            let all_algs = ProofVerifier::new(
                AllowedAlgs::new([Alg::Es256, Alg::Es384, Alg::EdDsa, Alg::Rs256, Alg::Ps256])
                    .unwrap(),
                IatWindow::default(),
            );
            let token_request = check_proof(proof, 0, &all_algs, false);
            check_proof(proof, ProofFlags::RESOURCE, &all_algs, false) || token_request
        }
    };
    Verdict::from(accepted)
}

/// Verifies `proof` under the policy `flags`, then checks the invariants.
/// Returns whether it was accepted.
fn check_proof(proof: &str, flags: u8, verifier: &ProofVerifier, by_device_key: bool) -> bool {
    let (htm, htu, token) = if flags & ProofFlags::RESOURCE == 0 {
        ("POST", TOKEN_HTU, None)
    } else {
        ("GET", RESOURCE_HTU, Some(RFC_ACCESS_TOKEN))
    };
    let htu = holdfast_proto::Htu::parse(htu).unwrap();
    let nonces = nonce_issuer();
    let device_jkt = device_key().public_jwk().thumbprint();
    let other_jkt: Jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        .parse()
        .unwrap();
    let check = ProofCheck {
        htm,
        htu: &htu,
        access_token: token,
        bound_jkt: if flags & ProofFlags::BOUND_DEVICE != 0 {
            Some(&device_jkt)
        } else if flags & ProofFlags::BOUND_OTHER != 0 {
            Some(&other_jkt)
        } else {
            None
        },
        nonce: if flags & ProofFlags::NONCE_EXACT != 0 {
            NonceCheck::Exact(EXACT_NONCE)
        } else if flags & ProofFlags::NONCE_ISSUER != 0 {
            NonceCheck::Issuer(&nonces)
        } else {
            NonceCheck::NotRequired
        },
        now: UnixTime::from_secs(NOW),
    };
    let replay = MemoryReplayGuard::new(16);
    let inspection = inspect_proof(proof);
    if let Err(err) = &inspection {
        assert_bounded("inspect_proof", &err.to_string());
    }
    let verified = match verifier.verify(proof, &check, &replay) {
        Ok(verified) => verified,
        Err(err) => {
            // §11.1: the replay guard is consulted last, so a refused proof
            // cannot burn a jti.
            assert!(
                replay.is_empty(),
                "a refused proof ({err:?}) was recorded in the replay guard"
            );
            assert_bounded("ProofError", &err.to_string());
            let _ = err.wire_code();
            return false;
        }
    };
    assert_eq!(replay.len(), 1, "an accepted proof is recorded once");
    if by_device_key {
        assert_eq!(
            *verified.jkt(),
            device_jkt,
            "a proof signed by the device key was accepted as another key's"
        );
    }
    accepted_proof_is_valid(proof, &verified, &check, verifier);
    // The same proof again is a replay, and nothing else.
    assert_eq!(
        verifier.verify(proof, &check, &replay),
        Err(ProofError::JtiReplayed)
    );
    let inspection = inspection.expect("an accepted proof can be inspected");
    assert_eq!(inspection.jkt.as_ref(), Some(verified.jkt()));
    true
}

/// Re-checks an accepted proof from its decoded parts, independently of the
/// verifier's code path.
fn accepted_proof_is_valid(
    proof: &str,
    verified: &VerifiedProof,
    check: &ProofCheck<'_>,
    verifier: &ProofVerifier,
) {
    let jws = CompactJws::parse(proof).expect("an accepted proof parses");
    let header = jws.header();
    assert_eq!(header.typ(), Some("dpop+jwt"));
    let alg = header.alg().expect("an accepted proof has a known alg");
    assert!(verifier.algs().contains(alg), "alg {alg:?} is not allowed");
    let jwk = header.jwk().expect("has a jwk").expect("a valid jwk");
    assert_eq!(jwk, verified.jwk());
    assert_eq!(jwk.thumbprint(), *verified.jkt());
    VerifyingKey::new(jwk, alg)
        .expect("the key fits the alg")
        .verify(jws.signing_input(), jws.signature())
        .expect("the signature verifies");

    let claims: Value = serde_json::from_slice(jws.payload()).expect("claims are JSON");
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    assert_eq!(text("htm"), Some(check.htm), "htm");
    let htu = text("htu").expect("htu");
    assert_eq!(
        holdfast_proto::Htu::parse(htu).ok().as_ref(),
        Some(check.htu),
        "htu {htu:?}"
    );
    let jti = text("jti").expect("jti");
    assert!(!jti.is_empty() && jti.len() <= MAX_JTI_LEN, "jti length");
    assert_eq!(jti, verified.jti());
    let iat = claims.get("iat").and_then(Value::as_u64).expect("iat");
    let window = verifier.window();
    let now = check.now.as_secs();
    assert!(
        iat.saturating_add(window.max_age) >= now && iat <= now + window.max_future,
        "iat {iat} is outside the window at {now}"
    );
    assert_eq!(verified.iat(), UnixTime::from_secs(iat));
    if let Some(token) = check.access_token {
        assert_eq!(text("ath"), Some(ath(token).as_str()), "ath");
    }
    if let Some(bound) = check.bound_jkt {
        assert_eq!(bound, verified.jkt(), "bound key");
    }
    match check.nonce {
        NonceCheck::NotRequired => {}
        NonceCheck::Exact(nonce) => assert_eq!(text("nonce"), Some(nonce)),
        NonceCheck::Issuer(issuer) => {
            let nonce = text("nonce").expect("nonce");
            assert!(issuer.check(nonce, check.now).is_ok(), "nonce {nonce:?}");
        }
    }
}

/// RFC 7517 JWK parsing and RFC 7638 thumbprints.
///
/// The input is JWK JSON text. Invariants for a key that parses: the same
/// text as a JWS header's `jwk` parses to the same key (and a refusal to the
/// same error); its JSON form parses back to it; reordering its members or
/// adding whitespace changes neither the key nor the thumbprint; the
/// thumbprint is the SHA-256 of the RFC 7638 §3 canonical form built from
/// the input's own member values, and parses back as a `Jkt`; building a
/// verifying key from it, for any algorithm, does not panic.
pub fn jwk(data: &[u8]) -> Verdict {
    let Ok(text) = core::str::from_utf8(data) else {
        return Verdict::Refused;
    };
    let parsed = Jwk::from_json(text);
    same_result_in_a_jws_header(text, &parsed);
    let key = match parsed {
        Ok(key) => key,
        Err(err) => {
            assert_bounded("JwkError", &err.to_string());
            return Verdict::Refused;
        }
    };
    let jkt = key.thumbprint();
    assert_eq!(jkt.as_str().len(), 43);
    assert_eq!(jkt.as_str().parse::<Jkt>(), Ok(jkt));
    assert_eq!(
        Jwk::from_json(&key.to_json()).as_ref(),
        Ok(&key),
        "round trip"
    );

    // Member order and whitespace are not part of a key (RFC 7638 §3.3).
    if let Ok(members) = serde_json::from_str::<serde_json::Map<String, Value>>(text) {
        let mut members: Vec<(String, Value)> = members.into_iter().collect();
        assert_eq!(
            Jwk::from_value(Value::Object(members.iter().cloned().collect())).as_ref(),
            Ok(&key),
            "from_value"
        );
        for rotation in 0..members.len().min(4) {
            members.rotate_left(1);
            let reordered = members_text(&members, rotation % 2 == 1);
            let again = Jwk::from_json(&reordered).unwrap_or_else(|e| {
                panic!("reordered JWK {reordered} refused: {e}");
            });
            assert_eq!(again, key, "reordered JWK {reordered}");
            assert_eq!(again.thumbprint(), jkt);
        }
        assert_eq!(jkt.digest(), rfc7638_digest(&members), "RFC 7638 hash");
    }

    for alg in [Alg::Es256, Alg::Es384, Alg::EdDsa, Alg::Rs256, Alg::Ps256] {
        let _ = VerifyingKey::new(&key, alg);
    }
    Verdict::Accepted
}

/// `{"members": …}` as text, in the given order, optionally spread out.
fn members_text(members: &[(String, Value)], spaced: bool) -> String {
    let sep = if spaced { " ,\n\t" } else { "," };
    let body: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::String(name.clone())))
        .collect();
    if spaced {
        format!(" {{ {} }} ", body.join(sep))
    } else {
        format!("{{{}}}", body.join(sep))
    }
}

/// RFC 7638 §3.2: SHA-256 over the required members, sorted, without
/// whitespace, with the values as the input gave them.
fn rfc7638_digest(members: &[(String, Value)]) -> [u8; 32] {
    let get = |name: &str| {
        members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_string())
            .expect("a parsed key has its required members")
    };
    let kty = get("kty");
    let required: &[&str] = match kty.as_str() {
        r#""EC""# => &["crv", "kty", "x", "y"],
        r#""RSA""# => &["e", "kty", "n"],
        r#""OKP""# => &["crv", "kty", "x"],
        other => panic!("a parsed key of kty {other}"),
    };
    let body: Vec<String> = required
        .iter()
        .map(|name| format!(r#""{name}":{}"#, get(name)))
        .collect();
    Sha256::digest(format!("{{{}}}", body.join(",")).as_bytes()).into()
}

/// The key in a JWS header's `jwk` (where proofs carry it) parses the same
/// way as on its own.
fn same_result_in_a_jws_header(text: &str, parsed: &Result<Jwk, JwkError>) {
    if text.len() > 3000 || matches!(parsed, Err(JwkError::Malformed)) {
        // Too long for a header, or not one JSON object: not comparable.
        return;
    }
    let header = format!(r#"{{"alg":"ES256","jwk":{text}}}"#);
    let jws = format!(
        "{}.e30.AAAA",
        Base64UrlUnpadded::encode_string(header.as_bytes())
    );
    match CompactJws::parse(&jws) {
        Ok(jws) => assert_eq!(
            jws.header().jwk(),
            Some(parsed.as_ref()),
            "a JWK in a header parsed differently"
        ),
        Err(JwsError::BadBase64(_)) => {}
        Err(err) => panic!("a JWK that parses made its header fail: {err}"),
    }
}

/// The fixed issuer's one key.
struct FixedIssuer(Arc<VerifyingKey>);

impl IssuerKeys for FixedIssuer {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        (kid == ISSUER_KID).then(|| self.0.clone())
    }
}

/// RFC 9068 access-token verification with a fixed issuer key.
///
/// The input is a token; or [`SIGNED`] and a claims set, signed by the
/// issuer key with the usual header (`at+jwt`, ES256, its `kid`); or
/// [`SIGNED_HEADER`] and `header '\n' claims`, signed by the issuer key.
///
/// Invariants: a refusal's message is bounded; an accepted token has the
/// issuer's `kid` and `alg` and an `at+jwt` `typ`, names the issuer and the
/// audience, is inside its validity period, and its claims survive a JSON
/// round trip unchanged.
pub fn access_token(data: &[u8]) -> Verdict {
    let token = match data.split_first() {
        Some((&SIGNED, claims)) => {
            let header = format!(r#"{{"typ":"at+jwt","alg":"ES256","kid":"{ISSUER_KID}"}}"#);
            sign_compact(issuer_key(), header.as_bytes(), claims)
        }
        Some((&SIGNED_HEADER, rest)) => {
            let (header, claims) = header_and_payload(rest);
            sign_compact(issuer_key(), header, claims)
        }
        _ => match core::str::from_utf8(data) {
            Ok(token) => token.to_owned(),
            Err(_) => return Verdict::Refused,
        },
    };
    let keys = FixedIssuer(Arc::new(
        VerifyingKey::new(issuer_key().public_jwk(), Alg::Es256).unwrap(),
    ));
    let audiences = [AUDIENCE.to_owned()];
    let check = TokenCheck {
        issuer: ISSUER,
        audiences: &audiences,
        now: UnixTime::from_secs(NOW),
        leeway: LEEWAY,
    };
    let claims = match verify_access_token(&token, &keys, &check) {
        Ok(claims) => claims,
        Err(err) => {
            assert_bounded("TokenError", &err.to_string());
            let _ = (err.wire_code(), err.check());
            return Verdict::Refused;
        }
    };
    let jws = CompactJws::parse(&token).expect("an accepted token parses");
    let header = jws.header();
    assert!(matches!(
        header.typ(),
        Some("at+jwt" | "application/at+jwt")
    ));
    assert_eq!(header.kid(), Some(ISSUER_KID));
    assert_eq!(header.alg(), Ok(Alg::Es256));
    assert_eq!(claims.iss, ISSUER);
    assert!(claims.aud.contains(AUDIENCE));
    assert!(
        claims.exp.as_secs().saturating_add(LEEWAY) > NOW,
        "expired token accepted"
    );
    if let Some(nbf) = claims.nbf {
        assert!(nbf.as_secs() <= NOW + LEEWAY, "token used before nbf");
    }
    let json = serde_json::to_string(&claims).unwrap();
    let again: AccessTokenClaims = serde_json::from_str(&json).unwrap();
    assert_eq!(again, claims, "claims round trip");
    Verdict::Accepted
}
