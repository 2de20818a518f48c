//! `holdfast admin devices list|show|disable|enable|revoke`.

use std::process::ExitCode;

use serde_json::Value;

use super::{Admin, id, items, principal_id};
use crate::cli::AdminDevicesCommand;
use crate::commands::table::{Table, cell, date_cell, print_fields};
use crate::error::CliError;

pub(super) async fn run(
    admin: &Admin,
    command: &AdminDevicesCommand,
) -> Result<ExitCode, CliError> {
    match command {
        AdminDevicesCommand::List { principal } => list(admin, principal.as_deref()).await,
        AdminDevicesCommand::Show { id: device } => {
            let answer = admin
                .get(&format!("/devices/{}", device_id(device)?))
                .await?;
            admin.print(&answer, show);
            Ok(ExitCode::SUCCESS)
        }
        AdminDevicesCommand::Disable { id: device } => set_state(admin, device, "disable").await,
        AdminDevicesCommand::Enable { id: device } => set_state(admin, device, "enable").await,
        AdminDevicesCommand::Revoke { id: device } => {
            let path = format!("/devices/{}/revoke", device_id(device)?);
            let event = admin.post(&path, None).await?;
            admin.print(&event, |e| {
                println!(
                    "revoked device {} (feed cursor {}): its sessions are over and verifiers \
                     following the revocation feed stop accepting its tokens",
                    cell(e, "id"),
                    cell(e, "cursor")
                );
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(admin: &Admin, principal: Option<&str>) -> Result<ExitCode, CliError> {
    let path = match principal {
        Some(p) => format!("/devices?principal={}", principal_id(admin, p).await?),
        None => "/devices".to_owned(),
    };
    let answer = admin.get(&path).await?;
    admin.print(&answer, |answer| {
        let mut table = Table::new(&["ID", "NAME", "KIND", "STATE", "PRINCIPAL", "LAST SEEN"]);
        for device in items(answer, "devices") {
            table.row(vec![
                cell(device, "id"),
                cell(device, "name"),
                cell(device, "kind"),
                cell(device, "state"),
                cell(device, "principal"),
                date_cell(device, "last_seen"),
            ]);
        }
        table.print();
    });
    Ok(ExitCode::SUCCESS)
}

async fn set_state(admin: &Admin, device: &str, action: &str) -> Result<ExitCode, CliError> {
    let path = format!("/devices/{}/{action}", device_id(device)?);
    let answer = admin.post(&path, None).await?;
    admin.print(&answer, |d| {
        println!("device {} is {}", cell(d, "id"), cell(d, "state"));
    });
    Ok(ExitCode::SUCCESS)
}

fn show(device: &Value) {
    let attestation = device.get("attestation");
    print_fields(&[
        ("id", cell(device, "id")),
        ("name", cell(device, "name")),
        ("principal", cell(device, "principal")),
        ("kind", cell(device, "kind")),
        (
            "attestation",
            attestation.map_or_else(|| "-".to_owned(), |a| cell(a, "kind")),
        ),
        ("state", cell(device, "state")),
        ("jkt", cell(device, "jkt")),
        ("created", date_cell(device, "created_at")),
        ("last seen", date_cell(device, "last_seen")),
    ]);
    // What the attestation proved at enrollment (TPM manufacturer, model,
    // EK fingerprint…; YubiKey serial, policies…), under the issuer's names
    // for them, as `--json` shows them.
    let facts = attestation
        .and_then(|a| a.get("details"))
        .and_then(Value::as_object)
        .filter(|facts| !facts.is_empty());
    if let Some(facts) = facts {
        println!("attested:");
        let labels: Vec<String> = facts
            .keys()
            .map(|name| format!("  {}", printable(name)))
            .collect();
        let rows: Vec<(&str, String)> = labels
            .iter()
            .zip(facts.values())
            .map(|(label, value)| (label.as_str(), fact(value)))
            .collect();
        print_fields(&rows);
    }
}

/// An attested fact for a terminal: strings bare, anything else as JSON.
fn fact(value: &Value) -> String {
    match value {
        Value::String(text) => printable(text),
        other => printable(&other.to_string()),
    }
}

/// `text` with control characters escaped: the facts come from device
/// certificates, and a terminal must not interpret what a device wrote.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn device_id(given: &str) -> Result<&str, CliError> {
    id(given, "d-", "device")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_printed_without_control_characters() {
        assert_eq!(fact(&Value::from("swtpm")), "swtpm");
        assert_eq!(fact(&Value::from("a\u{1b}[2Jb\n")), "a\\u{1b}[2Jb\\n");
        assert_eq!(fact(&Value::from(7)), "7");
    }
}
