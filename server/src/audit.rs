//! The audit log: append-only, each record carrying the SHA-256 of the one
//! before, so removing or editing any record breaks the chain at that point.
//!
//! Linking is pure and lives here; appending atomically is the store's job.

use aws_lc_rs::digest;
use holdfast_proto::UnixTime;
use serde::{Deserialize, Serialize};

use crate::store::{AuditRecord, Store, StoreError};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: UnixTime,
    /// What, e.g. `token_issued`, `token_refused`, `enrollment`, `revocation`.
    pub event: String,
    /// Who acted: a principal, device, `admin:<id>`, `system` or `anonymous`.
    pub actor: String,
    /// Client address, when there was a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// `ok` or the refusal's wire code.
    pub outcome: String,
    /// Event-specific facts (ids, the failed check, both IPs…), never secrets.
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEntry {
    /// An entry at `at` with no details.
    pub fn new(at: UnixTime, event: &str, actor: &str, outcome: &str) -> Self {
        Self {
            at,
            event: event.to_owned(),
            actor: actor.to_owned(),
            ip: None,
            outcome: outcome.to_owned(),
            details: serde_json::Map::new(),
        }
    }

    /// Adds the client address.
    #[must_use]
    pub fn ip(mut self, ip: Option<&str>) -> Self {
        self.ip = ip.map(str::to_owned);
        self
    }

    /// Adds one detail.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The hash linking `entry` at `seq` after `prev_hash`.
pub fn link_hash(prev_hash: &str, seq: u64, entry: &AuditEntry) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(&seq.to_be_bytes());
    // serde_json writes struct fields in declaration order and maps sorted,
    // so the encoding of an entry is deterministic.
    ctx.update(&serde_json::to_vec(entry).unwrap_or_default());
    hex(ctx.finish().as_ref())
}

/// Makes the record for `entry` following the record `prev` (if any).
pub fn chain(prev: Option<&AuditRecord>, entry: AuditEntry) -> AuditRecord {
    let (seq, prev_hash) = match prev {
        Some(prev) => (prev.seq + 1, prev.hash.clone()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = link_hash(&prev_hash, seq, &entry);
    AuditRecord {
        seq,
        entry,
        prev_hash,
        hash,
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at record {seq}: {reason}")]
pub struct BrokenChain {
    /// The first record that does not verify.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Walks records in order and checks every link. Returns how many records
/// were checked.
///
/// # Errors
/// [`BrokenChain`] naming the first bad record.
pub fn verify_chain(records: impl IntoIterator<Item = AuditRecord>) -> Result<u64, BrokenChain> {
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    for record in records {
        if record.seq != expected_seq {
            return Err(BrokenChain {
                seq: expected_seq,
                reason: "record missing (sequence gap)",
            });
        }
        if record.prev_hash != prev_hash {
            return Err(BrokenChain {
                seq: record.seq,
                reason: "prev_hash does not match the previous record",
            });
        }
        if link_hash(&record.prev_hash, record.seq, &record.entry) != record.hash {
            return Err(BrokenChain {
                seq: record.seq,
                reason: "record content does not match its hash (edited)",
            });
        }
        prev_hash = record.hash;
        expected_seq += 1;
    }
    Ok(expected_seq - 1)
}

/// Audit records from `from` on, read from the store a page at a time (for
/// `audit verify`, `audit export` and the admin API).
pub struct AuditPages<'a> {
    store: &'a dyn Store,
    next: u64,
    page: std::vec::IntoIter<AuditRecord>,
    done: bool,
}

impl<'a> AuditPages<'a> {
    /// Records with `seq >= from`.
    pub fn new(store: &'a dyn Store, from: u64) -> Self {
        Self {
            store,
            next: from.max(1),
            page: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl Iterator for AuditPages<'_> {
    type Item = Result<AuditRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(record) = self.page.next() {
            self.next = record.seq + 1;
            return Some(Ok(record));
        }
        if self.done {
            return None;
        }
        match self.store.audit_range(self.next, 1000) {
            Ok(page) if page.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                self.page = page.into_iter();
                self.next()
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let entry = AuditEntry::new(UnixTime::from_secs(100 + i), "test", "system", "ok")
                .detail("i", i);
            out.push(chain(out.last(), entry));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_chain(records(5)), Ok(5));
        assert_eq!(verify_chain(Vec::new()), Ok(0));
    }

    #[test]
    fn detects_edited_record() {
        let mut r = records(5);
        r[2].entry.outcome = "invalid_grant".into();
        assert_eq!(verify_chain(r).unwrap_err().seq, 3);
    }

    #[test]
    fn detects_removed_record() {
        let mut r = records(5);
        r.remove(1);
        assert_eq!(
            verify_chain(r),
            Err(BrokenChain {
                seq: 2,
                reason: "record missing (sequence gap)"
            })
        );
    }

    #[test]
    fn detects_rehashed_record_by_its_successor() {
        let mut r = records(5);
        r[2].entry.actor = "mallory".into();
        r[2].hash = link_hash(&r[2].prev_hash, 3, &r[2].entry);
        assert_eq!(verify_chain(r).unwrap_err().seq, 4);
    }
}
