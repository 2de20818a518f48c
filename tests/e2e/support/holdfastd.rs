//! The real `holdfastd` binary as a child process: offline commands run to
//! their end, and `serve` or `proxy` on a loopback port, logging JSON.
//!
//! The binary is built (or found up to date) with `cargo build -p
//! holdfast-server --bin holdfastd` on first use, unless `HOLDFASTD` names
//! one.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use holdfast_server::config::ENV_OVERRIDES;
use serde_json::Value;

use super::{RS_ID, RS_SECRET, sha256_hex};

/// Longest a start or a stop may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The `holdfastd` binary: `HOLDFASTD` if set, else built once by cargo.
fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("HOLDFASTD") {
            return PathBuf::from(path);
        }
        // `cargo test` and `nextest` release the build lock before running
        // tests, so this nested build is a no-op when the binary is fresh.
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "-p", "holdfast-server", "--bin", "holdfastd"])
            .args(["--message-format", "json-render-diagnostics"]);
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let output = command.stderr(Stdio::inherit()).output().unwrap();
        assert!(output.status.success(), "cargo build of holdfastd failed");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["target"]["name"] == "holdfastd")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo build named no holdfastd executable")
    })
}

/// `holdfastd ARGS`, with no `HOLDFAST_*` variable inherited.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.args(args);
    for (var, _) in ENV_OVERRIDES {
        command.env_remove(var);
    }
    command
        .env_remove("HOLDFAST_CONFIG")
        .env_remove("HOLDFAST_LOG");
    command
}

/// Runs an offline `holdfastd` command to its end.
pub fn run(args: &[&str]) -> Output {
    let output = command(args).stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.code().is_some(),
        "holdfastd {args:?} was killed: {output:?}"
    );
    output
}

/// A data directory and a config file for `holdfastd`, with the first
/// admin bootstrapped offline, as an operator would. Removed on drop.
pub struct DataDir {
    /// `--data`.
    pub data: String,
    /// `--config`.
    pub config: String,
    /// The first admin's enrollment code (`holdfastd admin bootstrap`).
    pub bootstrap_code: String,
    _dir: tempfile::TempDir,
}

impl DataDir {
    /// A fresh data directory, and a config of `settings` (TOML) plus the
    /// test resource server.
    pub fn new(settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").to_str().unwrap().to_owned();
        let config = dir.path().join("holdfastd.toml");
        std::fs::write(
            &config,
            format!(
                "{settings}\n\n[[resource_servers]]\nid = \"{RS_ID}\"\nsecret_sha256 = \"{}\"\n",
                sha256_hex(RS_SECRET)
            ),
        )
        .unwrap();
        let config = config.to_str().unwrap().to_owned();
        let output = run(&["admin", "bootstrap", "--data", &data, "--config", &config]);
        assert!(output.status.success(), "{output:?}");
        let bootstrap_code = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        Self {
            data,
            config,
            bootstrap_code,
            _dir: dir,
        }
    }

    /// `holdfastd serve` on this directory, listening on `listen` (its
    /// public URL is `http://<the bound address>`). Returns once it serves.
    pub fn serve(&self, listen: &str) -> Daemon {
        let mut command = command(&[
            "serve",
            "--data",
            &self.data,
            "--config",
            &self.config,
            "--listen",
            listen,
        ]);
        command.env("HOLDFAST_LOG_FORMAT", "json");
        Daemon::spawn(command, "holdfastd serving")
    }
}

/// A running `holdfastd serve` or `holdfastd proxy`, logging JSON; killed
/// (SIGKILL) on drop if still running.
pub struct Daemon {
    child: Option<Child>,
    pid: u32,
    /// Where it listens.
    pub address: SocketAddr,
    /// Every log line so far.
    log: Arc<Mutex<Vec<Value>>>,
    /// Reads the log until the process closes its stderr.
    reader: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Spawns `command` and waits for the log line `ready` with the
    /// address it listens on.
    pub fn spawn(mut command: Command, ready: &'static str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                // Keep draining the pipe whatever the line is.
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == ready {
                    let _ = tx.send(entry["fields"]["listen"].as_str().unwrap().to_owned());
                }
                lines.lock().unwrap().push(entry);
            }
        });
        let mut daemon = Self {
            pid: child.id(),
            child: Some(child),
            address: "127.0.0.1:0".parse().unwrap(),
            log,
            reader: Some(reader),
        };
        let listen = rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("holdfastd did not log {ready:?}"));
        daemon.address = listen.parse().unwrap();
        daemon
    }

    /// `http://` and the address it listens on.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory, KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid).unwrap()
    }

    /// Open file descriptors (sockets, the store's files, epoll, ...).
    pub fn fds(&self) -> usize {
        fds(self.pid).unwrap()
    }

    /// Requests logged so far for the route template `route`.
    pub fn requests_to(&self, route: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["fields"]["message"] == "request" && e["span"]["route"] == route)
            .count()
    }

    /// Whether a log line with `message` was written.
    pub fn logged(&self, message: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["fields"]["message"] == message)
    }

    /// SIGKILL (`Child::kill` on Unix): no shutdown, no final flush.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap()
    }

    /// SIGTERM, and waits for the graceful exit and its last log lines.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Its stderr is closed: the reader ends after the last line.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return status;
            }
            if started.elapsed() > TIMEOUT {
                let _ = child.kill();
                panic!("holdfastd (pid {pid}) did not stop within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The resident memory of process `pid`, KiB; `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The open file descriptors of process `pid`; `None` once it is gone.
pub fn fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
