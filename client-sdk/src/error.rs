//! What can go wrong for a device agent, with what the caller needs to act.

use holdfast_proto::SignerError;

/// A failed SDK call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// What was being called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server refused, with an OAuth error.
    #[error("{status} {error}: {description}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: String,
        /// `error_description`.
        description: String,
    },
    /// The session is gone (revoked, expired, device disabled): enroll or
    /// log in again. No request was retried with a stale proof.
    #[error("re-authentication required: {0}")]
    ReauthenticationRequired(String),
    /// The key could not sign.
    #[error("the device key failed: {0}")]
    Sign(#[from] SignerError),
    /// The key's device (TPM, YubiKey) failed outside signing, e.g. while
    /// producing attestation evidence.
    #[error("{0}")]
    Device(String),
    /// The server answered something Holdfast does not accept (e.g. a token
    /// response whose `token_type` is not `DPoP`).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A URL could not be used.
    #[error("invalid URL {0:?}")]
    BadUrl(String),
}
