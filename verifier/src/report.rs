//! Reporting IP deviations to the issuer, off the request path.
//!
//! A request refused for coming from outside its session's IP binding is
//! put on a bounded queue ([`DeviationReporter::report`] never waits); a
//! task started by [`crate::connect`] drains it with
//! `POST <issuer>/sessions/ip-deviation`. When the queue is full (the
//! issuer is slow or a flood of deviations arrives) a report is dropped and
//! counted: the request was refused either way, and the next deviation of
//! the same session will be reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use holdfast_proto::IpDeviationReport;
use tokio::sync::mpsc;

/// How many reports may wait for the issuer.
pub(crate) const REPORT_QUEUE_LEN: usize = 1024;

/// Counters of the reports, for metrics.
#[derive(Debug, Default)]
pub(crate) struct ReportCounters {
    /// Accepted by the issuer.
    pub(crate) sent: AtomicU64,
    /// Not accepted (unreachable, or an error answer).
    pub(crate) failed: AtomicU64,
    /// Dropped because the queue was full.
    pub(crate) dropped: AtomicU64,
}

/// The request side of the report queue: cheap to clone, never blocks.
/// [`crate::connect`] makes one, with the task that drains it, and gives it
/// to the [`crate::Verifier`] it returns.
#[derive(Debug, Clone)]
pub struct DeviationReporter {
    tx: mpsc::Sender<IpDeviationReport>,
    counters: Arc<ReportCounters>,
}

impl DeviationReporter {
    /// A reporter and the queue's receiving end, of `capacity` reports.
    pub(crate) fn channel(
        capacity: usize,
        counters: Arc<ReportCounters>,
    ) -> (Self, mpsc::Receiver<IpDeviationReport>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx, counters }, rx)
    }

    /// Queues `report`; drops (and counts) it when the queue is full or the
    /// draining task has stopped.
    pub fn report(&self, report: IpDeviationReport) {
        if self.tx.try_send(report).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            // Counted for metrics; a log line per drop would flood in
            // exactly the situation that fills the queue.
            tracing::debug!("ip deviation report dropped: the report queue is full");
        }
    }
}
