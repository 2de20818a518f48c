//! `holdfast admin step-up [totp-enroll | unlock P]`, and the step-up that
//! `--totp CODE` / `--yubikey` perform before any admin command.
//!
//! A step-up belongs to one session, and each holdfast run starts a new
//! session: so the factor goes on the privileged command itself
//! (`holdfast admin keys rotate --totp 123456`), which steps up first and
//! then acts, in the same session.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use holdfast_hw::KeyKind;
use holdfast_proto::{Clock as _, SystemClock, build_step_up_proof};
use serde_json::{Value, json};

use super::{Admin, principal_id};
use crate::cli::{AdminArgs, StepUpCommand};
use crate::commands::table::cell;
use crate::error::CliError;

/// A factor given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Factor {
    /// A TOTP code (six digits).
    Totp(String),
    /// A signature by the agent's own key: a YubiKey with touch policy
    /// `always`.
    Yubikey,
}

impl Factor {
    /// The factor `--totp` or `--yubikey` names, if any.
    pub(super) fn from_args(args: &AdminArgs) -> Result<Option<Self>, CliError> {
        match (&args.totp, args.yubikey) {
            (Some(code), false) => totp_code(code).map(|c| Some(Self::Totp(c))),
            (None, true) => Ok(Some(Self::Yubikey)),
            (None, false) => Ok(None),
            (Some(_), true) => Err(CliError::Usage(
                "give one step-up factor: --totp CODE or --yubikey".to_owned(),
            )),
        }
    }
}

/// `--totp`: six digits (spaces, as some apps show them, are dropped).
fn totp_code(arg: &str) -> Result<String, CliError> {
    let code: String = arg.chars().filter(|c| *c != ' ').collect();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(CliError::Usage(format!(
            "--totp {arg:?}: a TOTP code is the 6 digits your authenticator app shows"
        )))
    }
}

/// Steps up this run's session with `factor`; returns the issuer's answer
/// (`{"method","expires_in","expires_at"}`).
pub(super) async fn perform(admin: &Admin, factor: &Factor) -> Result<Value, CliError> {
    let body = match factor {
        Factor::Totp(code) => json!({ "method": "totp", "code": code }),
        Factor::Yubikey => {
            let challenge = admin.post_once("/step-up/challenge", None).await?;
            let text = |key: &str| {
                challenge
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        CliError::Failed(format!("the step-up challenge answer has no {key}"))
                    })
            };
            let (nonce, sid) = (text("challenge")?, text("sid")?);
            if admin.kind == KeyKind::Yubikey {
                eprintln!("holdfast: touch your YubiKey to step up");
            }
            let key = Arc::clone(&admin.key);
            let kid = key.public_jwk().thumbprint().as_str().to_owned();
            // The signature may wait for a touch: off the async runtime.
            let proof = tokio::task::spawn_blocking(move || {
                build_step_up_proof(&*key, &kid, &nonce, &sid, SystemClock.now())
            })
            .await
            .map_err(|e| CliError::Failed(format!("the signing task failed: {e}")))?
            .map_err(|e| CliError::Failed(format!("cannot sign the step-up proof: {e}")))?;
            json!({ "method": "yubikey", "device_id": admin.device_id, "proof": proof })
        }
    };
    admin.post_once("/step-up", Some(&body)).await
}

/// Asks for a TOTP code on the terminal; `None` without one.
pub(super) fn prompt_code(principal: &str) -> Result<Option<String>, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(None);
    }
    eprint!("holdfast: step-up needed. TOTP code for {principal}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the code: {e}")))?;
    totp_code(line.trim()).map(Some)
}

/// `holdfast admin step-up …`; `granted` is the answer of the step-up that
/// `--totp`/`--yubikey` already performed.
pub(super) async fn run(
    admin: &Admin,
    command: Option<&StepUpCommand>,
    granted: Option<Value>,
) -> Result<ExitCode, CliError> {
    match command {
        None => {
            let granted = match granted {
                Some(answer) => answer,
                None => {
                    let Some(code) = prompt_code(&admin.principal)? else {
                        return Err(CliError::Usage(
                            "give the factor: --totp CODE (your authenticator app) or --yubikey \
                             (touch your YubiKey)"
                                .to_owned(),
                        ));
                    };
                    perform(admin, &Factor::Totp(code)).await?
                }
            };
            admin.print(&granted, |g| {
                println!(
                    "step-up granted ({}) for {} s to this run's session.",
                    cell(g, "method"),
                    cell(g, "expires_in")
                );
                eprintln!(
                    "holdfast: each holdfast run is a new session: give --totp or --yubikey to \
                     the privileged command itself, e.g. `holdfast admin keys rotate --totp CODE`"
                );
            });
        }
        Some(StepUpCommand::TotpEnroll) => {
            let answer = admin.post("/step-up/totp", None).await?;
            admin.print(&answer, |a| {
                println!("{}", cell(a, "otpauth_uri"));
                eprintln!(
                    "holdfast: add this to your authenticator app (paste it, or make a QR code \
                     of it, e.g. `qrencode -t ansiutf8`). It is shown only now. Then confirm it \
                     with `holdfast admin step-up --totp CODE`."
                );
            });
        }
        Some(StepUpCommand::Unlock { principal }) => {
            let id = principal_id(admin, principal).await?;
            let answer = admin
                .post(&format!("/principals/{id}/step-up/unlock"), None)
                .await?;
            admin.print(&answer, |a| {
                let was = if a.get("was_locked").and_then(Value::as_bool) == Some(true) {
                    "unlocked"
                } else {
                    "was not locked; its failure count is reset"
                };
                println!("step-up of {principal} ({id}) {was}");
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_codes_are_six_digits() {
        assert_eq!(totp_code("123456").unwrap(), "123456");
        assert_eq!(totp_code("123 456").unwrap(), "123456");
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert!(matches!(totp_code(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }
}
