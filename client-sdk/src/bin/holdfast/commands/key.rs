//! `holdfast key generate`.

use std::process::ExitCode;

use holdfast_hw::SoftwareKey;
use holdfast_proto::Signer as _;
use serde_json::json;

use super::print_json;
use crate::cli::KeyGenerateArgs;
use crate::error::CliError;

pub(crate) fn generate(args: &KeyGenerateArgs) -> Result<ExitCode, CliError> {
    let key = SoftwareKey::generate().map_err(|e| CliError::Failed(e.to_string()))?;
    key.save_new(&args.out)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!(
        "holdfast: wrote a SOFTWARE key to {} (development only: it can be copied, so production issuers refuse it)",
        args.out.display()
    );
    print_json(&json!({
        "kind": key.kind().as_str(),
        "file": args.out.display().to_string(),
        "jkt": key.public_jwk().thumbprint(),
        "jwk": key.public_jwk(),
    }));
    Ok(ExitCode::SUCCESS)
}
