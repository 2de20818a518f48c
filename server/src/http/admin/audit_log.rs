//! `/admin/audit`: read a range of the chain, verify the whole chain.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminCaller;
use super::extract::AdminQuery;
use crate::audit::verify_chain;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditRecord, Store, StoreError};

/// Records per answer unless `limit` says fewer.
const DEFAULT_LIMIT: usize = 100;
/// Most records per answer.
const MAX_LIMIT: usize = 1000;
/// Records read per store call while verifying.
const VERIFY_PAGE: usize = 1000;

/// `?from=<seq>&limit=<n>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Range {
    from: Option<u64>,
    limit: Option<usize>,
}

/// `GET /admin/audit[?from=1&limit=100]` → `{"records": [AuditRecord…],
/// "next": <seq to ask for next, or null at the end>}`; `limit` is capped at
/// 1000.
pub(super) async fn range(
    State(state): State<AppState>,
    _caller: AdminCaller,
    AdminQuery(range): AdminQuery<Range>,
) -> Result<Json<Value>, ApiError> {
    let limit = range.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let records = state.store.audit_range(range.from.unwrap_or(1), limit)?;
    let next = records
        .last()
        .filter(|_| records.len() == limit)
        .map(|last| last.seq.saturating_add(1));
    Ok(Json(json!({ "records": records, "next": next })))
}

/// `GET /admin/audit/verify` → `{"valid": true, "records": n}` or
/// `{"valid": false, "broken_at": seq, "reason": "…"}`. The walk reads the
/// whole log, so it runs off the request threads.
pub(super) async fn verify(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let walk = tokio::task::spawn_blocking(move || {
        let mut pages = Pages::new(state.store.as_ref());
        let result = verify_chain(&mut pages);
        pages.error.map_or(Ok(result), Err)
    });
    let result = walk.await.map_err(|e| ApiError::server(&e))??;
    Ok(Json(match result {
        Ok(records) => json!({ "valid": true, "records": records }),
        Err(broken) => json!({ "valid": false, "broken_at": broken.seq, "reason": broken.reason }),
    }))
}

/// The audit log in order, read a page at a time. A store failure ends the
/// iteration and is kept in `error`, so a partial walk is never reported as
/// a valid chain.
struct Pages<'a> {
    store: &'a dyn Store,
    next_seq: u64,
    page: std::vec::IntoIter<AuditRecord>,
    done: bool,
    error: Option<StoreError>,
}

impl<'a> Pages<'a> {
    fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            next_seq: 1,
            page: Vec::new().into_iter(),
            done: false,
            error: None,
        }
    }
}

impl Iterator for Pages<'_> {
    type Item = AuditRecord;

    fn next(&mut self) -> Option<AuditRecord> {
        loop {
            if let Some(record) = self.page.next() {
                return Some(record);
            }
            if self.done {
                return None;
            }
            match self.store.audit_range(self.next_seq, VERIFY_PAGE) {
                Ok(page) => {
                    self.done = page.len() < VERIFY_PAGE;
                    let last = page.last()?;
                    self.next_seq = last.seq.saturating_add(1);
                    self.page = page.into_iter();
                }
                Err(e) => {
                    self.error = Some(e);
                    self.done = true;
                }
            }
        }
    }
}
