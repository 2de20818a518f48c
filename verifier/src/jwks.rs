//! The issuer's signing keys, fetched from its JWKS and kept current.
//!
//! The per-request check looks a key up synchronously
//! ([`IssuerKeys::key`]); it never waits for the network. A token naming a
//! `kid` this cache does not hold is refused (`invalid_token`), and the miss
//! wakes the refresher, which refetches the JWKS in the background: after a
//! key rotation the first request with the new `kid` is refused, the next
//! ones (once the refetch has landed, typically milliseconds later) pass.
//!
//! Refetches are rate-limited: at most one per
//! [`JwksOptions::min_refetch_interval`] (default 10 s), however many
//! unknown `kid`s arrive, so a flood of forged tokens cannot make the
//! verifier hammer the issuer. The JWKS is also refetched every
//! [`JwksOptions::refresh_interval`] (default 5 min) to pick up rotations
//! before any token uses them, and to drop retired keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use holdfast_proto::{Alg, IssuerKeys, Jwk, VerifyingKey};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::feed::{FetchError, get_json};

/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys taken from one JWKS; the rest are ignored.
const MAX_KEYS: usize = 64;
/// Longest `kid` accepted from the JWKS.
const MAX_KID_LEN: usize = 256;

/// How the cache refetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksOptions {
    /// Least time between two fetches caused by unknown `kid`s (or by
    /// failures). Default 10 s.
    pub min_refetch_interval: Duration,
    /// Time between periodic fetches. Default 5 min.
    pub refresh_interval: Duration,
    /// Timeout of one fetch. Default 10 s.
    pub timeout: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            min_refetch_interval: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why the JWKS could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The request failed or the answer was unreadable.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document is not a JWK Set (RFC 7517 §5: an object with `keys`).
    #[error("the JWKS is not an object with a `keys` array")]
    NotAKeySet,
    /// No key of the set can verify ES256 tokens (each needs a `kid`).
    #[error("the JWKS has no usable ES256 signing key with a kid")]
    NoUsableKeys,
}

/// Counters of a [`JwksCache`], for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JwksStats {
    /// Fetches that replaced the keys.
    pub fetches: u64,
    /// Fetches that failed (the previous keys were kept).
    pub failures: u64,
    /// Lookups of a `kid` the cache did not hold.
    pub unknown_kids: u64,
    /// Refetches asked for by an unknown `kid` and held back by the rate
    /// limit.
    pub deferred: u64,
    /// Keys held now.
    pub keys: usize,
}

/// The issuer's keys by `kid`, refetched on an unknown `kid` (rate-limited)
/// and periodically. Run [`JwksCache::run`] in a task to keep it current.
pub struct JwksCache {
    jwks_uri: String,
    http: reqwest::Client,
    options: JwksOptions,
    keys: RwLock<HashMap<String, Arc<VerifyingKey>>>,
    /// Woken by a lookup miss; holds one permit, so a burst of misses asks
    /// for one refetch.
    missed: Notify,
    /// When the last fetch was attempted, and whether it worked.
    last_attempt: Mutex<Option<(Instant, bool)>>,
    failing: AtomicBool,
    fetches: AtomicU64,
    failures: AtomicU64,
    unknown_kids: AtomicU64,
    deferred: AtomicU64,
}

impl JwksCache {
    /// An empty cache for the JWKS at `jwks_uri`; call
    /// [`refresh`](Self::refresh) before use.
    pub fn new(jwks_uri: &str, http: reqwest::Client, options: JwksOptions) -> Self {
        Self {
            jwks_uri: jwks_uri.to_owned(),
            http,
            options,
            keys: RwLock::new(HashMap::new()),
            missed: Notify::new(),
            last_attempt: Mutex::new(None),
            failing: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            unknown_kids: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
        }
    }

    /// Fetches the JWKS now (not rate-limited) and replaces the keys;
    /// returns how many keys it holds. On failure the previous keys stay.
    ///
    /// # Errors
    /// [`JwksError`] when the JWKS cannot be fetched or has no usable key.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let started = Instant::now();
        let result = self.fetch().await;
        let ok = result.is_ok();
        if let Ok(mut last) = self.last_attempt.lock() {
            *last = Some((started, ok));
        }
        match result {
            Ok(keys) => {
                let count = keys.len();
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                self.fetches.fetch_add(1, Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(keys = count, "issuer JWKS reachable again");
                }
                Ok(count)
            }
            Err(err) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %err, "cannot refresh the issuer JWKS; keeping the keys held");
                }
                Err(err)
            }
        }
    }

    /// Keeps the keys current, forever: refetches when a lookup missed (at
    /// most once per `min_refetch_interval`), every `refresh_interval`, and
    /// every `min_refetch_interval` while fetches fail. Spawn it.
    pub async fn run(self: Arc<Self>) {
        loop {
            let (last, ok) = self
                .last_attempt
                .lock()
                .ok()
                .and_then(|l| *l)
                .unwrap_or((Instant::now(), false));
            let earliest = last + self.options.min_refetch_interval;
            let periodic = if ok {
                last + self.options.refresh_interval
            } else {
                earliest
            };
            tokio::select! {
                () = self.missed.notified() => {
                    if Instant::now() < earliest {
                        self.deferred.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep_until(earliest).await;
                    }
                }
                () = tokio::time::sleep_until(periodic) => {}
            }
            // Failures are logged and counted by `refresh`.
            let _ = self.refresh().await;
        }
    }

    /// The counters.
    pub fn stats(&self) -> JwksStats {
        JwksStats {
            fetches: self.fetches.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            unknown_kids: self.unknown_kids.load(Ordering::Relaxed),
            deferred: self.deferred.load(Ordering::Relaxed),
            keys: self.keys.read().map(|k| k.len()).unwrap_or(0),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyingKey>>, JwksError> {
        let request = self.http.get(&self.jwks_uri).timeout(self.options.timeout);
        let document: serde_json::Value = get_json(request, &self.jwks_uri, MAX_JWKS_BYTES).await?;
        parse_jwks(&document)
    }
}

impl IssuerKeys for JwksCache {
    /// The key `kid`. A miss is counted and wakes the refresher (see the
    /// module docs): this request is refused, a later one finds the key.
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let found = self
            .keys
            .read()
            .ok()
            .and_then(|keys| keys.get(kid).cloned());
        if found.is_none() {
            self.unknown_kids.fetch_add(1, Ordering::Relaxed);
            self.missed.notify_one();
        }
        found
    }
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("jwks_uri", &self.jwks_uri)
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The ES256 verifying keys of a JWK Set (RFC 7517 §5), by `kid`.
///
/// Keys without a `kid`, with a `use` other than `sig`, an `alg` other than
/// `ES256`, private members, or that are not P-256 are skipped: the issuer
/// signs with ES256 only, and a token's header never chooses the algorithm.
/// The first key with a given `kid` wins.
///
/// # Errors
/// [`JwksError::NotAKeySet`], or [`JwksError::NoUsableKeys`] when nothing
/// is left: an empty set would make the verifier refuse every token, so the
/// caller keeps the keys it had.
pub(crate) fn parse_jwks(
    document: &serde_json::Value,
) -> Result<HashMap<String, Arc<VerifyingKey>>, JwksError> {
    let entries = document
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or(JwksError::NotAKeySet)?;
    let mut keys = HashMap::new();
    for entry in entries.iter().take(MAX_KEYS) {
        let Some(kid) = entry.get("kid").and_then(serde_json::Value::as_str) else {
            continue;
        };
        if kid.is_empty() || kid.len() > MAX_KID_LEN || keys.contains_key(kid) {
            continue;
        }
        let member = |name: &str| entry.get(name).and_then(serde_json::Value::as_str);
        if member("use").is_some_and(|u| u != "sig") || member("alg").is_some_and(|a| a != "ES256")
        {
            continue;
        }
        let Ok(jwk) = Jwk::from_value(entry.clone()) else {
            continue;
        };
        let Ok(key) = VerifyingKey::new(&jwk, Alg::Es256) else {
            continue;
        };
        keys.insert(kid.to_owned(), Arc::new(key));
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests;
