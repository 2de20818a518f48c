//! `Tpm`: one connection to a TPM, shared by the keys and attestations that
//! use it.
//!
//! `tss_esapi::Context` is `Send` but not `Sync`, and every call blocks until
//! the TPM answers, so the context sits behind a mutex: one command at a
//! time, from any thread. A simulator such as swtpm serves one connection at
//! a time, and a TPM without a resource manager holds only a few objects, so
//! everything that talks to one TPM should share one `Tpm` (it is a cheap
//! clone).

use core::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tss_esapi::{Context, TctiNameConf};

use super::error::{TpmError, TssError};

/// The TCTI Holdfast uses when none is configured: the kernel's resource
/// manager, which lets several processes share the TPM.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// Where the TPM is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TpmConfig {
    /// A tpm2-tss TCTI: `device:/dev/tpmrm0` (the default), `device:/dev/tpm0`
    /// (no resource manager), `swtpm:host=127.0.0.1,port=2321` (a simulator),
    /// `tabrmd:` (the user-space resource manager).
    pub tcti: String,
}

impl Default for TpmConfig {
    fn default() -> Self {
        Self {
            tcti: DEFAULT_TCTI.to_owned(),
        }
    }
}

impl TpmConfig {
    /// A configuration for the given TCTI.
    pub fn new(tcti: impl Into<String>) -> Self {
        Self { tcti: tcti.into() }
    }
}

/// A connection to a TPM. Clones share the connection.
///
/// tpm2-tss logs its own warnings to stderr; set `TSS2_LOG=all+NONE` in the
/// environment of the process to silence them (Holdfast cannot set it
/// without `unsafe`, since other threads may read the environment).
#[derive(Clone)]
pub struct Tpm {
    inner: Arc<Inner>,
}

struct Inner {
    context: Mutex<Context>,
    tcti: String,
}

impl Tpm {
    /// Connects to the TPM named by `config`.
    ///
    /// # Errors
    /// [`TpmError::InvalidTcti`] if the TCTI string is not understood;
    /// [`TpmError::Connect`] if the TPM cannot be reached (no device, no
    /// permission, no simulator listening).
    pub fn open(config: &TpmConfig) -> Result<Self, TpmError> {
        let tcti = config.tcti.trim();
        let name_conf = TctiNameConf::from_str(tcti).map_err(|_| TpmError::InvalidTcti {
            tcti: tcti.to_owned(),
        })?;
        let context = Context::new(name_conf).map_err(|e| {
            diagnose_device(tcti).unwrap_or_else(|| TpmError::Connect {
                tcti: tcti.to_owned(),
                source: TssError::new(e).0,
            })
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                context: Mutex::new(context),
                tcti: tcti.to_owned(),
            }),
        })
    }

    /// The TCTI this connection was opened with.
    pub fn tcti(&self) -> &str {
        &self.inner.tcti
    }

    /// Runs `f` with exclusive use of the connection.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Context) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        // A panic while the lock was held leaves the context usable: every
        // ESAPI call completes or fails as a whole before control returns.
        let mut context = self
            .inner
            .context
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut context)
    }

    /// True when both share one connection.
    pub(crate) fn same_connection(&self, other: &Tpm) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// tpm2-tss reports any failure to open a device as an IO error; for a
/// `device:` TCTI, say whether the device is missing or not accessible.
fn diagnose_device(tcti: &str) -> Option<TpmError> {
    let path = tcti.strip_prefix("device")?;
    let path = match path.strip_prefix(':') {
        Some(path) if !path.is_empty() => path,
        // tpm2-tss's default device.
        _ => "/dev/tpm0",
    };
    let error = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .err()?;
    match error.kind() {
        std::io::ErrorKind::NotFound => Some(TpmError::NoDevice { path: path.into() }),
        std::io::ErrorKind::PermissionDenied => {
            Some(TpmError::DevicePermission { path: path.into() })
        }
        _ => None,
    }
}

impl fmt::Debug for Tpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.inner.tcti)
            .finish()
    }
}
