//! YubiKey enrollment end to end, against the virtual PIV card (tests/vpiv)
//! through the real path — `yubikey` crate → pcsc → pcscd → vpcd → card —
//! and an issuer that trusts the card's per-run test root
//! (`attestation.danger_yubikey_test_roots`) and refuses software keys.
//!
//! - A key generated on the card is enrolled through the SDK
//!   (`PivEnrollment`: the slot's `ATTEST` certificate and the f9
//!   certificate, plus the enrollment proof the card signs over the
//!   challenge), gets a token with a client assertion and DPoP proofs signed
//!   on the card, and passes a verifier that follows the issuer's feed; the
//!   device record carries the attested serial, firmware and policies.
//! - Each piece of evidence that does not prove what the issuer needs is
//!   refused over HTTP with its status, `error`, an `error_description`
//!   naming what failed, and the audit record's `check`; what the card
//!   itself cannot attest (no f9 certificate, an imported key) fails on the
//!   device, before anything is sent.
//!
//! Needs the virtual card:
//!
//! ```text
//! source scripts/vpiv.sh && vpiv_start "$(mktemp -d)"
//! cargo nextest run -p holdfast-tests vcard
//! vpiv_stop
//! ```
//!
//! Every test here has `vcard` in its path (this module's name): nextest
//! runs them one at a time (`.config/nextest.toml`), since they share one
//! card; under `cargo test` a lock here does. Each test uses its own slots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64ct::{Base64, Encoding as _};
use holdfast_client::evidence::PivEnrollment;
use holdfast_client::{EnrollRequest, enroll};
use holdfast_hw::attestation::evidence::{Bytes, PivEvidence};
use holdfast_hw::piv::{
    AttestationGap, PinPolicy, PinSource, PivConfig, PivError, PivKey, TouchPolicy,
};
use holdfast_hw::{KeyKind, private_file};
use holdfast_proto::Signer;
use holdfast_server::enrollment::bootstrap_admin;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::support::enrollment::{
    assert_enrollment_refused, assert_hardware_session, denied, device_code, fact, fixture_env,
    invalid, post_challenge,
};
use crate::support::{Refusal, Server};

/// One card, one test at a time (for `cargo test`, which runs the tests of
/// a binary on parallel threads).
static CARD: Mutex<()> = Mutex::const_new(());

/// The virtual card's factory PIN.
const PIN: &str = "123456";

/// The virtual card's environment variable `name`.
fn env(name: &str) -> String {
    fixture_env(name, "the virtual PIV card", "vpiv")
}

/// Exclusive use of the card, with no faults injected (and none left
/// behind), and a PIN file for its keys.
struct Card {
    serial: u32,
    control: PathBuf,
    pin_dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Card {
    async fn open() -> Self {
        let turn = CARD.lock().await;
        let pin_dir = tempfile::tempdir().unwrap();
        private_file::write_new(&pin_dir.path().join("pin"), format!("{PIN}\n").as_bytes())
            .unwrap();
        let card = Self {
            serial: env("HOLDFAST_TEST_PIV_SERIAL").parse().unwrap(),
            control: PathBuf::from(env("HOLDFAST_TEST_PIV_CONTROL")),
            pin_dir,
            _turn: turn,
        };
        card.faults(&[]);
        card
    }

    /// How an agent configures the key in `slot`: this card, the PIN file.
    fn config(&self, slot: &str) -> PivConfig {
        let mut config = PivConfig::new(PinSource::File(self.pin_dir.path().join("pin")));
        config.serial = Some(self.serial);
        config.slot = slot.parse().unwrap();
        config
    }

    /// Replaces the card's injected faults (read before every command).
    fn faults(&self, directives: &[&str]) {
        std::fs::write(&self.control, directives.join("\n") + "\n").unwrap();
    }

    /// A new key in `slot` (replacing whatever an earlier run left), as
    /// `holdfast enroll --yubikey` makes one.
    fn generate(&self, slot: &str, touch: TouchPolicy) -> PivKey {
        let mut config = self.config(slot);
        config.pin_policy = PinPolicy::Once;
        config.touch_policy = touch;
        config.overwrite = true;
        PivKey::generate(config).unwrap()
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.control, "");
    }
}

/// An issuer that refuses software keys and trusts Yubico's roots, plus the
/// card's test root if `trust_card` is set. Its clock is the real time, at
/// which the card's certificates are checked.
async fn piv_issuer(trust_card: bool) -> Server {
    let roots = if trust_card {
        vec![PathBuf::from(env("HOLDFAST_TEST_PIV_ROOT"))]
    } else {
        Vec::new()
    };
    Server::start_attesting(|c| c.attestation.danger_yubikey_test_roots = roots).await
}

/// `POST /enroll` by hand: `signer`'s key as a YubiKey key with
/// `attestation`, the proof signed by `signer` over a fresh challenge.
async fn post_enroll(
    server: &Server,
    code: &str,
    signer: &dyn Signer,
    attestation: impl serde::Serialize,
) -> Result<Value, Refusal> {
    let challenge = post_challenge(server, None).await.unwrap();
    let challenge = challenge["challenge"].as_str().unwrap();
    crate::support::enrollment::post_enroll(
        server,
        code,
        "yubikey",
        signer,
        challenge,
        &attestation,
    )
    .await
}

/// `POST /enroll` of `key` with the evidence its card gives for it.
async fn post_attested(server: &Server, code: &str, key: &PivKey) -> Result<Value, Refusal> {
    post_enroll(server, code, key, key.attestation().unwrap()).await
}

/// The card cannot attest `key`, for `gap`, and the device says so in
/// `message`.
#[track_caller]
fn assert_unattestable(key: &PivKey, gap: AttestationGap, message: &str) {
    let err = key.attestation().unwrap_err();
    assert!(
        matches!(err, PivError::AttestationUnavailable { reason, .. } if reason == gap),
        "{err}"
    );
    assert_eq!(err.to_string(), message);
}

/// A certificate of the hw crate's real YubiKey test data, DER.
fn real_certificate(path: &str) -> Vec<u8> {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../hw/tests/data/yubikey")
            .join(path),
    )
    .unwrap();
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    Base64::decode_vec(&body).unwrap()
}

#[tokio::test]
async fn enrolls_a_yubikey_that_gets_tokens_and_passes_the_verifier() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    let code = device_code(&server, "alice", KeyKind::Yubikey);
    // An agent's key: PIN once, no touch (every request is a signature).
    let key = Arc::new(card.generate("9a", TouchPolicy::Never));
    let jkt = key.public_jwk().thumbprint();

    // Enrollment through the SDK: the evidence read from the card, and the
    // enrollment proof signed on the card over the issuer's challenge.
    let evidence = key.attestation().unwrap();
    let enrolled = enroll(
        &reqwest::Client::new(),
        &server.url,
        EnrollRequest {
            code: &code,
            kind: "yubikey",
            name: "yk-laptop",
            signer: key.as_ref(),
            evidence: &mut PivEnrollment::new(evidence),
        },
        server.now(),
    )
    .await
    .unwrap();
    assert_eq!(enrolled.kind, "yubikey");
    assert_eq!(enrolled.jkt, jkt.as_str());

    // The device record carries what the attestation proved.
    let device = server.device(&jkt);
    assert_eq!(device.id.as_str(), enrolled.client_id);
    assert_eq!(device.kind, KeyKind::Yubikey);
    assert_eq!(device.attestation.kind, "yubikey");
    let details = &device.attestation.details;
    let fact = |name: &str| fact(&device, name);
    assert_eq!(fact("serial"), card.serial.to_string());
    assert_eq!(fact("firmware"), key.firmware().to_string());
    assert_eq!(fact("firmware"), "5.7.4");
    assert_eq!(fact("pin_policy"), "once");
    assert_eq!(fact("touch_policy"), "never");
    assert_eq!(fact("slot"), "9a");
    assert_eq!(fact("key"), "P-256");
    assert_eq!(fact("anchor_kind"), "test");
    assert!(fact("anchor").contains("Holdfast TEST PIV"), "{details:?}");
    assert_eq!(fact("fips"), "false");
    let audited = server.audited("device_enrolled").pop().unwrap();
    assert_eq!(audited.entry.details["kind"], "yubikey");
    assert_eq!(audited.entry.details["jkt"], jkt.as_str());

    // Tokens: the client assertion and every DPoP proof are signed on the
    // card; a protected resource behind the verifier accepts them.
    let signer: Arc<dyn Signer> = key.clone();
    assert_hardware_session(&server, &enrolled, signer).await;
}

#[tokio::test]
async fn enrolls_an_admin_yubikey_with_touch_always() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    let code = bootstrap_admin(&server.issuer.state, "root", server.now()).unwrap();
    // Admins prove presence: every signature is a touch.
    let key = card.generate("82", TouchPolicy::Always);
    let enrolled = enroll(
        &reqwest::Client::new(),
        &server.url,
        EnrollRequest {
            code: &code,
            kind: "yubikey",
            name: "admin-yubikey",
            signer: &key,
            evidence: &mut PivEnrollment::new(key.attestation().unwrap()),
        },
        server.now(),
    )
    .await
    .unwrap();
    assert_eq!(enrolled.principal, "root");
    let device = server.device(&key.public_jwk().thumbprint());
    assert_eq!(device.attestation.details["touch_policy"], "always");
    assert_eq!(device.attestation.details["slot"], "82");
}

#[tokio::test]
async fn refuses_touch_policy_never_for_an_admin() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    let code = bootstrap_admin(&server.issuer.state, "root", server.now()).unwrap();
    // Honest evidence for a key that any holder of the YubiKey can use
    // without a touch: the admin policy wants physical presence.
    let key = card.generate("83", TouchPolicy::Never);
    let got = post_attested(&server, &code, &key).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("touch_policy_not_allowed"),
        "yubikey attestation refused: touch policy `never` is not allowed (allowed: always, \
         cached)",
    );
}

#[tokio::test]
async fn refuses_a_slot_certificate_under_an_untrusted_root() {
    let card = Card::open().await;
    // Yubico's roots only: the card's test root is not trusted.
    let server = piv_issuer(false).await;
    let code = device_code(&server, "alice", KeyKind::Yubikey);
    let key = card.generate("84", TouchPolicy::Never);
    let got = post_attested(&server, &code, &key).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("chain_untrusted"),
        "yubikey attestation refused: the chain ends at CN=Holdfast TEST PIV Attestation Root — \
         not a Yubico root\\, tests only, which is not a trusted root (trusted: Yubico PIV Root \
         CA Serial 263751, Yubico U2F Root CA Serial 457200631, Yubico Attestation Root 1)",
    );
}

#[tokio::test]
async fn refuses_evidence_of_another_key_with_the_proof_of_this_key() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    let code = device_code(&server, "alice", KeyKind::Yubikey);
    // Genuine evidence for the key in slot 86, sent with a proof by the key
    // in slot 85: the attestation says nothing about the key enrolled.
    let attested = card.generate("86", TouchPolicy::Never);
    let enrolled = card.generate("85", TouchPolicy::Never);
    let got = post_enroll(&server, &code, &enrolled, attested.attestation().unwrap()).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("key_mismatch"),
        "yubikey attestation refused: the attested key is not the key being enrolled (same \
         curve, different point)",
    );
}

#[tokio::test]
async fn refuses_a_genuine_f9_certificate_paired_with_this_cards_slot_certificate() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    let code = device_code(&server, "alice", KeyKind::Yubikey);
    // The card reports firmware 5.4.3, so its slot certificate names the
    // same issuer as a real YubiKey 5.4.3's f9 certificate ("Yubico PIV
    // Attestation"): only the signature tells them apart.
    card.faults(&["firmware 5.4.3"]);
    let key = card.generate("87", TouchPolicy::Never);
    let mut evidence = key.attestation().unwrap();
    evidence.intermediate_certificate =
        Bytes(real_certificate("yk5-fw5.4.3-sn15732500-slot9a/f9.pem"));
    let got = post_enroll(&server, &code, &key, evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("chain_signature_invalid"),
        "yubikey attestation refused: the slot certificate was not issued by the f9 certificate \
         (CN=Yubico PIV Attestation): signature does not verify",
    );
}

#[tokio::test]
async fn missing_f9_certificate_fails_on_the_device_and_the_issuer_refuses_what_remains() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    let code = device_code(&server, "alice", KeyKind::Yubikey);
    let key = card.generate("88", TouchPolicy::Never);
    card.faults(&["no-f9"]);

    // The card has no f9 certificate: the device cannot make evidence, and
    // says why before anything reaches the issuer.
    assert_unattestable(
        &key,
        AttestationGap::NoF9Certificate,
        "no attestation for slot 88: the YubiKey has no attestation certificate in slot f9 (it \
         was deleted; only Yubico's factory certificate chains to Yubico's roots)",
    );
    assert!(server.audited("enrollment_refused").is_empty());

    // A client that sends what it has anyway: the slot certificate alone,
    // or nothing at all.
    card.faults(&[]);
    let slot_only = PivEvidence {
        slot_certificate: key.attestation().unwrap().slot_certificate,
        intermediate_certificate: Bytes(Vec::new()),
    };
    let got = post_enroll(&server, &code, &key, slot_only).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("attestation_malformed"),
        "yubikey attestation refused: the f9 certificate is malformed: it is empty",
    );
    let got = post_enroll(&server, &code, &key, Value::Null).await;
    assert_enrollment_refused(
        &server,
        got,
        invalid("attestation_required"),
        "yubikey keys must be enrolled with attestation evidence",
    );
}

#[tokio::test]
async fn imported_key_fails_on_the_device_before_the_issuer() {
    let card = Card::open().await;
    let server = piv_issuer(true).await;
    drop(card.generate("89", TouchPolicy::Never));
    // The card now says the key was imported (as `ykman piv keys import`
    // leaves it): it cannot be attested, so it cannot be enrolled.
    card.faults(&["imported 89"]);
    let key = PivKey::open(card.config("89")).unwrap();
    assert_unattestable(
        &key,
        AttestationGap::ImportedKey,
        "no attestation for slot 89: the key was imported, not generated on the YubiKey, so the \
         YubiKey cannot attest it; generate a new key on the YubiKey",
    );
    // It still signs (an imported key is a key), but the issuer never saw
    // it.
    key.try_sign(b"still a key").unwrap();
    assert!(server.audited("enrollment_refused").is_empty());
    assert!(server.issuer.state.store.devices().unwrap().is_empty());
}
