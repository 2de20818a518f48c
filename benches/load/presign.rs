//! Proofs signed ahead of time, so the generator is not what limits the
//! rate: one bounded queue per device, kept full by `std::thread` workers
//! (each owns a slice of the devices). A request takes the oldest entry of
//! its device; when the queue is empty it signs inline and the run reports
//! the queue ran dry. Token-mode entries carry the server nonce they were
//! signed with, and one signed with an outdated nonce is thrown away.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use holdfast_proto::Htu;

use crate::Error;
use crate::setup::{Device, client_assertion, now, proof};

/// How long an idle worker waits before looking again for room.
const IDLE: Duration = Duration::from_micros(200);

/// What one request needs signed.
pub(crate) enum Recipe {
    /// `POST` to the token endpoint: a client assertion and a proof with
    /// the server's nonce.
    Token {
        /// The token endpoint.
        htu: Htu,
    },
    /// `GET` through the proxy: a proof bound to the device's token.
    Proxy {
        /// The URL requested.
        url: String,
        /// It as `htu` (no query or fragment).
        htu: Htu,
    },
}

impl Recipe {
    pub(crate) fn token(url: &str) -> Result<Self, Error> {
        Ok(Self::Token {
            htu: Htu::parse(url)?,
        })
    }

    pub(crate) fn proxy(url: &str) -> Result<Self, Error> {
        let without_query = url.split(['?', '#']).next().unwrap_or(url);
        Ok(Self::Proxy {
            url: url.to_owned(),
            htu: Htu::parse(without_query)?,
        })
    }

    /// The URL requests go to.
    pub(crate) fn url(&self) -> &str {
        match self {
            Self::Token { htu } => htu.as_str(),
            Self::Proxy { url, .. } => url,
        }
    }

    /// Signatures in one entry.
    pub(crate) fn signatures_per_request(&self) -> u64 {
        match self {
            Self::Token { .. } => 2,
            Self::Proxy { .. } => 1,
        }
    }
}

/// The credentials of one request.
pub(crate) struct Presigned {
    /// The `DPoP` header.
    pub(crate) proof: String,
    /// The client assertion (token mode).
    pub(crate) assertion: Option<String>,
    /// The nonce the proof carries.
    nonce: Option<Arc<str>>,
}

/// Counters of the pool; differences of two snapshots give a window's rates.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolCounters {
    /// Entries signed by the workers.
    pub(crate) signed: u64,
    /// Entries taken from a queue by a request.
    pub(crate) used: u64,
    /// Requests that found their queue empty and signed inline.
    pub(crate) dry: u64,
    /// Entries thrown away for an outdated nonce.
    pub(crate) stale: u64,
    /// Wall-clock time the workers spent signing, summed over threads, ns.
    pub(crate) busy_ns: u64,
}

impl PoolCounters {
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            signed: self.signed.saturating_sub(earlier.signed),
            used: self.used.saturating_sub(earlier.used),
            dry: self.dry.saturating_sub(earlier.dry),
            stale: self.stale.saturating_sub(earlier.stale),
            busy_ns: self.busy_ns.saturating_sub(earlier.busy_ns),
        }
    }
}

/// The devices, their queues and the signing workers' shared state.
pub(crate) struct Pool {
    devices: Vec<Device>,
    queues: Vec<Mutex<VecDeque<Presigned>>>,
    recipe: Recipe,
    depth: usize,
    nonce: RwLock<Option<Arc<str>>>,
    stop: AtomicBool,
    signed: AtomicU64,
    used: AtomicU64,
    dry: AtomicU64,
    stale: AtomicU64,
    busy_ns: AtomicU64,
    failures: AtomicU64,
}

impl Pool {
    pub(crate) fn new(
        devices: Vec<Device>,
        recipe: Recipe,
        depth: u64,
        nonce: Option<String>,
    ) -> Self {
        let queues = devices
            .iter()
            .map(|_| Mutex::new(VecDeque::new()))
            .collect();
        Self {
            devices,
            queues,
            recipe,
            depth: usize::try_from(depth).unwrap_or(usize::MAX),
            nonce: RwLock::new(nonce.map(Arc::from)),
            stop: AtomicBool::new(false),
            signed: AtomicU64::new(0),
            used: AtomicU64::new(0),
            dry: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub(crate) fn devices(&self) -> usize {
        self.devices.len()
    }

    pub(crate) fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// The access token of device `index` (proxy mode).
    pub(crate) fn access_token(&self, index: usize) -> Option<&str> {
        self.devices.get(index)?.access.as_ref().map(|t| t.expose())
    }

    /// Starts `threads` workers; they run until [`Pool::stop`].
    pub(crate) fn start_signers(self: &Arc<Self>, threads: usize) -> Vec<JoinHandle<()>> {
        (0..threads)
            .map(|worker| {
                let pool = Arc::clone(self);
                thread::spawn(move || pool.fill(worker, threads))
            })
            .collect()
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits until every queue is full (or `limit` passes).
    pub(crate) async fn wait_full(&self, limit: Duration) {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            let full = self.queues.iter().all(|q| lock(q).len() >= self.depth);
            if full {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn counters(&self) -> PoolCounters {
        PoolCounters {
            signed: self.signed.load(Ordering::Relaxed),
            used: self.used.load(Ordering::Relaxed),
            dry: self.dry.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
        }
    }

    /// Signing failures (of workers and inline).
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Remembers the nonce the server just sent.
    pub(crate) fn learn_nonce(&self, nonce: &str) {
        let current = self.nonce.read().unwrap_or_else(PoisonError::into_inner);
        if current.as_deref() == Some(nonce) {
            return;
        }
        drop(current);
        *self.nonce.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(nonce));
    }

    /// The credentials for one request by device `index`: pre-signed if
    /// its queue has a current entry, else signed now (counted as dry).
    pub(crate) fn take(&self, index: usize) -> Result<Presigned, Error> {
        let current = self.current_nonce();
        if let Some(queue) = self.queues.get(index) {
            let mut queue = lock(queue);
            while let Some(entry) = queue.pop_front() {
                if entry.nonce == current {
                    self.used.fetch_add(1, Ordering::Relaxed);
                    return Ok(entry);
                }
                self.stale.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.dry.fetch_add(1, Ordering::Relaxed);
        self.sign(index, current).inspect_err(|_| {
            self.failures.fetch_add(1, Ordering::Relaxed);
        })
    }

    fn current_nonce(&self) -> Option<Arc<str>> {
        self.nonce
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A worker's loop: top up the queues of devices `worker`, `worker +
    /// threads`, … one entry at a time, round robin, so that all drain
    /// evenly.
    fn fill(&self, worker: usize, threads: usize) {
        let mine: Vec<usize> = (worker..self.devices.len()).step_by(threads).collect();
        while !self.stop.load(Ordering::Relaxed) {
            let mut worked = false;
            for &index in &mine {
                let Some(queue) = self.queues.get(index) else {
                    continue;
                };
                if lock(queue).len() >= self.depth {
                    continue;
                }
                // Sign outside the lock; only this worker adds to the queue.
                let started = Instant::now();
                let signed = self.sign(index, self.current_nonce());
                let busy = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.busy_ns.fetch_add(busy, Ordering::Relaxed);
                match signed {
                    Ok(entry) => {
                        lock(queue).push_back(entry);
                        self.signed.fetch_add(1, Ordering::Relaxed);
                        worked = true;
                    }
                    Err(_) => {
                        self.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if !worked {
                thread::sleep(IDLE);
            }
        }
    }

    fn sign(&self, index: usize, nonce: Option<Arc<str>>) -> Result<Presigned, Error> {
        let device = self.devices.get(index).ok_or("no such device")?;
        match &self.recipe {
            Recipe::Token { htu } => Ok(Presigned {
                assertion: Some(client_assertion(
                    &device.key,
                    &device.client_id,
                    htu,
                    now(),
                )?),
                proof: proof(&device.key, "POST", htu, nonce.as_deref(), None)?,
                nonce,
            }),
            Recipe::Proxy { htu, .. } => Ok(Presigned {
                proof: proof(&device.key, "GET", htu, None, device.access.as_ref())?,
                assertion: None,
                nonce,
            }),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
