//! `holdfast status`: who this agent is, and whether it can get a session.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::agent::{self, explain};
use super::print_json;
use super::table::print_fields;
use super::token::{Decoded, decode, expiry};
use crate::agent_state::{AgentState, AgentStateError};
use crate::cli::StatusArgs;
use crate::error::CliError;

pub(crate) fn status(args: &StatusArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    let dir = agent::dir(agent_dir)?;
    let state = match AgentState::load(&dir) {
        Err(err @ AgentStateError::NotEnrolled(_)) => {
            if args.json {
                print_json(&json!({ "enrolled": false, "agent_dir": dir }));
            }
            return Err(err.into());
        }
        other => other?,
    };
    let session = session(&dir);
    if args.json {
        print_json(&json!({
            "enrolled": true,
            "agent_dir": dir,
            "state": state,
            "session": session_json(&session),
        }));
    } else {
        print_state(&state, &session);
    }
    session.map(|_| ExitCode::SUCCESS)
}

/// A new session's token, decoded.
fn session(dir: &Path) -> Result<Decoded, CliError> {
    let enrolled = agent::load(dir)?;
    let token = super::block_on(async {
        let client = agent::client(&enrolled).await?;
        client.access_token().await.map_err(explain)
    })??;
    decode(&token)
}

fn session_json(session: &Result<Decoded, CliError>) -> Value {
    match session {
        Ok(decoded) => json!({
            "ok": true,
            "sid": decoded.claims.sid,
            "exp": decoded.claims.exp,
            "amr": decoded.claims.amr,
        }),
        Err(err) => json!({ "ok": false, "error": err.to_string() }),
    }
}

fn print_state(state: &AgentState, session: &Result<Decoded, CliError>) {
    let session = match session {
        Ok(decoded) => format!(
            "ok: session {} until {}",
            decoded.claims.sid.as_deref().unwrap_or("-"),
            expiry(&decoded.claims)
        ),
        // The error itself goes to standard error, as the exit reason.
        Err(_) => "FAILED (see below)".to_owned(),
    };
    // A YubiKey key has no file: say which YubiKey and slot hold it.
    let key = match &state.yubikey {
        Some(yk) => ("yubikey", format!("serial {}, slot {}", yk.serial, yk.slot)),
        None => ("key file", state.key_file.display().to_string()),
    };
    print_fields(&[
        ("server", state.server.clone()),
        ("client id", state.client_id.clone()),
        (
            "principal",
            format!("{} ({})", state.principal, state.principal_id),
        ),
        ("kind", state.kind.to_string()),
        key,
        ("jkt", state.jkt.to_string()),
        ("session", session),
    ]);
}
