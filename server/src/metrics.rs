//! Counters for `/metrics` (Prometheus text format 0.0.4), kept by hand:
//! a handful of atomics and one labelled map need no metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The issuer's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    tokens_issued: AtomicU64,
    enrollments: AtomicU64,
    /// `(counter name, label value) -> count`, for refusals by reason.
    labelled: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    /// One access token issued.
    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    /// One device enrolled.
    pub fn enrolled(&self) {
        self.enrollments.fetch_add(1, Ordering::Relaxed);
    }

    /// One refusal: `what` is the counter (`token_refused`, `proof_refused`,
    /// `enrollment_refused`, `admin_refused`), `reason` the check or code.
    pub fn refused(&self, what: &'static str, reason: &str) {
        let mut map = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((what, reason.to_owned())).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP holdfast_tokens_issued_total Access tokens issued."
        );
        let _ = writeln!(out, "# TYPE holdfast_tokens_issued_total counter");
        let _ = writeln!(
            out,
            "holdfast_tokens_issued_total {}",
            self.tokens_issued.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP holdfast_enrollments_total Devices enrolled.");
        let _ = writeln!(out, "# TYPE holdfast_enrollments_total counter");
        let _ = writeln!(
            out,
            "holdfast_enrollments_total {}",
            self.enrollments.load(Ordering::Relaxed)
        );
        let map = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, reason), count) in map.iter() {
            if *name != last {
                let _ = writeln!(out, "# HELP holdfast_{name}_total Refusals by reason.");
                let _ = writeln!(out, "# TYPE holdfast_{name}_total counter");
                last = name;
            }
            let _ = writeln!(out, "holdfast_{name}_total{{reason=\"{reason}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.token_issued();
        m.refused("proof_refused", "jti_replayed");
        m.refused("proof_refused", "jti_replayed");
        let text = m.render();
        assert!(text.contains("holdfast_tokens_issued_total 1"));
        assert!(text.contains("holdfast_proof_refused_total{reason=\"jti_replayed\"} 2"));
    }
}
