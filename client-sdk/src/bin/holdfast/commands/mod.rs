//! One module per command group.

pub(crate) mod admin;
pub(crate) mod agent;
pub(crate) mod dpop;
pub(crate) mod enroll;
pub(crate) mod har;
pub(crate) mod jwk;
pub(crate) mod key;
pub(crate) mod request;
pub(crate) mod status;
pub(crate) mod table;
pub(crate) mod token;
pub(crate) mod tpm;
#[cfg(feature = "yubikey")]
pub(crate) mod yubikey;
#[cfg(not(feature = "yubikey"))]
#[path = "yubikey_unsupported.rs"]
pub(crate) mod yubikey;

use std::future::Future;
use std::io::Read as _;
use std::path::Path;

use crate::error::CliError;

/// The argument itself, or standard input for `-`, trimmed.
pub(crate) fn arg_or_stdin(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut input = String::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut input)
        .map_err(|e| CliError::Failed(format!("cannot read standard input: {e}")))?;
    Ok(input.trim().to_owned())
}

/// A small text file, trimmed.
pub(crate) fn read_text(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    Ok(text.trim().to_owned())
}

/// Prints a JSON value on one line.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// Runs the network part of a command on a small runtime of its own: the
/// offline commands never start one.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}
