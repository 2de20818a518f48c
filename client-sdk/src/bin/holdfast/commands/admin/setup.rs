//! `holdfast admin keys rotate` and `holdfast admin codes create`.

use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::{Value, json};

use super::{Admin, items};
use crate::cli::{AdminCodesCommand, AdminKeysCommand, CodesCreateArgs};
use crate::commands::table::{cell, date_cell};
use crate::error::CliError;

pub(super) async fn keys(admin: &Admin, command: &AdminKeysCommand) -> Result<ExitCode, CliError> {
    match command {
        AdminKeysCommand::Rotate => {
            let answer = admin.post("/keys/rotate", None).await?;
            admin.print(&answer, |a| {
                let published: Vec<&str> = items(a, "published")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                println!("new signing key: {}", cell(a, "kid"));
                println!("published in /jwks: {}", published.join(", "));
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn codes(
    admin: &Admin,
    command: &AdminCodesCommand,
) -> Result<ExitCode, CliError> {
    let AdminCodesCommand::Create(args) = command;
    let body = code_request(args)?;
    let answer = admin.post("/enrollment-codes", Some(&body)).await?;
    admin.print(&answer, |a| {
        println!(
            "enrollment code for {} ({}), valid once until {}:",
            args.principal,
            cell(a, "principal"),
            date_cell(a, "expires_at")
        );
        println!();
        println!("    {}", cell(a, "code"));
        println!();
        eprintln!(
            "holdfast: it is shown only now; give it to the device's owner out of band. They run:\n  \
             holdfast enroll --server <issuer URL> --code <CODE> --tpm|--yubikey|--software"
        );
    });
    Ok(ExitCode::SUCCESS)
}

/// The `POST /admin/enrollment-codes` body; unset members take the issuer's
/// defaults.
fn code_request(args: &CodesCreateArgs) -> Result<Value, CliError> {
    let roles: Vec<String> = args.roles.iter().filter_map(value_name).collect();
    let kinds: Vec<String> = args.kinds.iter().filter_map(value_name).collect();
    let ttl_secs = args.ttl.as_deref().map(ttl).transpose()?;
    let mut body = json!({ "principal": args.principal, "kinds": kinds });
    if let Some(object) = body.as_object_mut() {
        if !roles.is_empty() {
            object.insert("roles".into(), json!(roles));
        }
        if let Some(ttl_secs) = ttl_secs {
            object.insert("ttl_secs".into(), json!(ttl_secs));
        }
    }
    Ok(body)
}

/// The name clap shows for `value` (`admin`, `tpm`…), which is the wire name.
fn value_name(value: &impl ValueEnum) -> Option<String> {
    value.to_possible_value().map(|p| p.get_name().to_owned())
}

/// `--ttl`: seconds, or a number with `s`, `m`, `h` or `d`.
fn ttl(arg: &str) -> Result<u64, CliError> {
    let bad = || CliError::Usage(format!("--ttl {arg}: expected e.g. 30m, 1h, 7d or 86400"));
    let (digits, unit) = match arg.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => (
            arg.get(..at).ok_or_else(bad)?,
            arg.get(at..).ok_or_else(bad)?,
        ),
        None => (arg, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).filter(|&s| s > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{KindArg, RoleArg};

    #[test]
    fn ttl_takes_units_and_plain_seconds() {
        assert_eq!(ttl("86400").unwrap(), 86_400);
        assert_eq!(ttl("30m").unwrap(), 1800);
        assert_eq!(ttl("1h").unwrap(), 3600);
        assert_eq!(ttl("7d").unwrap(), 604_800);
        for bad in [
            "",
            "0",
            "0h",
            "1w",
            "h",
            "1.5h",
            "-1",
            "99999999999999999999d",
        ] {
            assert!(matches!(ttl(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn code_request_names_roles_and_kinds_and_omits_defaults() {
        let mut args = CodesCreateArgs {
            principal: "alice".into(),
            roles: vec![],
            kinds: vec![KindArg::Tpm, KindArg::Yubikey],
            ttl: None,
        };
        assert_eq!(
            code_request(&args).unwrap(),
            json!({"principal": "alice", "kinds": ["tpm", "yubikey"]})
        );
        args.roles = vec![RoleArg::Device, RoleArg::Admin];
        args.ttl = Some("1h".into());
        assert_eq!(
            code_request(&args).unwrap(),
            json!({"principal": "alice", "kinds": ["tpm", "yubikey"],
                   "roles": ["device", "admin"], "ttl_secs": 3600})
        );
    }
}
