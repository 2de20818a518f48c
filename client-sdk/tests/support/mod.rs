//! What the CLI tests share: a real issuer served in-process on 127.0.0.1,
//! the `holdfast` binary run on an agent directory, and assertions on its
//! output and files.
//!
//! Each test file is its own binary and uses a part of this.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use holdfast_hw::KeyKind;
use holdfast_proto::{Clock as _, SystemClock};
use holdfast_server::config::Config;
use holdfast_server::enrollment::{bootstrap_admin, create_code};
use holdfast_server::model::Role;
use holdfast_server::testing::TestIssuer;
use serde_json::Value;

/// The environment variable `name`, set by `scripts/{script}.sh` when it
/// starts `fixture`, or a failure that says how to start it.
pub(crate) fn fixture_env(name: &str, fixture: &str, script: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start {fixture} first with \
             `source scripts/{script}.sh && {script}_start \"$(mktemp -d)\"` (and `{script}_stop` after)"
        )
    })
}

/// A real issuer on a free port, on a runtime of its own (the tests
/// themselves are synchronous: they run the binary and wait).
pub(crate) struct Issuer {
    /// Its base URL, also its `public_url`.
    pub(crate) url: String,
    /// Its state and clock.
    pub(crate) issuer: TestIssuer,
    runtime: tokio::runtime::Runtime,
}

impl Issuer {
    /// Starts an issuer configured by `edit`, its clock at the real time
    /// (the binary signs with the real clock, and hardware certificates are
    /// checked at the issuer's time).
    pub(crate) fn start(edit: impl FnOnce(&mut Config)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let public = url.clone();
        let issuer = TestIssuer::open(tempfile::tempdir().unwrap(), move |c| {
            c.public_url = Some(public);
            edit(c);
        });
        issuer.clock.set(SystemClock.now().as_secs());
        let app = issuer.router();
        runtime.spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            url,
            issuer,
            runtime,
        }
    }

    /// The first admin's code, as `holdfastd admin bootstrap` makes it: it
    /// allows the kinds the policy accepts.
    pub(crate) fn bootstrap(&self) -> String {
        bootstrap_admin(&self.issuer.state, "root", self.issuer.now()).unwrap()
    }

    /// A one-time code, valid ten minutes, for a device (role `device`) of
    /// `principal` that allows keys of `kind`.
    pub(crate) fn device_code(&self, principal: &str, kind: KeyKind) -> String {
        create_code(
            &self.issuer.state,
            principal,
            &[Role::Device],
            &[kind],
            "admin:test",
            600,
            self.issuer.now(),
        )
        .unwrap()
        .0
    }

    /// The number of audit records of `event`.
    pub(crate) fn audited(&self, event: &str) -> usize {
        holdfast_server::audit::AuditPages::new(self.issuer.state.store.as_ref(), 1)
            .map(Result::unwrap)
            .filter(|r| r.entry.event == event)
            .count()
    }

    /// Stops serving.
    pub(crate) fn stop(self) {
        self.runtime.shutdown_background();
    }
}

/// `holdfast --agent-dir DIR ARGS…`, with none of the variables that would
/// change what it does, and tpm2-tss's own logging off.
pub(crate) fn holdfast_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_holdfast"));
    command
        .arg("--agent-dir")
        .arg(dir)
        .args(args)
        .env_remove("HOLDFAST_AGENT_DIR")
        .env_remove("HOLDFAST_ENROLLMENT_CODE")
        .env_remove("HOLDFAST_TPM_TCTI")
        .env_remove("HOLDFAST_PIV_PIN")
        .env("TSS2_LOG", "all+NONE");
    command
}

/// Runs `holdfast --agent-dir DIR ARGS…` to its end.
pub(crate) fn holdfast(dir: &Path, args: &[&str]) -> Output {
    holdfast_command(dir, args).output().unwrap()
}

/// The agent state (`agent.json`) in `dir`.
pub(crate) fn state(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("agent.json")).unwrap()).unwrap()
}

/// Only its owner can read or write `path` (mode 0600).
#[track_caller]
pub(crate) fn assert_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
}

/// The binary's standard output.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The binary's standard error.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The binary succeeded.
#[track_caller]
pub(crate) fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// The binary exited with `code` and `message` on standard error, without
/// a panic.
#[track_caller]
pub(crate) fn assert_fails(output: &Output, code: i32, message: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let err = stderr(output);
    assert!(
        err.contains(message),
        "expected {message:?} in stderr: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The binary succeeded and printed JSON.
#[track_caller]
pub(crate) fn json(output: &Output) -> Value {
    assert_ok(output);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(output), stderr(output)))
}
