//! Strict RFC 7515 compact JWS parsing: exactly three base64url parts, a
//! typed header, and size limits checked before anything is decoded.

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::alg::Alg;
use crate::b64;
use crate::jwk::{Jwk, JwkError, RawJwk};

/// Longest compact JWS accepted, in bytes. A DPoP proof with an RSA-4096
/// `jwk` is under 3 KiB; access tokens are smaller still.
pub const MAX_JWS_LEN: usize = 8 * 1024;
/// Longest decoded header accepted.
const MAX_HEADER_LEN: usize = 4 * 1024;
/// Longest decoded payload accepted.
const MAX_PAYLOAD_LEN: usize = 4 * 1024;
/// Longest signature accepted (RSA-8192).
const MAX_SIGNATURE_LEN: usize = 1024;
/// Longest string kept from an attacker's input for an error message.
pub(crate) const MAX_ECHO_LEN: usize = 64;

/// A compact JWS split once into typed, decoded parts.
#[derive(Debug)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    header: JwsHeader,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// The protected header members Holdfast reads.
#[derive(Debug)]
pub struct JwsHeader {
    alg: Result<Alg, String>,
    typ: Option<String>,
    jwk: Option<Result<Jwk, JwkError>>,
    kid: Option<String>,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes `input`.
    ///
    /// # Errors
    /// A [`JwsError`] naming the structural problem. Nothing here checks the
    /// signature or the meaning of any member.
    pub fn parse(input: &'a str) -> Result<Self, JwsError> {
        if input.len() > MAX_JWS_LEN {
            return Err(JwsError::TooLong);
        }
        let mut parts = input.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::NotThreeParts);
        };
        let signing_input = input
            .get(..header.len() + 1 + payload.len())
            .ok_or(JwsError::NotThreeParts)?;

        let header_json =
            b64::decode(header, MAX_HEADER_LEN).ok_or(JwsError::BadBase64("header"))?;
        let payload =
            b64::decode(payload, MAX_PAYLOAD_LEN).ok_or(JwsError::BadBase64("payload"))?;
        let signature =
            b64::decode(signature, MAX_SIGNATURE_LEN).ok_or(JwsError::BadBase64("signature"))?;

        let raw: RawHeader =
            serde_json::from_slice(&header_json).map_err(|_| JwsError::BadHeader)?;
        if raw.crit.is_some() {
            // RFC 7515 §4.1.11: we understand no extension, so we must refuse.
            return Err(JwsError::CritUnsupported);
        }
        let header = JwsHeader {
            alg: Alg::from_name(&raw.alg).ok_or_else(|| truncate(&raw.alg)),
            typ: raw.typ,
            jwk: raw.jwk.map(Jwk::try_from),
            kid: raw.kid,
        };
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// The bytes the signature covers: `BASE64URL(header) '.' BASE64URL(payload)`.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded protected header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The decoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

impl JwsHeader {
    /// `alg`: a known algorithm, or the (truncated) unknown name.
    pub fn alg(&self) -> Result<Alg, &str> {
        self.alg.as_ref().copied().map_err(String::as_str)
    }

    /// `typ`, if present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// `jwk`, if present: the parsed key, or why it was refused.
    pub fn jwk(&self) -> Option<Result<&Jwk, &JwkError>> {
        self.jwk.as_ref().map(Result::as_ref)
    }

    /// `kid`, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// Why a compact JWS could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Longer than [`MAX_JWS_LEN`].
    #[error("longer than {MAX_JWS_LEN} bytes")]
    TooLong,
    /// Not exactly three dot-separated parts.
    #[error("not exactly three dot-separated parts")]
    NotThreeParts,
    /// A part is not base64url without padding, or is too large.
    #[error("the {0} is not base64url without padding of an acceptable size")]
    BadBase64(&'static str),
    /// The header is not a JSON object with the expected member types, or a
    /// member appears twice.
    #[error("the header is not a well-formed JSON object")]
    BadHeader,
    /// The header has a `crit` member.
    #[error("the header has a `crit` member, and no extension is supported")]
    CritUnsupported,
}

/// The header members read or refused; others are ignored. A duplicate of
/// any of these members is refused by serde; duplicates of ignored members
/// are not looked at (they change nothing this crate reads).
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    typ: Option<String>,
    jwk: Option<RawJwk>,
    kid: Option<String>,
    crit: Option<IgnoredAny>,
}

/// Cuts attacker-supplied text to a length safe to echo in errors and logs.
pub(crate) fn truncate(s: &str) -> String {
    let mut end = s.len().min(MAX_ECHO_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jws(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.AAAA",
            b64::encode(header.as_bytes()),
            b64::encode(payload.as_bytes())
        )
    }

    #[test]
    fn parses_three_parts() {
        let token = jws(r#"{"alg":"ES256","typ":"dpop+jwt","kid":"k"}"#, "{}");
        let parsed = CompactJws::parse(&token).unwrap();
        assert_eq!(parsed.header().alg(), Ok(Alg::Es256));
        assert_eq!(parsed.header().typ(), Some("dpop+jwt"));
        assert_eq!(parsed.header().kid(), Some("k"));
        assert_eq!(parsed.payload(), b"{}");
        assert_eq!(parsed.signature(), [0, 0, 0]);
        assert!(token.as_bytes().starts_with(parsed.signing_input()));
    }

    #[test]
    fn rejects_wrong_number_of_parts() {
        for input in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert_eq!(
                CompactJws::parse(input).unwrap_err(),
                JwsError::NotThreeParts,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_oversized_input() {
        let big = format!("{}.e30.AAAA", "A".repeat(MAX_JWS_LEN));
        assert_eq!(CompactJws::parse(&big).unwrap_err(), JwsError::TooLong);
        let header = format!(r#"{{"alg":"ES256","x":"{}"}}"#, "a".repeat(MAX_HEADER_LEN));
        assert_eq!(
            CompactJws::parse(&jws(&header, "{}")).unwrap_err(),
            JwsError::BadBase64("header")
        );
    }

    #[test]
    fn rejects_padding_and_bad_json() {
        let token = jws(r#"{"alg":"ES256"}"#, "{}");
        let padded = token.replacen('.', "=.", 1);
        assert!(CompactJws::parse(&padded).is_err());
        assert_eq!(
            CompactJws::parse(&jws("[]", "{}")).unwrap_err(),
            JwsError::BadHeader
        );
        assert_eq!(
            CompactJws::parse(&jws(r#"{"alg":"ES256","alg":"none"}"#, "{}")).unwrap_err(),
            JwsError::BadHeader
        );
        assert_eq!(
            CompactJws::parse(&jws(r#"{"alg":1}"#, "{}")).unwrap_err(),
            JwsError::BadHeader
        );
    }

    #[test]
    fn rejects_crit() {
        let token = jws(r#"{"alg":"ES256","crit":["b64"],"b64":false}"#, "{}");
        assert_eq!(
            CompactJws::parse(&token).unwrap_err(),
            JwsError::CritUnsupported
        );
    }

    #[test]
    fn keeps_unknown_alg_truncated() {
        let name = "X".repeat(500);
        let token = jws(&format!(r#"{{"alg":"{name}"}}"#), "{}");
        let parsed = CompactJws::parse(&token).unwrap();
        assert_eq!(parsed.header().alg().unwrap_err().len(), MAX_ECHO_LEN);
    }
}
