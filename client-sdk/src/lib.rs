//! # holdfast-client
//!
//! What a Holdfast device agent embeds, and the `holdfast` command-line tool.
//!
//! [`DpopClient`] makes every HTTP request of a device agent DPoP-correct:
//! tokens from `client_credentials` + `private_key_jwt`, refresh before
//! expiry, a fresh proof per request and retry, server nonces, clock skew.
//! [`enroll`] registers a new key with an issuer. The `holdfast` binary
//! builds its agent and admin commands on these. [`har::scrub`] masks the
//! secrets in a HAR capture before it is shared.

#![forbid(unsafe_code)]

mod client;
mod enroll;
mod error;
pub mod evidence;
pub mod har;

pub use client::DpopClient;
pub use enroll::{EnrollRequest, Enrollment, EnrollmentEvidence, NoEvidence, enroll};
pub use error::ClientError;
