//! The issuer's signing keys: the active key signs access tokens; retired
//! keys stay published in the JWKS until every token they signed has
//! expired, so rotation never breaks a valid token.

use std::collections::HashMap;
use std::sync::Arc;

use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Alg, IssuerKeys, JwtHeader, Signer as _, SignerError,
    UnixTime, VerifyingKey, sign_jwt,
};

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
    active: SoftwareKey,
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
                active = Some((key, record.kid.clone()));
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
