//! `holdfast enroll --tpm` and the commands after it, run as a binary
//! against a real issuer served in-process on 127.0.0.1 that trusts the
//! software TPM's EK CA and refuses software keys: enrollment with
//! credential activation and `TPM2_Certify`, then `token`, `request`,
//! `status` and `admin devices show` with the key in the TPM; and clear
//! messages for a TPM that cannot be reached and an EK the issuer does not
//! trust.
//!
//! Needs a running swtpm:
//!
//! ```text
//! source scripts/swtpm.sh && swtpm_start "$(mktemp -d)"
//! cargo nextest run -p holdfast-client swtpm
//! swtpm_stop
//! ```
//!
//! Every test name contains `swtpm`: nextest runs them one at a time
//! (`.config/nextest.toml`); under `cargo test` a lock here does.
#![cfg(feature = "tpm")]
// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard, PoisonError};

use holdfast_hw::tpm::testing::flush_transient_objects;
use holdfast_hw::tpm::{Tpm, TpmConfig};
use serde_json::Value;

use support::{
    Issuer, assert_fails, assert_ok, assert_private, fixture_env, holdfast, json, state, stderr,
    stdout,
};

static SIMULATOR: Mutex<()> = Mutex::new(());

/// The swtpm's environment variable `name`.
fn env(name: &str) -> String {
    fixture_env(name, "a software TPM", "swtpm")
}

fn tcti() -> String {
    env("HOLDFAST_TEST_TPM_TCTI")
}

/// Exclusive use of the simulator, with no objects left over by an earlier
/// test. The connection is closed again: the binary opens its own.
fn simulator() -> MutexGuard<'static, ()> {
    let guard = SIMULATOR.lock().unwrap_or_else(PoisonError::into_inner);
    let tpm = Tpm::open(&TpmConfig::new(tcti())).expect("connect to swtpm");
    flush_transient_objects(&tpm).unwrap();
    guard
}

/// An issuer trusting the EK CAs in `tpm_roots` and no software keys.
fn tpm_issuer(tpm_roots: Vec<PathBuf>) -> Issuer {
    Issuer::start(move |c| {
        c.attestation.tpm_roots = tpm_roots;
        c.policy.danger_accept_software_keys = false;
    })
}

fn enroll_tpm(dir: &Path, server: &str, code: &str, tcti: &str) -> Output {
    holdfast(
        dir,
        &[
            "enroll",
            "--server",
            server,
            "--code",
            code,
            "--tpm",
            "--tpm-tcti",
            tcti,
            "--name",
            "tpm-laptop",
        ],
    )
}

#[test]
fn swtpm_enroll_then_token_request_status_and_admin_show() {
    let _guard = simulator();
    let tcti = tcti();
    let server = tpm_issuer(vec![PathBuf::from(env("HOLDFAST_TEST_TPM_EK_CA"))]);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let enrolled = enroll_tpm(dir, &server.url, &server.bootstrap(), &tcti);
    assert_ok(&enrolled);
    let out = stdout(&enrolled);
    assert!(out.contains("enrolled device d-"), "{out}");
    assert!(out.contains(&format!("tpm ({tcti}, key blob ")), "{out}");
    assert!(!stderr(&enrolled).contains("SOFTWARE key"));

    // The state names the TPM and the wrapped key blob (never the key).
    let state = state(dir);
    assert_eq!(state["kind"], "tpm");
    assert_eq!(state["tpm"]["tcti"], tcti.as_str());
    let blob = dir.join("device.tpmkey");
    assert_eq!(state["key_file"], blob.display().to_string());
    assert_private(&blob);
    let client_id = state["client_id"].as_str().unwrap().to_owned();
    let jkt = state["jkt"].as_str().unwrap().to_owned();

    // The device record, as the issuer stored it.
    let device = server.issuer.state.store.devices().unwrap().pop().unwrap();
    assert_eq!(device.id.as_str(), client_id);
    let facts = device.attestation.details.clone();
    assert_eq!(facts["tpm_model"], "swtpm");

    // token: a session whose proofs and assertion the TPM signed.
    let token = json(&holdfast(dir, &["token", "--json"]));
    assert_eq!(token["claims"]["client_id"], client_id.as_str());
    assert_eq!(token["claims"]["cnf"]["jkt"], jkt.as_str());
    assert_eq!(token["claims"]["amr"], serde_json::json!(["hwk", "pop"]));

    // request: a DPoP-protected resource (the admin API; this is the admin).
    let url = format!("{}/admin/devices/{client_id}", server.url);
    let shown = json(&holdfast(dir, &["request", "GET", &url]));
    assert_eq!(shown["attestation"]["kind"], "tpm");
    assert_eq!(
        shown["attestation"]["details"],
        Value::Object(facts.clone())
    );

    // status: the kind, and a session.
    let status = holdfast(dir, &["status"]);
    assert_ok(&status);
    let text = stdout(&status);
    let kind = text.lines().find(|l| l.starts_with("kind")).unwrap();
    assert!(kind.ends_with(" tpm"), "{text}");
    assert!(text.contains("ok: session s-"), "{text}");
    let status = json(&holdfast(dir, &["status", "--json"]));
    assert_eq!(status["state"]["kind"], "tpm");
    assert_eq!(status["session"]["ok"], true);

    // admin devices show: the attested facts, one per line.
    let shown = holdfast(dir, &["admin", "devices", "show", &client_id]);
    assert_ok(&shown);
    let text = stdout(&shown);
    assert!(text.contains("\nattested:\n"), "{text}");
    for name in [
        "tpm_manufacturer",
        "tpm_manufacturer_name",
        "tpm_model",
        "tpm_firmware",
        "ek_fingerprint_sha256",
        "ek_key",
        "ek_anchor",
        "key_attributes",
    ] {
        let value = facts[name].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in {text}"));
        assert!(line.starts_with("  ") && line.ends_with(value), "{line}");
    }
    assert!(text.contains("IBM"), "{text}");
    let shown = json(&holdfast(
        dir,
        &["admin", "devices", "show", &client_id, "--json"],
    ));
    assert_eq!(
        shown["attestation"]["details"]["tpm_manufacturer"],
        "00001014"
    );

    // Every run above loaded the key and let it go: the TPM's transient
    // slots are all free again (swtpm has no resource manager).
    let tpm = Tpm::open(&TpmConfig::new(tcti)).unwrap();
    assert_eq!(flush_transient_objects(&tpm).unwrap(), 0);
    server.stop();
}

#[test]
fn swtpm_unreachable_tcti_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tcti = "swtpm:host=127.0.0.1,port=1";
    let output = enroll_tpm(dir.path(), "http://127.0.0.1:9", "code", tcti);
    assert_fails(
        &output,
        1,
        &format!("cannot connect to the TPM through `{tcti}`"),
    );
    assert!(!dir.path().join("agent.json").exists());
    assert!(!dir.path().join("device.tpmkey").exists());
}

#[test]
fn swtpm_enrollment_with_an_untrusted_ek_says_why() {
    let _guard = simulator();
    // The issuer trusts a TPM vendor's root, not the swtpm's CA.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hw/tests/data/tpm/ek/stmicro/stm-tpm-ek-root-ca.pem");
    let server = tpm_issuer(vec![root]);
    let dir = tempfile::tempdir().unwrap();
    let output = enroll_tpm(dir.path(), &server.url, &server.bootstrap(), &tcti());
    assert_fails(
        &output,
        1,
        "tpm attestation refused: the EK certificate does not chain to a configured TPM root",
    );
    assert!(!dir.path().join("agent.json").exists());
    server.stop();
}
