//! Keys in a TPM 2.0 and the device side of TPM attestation (feature `tpm`).
//!
//! - [`Tpm`]: a connection, opened from a [`TpmConfig`] (a tpm2-tss TCTI,
//!   `device:/dev/tpmrm0` by default). Keys and attestations on one TPM share
//!   it.
//! - [`TpmKey`]: an ECC P-256 signing key generated in the TPM, kept as a
//!   TPM-wrapped key file; a [`holdfast_proto::Signer`] whose signatures are
//!   JWS `r ‖ s`, low-S.
//! - [`TpmAttestor`] and [`PendingTpm`]: the evidence for enrollment (EK
//!   certificate, credential activation, `TPM2_Certify` of the key).
//!
//! Every call blocks on the TPM (about half a millisecond on swtpm, tens to
//! hundreds of milliseconds on a real TPM): async callers use
//! `spawn_blocking`.
//!
//! This module never decides whether a TPM is trusted: the issuer verifies
//! the evidence ([`crate::attestation`]).

mod attest;
mod blob;
mod device;
mod ek;
mod error;
mod key;
#[doc(hidden)]
pub mod testing;

pub use attest::{PendingTpm, TpmAttestor};
pub use device::{DEFAULT_TCTI, Tpm, TpmConfig};
pub use ek::EkKind;
pub use error::{TpmError, TssError};
pub use key::TpmKey;

impl Tpm {
    /// The EK certificate of `kind` from the TPM's NV (DER, without the
    /// padding NV indices often carry), or `None` if there is none.
    ///
    /// # Errors
    /// [`TpmError::BadEkCertificate`] if the index does not hold a DER
    /// element; TPM errors.
    pub fn ek_certificate(&self, kind: EkKind) -> Result<Option<Vec<u8>>, TpmError> {
        self.with(|ctx| ek::read_ek_certificate(ctx, kind))
    }
}
