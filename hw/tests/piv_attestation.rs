#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! YubiKey PIV attestation verification: the eight real attestation pairs
//! in `tests/data/yubikey` (expectations in `expected.json`), refusals built
//! from them, and chains minted here under a per-test root for the cases
//! real data cannot show.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use holdfast_hw::attestation::evidence::{Bytes, PivEvidence};
use holdfast_hw::attestation::piv::{
    AnchorKind, CertRole, Firmware, PinPolicy, PivAttestError, PivAttestation, PivPolicy, PivTrust,
    TouchPolicy, YUBICO_ATTESTATION_ROOT_1, YUBICO_PIV_ROOT_CA, YUBICO_U2F_ROOT_CA, verify_chain,
    verify_evidence,
};
use holdfast_hw::attestation::x509::{Certificate, PublicKey};
use holdfast_proto::{Jwk, UnixTime};
use proptest::prelude::*;
use serde_json::Value;

/// 2025-06-01T00:00:00Z: every real pair is valid.
const NOW: UnixTime = UnixTime::from_secs(1_748_736_000);
/// 2060-01-01T00:00:00Z: after the 2050 and 2052 notAfter of the pre-5.7.4
/// chains, before 9999.
const AFTER_2052: UnixTime = UnixTime::from_secs(2_840_140_800);

const YK4_U2F: &str = "yk4-fw4.3.7-u2froot-slot9a";
const YK5_P256: &str = "yk5-fw5.4.3-sn15732500-slot9a";
const YK5_574: &str = "yk5c-fw5.7.4-sn33162554-slot82";
const YK5CI_524: &str = "yk5ci-fw5.2.4-sn11778047-slot93";
const YK5_FIPS: &str = "yk5fips-fw5.4.3-sn25516106-slot9c";
const YK5_NONFIPS: &str = "yk5nonfips-fw5.4.3-sn26551025-slot9c";

// ---------------------------------------------------------------------------
// Real pairs.

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/yubikey")
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["vectors"].as_object().unwrap().clone()
}

/// A certificate file (PEM or DER) as DER.
fn der_file(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|ext| ext == "pem") {
        let mut certs = Certificate::from_pem(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(certs.len(), 1, "{}", path.display());
        certs.pop().unwrap().der().to_vec()
    } else {
        bytes
    }
}

/// (slot certificate, f9 certificate) DER of a real pair.
fn real(name: &str) -> (Vec<u8>, Vec<u8>) {
    let vector = &expected()[name];
    let dir = data_dir().join(name);
    (
        der_file(&dir.join(vector["slot_cert"].as_str().unwrap())),
        der_file(&dir.join(vector["f9"].as_str().unwrap())),
    )
}

fn evidence(slot: &[u8], f9: &[u8]) -> PivEvidence {
    PivEvidence {
        slot_certificate: Bytes(slot.to_vec()),
        intermediate_certificate: Bytes(f9.to_vec()),
    }
}

fn real_evidence(name: &str) -> PivEvidence {
    let (slot, f9) = real(name);
    evidence(&slot, &f9)
}

/// A pinned CA certificate by file name, from the copies compiled in.
fn pinned(file: &str) -> Certificate {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/attestation/yubico")
        .join(file);
    Certificate::from_der(&der_file(&path)).unwrap()
}

fn jwk_of(attestation: &PivAttestation) -> Jwk {
    let PublicKey::EcP256 { sec1 } = attestation.public_key() else {
        panic!("not a P-256 key");
    };
    Jwk::p256(
        sec1[1..33].try_into().unwrap(),
        sec1[33..65].try_into().unwrap(),
    )
}

fn refusal(result: Result<PivAttestation, PivAttestError>) -> PivAttestError {
    match result {
        Ok(attestation) => panic!("accepted: {:?}", attestation.facts()),
        Err(e) => e,
    }
}

#[test]
fn every_real_pair_verifies_as_expected_json_says() {
    let vectors = expected();
    assert_eq!(vectors.len(), 8);
    for (name, want) in &vectors {
        let attestation = verify_chain(&real_evidence(name), &PivTrust::yubico(), NOW)
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        // The anchor and pinned intermediates are the files expected.json
        // lists above f9 (root last).
        let above: Vec<String> = want["chain_above_f9"]
            .as_array()
            .unwrap()
            .iter()
            .map(|path| {
                let file = Path::new(path.as_str().unwrap()).file_name().unwrap();
                pinned(file.to_str().unwrap()).subject()
            })
            .collect();
        let (root, intermediates) = above.split_last().unwrap();
        assert_eq!(&format!("CN={}", attestation.anchor()), root, "{name}");
        assert_eq!(attestation.anchor_kind(), AnchorKind::Yubico);
        let got: Vec<String> = attestation
            .intermediates()
            .iter()
            .map(|cn| format!("CN={cn}"))
            .collect();
        assert_eq!(got, intermediates, "{name}");

        assert_eq!(
            attestation.serial().map(u64::from),
            want.get("serial").and_then(Value::as_u64),
            "{name}"
        );
        assert_eq!(
            attestation.firmware().to_string(),
            want["firmware"],
            "{name}"
        );
        assert_eq!(
            attestation.pin_policy().as_str(),
            want["pin_policy"],
            "{name}"
        );
        assert_eq!(
            attestation.touch_policy().as_str(),
            want["touch_policy"],
            "{name}"
        );
        assert_eq!(
            attestation.form_factor().map(|ff| ff.to_string()),
            want.get("formfactor")
                .and_then(Value::as_str)
                .map(str::to_owned),
            "{name}"
        );
        assert_eq!(attestation.fips(), want["fips_ext_on_f9"], "{name}");
        // The FIPS series bit of the form factor agrees with the f9 marker
        // on every real FIPS key.
        if let Some(ff) = attestation.form_factor() {
            assert_eq!(ff.fips_series(), attestation.fips(), "{name}");
        }
        assert!(!attestation.cspn(), "{name}");
        assert_eq!(
            attestation
                .slot()
                .map(|slot| format!("{slot:02x}"))
                .as_deref(),
            want["slot"].as_str(),
            "{name}"
        );
        let key = match attestation.public_key() {
            PublicKey::EcP256 { .. } => "EC-secp256r1",
            PublicKey::EcP384 { .. } => "EC-secp384r1",
            PublicKey::Rsa { .. } => "RSA",
        };
        assert_eq!(key, want["slot_pubkey"], "{name}");
        // The default policy accepts every genuine key.
        attestation.check_policy(&PivPolicy::default()).unwrap();
    }
}

#[test]
fn facts_list_what_the_attestation_states() {
    let attestation = verify_chain(&real_evidence(YK5_574), &PivTrust::yubico(), NOW).unwrap();
    let facts: Vec<(&str, String)> = attestation.facts();
    let get = |name: &str| {
        facts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("anchor"), Some(YUBICO_ATTESTATION_ROOT_1));
    assert_eq!(get("anchor_kind"), Some("yubico"));
    assert_eq!(
        get("intermediates"),
        Some("Yubico PIV Attestation B 1 < Yubico Attestation Intermediate B 1")
    );
    assert_eq!(get("serial"), Some("33162554"));
    assert_eq!(get("firmware"), Some("5.7.4"));
    assert_eq!(get("pin_policy"), Some("never"));
    assert_eq!(get("touch_policy"), Some("always"));
    assert_eq!(get("form_factor"), Some("USB-C Keychain"));
    assert_eq!(get("fips"), Some("false"));
    assert_eq!(get("cspn"), Some("false"));
    assert_eq!(get("slot"), Some("82"));
    assert_eq!(get("key"), Some("P-384"));

    // A YubiKey 4 has no serial or form factor: they are left out.
    let yk4 = verify_chain(&real_evidence(YK4_U2F), &PivTrust::yubico(), NOW).unwrap();
    assert_eq!(yk4.anchor(), YUBICO_U2F_ROOT_CA);
    let names: Vec<&str> = yk4.facts().iter().map(|(n, _)| *n).collect();
    assert!(!names.contains(&"serial") && !names.contains(&"form_factor"));
}

#[test]
fn verify_evidence_accepts_the_real_p256_key_it_attests() {
    let ev = real_evidence(YK5_P256);
    let chain = verify_chain(&ev, &PivTrust::yubico(), NOW).unwrap();
    let jwk = jwk_of(&chain);
    let attestation =
        verify_evidence(&ev, &PivTrust::yubico(), &PivPolicy::default(), &jwk, NOW).unwrap();
    assert_eq!(attestation.serial(), Some(15_732_500));
    assert_eq!(attestation.anchor(), YUBICO_PIV_ROOT_CA);
}

#[test]
fn rejects_cross_paired_slot_and_f9_certificates() {
    let names: Vec<String> = expected().keys().cloned().collect();
    for slot_of in &names {
        for f9_of in &names {
            if slot_of == f9_of {
                continue;
            }
            let (slot, own_f9) = real(slot_of);
            let (_, f9) = real(f9_of);
            if f9 == own_f9 {
                // The FIPS keys 25515003 and 25516106 come with the same f9
                // certificate (byte for byte; both slot certificates verify
                // under it): the f9 key is not unique per device. Such a
                // pair is not a cross-pair; it still reports its own slot
                // certificate's serial.
                let attestation =
                    verify_chain(&evidence(&slot, &f9), &PivTrust::yubico(), NOW).unwrap();
                assert_eq!(
                    attestation.serial().map(u64::from),
                    expected()[slot_of.as_str()]["serial"].as_u64()
                );
                continue;
            }
            let err = refusal(verify_chain(
                &evidence(&slot, &f9),
                &PivTrust::yubico(),
                NOW,
            ));
            // Same issuer name: the signature fails; 5.7.4 names its f9
            // "YubiKey PIV Attestation": the names fail.
            assert!(
                matches!(
                    err,
                    PivAttestError::ChainSignatureInvalid {
                        child: CertRole::Slot,
                        issuer: CertRole::F9,
                        ..
                    } | PivAttestError::ChainIssuerMismatch {
                        child: CertRole::Slot,
                        issuer: CertRole::F9,
                        ..
                    }
                ),
                "slot of {slot_of}, f9 of {f9_of}: {err}"
            );
        }
    }
    // go-piv's "InvalidChain": the 5.4.3 slot certificate with the YubiKey
    // 4's f9 certificate.
    let (slot, _) = real(YK5_P256);
    let (_, f9) = real(YK4_U2F);
    let err = refusal(verify_chain(
        &evidence(&slot, &f9),
        &PivTrust::yubico(),
        NOW,
    ));
    assert_eq!(err.check(), "chain_signature_invalid");
    assert_eq!(
        err.to_string(),
        "the slot certificate was not issued by the f9 certificate (CN=Yubico PIV Attestation): \
         signature does not verify"
    );
    let (slot, _) = real(YK5_574);
    let (_, f9) = real(YK5_P256);
    let err = refusal(verify_chain(
        &evidence(&slot, &f9),
        &PivTrust::yubico(),
        NOW,
    ));
    assert_eq!(err.check(), "chain_issuer_mismatch", "{err}");
}

#[test]
fn rejects_a_chain_under_a_root_the_trust_store_does_not_hold() {
    // Only the 2016 root: the 5.7.4 pair ends at Attestation Root 1.
    let only_2016 = PivTrust::yubico().only(&[YUBICO_PIV_ROOT_CA]).unwrap();
    let err = refusal(verify_chain(&real_evidence(YK5_574), &only_2016, NOW));
    assert_eq!(err.check(), "chain_untrusted");
    assert_eq!(
        err.to_string(),
        "the chain ends at CN=Yubico Attestation Root 1, which is not a trusted root \
         (trusted: Yubico PIV Root CA Serial 263751)"
    );
    // Only the 2024 root: the 5.4.3 pair ends at the 2016 root.
    let only_2024 = PivTrust::yubico()
        .only(&[YUBICO_ATTESTATION_ROOT_1])
        .unwrap();
    let err = refusal(verify_chain(&real_evidence(YK5_P256), &only_2024, NOW));
    assert!(
        matches!(&err, PivAttestError::ChainUntrusted { issuer, .. } if issuer == "CN=Yubico PIV Root CA Serial 263751"),
        "{err}"
    );
    // A deployment that refuses the U2F root.
    let no_u2f = PivTrust::yubico()
        .only(&[YUBICO_PIV_ROOT_CA, YUBICO_ATTESTATION_ROOT_1])
        .unwrap();
    let err = refusal(verify_chain(&real_evidence(YK4_U2F), &no_u2f, NOW));
    assert_eq!(err.check(), "chain_untrusted", "{err}");
    assert!(verify_chain(&real_evidence(YK5_P256), &no_u2f, NOW).is_ok());
    // No anchors at all.
    let err = refusal(verify_chain(
        &real_evidence(YK5_P256),
        &PivTrust::empty(),
        NOW,
    ));
    assert!(err.to_string().ends_with("(trusted: none)"), "{err}");
}

#[test]
fn rejects_an_anchor_the_policy_does_not_allow() {
    let policy = PivPolicy {
        anchors: Some([YUBICO_PIV_ROOT_CA.to_owned()].into()),
        ..PivPolicy::default()
    };
    let attestation = verify_chain(&real_evidence(YK5_574), &PivTrust::yubico(), NOW).unwrap();
    let err = attestation.check_policy(&policy).unwrap_err();
    assert_eq!(err.check(), "anchor_not_allowed");
    assert_eq!(
        err.to_string(),
        "the chain ends at Yubico Attestation Root 1, which this policy does not allow \
         (allowed: Yubico PIV Root CA Serial 263751)"
    );
    let attestation = verify_chain(&real_evidence(YK5_P256), &PivTrust::yubico(), NOW).unwrap();
    attestation.check_policy(&policy).unwrap();
}

#[test]
fn rejects_an_expired_chain_at_a_later_pinned_time() {
    let err = refusal(verify_chain(
        &real_evidence(YK5_P256),
        &PivTrust::yubico(),
        AFTER_2052,
    ));
    assert_eq!(err.check(), "certificate_expired");
    assert_eq!(
        err.to_string(),
        "the slot certificate (CN=YubiKey PIV Attestation 9a) expired at 2052-04-17T00:00:00Z \
         (checked at 2060-01-01T00:00:00Z)"
    );
    // The U2F chain ends on 2050-09-04; one second later it is refused.
    let after_u2f = UnixTime::from_secs(2_545_862_400 + 1);
    assert!(
        verify_chain(
            &real_evidence(YK4_U2F),
            &PivTrust::yubico(),
            after_u2f.minus(1)
        )
        .is_ok()
    );
    let err = refusal(verify_chain(
        &real_evidence(YK4_U2F),
        &PivTrust::yubico(),
        after_u2f,
    ));
    assert!(
        matches!(
            err,
            PivAttestError::CertificateExpired {
                role: CertRole::Slot,
                ..
            }
        ),
        "{err}"
    );
    // The 2024 chain runs to 9999: still valid in 2060.
    assert!(verify_chain(&real_evidence(YK5_574), &PivTrust::yubico(), AFTER_2052).is_ok());
    // And is not valid before 2024-12-01.
    let err = refusal(verify_chain(
        &real_evidence(YK5_574),
        &PivTrust::yubico(),
        UnixTime::from_secs(1_704_067_200), // 2024-01-01
    ));
    assert_eq!(err.check(), "certificate_not_yet_valid");
    assert!(
        err.to_string()
            .contains("is not valid before 2024-12-01T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn rejects_a_key_that_is_not_the_attested_key() {
    let ev = real_evidence(YK5_P256);
    // Another genuine P-256 key: the YubiKey 4's.
    let other = jwk_of(&verify_chain(&real_evidence(YK4_U2F), &PivTrust::yubico(), NOW).unwrap());
    let err = refusal(verify_evidence(
        &ev,
        &PivTrust::yubico(),
        &PivPolicy::default(),
        &other,
        NOW,
    ));
    assert_eq!(err.check(), "key_mismatch");
    assert_eq!(
        err.to_string(),
        "the attested key is not the key being enrolled (same curve, different point)"
    );
    // A P-384 attestation never matches a P-256 JWK.
    let p384 = verify_chain(&real_evidence(YK5_FIPS), &PivTrust::yubico(), NOW).unwrap();
    let err = p384.check_key(&other).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the attested key is not the key being enrolled (the attested key is P-384, the \
         enrolled key is P-256)"
    );
}

#[test]
fn rejects_each_policy_violation_with_its_reason() {
    let trust = PivTrust::yubico();
    let yk5ci = verify_chain(&real_evidence(YK5CI_524), &trust, NOW).unwrap();
    let yk5 = verify_chain(&real_evidence(YK5_P256), &trust, NOW).unwrap();
    let nonfips = verify_chain(&real_evidence(YK5_NONFIPS), &trust, NOW).unwrap();
    let fips = verify_chain(&real_evidence(YK5_FIPS), &trust, NOW).unwrap();

    let policy = PivPolicy {
        min_firmware: Some(Firmware::new(5, 4, 0)),
        ..PivPolicy::default()
    };
    let err = yk5ci.check_policy(&policy).unwrap_err();
    assert_eq!(err.check(), "firmware_too_old");
    assert_eq!(
        err.to_string(),
        "firmware 5.2.4 is below the required 5.4.0"
    );
    yk5.check_policy(&policy).unwrap();

    let policy = PivPolicy {
        pin_policies: [PinPolicy::Once, PinPolicy::Always].into(),
        ..PivPolicy::default()
    };
    let err = yk5ci.check_policy(&policy).unwrap_err();
    assert_eq!(err.check(), "pin_policy_not_allowed");
    assert_eq!(
        err.to_string(),
        "PIN policy `never` is not allowed (allowed: once, always)"
    );
    yk5.check_policy(&policy).unwrap();

    // Admins: every signature a touch.
    let admin: PivPolicy =
        serde_json::from_str(r#"{"touch_policies": ["always", "cached"]}"#).unwrap();
    let err = yk5.check_policy(&admin).unwrap_err();
    assert_eq!(err.check(), "touch_policy_not_allowed");
    assert_eq!(
        err.to_string(),
        "touch policy `never` is not allowed (allowed: always, cached)"
    );
    yk5ci.check_policy(&admin).unwrap();
    // Agents: no touch per request.
    let agent = PivPolicy {
        touch_policies: [TouchPolicy::Never, TouchPolicy::Cached].into(),
        ..PivPolicy::default()
    };
    let yk574 = verify_chain(&real_evidence(YK5_574), &trust, NOW).unwrap();
    assert_eq!(
        yk574.check_policy(&agent).unwrap_err().check(),
        "touch_policy_not_allowed"
    );

    let policy = PivPolicy {
        require_fips: true,
        ..PivPolicy::default()
    };
    let err = nonfips.check_policy(&policy).unwrap_err();
    assert_eq!(err, PivAttestError::FipsRequired);
    assert_eq!(err.check(), "fips_required");
    fips.check_policy(&policy).unwrap();
}

#[test]
fn verify_evidence_applies_the_policy_after_the_key() {
    let ev = real_evidence(YK5_P256);
    let jwk = jwk_of(&verify_chain(&ev, &PivTrust::yubico(), NOW).unwrap());
    let policy = PivPolicy {
        touch_policies: [TouchPolicy::Always].into(),
        ..PivPolicy::default()
    };
    let err = refusal(verify_evidence(
        &ev,
        &PivTrust::yubico(),
        &policy,
        &jwk,
        NOW,
    ));
    assert_eq!(err.check(), "touch_policy_not_allowed");
}

#[test]
fn rejects_chains_of_other_shapes() {
    let trust = PivTrust::yubico();
    let (slot, f9) = real(YK5_P256);
    let root = pinned("yubico-piv-root-ca-serial-263751.pem");

    // A slot certificate directly under a root: here the device's f9
    // certificate posing as the slot certificate, the root as its f9.
    let err = refusal(verify_chain(&evidence(&f9, root.der()), &trust, NOW));
    assert_eq!(err.check(), "chain_shape_invalid", "{err}");
    assert!(err.to_string().contains("a CA of the trust store"), "{err}");

    // A longer chain: the 5.7.4 f9 certificate as the slot certificate and
    // the pinned PIV Attestation B 1 as its f9.
    let (_, f9_574) = real(YK5_574);
    let piv_b1 = pinned("yubico-piv-attestation-b-1.pem");
    let err = refusal(verify_chain(&evidence(&f9_574, piv_b1.der()), &trust, NOW));
    assert_eq!(err.check(), "chain_shape_invalid", "{err}");

    // The root itself in the slot position.
    let err = refusal(verify_chain(&evidence(root.der(), &f9), &trust, NOW));
    assert_eq!(err.check(), "chain_shape_invalid", "{err}");

    // The two certificates swapped.
    let err = refusal(verify_chain(&evidence(&f9, &slot), &trust, NOW));
    assert!(
        matches!(err.check(), "chain_untrusted" | "chain_shape_invalid"),
        "{err}"
    );

    // The same certificate twice.
    let err = refusal(verify_chain(&evidence(&slot, &slot), &trust, NOW));
    assert_eq!(err.check(), "chain_untrusted", "{err}");
}

#[test]
fn garbage_and_truncated_certificates_are_named_clearly() {
    let trust = PivTrust::yubico();
    let (slot, f9) = real(YK5_P256);

    let err = refusal(verify_chain(&evidence(&[], &f9), &trust, NOW));
    assert_eq!(
        err.to_string(),
        "the slot certificate is malformed: it is empty"
    );
    let err = refusal(verify_chain(
        &evidence(&slot[..slot.len() / 2], &f9),
        &trust,
        NOW,
    ));
    assert!(
        matches!(
            err,
            PivAttestError::AttestationMalformed {
                role: CertRole::Slot,
                ..
            }
        ),
        "{err}"
    );
    let err = refusal(verify_chain(
        &evidence(&slot, b"not a certificate"),
        &trust,
        NOW,
    ));
    assert!(
        matches!(
            err,
            PivAttestError::AttestationMalformed {
                role: CertRole::F9,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.check(), "attestation_malformed");
    // Trailing bytes after a certificate.
    let mut long = slot.clone();
    long.push(0);
    let err = refusal(verify_chain(&evidence(&long, &f9), &trust, NOW));
    assert_eq!(err.check(), "attestation_malformed", "{err}");
    // PEM where DER is expected.
    let pem = std::fs::read(data_dir().join(YK5_P256).join("slot-9a.pem")).unwrap();
    let err = refusal(verify_chain(&evidence(&pem, &f9), &trust, NOW));
    assert_eq!(err.check(), "attestation_malformed", "{err}");
}

// ---------------------------------------------------------------------------
// Chains minted under a per-test root: shape (d), and certificate contents
// that real data does not have.

mod mint {
    use super::*;

    pub(super) const FIRMWARE: &str = "1.3.6.1.4.1.41482.3.3";
    pub(super) const SERIAL: &str = "1.3.6.1.4.1.41482.3.7";
    pub(super) const POLICY: &str = "1.3.6.1.4.1.41482.3.8";
    pub(super) const FORM_FACTOR: &str = "1.3.6.1.4.1.41482.3.9";
    pub(super) const FIPS: &str = "1.3.6.1.4.1.41482.3.10";

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len <= 0xff {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    fn oid(dotted: &str) -> Vec<u8> {
        let oid = const_oid::ObjectIdentifier::new(dotted).unwrap();
        tlv(0x06, oid.as_bytes())
    }

    fn name(cn: &str) -> Vec<u8> {
        seq(&[tlv(0x31, &seq(&[oid("2.5.4.3"), tlv(0x0c, cn.as_bytes())]))])
    }

    fn utc_time(secs: u64) -> Vec<u8> {
        use der::Encode;
        der::asn1::UtcTime::from_unix_duration(std::time::Duration::from_secs(secs))
            .unwrap()
            .to_der()
            .unwrap()
    }

    /// An extension; `value` is the extnValue contents.
    pub(super) fn ext(oid_text: &str, critical: bool, value: &[u8]) -> Vec<u8> {
        let mut parts = vec![oid(oid_text)];
        if critical {
            parts.push(vec![0x01, 0x01, 0xff]);
        }
        parts.push(tlv(0x04, value));
        seq(&parts)
    }

    /// basicConstraints, critical.
    pub(super) fn basic_constraints(ca: bool) -> Vec<u8> {
        let value = if ca {
            seq(&[vec![0x01, 0x01, 0xff]])
        } else {
            seq(&[])
        };
        ext("2.5.29.19", true, &value)
    }

    /// The slot extensions of a YubiKey 5.7.4, USB-C keychain, serial
    /// 12345678, PIN once, touch always.
    const SLOT_VALUES: [(&str, &[u8]); 4] = [
        (FIRMWARE, &[5, 7, 4]),
        (SERIAL, &[0x02, 0x04, 0x00, 0xbc, 0x61, 0x4e]),
        (POLICY, &[2, 2]),
        (FORM_FACTOR, &[3]),
    ];

    pub(super) fn yubico_slot_extensions() -> Vec<Vec<u8>> {
        slot_extensions_with(FIRMWARE, Some(&[5, 7, 4]))
    }

    /// [`yubico_slot_extensions`] with the value for `oid_text` replaced,
    /// or the extension left out (`None`).
    pub(super) fn slot_extensions_with(oid_text: &str, value: Option<&[u8]>) -> Vec<Vec<u8>> {
        SLOT_VALUES
            .iter()
            .filter_map(|&(oid, default)| {
                if oid == oid_text {
                    value.map(|value| ext(oid, false, value))
                } else {
                    Some(ext(oid, false, default))
                }
            })
            .collect()
    }

    pub(super) fn key() -> EcdsaKeyPair {
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap()
    }

    /// A certificate for `subject_key`, named `subject`, issued by
    /// `issuer_name` with `issuer_key`, valid 2024-01-01 → 2034-01-01.
    pub(super) fn cert(
        subject: &str,
        subject_key: &EcdsaKeyPair,
        issuer_name: &str,
        issuer_key: &EcdsaKeyPair,
        extensions: &[Vec<u8>],
    ) -> Vec<u8> {
        let alg = seq(&[oid("1.2.840.10045.4.3.2")]);
        let spki = seq(&[
            seq(&[oid("1.2.840.10045.2.1"), oid("1.2.840.10045.3.1.7")]),
            tlv(
                0x03,
                &[&[0u8][..], subject_key.public_key().as_ref()].concat(),
            ),
        ]);
        let mut tbs = vec![
            tlv(0xa0, &[0x02, 0x01, 0x02]),
            vec![0x02, 0x01, 0x01],
            alg.clone(),
            name(issuer_name),
            seq(&[utc_time(1_704_067_200), utc_time(2_019_686_400)]),
            name(subject),
            spki,
        ];
        if !extensions.is_empty() {
            tbs.push(tlv(0xa3, &seq(extensions)));
        }
        let tbs = seq(&tbs);
        let signature = issuer_key.sign(&SystemRandom::new(), &tbs).unwrap();
        seq(&[
            tbs,
            alg,
            tlv(0x03, &[&[0u8][..], signature.as_ref()].concat()),
        ])
    }

    /// A test root, a device f9 certificate under it, and a device key.
    pub(super) struct Fixture {
        pub(super) root_key: EcdsaKeyPair,
        pub(super) root: Vec<u8>,
        pub(super) f9_key: EcdsaKeyPair,
        pub(super) f9: Vec<u8>,
        pub(super) device_key: EcdsaKeyPair,
    }

    pub(super) const ROOT_CN: &str = "Holdfast Test PIV Root";
    pub(super) const F9_CN: &str = "Yubico PIV Attestation";
    pub(super) const SLOT_CN: &str = "YubiKey PIV Attestation 9a";

    impl Fixture {
        pub(super) fn new() -> Self {
            Self::with_f9_extensions(&[ext(FIRMWARE, false, &[5, 7, 4]), basic_constraints(true)])
        }

        pub(super) fn with_f9_extensions(f9_extensions: &[Vec<u8>]) -> Self {
            let root_key = key();
            let root = cert(
                ROOT_CN,
                &root_key,
                ROOT_CN,
                &root_key,
                &[basic_constraints(true)],
            );
            let f9_key = key();
            let f9 = cert(F9_CN, &f9_key, ROOT_CN, &root_key, f9_extensions);
            Self {
                root_key,
                root,
                f9_key,
                f9,
                device_key: key(),
            }
        }

        pub(super) fn slot(&self, extensions: &[Vec<u8>]) -> Vec<u8> {
            cert(SLOT_CN, &self.device_key, F9_CN, &self.f9_key, extensions)
        }

        pub(super) fn evidence(&self, slot: &[u8]) -> PivEvidence {
            evidence(slot, &self.f9)
        }

        pub(super) fn trust(&self) -> PivTrust {
            PivTrust::yubico()
                .with_test_root(Certificate::from_der(&self.root).unwrap())
                .unwrap()
        }

        pub(super) fn jwk(&self) -> Jwk {
            let point = self.device_key.public_key().as_ref();
            Jwk::p256(
                point[1..33].try_into().unwrap(),
                point[33..65].try_into().unwrap(),
            )
        }
    }
}

use mint::{Fixture, ext, yubico_slot_extensions};

#[test]
fn a_test_root_is_trusted_only_when_configured() {
    let fx = Fixture::new();
    let ev = fx.evidence(&fx.slot(&yubico_slot_extensions()));

    // The product's trust store never holds it.
    let err = refusal(verify_chain(&ev, &PivTrust::yubico(), NOW));
    assert_eq!(
        err.to_string(),
        format!(
            "the chain ends at CN={}, which is not a trusted root (trusted: {}, {}, {})",
            mint::ROOT_CN,
            YUBICO_PIV_ROOT_CA,
            YUBICO_U2F_ROOT_CA,
            YUBICO_ATTESTATION_ROOT_1
        )
    );

    // Configured explicitly: shape (d), slot ← f9 ← test root.
    let attestation =
        verify_evidence(&ev, &fx.trust(), &PivPolicy::default(), &fx.jwk(), NOW).unwrap();
    assert_eq!(attestation.anchor(), mint::ROOT_CN);
    assert_eq!(attestation.anchor_kind(), AnchorKind::Test);
    assert!(attestation.intermediates().is_empty());
    assert_eq!(attestation.serial(), Some(12_345_678));
    assert_eq!(attestation.firmware(), Firmware::new(5, 7, 4));
    assert_eq!(attestation.pin_policy(), PinPolicy::Once);
    assert_eq!(attestation.touch_policy(), TouchPolicy::Always);
    assert_eq!(attestation.slot(), Some(0x9a));
    assert!(
        attestation
            .facts()
            .contains(&("anchor_kind", "test".to_owned()))
    );

    // A policy limited to Yubico's roots refuses it even when trusted.
    let policy = PivPolicy {
        anchors: Some(
            [
                YUBICO_PIV_ROOT_CA.to_owned(),
                YUBICO_ATTESTATION_ROOT_1.to_owned(),
            ]
            .into(),
        ),
        ..PivPolicy::default()
    };
    assert_eq!(
        attestation.check_policy(&policy).unwrap_err().check(),
        "anchor_not_allowed"
    );

    // Another root of the same name is not the configured one.
    let other = Fixture::new();
    let err = refusal(verify_chain(&ev, &other.trust(), NOW));
    assert_eq!(err.check(), "chain_signature_invalid");
    assert_eq!(
        err.to_string(),
        format!(
            "the f9 certificate was not issued by the root certificate (CN={}): signature does \
             not verify",
            mint::ROOT_CN
        )
    );
}

#[test]
fn rejects_a_slot_certificate_directly_under_the_test_root() {
    let fx = Fixture::new();
    let slot = mint::cert(
        mint::SLOT_CN,
        &fx.device_key,
        mint::ROOT_CN,
        &fx.root_key,
        &yubico_slot_extensions(),
    );
    // As the device would have to send it: the root in the f9 position.
    let err = refusal(verify_chain(&evidence(&slot, &fx.root), &fx.trust(), NOW));
    assert_eq!(err.check(), "chain_shape_invalid", "{err}");
    // With the real f9: the names do not chain.
    let err = refusal(verify_chain(&fx.evidence(&slot), &fx.trust(), NOW));
    assert_eq!(err.check(), "chain_issuer_mismatch", "{err}");
}

#[test]
fn rejects_a_longer_chain_under_the_test_root() {
    // slot ← f9 ← intermediate ← root: the device can only send slot and
    // f9, and the intermediate is not an anchor.
    let fx = Fixture::new();
    let inter_key = mint::key();
    let f9_key = mint::key();
    let f9 = mint::cert(
        mint::F9_CN,
        &f9_key,
        "Holdfast Test Intermediate",
        &inter_key,
        &[ext(mint::FIRMWARE, false, &[5, 7, 4])],
    );
    let slot = mint::cert(
        mint::SLOT_CN,
        &fx.device_key,
        mint::F9_CN,
        &f9_key,
        &yubico_slot_extensions(),
    );
    let err = refusal(verify_chain(&evidence(&slot, &f9), &fx.trust(), NOW));
    assert_eq!(err.check(), "chain_untrusted");
    assert!(
        err.to_string().contains("CN=Holdfast Test Intermediate"),
        "{err}"
    );
}

#[test]
fn rejects_slot_and_f9_certificates_with_the_wrong_ca_flags() {
    let fx = Fixture::new();
    let mut exts = yubico_slot_extensions();
    exts.push(mint::basic_constraints(true));
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&exts)),
        &fx.trust(),
        NOW,
    ));
    assert_eq!(err.check(), "chain_shape_invalid");
    assert!(err.to_string().contains("is a CA certificate"), "{err}");

    // An f9 certificate that says it is not a CA.
    let fx = Fixture::with_f9_extensions(&[
        ext(mint::FIRMWARE, false, &[5, 7, 4]),
        mint::basic_constraints(false),
    ]);
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&yubico_slot_extensions())),
        &fx.trust(),
        NOW,
    ));
    assert_eq!(err.check(), "chain_shape_invalid");
    assert!(err.to_string().contains("says it is not a CA"), "{err}");

    // Without basicConstraints (as on YubiKey 4 and 5Ci): accepted.
    let fx = Fixture::with_f9_extensions(&[ext(mint::FIRMWARE, false, &[5, 7, 4])]);
    verify_chain(
        &fx.evidence(&fx.slot(&yubico_slot_extensions())),
        &fx.trust(),
        NOW,
    )
    .unwrap();
}

#[test]
fn rejects_unknown_or_missing_yubico_extension_values() {
    let fx = Fixture::new();
    let with = |oid: &str, value: &[u8]| {
        let ev = fx.evidence(&fx.slot(&mint::slot_extensions_with(oid, Some(value))));
        refusal(verify_chain(&ev, &fx.trust(), NOW))
    };
    let cases: [(&str, &[u8], &str); 8] = [
        (mint::POLICY, &[0, 2], "unknown PIN policy 0x00"),
        (mint::POLICY, &[2, 0], "unknown touch policy 0x00"),
        (mint::POLICY, &[2, 9], "unknown touch policy 0x09"),
        (mint::POLICY, &[2], "is 1 bytes, expected 2"),
        (mint::FIRMWARE, &[5, 7], "is 2 bytes, expected 3"),
        (
            mint::SERIAL,
            &[0x02, 0x01, 0xff],
            "serial (1.3.6.1.4.1.41482.3.7) is not a DER INTEGER",
        ),
        (mint::FORM_FACTOR, &[0x43], "unknown form factor 0x43"),
        (mint::FORM_FACTOR, &[], "is 0 bytes, expected 1"),
    ];
    for (oid, value, message) in cases {
        let err = with(oid, value);
        assert_eq!(
            err.check(),
            "attestation_malformed",
            "{oid} {value:02x?}: {err}"
        );
        assert!(
            err.to_string().contains(message),
            "{oid} {value:02x?}: {err}"
        );
    }

    // A slot certificate without the policy extension is not an attestation.
    let exts = mint::slot_extensions_with(mint::POLICY, None);
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&exts)),
        &fx.trust(),
        NOW,
    ));
    assert_eq!(
        err.to_string(),
        "the slot certificate is malformed: it has no PIN/touch policy extension \
         (1.3.6.1.4.1.41482.3.8): not a YubiKey attestation"
    );

    // Firmware that differs between f9 and slot.
    let exts = mint::slot_extensions_with(mint::FIRMWARE, Some(&[5, 4, 3]));
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&exts)),
        &fx.trust(),
        NOW,
    ));
    assert!(
        err.to_string()
            .contains("firmware 5.4.3 differs from the f9 certificate's 5.7.4"),
        "{err}"
    );

    // An unknown critical extension, and an extension twice.
    let mut exts = yubico_slot_extensions();
    exts.push(ext("1.3.6.1.4.1.99999.1", true, &[0x05, 0x00]));
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&exts)),
        &fx.trust(),
        NOW,
    ));
    assert!(
        err.to_string()
            .contains("unknown critical extension 1.3.6.1.4.1.99999.1"),
        "{err}"
    );
    let mut exts = yubico_slot_extensions();
    exts.push(ext(mint::POLICY, false, &[1, 1]));
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&exts)),
        &fx.trust(),
        NOW,
    ));
    assert!(err.to_string().contains("appears more than once"), "{err}");
}

#[test]
fn reads_the_fips_marker_on_f9_and_refuses_a_malformed_one() {
    let fx = Fixture::with_f9_extensions(&[
        ext(mint::FIRMWARE, false, &[5, 7, 4]),
        ext(mint::FIPS, false, &[0x02, 0x01, 0x07]),
    ]);
    let attestation = verify_chain(
        &fx.evidence(&fx.slot(&yubico_slot_extensions())),
        &fx.trust(),
        NOW,
    )
    .unwrap();
    assert!(attestation.fips());
    let fips_only = PivPolicy {
        require_fips: true,
        ..PivPolicy::default()
    };
    attestation.check_policy(&fips_only).unwrap();

    let fx = Fixture::with_f9_extensions(&[
        ext(mint::FIRMWARE, false, &[5, 7, 4]),
        ext(mint::FIPS, false, &[0x01, 0x01, 0xff]),
    ]);
    let err = refusal(verify_chain(
        &fx.evidence(&fx.slot(&yubico_slot_extensions())),
        &fx.trust(),
        NOW,
    ));
    assert!(
        matches!(
            err,
            PivAttestError::AttestationMalformed {
                role: CertRole::F9,
                ..
            }
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Property tests: device-controlled bytes never panic.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(slot in proptest::collection::vec(any::<u8>(), 0..2048),
                                   f9 in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let trust = PivTrust::yubico();
        prop_assert!(verify_chain(&evidence(&slot, &f9), &trust, NOW).is_err());
        let (real_slot, real_f9) = real(YK5_P256);
        prop_assert!(verify_chain(&evidence(&real_slot, &f9), &trust, NOW).is_err());
        prop_assert!(verify_chain(&evidence(&slot, &real_f9), &trust, NOW).is_err());
    }

    #[test]
    fn a_changed_byte_never_changes_what_is_attested(
        in_slot in any::<bool>(),
        index in any::<proptest::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let (mut slot, mut f9) = real(YK5_P256);
        let target = if in_slot { &mut slot } else { &mut f9 };
        let i = index.index(target.len());
        target[i] ^= xor;
        // Some bytes are outside the signed data (the outer algorithm's
        // parameters): a change there may still verify, but must not
        // change any fact.
        if let Ok(attestation) = verify_chain(&evidence(&slot, &f9), &PivTrust::yubico(), NOW) {
            let (slot, f9) = real(YK5_P256);
            let original = verify_chain(&evidence(&slot, &f9), &PivTrust::yubico(), NOW).unwrap();
            prop_assert_eq!(attestation.facts(), original.facts());
        }
    }
}
