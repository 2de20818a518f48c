//! `holdfast enroll --yubikey` and the commands after it, run as a binary
//! against a real issuer served in-process on 127.0.0.1 that trusts the
//! virtual card's per-run attestation root and refuses software keys: the
//! key is generated and attested on the card through pcscd, then `token`,
//! `request` and `status` sign with it; and the messages for a wrong PIN
//! file, a card that cannot attest, and a touch policy the issuer refuses.
//!
//! Needs the virtual PIV card:
//!
//! ```text
//! source scripts/vpiv.sh && vpiv_start "$(mktemp -d)"
//! cargo nextest run -p holdfast-client vcard
//! vpiv_stop
//! ```
//!
//! Every test that uses the card has `vcard` in its name: nextest runs them
//! one at a time (`.config/nextest.toml`); under `cargo test` a lock here
//! does. Each test generates its key in its own slot, so leftovers of an
//! earlier run do not matter.
#![cfg(feature = "yubikey")]
// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};

use holdfast_hw::{KeyKind, private_file};
use serde_json::Value;

use support::{
    Issuer, assert_fails, assert_ok, fixture_env, holdfast, holdfast_command, json, state, stderr,
    stdout,
};

const PIN: &str = "123456";

static CARD: Mutex<()> = Mutex::new(());

/// The virtual card's environment variable `name`.
fn env(name: &str) -> String {
    fixture_env(name, "the virtual PIV card", "vpiv")
}

/// Exclusive use of the card, with no faults injected (and none left
/// behind).
struct Card {
    serial: String,
    control: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

fn card() -> Card {
    let turn = CARD.lock().unwrap_or_else(PoisonError::into_inner);
    let card = Card {
        serial: env("HOLDFAST_TEST_PIV_SERIAL"),
        control: PathBuf::from(env("HOLDFAST_TEST_PIV_CONTROL")),
        _turn: turn,
    };
    card.faults(&[]);
    card
}

impl Card {
    /// Replaces the card's injected faults (read before every command).
    fn faults(&self, directives: &[&str]) {
        std::fs::write(&self.control, directives.join("\n") + "\n").unwrap();
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.control, "");
    }
}

/// An issuer that refuses software keys and trusts Yubico's roots, plus
/// the virtual card's test root if `trust_card` is set.
fn piv_issuer(trust_card: bool) -> Issuer {
    let roots = if trust_card {
        vec![PathBuf::from(env("HOLDFAST_TEST_PIV_ROOT"))]
    } else {
        Vec::new()
    };
    Issuer::start(move |c| {
        c.attestation.danger_yubikey_test_roots = roots;
        c.policy.danger_accept_software_keys = false;
    })
}

/// A device code for `alice` (device policy: touch `never` or `cached`).
fn device_code(server: &Issuer) -> String {
    server.device_code("alice", KeyKind::Yubikey)
}

/// An agent directory with a PIN file (mode 0600) in it.
struct Agent {
    dir: tempfile::TempDir,
    pin_file: PathBuf,
}

impl Agent {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("pin");
        let agent = Self { dir, pin_file };
        agent.write_pin(PIN);
        agent
    }

    /// Replaces the PIN file with one holding `pin`.
    fn write_pin(&self, pin: &str) {
        let _ = std::fs::remove_file(&self.pin_file);
        private_file::write_new(&self.pin_file, format!("{pin}\n").as_bytes()).unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `holdfast --agent-dir DIR ARGS…`.
    fn command(&self, args: &[&str]) -> Command {
        holdfast_command(self.path(), args)
    }

    fn run(&self, args: &[&str]) -> Output {
        holdfast(self.path(), args)
    }

    /// `holdfast enroll --yubikey` in `slot` with the PIN file, and any
    /// `extra` flags.
    fn enroll(&self, server: &str, code: &str, slot: &str, extra: &[&str]) -> Output {
        let pin_file = self.pin_file.display().to_string();
        let mut args = vec![
            "enroll",
            "--server",
            server,
            "--code",
            code,
            "--yubikey",
            "--piv-slot",
            slot,
            "--pin-file",
            &pin_file,
            "--overwrite-slot",
            "--name",
            "yk-laptop",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn state(&self) -> Value {
        state(self.path())
    }
}

#[test]
fn vcard_enroll_then_token_request_and_status() {
    let card = card();
    let server = piv_issuer(true);
    let agent = Agent::new();

    // The first admin, with a key that needs a touch once per 15 s (the
    // admin policy allows `always` and `cached`).
    let enrolled = agent.enroll(
        &server.url,
        &server.bootstrap(),
        "9d",
        &["--touch-policy", "cached", "--pin-policy", "once"],
    );
    assert_ok(&enrolled);
    let out = stdout(&enrolled);
    assert!(out.contains("enrolled device d-"), "{out}");
    assert!(
        out.contains(&format!("yubikey (serial {}, slot 9d)", card.serial)),
        "{out}"
    );
    let touch = format!(
        "holdfast: touch your YubiKey (serial {}, slot 9d) when it blinks",
        card.serial
    );
    assert!(stderr(&enrolled).contains(&touch), "{}", stderr(&enrolled));
    assert!(!stderr(&enrolled).contains("SOFTWARE key"));

    // The state says where the key is and where the PIN comes from; never
    // the PIN.
    let state = agent.state();
    assert_eq!(state["kind"], "yubikey");
    assert_eq!(state["yubikey"]["serial"].to_string(), card.serial);
    assert_eq!(state["yubikey"]["slot"], "9d");
    assert_eq!(
        state["yubikey"]["pin_file"],
        agent.pin_file.display().to_string()
    );
    let saved = std::fs::read_to_string(agent.path().join("agent.json")).unwrap();
    assert!(!saved.contains(PIN), "{saved}");
    let client_id = state["client_id"].as_str().unwrap().to_owned();
    let jkt = state["jkt"].as_str().unwrap().to_owned();

    // token: client assertion and DPoP proof signed on the card, after a
    // prompt to touch it (a new process: the touch is not cached for it).
    let shown = agent.run(&["token", "--json"]);
    let token = json(&shown);
    assert!(stderr(&shown).contains(&touch), "{}", stderr(&shown));
    assert_eq!(token["claims"]["client_id"], client_id.as_str());
    assert_eq!(token["claims"]["cnf"]["jkt"], jkt.as_str());
    assert_eq!(token["claims"]["amr"], serde_json::json!(["hwk", "pop"]));

    // request: a DPoP-protected resource (the admin API; this is the
    // admin), which shows what the issuer verified.
    let url = format!("{}/admin/devices/{client_id}", server.url);
    let shown = json(&agent.run(&["request", "GET", &url]));
    assert_eq!(shown["kind"], "yubikey");
    let details = &shown["attestation"]["details"];
    assert_eq!(shown["attestation"]["kind"], "yubikey");
    assert_eq!(details["serial"], card.serial.as_str());
    assert_eq!(details["slot"], "9d");
    assert_eq!(details["pin_policy"], "once");
    assert_eq!(details["touch_policy"], "cached");
    assert_eq!(details["firmware"], "5.7.4");
    assert_eq!(details["anchor_kind"], "test");

    // status: which YubiKey and slot, and a session.
    let status = agent.run(&["status"]);
    assert_ok(&status);
    let text = stdout(&status);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {text}"))
            .to_owned()
    };
    assert!(line("kind").ends_with(" yubikey"), "{text}");
    assert!(
        line("yubikey").ends_with(&format!(" serial {}, slot 9d", card.serial)),
        "{text}"
    );
    assert!(text.contains("ok: session s-"), "{text}");
    let status = json(&agent.run(&["status", "--json"]));
    assert_eq!(status["state"]["yubikey"]["slot"], "9d");
    assert_eq!(status["session"]["ok"], true);
    server.stop();
}

#[test]
fn vcard_wrong_pin_file_says_how_many_retries_are_left() {
    let _card = card();
    let server = piv_issuer(true);
    let agent = Agent::new();
    assert_ok(&agent.enroll(&server.url, &device_code(&server), "9e", &[]));
    let state = agent.state();
    assert_eq!(state["yubikey"]["slot"], "9e");

    // A wrong PIN in the file: one try spent, and the message says how many
    // are left, exit 1.
    agent.write_pin("000000");
    let output = agent.run(&["token"]);
    assert_fails(&output, 1, "wrong PIN for the YubiKey: 2 retries left");
    let err = stderr(&output);
    assert!(err.contains("slot 9e"), "{err}");
    assert!(!err.contains("000000"), "the PIN is never printed: {err}");

    // The right PIN again: signs, and the card's counter is back to 3.
    agent.write_pin(PIN);
    assert_ok(&agent.run(&["token"]));
    server.stop();
}

#[test]
fn vcard_pin_from_the_environment_when_no_pin_file() {
    let _card = card();
    let server = piv_issuer(true);
    let agent = Agent::new();
    let run = |args: &[&str], pin: Option<&str>| {
        let mut command = agent.command(args);
        if let Some(pin) = pin {
            command.env("HOLDFAST_PIV_PIN", pin);
        }
        command.output().unwrap()
    };
    let code = device_code(&server);
    let enroll = [
        "enroll",
        "--server",
        &server.url,
        "--code",
        &code,
        "--yubikey",
        "--piv-slot",
        "9c",
        "--overwrite-slot",
    ];
    assert_ok(&run(&enroll, Some(PIN)));
    assert!(agent.state()["yubikey"].get("pin_file").is_none());
    assert_ok(&run(&["token"], Some(PIN)));
    assert_fails(
        &run(&["token"], None),
        1,
        "the PIN variable $HOLDFAST_PIV_PIN is not set",
    );
    server.stop();
}

#[test]
fn vcard_enroll_without_f9_certificate_fails_before_the_issuer() {
    let card = card();
    let server = piv_issuer(true);
    let agent = Agent::new();
    card.faults(&["no-f9"]);
    let output = agent.enroll(&server.url, &device_code(&server), "88", &[]);
    assert_fails(
        &output,
        1,
        &format!(
            "YubiKey {} cannot attest its key, so no issuer would accept it (nothing was sent): \
             no attestation for slot 88: the YubiKey has no attestation certificate in slot f9",
            card.serial
        ),
    );
    assert!(!agent.path().join("agent.json").exists());
    // The issuer never heard of it.
    assert_eq!(server.audited("enrollment_refused"), 0);
    assert!(server.issuer.state.store.devices().unwrap().is_empty());
    server.stop();
}

#[test]
fn vcard_enroll_with_touch_never_as_admin_is_refused_with_the_reason() {
    let _card = card();
    let server = piv_issuer(true);
    let agent = Agent::new();
    let output = agent.enroll(
        &server.url,
        &server.bootstrap(),
        "89",
        &["--touch-policy", "never"],
    );
    assert_fails(
        &output,
        1,
        "enrollment refused: yubikey attestation refused: touch policy `never` is not allowed \
         (allowed: always, cached). The issuer does not accept this device's hardware evidence; \
         show this message to your admin",
    );
    assert!(!agent.path().join("agent.json").exists());
    server.stop();
}

#[test]
fn vcard_enroll_at_an_issuer_without_the_test_root_is_refused() {
    let _card = card();
    let server = piv_issuer(false);
    let agent = Agent::new();
    let output = agent.enroll(&server.url, &device_code(&server), "8a", &[]);
    assert_fails(
        &output,
        1,
        "enrollment refused: yubikey attestation refused: the chain ends at CN=Holdfast TEST \
         PIV Attestation Root — not a Yubico root\\, tests only, which is not a trusted root \
         (trusted: Yubico PIV Root CA Serial 263751, Yubico U2F Root CA Serial 457200631, Yubico \
         Attestation Root 1). The issuer does not accept this device's hardware evidence",
    );
    server.stop();
}

#[test]
fn yubikey_policy_flags_are_checked_before_the_card_is_used() {
    let agent = Agent::new();
    let output = agent.enroll(
        "http://127.0.0.1:9",
        "code",
        "9a",
        &["--pin-policy", "sometimes"],
    );
    assert_fails(
        &output,
        2,
        "--pin-policy: unknown PIN policy \"sometimes\" (expected one of: never, once, always, \
         match_once, match_always)",
    );
    let output = agent.enroll(
        "http://127.0.0.1:9",
        "code",
        "9a",
        &["--touch-policy", "once"],
    );
    assert_fails(
        &output,
        2,
        "--touch-policy: unknown touch policy \"once\" (expected one of: never, always, cached)",
    );
    let output = agent.enroll("http://127.0.0.1:9", "code", "9b", &[]);
    assert_fails(&output, 2, "--piv-slot: not a PIV key slot");
    // The fingerprint policies parse, and the YubiKey path refuses them.
    let output = agent.enroll(
        "http://127.0.0.1:9",
        "code",
        "9a",
        &["--pin-policy", "match_once"],
    );
    assert_fails(
        &output,
        1,
        "PIN policy match_once cannot be set when generating a key",
    );
}
