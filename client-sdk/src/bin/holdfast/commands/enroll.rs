//! `holdfast enroll`: a key, a one-time code, and the saved identity.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use holdfast_client::{
    ClientError, EnrollRequest, Enrollment, EnrollmentEvidence, NoEvidence, enroll as enroll_key,
};
use holdfast_hw::{KeyKind, SoftwareKey};
use holdfast_proto::{Clock as _, Signer, SystemClock};

use super::agent::{self, explain};
use super::table::print_fields;
use crate::agent_state::{
    AgentState, AgentStateError, DEFAULT_KEY_FILE, STATE_FILE, TpmLocation, YubikeyLocation,
    create_dir,
};
use crate::cli::EnrollArgs;
use crate::error::CliError;

/// The device name when neither --name nor /etc/hostname gives one.
const FALLBACK_NAME: &str = "device";

pub(crate) fn enroll(args: &EnrollArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    check_kind_flags(args)?;
    let dir = agent::dir(agent_dir)?;
    refuse_if_enrolled(&dir, args.force)?;
    let server = args.server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "--server {server}: expected an http:// or https:// URL"
        )));
    }
    create_dir(&dir)?;
    let name = args.name.clone().unwrap_or_else(host_name);
    let mut key = new_key(args, &dir)?;

    let enrolled = super::block_on(async {
        let http = agent::http_client()?;
        let request = EnrollRequest {
            code: &args.code,
            kind: key.kind.as_str(),
            name: &name,
            signer: key.signer.as_ref(),
            evidence: key.evidence.as_mut(),
        };
        enroll_key(&http, server, request, SystemClock.now())
            .await
            .map_err(|e| refused(e, &key.key_file))
    })??;

    let state = AgentState {
        server: enrolled.issuer.clone(),
        client_id: enrolled.client_id.clone(),
        principal: enrolled.principal.clone(),
        principal_id: enrolled.principal_id.clone(),
        kind: key.kind,
        key_file: key.key_file.clone(),
        jkt: key.signer.public_jwk().thumbprint(),
        tpm: key.tpm.clone(),
        yubikey: key.yubikey.clone(),
    };
    let saved = state.save(&dir)?;
    if enrolled.issuer != server {
        eprintln!(
            "holdfast: the issuer calls itself {}; saved that URL, not {server}",
            enrolled.issuer
        );
    }
    summary(&enrolled, &state, &saved);
    Ok(ExitCode::SUCCESS)
}

/// A kind's own flags need that kind (clap's `requires` counts a `bool`
/// flag's default as present, so it is checked here).
fn check_kind_flags(args: &EnrollArgs) -> Result<(), CliError> {
    let misplaced = |flag: &str, kind: &str| Err(CliError::Usage(format!("{flag} needs {kind}")));
    if !args.tpm && args.tpm_tcti.is_some() {
        return misplaced("--tpm-tcti", "--tpm");
    }
    if !args.yubikey {
        for (flag, set) in [
            ("--piv-slot", args.piv_slot.is_some()),
            ("--serial", args.serial.is_some()),
            ("--pin-policy", args.pin_policy.is_some()),
            ("--touch-policy", args.touch_policy.is_some()),
            ("--pin-file", args.pin_file.is_some()),
            ("--overwrite-slot", args.overwrite_slot),
        ] {
            if set {
                return misplaced(flag, "--yubikey");
            }
        }
    }
    if args.yubikey && args.key_file.is_some() {
        return Err(CliError::Usage(
            "--key-file is for --software and --tpm: a YubiKey key stays on the YubiKey".into(),
        ));
    }
    Ok(())
}

/// A key being enrolled: the signer, its evidence, and what the agent
/// state records to find it again.
struct NewKey {
    kind: KeyKind,
    signer: Arc<dyn Signer>,
    evidence: Box<dyn EnrollmentEvidence>,
    key_file: PathBuf,
    tpm: Option<TpmLocation>,
    yubikey: Option<YubikeyLocation>,
}

/// Creates (or reuses) the key of the kind the flags ask for.
fn new_key(args: &EnrollArgs, dir: &Path) -> Result<NewKey, CliError> {
    if args.tpm {
        return super::tpm::new_key(args, dir).map(|(key, evidence, key_file, location)| NewKey {
            kind: KeyKind::Tpm,
            signer: key,
            evidence,
            key_file,
            tpm: Some(location),
            yubikey: None,
        });
    }
    if args.yubikey {
        return super::yubikey::new_key(args).map(|(key, evidence, location)| NewKey {
            kind: KeyKind::Yubikey,
            signer: key,
            evidence,
            key_file: PathBuf::new(),
            tpm: None,
            yubikey: Some(location),
        });
    }
    let key_file = args
        .key_file
        .clone()
        .unwrap_or_else(|| dir.join(DEFAULT_KEY_FILE));
    let key_file = std::path::absolute(&key_file).unwrap_or(key_file);
    Ok(NewKey {
        kind: KeyKind::Software,
        signer: Arc::new(software_key(&key_file)?),
        evidence: Box::new(NoEvidence),
        key_file,
        tpm: None,
        yubikey: None,
    })
}

/// An existing identity is kept unless `--force`.
fn refuse_if_enrolled(dir: &Path, force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    match AgentState::load(dir) {
        Err(AgentStateError::NotEnrolled(_)) => Ok(()),
        Ok(state) => Err(CliError::Failed(format!(
            "already enrolled as device {} ({}) at {} (state in {}); use --force to enroll again, \
             or --agent-dir for a second identity",
            state.client_id,
            state.principal,
            state.server,
            dir.join(STATE_FILE).display()
        ))),
        // A damaged file's message says to use --force.
        Err(other) => Err(other.into()),
    }
}

/// The key in `path`: reused if it is a valid key, else created. Anything
/// else in its place is never overwritten.
fn software_key(path: &Path) -> Result<SoftwareKey, CliError> {
    if path.exists() {
        let key = SoftwareKey::load(path).map_err(|e| {
            CliError::Failed(format!(
                "{e}; refusing to overwrite {}: move it away or pass another --key-file",
                path.display()
            ))
        })?;
        eprintln!("holdfast: using the existing key in {}", path.display());
        return Ok(key);
    }
    let key = SoftwareKey::generate().map_err(|e| CliError::Failed(e.to_string()))?;
    key.save_new(path)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    Ok(key)
}

/// This machine's name from /etc/hostname, or [`FALLBACK_NAME`].
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| FALLBACK_NAME.to_owned())
}

/// An enrollment refusal, with what to do about it.
fn refused(err: ClientError, key_file: &Path) -> CliError {
    let ClientError::Refused {
        status,
        error,
        description,
    } = err
    else {
        return explain(err);
    };
    CliError::Failed(match (status, error.as_str()) {
        (_, "invalid_grant") => {
            format!("the enrollment code was refused: {description}; ask your admin for a new code")
        }
        (_, "access_denied") if description.contains("attestation") => format!(
            "enrollment refused: {description}. The issuer does not accept this device's \
             hardware evidence; show this message to your admin"
        ),
        (_, "access_denied") => {
            format!("enrollment refused: {description}; ask your admin for a code that allows it")
        }
        (409, _) => format!(
            "enrollment refused: {description}: the key in {} is already enrolled; \
             pass --key-file with a new file to enroll a new key",
            key_file.display()
        ),
        _ => format!("enrollment refused ({status} {error}): {description}"),
    })
}

fn summary(enrolled: &Enrollment, state: &AgentState, saved: &Path) {
    println!("enrolled device {}", enrolled.client_id);
    let kind = match (&state.tpm, &state.yubikey) {
        (Some(tpm), _) => format!("tpm ({}, key blob {})", tpm.tcti, state.key_file.display()),
        (_, Some(yk)) => format!("yubikey (serial {}, slot {})", yk.serial, yk.slot),
        _ => format!("{} ({})", state.kind, state.key_file.display()),
    };
    print_fields(&[
        (
            "principal",
            format!("{} ({})", enrolled.principal, enrolled.principal_id),
        ),
        ("jkt", state.jkt.to_string()),
        ("kind", kind),
        ("server", state.server.clone()),
        ("state", saved.display().to_string()),
    ]);
    if state.kind == KeyKind::Software {
        eprintln!(
            "holdfast: NOTE: this is a SOFTWARE key, for development only. It is a file that can \
             be copied, so it proves nothing about this machine and production issuers refuse it; \
             use --tpm or --yubikey."
        );
    }
}
