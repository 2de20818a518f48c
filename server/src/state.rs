//! What every handler shares: settings, store, clock, keys, proof checks.

use std::path::Path;
use std::sync::{Arc, RwLock};

use base64ct::Encoding as _;
use holdfast_proto::{Clock, NonceIssuer, NonceSecret, ProofVerifier};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::keys::{Keyring, KeyringError};
use crate::metrics::Metrics;
use crate::store::Store;

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Checked configuration.
    pub settings: Arc<Settings>,
    /// Everything stored.
    pub store: Arc<dyn Store>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Signing keys; replaced on rotation.
    pub keys: Arc<RwLock<Arc<Keyring>>>,
    /// DPoP proof verification (with its key cache).
    pub proofs: Arc<ProofVerifier>,
    /// Server nonces.
    pub nonces: Arc<NonceIssuer>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Woken on every revocation, for long-polling feed readers.
    pub revocations: Arc<Notify>,
}

impl AppState {
    /// Builds the state: loads (or creates) the signing keys.
    ///
    /// # Errors
    /// [`KeyringError`] if the keys cannot be loaded.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        nonce_secret: NonceSecret,
    ) -> Result<Self, KeyringError> {
        let keyring = Keyring::load_or_create(
            store.as_ref(),
            clock.now(),
            settings.raw.tokens.access_token_ttl_secs,
        )?;
        let nonces = NonceIssuer::new(
            nonce_secret,
            [],
            NonceIssuer::DEFAULT_STEP_SECS,
            NonceIssuer::DEFAULT_ACCEPTED_STEPS,
        )
        .map_err(|e| KeyringError::Generate(e.to_string()))?;
        Ok(Self {
            proofs: Arc::new(ProofVerifier::new(settings.algs.clone(), settings.window)),
            settings: Arc::new(settings),
            store,
            clock,
            keys: Arc::new(RwLock::new(Arc::new(keyring))),
            nonces: Arc::new(nonces),
            metrics: Arc::new(Metrics::default()),
            revocations: Arc::new(Notify::new()),
        })
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poison) => Arc::clone(&poison.into_inner()),
        }
    }

    /// Reloads the keyring from the store (after a rotation).
    ///
    /// # Errors
    /// [`KeyringError`] if the keys cannot be loaded.
    pub fn reload_keys(&self) -> Result<(), KeyringError> {
        let keyring = Keyring::load_or_create(
            self.store.as_ref(),
            self.clock.now(),
            self.settings.raw.tokens.access_token_ttl_secs,
        )?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        *keys = Arc::new(keyring);
        Ok(())
    }
}

/// Reads the nonce secret from `path`, creating it (mode 0600, 32 random
/// bytes) on first start. Nodes that share this file accept each other's
/// nonces.
///
/// # Errors
/// An IO error, or a file that is not a base64url secret of at least 32 bytes.
pub fn load_or_create_nonce_secret(path: &Path) -> std::io::Result<NonceSecret> {
    use std::io::Write as _;
    let invalid = |msg: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {msg}", path.display()),
        )
    };
    if !path.exists() {
        let secret = crate::secret::random_secret();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
    }
    let text = std::fs::read_to_string(path)?;
    let decoded = base64ct::Base64UrlUnpadded::decode_vec(text.trim())
        .map_err(|_| invalid("not base64url"))?;
    NonceSecret::new(&decoded).map_err(|e| invalid(&e.to_string()))
}
