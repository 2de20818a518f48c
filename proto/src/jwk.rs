//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037 §2), public keys only.
//!
//! Parsing refuses anything that is not a public asymmetric key: private
//! members (`d`, RSA `p q dp dq qi oth`), symmetric keys (`kty: oct`), unknown
//! key types and malformed coordinates. A [`Jwk`] therefore cannot carry a
//! secret, and a proof whose header leaks one is refused (RFC 9449 §4.3 step 7).

use core::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::b64;

/// Largest RSA modulus accepted: 8192 bits.
const MAX_RSA_MODULUS_BYTES: usize = 1024;
/// Largest RSA public exponent accepted.
const MAX_RSA_EXPONENT_BYTES: usize = 8;

/// A public JSON Web Key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jwk {
    /// `kty: EC` — the type of every Holdfast device key (P-256).
    Ec(EcPublicJwk),
    /// `kty: RSA`.
    Rsa(RsaPublicJwk),
    /// `kty: OKP` (RFC 8037).
    Okp(OkpPublicJwk),
}

/// An elliptic-curve public key: curve and affine coordinates.
#[derive(Clone, PartialEq, Eq)]
pub struct EcPublicJwk {
    crv: EcCurve,
    x: Box<[u8]>,
    y: Box<[u8]>,
}

/// An RSA public key: modulus and exponent, kept as their base64url text
/// (RFC 7638 hashes the members as they appear).
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicJwk {
    n: String,
    e: String,
}

/// An octet key pair public key (RFC 8037): Ed25519.
#[derive(Clone, PartialEq, Eq)]
pub struct OkpPublicJwk {
    crv: OkpCurve,
    x: Box<[u8]>,
}

/// Curves of `kty: EC` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

/// Curves of `kty: OKP` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OkpCurve {
    /// Ed25519 (RFC 8037).
    Ed25519,
}

impl EcCurve {
    /// The JWK `crv` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// Length of one coordinate in bytes (RFC 7518 §6.2.1.2).
    pub const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }
}

impl OkpCurve {
    /// The JWK `crv` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
        }
    }
}

impl Jwk {
    /// Parses a JWK from JSON text.
    ///
    /// # Errors
    /// A [`JwkError`] naming the first problem found.
    pub fn from_json(json: &str) -> Result<Self, JwkError> {
        let raw: RawJwk = serde_json::from_str(json).map_err(|_| JwkError::Malformed)?;
        raw.try_into()
    }

    /// Parses a JWK from an already-decoded JSON value (a JWS header member).
    ///
    /// # Errors
    /// As [`Jwk::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<Self, JwkError> {
        let raw: RawJwk = serde_json::from_value(value).map_err(|_| JwkError::Malformed)?;
        raw.try_into()
    }

    /// A P-256 key from its affine coordinates.
    pub fn p256(x: [u8; 32], y: [u8; 32]) -> Self {
        Self::Ec(EcPublicJwk {
            crv: EcCurve::P256,
            x: Box::new(x),
            y: Box::new(y),
        })
    }

    /// The JWK as JSON text with only its public, required members.
    pub fn to_json(&self) -> String {
        // Serializing a map of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The `kty` name.
    pub const fn kty(&self) -> &'static str {
        match self {
            Self::Ec(_) => "EC",
            Self::Rsa(_) => "RSA",
            Self::Okp(_) => "OKP",
        }
    }
}

impl EcPublicJwk {
    /// The curve.
    pub const fn crv(&self) -> EcCurve {
        self.crv
    }

    /// The x coordinate, big-endian, exactly `crv.coordinate_len()` bytes.
    pub fn x(&self) -> &[u8] {
        &self.x
    }

    /// The y coordinate, big-endian, exactly `crv.coordinate_len()` bytes.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// The SEC 1 uncompressed point `04 ‖ x ‖ y`.
    pub fn sec1_uncompressed(&self) -> Vec<u8> {
        let mut point = Vec::with_capacity(1 + self.x.len() + self.y.len());
        point.push(0x04);
        point.extend_from_slice(&self.x);
        point.extend_from_slice(&self.y);
        point
    }
}

impl RsaPublicJwk {
    /// The modulus as base64url text.
    pub fn n(&self) -> &str {
        &self.n
    }

    /// The public exponent as base64url text.
    pub fn e(&self) -> &str {
        &self.e
    }
}

impl OkpPublicJwk {
    /// The curve.
    pub const fn crv(&self) -> OkpCurve {
        self.crv
    }

    /// The public key bytes.
    pub fn x(&self) -> &[u8] {
        &self.x
    }
}

/// Why a JWK was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// Not a JSON object with string members where strings are required, or
    /// a member appears twice.
    #[error("the JWK is not a well-formed JSON object")]
    Malformed,
    /// The JWK carries a private key member.
    #[error("the JWK contains the private key member `{0}`")]
    HasPrivateKey(&'static str),
    /// `kty: oct`: a shared secret, never acceptable.
    #[error("the JWK is a symmetric key (kty \"oct\")")]
    Symmetric,
    /// A `kty` this crate does not know.
    #[error("unsupported JWK key type")]
    UnsupportedKty,
    /// A `crv` this crate does not know for the key type.
    #[error("unsupported JWK curve")]
    UnsupportedCurve,
    /// A required member is absent.
    #[error("the JWK has no `{0}` member")]
    MissingMember(&'static str),
    /// A member is not base64url of the right length.
    #[error("the JWK member `{0}` is not valid base64url of the right length")]
    BadMember(&'static str),
    /// Well-formed, but not a valid public key (e.g. a point not on the curve).
    #[error("the JWK is not a valid public key")]
    InvalidPublicKey,
}

/// The wire shape: every member this crate reads or must refuse. Unknown
/// members (`kid`, `use`, `alg`, …) are ignored as RFC 7517 §4 requires.
#[derive(Deserialize)]
pub(crate) struct RawJwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    // Private members: their presence alone is a refusal.
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    oth: Option<IgnoredAny>,
    k: Option<IgnoredAny>,
}

impl TryFrom<RawJwk> for Jwk {
    type Error = JwkError;

    fn try_from(raw: RawJwk) -> Result<Self, JwkError> {
        if raw.kty == "oct" || raw.k.is_some() {
            return Err(JwkError::Symmetric);
        }
        let private = [
            ("d", raw.d.is_some()),
            ("p", raw.p.is_some()),
            ("q", raw.q.is_some()),
            ("dp", raw.dp.is_some()),
            ("dq", raw.dq.is_some()),
            ("qi", raw.qi.is_some()),
            ("oth", raw.oth.is_some()),
        ];
        if let Some((member, _)) = private.iter().find(|(_, present)| *present) {
            return Err(JwkError::HasPrivateKey(member));
        }
        match raw.kty.as_str() {
            "EC" => {
                let crv = raw.crv.ok_or(JwkError::MissingMember("crv"))?;
                let crv = EcCurve::from_name(&crv).ok_or(JwkError::UnsupportedCurve)?;
                let x = coordinate(raw.x, "x", crv.coordinate_len())?;
                let y = coordinate(raw.y, "y", crv.coordinate_len())?;
                Ok(Self::Ec(EcPublicJwk { crv, x, y }))
            }
            "RSA" => {
                let n = raw.n.ok_or(JwkError::MissingMember("n"))?;
                let e = raw.e.ok_or(JwkError::MissingMember("e"))?;
                if !b64::is_valid(&n, MAX_RSA_MODULUS_BYTES) || n.is_empty() {
                    return Err(JwkError::BadMember("n"));
                }
                if !b64::is_valid(&e, MAX_RSA_EXPONENT_BYTES) || e.is_empty() {
                    return Err(JwkError::BadMember("e"));
                }
                Ok(Self::Rsa(RsaPublicJwk { n, e }))
            }
            "OKP" => {
                let crv = raw.crv.ok_or(JwkError::MissingMember("crv"))?;
                if crv != "Ed25519" {
                    return Err(JwkError::UnsupportedCurve);
                }
                let x = coordinate(raw.x, "x", 32)?;
                Ok(Self::Okp(OkpPublicJwk {
                    crv: OkpCurve::Ed25519,
                    x,
                }))
            }
            _ => Err(JwkError::UnsupportedKty),
        }
    }
}

fn coordinate(
    value: Option<String>,
    member: &'static str,
    len: usize,
) -> Result<Box<[u8]>, JwkError> {
    let value = value.ok_or(JwkError::MissingMember(member))?;
    match b64::decode(&value, len) {
        Some(bytes) if bytes.len() == len => Ok(bytes.into_boxed_slice()),
        _ => Err(JwkError::BadMember(member)),
    }
}

impl Serialize for Jwk {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self {
            Self::Ec(key) => {
                map.serialize_entry("kty", "EC")?;
                map.serialize_entry("crv", key.crv.name())?;
                map.serialize_entry("x", &b64::encode(&key.x))?;
                map.serialize_entry("y", &b64::encode(&key.y))?;
            }
            Self::Rsa(key) => {
                map.serialize_entry("kty", "RSA")?;
                map.serialize_entry("n", &key.n)?;
                map.serialize_entry("e", &key.e)?;
            }
            Self::Okp(key) => {
                map.serialize_entry("kty", "OKP")?;
                map.serialize_entry("crv", key.crv.name())?;
                map.serialize_entry("x", &b64::encode(&key.x))?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawJwk::deserialize(deserializer)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl fmt::Debug for EcPublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcPublicJwk")
            .field("crv", &self.crv)
            .field("x", &b64::encode(&self.x))
            .field("y", &b64::encode(&self.y))
            .finish()
    }
}

impl fmt::Debug for RsaPublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicJwk")
            .field("n", &self.n)
            .field("e", &self.e)
            .finish()
    }
}

impl fmt::Debug for OkpPublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OkpPublicJwk")
            .field("crv", &self.crv)
            .field("x", &b64::encode(&self.x))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;

    #[test]
    fn parses_p256_and_round_trips() {
        let jwk = Jwk::from_json(P256).unwrap();
        let Jwk::Ec(ec) = &jwk else { panic!("not EC") };
        assert_eq!(ec.crv(), EcCurve::P256);
        assert_eq!(Jwk::from_json(&jwk.to_json()).unwrap(), jwk);
    }

    #[test]
    fn ignores_unknown_members() {
        let json = P256.replace("\"kty\"", "\"kid\":\"k1\",\"use\":\"sig\",\"kty\"");
        assert!(Jwk::from_json(&json).is_ok());
    }

    #[test]
    fn rejects_jwk_with_private_key() {
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            let json = P256.replace("\"kty\"", &format!("\"{member}\":\"AQAB\",\"kty\""));
            assert_eq!(
                Jwk::from_json(&json),
                Err(JwkError::HasPrivateKey(member)),
                "{member}"
            );
        }
    }

    #[test]
    fn rejects_symmetric_key() {
        assert_eq!(
            Jwk::from_json(r#"{"kty":"oct","k":"c2VjcmV0"}"#),
            Err(JwkError::Symmetric)
        );
    }

    #[test]
    fn rejects_duplicate_members() {
        let json = P256.replace("\"kty\":\"EC\"", "\"kty\":\"EC\",\"kty\":\"EC\"");
        assert_eq!(Jwk::from_json(&json), Err(JwkError::Malformed));
    }

    #[test]
    fn rejects_bad_coordinates_and_curves() {
        let short = P256.replace("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", "l8tF");
        assert_eq!(Jwk::from_json(&short), Err(JwkError::BadMember("x")));
        let padded = P256.replace("BFs\"", "BFs=\"");
        assert_eq!(Jwk::from_json(&padded), Err(JwkError::BadMember("x")));
        let curve = P256.replace("P-256", "secp256k1");
        assert_eq!(Jwk::from_json(&curve), Err(JwkError::UnsupportedCurve));
        let no_y =
            r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"}"#;
        assert_eq!(Jwk::from_json(no_y), Err(JwkError::MissingMember("y")));
        assert_eq!(
            Jwk::from_json(r#"{"kty":"XYZ"}"#),
            Err(JwkError::UnsupportedKty)
        );
        assert_eq!(Jwk::from_json("[]"), Err(JwkError::Malformed));
    }
}
