//! The one thing a key must do for Holdfast: sign.

use core::fmt;

use crate::alg::Alg;
use crate::jwk::Jwk;

/// A private key that signs JWS messages: software, TPM or YubiKey.
///
/// Implementations block (hardware takes from under a millisecond to
/// hundreds); async callers run them with `spawn_blocking`.
pub trait Signer: Send + Sync {
    /// The public key, as put in a proof's `jwk` header.
    fn public_jwk(&self) -> &Jwk;

    /// The JWS algorithm of the signatures. Every Holdfast key is ES256.
    fn alg(&self) -> Alg {
        Alg::Es256
    }

    /// Signs `message` (the JWS signing input) and returns the signature in
    /// JWS form: for ES256, `r ‖ s`, 64 bytes (RFC 7518 §3.4).
    ///
    /// # Errors
    /// [`SignerError`] when the key or its device fails.
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A key or device failed to sign. The message is for a person; the source,
/// when there is one, is the device's own error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SignerError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SignerError {
    /// An error with a message for a person.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and the underlying cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public_jwk(&self) -> &Jwk {
        (**self).public_jwk()
    }

    fn alg(&self) -> Alg {
        (**self).alg()
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        (**self).try_sign(message)
    }
}

impl fmt::Debug for dyn Signer + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({})", self.public_jwk().thumbprint())
    }
}
