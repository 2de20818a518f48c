//! `holdfast admin audit tail|verify|export`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::{Admin, items};
use crate::cli::AdminAuditCommand;
use crate::commands::print_json;
use crate::commands::table::{Table, cell, date_cell};
use crate::error::CliError;

/// The most records the issuer returns per page.
const PAGE: u64 = 1000;

pub(super) async fn run(admin: &Admin, command: &AdminAuditCommand) -> Result<ExitCode, CliError> {
    match command {
        AdminAuditCommand::Tail { n } => tail(admin, *n).await,
        AdminAuditCommand::Verify => verify(admin).await,
        AdminAuditCommand::Export { since } => export(admin, *since).await,
    }
}

async fn tail(admin: &Admin, n: u64) -> Result<ExitCode, CliError> {
    let last = last_seq(admin).await?;
    let mut records = Vec::new();
    if n > 0 && last > 0 {
        let mut from = last.saturating_sub(n - 1).max(1);
        while from <= last {
            let (page, next) = page(admin, from, PAGE.min(last - from + 1)).await?;
            records.extend(page);
            match next {
                Some(next) => from = next,
                None => break,
            }
        }
    }
    admin.print(&json!({ "records": records }), |_| {
        let mut table = Table::new(&["SEQ", "AT", "EVENT", "ACTOR", "OUTCOME", "DETAILS"]);
        for record in &records {
            table.row(vec![
                cell(record, "seq"),
                date_cell(record, "at"),
                cell(record, "event"),
                cell(record, "actor"),
                cell(record, "outcome"),
                cell(record, "details"),
            ]);
        }
        table.print();
    });
    Ok(ExitCode::SUCCESS)
}

async fn verify(admin: &Admin) -> Result<ExitCode, CliError> {
    let answer = admin.get("/audit/verify").await?;
    let valid = answer.get("valid").and_then(Value::as_bool) == Some(true);
    admin.print(&answer, |a| {
        if valid {
            println!("the audit chain is intact: {} records", cell(a, "records"));
        } else {
            println!(
                "the audit chain is BROKEN at record {}: {}",
                cell(a, "broken_at"),
                cell(a, "reason")
            );
        }
    });
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every record from `since` on, one JSON object per line (always JSON).
async fn export(admin: &Admin, since: u64) -> Result<ExitCode, CliError> {
    let mut from = since.max(1);
    loop {
        let (records, next) = page(admin, from, PAGE).await?;
        for record in &records {
            print_json(record);
        }
        match next {
            Some(next) => from = next,
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// One page of records from `from`, and the `from` of the next page (none
/// at the end).
async fn page(admin: &Admin, from: u64, limit: u64) -> Result<(Vec<Value>, Option<u64>), CliError> {
    let answer = admin
        .get(&format!("/audit?from={from}&limit={limit}"))
        .await?;
    let next = answer.get("next").and_then(Value::as_u64);
    Ok((items(&answer, "records").to_vec(), next))
}

/// The last sequence number (0 for an empty log). The API reads forward
/// from a sequence number, so find the end by doubling, then bisecting:
/// about 2·log2(n) one-record reads instead of reading the whole log.
async fn last_seq(admin: &Admin) -> Result<u64, CliError> {
    let exists = |seq: u64| async move {
        page(admin, seq, 1)
            .await
            .map(|(records, _)| !records.is_empty())
    };
    if !exists(1).await? {
        return Ok(0);
    }
    // Invariant: `low` exists and `high` does not.
    let mut low = 1u64;
    let mut high = 2u64;
    while exists(high).await? {
        low = high;
        high = high.checked_mul(2).ok_or_else(|| {
            CliError::Failed("the audit log claims more than 2^63 records".to_owned())
        })?;
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if exists(middle).await? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(low)
}
