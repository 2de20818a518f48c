//! `PivKey` against the virtual YubiKey: the real `yubikey` crate → pcsc →
//! libpcsclite → `pcscd` → vpcd → `holdfast-vpiv` (tests/vpiv).
//!
//! Start the card first, then run the tests:
//!
//! ```sh
//! source scripts/vpiv.sh && vpiv_start "$(mktemp -d)"
//! cargo test -p holdfast-hw --features yubikey --test vcard
//! vpiv_stop
//! ```
//!
//! Every test name contains `vcard` (nextest runs them one at a time); under
//! `cargo test` a lock serialises them, since they share one card. Each test
//! uses its own slot, so their order does not matter.
#![cfg(feature = "yubikey")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use holdfast_hw::KeyKind;
use holdfast_hw::attestation::piv::{self as verify, PivPolicy, PivTrust};
use holdfast_hw::piv::{
    AttestationGap, Firmware, ManagementKey, ManagementKeyAlgorithm, PinPolicy, PinSource,
    PivConfig, PivError, PivKey, PivSlot, TouchPolicy,
};
use holdfast_hw::testing::signer_conformance;
use holdfast_proto::{Alg, Clock as _, Signer, SystemClock, VerifyingKey};
use yubikey::{MgmAlgorithmId, MgmKey, Serial, YubiKey};
use zeroize::Zeroizing;

const PIN: &str = "123456";
const DEFAULT_MANAGEMENT_KEY: &str = "010203040506070801020304050607080102030405060708";

/// One card, many tests: one at a time.
static CARD: Mutex<()> = Mutex::new(());

struct Card {
    serial: u32,
    root_pem: String,
    control: PathBuf,
    _turn: MutexGuard<'static, ()>,
}

fn card() -> Card {
    let turn = CARD.lock().unwrap_or_else(PoisonError::into_inner);
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "${name} is not set: these tests need the virtual PIV card. Start it with \
                 `source scripts/vpiv.sh && vpiv_start DIR` (stop it with `vpiv_stop`), \
                 then run the tests again"
            )
        })
    };
    let root = var("HOLDFAST_TEST_PIV_ROOT");
    let card = Card {
        serial: var("HOLDFAST_TEST_PIV_SERIAL")
            .parse()
            .expect("a decimal serial"),
        root_pem: fs::read_to_string(&root).unwrap_or_else(|e| panic!("{root}: {e}")),
        control: PathBuf::from(var("HOLDFAST_TEST_PIV_CONTROL")),
        _turn: turn,
    };
    card.faults(&[]);
    card
}

impl Card {
    /// Replaces the card's injected faults (it re-reads the file before
    /// every command).
    fn faults(&self, directives: &[&str]) {
        let mut text = directives.join("\n");
        text.push('\n');
        fs::write(&self.control, text).unwrap();
    }

    fn config(&self, slot: &str) -> PivConfig {
        let mut config = PivConfig::new(pin(PIN));
        config.serial = Some(self.serial);
        config.slot = slot.parse().unwrap();
        config
    }

    /// A fresh key in `slot` (replacing whatever an earlier run left).
    fn generate(&self, slot: &str, pin_policy: PinPolicy, touch: TouchPolicy) -> PivKey {
        let mut config = self.config(slot);
        config.pin_policy = pin_policy;
        config.touch_policy = touch;
        config.overwrite = true;
        PivKey::generate(config).unwrap()
    }

    /// `ykman piv reset`: PIN, PUK and management key back to the factory
    /// values for the firmware reported, every key slot emptied. A YubiKey
    /// resets only with PIN and PUK blocked; the card's faults block them
    /// without spending tries.
    fn factory_reset(&self) {
        self.faults(&["pin-blocked", "puk-blocked"]);
        YubiKey::open_by_serial(Serial(self.serial))
            .unwrap()
            .reset_device()
            .unwrap();
        self.faults(&[]);
    }

    fn trust(&self) -> PivTrust {
        PivTrust::empty()
            .with_test_root_pem(&self.root_pem)
            .unwrap()
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        let _ = fs::write(&self.control, "");
    }
}

fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn pin(value: &str) -> PinSource {
    PinSource::Value(Zeroizing::new(value.to_owned()))
}

fn assert_verifies(key: &PivKey, message: &[u8]) {
    let sig = key.sign(message).unwrap();
    VerifyingKey::new(key.public_jwk(), Alg::Es256)
        .unwrap()
        .verify(message, &sig)
        .expect("the YubiKey's signature verifies with its JWK");
}

#[test]
fn vcard_generate_attest_sign_and_verify() {
    let card = card();
    let key = card.generate("9a", PinPolicy::Once, TouchPolicy::Never);
    assert_eq!(key.serial(), card.serial);
    assert_eq!(key.slot(), PivSlot::AUTHENTICATION);
    assert_eq!(key.kind(), KeyKind::Yubikey);
    assert_eq!(key.pin_policy(), Some(PinPolicy::Once));
    assert_eq!(key.touch_policy(), Some(TouchPolicy::Never));

    // The evidence verifies against the run's test root, for this key.
    let evidence = key.attestation().unwrap();
    let attested = verify::verify_evidence(
        &evidence,
        &card.trust(),
        &PivPolicy::default(),
        key.public_jwk(),
        SystemClock.now(),
    )
    .unwrap();
    assert_eq!(attested.serial(), Some(card.serial));
    assert_eq!(attested.slot(), Some(0x9a));
    // One type per idea: what the card reported is what it attested.
    assert_eq!(attested.pin_policy(), PinPolicy::Once);
    assert_eq!(attested.touch_policy(), TouchPolicy::Never);
    assert_eq!(attested.firmware(), key.firmware());

    assert_verifies(&key, b"holdfast over pcscd");
    signer_conformance(&key);
}

#[test]
fn vcard_reopens_the_recorded_key_and_signs_again() {
    let card = card();
    let record = {
        let key = card.generate("82", PinPolicy::Once, TouchPolicy::Never);
        assert_verifies(&key, b"before");
        key.record()
    };
    // What an agent stores survives as JSON, and finds the key again.
    let json = serde_json::to_string(&record).unwrap();
    let record = serde_json::from_str(&json).unwrap();
    let key = PivKey::open_record(&record, pin(PIN)).unwrap();
    assert_eq!(key.record(), record);
    assert_eq!(key.pin_policy(), Some(PinPolicy::Once));
    assert_verifies(&key, b"after a restart");
    signer_conformance(&key);
    drop(key);

    let key = PivKey::open(card.config("82")).unwrap();
    assert_eq!(key.public_jwk(), &record.jwk);

    // A record of another key is refused.
    let mut other = record.clone();
    other.jwk = card
        .generate("83", PinPolicy::Once, TouchPolicy::Never)
        .public_jwk()
        .clone();
    let err = PivKey::open_record(&other, pin(PIN)).unwrap_err();
    assert!(
        matches!(err, PivError::KeyChanged { slot, .. } if slot.to_string() == "82"),
        "{err}"
    );
}

#[test]
fn vcard_refuses_to_overwrite_an_occupied_slot() {
    let card = card();
    let first = card.generate("84", PinPolicy::Once, TouchPolicy::Never);
    let first_jwk = first.public_jwk().clone();
    drop(first);

    let err = PivKey::generate(card.config("84")).unwrap_err();
    assert!(
        matches!(err, PivError::SlotOccupied { serial, slot } if serial == card.serial && slot.to_string() == "84"),
        "{err}"
    );
    assert!(err.to_string().contains("already holds a key"), "{err}");
    // Nothing was replaced.
    let key = PivKey::open(card.config("84")).unwrap();
    assert_eq!(key.public_jwk(), &first_jwk);
    drop(key);

    let mut config = card.config("84");
    config.overwrite = true;
    let second = PivKey::generate(config).unwrap();
    assert_ne!(second.public_jwk(), &first_jwk);
}

#[test]
fn vcard_notices_a_key_replaced_behind_an_open_session() {
    let card = card();
    let old = card.generate("85", PinPolicy::Never, TouchPolicy::Never);
    assert_verifies(&old, b"old key");
    let new = card.generate("85", PinPolicy::Never, TouchPolicy::Never);
    assert_verifies(&new, b"new key");
    let err = old.sign(b"old key again").unwrap_err();
    assert!(matches!(err, PivError::KeyChanged { .. }), "{err}");
}

#[test]
fn vcard_wrong_pin_reports_retries_left_and_is_not_retried() {
    let card = card();
    drop(card.generate("86", PinPolicy::Once, TouchPolicy::Never));
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    write_private(&pin_file, "000000\n");

    let mut config = card.config("86");
    config.pin = PinSource::File(pin_file.clone());
    let key = PivKey::open(config).unwrap();
    let err = key.sign(b"m").unwrap_err();
    assert!(matches!(err, PivError::WrongPin { retries: 2 }), "{err}");
    assert!(
        err.to_string().contains("2 retries left"),
        "the message names the retries: {err}"
    );
    // The same wrong PIN is not sent again.
    assert!(matches!(
        key.sign(b"m"),
        Err(PivError::WrongPin { retries: 2 })
    ));
    // As a Signer, the message still says what happened.
    let err = key.try_sign(b"m").unwrap_err().to_string();
    assert!(
        err.contains("wrong PIN") && err.contains(&card.serial.to_string()),
        "{err}"
    );

    // Another session's wrong PIN is the second try spent: the repeats
    // above cost nothing.
    let mut config = card.config("86");
    config.pin = pin("000000");
    let other = PivKey::open(config).unwrap();
    assert!(matches!(
        other.sign(b"m"),
        Err(PivError::WrongPin { retries: 1 })
    ));
    drop(other);

    // Fixing the PIN file is enough: the new PIN is sent, and restores the
    // counter.
    write_private(&pin_file, &format!("{PIN}\n"));
    assert_verifies(&key, b"right PIN");
}

#[test]
fn vcard_blocked_pin_points_to_the_puk() {
    let card = card();
    drop(card.generate("87", PinPolicy::Once, TouchPolicy::Never));
    card.faults(&["pin-blocked"]);
    let key = PivKey::open(card.config("87")).unwrap();
    let err = key.sign(b"m").unwrap_err();
    assert!(matches!(err, PivError::PinBlocked), "{err}");
    assert!(err.to_string().contains("PUK"), "{err}");
}

#[test]
fn vcard_missing_f9_certificate_means_no_attestation() {
    let card = card();
    let key = card.generate("88", PinPolicy::Once, TouchPolicy::Never);
    card.faults(&["no-f9"]);
    let err = key.attestation().unwrap_err();
    assert!(
        matches!(
            err,
            PivError::AttestationUnavailable {
                reason: AttestationGap::NoF9Certificate,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("slot f9"), "{err}");
    // Signing does not need f9.
    assert_verifies(&key, b"still signs");
}

#[test]
fn vcard_imported_key_is_not_attested() {
    let card = card();
    drop(card.generate("89", PinPolicy::Once, TouchPolicy::Never));
    card.faults(&["imported 89"]);
    // Metadata says imported: refused without asking the card to attest.
    let key = PivKey::open(card.config("89")).unwrap();
    let err = key.attestation().unwrap_err();
    assert!(
        matches!(
            err,
            PivError::AttestationUnavailable {
                reason: AttestationGap::ImportedKey,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("imported"), "{err}");
    drop(key);

    // A key opened while the card still called it generated: the card's
    // refusal of ATTEST (6A80, as for an imported key) is what reports it.
    card.faults(&[]);
    let key = PivKey::open(card.config("89")).unwrap();
    card.faults(&["imported 89"]);
    let err = key.attestation().unwrap_err();
    assert!(
        matches!(
            err,
            PivError::AttestationUnavailable {
                reason: AttestationGap::Refused,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn vcard_really_imported_key_signs_but_is_not_attested() {
    use p256::elliptic_curve::Generate as _;
    use yubikey::piv::{AlgorithmId, SlotId};
    let card = card();
    let secret = p256::ecdsa::SigningKey::generate();
    {
        let mut yubikey = YubiKey::open_by_serial(Serial(card.serial)).unwrap();
        yubikey
            .authenticate(&MgmKey::get_default(&yubikey).unwrap())
            .unwrap();
        yubikey::piv::import_ecc_key(
            &mut yubikey,
            SlotId::try_from(0x93).unwrap(),
            AlgorithmId::EccP256,
            &secret.to_bytes(),
            yubikey::TouchPolicy::Never,
            yubikey::PinPolicy::Once,
        )
        .unwrap();
    }
    let key = PivKey::open(card.config("93")).unwrap();
    let point = secret.verifying_key().to_sec1_point(false);
    assert_eq!(
        key.public_jwk(),
        &holdfast_proto::Jwk::p256(
            point.x().unwrap().as_slice().try_into().unwrap(),
            point.y().unwrap().as_slice().try_into().unwrap()
        )
    );
    assert_verifies(&key, b"an imported key still signs");
    let err = key.attestation().unwrap_err();
    assert!(
        matches!(
            err,
            PivError::AttestationUnavailable {
                reason: AttestationGap::ImportedKey,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn vcard_touch_timeout_says_to_touch() {
    let card = card();
    let key = card.generate("8a", PinPolicy::Once, TouchPolicy::Always);
    assert_verifies(&key, b"touched");
    card.faults(&["touch-timeout"]);
    let err = key.sign(b"not touched").unwrap_err();
    assert!(
        matches!(err, PivError::TouchTimeout { slot } if slot.to_string() == "8a"),
        "{err}"
    );
    assert!(err.to_string().contains("touch it when it blinks"), "{err}");
    // A key with touch policy never is not affected.
    let untouched = card.generate("8b", PinPolicy::Once, TouchPolicy::Never);
    assert_verifies(&untouched, b"no touch needed");
    card.faults(&[]);
    assert_verifies(&key, b"touched again");
}

#[test]
fn vcard_pin_policy_always_sends_the_pin_before_each_signature() {
    let card = card();
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    let write_pin = |pin: &str| write_private(&pin_file, &format!("{pin}\n"));
    write_pin(PIN);

    let open = |slot: &str| {
        let mut config = card.config(slot);
        config.pin = PinSource::File(pin_file.clone());
        PivKey::open(config).unwrap()
    };
    drop(card.generate("8c", PinPolicy::Always, TouchPolicy::Never));
    drop(card.generate("8d", PinPolicy::Once, TouchPolicy::Never));
    let always = open("8c");
    let once = open("8d");
    assert_eq!(always.pin_policy(), Some(PinPolicy::Always));
    assert_verifies(&always, b"one");
    assert_verifies(&always, b"two");
    assert_verifies(&once, b"one");

    // The PIN is read and sent again for `always`, not for `once`. (Order
    // matters: a refused VERIFY clears the card's PIN status for every
    // session, as on a YubiKey, so `once` signs first.)
    write_pin("999999");
    assert_verifies(&once, b"two");
    let err = always.sign(b"three").unwrap_err();
    assert!(matches!(err, PivError::WrongPin { retries: 2 }), "{err}");
    write_pin(PIN);
    drop(always);
    assert_verifies(&open("8c"), b"right PIN again");

    // Without a PIN source, `always` cannot sign.
    let mut config = card.config("8c");
    config.pin = PinSource::None;
    let err = PivKey::open(config).unwrap().sign(b"m").unwrap_err();
    assert!(matches!(err, PivError::PinRequired { .. }), "{err}");
}

#[test]
fn vcard_pin_policy_never_signs_without_a_pin() {
    let card = card();
    drop(card.generate("9e", PinPolicy::Never, TouchPolicy::Never));
    let mut config = card.config("9e");
    config.pin = PinSource::None;
    let key = PivKey::open(config).unwrap();
    assert_eq!(key.pin_policy(), Some(PinPolicy::Never));
    assert_verifies(&key, b"no PIN");
}

/// Runs `test` with the card reporting `firmware`, then checks which
/// management key algorithm the card was detected to use.
fn management_key_paths(card: &Card, firmware: &str, slot: &str, expected: ManagementKeyAlgorithm) {
    // The factory key for this firmware, whatever earlier tests changed.
    card.faults(&[
        &format!("firmware {firmware}"),
        "pin-blocked",
        "puk-blocked",
    ]);
    YubiKey::open_by_serial(Serial(card.serial))
        .unwrap()
        .reset_device()
        .unwrap();
    card.faults(&[&format!("firmware {firmware}")]);

    // The default key, found without configuration.
    let mut config = card.config(slot);
    config.overwrite = true;
    let key = PivKey::generate(config).unwrap();
    assert_eq!(key.firmware().to_string(), firmware);
    assert_verifies(&key, b"generated");
    let evidence = key.attestation().unwrap();
    let attested = verify::verify_evidence(
        &evidence,
        &card.trust(),
        &PivPolicy::default(),
        key.public_jwk(),
        SystemClock.now(),
    )
    .unwrap();
    assert_eq!(attested.firmware().to_string(), firmware);
    drop(key);

    // The same default key, configured explicitly.
    let mut config = card.config(slot);
    config.overwrite = true;
    config.management_key = Some(ManagementKey::from_hex(DEFAULT_MANAGEMENT_KEY).unwrap());
    drop(PivKey::generate(config).unwrap());

    // A wrong key is rejected, naming the detected algorithm.
    let mut config = card.config(slot);
    config.overwrite = true;
    config.management_key = Some(ManagementKey::from_hex(&"42".repeat(24)).unwrap());
    let err = PivKey::generate(config).unwrap_err();
    assert!(
        matches!(err, PivError::ManagementKeyRejected { algorithm, .. } if algorithm == expected),
        "{err}"
    );

    // A key of the wrong length for the algorithm.
    let mut config = card.config(slot);
    config.overwrite = true;
    config.management_key = Some(ManagementKey::from_hex(&"42".repeat(16)).unwrap());
    let err = PivKey::generate(config).unwrap_err();
    assert!(
        matches!(err, PivError::ManagementKeyLength { algorithm, len: 16, expected: 24, .. } if algorithm == expected),
        "{err}"
    );
}

#[test]
fn vcard_firmware_5_4_3_uses_the_3des_management_key() {
    let card = card();
    management_key_paths(&card, "5.4.3", "8e", ManagementKeyAlgorithm::TripleDes);
}

#[test]
fn vcard_firmware_5_7_4_uses_the_aes_192_management_key() {
    let card = card();
    management_key_paths(&card, "5.7.4", "8f", ManagementKeyAlgorithm::Aes192);
}

#[test]
fn vcard_names_a_missing_serial_and_finds_the_only_card() {
    let card = card();
    let mut config = card.config("9a");
    config.serial = Some(card.serial.wrapping_add(1));
    let err = PivKey::open(config).unwrap_err();
    assert!(
        matches!(&err, PivError::SerialNotFound { present, .. } if present == &[card.serial]),
        "{err}"
    );
    assert!(err.to_string().contains(&card.serial.to_string()), "{err}");

    // The only card present is found without a serial.
    let mut config = card.config("9a");
    config.serial = None;
    config.overwrite = true;
    let key = PivKey::generate(config).unwrap();
    assert_eq!(key.serial(), card.serial);
}

#[test]
fn vcard_refuses_firmware_without_attestation() {
    let card = card();
    // Before 4.3 there is no attestation, so no key is generated.
    card.faults(&["firmware 4.2.7"]);
    let mut config = card.config("90");
    config.overwrite = true;
    let err = PivKey::generate(config).unwrap_err();
    assert!(
        matches!(err, PivError::UnsupportedFirmware { version, .. } if version == Firmware::new(4, 2, 7)),
        "{err}"
    );
}

#[test]
fn refuses_fingerprint_pin_policies_before_touching_the_card() {
    // No card needed: the policy is refused before any reader is opened.
    for policy in [PinPolicy::MatchOnce, PinPolicy::MatchAlways] {
        let mut config = PivConfig::new(PinSource::None);
        config.pin_policy = policy;
        let err = PivKey::generate(config).unwrap_err();
        assert!(
            matches!(err, PivError::PinPolicyUnsupported { policy: p } if p == policy),
            "{err}"
        );
        assert!(
            err.to_string().contains("choose never, once or always"),
            "{err}"
        );
    }
}

/// A second virtual card, in the second reader vpcd makes (port + 1).
struct SecondCard {
    child: std::process::Child,
    serial: u32,
    _dir: tempfile::TempDir,
}

impl SecondCard {
    fn start(first_serial: u32) -> Self {
        let vpiv_dir = std::env::var("HOLDFAST_VPIV_DIR")
            .expect("$HOLDFAST_VPIV_DIR is not set: start the card with vpiv_start");
        let conf = fs::read_to_string(PathBuf::from(&vpiv_dir).join("reader.conf.d/vpiv")).unwrap();
        let port = conf
            .lines()
            .find_map(|line| line.trim().strip_prefix("DEVICENAME"))
            .and_then(|value| value.trim().rsplit_once(":0x"))
            .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
            .expect("DEVICENAME /dev/null:0xPORT in the reader configuration");
        let bin = std::env::var_os("HOLDFAST_VPIV_BIN").map_or_else(
            || {
                let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                    || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
                    PathBuf::from,
                );
                target.join("debug/holdfast-vpiv")
            },
            PathBuf::from,
        );
        let dir = tempfile::tempdir().unwrap();
        let serial = if first_serial == 10_000_001 {
            10_000_002
        } else {
            10_000_001
        };
        let log = fs::File::create(dir.path().join("card.log")).unwrap();
        let child = std::process::Command::new(&bin)
            .args([
                "run",
                "--port",
                &(port + 1).to_string(),
                "--serial",
                &serial.to_string(),
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let second = Self {
            child,
            serial,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while YubiKey::open_by_serial(Serial(serial)).is_err() {
            assert!(Instant::now() < deadline, "the second card did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        second
    }
}

impl Drop for SecondCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Wait until pcscd sees the reader empty again, for the next test.
        let deadline = Instant::now() + Duration::from_secs(10);
        while YubiKey::open_by_serial(Serial(self.serial)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn vcard_two_cards_need_a_serial() {
    let card = card();
    drop(card.generate("94", PinPolicy::Once, TouchPolicy::Never));
    let second = SecondCard::start(card.serial);

    let mut config = card.config("94");
    config.serial = None;
    let err = PivKey::open(config).unwrap_err();
    let PivError::MultipleCards { mut serials } = err else {
        panic!("{err}");
    };
    serials.sort_unstable();
    let mut expected = vec![card.serial, second.serial];
    expected.sort_unstable();
    assert_eq!(serials, expected);
    let err = PivError::MultipleCards { serials };
    assert!(err.to_string().contains("--serial"), "{err}");

    // With the serial, the right card, and the other one left alone.
    let key = PivKey::open(card.config("94")).unwrap();
    assert_eq!(key.serial(), card.serial);
    assert_verifies(&key, b"the chosen card");
}

/// Resets the card to the factory state when dropped, whatever the test
/// did to its management key.
struct ResetOnDrop<'a>(&'a Card);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.factory_reset();
    }
}

#[test]
fn vcard_changed_management_key_is_explained_or_used() {
    let card = card();
    let _reset = ResetOnDrop(&card);
    let custom_key = MgmKey::from_bytes([0x42u8; 24], Some(MgmAlgorithmId::Aes192)).unwrap();
    let open = || YubiKey::open_by_serial(Serial(card.serial)).unwrap();
    {
        let mut yubikey = open();
        yubikey
            .authenticate(&MgmKey::get_default(&yubikey).unwrap())
            .unwrap();
        custom_key.set_manual(&mut yubikey, false).unwrap();
    }
    let generate = |management_key: Option<&str>, pin_source: PinSource| {
        let mut config = card.config("92");
        config.overwrite = true;
        config.pin = pin_source;
        config.management_key = management_key.map(|hex| ManagementKey::from_hex(hex).unwrap());
        PivKey::generate(config)
    };

    // Not the default, none configured: the message says what to do.
    let err = generate(None, pin(PIN)).unwrap_err();
    assert!(
        matches!(
            err,
            PivError::ManagementKeyRequired {
                algorithm: ManagementKeyAlgorithm::Aes192,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("--management-key") && message.contains("--protect"),
        "{message}"
    );
    // Configured: used.
    let hex = "42".repeat(24);
    drop(generate(Some(&hex), PinSource::None).unwrap());

    // Stored PIN-protected on the card: found with the PIN, and only then.
    {
        let mut yubikey = open();
        yubikey.authenticate(&custom_key).unwrap();
        yubikey.verify_pin(PIN.as_bytes()).unwrap();
        custom_key.set_protected(&mut yubikey).unwrap();
    }
    let key = generate(None, pin(PIN)).unwrap();
    assert_verifies(&key, b"generated with the PIN-protected management key");
    drop(key);
    let err = generate(None, PinSource::None).unwrap_err();
    assert!(
        matches!(err, PivError::ManagementKeyRequired { .. }),
        "{err}"
    );
}

/// Median, p90 and max of `n` runs of `op`.
fn timed(n: usize, mut op: impl FnMut(usize)) -> [Duration; 3] {
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            op(i);
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    [at(0.5), at(0.9), times[times.len() - 1]]
}

#[test]
fn vcard_signature_latency() {
    let card = card();
    let key = card.generate("91", PinPolicy::Once, TouchPolicy::Never);
    key.sign(b"warm up").unwrap();
    let [median, p90, max] = timed(200, |i| {
        key.sign(format!("message {i}").as_bytes()).unwrap();
    });
    eprintln!(
        "PivKey::sign through pcscd and the virtual card, 200 signatures: \
         median {median:?}, p90 {p90:?}, max {max:?}"
    );
    drop(key);
    // For comparison: one APDU that does no cryptography (GET METADATA).
    let mut yubikey = YubiKey::open_by_serial(Serial(card.serial)).unwrap();
    let slot = yubikey::piv::SlotId::try_from(0x91).unwrap();
    let [median, p90, max] = timed(200, |_| {
        yubikey::piv::metadata(&mut yubikey, slot).unwrap();
    });
    eprintln!(
        "one APDU round trip (GET METADATA), 200 times: median {median:?}, p90 {p90:?}, max {max:?}"
    );
}
