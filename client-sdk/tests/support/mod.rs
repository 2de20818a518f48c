//! What the CLI tests share: a real issuer served in-process on 127.0.0.1,
//! and assertions on the `holdfast` binary's output.
//!
//! Each test file is its own binary and uses a part of this.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Output;

use holdfast_proto::{Clock as _, SystemClock};
use holdfast_server::config::Config;
use holdfast_server::enrollment::bootstrap_admin;
use holdfast_server::testing::TestIssuer;
use serde_json::Value;

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
