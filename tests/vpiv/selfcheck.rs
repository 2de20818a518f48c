//! The card through the real stack: the yubikey crate → pcsc → libpcsclite
//! → pcscd → vpcd → this card, started by `scripts/vpiv.sh`. Runs only when
//! `HOLDFAST_TEST_PIV_SERIAL` is set (it says so and passes otherwise); it
//! rewrites the control file and puts it back.
//!
//! `source scripts/vpiv.sh && vpiv_start /tmp/vpiv &&
//!  cargo test -p holdfast-tests --bin holdfast-vpiv vcard -- --nocapture; vpiv_stop`

use std::path::PathBuf;
use std::time::Instant;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, RetiredSlotId, SlotAlgorithmId, SlotId};
use yubikey::{Error, MgmAlgorithmId, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

use crate::tlv::Tlv;

const SIGNATURES_TIMED: u32 = 200;

struct Env {
    serial: u32,
    root: PathBuf,
    control: PathBuf,
}

fn env() -> Option<Env> {
    let serial = std::env::var("HOLDFAST_TEST_PIV_SERIAL")
        .ok()?
        .parse()
        .ok()?;
    Some(Env {
        serial,
        root: std::env::var_os("HOLDFAST_TEST_PIV_ROOT")?.into(),
        control: std::env::var_os("HOLDFAST_TEST_PIV_CONTROL")?.into(),
    })
}

/// Puts the control file back as it was, even when an assertion fails.
struct Restore {
    path: PathBuf,
    contents: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.contents);
    }
}

fn read_pem_certificate(path: &PathBuf) -> Certificate {
    use base64ct::{Base64, Encoding};
    let text = std::fs::read_to_string(path).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    Certificate::from_der(&Base64::decode_vec(&body).unwrap()).unwrap()
}

fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let spki = issuer.tbs_certificate().subject_public_key_info();
    let key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
    let signature = p256::ecdsa::Signature::from_der(cert.signature().raw_bytes()).unwrap();
    key.verify(&cert.tbs_certificate().to_der().unwrap(), &signature)
        .is_ok()
}

fn extension(cert: &Certificate, oid: &str) -> Vec<u8> {
    cert.tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == oid)
        .unwrap_or_else(|| panic!("no extension {oid}"))
        .extn_value
        .as_bytes()
        .to_vec()
}

#[test]
fn vcard_generate_attest_and_sign_through_pcscd() {
    let Some(env) = env() else {
        eprintln!(
            "skipped: HOLDFAST_TEST_PIV_SERIAL is not set (source scripts/vpiv.sh && vpiv_start DIR)"
        );
        return;
    };
    let _restore = Restore {
        contents: std::fs::read_to_string(&env.control).unwrap_or_default(),
        path: env.control.clone(),
    };
    let control = |text: &str| std::fs::write(&env.control, text).unwrap();
    control("");

    let mut yk = YubiKey::open_by_serial(Serial(env.serial)).unwrap();
    assert_eq!(yk.serial(), Serial(env.serial));
    let version = yk.version();
    assert!(
        version.major >= 5,
        "these checks expect firmware 5 (got {version})"
    );

    // The factory management key, with the algorithm GET METADATA reports.
    let mgm = MgmKey::get_default(&yk).unwrap();
    yk.authenticate(&mgm).unwrap();
    let management =
        piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Management)).unwrap();
    assert_eq!(
        management.algorithm,
        SlotAlgorithmId::Management(mgm.algorithm_id())
    );
    assert_eq!(management.default, Some(true));

    // A retired slot, so as not to disturb tests that use 9A.
    let slot = SlotId::Retired(RetiredSlotId::R20);
    let spki = piv::generate(
        &mut yk,
        slot,
        AlgorithmId::EccP256,
        PinPolicy::Once,
        TouchPolicy::Never,
    )
    .unwrap();
    let point = spki.subject_public_key.raw_bytes().to_vec();
    let metadata = piv::metadata(&mut yk, slot).unwrap();
    assert_eq!(metadata.policy, Some((PinPolicy::Once, TouchPolicy::Never)));
    assert_eq!(metadata.origin, Some(piv::Origin::Generated));

    // Attestation: slot certificate ← f9 certificate ← this run's root.
    let slot_cert = Certificate::from_der(&piv::attest(&mut yk, slot).unwrap()).unwrap();
    let f9_object = yk.fetch_object(0x5F_FF01).unwrap();
    let f9_der = Tlv::parse(&f9_object).unwrap().0;
    assert_eq!(f9_der.tag, 0x70);
    let f9 = Certificate::from_der(f9_der.value).unwrap();
    let root = read_pem_certificate(&env.root);
    assert!(
        signed_by(&slot_cert, &f9),
        "slot certificate signed by the f9 key"
    );
    assert!(
        signed_by(&f9, &root),
        "f9 certificate signed by the test root"
    );
    assert_eq!(
        slot_cert.tbs_certificate().issuer(),
        f9.tbs_certificate().subject()
    );
    assert_eq!(
        slot_cert.tbs_certificate().subject().to_string(),
        "CN=YubiKey PIV Attestation 95"
    );
    assert_eq!(
        slot_cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
        point
    );
    let firmware = [version.major, version.minor, version.patch];
    assert_eq!(extension(&slot_cert, "1.3.6.1.4.1.41482.3.3"), firmware);
    assert_eq!(extension(&f9, "1.3.6.1.4.1.41482.3.3"), firmware);
    assert_eq!(
        extension(&slot_cert, "1.3.6.1.4.1.41482.3.7"),
        crate::asn1::uint(&env.serial.to_be_bytes())
    );
    assert_eq!(extension(&slot_cert, "1.3.6.1.4.1.41482.3.8"), [0x02, 0x01]);

    // Signing: PIN once.
    let digest = Sha256::digest(b"holdfast vcard self-check");
    assert_eq!(
        piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).err(),
        Some(Error::AuthenticationError)
    );
    assert_eq!(yk.verify_pin(b"999999"), Err(Error::WrongPin { tries: 2 }));
    yk.verify_pin(b"123456").unwrap();
    let der = piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).unwrap();
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    key.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();

    let started = Instant::now();
    for _ in 0..SIGNATURES_TIMED {
        piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, slot).unwrap();
    }
    let per_signature = started.elapsed() / SIGNATURES_TIMED;
    eprintln!(
        "vcard: {per_signature:?} per P-256 signature through pcscd ({SIGNATURES_TIMED} timed)"
    );

    // Faults from the control file.
    control("imported 95\n");
    assert!(
        piv::attest(&mut yk, slot).is_err(),
        "an imported key is not attested"
    );
    control("no-f9\n");
    assert_eq!(yk.fetch_object(0x5F_FF01).err(), Some(Error::NotFound));
    control("pin-blocked\n");
    assert_eq!(yk.verify_pin(b"123456"), Err(Error::WrongPin { tries: 0 }));
    assert_eq!(yk.get_pin_retries(), Ok(0));
    control("");
    assert_eq!(yk.get_pin_retries(), Ok(3));

    let touch_slot = SlotId::Retired(RetiredSlotId::R19);
    yk.authenticate(&mgm).unwrap();
    piv::generate(
        &mut yk,
        touch_slot,
        AlgorithmId::EccP256,
        PinPolicy::Never,
        TouchPolicy::Always,
    )
    .unwrap();
    assert!(piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, touch_slot).is_ok());
    control("touch-timeout\n");
    assert_eq!(
        piv::sign_data(&mut yk, &digest, AlgorithmId::EccP256, touch_slot).err(),
        Some(Error::AuthenticationError)
    );

    // The 3DES management key path: a YubiKey before 5.7.
    control("firmware 5.4.3\n");
    drop(yk);
    let mut yk = YubiKey::open_by_serial(Serial(env.serial)).unwrap();
    assert_eq!(yk.version().to_string(), "5.4.3");
    let mgm = MgmKey::get_default(&yk).unwrap();
    assert_eq!(mgm.algorithm_id(), MgmAlgorithmId::ThreeDes);
    yk.authenticate(&mgm).unwrap();
    let management =
        piv::metadata(&mut yk, SlotId::Management(ManagementSlotId::Management)).unwrap();
    assert_eq!(
        management.algorithm,
        SlotAlgorithmId::Management(MgmAlgorithmId::ThreeDes)
    );
}
