//! Integration tests of the `holdfastd` binary: its help, start-up refusals
//! of bad configuration, `admin bootstrap`, `keys rotate`, `audit verify`
//! (including a store tampered with behind its back), `audit export`, and a
//! served instance that enrolls its first admin and stops on SIGTERM.
//!
//! Every command runs in a temporary directory with the `HOLDFAST_*`
//! variables removed, so nothing depends on the developer's environment.
//! Every spawned server is killed when its guard drops, so a failed test
//! leaves no process behind.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use holdfast_hw::SoftwareKey;
use holdfast_proto::{Clock as _, JwtHeader, Signer as _, SystemClock, sign_jwt};
use holdfast_server::audit::link_hash;
use holdfast_server::config::ENV_OVERRIDES;
use holdfast_server::enrollment::{ENROLL_PROOF_TYP, code_hash};
use holdfast_server::store::AuditRecord;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_holdfastd");
/// Longest a command may take before the test fails (and kills it).
const TIMEOUT: Duration = Duration::from_secs(30);

/// `holdfastd ARGS` in `dir`, with no `HOLDFAST_*` variable inherited.
fn holdfastd(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).args(args);
    for (var, _) in ENV_OVERRIDES {
        command.env_remove(var);
    }
    command
        .env_remove("HOLDFAST_CONFIG")
        .env_remove("HOLDFAST_LOG");
    command
}

/// Runs `command` to its end; fails the test (killing it) after [`TIMEOUT`],
/// so a server that should have refused to start cannot hang the suite.
fn run(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    let mut stdout = guard.child().stdout.take().unwrap();
    let mut stderr = guard.child().stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        stderr.read_to_end(&mut text).unwrap();
        text
    });
    let status = guard.wait(TIMEOUT);
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Kills the child on drop unless it has been waited for.
struct Guard(Option<Child>);

impl Guard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// Waits for the child to exit, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.0.take().unwrap();
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        // The waiting thread owns the child; on a timeout it is killed by
        // its pid (the process this test started, and no other).
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(timeout) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("holdfastd (pid {pid}) did not exit within {timeout:?}");
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts exit status 0 and returns standard output.
fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts exit status 1 and returns standard error.
fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

/// 43 base64url characters: 256 bits without padding.
fn is_b64url_256(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The one line a command printed, checked to be a 256-bit base64url value.
fn one_code(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(out.ends_with('\n'), "{out:?}");
    assert!(is_b64url_256(lines[0]), "{out:?}");
    lines[0].to_owned()
}

fn bootstrap(dir: &Path, data: &str) -> String {
    one_code(&success(&run(holdfastd(
        dir,
        &["admin", "bootstrap", "--data", data],
    ))))
}

fn audit_verify(dir: &Path, data: &str) -> Output {
    run(holdfastd(dir, &["audit", "verify", "--data", data]))
}

fn audit_export(dir: &Path, data: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "export", "--data", data];
    args.extend_from_slice(extra);
    success(&run(holdfastd(dir, &args)))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Opens the store behind holdfastd's back (it must be stopped), lets `edit`
/// change the audit tree, and flushes.
fn tamper(store: PathBuf, edit: impl FnOnce(&sled::Tree)) {
    let db = sled::open(store).unwrap();
    let audit = db.open_tree("audit").unwrap();
    edit(&audit);
    db.flush().unwrap();
}

/// Replaces member `key` of the stored audit record `seq` with `value`.
fn edit_record(tree: &sled::Tree, seq: u64, key: &str, value: &str) {
    let raw = tree.get(seq.to_be_bytes()).unwrap().unwrap();
    let mut record: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(record["v"], 1);
    assert_eq!(record["seq"], seq);
    assert_ne!(record[key], value);
    record[key] = value.into();
    tree.insert(seq.to_be_bytes(), serde_json::to_vec(&record).unwrap())
        .unwrap();
}

#[test]
fn help_exits_zero_and_serve_help_lists_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = success(&run(holdfastd(dir.path(), &["--help"])));
    for command in ["serve", "admin", "keys", "audit"] {
        assert!(out.contains(command), "{out}");
    }
    let out = success(&run(holdfastd(dir.path(), &["serve", "--help"])));
    assert!(out.contains("HOLDFAST_PUBLIC_URL"), "{out}");
    for (var, key) in ENV_OVERRIDES {
        assert!(out.contains(var) && out.contains(key), "{var} {key}: {out}");
    }
    for flag in ["--config", "--data", "--listen", "--public-url"] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
}

#[test]
fn proxy_help_lists_its_flags_and_hides_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = success(&run(holdfastd(dir.path(), &["--help"])));
    assert!(out.contains("proxy"), "{out}");
    let mut command = holdfastd(dir.path(), &["proxy", "--help"]);
    command.env("HOLDFAST_PROXY_CLIENT_SECRET", "do-not-print-me");
    let out = success(&run(command));
    for flag in [
        "--listen",
        "--upstream",
        "--issuer",
        "--audience",
        "--public-url",
        "--client-id",
        "--client-secret",
        "--timeout-secs",
        "--max-staleness-secs",
        "--trusted-proxy",
        "--danger-forward-credentials",
        "HOLDFAST_PROXY_CLIENT_SECRET",
    ] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
    assert!(!out.contains("do-not-print-me"), "{out}");
    // Without its required flags: a usage error, exit 2.
    let output = run(holdfastd(dir.path(), &["proxy"]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--upstream"),
        "{}",
        stderr(&output)
    );
    // A trusted proxy that is not a CIDR: a usage error naming the flag.
    let output = run(holdfastd(
        dir.path(),
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--issuer",
            "http://127.0.0.1:9",
            "--client-id",
            "api",
            "--client-secret",
            "x",
            "--trusted-proxy",
            "10.0.0.0/33",
        ],
    ));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--trusted-proxy"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bootstrap_prints_one_code_and_runs_again_before_enrollment() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(holdfastd(
        dir.path(),
        &["admin", "bootstrap", "--data", "d"],
    ));
    let first = one_code(&success(&output));
    assert!(
        stderr(&output).contains("created admin principal \"admin\""),
        "{}",
        stderr(&output)
    );
    // No admin has an active device yet, so bootstrap may run again; each
    // run writes an `enrollment_code_created` and an `admin_bootstrap` record.
    let second = bootstrap(dir.path(), "d");
    assert_ne!(first, second);
    let out = success(&audit_verify(dir.path(), "d"));
    assert_eq!(out, "audit chain intact: 4 records\n");
    let events: Vec<Value> = audit_export(dir.path(), "d", &[])
        .into_iter()
        .map(|r| json!([r["event"], r["actor"], r["outcome"]]))
        .collect();
    let created = json!(["enrollment_code_created", "bootstrap", "ok"]);
    let bootstrapped = json!(["admin_bootstrap", "bootstrap", "ok"]);
    assert_eq!(
        events,
        [created.clone(), bootstrapped.clone(), created, bootstrapped]
    );
    // The codes themselves are never in the log.
    let log = success(&run(holdfastd(
        dir.path(),
        &["audit", "export", "--data", "d"],
    )));
    assert!(!log.contains(&first) && !log.contains(&second));
}

#[cfg(unix)]
#[test]
fn data_directory_and_nonce_secret_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    bootstrap(dir.path(), "d");
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("d"), 0o700);
    assert_eq!(mode("d/nonce.secret"), 0o600);
    assert!(dir.path().join("d/store").is_dir());
}

#[test]
fn unknown_config_key_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("top.toml"),
        "listen = \"127.0.0.1:0\"\nbogus_key = 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("nested.toml"), "[dpop]\nmax_age = 30\n").unwrap();
    for (file, key) in [("top.toml", "bogus_key"), ("nested.toml", "max_age")] {
        let output = run(holdfastd(
            dir.path(),
            &["serve", "--config", file, "--data", "d"],
        ));
        let err = failure(&output);
        assert!(err.contains("configuration") && err.contains(key), "{err}");
        assert!(stdout(&output).is_empty());
    }
    let err = failure(&run(holdfastd(
        dir.path(),
        &["serve", "--config", "missing.toml", "--data", "d"],
    )));
    assert!(err.contains("missing.toml"), "{err}");
    // Refused before anything was created.
    assert!(!dir.path().join("d").exists());
}

#[test]
fn symmetric_dpop_alg_stops_start_up_naming_dpop_algs() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = holdfastd(
        dir.path(),
        &["serve", "--data", "d", "--listen", "127.0.0.1:0"],
    );
    command.env("HOLDFAST_DPOP_ALGS", "HS256");
    let err = failure(&run(command));
    assert!(err.contains("dpop.algs") && err.contains("HS256"), "{err}");
    assert!(!dir.path().join("d").exists());
}

#[test]
fn bad_environment_values_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, key) in [
        ("HOLDFAST_DPOP_MAX_AGE_SECS", "soon", "dpop.max_age_secs"),
        (
            "HOLDFAST_ADMIN_ALLOWED_CIDRS",
            "nonsense",
            "admin.allowed_cidrs",
        ),
        ("HOLDFAST_LOG_FORMAT", "xml", "log_format"),
        (
            "HOLDFAST_ACCESS_TOKEN_TTL_SECS",
            "0",
            "tokens.access_token_ttl_secs",
        ),
        (
            "HOLDFAST_PUBLIC_URL",
            "https://Issuer.example/",
            "public_url",
        ),
    ] {
        let mut command = holdfastd(dir.path(), &["serve", "--data", "d"]);
        command.env(var, value);
        let err = failure(&run(command));
        assert!(err.contains(key), "{var}={value}: {err}");
    }
}

#[test]
fn keys_rotate_prints_a_new_kid_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let rotate = || {
        let output = run(holdfastd(dir.path(), &["keys", "rotate", "--data", "d"]));
        let kid = one_code(&success(&output));
        assert!(stderr(&output).contains(&kid), "{}", stderr(&output));
        kid
    };
    let first = rotate();
    let second = rotate();
    assert_ne!(first, second);
    let records = audit_export(dir.path(), "d", &[]);
    let rotated: Vec<&Value> = records.iter().map(|r| &r["details"]["kid"]).collect();
    assert_eq!(rotated, [&json!(first), &json!(second)]);
    assert!(records.iter().all(|r| r["event"] == "signing_key_rotated"));
}

#[test]
fn audit_verify_reports_an_intact_chain() {
    let dir = tempfile::tempdir().unwrap();
    // A store with nothing in it yet.
    let out = success(&audit_verify(dir.path(), "empty"));
    assert_eq!(out, "audit chain intact: 0 records\n");
    bootstrap(dir.path(), "d");
    let out = success(&audit_verify(dir.path(), "d"));
    assert_eq!(out, "audit chain intact: 2 records\n");
}

#[test]
fn audit_verify_names_an_edited_record() {
    for (seq, field, value) in [(2, "outcome", "access_denied"), (3, "actor", "mallory")] {
        let dir = tempfile::tempdir().unwrap();
        bootstrap(dir.path(), "d");
        bootstrap(dir.path(), "d");
        tamper(dir.path().join("d/store"), |audit| {
            edit_record(audit, seq, field, value);
        });
        let output = audit_verify(dir.path(), "d");
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(
            stdout(&output),
            format!(
                "audit chain broken at record {seq}: record content does not match its hash (edited)\n"
            )
        );
    }
}

#[test]
fn audit_verify_names_a_missing_record() {
    let dir = tempfile::tempdir().unwrap();
    bootstrap(dir.path(), "d");
    bootstrap(dir.path(), "d");
    tamper(dir.path().join("d/store"), |audit| {
        assert!(audit.remove(2u64.to_be_bytes()).unwrap().is_some());
    });
    let output = audit_verify(dir.path(), "d");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "audit chain broken at record 2: record missing (sequence gap)\n"
    );
}

#[test]
fn audit_verify_names_the_successor_of_a_rehashed_record() {
    // An editor who also recomputes the edited record's own hash breaks the
    // link to the next record.
    let dir = tempfile::tempdir().unwrap();
    bootstrap(dir.path(), "d");
    bootstrap(dir.path(), "d");
    tamper(dir.path().join("d/store"), |audit| {
        let key = 2u64.to_be_bytes();
        let raw = audit.get(key).unwrap().unwrap();
        let mut record: AuditRecord = serde_json::from_slice(&raw).unwrap();
        record.entry.actor = "mallory".into();
        record.hash = link_hash(&record.prev_hash, record.seq, &record.entry);
        let mut value = serde_json::to_value(&record).unwrap();
        value["v"] = 1.into();
        audit
            .insert(key, serde_json::to_vec(&value).unwrap())
            .unwrap();
    });
    let output = audit_verify(dir.path(), "d");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "audit chain broken at record 3: prev_hash does not match the previous record\n"
    );
}

#[test]
fn audit_export_since_starts_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    bootstrap(dir.path(), "d");
    bootstrap(dir.path(), "d");
    let all = audit_export(dir.path(), "d", &[]);
    let seqs: Vec<u64> = all.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(all[0]["prev_hash"], "0".repeat(64));
    for pair in all.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let since = audit_export(dir.path(), "d", &["--since", "2"]);
    assert_eq!(since, all[1..]);
    // Each line is one JSON object holding the whole record.
    for record in &since {
        for member in [
            "seq",
            "at",
            "event",
            "actor",
            "outcome",
            "details",
            "prev_hash",
            "hash",
        ] {
            assert!(record.get(member).is_some(), "{member}: {record}");
        }
        assert!(record.get("v").is_none(), "{record}");
    }
    assert!(audit_export(dir.path(), "d", &["--since", "5"]).is_empty());
}

/// A `holdfastd serve` child, killed on drop if still running.
struct Served {
    guard: Guard,
    address: SocketAddr,
    _stderr: std::thread::JoinHandle<()>,
}

impl Served {
    /// Starts `holdfastd serve --data DATA --listen 127.0.0.1:0` with JSON
    /// logs and reads the bound address from its "holdfastd serving" line.
    fn start(dir: &Path, data: &str) -> Self {
        let mut command = holdfastd(dir, &["serve", "--data", data, "--listen", "127.0.0.1:0"]);
        command
            .env("HOLDFAST_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut guard = Guard(Some(command.spawn().unwrap()));
        let stderr = guard.child().stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                // Keep draining the pipe whatever the line is.
                let Ok(log) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if log["fields"]["message"] == "holdfastd serving" {
                    let _ = tx.send(log["fields"]["listen"].as_str().unwrap().to_owned());
                }
            }
        });
        let listen = rx
            .recv_timeout(TIMEOUT)
            .expect("holdfastd did not report its address");
        Self {
            guard,
            address: listen.parse().unwrap(),
            _stderr: reader,
        }
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(mut self) -> ExitStatus {
        let pid = self.guard.child().id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        self.guard.wait(TIMEOUT)
    }

    /// One HTTP/1.1 request; returns the status and the body as JSON (or
    /// as a JSON string when it is not JSON).
    fn http(&self, method: &str, path: &str, json_body: Option<&Value>) -> (u16, Value) {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let body = json_body.map(Value::to_string).unwrap_or_default();
        let content_type = if json_body.is_some() {
            "Content-Type: application/json\r\n"
        } else {
            ""
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        let body = serde_json::from_str(body).unwrap_or_else(|_| Value::from(body));
        (status, body)
    }
}

#[test]
fn serve_enrolls_the_first_admin_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let code = bootstrap(dir.path(), "d");
    let server = Served::start(dir.path(), "d");

    assert_eq!(server.http("GET", "/healthz", None), (200, json!("ok\n")));
    let (status, metadata) = server.http("GET", "/.well-known/oauth-authorization-server", None);
    assert_eq!(status, 200);
    // The default public URL names the port actually bound.
    let issuer = format!("http://{}", server.address);
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));

    // The store allows one process: the offline tools refuse while it runs.
    let err = failure(&audit_verify(dir.path(), "d"));
    assert!(err.contains("already running"), "{err}");

    // Enroll the admin's device with the bootstrap code.
    let (status, challenge) = server.http("POST", "/enroll/challenge", None);
    assert_eq!(status, 200, "{challenge}");
    let key = SoftwareKey::generate().unwrap();
    let header = JwtHeader {
        typ: ENROLL_PROOF_TYP,
        kid: None,
        jwk: Some(key.public_jwk()),
    };
    let claims = json!({
        "challenge": challenge["challenge"],
        "code_hash": code_hash(&code),
        "iat": SystemClock.now().as_secs(),
    });
    let proof = sign_jwt(&key, &header, &claims).unwrap();
    let request =
        json!({ "code": code, "kind": "software", "name": "root-laptop", "proof": proof });
    let (status, enrolled) = server.http("POST", "/enroll", Some(&request));
    assert_eq!(status, 201, "{enrolled}");
    assert_eq!(enrolled["principal"], "admin");
    assert_eq!(enrolled["issuer"], issuer);
    // The code is spent.
    let (status, again) = server.http("POST", "/enroll", Some(&request));
    assert_eq!((status, &again["error"]), (400, &json!("invalid_grant")));

    let status = server.terminate();
    assert!(status.success(), "{status:?}");

    // Everything acknowledged is on disk and the chain holds, from the
    // bootstrap through start, enrollment and stop.
    let out = success(&audit_verify(dir.path(), "d"));
    assert!(out.starts_with("audit chain intact: "), "{out}");
    let events: Vec<String> = audit_export(dir.path(), "d", &[])
        .iter()
        .map(|r| r["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        events,
        [
            "enrollment_code_created",
            "admin_bootstrap",
            "server_started",
            "device_enrolled",
            "enrollment_refused",
            "server_stopped",
        ]
    );
    assert_eq!(out, "audit chain intact: 6 records\n");

    // An enabled admin now has an active device: bootstrap is over.
    let output = run(holdfastd(
        dir.path(),
        &["admin", "bootstrap", "--data", "d"],
    ));
    let err = failure(&output);
    assert!(
        err.contains("an admin with an active device exists already"),
        "{err}"
    );
    assert!(stdout(&output).is_empty());
    let last = audit_export(dir.path(), "d", &["--since", "7"]);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["event"], "admin_bootstrap");
    assert_eq!(last[0]["outcome"], "access_denied");
    assert_eq!(last[0]["details"]["check"], "already_bootstrapped");
}
