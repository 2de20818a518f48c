//! The server's memory: `VmRSS` from `/proc/PID/status` sampled each second
//! of the measured window, and `VmHWM` (the kernel's peak) at the end.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// The memory of one server process, KiB.
#[derive(Debug, Clone)]
pub(crate) struct Peak {
    pub(crate) pid: u32,
    /// The highest `VmRSS` sampled during the window.
    pub(crate) sampled_max_kib: Option<u64>,
    /// `VmRSS` at the end.
    pub(crate) rss_end_kib: Option<u64>,
    /// `VmHWM` at the end: the peak over the process's life.
    pub(crate) hwm_kib: Option<u64>,
}

/// One sampling task per pid.
pub(crate) struct RssSampler {
    tasks: Vec<(u32, JoinHandle<Option<u64>>)>,
}

impl RssSampler {
    pub(crate) fn start(pids: &[u32], from: Instant, end: Instant) -> Self {
        let tasks = pids
            .iter()
            .map(|&pid| {
                (
                    pid,
                    tokio::spawn(async move {
                        tokio::time::sleep_until(from.into()).await;
                        let mut max = None;
                        let mut ticks = tokio::time::interval(Duration::from_secs(1));
                        loop {
                            let now: Instant = ticks.tick().await.into();
                            if let Some(kib) = read(pid, "VmRSS:") {
                                max = max.max(Some(kib));
                            }
                            if now >= end {
                                return max;
                            }
                        }
                    }),
                )
            })
            .collect();
        Self { tasks }
    }

    pub(crate) async fn finish(self) -> Vec<Peak> {
        let mut peaks = Vec::new();
        for (pid, task) in self.tasks {
            let sampled_max_kib = task.await.ok().flatten();
            peaks.push(Peak {
                pid,
                sampled_max_kib,
                rss_end_kib: read(pid, "VmRSS:"),
                hwm_kib: read(pid, "VmHWM:"),
            });
        }
        peaks
    }
}

/// A `kB` line of `/proc/PID/status`.
fn read(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
