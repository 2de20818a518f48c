//! The results: a Markdown table for people and JSON for plots.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cli::{Args, Mode};
use crate::drive::Outcome;

/// The percentiles reported.
const PERCENTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

pub(crate) struct Report {
    mode: &'static str,
    target: String,
    devices: u32,
    load: String,
    concurrency: Option<u32>,
    rate: Option<f64>,
    outcome: Outcome,
    sorted_us: Vec<u64>,
}

impl Report {
    pub(crate) fn new(args: &Args, outcome: Outcome) -> Self {
        let (mode, target) = match &args.mode {
            Mode::Token => (
                "token",
                format!("{}/token", args.issuer.trim_end_matches('/')),
            ),
            Mode::Proxy { target } => ("proxy", target.clone()),
            Mode::Upstream { listen } => ("upstream", listen.to_string()),
        };
        let load = args.rate.map_or_else(
            || format!("concurrency {}", args.concurrency),
            |r| format!("rate {r}/s, ≤{} in flight", args.concurrency),
        );
        let mut sorted_us = outcome.latencies_us.clone();
        sorted_us.sort_unstable();
        Self {
            mode,
            target,
            devices: args.devices,
            load,
            concurrency: args.rate.is_none().then_some(args.concurrency),
            rate: args.rate,
            outcome,
            sorted_us,
        }
    }

    fn window_secs(&self) -> f64 {
        self.outcome.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Requests counted (answered or not).
    fn requests(&self) -> u64 {
        self.outcome.outcomes.values().sum()
    }

    /// Requests answered 2xx.
    fn ok(&self) -> u64 {
        self.outcome
            .outcomes
            .iter()
            .filter(|(k, _)| k.starts_with('2'))
            .map(|(_, v)| v)
            .sum()
    }

    fn percentile_ms(&self, p: f64) -> Option<f64> {
        let n = self.sorted_us.len();
        if n == 0 {
            return None;
        }
        // Nearest rank.
        let rank = (p * n as f64).ceil() as usize;
        let us = self.sorted_us.get(rank.clamp(1, n) - 1)?;
        Some(*us as f64 / 1e3)
    }

    fn per_sec(&self, count: u64) -> f64 {
        count as f64 / self.window_secs()
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        let _ = writeln!(out, "\n### holdfast-load {} → {}\n", self.mode, self.target);
        let _ = writeln!(
            out,
            "| mode | devices | load | window | requests | 2xx | req/s | 2xx/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let [p50, p90, p99, p999] = PERCENTILES.map(|(_, p)| ms(self.percentile_ms(p)));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} s | {} | {} | {:.0} | {:.0} | {p50} | {p90} | {p99} | {p999} | {} |",
            self.mode,
            self.devices,
            self.load,
            self.window_secs(),
            self.requests(),
            self.ok(),
            self.per_sec(self.requests()),
            self.per_sec(self.ok()),
            ms(self.sorted_us.last().map(|us| *us as f64 / 1e3)),
        );
        let _ = writeln!(
            out,
            "\n| outcome (status and OAuth `error`) | count |\n|---|---:|"
        );
        for (outcome, count) in &self.outcome.outcomes {
            let _ = writeln!(out, "| {outcome} | {count} |");
        }
        let pool = self.outcome.pool;
        let _ = writeln!(
            out,
            "\n| pre-signing ({} threads) | per second |\n|---|---:|\n| requests' credentials signed ({} signature(s) each) | {:.0} |\n| used by requests | {:.0} |\n| queue ran dry (signed inline) | {:.0} |\n| discarded (outdated nonce) | {:.0} |\n| capacity: all signer threads signing all the time | {} |\n\nThe signer threads were busy {:.0}% of the window.",
            self.outcome.signer_threads,
            self.outcome.signatures_per_request,
            self.per_sec(pool.signed),
            self.per_sec(pool.used),
            self.per_sec(pool.dry),
            self.per_sec(pool.stale),
            self.signing_capacity()
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.0}")),
            100.0 * self.signer_busy(),
        );
        let _ = writeln!(out, "\n{}", self.verdict());
        let cores = |secs: Option<f64>| {
            secs.map_or_else(
                || "-".to_owned(),
                |s| format!("{:.2}", s / self.window_secs()),
            )
        };
        let per_request = |secs: Option<f64>| {
            secs.filter(|_| self.ok() > 0).map_or_else(
                || "-".to_owned(),
                |s| format!("{:.1}", s * 1e6 / self.ok() as f64),
            )
        };
        if !self.outcome.rss.is_empty() {
            let mib = |k: Option<u64>| {
                k.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
            };
            let _ = writeln!(
                out,
                "\n| server pid | VmRSS max sampled (MiB) | VmRSS at end (MiB) | VmHWM (MiB) | CPU (cores busy) | CPU µs per 2xx |\n|---:|---:|---:|---:|---:|---:|"
            );
            for peak in &self.outcome.rss {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    peak.pid,
                    mib(peak.sampled_max_kib),
                    mib(peak.rss_end_kib),
                    mib(peak.hwm_kib),
                    cores(peak.cpu_secs),
                    per_request(peak.cpu_secs),
                );
            }
        }
        let _ = writeln!(
            out,
            "\nThe generator itself used {} cores ({} CPU µs per 2xx).",
            cores(self.outcome.generator_cpu_secs),
            per_request(self.outcome.generator_cpu_secs),
        );
        out
    }

    /// Entries per second the signer threads could make if they did
    /// nothing else: entries per busy second, times the threads. On a
    /// machine the server shares, busy time includes being preempted, so
    /// this is a lower bound.
    fn signing_capacity(&self) -> Option<f64> {
        let pool = self.outcome.pool;
        (pool.busy_ns > 0).then(|| {
            pool.signed as f64 / (pool.busy_ns as f64 / 1e9) * self.outcome.signer_threads as f64
        })
    }

    /// The fraction of the window the signer threads spent signing.
    fn signer_busy(&self) -> f64 {
        let threads = self.outcome.signer_threads.max(1) as f64;
        self.outcome.pool.busy_ns as f64 / 1e9 / (self.window_secs() * threads)
    }

    /// Whether the pre-signing kept up.
    fn verdict(&self) -> String {
        let pool = self.outcome.pool;
        let mut verdict = if pool.dry == 0 {
            "The pre-signed queues never ran dry: signing did not limit this run.".to_owned()
        } else {
            format!(
                "**The pre-signed queues ran dry {} times** ({:.1}% of requests signed inline): \
                 the generator's signing may have limited this run.",
                pool.dry,
                100.0 * pool.dry as f64 / (pool.dry + pool.used).max(1) as f64
            )
        };
        if self.outcome.signing_failures > 0 {
            let _ = write!(
                verdict,
                " {} signing failures.",
                self.outcome.signing_failures
            );
        }
        verdict
    }

    pub(crate) fn json(&self) -> Value {
        let percentiles: serde_json::Map<String, Value> = PERCENTILES
            .iter()
            .map(|(name, p)| (format!("{name}_ms"), json!(self.percentile_ms(*p))))
            .collect();
        let pool = self.outcome.pool;
        json!({
            "mode": self.mode,
            "target": self.target,
            "devices": self.devices,
            "load": self.load,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "window_secs": self.window_secs(),
            "requests": self.requests(),
            "ok": self.ok(),
            "requests_per_sec": self.per_sec(self.requests()),
            "ok_per_sec": self.per_sec(self.ok()),
            "latency": {
                "count": self.sorted_us.len(),
                "percentiles": percentiles,
                "max_ms": self.sorted_us.last().map(|us| *us as f64 / 1e3),
                "mean_ms": (!self.sorted_us.is_empty()).then(|| {
                    self.sorted_us.iter().sum::<u64>() as f64 / self.sorted_us.len() as f64 / 1e3
                }),
            },
            "outcomes": self.outcome.outcomes,
            "presigning": {
                "threads": self.outcome.signer_threads,
                "signatures_per_request": self.outcome.signatures_per_request,
                "signed_per_sec": self.per_sec(pool.signed),
                "used_per_sec": self.per_sec(pool.used),
                "capacity_per_sec": self.signing_capacity(),
                "busy_fraction": self.signer_busy(),
                "dry": pool.dry,
                "stale_discarded": pool.stale,
                "signing_failures": self.outcome.signing_failures,
            },
            "server_memory_kib": self.outcome.rss.iter().map(|p| json!({
                "pid": p.pid,
                "vm_rss_sampled_max": p.sampled_max_kib,
                "vm_rss_end": p.rss_end_kib,
                "vm_hwm": p.hwm_kib,
            })).collect::<Vec<_>>(),
            "server_cpu": self.outcome.rss.iter().map(|p| json!({
                "pid": p.pid,
                "cpu_secs": p.cpu_secs,
                "cores_busy": p.cpu_secs.map(|s| s / self.window_secs()),
                "cpu_us_per_ok": p.cpu_secs.filter(|_| self.ok() > 0).map(|s| s * 1e6 / self.ok() as f64),
            })).collect::<Vec<_>>(),
            "generator_cpu": {
                "cpu_secs": self.outcome.generator_cpu_secs,
                "cores_busy": self.outcome.generator_cpu_secs.map(|s| s / self.window_secs()),
            },
        })
    }
}
