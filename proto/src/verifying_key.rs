//! Signature verification on the fast path (aws-lc-rs), with parsed keys
//! cached by thumbprint: importing a key costs more than a verification.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};

use crate::alg::Alg;
use crate::b64;
use crate::jwk::{EcCurve, Jwk, OkpCurve};
use crate::thumbprint::Jkt;

/// A public key ready to verify signatures of one algorithm.
pub struct VerifyingKey {
    alg: Alg,
    key: ParsedPublicKey,
}

/// Why a JWK cannot verify signatures of an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key type or curve does not fit the algorithm (e.g. `ES256` with a
    /// P-384 key).
    #[error("the key does not fit the algorithm {0}")]
    AlgKeyMismatch(Alg),
    /// The key's bytes are not a valid public key (e.g. a point not on the curve).
    #[error("the key is not a valid public key")]
    InvalidKey,
}

/// A signature that does not verify. It carries nothing on purpose: the
/// reason a signature fails is of no use to a caller and of use to an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct BadSignature;

impl VerifyingKey {
    /// Prepares `jwk` to verify `alg` signatures.
    ///
    /// # Errors
    /// [`KeyError::AlgKeyMismatch`] when the key cannot be used with `alg`;
    /// [`KeyError::InvalidKey`] when its bytes are not a public key.
    pub fn new(jwk: &Jwk, alg: Alg) -> Result<Self, KeyError> {
        let (algorithm, bytes): (&'static dyn VerificationAlgorithm, Vec<u8>) = match (alg, jwk) {
            (Alg::Es256, Jwk::Ec(ec)) if ec.crv() == EcCurve::P256 => {
                (&signature::ECDSA_P256_SHA256_FIXED, ec.sec1_uncompressed())
            }
            (Alg::Es384, Jwk::Ec(ec)) if ec.crv() == EcCurve::P384 => {
                (&signature::ECDSA_P384_SHA384_FIXED, ec.sec1_uncompressed())
            }
            (Alg::EdDsa, Jwk::Okp(okp)) if okp.crv() == OkpCurve::Ed25519 => {
                (&signature::ED25519, okp.x().to_vec())
            }
            (Alg::Rs256, Jwk::Rsa(rsa)) => (
                &signature::RSA_PKCS1_2048_8192_SHA256,
                rsa_public_key_der(rsa.n(), rsa.e()).ok_or(KeyError::InvalidKey)?,
            ),
            (Alg::Ps256, Jwk::Rsa(rsa)) => (
                &signature::RSA_PSS_2048_8192_SHA256,
                rsa_public_key_der(rsa.n(), rsa.e()).ok_or(KeyError::InvalidKey)?,
            ),
            _ => return Err(KeyError::AlgKeyMismatch(alg)),
        };
        let key = ParsedPublicKey::new(algorithm, bytes).map_err(|_| KeyError::InvalidKey)?;
        Ok(Self { alg, key })
    }

    /// The algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Verifies a JWS signature (`r ‖ s` for ECDSA, RFC 7518 §3.4). High-S
    /// ECDSA signatures are valid JWS and are accepted; nothing here depends
    /// on a signature's uniqueness (the replay key is built from the `jti`).
    ///
    /// # Errors
    /// [`BadSignature`] if it does not verify.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        self.key
            .verify_sig(message, signature)
            .map_err(|_| BadSignature)
    }
}

impl core::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Parsed verifying keys by `(jkt, alg)`, bounded.
///
/// When full it is emptied rather than evicting one entry at a time: this is
/// a cache, every entry can be rebuilt, and a flood of fresh keys (each one
/// costing the sender a signature) must not grow memory.
#[derive(Debug)]
pub struct KeyCache {
    keys: RwLock<HashMap<(Jkt, Alg), Arc<VerifyingKey>>>,
    capacity: usize,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached key for `jkt` (the thumbprint of `jwk`), building it on a miss.
    ///
    /// # Errors
    /// As [`VerifyingKey::new`].
    pub fn get_or_insert(
        &self,
        jkt: Jkt,
        jwk: &Jwk,
        alg: Alg,
    ) -> Result<Arc<VerifyingKey>, KeyError> {
        if let Ok(keys) = self.keys.read()
            && let Some(key) = keys.get(&(jkt, alg))
        {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(VerifyingKey::new(jwk, alg)?);
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= self.capacity {
                keys.clear();
            }
            keys.insert((jkt, alg), Arc::clone(&key));
        }
        Ok(key)
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.keys.read().map(|keys| keys.len()).unwrap_or(0)
    }

    /// True when no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// (RFC 8017 A.1.1), the form aws-lc-rs takes for RSA verification.
fn rsa_public_key_der(n: &str, e: &str) -> Option<Vec<u8>> {
    let n = b64::decode(n, 1024)?;
    let e = b64::decode(e, 8)?;
    let mut body = der_unsigned_integer(&n)?;
    body.extend(der_unsigned_integer(&e)?);
    let mut out = vec![0x30];
    der_length(body.len(), &mut out);
    out.extend(body);
    Some(out)
}

fn der_unsigned_integer(bytes: &[u8]) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|&b| b != 0)?;
    let magnitude = bytes.get(start..)?;
    let pad = magnitude.first().is_some_and(|&b| b & 0x80 != 0);
    let len = magnitude.len() + usize::from(pad);
    let mut out = vec![0x02];
    der_length(len, &mut out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
    Some(out)
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    let bytes = len.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let significant = bytes.get(first..).unwrap_or_default();
    if len < 0x80 {
        out.push(significant.first().copied().unwrap_or(0));
    } else {
        // Long form: 0x80 | number of length bytes, then the bytes (X.690 8.1.3.5).
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        let mut out = Vec::new();
        der_length(5, &mut out);
        der_length(0x80, &mut out);
        der_length(0x1234, &mut out);
        assert_eq!(out, [0x05, 0x81, 0x80, 0x82, 0x12, 0x34]);
        assert_eq!(
            der_unsigned_integer(&[0, 0x80]).unwrap(),
            [0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(
            der_unsigned_integer(&[1, 0, 1]).unwrap(),
            [0x02, 0x03, 1, 0, 1]
        );
    }

    #[test]
    fn refuses_key_that_does_not_fit_alg() {
        let jwk = Jwk::p256([1; 32], [2; 32]);
        assert_eq!(
            VerifyingKey::new(&jwk, Alg::Es384).unwrap_err(),
            KeyError::AlgKeyMismatch(Alg::Es384)
        );
        assert_eq!(
            VerifyingKey::new(&jwk, Alg::Rs256).unwrap_err(),
            KeyError::AlgKeyMismatch(Alg::Rs256)
        );
    }

    #[test]
    fn refuses_point_not_on_curve() {
        let jwk = Jwk::p256([1; 32], [2; 32]);
        assert_eq!(
            VerifyingKey::new(&jwk, Alg::Es256).unwrap_err(),
            KeyError::InvalidKey
        );
    }
}
