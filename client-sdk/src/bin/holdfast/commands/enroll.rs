//! `holdfast enroll`: a key, a one-time code, and the saved identity.

use std::path::Path;
use std::process::ExitCode;

use holdfast_client::{ClientError, Enrollment, enroll as enroll_key};
use holdfast_hw::{KeyKind, SoftwareKey};
use holdfast_proto::{Clock as _, Signer as _, SystemClock};

use super::agent::{self, explain, no_support};
use super::table::print_fields;
use crate::agent_state::{AgentState, AgentStateError, DEFAULT_KEY_FILE, STATE_FILE, create_dir};
use crate::cli::EnrollArgs;
use crate::error::CliError;

/// The device name when neither --name nor /etc/hostname gives one.
const FALLBACK_NAME: &str = "device";

pub(crate) fn enroll(args: &EnrollArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    // The kind first: the hardware kinds fail the same way wherever they run.
    if args.tpm {
        return Err(no_support(KeyKind::Tpm));
    }
    if args.yubikey {
        return Err(no_support(KeyKind::Yubikey));
    }
    let dir = agent::dir(agent_dir)?;
    refuse_if_enrolled(&dir, args.force)?;
    let server = args.server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "--server {server}: expected an http:// or https:// URL"
        )));
    }
    create_dir(&dir)?;
    let key_file = args
        .key_file
        .clone()
        .unwrap_or_else(|| dir.join(DEFAULT_KEY_FILE));
    let key = software_key(&key_file)?;
    let name = args.name.clone().unwrap_or_else(host_name);

    let enrolled = super::block_on(async {
        let http = agent::http_client()?;
        enroll_key(
            &http,
            server,
            &args.code,
            KeyKind::Software.as_str(),
            &name,
            &key,
            SystemClock.now(),
        )
        .await
        .map_err(|e| refused(e, &key_file))
    })??;

    let state = AgentState {
        server: enrolled.issuer.clone(),
        client_id: enrolled.client_id.clone(),
        principal: enrolled.principal.clone(),
        principal_id: enrolled.principal_id.clone(),
        kind: KeyKind::Software,
        key_file: std::path::absolute(&key_file).unwrap_or(key_file),
        jkt: key.public_jwk().thumbprint(),
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
    print_fields(&[
        (
            "principal",
            format!("{} ({})", enrolled.principal, enrolled.principal_id),
        ),
        ("jkt", state.jkt.to_string()),
        (
            "kind",
            format!("{} ({})", state.kind, state.key_file.display()),
        ),
        ("server", state.server.clone()),
        ("state", saved.display().to_string()),
    ]);
    eprintln!(
        "holdfast: NOTE: this is a SOFTWARE key, for development only. It is a file that can be \
         copied, so it proves nothing about this machine and production issuers refuse it; use \
         --tpm or --yubikey when they arrive."
    );
}
