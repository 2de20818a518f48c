//! A software P-256 key for proto's own tests, made with aws-lc-rs
//! (`proto` cannot depend on `hw`, where `SoftwareKey` lives).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use crate::b64;
use crate::jwk::Jwk;
use crate::signer::{Signer, SignerError};

/// A software P-256 key made with aws-lc-rs (proto cannot depend on `hw`).
pub(crate) struct TestKey {
    pair: EcdsaKeyPair,
    pub(crate) jwk: Jwk,
}

impl TestKey {
    pub(crate) fn new() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let x: [u8; 32] = point[1..33].try_into().unwrap();
        let y: [u8; 32] = point[33..65].try_into().unwrap();
        Self {
            pair,
            jwk: Jwk::p256(x, y),
        }
    }

    /// Signs arbitrary header and claims, for forging broken proofs.
    pub(crate) fn sign_raw(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let sig = self.try_sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(&sig))
    }

    pub(crate) fn header(&self) -> serde_json::Value {
        serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }
}

impl Signer for TestKey {
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .map_err(|_| SignerError::new("sign failed"))?;
        Ok(sig.as_ref().to_vec())
    }
}
