//! Following the issuer: [`connect`] loads everything a [`Verifier`] needs
//! and spawns the tasks that keep it current.
//!
//! 1. RFC 8414 metadata (`/.well-known/oauth-authorization-server`), whose
//!    `issuer` must be the configured one (§3.3), and its `jwks_uri`.
//! 2. The JWKS ([`JwksCache`]).
//! 3. The revocation feed (`/revocations?since=0`), read to its head, page
//!    by page.
//! 4. The snapshot of enrolled device keys (`/keys/enrolled`). Taken
//!    *after* the feed's head, so a change made meanwhile is in the snapshot
//!    or in the feed after that head, never in neither.
//! 5. Then a task long-polls `/revocations?since=<cursor>&wait=20` for ever:
//!    each answer's events are applied, and every answer, even an empty
//!    one, counts as a synchronisation. When the issuer cannot be reached
//!    the task backs off (1 s, doubling to 10 s) and the registry ages: past
//!    [`VerifierConfig::max_staleness`] every request is refused with 503
//!    (fail closed). The first failure is logged as a warning, the
//!    recovery as info, the moment the registry turns stale as an error;
//!    [`FeedHandle::stats`] counts them for metrics.
//!
//! 6. Another task drains the queue of IP-deviation reports
//!    ([`crate::DeviationReporter`]) to `POST /sessions/ip-deviation`, one at a time,
//!    off the request path; its counters are in [`FeedStats`].
//!
//! The feed endpoints take the resource server's HTTP Basic credentials
//! ([`VerifierConfig::client_id`] and `client_secret`). Nothing here logs
//! them, or any token.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use holdfast_proto::endpoints::{
    ENROLLED_KEYS_PATH, IP_DEVIATION_PATH, JWKS_PATH, METADATA_PATH, REVOCATIONS_PATH,
};
use holdfast_proto::{Clock, IpDeviationReport, SystemClock, UnixTime};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::jwks::{JwksCache, JwksError, JwksOptions, JwksStats};
use crate::registry::{DeviceEntry, FeedEvent, Registry};
use crate::report::{DeviationReporter, REPORT_QUEUE_LEN, ReportCounters};
use crate::verifier::{Verifier, VerifierConfig};

/// Largest metadata document read, in bytes.
const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Largest feed page read (the issuer sends at most 1000 events).
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest device snapshot read (about 250 bytes a device).
const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

/// How the follower talks to the issuer. The defaults suit production.
#[derive(Clone)]
pub struct FeedOptions {
    /// The clock of the verifier and of the registry's synchronisation
    /// times (they must agree for the staleness bound). Default: the
    /// system clock.
    pub clock: Arc<dyn Clock>,
    /// How long one long-poll may wait at the issuer (it allows 30 s at
    /// most). Default 20 s. Capped at half of `max_staleness` (and at least
    /// 1 s), so that an idle feed still synchronises in time.
    pub long_poll_wait: Duration,
    /// Timeout of a request, added to `long_poll_wait` for a long-poll.
    /// Default 10 s.
    pub timeout: Duration,
    /// First delay after a failure; it doubles up to `max_backoff`.
    /// Default 1 s.
    pub min_backoff: Duration,
    /// Longest delay between attempts while failing. Default 10 s.
    pub max_backoff: Duration,
    /// JWKS refetching.
    pub jwks: JwksOptions,
}

impl Default for FeedOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            long_poll_wait: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            jwks: JwksOptions::default(),
        }
    }
}

impl std::fmt::Debug for FeedOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedOptions")
            .field("long_poll_wait", &self.long_poll_wait)
            .field("timeout", &self.timeout)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

/// A request to the issuer that did not give a usable answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No answer (connection, timeout, TLS).
    #[error("request to {url} failed")]
    Request {
        /// The URL (never carries credentials).
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// An answer other than 2xx.
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A body larger than allowed.
    #[error("{url} answered more than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The bound.
        limit: usize,
    },
    /// A body that is not the expected JSON.
    #[error("{url} answered unexpected JSON: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// What serde said.
        reason: String,
    },
}

/// Why [`connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The metadata, the feed or the snapshot could not be read.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The metadata names another issuer (RFC 8414 §3.3).
    #[error("the metadata names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The metadata's `issuer` (truncated).
        found: String,
    },
    /// The JWKS could not be loaded.
    #[error(transparent)]
    Jwks(#[from] JwksError),
}

/// Counters of the follower, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStats {
    /// Feed requests that failed since start.
    pub failures: u64,
    /// Feed events applied to the registry since start.
    pub events_applied: u64,
    /// The last successful synchronisation.
    pub last_sync: Option<UnixTime>,
    /// True while the feed cannot be reached.
    pub failing: bool,
    /// The JWKS cache's counters.
    pub jwks: JwksStats,
    /// IP-deviation reports the issuer accepted.
    pub reports_sent: u64,
    /// IP-deviation reports the issuer did not accept (or never got).
    pub reports_failed: u64,
    /// IP-deviation reports dropped because their queue was full.
    pub reports_dropped: u64,
}

/// The running follower: its counters, and how to stop it.
///
/// Dropping the handle leaves the tasks running for the life of the
/// runtime; [`FeedHandle::shutdown`] stops them (the registry then ages
/// into refusing everything, after `max_staleness`).
#[derive(Debug)]
pub struct FeedHandle {
    counters: Arc<Counters>,
    reports: Arc<ReportCounters>,
    jwks: Arc<JwksCache>,
    tasks: Vec<JoinHandle<()>>,
}

impl FeedHandle {
    /// The counters now.
    pub fn stats(&self) -> FeedStats {
        self.monitor().stats()
    }

    /// A cloneable reader of the counters, for a metrics endpoint that
    /// must not own the handle (the handle's owner shuts the feed down).
    pub fn monitor(&self) -> FeedMonitor {
        FeedMonitor {
            counters: Arc::clone(&self.counters),
            reports: Arc::clone(&self.reports),
            jwks: Arc::clone(&self.jwks),
        }
    }

    /// Stops the feed follower and the JWKS refresher, and waits for them.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            // A cancelled task's `JoinError` is the expected outcome.
            let _ = task.await;
        }
    }
}

/// Reads the follower's counters ([`FeedHandle::monitor`]); cheap to clone.
#[derive(Debug, Clone)]
pub struct FeedMonitor {
    counters: Arc<Counters>,
    reports: Arc<ReportCounters>,
    jwks: Arc<JwksCache>,
}

impl FeedMonitor {
    /// The counters now.
    pub fn stats(&self) -> FeedStats {
        let last_sync = self.counters.last_sync.load(Ordering::Relaxed);
        FeedStats {
            failures: self.counters.failures.load(Ordering::Relaxed),
            events_applied: self.counters.events_applied.load(Ordering::Relaxed),
            last_sync: (last_sync > 0).then(|| UnixTime::from_secs(last_sync)),
            failing: self.counters.failing.load(Ordering::Relaxed),
            jwks: self.jwks.stats(),
            reports_sent: self.reports.sent.load(Ordering::Relaxed),
            reports_failed: self.reports.failed.load(Ordering::Relaxed),
            reports_dropped: self.reports.dropped.load(Ordering::Relaxed),
        }
    }
}

impl FeedStats {
    /// The Prometheus text exposition (format 0.0.4) of these counters.
    pub fn render(&self) -> String {
        let last_sync = self.last_sync.map_or(0, UnixTime::as_secs);
        let lines: [(&str, &str, &str, u64); 12] = [
            (
                "feed_failures_total",
                "counter",
                "Feed requests to the issuer that failed.",
                self.failures,
            ),
            (
                "feed_events_applied_total",
                "counter",
                "Feed events applied to the registry.",
                self.events_applied,
            ),
            (
                "feed_last_sync_timestamp_seconds",
                "gauge",
                "Unix time of the last synchronisation with the issuer (0: never).",
                last_sync,
            ),
            (
                "feed_failing",
                "gauge",
                "1 while the issuer's feed cannot be reached.",
                u64::from(self.failing),
            ),
            (
                "jwks_fetches_total",
                "counter",
                "JWKS fetches that replaced the keys.",
                self.jwks.fetches,
            ),
            (
                "jwks_failures_total",
                "counter",
                "JWKS fetches that failed.",
                self.jwks.failures,
            ),
            (
                "jwks_unknown_kids_total",
                "counter",
                "Lookups of a kid the JWKS cache did not hold.",
                self.jwks.unknown_kids,
            ),
            (
                "jwks_deferred_total",
                "counter",
                "Refetches held back by the rate limit.",
                self.jwks.deferred,
            ),
            (
                "jwks_keys",
                "gauge",
                "Issuer keys held.",
                self.jwks.keys as u64,
            ),
            (
                "ip_deviation_reports_sent_total",
                "counter",
                "IP-deviation reports the issuer accepted.",
                self.reports_sent,
            ),
            (
                "ip_deviation_reports_failed_total",
                "counter",
                "IP-deviation reports the issuer did not accept.",
                self.reports_failed,
            ),
            (
                "ip_deviation_reports_dropped_total",
                "counter",
                "IP-deviation reports dropped because their queue was full.",
                self.reports_dropped,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in lines {
            let _ = writeln!(out, "# HELP holdfast_verifier_{name} {help}");
            let _ = writeln!(out, "# TYPE holdfast_verifier_{name} {kind}");
            let _ = writeln!(out, "holdfast_verifier_{name} {value}");
        }
        out
    }
}

/// Connects to `config.issuer` with the default [`FeedOptions`]: see the
/// module docs. Returns the verifier, already synchronised, and the handle
/// of the tasks keeping it so.
///
/// # Errors
/// [`ConnectError`] when the metadata, JWKS, feed or snapshot cannot be
/// loaded. Nothing is spawned then.
pub async fn connect(
    config: VerifierConfig,
    http: reqwest::Client,
) -> Result<(Arc<Verifier>, FeedHandle), ConnectError> {
    connect_with(config, http, FeedOptions::default()).await
}

/// As [`connect`], with `options`.
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(
    config: VerifierConfig,
    http: reqwest::Client,
    options: FeedOptions,
) -> Result<(Arc<Verifier>, FeedHandle), ConnectError> {
    let issuer = Issuer {
        base: config.issuer.trim_end_matches('/').to_owned(),
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        http,
        timeout: options.timeout,
    };

    // RFC 8414 §3.3: the metadata's issuer is exactly the configured one.
    let metadata: Metadata = issuer
        .get(METADATA_PATH, MAX_METADATA_BYTES, false, None)
        .await?;
    if metadata.issuer != config.issuer {
        return Err(ConnectError::IssuerMismatch {
            expected: config.issuer.clone(),
            found: metadata.issuer.chars().take(200).collect(),
        });
    }
    let jwks_uri = metadata
        .jwks_uri
        .unwrap_or_else(|| format!("{}{JWKS_PATH}", issuer.base));
    let jwks = Arc::new(JwksCache::new(&jwks_uri, issuer.http.clone(), options.jwks));
    jwks.refresh().await?;

    // The feed to its head, then the snapshot (see the module docs).
    let registry = Arc::new(Registry::new());
    let mut cursor = 0;
    let mut revoke_all_before = None;
    let mut events_applied = 0;
    loop {
        let page = issuer.feed_page(cursor, Duration::ZERO).await?;
        registry.apply_events(&page.events);
        events_applied += page.events.len() as u64;
        cursor = cursor.max(page.cursor);
        revoke_all_before = revoke_all_before.max(page.revoke_all_before);
        if page.events.is_empty() {
            break;
        }
    }
    let snapshot: Snapshot = issuer
        .get(ENROLLED_KEYS_PATH, MAX_SNAPSHOT_BYTES, true, None)
        .await?;
    let devices = snapshot.devices.len();
    registry.apply_snapshot(snapshot.devices, revoke_all_before);
    let now = options.clock.now();
    registry.mark_synced(now);
    tracing::info!(
        issuer = %issuer.base,
        devices,
        cursor,
        "verifier synchronised with the issuer"
    );

    let counters = Arc::new(Counters::default());
    counters
        .events_applied
        .store(events_applied, Ordering::Relaxed);
    counters.last_sync.store(now.as_secs(), Ordering::Relaxed);
    let reports = Arc::new(ReportCounters::default());
    let (reporter, queue) = DeviationReporter::channel(REPORT_QUEUE_LEN, Arc::clone(&reports));
    let verifier = Arc::new(
        Verifier::new(config.clone(), jwks.clone(), registry.clone())
            .with_clock(options.clock.clone())
            .with_deviation_reporter(reporter),
    );
    let report_issuer = issuer.clone();
    let follower = Follower {
        issuer,
        registry,
        counters: counters.clone(),
        max_staleness: config.max_staleness,
        options,
        cursor,
    };
    let tasks = vec![
        tokio::spawn(follower.run()),
        tokio::spawn(jwks.clone().run()),
        tokio::spawn(drain_reports(report_issuer, queue, Arc::clone(&reports))),
    ];
    Ok((
        verifier,
        FeedHandle {
            counters,
            reports,
            jwks,
            tasks,
        },
    ))
}

/// GETs `request` and parses its JSON body, read up to `limit` bytes.
pub(crate) async fn get_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    url: &str,
    limit: usize,
) -> Result<T, FetchError> {
    let request_failed = |source| FetchError::Request {
        url: url.to_owned(),
        source,
    };
    let mut response = request.send().await.map_err(request_failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_failed)? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| FetchError::Malformed {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// The parts of RFC 8414 metadata read here.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// One answer of `GET /revocations`.
#[derive(Debug, Deserialize)]
struct FeedPage {
    events: Vec<FeedEvent>,
    cursor: u64,
    #[serde(default)]
    revoke_all_before: Option<UnixTime>,
}

/// `GET /keys/enrolled`.
#[derive(Debug, Deserialize)]
struct Snapshot {
    devices: Vec<DeviceEntry>,
}

/// Sends queued IP-deviation reports to the issuer, one at a time, until
/// every [`DeviationReporter`] is gone. A failure is counted and logged,
/// not retried: the verifier refused the request already, and the
/// session's next deviation is reported again.
async fn drain_reports(
    issuer: Issuer,
    mut queue: mpsc::Receiver<IpDeviationReport>,
    counters: Arc<ReportCounters>,
) {
    while let Some(report) = queue.recv().await {
        match issuer.post_deviation(&report).await {
            Ok(()) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(sid = %report.sid, "ip deviation reported to the issuer");
            }
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(sid = %report.sid, error = %err, "cannot report an ip deviation");
            }
        }
    }
}

/// The issuer's endpoints and the resource server's credentials.
#[derive(Clone)]
struct Issuer {
    base: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl Issuer {
    /// GETs `path_and_query`, with the Basic credentials when
    /// `authenticated`, allowing `extra` time beyond the timeout.
    async fn get<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        limit: usize,
        authenticated: bool,
        extra: Option<Duration>,
    ) -> Result<T, FetchError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut request = self
            .http
            .get(&url)
            .timeout(self.timeout + extra.unwrap_or_default());
        if authenticated {
            request = request.basic_auth(&self.client_id, Some(&self.client_secret));
        }
        get_json(request, &url, limit).await
    }

    /// `POST /sessions/ip-deviation` with the Basic credentials.
    async fn post_deviation(&self, report: &IpDeviationReport) -> Result<(), FetchError> {
        let url = format!("{}{IP_DEVIATION_PATH}", self.base);
        let response = self
            .http
            .post(&url)
            .timeout(self.timeout)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .json(report)
            .send()
            .await
            .map_err(|source| FetchError::Request {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url,
                status: status.as_u16(),
            });
        }
        Ok(())
    }

    async fn feed_page(&self, since: u64, wait: Duration) -> Result<FeedPage, FetchError> {
        let path = format!("{REVOCATIONS_PATH}?since={since}&wait={}", wait.as_secs());
        self.get(&path, MAX_PAGE_BYTES, true, Some(wait)).await
    }
}

#[derive(Debug, Default)]
struct Counters {
    failures: AtomicU64,
    events_applied: AtomicU64,
    /// Unix seconds of the last sync; 0 for never.
    last_sync: AtomicU64,
    failing: AtomicBool,
}

/// The long-poll loop.
struct Follower {
    issuer: Issuer,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    max_staleness: Option<u64>,
    options: FeedOptions,
    cursor: u64,
}

impl Follower {
    async fn run(mut self) {
        let wait = self.wait();
        let mut backoff = self.options.min_backoff;
        let mut failed_in_a_row: u64 = 0;
        let mut stale_logged = false;
        loop {
            let started = tokio::time::Instant::now();
            match self.issuer.feed_page(self.cursor, wait).await {
                Ok(page) => {
                    self.apply(&page);
                    // An empty answer long before `wait` means the issuer
                    // did not hold the request: do not spin against it.
                    if page.events.is_empty() && started.elapsed() < wait / 2 {
                        tokio::time::sleep(self.options.min_backoff).await;
                    }
                    if failed_in_a_row > 0 {
                        tracing::info!(
                            failed_attempts = failed_in_a_row,
                            cursor = self.cursor,
                            "revocation feed reachable again"
                        );
                    }
                    failed_in_a_row = 0;
                    stale_logged = false;
                    backoff = self.options.min_backoff;
                    self.counters.failing.store(false, Ordering::Relaxed);
                }
                Err(err) => {
                    failed_in_a_row += 1;
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    self.counters.failing.store(true, Ordering::Relaxed);
                    if failed_in_a_row == 1 {
                        tracing::warn!(
                            error = %err,
                            "revocation feed unreachable; retrying"
                        );
                    } else {
                        tracing::debug!(error = %err, "revocation feed still unreachable");
                    }
                    if !stale_logged && self.is_stale() {
                        stale_logged = true;
                        tracing::error!(
                            max_staleness = self.max_staleness,
                            "no revocation feed for longer than max_staleness: refusing every request"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
            }
        }
    }

    /// Applies one answer and records the synchronisation.
    fn apply(&mut self, page: &FeedPage) {
        self.registry.apply_events(&page.events);
        self.registry
            .raise_revoke_all_before(page.revoke_all_before);
        let now = self.options.clock.now();
        self.registry.mark_synced(now);
        self.cursor = self.cursor.max(page.cursor);
        self.counters
            .events_applied
            .fetch_add(page.events.len() as u64, Ordering::Relaxed);
        self.counters
            .last_sync
            .store(now.as_secs(), Ordering::Relaxed);
        if !page.events.is_empty() {
            tracing::debug!(
                events = page.events.len(),
                cursor = self.cursor,
                "revocation feed events applied"
            );
        }
    }

    /// The long-poll wait: as configured, at most half the staleness
    /// bound, at least 1 s.
    fn wait(&self) -> Duration {
        let bound = self
            .max_staleness
            .map_or(Duration::MAX, |b| Duration::from_secs(b) / 2);
        self.options
            .long_poll_wait
            .min(bound)
            .max(Duration::from_secs(1))
    }

    fn is_stale(&self) -> bool {
        let Some(bound) = self.max_staleness else {
            return false;
        };
        let now = self.options.clock.now().as_secs();
        self.registry
            .synced_at()
            .is_none_or(|at| now.saturating_sub(at.as_secs()) > bound)
    }
}
