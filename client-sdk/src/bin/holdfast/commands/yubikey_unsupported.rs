//! `--yubikey` in a build without the `yubikey` feature: a clear refusal.

use std::sync::Arc;

use holdfast_client::EnrollmentEvidence;
use holdfast_proto::{Jkt, Signer};

use crate::agent_state::YubikeyLocation;
use crate::cli::EnrollArgs;
use crate::error::CliError;

/// A new key, its enrollment evidence and where it is.
pub(crate) type NewYubikey = (
    Arc<dyn Signer>,
    Box<dyn EnrollmentEvidence>,
    YubikeyLocation,
);

fn no_yubikey() -> CliError {
    CliError::Usage(
        "this build of holdfast has no YubiKey support (built without the `yubikey` feature)"
            .into(),
    )
}

/// Refuses: no YubiKey support in this build.
pub(crate) fn new_key(_args: &EnrollArgs) -> Result<NewYubikey, CliError> {
    Err(no_yubikey())
}

/// Refuses: no YubiKey support in this build.
pub(crate) fn open(_location: &YubikeyLocation, _jkt: &Jkt) -> Result<Arc<dyn Signer>, CliError> {
    Err(no_yubikey())
}
