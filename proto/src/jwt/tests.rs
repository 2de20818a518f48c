use std::collections::HashMap;

use super::*;
use crate::claims::{Audience, Confirmation};
use crate::client_assertion::{
    AssertionCheck, AssertionError, assertion_client_id, verify_client_assertion,
};
use crate::test_key::TestKey;
use crate::time::UnixTime;

const NOW: u64 = 1_700_000_000;

struct Keys(HashMap<String, Arc<VerifyingKey>>);

impl IssuerKeys for Keys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.0.get(kid).cloned()
    }
}

fn issuer() -> (TestKey, Keys) {
    let key = TestKey::new();
    let vk = Arc::new(VerifyingKey::new(&key.jwk, Alg::Es256).unwrap());
    (key, Keys(HashMap::from([("k1".to_owned(), vk)])))
}

fn claims() -> AccessTokenClaims {
    AccessTokenClaims {
        iss: "https://issuer.example".into(),
        sub: "alice".into(),
        aud: Audience::One("api".into()),
        exp: UnixTime::from_secs(NOW + 300),
        iat: UnixTime::from_secs(NOW),
        nbf: None,
        jti: "t1".into(),
        client_id: "dev-1".into(),
        scope: None,
        sid: Some("s1".into()),
        cnf: Confirmation {
            jkt: TestKey::new().jwk.thumbprint(),
        },
        amr: vec!["hwk".into()],
        ipb: None,
    }
}

fn check() -> TokenCheck<'static> {
    TokenCheck {
        issuer: "https://issuer.example",
        audiences: Box::leak(vec!["api".to_owned()].into_boxed_slice()),
        now: UnixTime::from_secs(NOW + 10),
        leeway: 5,
    }
}

fn header(kid: &str) -> JwtHeader<'_> {
    JwtHeader {
        typ: ACCESS_TOKEN_TYP,
        kid: Some(kid),
        jwk: None,
    }
}

#[test]
fn signed_access_token_verifies() {
    let (key, keys) = issuer();
    let claims = claims();
    let token = sign_jwt(&key, &header("k1"), &claims).unwrap();
    assert_eq!(
        verify_access_token(&token, &keys, &check()).unwrap(),
        claims
    );
}

#[test]
fn rejects_token_signed_by_unknown_key() {
    let (_, keys) = issuer();
    let forger = TestKey::new();
    let token = sign_jwt(&forger, &header("k2"), &claims()).unwrap();
    assert_eq!(
        verify_access_token(&token, &keys, &check()),
        Err(TokenError::UnknownKey { kid: "k2".into() })
    );
    // Claiming a known kid does not help.
    let token = sign_jwt(&forger, &header("k1"), &claims()).unwrap();
    assert_eq!(
        verify_access_token(&token, &keys, &check()),
        Err(TokenError::InvalidSignature)
    );
}

#[test]
fn rejects_token_with_wrong_typ() {
    let (key, keys) = issuer();
    let mut h = header("k1");
    h.typ = "JWT";
    let token = sign_jwt(&key, &h, &claims()).unwrap();
    assert_eq!(
        verify_access_token(&token, &keys, &check()),
        Err(TokenError::TypMismatch)
    );
}

#[test]
fn rejects_expired_token() {
    let (key, keys) = issuer();
    let token = sign_jwt(&key, &header("k1"), &claims()).unwrap();
    let mut late = check();
    late.now = UnixTime::from_secs(NOW + 306);
    assert!(matches!(
        verify_access_token(&token, &keys, &late),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn rejects_alg_none_token() {
    let (key, keys) = issuer();
    let token = sign_jwt(&key, &header("k1"), &claims()).unwrap();
    let (_, rest) = token.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let none = format!(
        "{}.{payload}.",
        crate::b64::encode(br#"{"typ":"at+jwt","alg":"none","kid":"k1"}"#)
    );
    assert_eq!(
        verify_access_token(&none, &keys, &check()),
        Err(TokenError::InvalidSignature)
    );
}

fn assertion(key: &TestKey, claims: serde_json::Value) -> String {
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT"});
    key.sign_raw(&header, &claims)
}

fn assertion_claims() -> serde_json::Value {
    serde_json::json!({"iss": "dev-1", "sub": "dev-1", "aud": "https://issuer.example/token",
        "exp": NOW + 60, "jti": "a-1"})
}

fn assertion_check() -> AssertionCheck<'static> {
    AssertionCheck {
        audiences: &["https://issuer.example/token", "https://issuer.example"],
        now: UnixTime::from_secs(NOW),
        max_lifetime: 300,
        leeway: 5,
    }
}

#[test]
fn client_assertion_verifies() {
    let key = TestKey::new();
    let jwt = assertion(&key, assertion_claims());
    assert_eq!(assertion_client_id(&jwt).unwrap(), "dev-1");
    let verified = verify_client_assertion(&jwt, &key.jwk, &assertion_check()).unwrap();
    assert_eq!(verified.client_id(), "dev-1");
    assert_eq!(verified.jti(), "a-1");
}

#[test]
fn client_assertion_refusals() {
    let key = TestKey::new();
    let other = TestKey::new();
    let check = assertion_check();
    let refuse = |claims: serde_json::Value| {
        verify_client_assertion(&assertion(&key, claims), &key.jwk, &check)
    };

    assert_eq!(
        verify_client_assertion(&assertion(&other, assertion_claims()), &key.jwk, &check),
        Err(AssertionError::InvalidSignature)
    );
    let mut c = assertion_claims();
    c["iss"] = "dev-2".into();
    assert_eq!(refuse(c), Err(AssertionError::IssSubMismatch));
    let mut c = assertion_claims();
    c["aud"] = "https://elsewhere.example/token".into();
    assert_eq!(refuse(c), Err(AssertionError::AudienceMismatch));
    let mut c = assertion_claims();
    c["exp"] = (NOW - 10).into();
    assert!(matches!(refuse(c), Err(AssertionError::Expired { .. })));
    let mut c = assertion_claims();
    c["exp"] = (NOW + 3600).into();
    assert_eq!(refuse(c), Err(AssertionError::LifetimeTooLong { max: 300 }));
    let mut c = assertion_claims();
    c.as_object_mut().unwrap().remove("jti");
    assert_eq!(refuse(c), Err(AssertionError::MalformedClaims));
    let mut c = assertion_claims();
    c["nbf"] = (NOW + 100).into();
    assert_eq!(refuse(c), Err(AssertionError::NotYetValid));
    let hs = key.sign_raw(&serde_json::json!({"alg": "HS256"}), &assertion_claims());
    assert_eq!(
        verify_client_assertion(&hs, &key.jwk, &check),
        Err(AssertionError::AlgNotAllowed)
    );
}
