//! Attestation targets: TPM 2.0 structures, X.509 certificates (EK rules
//! included), YubiKey PIV chains, and TPM enrollment evidence, with the
//! real trust anchors and test data under `hw/tests/data/`.

use std::sync::LazyLock;

use holdfast_hw::attestation::evidence::{
    Bytes, PivEvidence, TpmActivationRequest, TpmEvidence, certify_nonce,
};
use holdfast_hw::attestation::piv::{AnchorKind, PivPolicy, PivTrust, verify_chain};
use holdfast_hw::attestation::tpm::{
    PendingActivation, TpmTrust, TpmsAttest, TpmtPublic, TpmtSignature, begin_activation,
    tpm_identity, verify_evidence,
};
use holdfast_hw::attestation::x509::{Certificate, ecdsa_der_from_rs};
use holdfast_proto::{Jwk, UnixTime};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use sha2::{Digest as _, Sha256};

use super::{SIGNED, SIGNED_HEADER, Verdict, device_key};

/// When certificates are checked: 2027-01-01T00:00:00Z, inside the validity
/// of every certificate in `hw/tests/data` (the swtpm fixtures name it).
pub const ATTESTATION_NOW: u64 = 1_798_761_600;

macro_rules! data {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../hw/tests/data/",
            $path
        ))
    };
}

/// A test PKI made for this harness only (`openssl`, P-256): a root, an f9
/// certificate it issued (CN "Yubico PIV Attestation", firmware 5.4.3) and
/// a slot certificate the f9 key issued (slot 9a, serial 15731969, PIN and
/// touch never, USB-C nano). Valid 2026-11-25 to 2100.
const TEST_ROOT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAiMSAwHgYDVQQDDBdIb2xkZmFz
dCBGdXp6IFRlc3QgUm9vdDAgFw0yNjExMjUxODA2MDNaGA8yMTAwMTAyODE4MDYw
M1owIjEgMB4GA1UEAwwXSG9sZGZhc3QgRnV6eiBUZXN0IFJvb3QwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAASpJR6pmXHTs8mpu21cPFZh0OTArJ2t5oIi0D2Jm6Dy
WMhh8cV/BPWS3OFuARfhsKuszEGxxC1omKJRfDooqeK5o0IwQDAPBgNVHRMBAf8E
BTADAQH/MA4GA1UdDwEB/wQEAwICBDAdBgNVHQ4EFgQUbBHXMdlux5Oto/aMfaxe
T1bK784wCgYIKoZIzj0EAwIDSAAwRQIgMhPaZDGkB7O7WilFRhZZqSKMZoOGu/RN
9JDanUpGA4MCIQCz6kbXLjBU1q6dqmu/su50Ef8srQRBacWHPtLXkUwP4g==
-----END CERTIFICATE-----
";
const TEST_ROOT_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGg/MahjIUCZpxr4e
k4aS5EL7goKyrC/NrKexAFyxUZehRANCAASpJR6pmXHTs8mpu21cPFZh0OTArJ2t
5oIi0D2Jm6DyWMhh8cV/BPWS3OFuARfhsKuszEGxxC1omKJRfDooqeK5
-----END PRIVATE KEY-----
";
/// The test f9 certificate (issued by the test root).
pub const TEST_F9_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAUCgAwIBAgIBAjAKBggqhkjOPQQDAjAiMSAwHgYDVQQDDBdIb2xkZmFz
dCBGdXp6IFRlc3QgUm9vdDAgFw0yNjExMjUxODA2MDNaGA8yMTAwMTAyODE4MDYw
M1owITEfMB0GA1UEAwwWWXViaWNvIFBJViBBdHRlc3RhdGlvbjBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABLZguAnmImCDaMTYqnK8uVp40oZ7SochWbNRNQHYft1u
ip5pOD970cUUGC67du2ewMHyD6Qd2Me6RL3XO+L7XfSjZjBkMA8GA1UdEwEB/wQF
MAMBAf8wEQYKKwYBBAGCxAoDAwQDBQQDMB0GA1UdDgQWBBS9HCuXORzEJ7xrQ/Uu
OV1ZfA8WMzAfBgNVHSMEGDAWgBRsEdcx2W7Hk62j9ox9rF5PVsrvzjAKBggqhkjO
PQQDAgNHADBEAiAJz/sWIkuTq1TMPQzw7pspsiw8BkA9v92tzmFgcCyjAgIgFCh5
u/Lc5MWqp+fO/PdaPxrxswNOe0Ac/0+2s9vp4N8=
-----END CERTIFICATE-----
";
const TEST_F9_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFk6jWg5euTyV/p2K
dDD/UHuBx/j+AmqstcAUFMpY1ZqhRANCAAS2YLgJ5iJgg2jE2KpyvLlaeNKGe0qH
IVmzUTUB2H7dboqeaTg/e9HFFBguu3btnsDB8g+kHdjHukS91zvi+130
-----END PRIVATE KEY-----
";
/// The test slot certificate (issued by the test f9 key).
pub const TEST_SLOT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBxzCCAW2gAwIBAgIBAzAKBggqhkjOPQQDAjAhMR8wHQYDVQQDDBZZdWJpY28g
UElWIEF0dGVzdGF0aW9uMCAXDTI2MTEyNTE4MDYwM1oYDzIxMDAxMDI4MTgwNjAz
WjAlMSMwIQYDVQQDDBpZdWJpS2V5IFBJViBBdHRlc3RhdGlvbiA5YTBZMBMGByqG
SM49AgEGCCqGSM49AwEHA0IABDpEksDhY8dbCcvpQduNTNXBl9zGDQ3W2NvTuogU
ExWIEoL0KUMB+752efLs4zl7tk5qyrrn1zdhnaq6latQE12jgY8wgYwwEQYKKwYB
BAGCxAoDAwQDBQQDMBQGCisGAQQBgsQKAwcEBgIEAPANATAQBgorBgEEAYLECgMI
BAIBATAPBgorBgEEAYLECgMJBAEEMB0GA1UdDgQWBBSxFdj4QqJtB7ERt2Ytssm6
YQSYJzAfBgNVHSMEGDAWgBS9HCuXORzEJ7xrQ/UuOV1ZfA8WMzAKBggqhkjOPQQD
AgNIADBFAiEA+SBXLVtC1tI0LJd4dZZpWUGdNKKjceJDFjIv1lFAZSICIGy3W3qi
MfX/PaLSOL8zwfyuk84XkfCqhrlD2ET/HYos
-----END CERTIFICATE-----
";

fn at() -> UnixTime {
    UnixTime::from_secs(ATTESTATION_NOW)
}

fn pem(text: &str) -> Certificate {
    Certificate::from_pem(text).unwrap().remove(0)
}

/// Every TPM vendor root and intermediate of the test data, as a
/// production trust store would hold them.
fn tpm_trust() -> &'static TpmTrust {
    static TRUST: LazyLock<TpmTrust> = LazyLock::new(|| {
        let anchors = [
            data!("tpm/ek/stmicro/globalsign-trusted-platform-module-root-ca.pem"),
            data!("tpm/ek/stmicro/stm-tpm-ecc-root-ca-01.pem"),
            data!("tpm/ek/gce-vtpm/tpm_ek_root_1.pem"),
            data!("tpm/ek/gce-vtpm/gcp_ek_ak_ca_root.pem"),
            data!("tpm/swtpm/swtpm-localca-rootca.pem"),
        ];
        let intermediates = [
            data!("tpm/ek/stmicro/stm-tpm-ek-intermediate-ca-05.pem"),
            data!("tpm/ek/stmicro/stm-tpm-ek-root-ca.pem"),
            data!("tpm/ek/stmicro/stm-tpm-ecc-intermediate-ca-01.pem"),
            data!("tpm/ek/gce-vtpm/tpm_ek_intermediate_3.pem"),
            data!("tpm/ek/gce-vtpm/gcp_ek_ak_ca_intermediate_v3.pem"),
            data!("tpm/swtpm/swtpm-localca.pem"),
        ];
        TpmTrust::from_pem(&anchors.concat(), &intermediates.concat()).unwrap()
    });
    &TRUST
}

/// The swtpm fixture's trust: its local CA only.
fn swtpm_trust() -> &'static TpmTrust {
    static TRUST: LazyLock<TpmTrust> = LazyLock::new(|| {
        TpmTrust::from_pem(
            data!("tpm/swtpm/swtpm-localca-rootca.pem"),
            data!("tpm/swtpm/swtpm-localca.pem"),
        )
        .unwrap()
    });
    &TRUST
}

/// Yubico's roots and pinned intermediates, plus the test root.
fn piv_trust() -> &'static PivTrust {
    static TRUST: LazyLock<PivTrust> = LazyLock::new(|| {
        PivTrust::yubico()
            .with_test_root(pem(TEST_ROOT_PEM))
            .unwrap()
    });
    &TRUST
}

/// The attestation keys of the go-attestation data: RSA-2048 (Infineon) and
/// ECC P-256 (GCE vTPM), with the `TPMS_ATTEST` each signed.
fn attestation_keys() -> &'static [(TpmtPublic, Vec<u8>)] {
    static KEYS: LazyLock<Vec<(TpmtPublic, Vec<u8>)>> = LazyLock::new(|| {
        [
            data!("tpm/go-attestation/ak-activation-infineon-rsa2048.json"),
            data!("tpm/go-attestation/ak-activation-gce-vtpm-eccp256.json"),
        ]
        .iter()
        .map(|json| {
            let params = go_attestation_parameters(json);
            (TpmtPublic::parse(&params[0]).unwrap(), params[2].clone())
        })
        .collect()
    });
    &KEYS
}

/// `Public`, `CreateData`, `CreateAttestation`, `CreateSignature` of a
/// go-attestation test vector, decoded.
fn go_attestation_parameters(json: &str) -> [Vec<u8>; 4] {
    use base64ct::{Base64, Encoding as _};
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let params = &value["attestation_parameters_b64"];
    [
        "Public",
        "CreateData",
        "CreateAttestation",
        "CreateSignature",
    ]
    .map(|name| Base64::decode_vec(params[name].as_str().unwrap()).unwrap())
}

/// `TPMT_PUBLIC`, `TPMS_ATTEST` and `TPMT_SIGNATURE` parsing (TCG TPM 2.0
/// Part 2), every input through all three.
///
/// Invariants: a structure that parses was read whole (one more byte, or one
/// byte less, is refused); a public area keeps its bytes and its name is
/// `nameAlg ‖ H(bytes)`; verifying a parsed signature with either test
/// attestation key never panics.
pub fn tpm_structures(data: &[u8]) -> Verdict {
    let mut parsed = false;
    if let Ok(public) = TpmtPublic::parse(data) {
        parsed = true;
        read_whole(TpmtPublic::parse, data);
        assert_eq!(public.marshalled(), data);
        let name = public.name();
        let alg = public.name_alg();
        assert_eq!(name[..2], alg.id().to_be_bytes());
        assert_eq!(name[2..], alg.digest(data));
        let _ = (public.p256_point(), public.attributes(), public.scheme());
    }
    if let Ok(attest) = TpmsAttest::parse(data) {
        parsed = true;
        read_whole(TpmsAttest::parse, data);
        let _ = (attest.qualified_signer(), attest.extra_data());
    }
    if let Ok(signature) = TpmtSignature::parse(data) {
        parsed = true;
        read_whole(TpmtSignature::parse, data);
        for (key, message) in attestation_keys() {
            let _ = signature.verify(key, message);
        }
    }
    Verdict::from(parsed)
}

/// A strict parser reads every byte: `data` with a byte more or less fails.
fn read_whole<T, E>(parse: fn(&[u8]) -> Result<T, E>, data: &[u8]) {
    let mut longer = data.to_vec();
    longer.push(0);
    assert!(parse(&longer).is_err(), "a trailing byte was accepted");
    if let Some((_, shorter)) = data.split_last() {
        assert!(
            parse(shorter).is_err(),
            "a truncated structure was accepted"
        );
    }
}

/// X.509 certificate parsing and the EK certificate rules (TCG EK
/// Credential Profile) against the TPM vendor roots of the test data.
///
/// The input is DER, possibly followed by NV padding. Invariants: a
/// certificate keeps its bytes and its fingerprint is their SHA-256; NV
/// padding after it changes nothing, anything else after it is refused;
/// every accessor, link check and the EK checks never panic.
pub fn x509_cert(data: &[u8]) -> Verdict {
    let mut parsed = false;
    if let Ok(cert) = Certificate::from_der(data) {
        parsed = true;
        assert_eq!(cert.der(), data);
        assert_eq!(cert.fingerprint(), <[u8; 32]>::from(Sha256::digest(data)));
        let mut padded = data.to_vec();
        padded.extend([0xff; 5]);
        padded.extend([0x00; 3]);
        let again = Certificate::from_der_padded(&padded).expect("NV padding is tolerated");
        assert_eq!(again.der(), data);
        let mut longer = data.to_vec();
        longer.push(0x01);
        assert!(
            Certificate::from_der(&longer).is_err(),
            "trailing data accepted"
        );
        assert!(
            Certificate::from_der_padded(&longer).is_err(),
            "non-padding accepted"
        );
        exercise(&cert);
    }
    if let Ok(cert) = Certificate::from_der_padded(data) {
        parsed = true;
        assert!(data.starts_with(cert.der()));
        exercise(&cert);
    }
    if let Ok(ek) = tpm_trust().verify_ek(data, at()) {
        assert!(data.starts_with(ek.certificate.der()));
    }
    Verdict::from(parsed)
}

/// Every read-only operation on a parsed certificate.
fn exercise(cert: &Certificate) {
    let _ = (cert.subject(), cert.issuer(), cert.public_key());
    let _ = (cert.check_validity(at()), cert.basic_constraints());
    let _ = cert.verify_issued_by(cert);
    for anchor in tpm_trust().anchors().iter().take(2) {
        let _ = cert.verify_issued_by(anchor);
    }
    let _ = tpm_identity(cert);
    let _ = tpm_trust().verify_path(cert, at());
}

/// YubiKey PIV attestation chains (slot ← f9 ← Yubico or test root).
///
/// The input is a byte other than [`SIGNED`] and [`SIGNED_HEADER`] (`00`),
/// a big-endian `u16` length, the slot certificate (DER) of that length,
/// then the f9 certificate; or [`SIGNED`] and a slot
/// `tbsCertificate`, signed by the test f9 key and checked with the test f9
/// certificate; or [`SIGNED_HEADER`] and an f9 `tbsCertificate`, signed by
/// the test root and checked with the test slot certificate. The signed
/// forms reach the Yubico extension parsing, which comes after the
/// signatures.
///
/// Invariants: an accepted chain ends at an anchor of the trust store (the
/// test root for the signed forms), attests the slot certificate's key,
/// passes the default (permissive) policy, and its facts and key check do
/// not panic.
pub fn piv_chain(data: &[u8]) -> Verdict {
    static F9_KEY: LazyLock<SigningKey> =
        LazyLock::new(|| SigningKey::from_pkcs8_pem(TEST_F9_KEY_PEM).unwrap());
    static ROOT_KEY: LazyLock<SigningKey> =
        LazyLock::new(|| SigningKey::from_pkcs8_pem(TEST_ROOT_KEY_PEM).unwrap());
    let (slot, f9, signed) = match data.split_first() {
        Some((&SIGNED, tbs)) => (
            sign_certificate(&F9_KEY, tbs),
            pem(TEST_F9_PEM).der().to_vec(),
            true,
        ),
        Some((&SIGNED_HEADER, tbs)) => (
            pem(TEST_SLOT_PEM).der().to_vec(),
            sign_certificate(&ROOT_KEY, tbs),
            true,
        ),
        Some((_, rest)) => {
            let Some((len, rest)) = rest.split_first_chunk::<2>() else {
                return Verdict::Refused;
            };
            let len = usize::from(u16::from_be_bytes(*len));
            let Some((slot, f9)) = rest.split_at_checked(len) else {
                return Verdict::Refused;
            };
            (slot.to_vec(), f9.to_vec(), false)
        }
        None => return Verdict::Refused,
    };
    let evidence = PivEvidence {
        slot_certificate: Bytes(slot),
        intermediate_certificate: Bytes(f9),
    };
    let attestation = match verify_chain(&evidence, piv_trust(), at()) {
        Ok(attestation) => attestation,
        Err(err) => {
            let _ = (err.check(), err.to_string());
            return Verdict::Refused;
        }
    };
    assert!(
        piv_trust()
            .anchor_names()
            .any(|name| name == attestation.anchor()),
        "anchor {}",
        attestation.anchor()
    );
    if signed {
        assert_eq!(attestation.anchor_kind(), AnchorKind::Test);
    }
    let slot = Certificate::from_der(&evidence.slot_certificate).unwrap();
    assert_eq!(Ok(attestation.public_key()), slot.public_key().as_ref());
    assert!(
        attestation.check_policy(&PivPolicy::default()).is_ok(),
        "the default policy refused a verified chain"
    );
    let _ = attestation.check_key(device_key_jwk());
    let _ = attestation.facts();
    Verdict::Accepted
}

fn device_key_jwk() -> &'static Jwk {
    use holdfast_proto::Signer as _;
    device_key().public_jwk()
}

/// `tbs` signed with ECDSA P-256 SHA-256 as a DER certificate:
/// `SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature }`.
fn sign_certificate(key: &SigningKey, tbs: &[u8]) -> Vec<u8> {
    const ECDSA_WITH_SHA256: [u8; 12] = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    let signature: Signature = key.sign(tbs);
    let (r, s) = signature.split_bytes();
    let mut bits = vec![0u8];
    bits.extend(ecdsa_der_from_rs(&r, &s));
    let mut body = tbs.to_vec();
    body.extend(ECDSA_WITH_SHA256);
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap());
            out.extend(&bytes[skip..]);
        }
    }
    out.extend(content);
    out
}

/// TPM enrollment evidence (the JSON `attestation` member of `POST
/// /enroll`), checked like the issuer's second step against the swtpm
/// fixture (its pending activation, challenge and device key); its EK and
/// AK also go through the first step.
///
/// Invariants: evidence is accepted only if the certified key is the JWK
/// being enrolled (its P-256 point, from the evidence's own `key_public`);
/// nothing panics.
pub fn tpm_evidence(data: &[u8]) -> Verdict {
    static FIXTURE: LazyLock<(PendingActivation, [u8; 32], Jwk)> = LazyLock::new(|| {
        let meta: serde_json::Value =
            serde_json::from_str(data!("tpm/swtpm/evidence/meta.json")).unwrap();
        (
            serde_json::from_str(data!("tpm/swtpm/evidence/pending.json")).unwrap(),
            certify_nonce(meta["challenge"].as_str().unwrap()),
            Jwk::from_json(&meta["jwk"].to_string()).unwrap(),
        )
    });
    let Ok(evidence) = serde_json::from_slice::<TpmEvidence>(data) else {
        return Verdict::Refused;
    };
    let (pending, nonce, jwk) = &*FIXTURE;
    let request = TpmActivationRequest {
        ek_certificate: evidence.ek_certificate.clone(),
        ak_public: evidence.ak_public.clone(),
    };
    let _ = begin_activation(&request, swtpm_trust(), at());
    match verify_evidence(&evidence, pending, swtpm_trust(), nonce, jwk, at()) {
        Ok(attestation) => {
            let key = TpmtPublic::parse(&evidence.key_public).expect("the certified key parses");
            let (x, y) = key.p256_point().expect("a P-256 key");
            assert_eq!(
                Jwk::p256(x, y),
                *jwk,
                "a key other than the JWK was accepted"
            );
            let _ = attestation.facts();
            Verdict::Accepted
        }
        Err(err) => {
            let _ = (err.check(), err.to_string());
            Verdict::Refused
        }
    }
}
