//! Who a verified request comes from.

use holdfast_proto::Jkt;
use serde::Serialize;

/// The caller of a request that passed every check: put in the request's
/// extensions by the layer, read by the [`crate::Verified`] extractor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedIdentity {
    /// The principal (`sub`).
    pub sub: String,
    /// The device (`client_id`).
    pub client_id: String,
    /// The session (`sid`).
    pub sid: String,
    /// Granted scopes, space-separated, if any.
    pub scope: Option<String>,
    /// Authentication methods (`hwk`/`swk`, `pop`).
    pub amr: Vec<String>,
    /// The thumbprint of the device key that signed this request's proof.
    pub jkt: Jkt,
}
