//! JWT claim sets: the DPoP proof (RFC 9449 §4.2) and the DPoP-bound access
//! token (RFC 9068 §2.2, RFC 9449 §6.1).

use serde::{Deserialize, Serialize};

use crate::error::TokenError;
use crate::ip_binding::IpBindingClaim;
use crate::thumbprint::Jkt;
use crate::time::UnixTime;

/// The claims of a DPoP proof, as sent. Every member is optional here so a
/// missing one is reported by name (`MissingClaim("htu")`), not as a parse
/// error.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct ProofClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) htm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) htu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<String>,
}

/// The claims of a Holdfast access token (`typ: at+jwt`, RFC 9068).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the principal.
    pub sub: String,
    /// Audience: the resource servers the token is for.
    pub aud: Audience,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    /// Token identifier.
    pub jti: String,
    /// The OAuth client: the device.
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Session identifier, shared by the access and refresh tokens of one session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Confirmation: the key the token is bound to (RFC 9449 §6.1).
    pub cnf: Confirmation,
    /// Authentication methods (RFC 8176), e.g. `["hwk", "pop"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The session's IP binding (Holdfast's `ipb`): absent when the
    /// session's policy is `off`, and in tokens minted before the claim
    /// existed, which therefore parse as unbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipb: Option<IpBindingClaim>,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// True if `aud` names `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// `cnf` (RFC 7800) carrying the DPoP key thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The SHA-256 thumbprint of the DPoP key (RFC 9449 §6.1).
    pub jkt: Jkt,
}

/// What an access token's claims are checked against.
#[derive(Debug, Clone)]
pub struct TokenCheck<'a> {
    /// The expected `iss`.
    pub issuer: &'a str,
    /// Acceptable audiences: `aud` must name at least one.
    pub audiences: &'a [String],
    /// The verifier's time.
    pub now: UnixTime,
    /// Allowed clock difference for `exp` and `nbf`, in seconds.
    pub leeway: u64,
}

impl AccessTokenClaims {
    /// Checks issuer, audience and validity period.
    ///
    /// # Errors
    /// The first failed check as a [`TokenError`].
    pub fn check(&self, check: &TokenCheck<'_>) -> Result<(), TokenError> {
        if self.iss != check.issuer {
            return Err(TokenError::IssuerMismatch);
        }
        if !check.audiences.iter().any(|a| self.aud.contains(a)) {
            return Err(TokenError::AudienceMismatch);
        }
        if check.now.minus(check.leeway) >= self.exp {
            return Err(TokenError::Expired {
                exp: self.exp,
                now: check.now,
            });
        }
        if let Some(nbf) = self.nbf
            && check.now.plus(check.leeway) < nbf
        {
            return Err(TokenError::NotYetValid {
                nbf,
                now: check.now,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        serde_json::from_str(
            r#"{"iss":"https://issuer.example","sub":"alice","aud":["api"],"exp":1000,"iat":900,
               "nbf":900,"jti":"t1","client_id":"dev1","sid":"s1","scope":"read",
               "cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},"amr":["hwk","pop"]}"#,
        )
        .unwrap()
    }

    fn check(now: u64) -> TokenCheck<'static> {
        TokenCheck {
            issuer: "https://issuer.example",
            audiences: Box::leak(vec!["other".to_owned(), "api".to_owned()].into_boxed_slice()),
            now: UnixTime::from_secs(now),
            leeway: 5,
        }
    }

    #[test]
    fn accepts_valid_claims() {
        assert_eq!(claims().check(&check(950)), Ok(()));
    }

    #[test]
    fn rejects_expired_token() {
        assert_eq!(
            claims().check(&check(1005)),
            Err(TokenError::Expired {
                exp: UnixTime::from_secs(1000),
                now: UnixTime::from_secs(1005)
            })
        );
        assert_eq!(claims().check(&check(1004)), Ok(()));
    }

    #[test]
    fn rejects_token_before_nbf() {
        assert!(matches!(
            claims().check(&check(894)),
            Err(TokenError::NotYetValid { .. })
        ));
    }

    #[test]
    fn rejects_wrong_issuer_and_audience() {
        let mut other = check(950);
        other.issuer = "https://evil.example";
        assert_eq!(claims().check(&other), Err(TokenError::IssuerMismatch));
        let mut other = check(950);
        let audiences = ["other".to_owned(), "another".to_owned()];
        other.audiences = &audiences;
        assert_eq!(claims().check(&other), Err(TokenError::AudienceMismatch));
    }

    #[test]
    fn parses_claims_without_ipb_as_unbound_and_round_trips_ipb() {
        // Tokens minted before the claim existed have no `ipb`.
        assert_eq!(claims().ipb, None);
        let mut bound = claims();
        bound.ipb = crate::IpBindingClaim::new(
            crate::IpBinding::SamePrefix,
            Some("192.0.2.1".parse().unwrap()),
            24,
            56,
        );
        let json = serde_json::to_value(&bound).unwrap();
        assert_eq!(
            json["ipb"],
            serde_json::json!({"mode": "same-prefix", "ip": "192.0.2.1", "v4_prefix": 24, "v6_prefix": 56})
        );
        // `Jkt` borrows while parsing: from text, as tokens are.
        let text = json.to_string();
        assert_eq!(
            serde_json::from_str::<AccessTokenClaims>(&text).unwrap(),
            bound
        );
        assert!(serde_json::to_value(claims()).unwrap().get("ipb").is_none());
    }

    #[test]
    fn refuses_claims_without_cnf_jkt() {
        let json = r#"{"iss":"i","sub":"s","aud":"a","exp":1,"iat":1,"jti":"j","client_id":"c"}"#;
        assert!(serde_json::from_str::<AccessTokenClaims>(json).is_err());
        let bad_jkt = r#"{"iss":"i","sub":"s","aud":"a","exp":1,"iat":1,"jti":"j","client_id":"c","cnf":{"jkt":"short"}}"#;
        assert!(serde_json::from_str::<AccessTokenClaims>(bad_jkt).is_err());
    }
}
