//! The load loops: a fixed number of requests in flight (closed loop) or
//! requests started on a fixed schedule (open loop), a warm-up that is not
//! counted, then `--duration` seconds measured. A request counts if it
//! started inside the measured window.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use holdfast_proto::CLIENT_ASSERTION_TYPE;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::Error;
use crate::cli::Args;
use crate::presign::{Pool, PoolCounters, Recipe};
use crate::rss::RssSampler;

/// How long in-flight requests get to finish after the window closes.
const DRAIN: Duration = Duration::from_secs(15);

/// Everything a run measured.
pub(crate) struct Outcome {
    /// Latency of each counted request that got an HTTP answer, µs.
    pub(crate) latencies_us: Vec<u64>,
    /// Counted requests by outcome: `200`, `401 invalid_dpop_proof`,
    /// `transport`, `not_sent` …
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// The measured window.
    pub(crate) window: Duration,
    /// The pool's counters over the window.
    pub(crate) pool: PoolCounters,
    /// Signatures per pool entry.
    pub(crate) signatures_per_request: u64,
    /// Signing failures.
    pub(crate) signing_failures: u64,
    /// Signer threads.
    pub(crate) signer_threads: usize,
    /// Peak memory and CPU time of each `--server-pid`.
    pub(crate) rss: Vec<crate::rss::Peak>,
    /// CPU seconds the generator itself used in the window (all threads).
    pub(crate) generator_cpu_secs: Option<f64>,
}

/// What the requests record into.
#[derive(Default)]
struct Recorder {
    latencies_us: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
}

/// The shared state of the request loops.
struct Load {
    http: reqwest::Client,
    pool: Arc<Pool>,
    next_device: AtomicUsize,
    measure_from: Instant,
    end: Instant,
    recorder: Mutex<Recorder>,
}

pub(crate) async fn drive(
    http: &reqwest::Client,
    pool: &Arc<Pool>,
    args: &Args,
) -> Result<Outcome, Error> {
    eprintln!("presigning: filling {} queues", pool.devices());
    pool.wait_full(Duration::from_secs(30)).await;
    let warmup = Duration::from_secs(args.warmup);
    let window = Duration::from_secs(args.duration);
    let started = Instant::now();
    let load = Arc::new(Load {
        http: http.clone(),
        pool: Arc::clone(pool),
        next_device: AtomicUsize::new(0),
        measure_from: started + warmup,
        end: started + warmup + window,
        recorder: Mutex::new(Recorder::default()),
    });
    eprintln!(
        "load: {} warm-up, {} measured, {}",
        secs(warmup),
        secs(window),
        args.rate.map_or_else(
            || format!("concurrency {}", args.concurrency),
            |r| format!("{r} requests/s"),
        )
    );
    let sampler = RssSampler::start(&args.server_pids, load.measure_from, load.end);
    let counters = {
        let load = Arc::clone(&load);
        tokio::spawn(async move {
            tokio::time::sleep_until(load.measure_from.into()).await;
            let before = load.pool.counters();
            let cpu_before = crate::rss::cpu_secs(std::process::id());
            tokio::time::sleep_until(load.end.into()).await;
            let cpu = crate::rss::cpu_secs(std::process::id())
                .zip(cpu_before)
                .map(|(to, from)| (to - from).max(0.0));
            (load.pool.counters().since(before), cpu)
        })
    };
    match args.rate {
        None => closed_loop(&load, args.concurrency).await,
        Some(rate) => open_loop(&load, rate, args.concurrency, args.max_in_flight).await,
    }
    let (pool_window, generator_cpu_secs) = counters.await?;
    let rss = sampler.finish().await;
    let recorder =
        std::mem::take(&mut *load.recorder.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(Outcome {
        latencies_us: recorder.latencies_us,
        outcomes: recorder.outcomes,
        window,
        pool: pool_window,
        signatures_per_request: pool.recipe().signatures_per_request(),
        signing_failures: pool.failures(),
        signer_threads: args.signer_threads(),
        rss,
        generator_cpu_secs,
    })
}

/// `concurrency` tasks, each sending its next request when the last one
/// is answered, until the window closes.
async fn closed_loop(load: &Arc<Load>, concurrency: u32) {
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency {
        let load = Arc::clone(load);
        tasks.spawn(async move {
            loop {
                let start = Instant::now();
                if start >= load.end {
                    break;
                }
                load.one(start).await;
            }
        });
    }
    drain(tasks).await;
}

/// One request every `1/rate` s whatever the answers, latency counted from
/// the scheduled start (no coordinated omission). As in wrk2, at most
/// `connections` requests are in flight (so at most that many connections
/// are open): a request due while all are busy waits for one, and the wait
/// counts in its latency. At most `max_backlog` may wait; a start beyond it
/// is counted as `not_sent`. Without the cap, a server that falls behind
/// for a moment is sent a new connection per late request, and the run
/// measures connection storms (SYN backlog overflow, retransmits after a
/// second) instead of the server.
async fn open_loop(load: &Arc<Load>, rate: f64, connections: u32, max_backlog: usize) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut ticks = tokio::time::interval(period);
    // A late tick fires at once, so the schedule keeps its average rate.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        usize::try_from(connections).unwrap_or(1).max(1),
    ));
    let backlog = Arc::new(tokio::sync::Semaphore::new(max_backlog.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        let scheduled: Instant = ticks.tick().await.into();
        if scheduled >= load.end {
            break;
        }
        let Ok(queued) = Arc::clone(&backlog).try_acquire_owned() else {
            load.record(scheduled, "not_sent (backlog limit)".to_owned(), None);
            continue;
        };
        let (load, in_flight) = (Arc::clone(load), Arc::clone(&in_flight));
        tasks.spawn(async move {
            let Ok(permit) = in_flight.acquire_owned().await else {
                return;
            };
            load.one(scheduled).await;
            drop((permit, queued));
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    drain(tasks).await;
}

async fn drain(mut tasks: JoinSet<()>) {
    let deadline = tokio::time::sleep(DRAIN);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = tasks.join_next() => if joined.is_none() { return },
            () = &mut deadline => {
                eprintln!("warning: {} requests still in flight after {}; abandoned", tasks.len(), secs(DRAIN));
                tasks.abort_all();
                return;
            }
        }
    }
}

impl Load {
    /// Sends one request by the next device and records it as started at
    /// `start`.
    async fn one(&self, start: Instant) {
        let index = self.next_device.fetch_add(1, Ordering::Relaxed) % self.pool.devices();
        let credentials = match self.pool.take(index) {
            Ok(c) => c,
            Err(_) => {
                self.record(start, "signing_failed".to_owned(), None);
                return;
            }
        };
        let recipe = self.pool.recipe();
        let request = match recipe {
            Recipe::Token { .. } => self.http.post(recipe.url()).form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                (
                    "client_assertion",
                    credentials.assertion.as_deref().unwrap_or_default(),
                ),
            ]),
            Recipe::Proxy { .. } => self.http.get(recipe.url()).header(
                "Authorization",
                format!("DPoP {}", self.pool.access_token(index).unwrap_or_default()),
            ),
        };
        let response = match request.header("DPoP", credentials.proof).send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                self.record(start, kind.to_owned(), None);
                return;
            }
        };
        if let Some(nonce) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            && matches!(recipe, Recipe::Token { .. })
        {
            self.pool.learn_nonce(nonce);
        }
        let status = response.status();
        let body = response.bytes().await;
        let elapsed = start.elapsed();
        let outcome = match body {
            Err(_) => "transport (body)".to_owned(),
            Ok(_) if status.is_success() => status.as_u16().to_string(),
            Ok(body) => {
                let error = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| "-".to_owned());
                format!("{} {error}", status.as_u16())
            }
        };
        self.record(start, outcome, Some(elapsed));
    }

    fn record(&self, start: Instant, outcome: String, latency: Option<Duration>) {
        if start < self.measure_from || start >= self.end {
            return;
        }
        let mut recorder = self.recorder.lock().unwrap_or_else(PoisonError::into_inner);
        *recorder.outcomes.entry(outcome).or_insert(0) += 1;
        if let Some(latency) = latency {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            recorder.latencies_us.push(us);
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
