#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! TPM attestation verification on real data (tests/data/tpm, see its
//! SOURCES.md): the MakeCredential known-answer test, vendor EK chains,
//! Windows Hello and go-attestation TPM structures, and evidence made by a
//! swtpm; plus refusals built from real structures and synthetic ones signed
//! by a software AK.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64ct::{Base64UrlUnpadded, Encoding};
use holdfast_hw::attestation::evidence::{Bytes, TpmActivationRequest, TpmEvidence, certify_nonce};
use holdfast_hw::attestation::tpm::{
    Attested, EkPublicKey, HashAlg, ParseProblem, PendingActivation, TpmAttestError, TpmTrust,
    TpmsAttest, TpmtPublic, TpmtSignature, begin_activation, make_credential, tpm_identity,
    verify_evidence,
};
use holdfast_hw::attestation::x509::{Certificate, SignatureAlg};
use holdfast_proto::{Jwk, UnixTime};
use proptest::prelude::*;
use rsa::rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

// ---------------------------------------------------------------- helpers

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tpm")
        .join(rel)
}

fn data(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json(rel: &str) -> Value {
    serde_json::from_slice(&data(rel)).unwrap()
}

/// Standard or URL-safe base64, padded or not.
fn b64(text: &str) -> Vec<u8> {
    let url: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    Base64UrlUnpadded::decode_vec(&url).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// `YYYY-MM-DDTHH:MM:SSZ` to Unix time.
fn utc(text: &str) -> UnixTime {
    let n = |range: core::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    UnixTime::from_secs(u64::try_from(secs).unwrap())
}

/// When the swtpm certificates (made 2026-11-25, valid to 9999) are checked.
fn swtpm_time() -> UnixTime {
    utc("2027-01-01T00:00:00Z")
}

/// One trust store with every vendor, as a production configuration would
/// hold.
fn all_vendors() -> TpmTrust {
    TpmTrust::from_files(
        &[
            path("ek/stmicro/globalsign-trusted-platform-module-root-ca.pem"),
            path("ek/stmicro/stm-tpm-ecc-root-ca-01.pem"),
            path("ek/gce-vtpm/tpm_ek_root_1.pem"),
            path("ek/gce-vtpm/gcp_ek_ak_ca_root.pem"),
            path("swtpm/swtpm-localca-rootca.pem"),
        ],
        &[
            path("ek/stmicro/stm-tpm-ek-intermediate-ca-05.pem"),
            path("ek/stmicro/stm-tpm-ek-root-ca.pem"),
            path("ek/stmicro/stm-tpm-ecc-intermediate-ca-01.pem"),
            path("ek/gce-vtpm/tpm_ek_intermediate_3.pem"),
            path("ek/gce-vtpm/gcp_ek_ak_ca_intermediate_v3.pem"),
            path("swtpm/swtpm-localca.pem"),
        ],
    )
    .unwrap()
}

fn swtpm_trust() -> TpmTrust {
    TpmTrust::from_files(
        &[path("swtpm/swtpm-localca-rootca.pem")],
        &[path("swtpm/swtpm-localca.pem")],
    )
    .unwrap()
}

fn pem_der(rel: &str) -> Vec<u8> {
    Certificate::from_pem(&String::from_utf8(data(rel)).unwrap()).unwrap()[0]
        .der()
        .to_vec()
}

/// A "random" source of zeros, as in go-tpm's known-answer test.
struct Zeros;
impl TryRng for Zeros {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}
impl TryCryptoRng for Zeros {}

// ------------------------------------------------ MakeCredential (KAT)

#[test]
fn make_credential_reproduces_the_go_tpm_known_answer_byte_for_byte() {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;

    let kat = json("credactivation/go-tpm-makecredential-rsa-kat.json");
    let pem = kat["ek_public_key_pem"].as_str().unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key = rsa::RsaPublicKey::from_public_key_der(&b64(&body)).unwrap();
    let ek = EkPublicKey::rsa(&key.n().to_be_bytes(), &key.e().to_be_bytes()).unwrap();
    assert_eq!(ek.name_alg(), HashAlg::Sha256);
    assert_eq!(ek.sym_key_bits(), 128);

    let mut name = vec![0x00, 0x0b];
    name.extend(b64(kat["ak_name_digest_b64"].as_str().unwrap()));
    let secret = b64(kat["credential_secret_b64"].as_str().unwrap());
    let challenge = make_credential(&ek, &name, &secret, &mut Zeros).unwrap();

    // The KAT is TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET, sizes included.
    let mut blob = Vec::new();
    for part in [&challenge.credential_blob, &challenge.encrypted_secret] {
        blob.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(part);
    }
    assert_eq!(blob, b64(kat["expected_blob_b64"].as_str().unwrap()));
}

// ------------------------------------------------------------- EK chains

#[test]
fn every_vendor_ek_chain_verifies_to_its_anchor_with_its_tpm_identity() {
    let trust = all_vendors();
    let pinned = utc("2024-06-01T00:00:00Z");
    let cases = [
        (
            data("ek/stmicro/ek-rsa2048-st33htphahb4-as-read-from-nv.der"),
            pinned,
            "53544D20",
            Some("STMicroelectronics"),
            "ST33HTPHAHB4",
            "id:00490004",
            "RSA-2048",
            "CN=GlobalSign Trusted Platform Module Root CA",
            3,
        ),
        (
            data("ek/stmicro/ek-eccp256-st33htphahb4.der"),
            pinned,
            "53544D20",
            Some("STMicroelectronics"),
            "ST33HTPHAHB4",
            "id:00490004",
            "ECC NIST P-256",
            "CN=STM TPM ECC Root CA 01",
            2,
        ),
        (
            pem_der("ek/gce-vtpm/uca_tpm_rsa_enc_cert.pem"),
            pinned,
            "474F4F47",
            Some("Google"),
            "vTPM",
            "id:20160511",
            "RSA-2048",
            "tpm_ek_v1_cloud_host_root-signer",
            2,
        ),
        (
            pem_der("ek/gce-vtpm/uca_tpm_ecc_enc_cert.pem"),
            pinned,
            "474F4F47",
            Some("Google"),
            "vTPM",
            "id:20160511",
            "ECC NIST P-256",
            "tpm_ek_v1_cloud_host_root-signer",
            2,
        ),
        (
            data("swtpm/ek-rsa2048.der"),
            swtpm_time(),
            "00001014",
            Some("IBM"),
            "swtpm",
            "id:20191023",
            "RSA-2048",
            "CN=swtpm-localca-rootca",
            2,
        ),
        (
            data("swtpm/ek-eccp384.der"),
            swtpm_time(),
            "00001014",
            Some("IBM"),
            "swtpm",
            "id:20191023",
            "ECC NIST P-384",
            "CN=swtpm-localca-rootca",
            2,
        ),
    ];
    for (der, at, manufacturer, name, model, version, key, anchor, path_len) in cases {
        let ek = trust.verify_ek(&der, at).unwrap();
        assert_eq!(ek.identity.manufacturer, manufacturer);
        assert_eq!(ek.identity.manufacturer_name, name);
        assert_eq!(ek.identity.model, model);
        assert_eq!(ek.identity.version, version);
        assert_eq!(ek.public_key.describe(), key);
        assert!(
            ek.path.anchor.contains(anchor),
            "{} !~ {anchor}",
            ek.path.anchor
        );
        assert_eq!(ek.path.issuers.len(), path_len, "{:?}", ek.path.issuers);
        assert_eq!(ek.fingerprint.to_vec(), sha256(ek.certificate.der()));
    }
}

#[test]
fn nv_padding_is_not_part_of_the_ek_fingerprint() {
    let padded = data("ek/stmicro/ek-rsa2048-st33htphahb4-as-read-from-nv.der");
    assert_eq!(padded.len(), 1600);
    let ek = all_vendors()
        .verify_ek(&padded, utc("2024-06-01T00:00:00Z"))
        .unwrap();
    assert_eq!(ek.certificate.der().len(), 1169);
    assert_eq!(ek.certificate.der(), &padded[..1169]);
}

#[test]
fn swtpm_ecc_ek_implies_the_sha384_aes256_template() {
    // Measured on swtpm 0.7.1: the ECC EK at 0x81010016 has nameAlg SHA-384,
    // AES-256-CFB (TCG template H-3); the RSA EK SHA-256, AES-128-CFB.
    let trust = swtpm_trust();
    let ecc = trust
        .verify_ek(&data("swtpm/ek-eccp384.der"), swtpm_time())
        .unwrap();
    assert_eq!(
        (ecc.public_key.name_alg(), ecc.public_key.sym_key_bits()),
        (HashAlg::Sha384, 256)
    );
    let rsa = trust
        .verify_ek(&data("swtpm/ek-rsa2048.der"), swtpm_time())
        .unwrap();
    assert_eq!(
        (rsa.public_key.name_alg(), rsa.public_key.sym_key_bits()),
        (HashAlg::Sha256, 128)
    );
}

#[test]
fn rejects_ek_from_an_untrusted_ca() {
    let err = swtpm_trust()
        .verify_ek(
            &data("ek/stmicro/ek-rsa2048-st33htphahb4-as-read-from-nv.der"),
            utc("2024-06-01T00:00:00Z"),
        )
        .unwrap_err();
    assert_eq!(err.check(), "ek_untrusted");
    assert_eq!(
        err.to_string(),
        "the EK certificate does not chain to a configured TPM root: issuer \
         CN=STM TPM EK Intermediate CA 05,O=STMicroelectronics NV,C=CH is not trusted"
    );

    // Intermediates alone are not trust: the path must end in an anchor.
    let trust = TpmTrust::from_files(
        &[path("swtpm/swtpm-localca-rootca.pem")],
        &[
            path("ek/stmicro/stm-tpm-ek-intermediate-ca-05.pem"),
            path("ek/stmicro/stm-tpm-ek-root-ca.pem"),
        ],
    )
    .unwrap();
    let err = trust
        .verify_ek(
            &data("ek/stmicro/ek-rsa2048-st33htphahb4-as-read-from-nv.der"),
            utc("2024-06-01T00:00:00Z"),
        )
        .unwrap_err();
    assert!(
        matches!(&err, TpmAttestError::EkUntrusted { issuer } if issuer.contains("GlobalSign Trusted Platform Module Root CA")),
        "{err}"
    );
}

#[test]
fn rejects_an_expired_or_not_yet_valid_ek_chain() {
    let ek = data("ek/stmicro/ek-rsa2048-st33htphahb4-as-read-from-nv.der");
    // The EK expires 2028-07-11.
    let err = all_vendors()
        .verify_ek(&ek, utc("2029-01-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(err.check(), "ek_chain_expired");
    assert!(err.to_string().contains("expired"), "{err}");
    let err = all_vendors()
        .verify_ek(&ek, utc("2017-01-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(err.check(), "ek_chain_expired");
}

#[test]
fn rejects_an_ek_whose_signature_was_tampered_with() {
    let mut ek = data("ek/stmicro/ek-eccp256-st33htphahb4.der");
    let last = ek.len() - 3;
    ek[last] ^= 0x01;
    let err = all_vendors()
        .verify_ek(&ek, utc("2024-06-01T00:00:00Z"))
        .unwrap_err();
    assert!(
        matches!(&err, TpmAttestError::EkChainSignature { .. }),
        "{err}"
    );
}

#[test]
fn rejects_signing_key_certificates_as_eks() {
    // Google's uca_*_sign certificates carry the EK EKU but are signing keys
    // (keyUsage digitalSignature): MakeCredential to them would be moot.
    for rel in [
        "ek/gce-vtpm/uca_tpm_rsa_sign_cert.pem",
        "ek/gce-vtpm/uca_tpm_ecc_sign_cert.pem",
    ] {
        let err = all_vendors()
            .verify_ek(&pem_der(rel), utc("2024-06-01T00:00:00Z"))
            .unwrap_err();
        assert_eq!(err.check(), "ek_not_an_ek", "{rel}: {err}");
    }
}

#[test]
fn rejects_an_ek_without_tpm_identity() {
    // Google's newer pca_* EK certificates name the VM in the subject and
    // have no TCG subjectAltName: the chain verifies, the identity is absent.
    let trust = all_vendors();
    let at = utc("2024-06-01T00:00:00Z");
    for rel in [
        "ek/gce-vtpm/pca_tpm_rsa_enc_cert.pem",
        "ek/gce-vtpm/pca_tpm_ecc_enc_cert.pem",
    ] {
        let cert = Certificate::from_der(&pem_der(rel)).unwrap();
        let path = trust.verify_path(&cert, at).unwrap();
        assert_eq!(
            path.anchor,
            "CN=EK/AK CA Root,OU=Google Cloud,O=Google LLC,L=Mountain View,ST=California,C=US"
        );
        let err = trust.verify_ek(cert.der(), at).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the EK certificate's TPM identity (subjectAltName) is invalid: \
             the certificate has no subjectAltName"
        );
    }
}

#[test]
fn nuvoton_root_with_unsorted_set_parses_and_serves_as_an_anchor() {
    // Its subject is one RDN (CN+O+C) whose SET members are not in DER
    // order. x509-cert's Raw profile reads it; the link check compares names
    // re-encoded the same way on both sides and verifies the signature over
    // the tbsCertificate as received, so it verifies as a self-signed CA.
    let der = data("ek/nuvoton/nuvoton-tpm-root-ca-2110.der");
    let cert = Certificate::from_der(&der).unwrap();
    assert!(
        cert.subject().contains("Nuvoton TPM Root CA 2110"),
        "{}",
        cert.subject()
    );
    cert.verify_issued_by(&cert).unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.ca);
    let trust =
        TpmTrust::from_files(&[path("ek/nuvoton/nuvoton-tpm-root-ca-2110.der")], &[]).unwrap();
    let path = trust
        .verify_path(&cert, utc("2024-06-01T00:00:00Z"))
        .unwrap();
    assert_eq!(path.anchor, cert.subject());
}

#[test]
fn trust_needs_an_anchor() {
    assert!(TpmTrust::from_pem("", "").is_err());
    let ca = String::from_utf8(data("swtpm/swtpm-localca-rootca.pem")).unwrap();
    let trust = TpmTrust::from_pem(&ca, "").unwrap();
    assert_eq!(trust.anchors().len(), 1);
    assert!(trust.intermediates().is_empty());
}

// ------------------------------------------------------ Windows Hello

const WINDOWS_HELLO: [&str; 5] = [
    "windows-hello-intel-ptt-surface-pro-4",
    "windows-hello-nuvoton-npct6xx-dell-xps13",
    "windows-hello-nuvoton-npct75x-ecc-p256",
    "windows-hello-nuvoton-npct75x-teleport",
    "windows-hello-stm-st33htph-lenovo-x1",
];

#[test]
fn windows_hello_certify_structures_parse_and_verify_with_sha1_rsa() {
    let ms_root = path("roots/microsoft-tpm-root-ca-2014.pem");
    for case in WINDOWS_HELLO {
        let ex = json(&format!("webauthn/extracted/{case}.json"));
        assert_eq!(ex["alg"], -65535, "{case}: RS1");
        let cert_info = b64(ex["cert_info"].as_str().unwrap());
        let pub_area = b64(ex["pub_area"].as_str().unwrap());
        let sig = b64(ex["sig"].as_str().unwrap());
        let x5c: Vec<Certificate> = ex["x5c"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Certificate::from_der(&b64(c.as_str().unwrap())).unwrap())
            .collect();

        // certInfo is a certify of pubArea: name = nameAlg ‖ H(pubArea).
        let attest = TpmsAttest::parse(&cert_info).unwrap();
        let public = TpmtPublic::parse(&pub_area).unwrap();
        let Attested::Certify { name, .. } = attest.attested() else {
            panic!("{case}: not a certify");
        };
        assert_eq!(*name, public.name(), "{case}");

        // extraData = SHA-1(authData ‖ SHA-256(clientDataJSON)) (WebAuthn §8.3).
        if let Some(to_sign) = ex["att_to_be_signed"].as_str() {
            let expected = HashAlg::Sha1.digest(&b64(to_sign));
            assert_eq!(attest.extra_data(), expected.as_slice(), "{case}");
        }

        // The AK certificate's key verifies sig (RSASSA SHA-1) over certInfo.
        let ak_key = x5c[0].public_key().unwrap();
        ak_key
            .verify(SignatureAlg::RsaPkcs1Sha1, &cert_info, &sig)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let mut tampered = cert_info.clone();
        tampered[40] ^= 0x01;
        assert!(
            ak_key
                .verify(SignatureAlg::RsaPkcs1Sha1, &tampered, &sig)
                .is_err()
        );

        // The AK certificate chains to Microsoft's TPM root at the pinned time.
        let trust = TpmTrust::new(
            Certificate::from_pem(&std::fs::read_to_string(&ms_root).unwrap()).unwrap(),
            x5c[1..].to_vec(),
        )
        .unwrap();
        let at = utc(ex["verify_at_utc"].as_str().unwrap());
        let path = trust.verify_path(&x5c[0], at).unwrap();
        assert!(
            path.anchor
                .contains("Microsoft TPM Root Certificate Authority 2014"),
            "{case}"
        );
        // And its subjectAltName names the TPM.
        let identity = tpm_identity(&x5c[0]).unwrap();
        let san = &ex["ak_cert_san_tpm"];
        assert_eq!(
            format!("id:{}", identity.manufacturer),
            san["2.23.133.2.1"]
                .as_str()
                .unwrap()
                .to_uppercase()
                .replace("ID:", "id:")
        );
        assert_eq!(identity.model, san["2.23.133.2.2"].as_str().unwrap());
        assert_eq!(identity.version, san["2.23.133.2.3"].as_str().unwrap());
    }
}

#[test]
fn windows_hello_firmware_versions_are_obfuscated() {
    // Windows Hello AKs live in the owner hierarchy, so the TPM obfuscates
    // firmwareVersion (TPM 2.0 Part 1 §36.8): the Lenovo's STM TPM is
    // 73.8.17568.5511 (0x0049_0008_44A0_1587) by its description, but
    // certInfo says otherwise. The issuer takes the firmware from the EK.
    let ex = json("webauthn/extracted/windows-hello-stm-st33htph-lenovo-x1.json");
    let attest = TpmsAttest::parse(&b64(ex["cert_info"].as_str().unwrap())).unwrap();
    assert_eq!(attest.firmware_version(), 0x74cf_c935_f5e4_7d6e);
}

#[test]
fn windows_hello_keys_are_refused_as_attestation_keys() {
    // A Windows Hello credential key is not restricted: it cannot be an AK.
    let ex = json("webauthn/extracted/windows-hello-nuvoton-npct75x-ecc-p256.json");
    let req = TpmActivationRequest {
        ek_certificate: Bytes(data("swtpm/ek-rsa2048.der")),
        ak_public: Bytes(b64(ex["pub_area"].as_str().unwrap())),
    };
    let err = begin_activation(&req, &swtpm_trust(), swtpm_time()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the attestation key is not a restricted TPM signing key: restricted is not set"
    );
}

// ------------------------------------------------------ go-attestation

#[test]
fn go_attestation_creation_attestations_verify_with_their_aks() {
    for (case, expect_rsa) in [
        ("go-attestation/ak-activation-infineon-rsa2048.json", true),
        ("go-attestation/ak-activation-gce-vtpm-eccp256.json", false),
    ] {
        let params = &json(case)["attestation_parameters_b64"];
        let field = |name: &str| b64(params[name].as_str().unwrap());
        let public = TpmtPublic::parse(&field("Public")).unwrap();
        let attest_bytes = field("CreateAttestation");
        let attest = TpmsAttest::parse(&attest_bytes).unwrap();
        let Attested::Creation {
            object_name,
            creation_hash,
        } = attest.attested()
        else {
            panic!("{case}: not a creation attestation");
        };
        assert_eq!(*object_name, public.name(), "{case}");
        assert_eq!(*creation_hash, sha256(&field("CreateData")), "{case}");
        assert_eq!(
            public.attributes().names(),
            [
                "fixedTPM",
                "fixedParent",
                "sensitiveDataOrigin",
                "userWithAuth",
                "noDA",
                "restricted",
                "sign"
            ]
        );

        let signature = TpmtSignature::parse(&field("CreateSignature")).unwrap();
        assert_eq!(signature.hash(), Some(HashAlg::Sha1), "{case}");
        assert_eq!(
            matches!(signature, TpmtSignature::Rsassa { .. }),
            expect_rsa
        );
        signature.verify(&public, &attest_bytes).unwrap();
        let mut tampered = attest_bytes.clone();
        tampered[10] ^= 0x80;
        assert!(signature.verify(&public, &tampered).is_err());

        // Enrollment refuses these AKs: their fixed scheme signs with SHA-1.
        let req = TpmActivationRequest {
            ek_certificate: Bytes(data("swtpm/ek-rsa2048.der")),
            ak_public: Bytes(field("Public")),
        };
        let err = begin_activation(&req, &swtpm_trust(), swtpm_time()).unwrap_err();
        assert_eq!(err.check(), "ak_unsupported", "{case}: {err}");
    }
}

// ---------------------------------------- evidence made by a real swtpm

struct Fixture {
    evidence: TpmEvidence,
    pending: PendingActivation,
    nonce: [u8; 32],
    jwk: Jwk,
}

fn swtpm_fixture(name: &str) -> Fixture {
    let meta = json("swtpm/evidence/meta.json");
    Fixture {
        evidence: serde_json::from_slice(&data(&format!("swtpm/evidence/evidence-{name}.json")))
            .unwrap(),
        pending: serde_json::from_slice(&data("swtpm/evidence/pending.json")).unwrap(),
        nonce: certify_nonce(meta["challenge"].as_str().unwrap()),
        jwk: Jwk::from_json(&meta["jwk"].to_string()).unwrap(),
    }
}

fn verify(f: &Fixture) -> Result<holdfast_hw::attestation::tpm::TpmAttestation, TpmAttestError> {
    verify_evidence(
        &f.evidence,
        &f.pending,
        &swtpm_trust(),
        &f.nonce,
        &f.jwk,
        swtpm_time(),
    )
}

#[test]
fn swtpm_evidence_verifies() {
    let f = swtpm_fixture("good");
    let attestation = verify(&f).unwrap();
    assert_eq!(attestation.manufacturer, "00001014");
    assert_eq!(attestation.manufacturer_name, Some("IBM"));
    assert_eq!(attestation.model, "swtpm");
    assert_eq!(attestation.firmware, "id:20191023");
    assert_eq!(attestation.ek_key, "RSA-2048");
    assert_eq!(attestation.anchor, "CN=swtpm-localca-rootca");
    assert_eq!(
        attestation.ek_fingerprint,
        hex(&sha256(&data("swtpm/ek-rsa2048.der")))
    );
    assert_eq!(
        attestation.key_attributes,
        [
            "fixedTPM",
            "fixedParent",
            "sensitiveDataOrigin",
            "userWithAuth",
            "sign"
        ]
    );
    let facts = attestation.facts();
    let fact = |name: &str| &facts.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(fact("tpm_manufacturer_name"), "IBM");
    assert_eq!(fact("tpm_firmware"), "id:20191023");
}

#[test]
fn swtpm_rejects_a_duplicable_key() {
    let err = verify(&swtpm_fixture("duplicable")).unwrap_err();
    assert_eq!(err, TpmAttestError::KeyDuplicable("fixedTPM"));
    assert_eq!(
        err.to_string(),
        "the certified key is duplicable: fixedTPM is not set"
    );
    assert_eq!(err.check(), "key_duplicable");
}

#[test]
fn swtpm_rejects_a_restricted_key() {
    assert_eq!(
        verify(&swtpm_fixture("restricted")).unwrap_err(),
        TpmAttestError::KeyRestricted
    );
}

#[test]
fn swtpm_rejects_an_ak_signature_by_another_key() {
    let err = verify(&swtpm_fixture("other-ak")).unwrap_err();
    assert_eq!(err.check(), "attest_signature_invalid");
    assert_eq!(
        err.to_string(),
        "TPMS_ATTEST signature does not verify with the attestation key: \
         the signature does not verify"
    );
}

#[test]
fn swtpm_rejects_a_wrong_nonce() {
    let mut f = swtpm_fixture("good");
    f.nonce = certify_nonce("another enrollment");
    let err = verify(&f).unwrap_err();
    assert_eq!(err, TpmAttestError::NonceMismatch);
    assert_eq!(
        err.to_string(),
        "the certify nonce does not match the enrollment challenge"
    );
}

#[test]
fn swtpm_rejects_an_ak_that_was_never_activated() {
    let mut f = swtpm_fixture("good");
    f.evidence.activated_secret.0[0] ^= 1;
    let err = verify(&f).unwrap_err();
    assert_eq!(err, TpmAttestError::AkNotActivated);
    assert_eq!(
        err.to_string(),
        "the attestation key was never activated: the credential secret does not match"
    );
}

#[test]
fn swtpm_rejects_a_tampered_attestation() {
    let good = swtpm_fixture("good");
    // Every byte after the magic and type is covered by the signature.
    for i in 6..good.evidence.certify_info.len() {
        let mut f = swtpm_fixture("good");
        f.evidence.certify_info.0[i] ^= 0x01;
        let err = verify(&f).unwrap_err();
        assert!(
            matches!(
                err,
                TpmAttestError::AttestSignatureInvalid(_) | TpmAttestError::AttestMalformed(_)
            ),
            "byte {i}: {err}"
        );
    }
    let mut f = swtpm_fixture("good");
    f.evidence.certify_info.0[0] ^= 0x01;
    let err = verify(&f).unwrap_err();
    assert!(
        matches!(&err, TpmAttestError::AttestMalformed(e) if e.field() == "magic"),
        "{err}"
    );
}

#[test]
fn swtpm_rejects_a_jwk_that_is_not_the_certified_key() {
    let mut f = swtpm_fixture("good");
    let Jwk::Ec(ec) = &f.jwk else { panic!() };
    let mut x: [u8; 32] = ec.x().try_into().unwrap();
    let y: [u8; 32] = ec.y().try_into().unwrap();
    x[31] ^= 1;
    f.jwk = Jwk::p256(x, y);
    assert_eq!(verify(&f).unwrap_err(), TpmAttestError::KeyMismatch);
}

#[test]
fn swtpm_rejects_another_ek_or_ak_than_the_challenge_was_made_for() {
    let mut f = swtpm_fixture("good");
    f.evidence.ek_certificate = Bytes(data("swtpm/ek-eccp384.der"));
    assert_eq!(verify(&f).unwrap_err(), TpmAttestError::EkChanged);

    let mut f = swtpm_fixture("good");
    let other = swtpm_fixture("restricted");
    // A restricted signing key of the same TPM, but not the activated AK.
    f.evidence.ak_public = other.evidence.key_public;
    assert_eq!(verify(&f).unwrap_err(), TpmAttestError::AkNameMismatch);
}

#[test]
fn swtpm_rejects_evidence_when_the_ek_is_not_trusted() {
    let f = swtpm_fixture("good");
    let err = verify_evidence(
        &f.evidence,
        &f.pending,
        &all_vendors_without_swtpm(),
        &f.nonce,
        &f.jwk,
        swtpm_time(),
    )
    .unwrap_err();
    assert_eq!(err.check(), "ek_untrusted");
}

fn all_vendors_without_swtpm() -> TpmTrust {
    TpmTrust::from_files(
        &[path(
            "ek/stmicro/globalsign-trusted-platform-module-root-ca.pem",
        )],
        &[path("ek/stmicro/stm-tpm-ek-root-ca.pem")],
    )
    .unwrap()
}

#[test]
fn begin_activation_makes_a_challenge_for_the_ek_and_ak() {
    let f = swtpm_fixture("good");
    let req = TpmActivationRequest {
        ek_certificate: f.evidence.ek_certificate.clone(),
        ak_public: f.evidence.ak_public.clone(),
    };
    let (challenge, pending) = begin_activation(&req, &swtpm_trust(), swtpm_time()).unwrap();
    // RSA-2048 EK: a 256-byte OAEP ciphertext; the ID object is
    // TPM2B(HMAC-SHA256) ‖ AES-CFB(TPM2B(32-byte secret)).
    assert_eq!(challenge.encrypted_secret.len(), 256);
    assert_eq!(challenge.credential_blob.len(), 2 + 32 + 2 + 32);
    assert_eq!(pending.ak_name(), f.pending.ak_name());
    assert_eq!(pending.ek_fingerprint(), f.pending.ek_fingerprint());
    // A fresh secret every time.
    let (again, _) = begin_activation(&req, &swtpm_trust(), swtpm_time()).unwrap();
    assert_ne!(again.credential_blob, challenge.credential_blob);
    // The stored form round-trips and its Debug shows no secret material.
    let stored = serde_json::to_string(&pending).unwrap();
    assert_eq!(
        serde_json::from_str::<PendingActivation>(&stored).unwrap(),
        pending
    );
    let debug = format!("{pending:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(
        serde_json::from_str::<PendingActivation>(
            r#"{"ak_name":"AAs","secret_sha256":"AA","ek_fingerprint":"AA"}"#
        )
        .is_err()
    );
}

#[test]
fn begin_activation_for_the_swtpm_ecc_ek() {
    let f = swtpm_fixture("good");
    let req = TpmActivationRequest {
        ek_certificate: Bytes(data("swtpm/ek-eccp384.der")),
        ak_public: f.evidence.ak_public.clone(),
    };
    let (challenge, _) = begin_activation(&req, &swtpm_trust(), swtpm_time()).unwrap();
    // TPMS_ECC_POINT of P-384; HMAC-SHA384; AES-256-CFB of TPM2B(secret).
    assert_eq!(challenge.encrypted_secret.len(), 2 + 48 + 2 + 48);
    assert_eq!(challenge.credential_blob.len(), 2 + 48 + 2 + 32);
}

/// Step 1 of `swtpm/make-evidence.sh`: the issuer's challenge for the AK in
/// `$HOLDFAST_TPM_FIXTURE_DIR/ak.public`, written as a tpm2-tools
/// credential file, and the pending activation.
#[test]
#[ignore = "run by tests/data/tpm/swtpm/make-evidence.sh"]
fn make_swtpm_challenge() {
    let dir = PathBuf::from(std::env::var("HOLDFAST_TPM_FIXTURE_DIR").unwrap());
    let req = TpmActivationRequest {
        ek_certificate: Bytes(data("swtpm/ek-rsa2048.der")),
        ak_public: Bytes(std::fs::read(dir.join("ak.public")).unwrap()),
    };
    let (challenge, pending) = begin_activation(&req, &swtpm_trust(), swtpm_time()).unwrap();
    // tpm2-tools: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT,
    // TPM2B_ENCRYPTED_SECRET.
    let mut file = vec![0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1];
    for part in [&challenge.credential_blob, &challenge.encrypted_secret] {
        file.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
        file.extend_from_slice(part);
    }
    std::fs::write(dir.join("cred.bin"), file).unwrap();
    std::fs::write(
        dir.join("pending.json"),
        serde_json::to_string_pretty(&pending).unwrap(),
    )
    .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ------------------------- synthetic evidence signed by a software AK

const FIXED_TPM: u32 = 1 << 1;
const FIXED_PARENT: u32 = 1 << 4;
const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
const USER_WITH_AUTH: u32 = 1 << 6;
const RESTRICTED: u32 = 1 << 16;
const DECRYPT: u32 = 1 << 17;
const SIGN: u32 = 1 << 18;
const DEVICE_KEY: u32 = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN;
const AK: u32 = DEVICE_KEY | RESTRICTED;

fn tpm2b(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A marshalled ECC `TPMT_PUBLIC` (SHA-256 name, ECDSA-SHA256 scheme for
/// AKs, NULL otherwise) for the SEC 1 point `04 ‖ x ‖ y`.
fn ecc_public(attributes: u32, curve: u16, point: &[u8]) -> Vec<u8> {
    let len = (point.len() - 1) / 2;
    let mut out = vec![0x00, 0x23, 0x00, 0x0b];
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x00, 0x10]); // authPolicy, symmetric NULL
    if attributes & RESTRICTED != 0 {
        out.extend_from_slice(&[0x00, 0x18, 0x00, 0x0b]);
    } else {
        out.extend_from_slice(&[0x00, 0x10]);
    }
    out.extend_from_slice(&curve.to_be_bytes());
    out.extend_from_slice(&[0x00, 0x10]); // kdf NULL
    tpm2b(&mut out, &point[1..=len]);
    tpm2b(&mut out, &point[1 + len..]);
    out
}

fn name_of(public: &[u8]) -> Vec<u8> {
    [&[0x00, 0x0b][..], &sha256(public)].concat()
}

fn attest(magic: u32, kind: u16, nonce: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    out.extend_from_slice(&kind.to_be_bytes());
    tpm2b(&mut out, &[0x00, 0x0b, 1, 2, 3]);
    tpm2b(&mut out, nonce);
    out.extend_from_slice(&[0; 8 + 4 + 4]);
    out.push(1);
    out.extend_from_slice(&0x0001_0002_0003_0004u64.to_be_bytes());
    tpm2b(&mut out, name);
    tpm2b(&mut out, name);
    out
}

fn ecdsa_signature(key: &EcdsaKeyPair, hash: u16, message: &[u8]) -> Vec<u8> {
    let sig = key.sign(&SystemRandom::new(), message).unwrap();
    let (r, s) = sig.as_ref().split_at(32);
    let mut out = vec![0x00, 0x18];
    out.extend_from_slice(&hash.to_be_bytes());
    tpm2b(&mut out, r);
    tpm2b(&mut out, s);
    out
}

fn p256_key() -> EcdsaKeyPair {
    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()
}

/// Everything a synthetic case can change.
struct Synthetic {
    ak: EcdsaKeyPair,
    ak_attributes: u32,
    signer: Option<EcdsaKeyPair>,
    key_point: Vec<u8>,
    key_attributes: u32,
    key_curve: u16,
    magic: u32,
    kind: u16,
    nonce: [u8; 32],
    certified_name: Option<Vec<u8>>,
    sig_hash: u16,
}

impl Synthetic {
    fn new() -> Self {
        Self {
            ak: p256_key(),
            ak_attributes: AK,
            signer: None,
            key_point: p256_key().public_key().as_ref().to_vec(),
            key_attributes: DEVICE_KEY,
            key_curve: 0x0003,
            magic: 0xff54_4347,
            kind: 0x8017,
            nonce: certify_nonce("synthetic"),
            certified_name: None,
            sig_hash: 0x000b,
        }
    }

    fn run(&self) -> Result<holdfast_hw::attestation::tpm::TpmAttestation, TpmAttestError> {
        let ek = data("swtpm/ek-rsa2048.der");
        let ak_public = ecc_public(self.ak_attributes, 0x0003, self.ak.public_key().as_ref());
        let key_public = ecc_public(self.key_attributes, self.key_curve, &self.key_point);
        let name = self
            .certified_name
            .clone()
            .unwrap_or_else(|| name_of(&key_public));
        let info = attest(self.magic, self.kind, &certify_nonce("synthetic"), &name);
        let signer = self.signer.as_ref().unwrap_or(&self.ak);
        let signature = ecdsa_signature(signer, self.sig_hash, &info);
        let secret = [0x77u8; 32];
        let pending: PendingActivation = serde_json::from_value(serde_json::json!({
            "ak_name": b64url(&name_of(&ak_public)),
            "secret_sha256": b64url(&sha256(&secret)),
            "ek_fingerprint": b64url(&sha256(&ek)),
        }))
        .unwrap();
        let evidence = TpmEvidence {
            ek_certificate: Bytes(ek),
            ak_public: Bytes(ak_public),
            activated_secret: Bytes(secret.to_vec()),
            key_public: Bytes(key_public),
            certify_info: Bytes(info),
            certify_signature: Bytes(signature),
        };
        let point = &self.key_point;
        let half = (point.len() - 1) / 2;
        let jwk = if half == 32 {
            Jwk::p256(
                point[1..33].try_into().unwrap(),
                point[33..].try_into().unwrap(),
            )
        } else {
            Jwk::p256([1; 32], [2; 32])
        };
        verify_evidence(
            &evidence,
            &pending,
            &swtpm_trust(),
            &self.nonce,
            &jwk,
            swtpm_time(),
        )
    }
}

#[test]
fn synthetic_evidence_verifies() {
    let attestation = Synthetic::new().run().unwrap();
    assert_eq!(attestation.attested_firmware_version, 0x0001_0002_0003_0004);
}

#[test]
fn rejects_keys_without_each_required_attribute() {
    for (attributes, expected) in [
        (
            DEVICE_KEY & !FIXED_TPM,
            TpmAttestError::KeyDuplicable("fixedTPM"),
        ),
        (
            DEVICE_KEY & !FIXED_PARENT,
            TpmAttestError::KeyDuplicable("fixedParent"),
        ),
        (
            DEVICE_KEY & !SENSITIVE_DATA_ORIGIN,
            TpmAttestError::KeyNotTpmGenerated,
        ),
        (DEVICE_KEY | RESTRICTED, TpmAttestError::KeyRestricted),
        (DEVICE_KEY | DECRYPT, TpmAttestError::KeyDecrypts),
        (DEVICE_KEY & !SIGN, TpmAttestError::KeyNotSigning),
        (DEVICE_KEY & !USER_WITH_AUTH, TpmAttestError::KeyNoUserAuth),
    ] {
        let mut case = Synthetic::new();
        case.key_attributes = attributes;
        assert_eq!(case.run().unwrap_err(), expected, "{attributes:#x}");
    }
    let mut case = Synthetic::new();
    case.key_attributes = DEVICE_KEY & !SENSITIVE_DATA_ORIGIN;
    assert_eq!(
        case.run().unwrap_err().to_string(),
        "the certified key was not generated inside the TPM: sensitiveDataOrigin is not set"
    );
}

#[test]
fn rejects_a_p384_device_key() {
    let mut case = Synthetic::new();
    let mut point = vec![4];
    point.extend_from_slice(&[0x11; 96]);
    case.key_point = point;
    case.key_curve = 0x0004;
    assert_eq!(case.run().unwrap_err(), TpmAttestError::KeyNotP256);
}

#[test]
fn rejects_a_wrong_magic_or_type() {
    let mut case = Synthetic::new();
    case.magic = 0xff54_4348;
    let err = case.run().unwrap_err();
    assert_eq!(err.check(), "attest_malformed");
    assert_eq!(
        err.to_string(),
        "TPMS_ATTEST is malformed: TPMS_ATTEST.magic: value 0xff544348 is not allowed here"
    );

    let mut case = Synthetic::new();
    case.kind = 0x801A;
    let err = case.run().unwrap_err();
    assert_eq!(err, TpmAttestError::AttestNotCertify { found: 0x801A });
    assert_eq!(
        err.to_string(),
        "TPMS_ATTEST has type 0x801a, not TPM_ST_ATTEST_CERTIFY (0x8017)"
    );
}

#[test]
fn rejects_a_certified_name_of_another_key() {
    let mut case = Synthetic::new();
    case.certified_name = Some(name_of(b"another key"));
    assert_eq!(
        case.run().unwrap_err(),
        TpmAttestError::CertifiedNameMismatch
    );
}

#[test]
fn rejects_a_signature_by_another_key_or_with_sha1() {
    let mut case = Synthetic::new();
    case.signer = Some(p256_key());
    assert_eq!(case.run().unwrap_err().check(), "attest_signature_invalid");

    let mut case = Synthetic::new();
    case.sig_hash = 0x0004;
    assert_eq!(
        case.run().unwrap_err(),
        TpmAttestError::AttestSignatureAlgorithm("SHA-1 signatures are not accepted")
    );

    // The AK's scheme is ECDSA-SHA256: an ECDSA-SHA384 signature is not its.
    let mut case = Synthetic::new();
    case.sig_hash = 0x000c;
    assert_eq!(
        case.run().unwrap_err().check(),
        "attest_signature_algorithm"
    );
}

#[test]
fn rejects_a_wrong_nonce_and_an_unrestricted_ak() {
    let mut case = Synthetic::new();
    case.nonce = certify_nonce("other");
    assert_eq!(case.run().unwrap_err(), TpmAttestError::NonceMismatch);

    let mut case = Synthetic::new();
    case.ak_attributes = AK & !RESTRICTED;
    assert_eq!(
        case.run().unwrap_err(),
        TpmAttestError::AkAttributes("restricted is not set")
    );
    let mut case = Synthetic::new();
    case.ak_attributes = AK & !FIXED_TPM;
    assert_eq!(case.run().unwrap_err().check(), "ak_attributes");
}

#[test]
fn every_error_has_a_distinct_check_name() {
    let samples = [
        TpmAttestError::EkChanged,
        TpmAttestError::AkNameMismatch,
        TpmAttestError::AkNotActivated,
        TpmAttestError::KeyNotP256,
        TpmAttestError::KeyDuplicable("fixedTPM"),
        TpmAttestError::KeyNotTpmGenerated,
        TpmAttestError::KeyRestricted,
        TpmAttestError::KeyDecrypts,
        TpmAttestError::KeyNotSigning,
        TpmAttestError::KeyNoUserAuth,
        TpmAttestError::KeyNameAlgWeak,
        TpmAttestError::KeyMismatch,
        TpmAttestError::NonceMismatch,
        TpmAttestError::CertifiedNameMismatch,
        TpmAttestError::AttestNotCertify { found: 0 },
    ];
    let mut names: Vec<_> = samples.iter().map(TpmAttestError::check).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), samples.len());
    assert!(names.iter().all(|n| {
        n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }));
}

// ------------------------------------------------------ no panics

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = TpmtPublic::parse(&bytes);
        let _ = TpmsAttest::parse(&bytes);
        let _ = TpmtSignature::parse(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_mutated_real_structures(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let f = swtpm_fixture("good");
        let mut bytes = match which {
            0 => f.evidence.key_public.0,
            1 => f.evidence.certify_info.0,
            _ => f.evidence.certify_signature.0,
        };
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] ^= value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = TpmtPublic::parse(&bytes);
        let _ = TpmsAttest::parse(&bytes);
        if let Ok(sig) = TpmtSignature::parse(&bytes) {
            let ak = TpmtPublic::parse(&swtpm_fixture("good").evidence.ak_public).unwrap();
            let _ = sig.verify(&ak, b"message");
        }
    }

    #[test]
    fn verify_evidence_never_panics(
        field in 0usize..6,
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut f = swtpm_fixture("good");
        let slot = match field {
            0 => &mut f.evidence.ek_certificate,
            1 => &mut f.evidence.ak_public,
            2 => &mut f.evidence.activated_secret,
            3 => &mut f.evidence.key_public,
            4 => &mut f.evidence.certify_info,
            _ => &mut f.evidence.certify_signature,
        };
        *slot = Bytes(bytes);
        prop_assert!(verify(&f).is_err());
    }

    #[test]
    fn begin_activation_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let req = TpmActivationRequest {
            ek_certificate: Bytes(bytes.clone()),
            ak_public: Bytes(bytes),
        };
        prop_assert!(begin_activation(&req, &swtpm_trust(), swtpm_time()).is_err());
    }
}

#[test]
fn parse_errors_name_the_structure_and_field() {
    let err = TpmtSignature::parse(&[0x00, 0x18, 0x00]).unwrap_err();
    assert_eq!(err.structure(), "TPMT_SIGNATURE");
    assert_eq!(err.field(), "signature.ecdsa.hash");
    assert_eq!(err.problem(), ParseProblem::Truncated);
}

// ------------------------------------ ECC MakeCredential checked by swtpm

/// A source that returns `0x11` bytes: a valid scalar on both curves.
struct Elevens;
impl TryRng for Elevens {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0x1111_1111)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0x1111_1111_1111_1111)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0x11);
        Ok(())
    }
}
impl TryCryptoRng for Elevens {}

const ECC_KAT_SECRET: [u8; 32] = *b"holdfast ECC credential secret!!";

fn ecc_ek(curve: &str, point: &[u8]) -> EkPublicKey {
    match curve {
        "p256" => EkPublicKey::ec_p256(point).unwrap(),
        _ => EkPublicKey::ec_p384(point).unwrap(),
    }
}

#[test]
fn ecc_make_credential_is_what_swtpm_activates() {
    // swtpm recovered ECC_KAT_SECRET with TPM2_ActivateCredential from these
    // blobs (swtpm/make-ecc-kat.sh): the ECDH, KDFe and template choices
    // agree with a TPM for P-256 (template L-2) and P-384 (H-3, swtpm's EK).
    for curve in ["p256", "p384"] {
        let kat = json(&format!("swtpm/ecc-kat/{curve}.json"));
        let field = |name: &str| b64(kat[name].as_str().unwrap());
        assert_eq!(field("activated_secret"), ECC_KAT_SECRET);
        let ek = ecc_ek(curve, &field("ek_point"));
        let challenge =
            make_credential(&ek, &field("ak_name"), &ECC_KAT_SECRET, &mut Elevens).unwrap();
        assert_eq!(
            challenge.credential_blob.0,
            field("credential_blob"),
            "{curve}"
        );
        assert_eq!(
            challenge.encrypted_secret.0,
            field("encrypted_secret"),
            "{curve}"
        );
    }
}

/// Step of `swtpm/make-ecc-kat.sh`: the credential for
/// `$HOLDFAST_TPM_FIXTURE_DIR/{ek-<curve>.point, ak.name}`, as a tpm2-tools
/// credential file.
#[test]
#[ignore = "run by tests/data/tpm/swtpm/make-ecc-kat.sh"]
fn make_swtpm_ecc_credential() {
    let dir = PathBuf::from(std::env::var("HOLDFAST_TPM_FIXTURE_DIR").unwrap());
    let curve = std::env::var("HOLDFAST_TPM_CURVE").unwrap();
    let point = std::fs::read(dir.join(format!("ek-{curve}.point"))).unwrap();
    let name = std::fs::read(dir.join("ak.name")).unwrap();
    let challenge = make_credential(
        &ecc_ek(&curve, &point),
        &name,
        &ECC_KAT_SECRET,
        &mut Elevens,
    )
    .unwrap();
    let mut file = vec![0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1];
    for part in [&challenge.credential_blob, &challenge.encrypted_secret] {
        file.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
        file.extend_from_slice(part);
    }
    std::fs::write(dir.join(format!("cred-{curve}.bin")), file).unwrap();
}
