//! `holdfast jwk thumbprint`.

use std::path::Path;
use std::process::ExitCode;

use holdfast_proto::Jwk;

use super::{arg_or_stdin, read_text};
use crate::error::CliError;

pub(crate) fn thumbprint(input: &str) -> Result<ExitCode, CliError> {
    let json = if input == "-" {
        arg_or_stdin("-")?
    } else {
        read_text(Path::new(input))?
    };
    let jwk =
        Jwk::from_json(&json).map_err(|e| CliError::Failed(format!("cannot use this JWK: {e}")))?;
    println!("{}", jwk.thumbprint());
    Ok(ExitCode::SUCCESS)
}
