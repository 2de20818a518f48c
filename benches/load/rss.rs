//! The server's memory: `VmRSS` from `/proc/PID/status` sampled each second
//! of the measured window, and `VmHWM` (the kernel's peak) at the end; and
//! the CPU time it used in the window (`utime + stime` of `/proc/PID/stat`,
//! all threads), so a run on a machine the generator shares still says
//! what one request cost the server.

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
    /// CPU seconds (user + system, all threads) used in the window.
    pub(crate) cpu_secs: Option<f64>,
}

/// What one pid's sampler finds: the highest `VmRSS` sampled (KiB) and
/// the CPU seconds used in the window.
type Sampled = (Option<u64>, Option<f64>);

/// One sampling task per pid.
pub(crate) struct RssSampler {
    tasks: Vec<(u32, JoinHandle<Sampled>)>,
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
                        let cpu_from = cpu_secs(pid);
                        let mut max = None;
                        let mut ticks = tokio::time::interval(Duration::from_secs(1));
                        loop {
                            let now: Instant = ticks.tick().await.into();
                            if let Some(kib) = read(pid, "VmRSS:") {
                                max = max.max(Some(kib));
                            }
                            if now >= end {
                                let cpu = cpu_secs(pid)
                                    .zip(cpu_from)
                                    .map(|(to, from)| (to - from).max(0.0));
                                return (max, cpu);
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
            let (sampled_max_kib, cpu_secs) = task.await.unwrap_or((None, None));
            peaks.push(Peak {
                pid,
                sampled_max_kib,
                rss_end_kib: read(pid, "VmRSS:"),
                hwm_kib: read(pid, "VmHWM:"),
                cpu_secs,
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

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`;
/// 100 on Linux unless configured otherwise).
fn ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t: &f64| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of process `pid` so far, all threads.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the fields
    // counted from 3 start after the last `)`.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec())
}
