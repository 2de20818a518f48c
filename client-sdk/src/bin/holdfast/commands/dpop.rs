//! `holdfast dpop sign|inspect|verify`.

use std::process::ExitCode;

use getrandom::SysRng;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    AccessToken, AllowedAlgs, Clock as _, Htu, IatWindow, MemoryReplayGuard, NonceCheck,
    ProofCheck, ProofRequest, ProofVerifier, SystemClock, UnixTime, build_proof, inspect_proof,
};
use serde_json::json;

use super::{arg_or_stdin, print_json, read_text};
use crate::cli::{SignArgs, TokenArg, VerifyArgs};
use crate::error::CliError;

pub(crate) fn sign(args: &SignArgs) -> Result<ExitCode, CliError> {
    let htu =
        Htu::parse(&args.htu).map_err(|e| CliError::Usage(format!("--htu {}: {e}", args.htu)))?;
    let key = SoftwareKey::load(&args.key).map_err(|e| CliError::Failed(e.to_string()))?;
    let token = access_token(&args.token)?.map(AccessToken::new);
    let request = ProofRequest {
        htm: &args.htm,
        htu: &htu,
        nonce: args.nonce.as_deref(),
        access_token: token.as_ref(),
    };
    let now = args
        .iat
        .map_or_else(|| SystemClock.now(), UnixTime::from_secs);
    let proof = build_proof(&key, &mut SysRng, &request, now)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{proof}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn inspect(proof: &str) -> Result<ExitCode, CliError> {
    let proof = arg_or_stdin(proof)?;
    let inspection =
        inspect_proof(&proof).map_err(|e| CliError::Failed(format!("not a DPoP proof: {e}")))?;
    let mut value =
        serde_json::to_value(&inspection).map_err(|e| CliError::Failed(e.to_string()))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("verified".into(), json!(false));
    }
    let pretty =
        serde_json::to_string_pretty(&value).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{pretty}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verify(args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let proof = arg_or_stdin(&args.proof)?;
    let htu =
        Htu::parse(&args.htu).map_err(|e| CliError::Usage(format!("--htu {}: {e}", args.htu)))?;
    let algs = AllowedAlgs::from_names(args.algs.iter().map(String::as_str))
        .map_err(|e| CliError::Usage(format!("--alg: {e}")))?;
    let window = IatWindow {
        max_age: args.max_age,
        max_future: args.max_future,
    };
    let token = access_token(&args.token)?;
    let check = ProofCheck {
        htm: &args.htm,
        htu: &htu,
        access_token: token.as_deref(),
        bound_jkt: None,
        nonce: args
            .nonce
            .as_deref()
            .map_or(NonceCheck::NotRequired, NonceCheck::Exact),
        now: args
            .now
            .map_or_else(|| SystemClock.now(), UnixTime::from_secs),
    };
    // Offline: a fresh guard, so only this one use is recorded.
    let replay = MemoryReplayGuard::new(1);
    match ProofVerifier::new(algs, window).verify(&proof, &check, &replay) {
        Ok(verified) => {
            print_json(&json!({
                "valid": true,
                "jkt": verified.jkt(),
                "jti": verified.jti(),
                "iat": verified.iat(),
            }));
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            print_json(&json!({
                "valid": false,
                "error": err.wire_code().as_str(),
                "check": err.check(),
                "description": err.to_string(),
            }));
            Ok(ExitCode::from(1))
        }
    }
}

fn access_token(arg: &TokenArg) -> Result<Option<String>, CliError> {
    match (&arg.access_token, &arg.access_token_file) {
        (Some(token), _) => Ok(Some(token.clone())),
        (None, Some(path)) => read_text(path).map(Some),
        (None, None) => Ok(None),
    }
}
