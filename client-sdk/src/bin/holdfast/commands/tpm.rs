//! TPM keys for the agent: creating (or reusing) a key inside the TPM,
//! attesting it, and loading it again from its wrapped blob. Without the
//! `tpm` feature, the commands say this build has no TPM support.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use holdfast_client::EnrollmentEvidence;
use holdfast_proto::Signer;

use crate::agent_state::TpmLocation;
use crate::cli::EnrollArgs;
use crate::error::CliError;

/// A new key, its enrollment evidence, its blob file and where its TPM is.
pub(crate) type NewTpmKey = (
    Arc<dyn Signer>,
    Box<dyn EnrollmentEvidence>,
    PathBuf,
    TpmLocation,
);

#[cfg(feature = "tpm")]
pub(crate) use supported::{new_key, open};

#[cfg(not(feature = "tpm"))]
pub(crate) use unsupported::{new_key, open};

#[cfg(feature = "tpm")]
mod supported {
    use super::*;
    use crate::agent_state::DEFAULT_TPM_KEY_FILE;
    use holdfast_client::evidence::TpmEnrollment;
    use holdfast_hw::{TpmConfig, TpmError, TpmKey};

    /// The key for `holdfast enroll --tpm`: the blob in `--key-file` (default
    /// `<agent dir>/device.tpmkey`) if it exists and belongs to this TPM,
    /// else a new key created inside the TPM.
    pub(crate) fn new_key(args: &EnrollArgs, dir: &Path) -> Result<NewTpmKey, CliError> {
        let key_file = args
            .key_file
            .clone()
            .unwrap_or_else(|| dir.join(DEFAULT_TPM_KEY_FILE));
        let key_file = std::path::absolute(&key_file).unwrap_or(key_file);
        let config = args
            .tpm_tcti
            .clone()
            .map_or_else(TpmConfig::default, TpmConfig::new);
        let key = Arc::new(key(&config, &key_file)?);
        Ok((
            Arc::clone(&key) as Arc<dyn Signer>,
            Box::new(TpmEnrollment::new(key)),
            key_file,
            TpmLocation { tcti: config.tcti },
        ))
    }

    /// Loads the enrolled key's blob into its TPM.
    pub(crate) fn open(
        location: &TpmLocation,
        key_file: &Path,
    ) -> Result<Arc<dyn Signer>, CliError> {
        let config = TpmConfig::new(location.tcti.clone());
        let key = TpmKey::load(&config, key_file).map_err(|e| {
            CliError::Failed(format!(
                "cannot load the TPM key {} ({}): {e}",
                key_file.display(),
                location.tcti
            ))
        })?;
        Ok(Arc::new(key))
    }

    fn key(config: &TpmConfig, path: &Path) -> Result<TpmKey, CliError> {
        if path.exists() {
            let key = TpmKey::load(config, path).map_err(|e| {
                CliError::Failed(format!(
                    "TPM ({}): {e}; refusing to overwrite {}: move it away or pass another --key-file",
                    config.tcti,
                    path.display()
                ))
            })?;
            eprintln!("holdfast: using the existing TPM key in {}", path.display());
            return Ok(key);
        }
        TpmKey::create(config, path)
            .map_err(|e: TpmError| CliError::Failed(format!("TPM ({}): {e}", config.tcti)))
    }
}

#[cfg(not(feature = "tpm"))]
mod unsupported {
    use super::*;

    fn no_tpm() -> CliError {
        CliError::Usage(
            "this build of holdfast has no TPM support (built without the `tpm` feature)".into(),
        )
    }

    pub(crate) fn new_key(_args: &EnrollArgs, _dir: &Path) -> Result<NewTpmKey, CliError> {
        Err(no_tpm())
    }

    pub(crate) fn open(
        _location: &TpmLocation,
        _key_file: &Path,
    ) -> Result<Arc<dyn Signer>, CliError> {
        Err(no_tpm())
    }
}
