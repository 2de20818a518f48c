//! The issuer's signing keys: the active key signs access tokens; retired
//! keys stay published in the JWKS until every token they signed has
//! expired, so rotation never breaks a valid token.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64ct::{Base64, Encoding as _};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Alg, IssuerKeys, Jwk, JwtHeader, Signer, SignerError,
    UnixTime, VerifyingKey, sign_jwt,
};
use zeroize::Zeroizing;

use crate::store::{SigningKeyRecord, Store, StoreError};

/// Why the keyring could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is not a P-256 PKCS#8 key.
    #[error("signing key {0} in the store cannot be read")]
    BadKey(String),
    /// Key generation failed.
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
}

/// The loaded keys.
pub struct Keyring {
    active: TokenSigner,
    active_kid: String,
    published: HashMap<String, Arc<VerifyingKey>>,
    jwks: serde_json::Value,
}

impl Keyring {
    /// Loads the keys, creating the first one if there is none. Retired keys
    /// older than `retention_secs` are no longer published.
    ///
    /// # Errors
    /// [`KeyringError`] if the store fails or holds an unreadable key.
    pub fn load_or_create(
        store: &dyn Store,
        now: UnixTime,
        retention_secs: u64,
    ) -> Result<Self, KeyringError> {
        let mut records = store.signing_keys()?;
        if !records.iter().any(|r| r.retired_at.is_none()) {
            records.push(create_key(store, now)?);
        }
        let mut active = None;
        let mut published = HashMap::new();
        let mut jwks = Vec::new();
        for record in &records {
            if record
                .retired_at
                .is_some_and(|at| at.plus(retention_secs) < now)
            {
                continue;
            }
            let key = SoftwareKey::from_pkcs8_pem(&record.pkcs8_pem)
                .map_err(|_| KeyringError::BadKey(record.kid.clone()))?;
            let verifying = VerifyingKey::new(key.public_jwk(), Alg::Es256)
                .map_err(|_| KeyringError::BadKey(record.kid.clone()))?;
            published.insert(record.kid.clone(), Arc::new(verifying));
            let mut jwk = serde_json::to_value(key.public_jwk()).unwrap_or_default();
            if let Some(object) = jwk.as_object_mut() {
                object.insert("kid".into(), record.kid.clone().into());
                object.insert("use".into(), "sig".into());
                object.insert("alg".into(), "ES256".into());
            }
            jwks.push(jwk);
            if record.retired_at.is_none() {
                // The newest unretired key signs.
                let signer = TokenSigner::from_pkcs8_pem(&record.pkcs8_pem, key.public_jwk())
                    .ok_or_else(|| KeyringError::BadKey(record.kid.clone()))?;
                active = Some((signer, record.kid.clone()));
            }
        }
        let (active, active_kid) =
            active.ok_or_else(|| KeyringError::Generate("no active key".into()))?;
        Ok(Self {
            active,
            active_kid,
            published,
            jwks: serde_json::json!({ "keys": jwks }),
        })
    }

    /// Retires the active key and creates a new one.
    ///
    /// # Errors
    /// [`KeyringError`] if the store fails.
    pub fn rotate(store: &dyn Store, now: UnixTime) -> Result<String, KeyringError> {
        for mut record in store.signing_keys()? {
            if record.retired_at.is_none() {
                record.retired_at = Some(now);
                store.put_signing_key(&record)?;
            }
        }
        Ok(create_key(store, now)?.kid)
    }

    /// Signs access-token claims with the active key.
    ///
    /// # Errors
    /// [`SignerError`] if signing fails.
    pub fn sign_access_token(&self, claims: &AccessTokenClaims) -> Result<String, SignerError> {
        let header = JwtHeader {
            typ: ACCESS_TOKEN_TYP,
            kid: Some(&self.active_kid),
            jwk: None,
        };
        sign_jwt(&self.active, &header, claims)
    }

    /// The active key's `kid`.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The JWK Set document (RFC 7517 §5).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

impl IssuerKeys for Keyring {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.published.get(kid).cloned()
    }
}

/// The active key as aws-lc-rs holds it: every token is signed here, and
/// aws-lc-rs signs P-256 at about five times the rate of RustCrypto `p256`
/// (`SoftwareKey`), the largest CPU cost of a grant after the two
/// verifications (`docs/performance.md`, "Token issuance"). `SoftwareKey`
/// still reads, writes and publishes the key.
struct TokenSigner {
    pair: EcdsaKeyPair,
    jwk: Jwk,
    rng: SystemRandom,
}

impl TokenSigner {
    /// The key of a PKCS#8 PEM document whose public key is `jwk`; `None`
    /// if aws-lc-rs refuses it or it is another key.
    fn from_pkcs8_pem(pem: &str, jwk: &Jwk) -> Option<Self> {
        let body: Zeroizing<String> = Zeroizing::new(
            pem.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with("-----"))
                .collect(),
        );
        let der = Zeroizing::new(Base64::decode_vec(&body).ok()?);
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).ok()?;
        let point = aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref();
        let Jwk::Ec(ec) = jwk else { return None };
        (ec.sec1_uncompressed() == point).then(|| Self {
            pair,
            jwk: jwk.clone(),
            rng: SystemRandom::new(),
        })
    }
}

impl Signer for TokenSigner {
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| SignerError::new("the token signing key failed to sign"))
    }
}

fn create_key(store: &dyn Store, now: UnixTime) -> Result<SigningKeyRecord, KeyringError> {
    let key = SoftwareKey::generate().map_err(|e| KeyringError::Generate(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem()
        .map_err(|e| KeyringError::Generate(e.to_string()))?;
    let record = SigningKeyRecord {
        kid: key.public_jwk().thumbprint().to_string(),
        pkcs8_pem: pem.to_string(),
        created_at: now,
        retired_at: None,
    };
    store.put_signing_key(&record)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use holdfast_proto::CompactJws;

    use super::*;

    #[test]
    fn token_signer_signs_with_the_stored_key() {
        let key = SoftwareKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let signer = TokenSigner::from_pkcs8_pem(&pem, key.public_jwk()).unwrap();
        let header = JwtHeader {
            typ: ACCESS_TOKEN_TYP,
            kid: Some("k"),
            jwk: None,
        };
        let token = sign_jwt(&signer, &header, &serde_json::json!({"sub": "x"})).unwrap();
        let jws = CompactJws::parse(&token).unwrap();
        VerifyingKey::new(key.public_jwk(), Alg::Es256)
            .unwrap()
            .verify(jws.signing_input(), jws.signature())
            .unwrap();
        // A document whose key is not the published one is refused.
        let other = SoftwareKey::generate().unwrap();
        assert!(TokenSigner::from_pkcs8_pem(&pem, other.public_jwk()).is_none());
        assert!(TokenSigner::from_pkcs8_pem("not pem", key.public_jwk()).is_none());
    }
}
