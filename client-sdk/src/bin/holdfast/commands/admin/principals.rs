//! `holdfast admin principals list|revoke`.

use std::process::ExitCode;

use serde_json::Value;

use super::{Admin, items, principal_id};
use crate::cli::AdminPrincipalsCommand;
use crate::commands::table::{Table, cell, date_cell};
use crate::error::CliError;

pub(super) async fn run(
    admin: &Admin,
    command: &AdminPrincipalsCommand,
) -> Result<ExitCode, CliError> {
    match command {
        AdminPrincipalsCommand::List => {
            let answer = admin.get("/principals").await?;
            admin.print(&answer, |answer| {
                let mut table = Table::new(&["ID", "NAME", "ROLES", "STATE", "CREATED"]);
                for principal in items(answer, "principals") {
                    table.row(vec![
                        cell(principal, "id"),
                        cell(principal, "name"),
                        roles(principal),
                        state(principal).to_owned(),
                        date_cell(principal, "created_at"),
                    ]);
                }
                table.print();
            });
        }
        AdminPrincipalsCommand::Revoke { id } => {
            let id = principal_id(admin, id).await?;
            let event = admin
                .post(&format!("/principals/{id}/revoke"), None)
                .await?;
            admin.print(&event, |e| {
                println!(
                    "revoked principal {} (feed cursor {}): disabled for good, every session of \
                     its devices is over",
                    cell(e, "id"),
                    cell(e, "cursor")
                );
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn roles(principal: &Value) -> String {
    items(principal, "roles")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn state(principal: &Value) -> &'static str {
    if principal.get("disabled").and_then(Value::as_bool) == Some(true) {
        "disabled"
    } else {
        "enabled"
    }
}
