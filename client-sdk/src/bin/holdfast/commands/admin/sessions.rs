//! `holdfast admin sessions list|revoke` and `holdfast admin revoke-all`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use holdfast_proto::{Clock as _, SystemClock};
use serde_json::{Value, json};

use super::{Admin, id, items, principal_id};
use crate::cli::{AdminSessionsCommand, RevokeAllArgs};
use crate::commands::table::{Table, cell, date, date_cell};
use crate::error::CliError;

pub(super) async fn run(
    admin: &Admin,
    command: &AdminSessionsCommand,
) -> Result<ExitCode, CliError> {
    match command {
        AdminSessionsCommand::List { principal, device } => {
            list(admin, principal.as_deref(), device.as_deref()).await
        }
        AdminSessionsCommand::Revoke { sid } => {
            let path = format!("/sessions/{}/revoke", id(sid, "s-", "session")?);
            let event = admin.post(&path, None).await?;
            admin.print(&event, |e| {
                println!(
                    "revoked session {} (feed cursor {})",
                    cell(e, "id"),
                    cell(e, "cursor")
                );
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(
    admin: &Admin,
    principal: Option<&str>,
    device: Option<&str>,
) -> Result<ExitCode, CliError> {
    let mut query = Vec::new();
    if let Some(p) = principal {
        query.push(format!("principal={}", principal_id(admin, p).await?));
    }
    if let Some(d) = device {
        query.push(format!("device={}", id(d, "d-", "device")?));
    }
    let path = if query.is_empty() {
        "/sessions".to_owned()
    } else {
        format!("/sessions?{}", query.join("&"))
    };
    let answer = admin.get(&path).await?;
    let now = SystemClock.now().as_secs();
    admin.print(&answer, |answer| {
        let mut table = Table::new(&[
            "ID",
            "DEVICE",
            "PRINCIPAL",
            "CREATED",
            "EXPIRES",
            "STATE",
            "IP",
        ]);
        for session in items(answer, "sessions") {
            table.row(vec![
                cell(session, "id"),
                cell(session, "device"),
                cell(session, "principal"),
                date_cell(session, "created_at"),
                date_cell(session, "expires_at"),
                state(session, now),
                cell(session, "ip"),
            ]);
        }
        table.print();
    });
    Ok(ExitCode::SUCCESS)
}

/// `alive`, `expired` or `revoked (reason)`, and any risk flags. (A
/// revoke-all is not in session records; `sessions list` cannot see it.)
fn state(session: &Value, now: u64) -> String {
    let mut state = match session.get("revoked").filter(|r| !r.is_null()) {
        Some(revoked) => format!("revoked ({})", cell(revoked, "reason")),
        None if session
            .get("expires_at")
            .and_then(Value::as_u64)
            .is_some_and(|exp| exp <= now) =>
        {
            "expired".to_owned()
        }
        None => "alive".to_owned(),
    };
    let flags: Vec<&str> = items(session, "flags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !flags.is_empty() {
        state.push_str(&format!(" [{}]", flags.join(",")));
    }
    state
}

pub(super) async fn revoke_all(admin: &Admin, args: &RevokeAllArgs) -> Result<ExitCode, CliError> {
    let before = before(&args.before)?;
    if !args.yes {
        confirm(before)?;
    }
    // `before` null: the issuer's own "now", not this machine's clock.
    let body = json!({ "before": before, "reason": args.reason });
    let event = admin.post("/revoke-all", Some(&body)).await?;
    admin.print(&event, |e| {
        println!(
            "revoked every session begun before {} (feed cursor {}); every device must start a \
             new session. The reason is in the audit log.",
            e.get("before")
                .and_then(Value::as_u64)
                .map_or_else(|| "now".to_owned(), date),
            cell(e, "cursor")
        );
    });
    Ok(ExitCode::SUCCESS)
}

/// `--before`: `now` (the issuer's clock) or Unix seconds.
fn before(arg: &str) -> Result<Option<u64>, CliError> {
    if arg.eq_ignore_ascii_case("now") {
        return Ok(None);
    }
    arg.parse()
        .map(Some)
        .map_err(|_| CliError::Usage(format!("--before {arg}: expected Unix seconds or \"now\"")))
}

/// Asks on the terminal; refuses outright when there is no terminal to ask.
fn confirm(before: Option<u64>) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(
            "revoke-all ends every session and needs confirmation, but standard input is not a \
             terminal: pass --yes to confirm"
                .to_owned(),
        ));
    }
    let when = before.map_or_else(|| "now".to_owned(), date);
    eprint!(
        "This ends EVERY session of EVERY device begun before {when}, this one included: every \
         device must log in again.\nType \"yes\" to continue: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Failed(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CliError::Failed(
            "not confirmed; nothing was revoked".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_takes_now_or_unix_seconds() {
        assert_eq!(before("now").unwrap(), None);
        assert_eq!(before("NOW").unwrap(), None);
        assert_eq!(before("1764000000").unwrap(), Some(1_764_000_000));
        assert!(matches!(before("yesterday"), Err(CliError::Usage(_))));
        assert!(matches!(before("-1"), Err(CliError::Usage(_))));
    }

    #[test]
    fn session_state_reads_revocation_expiry_and_flags() {
        let alive = json!({"expires_at": 200, "revoked": null, "flags": []});
        assert_eq!(state(&alive, 100), "alive");
        assert_eq!(state(&alive, 200), "expired");
        let revoked = json!({"expires_at": 200, "revoked": {"at": 1, "reason": "admin"},
            "flags": ["ip_deviation"]});
        assert_eq!(state(&revoked, 100), "revoked (admin) [ip_deviation]");
    }
}
