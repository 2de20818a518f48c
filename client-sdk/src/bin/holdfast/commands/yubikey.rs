//! YubiKey keys for the agent: generating, attesting and reopening a PIV key.
//!
//! The PIN never goes into the agent state: it comes from the file named
//! with `--pin-file` (whose path is saved) or from `$HOLDFAST_PIV_PIN`.
//! Before each signature that waits for a touch, a line on standard error
//! says so: the YubiKey only blinks, and a silent command looks hung.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use holdfast_client::EnrollmentEvidence;
use holdfast_client::evidence::PivEnrollment;
use holdfast_hw::PivKey;
use holdfast_hw::piv::{PinSource, PivConfig, PivSlot, TouchPolicy};
use holdfast_proto::{Jkt, Jwk, Signer, SignerError};

use crate::agent_state::YubikeyLocation;
use crate::cli::EnrollArgs;
use crate::error::CliError;

/// Where the PIN comes from when no `--pin-file` is given.
pub(crate) const PIN_ENV: &str = "HOLDFAST_PIV_PIN";

/// How long a YubiKey keeps a touch for a key with touch policy `cached`.
const TOUCH_CACHE: Duration = Duration::from_secs(15);

/// A new key, its enrollment evidence and where it is.
pub(crate) type NewYubikey = (
    Arc<dyn Signer>,
    Box<dyn EnrollmentEvidence>,
    YubikeyLocation,
);

/// A new YubiKey key for `holdfast enroll --yubikey`: generated in the slot,
/// with its attestation read for the issuer. Nothing is sent anywhere if
/// the YubiKey cannot attest the key (an imported key, no f9 certificate).
pub(crate) fn new_key(args: &EnrollArgs) -> Result<NewYubikey, CliError> {
    let usage = |flag: &str, e: &dyn std::fmt::Display| CliError::Usage(format!("{flag}: {e}"));
    // Saved in the agent state: later commands may run from elsewhere.
    let pin_file = args
        .pin_file
        .as_deref()
        .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
    let mut config = PivConfig::new(pin_source(pin_file.as_deref()));
    config.serial = args.serial;
    if let Some(slot) = &args.piv_slot {
        config.slot = slot.parse().map_err(|e| usage("--piv-slot", &e))?;
    }
    if let Some(policy) = &args.pin_policy {
        config.pin_policy = policy.parse().map_err(|e| usage("--pin-policy", &e))?;
    }
    if let Some(policy) = &args.touch_policy {
        config.touch_policy = policy.parse().map_err(|e| usage("--touch-policy", &e))?;
    }
    config.overwrite = args.overwrite_slot;
    let key = PivKey::generate(config).map_err(|e| CliError::Failed(format!("YubiKey: {e}")))?;
    let evidence = key.attestation().map_err(|e| {
        CliError::Failed(format!(
            "YubiKey {} cannot attest its key, so no issuer would accept it (nothing was sent): \
             {e}",
            key.serial()
        ))
    })?;
    let location = YubikeyLocation {
        serial: key.serial(),
        slot: key.slot().to_string(),
        pin_file,
    };
    Ok((
        Arc::new(TouchPrompt::new(key)),
        Box::new(PivEnrollment::new(evidence)),
        location,
    ))
}

/// Opens the enrolled YubiKey key, checking that the slot still holds it.
pub(crate) fn open(location: &YubikeyLocation, jkt: &Jkt) -> Result<Arc<dyn Signer>, CliError> {
    let slot: PivSlot = location.slot.parse().map_err(|e| {
        CliError::Failed(format!(
            "the agent state names PIV slot {:?}: {e}; enroll again with --force",
            location.slot
        ))
    })?;
    let mut config = PivConfig::new(pin_source(location.pin_file.as_deref()));
    config.serial = Some(location.serial);
    config.slot = slot;
    let key = PivKey::open(config).map_err(|e| {
        CliError::Failed(format!(
            "YubiKey {} slot {}: {e}",
            location.serial, location.slot
        ))
    })?;
    let found = key.public_jwk().thumbprint();
    if found != *jkt {
        return Err(CliError::Failed(format!(
            "YubiKey {} slot {} now holds another key ({found}), not the enrolled {jkt}: enroll \
             again with --force",
            location.serial, location.slot,
        )));
    }
    Ok(Arc::new(TouchPrompt::new(key)))
}

fn pin_source(file: Option<&Path>) -> PinSource {
    file.map_or_else(
        || PinSource::Env(PIN_ENV.to_owned()),
        |path| PinSource::File(PathBuf::from(path)),
    )
}

/// A [`PivKey`] that asks for a touch on standard error before a signature
/// that needs one: every signature with touch policy `always`; with
/// `cached`, the first one and any after the YubiKey's 15 s cache may have
/// run out.
struct TouchPrompt {
    key: PivKey,
    /// When the last prompt was printed (for `cached`).
    prompted: Mutex<Option<Instant>>,
}

impl TouchPrompt {
    fn new(key: PivKey) -> Self {
        Self {
            key,
            prompted: Mutex::new(None),
        }
    }

    fn prompt_if_needed(&self) {
        let needed = match self.key.touch_policy() {
            Some(TouchPolicy::Always) => true,
            Some(TouchPolicy::Cached) => {
                let mut prompted = self.prompted.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let stale = prompted.is_none_or(|at| now.duration_since(at) >= TOUCH_CACHE);
                if stale {
                    *prompted = Some(now);
                }
                stale
            }
            // `never`, or unknown (a card without metadata): stay quiet.
            _ => false,
        };
        if needed {
            eprintln!(
                "holdfast: touch your YubiKey (serial {}, slot {}) when it blinks",
                self.key.serial(),
                self.key.slot()
            );
        }
    }
}

impl Signer for TouchPrompt {
    fn public_jwk(&self) -> &Jwk {
        self.key.public_jwk()
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.prompt_if_needed();
        self.key.try_sign(message)
    }
}
