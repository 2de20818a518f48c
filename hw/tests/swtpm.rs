//! `TpmKey` and the TPM evidence producer against a software TPM.
//!
//! Needs a running swtpm with EK certificates:
//!
//! ```text
//! source scripts/swtpm.sh && swtpm_start "$(mktemp -d)"
//! cargo test -p holdfast-hw --features tpm --test swtpm
//! swtpm_stop
//! ```
//!
//! Every test name contains `swtpm`: nextest runs those one at a time (one
//! simulator, one connection at a time); under `cargo test` a lock here does.
#![cfg(feature = "tpm")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use der::Decode as _;
use holdfast_hw::KeyKind;
use holdfast_hw::attestation::evidence::{TpmEvidence, certify_nonce};
use holdfast_hw::private_file::{self, PrivateFileError};
use holdfast_hw::testing::signer_conformance;
use holdfast_hw::tpm::testing::{
    duplicable_key, finish_with_other_ak, flush_transient_objects, make_credential, restricted_key,
    sha256_name, software_origin_key,
};
use holdfast_hw::tpm::{EkKind, Tpm, TpmAttestor, TpmConfig, TpmError, TpmKey};
use holdfast_proto::{Alg, Jwk, Signer, VerifyingKey};
use tss_esapi::interface_types::structure_tags::AttestationType;
use tss_esapi::structures::{AttestInfo, Public, Signature};
use tss_esapi::traits::UnMarshall as _;
use x509_cert::Certificate;

static SIMULATOR: Mutex<()> = Mutex::new(());

/// The simulator's TCTI, or a failure that says how to start one.
fn tcti() -> String {
    std::env::var("HOLDFAST_TEST_TPM_TCTI").unwrap_or_else(|_| {
        panic!(
            "HOLDFAST_TEST_TPM_TCTI is not set: start a software TPM first with \
             `source scripts/swtpm.sh && swtpm_start \"$(mktemp -d)\"` (then `swtpm_stop`)"
        )
    })
}

/// Exclusive use of the simulator, with no objects left over from an
/// earlier (possibly killed) test.
fn simulator() -> (MutexGuard<'static, ()>, Tpm) {
    let guard = SIMULATOR.lock().unwrap_or_else(PoisonError::into_inner);
    let tpm = Tpm::open(&TpmConfig::new(tcti())).expect("connect to swtpm");
    flush_transient_objects(&tpm).unwrap();
    (guard, tpm)
}

fn verify(key: &dyn Signer, message: &[u8], signature: &[u8]) {
    VerifyingKey::new(key.public_jwk(), Alg::Es256)
        .unwrap()
        .verify(message, signature)
        .expect("the TPM signature verifies with the key's JWK");
}

#[test]
fn swtpm_key_signs_and_verifies_with_its_jwk() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    assert_eq!(key.kind(), KeyKind::Tpm);
    assert!(matches!(key.public_jwk(), Jwk::Ec(_)));
    for i in 0..20 {
        let message = format!("eyJhbGciOiJFUzI1NiJ9.message-{i}");
        let signature = key.try_sign(message.as_bytes()).unwrap();
        assert_eq!(signature.len(), 64);
        verify(&key, message.as_bytes(), &signature);
    }
    assert_eq!(
        format!("{key:?}"),
        format!("TpmKey({})", key.public_jwk().thumbprint())
    );
}

#[test]
fn swtpm_key_passes_signer_conformance() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    signer_conformance(&key);
}

#[test]
fn swtpm_key_reloads_from_its_file_and_signs_again() {
    let (guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.tpmkey");
    let jwk = {
        let key = tpm.create_key(&path).unwrap();
        key.public_jwk().clone()
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let reloaded = tpm.load_key(&path).unwrap();
    assert_eq!(reloaded.public_jwk(), &jwk);
    let signature = reloaded.try_sign(b"after a restart").unwrap();
    verify(&reloaded, b"after a restart", &signature);
    drop(reloaded);

    // Through the configuration, on a connection of its own.
    drop(tpm);
    let key = TpmKey::load(&TpmConfig::new(tcti()), &path).unwrap();
    assert_eq!(key.public_jwk(), &jwk);
    drop(key);
    drop(guard);
}

#[test]
fn swtpm_never_overwrites_a_key_file() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.tpmkey");
    drop(tpm.create_key(&path).unwrap());
    let before = fs::read(&path).unwrap();
    let err = tpm.create_key(&path).unwrap_err();
    assert!(
        matches!(err, TpmError::File(PrivateFileError::Exists(_))),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn swtpm_refuses_damaged_and_foreign_key_files() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.tpmkey");
    drop(tpm.create_key(&path).unwrap());
    let good = fs::read(&path).unwrap();

    // The wrapped private area altered: the TPM's integrity check fails, as
    // for a file made by another TPM.
    let mut foreign = good.clone();
    *foreign.last_mut().unwrap() ^= 0x01;
    write_0600(&path, &foreign);
    let err = tpm.load_key(&path).unwrap_err();
    assert!(matches!(err, TpmError::KeyFromAnotherTpm { .. }), "{err}");
    assert!(err.to_string().contains("another TPM"), "{err}");

    write_0600(&path, b"-----BEGIN PRIVATE KEY-----\n");
    let err = tpm.load_key(&path).unwrap_err();
    assert!(matches!(err, TpmError::MalformedKeyFile { .. }), "{err}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        write_0600(&path, &good);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = tpm.load_key(&path).unwrap_err();
        assert!(
            matches!(
                err,
                TpmError::File(PrivateFileError::InsecurePermissions { mode: 0o644, .. })
            ),
            "{err}"
        );
    }
}

/// Replaces the key file at `path` with `bytes`, mode 0600.
fn write_0600(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    private_file::write_new(path, bytes).unwrap();
}

#[test]
fn swtpm_ek_certificates_are_read_and_parse() {
    let (_guard, tpm) = simulator();
    let ca_pem = std::env::var("HOLDFAST_TEST_TPM_EK_CA")
        .map(fs::read)
        .expect("HOLDFAST_TEST_TPM_EK_CA is set by swtpm_start")
        .unwrap();
    let cas = pem_certificates(&String::from_utf8(ca_pem).unwrap());
    assert!(!cas.is_empty());

    // swtpm_setup provisions RSA-2048 and ECC P-384 EKs, no P-256.
    assert_eq!(tpm.ek_certificate(EkKind::EccP256).unwrap(), None);
    for kind in [EkKind::Rsa2048, EkKind::EccP384] {
        let der = tpm
            .ek_certificate(kind)
            .unwrap()
            .expect("swtpm has this EK certificate");
        let certificate = Certificate::from_der(&der).expect("a DER X.509 certificate");
        let tbs = certificate.tbs_certificate();
        assert!(
            cas.iter()
                .any(|ca| ca.tbs_certificate().subject() == tbs.issuer()),
            "{kind:?}: the EK certificate is issued by the local CA"
        );
        let eku = tbs
            .extensions()
            .into_iter()
            .flatten()
            .find(|ext| ext.extn_id.to_string() == "2.5.29.37")
            .expect("an extended key usage");
        let eku =
            x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).unwrap();
        assert!(
            eku.0.iter().any(|oid| oid.to_string() == "2.23.133.8.1"),
            "{kind:?}: EKU tcg-kp-EKCertificate"
        );
    }
}

/// Every CERTIFICATE block of a PEM file.
fn pem_certificates(pem: &str) -> Vec<Certificate> {
    use base64ct::{Base64, Encoding as _};
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body = block.split("-----END CERTIFICATE-----").next().unwrap();
            let body: String = body.split_whitespace().collect();
            Certificate::from_der(&Base64::decode_vec(&body).unwrap()).unwrap()
        })
        .collect()
}

/// The AK's ECDSA signature over `certify_info`, checked in software.
fn certify_signature_verifies(ak_public: &[u8], evidence: &TpmEvidence) -> bool {
    let Public::Ecc { unique, .. } = Public::unmarshall(ak_public).unwrap() else {
        panic!("the AK is an ECC key");
    };
    let pad = |v: &[u8]| {
        let mut out = [0u8; 32];
        out[32 - v.len()..].copy_from_slice(v);
        out
    };
    let jwk = Jwk::p256(pad(unique.x().value()), pad(unique.y().value()));
    let Signature::EcDsa(signature) = Signature::unmarshall(&evidence.certify_signature).unwrap()
    else {
        panic!("the AK signs with ECDSA");
    };
    let mut rs = pad(signature.signature_r().value()).to_vec();
    rs.extend_from_slice(&pad(signature.signature_s().value()));
    VerifyingKey::new(&jwk, Alg::Es256)
        .unwrap()
        .verify(&evidence.certify_info, &rs)
        .is_ok()
}

/// The full device side of an enrollment, with the TPM making the challenge.
fn attest_round_trip(tpm: &Tpm, key: &TpmKey, attestor: TpmAttestor) -> TpmEvidence {
    let (request, pending) = attestor.begin(key).unwrap();
    assert!(Certificate::from_der(&request.ek_certificate).is_ok());
    assert_eq!(pending.ak_public(), &request.ak_public[..]);

    // The AK: restricted ECDSA signing key, fixed to this TPM.
    let ak = Public::unmarshall(&request.ak_public).unwrap();
    let attributes = ak.object_attributes();
    assert!(attributes.restricted() && attributes.sign_encrypt() && !attributes.decrypt());
    assert!(attributes.fixed_tpm() && attributes.fixed_parent());
    assert!(attributes.sensitive_data_origin());

    let secret = b"issuer secret: 32 bytes long....";
    let activation = make_credential(&pending, &request.ak_public, secret).unwrap();
    let challenge = "enrollment-challenge-0123456789";
    let evidence = pending.finish(key, challenge, &activation).unwrap();
    assert_eq!(&evidence.activated_secret[..], secret);
    assert_eq!(evidence.ek_certificate, request.ek_certificate);
    assert_eq!(evidence.ak_public, request.ak_public);
    assert_eq!(&evidence.key_public[..], key.public_area());

    // TPMS_ATTEST: a certification of this key over the nonce.
    let attest = tss_esapi::structures::Attest::unmarshall(&evidence.certify_info).unwrap();
    assert_eq!(attest.attestation_type(), AttestationType::Certify);
    assert_eq!(attest.extra_data().value(), certify_nonce(challenge));
    let AttestInfo::Certify { info } = attest.attested() else {
        panic!("certify info");
    };
    assert_eq!(info.name().value(), sha256_name(key.public_area()));
    // The bytes sent are the bytes the AK signed.
    assert!(certify_signature_verifies(&request.ak_public, &evidence));
    let _ = tpm;
    evidence
}

#[test]
fn swtpm_attestation_round_trip_with_the_rsa_ek() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    // The default choice is the RSA EK.
    let evidence = attest_round_trip(&tpm, &key, TpmAttestor::new());
    assert_eq!(
        Some(evidence.ek_certificate.0),
        tpm.ek_certificate(EkKind::Rsa2048).unwrap()
    );
    // The key still signs afterwards.
    let signature = key.try_sign(b"after enrollment").unwrap();
    verify(&key, b"after enrollment", &signature);
}

#[test]
fn swtpm_attestation_round_trip_with_the_ecc_p384_ek() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    let evidence = attest_round_trip(&tpm, &key, TpmAttestor::with_ek(EkKind::EccP384));
    assert_eq!(
        Some(evidence.ek_certificate.0),
        tpm.ek_certificate(EkKind::EccP384).unwrap()
    );
}

#[test]
fn swtpm_attestation_without_that_ek_certificate_is_refused() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    let err = TpmAttestor::with_ek(EkKind::EccP256)
        .begin(&key)
        .unwrap_err();
    assert!(matches!(err, TpmError::NoEkCertificate { .. }), "{err}");
    assert!(err.to_string().contains("0x01c0000a"), "{err}");
}

#[test]
fn swtpm_activation_for_another_ak_is_refused() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    // A credential bound to another AK's name: the TPM keeps the secret.
    let mut other_ak = request.ak_public.0.clone();
    *other_ak.last_mut().unwrap() ^= 0x01;
    let activation = make_credential(&pending, &other_ak, &[7; 32]).unwrap();
    let err = pending.finish(&key, "challenge", &activation).unwrap_err();
    assert!(matches!(err, TpmError::ActivationRefused { .. }), "{err}");
}

#[test]
fn swtpm_malformed_activation_is_refused() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    let mut activation = make_credential(&pending, &request.ak_public, &[7; 32]).unwrap();
    activation.encrypted_secret.0.clear();
    let err = pending.finish(&key, "challenge", &activation).unwrap_err();
    assert!(matches!(err, TpmError::MalformedChallenge(_)), "{err}");
    // The dropped attestation flushed its EK and AK: a new one has room.
    let (_, pending) = TpmAttestor::new().begin(&key).unwrap();
    drop(pending);
}

#[test]
fn swtpm_certify_by_an_ak_that_was_never_activated() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    let activation = make_credential(&pending, &request.ak_public, &[9; 32]).unwrap();
    let (evidence, other_ak) =
        finish_with_other_ak(pending, &key, "challenge", &activation).unwrap();
    assert_eq!(&evidence.activated_secret[..], &[9; 32]);
    assert_eq!(evidence.ak_public, request.ak_public);
    assert_ne!(other_ak, request.ak_public.0);
    // Signed by the other AK, not by the activated one.
    assert!(!certify_signature_verifies(&request.ak_public, &evidence));
    assert!(certify_signature_verifies(&other_ak, &evidence));
}

#[test]
fn swtpm_weakened_keys_can_be_made_signed_with_and_certified() {
    let (_guard, tpm) = simulator();
    type Make = fn(&Tpm) -> Result<TpmKey, TpmError>;
    let cases: [(&str, Make); 3] = [
        ("duplicable", duplicable_key),
        ("software origin", software_origin_key),
        ("restricted", restricted_key),
    ];
    for (name, make) in cases {
        let key = make(&tpm).unwrap_or_else(|e| panic!("{name}: {e}"));
        let signature = key.try_sign(b"eyJhbGciOiJFUzI1NiJ9.weak").unwrap();
        verify(&key, b"eyJhbGciOiJFUzI1NiJ9.weak", &signature);

        let public = Public::unmarshall(key.public_area()).unwrap();
        let attributes = public.object_attributes();
        match name {
            "duplicable" => {
                assert!(!attributes.fixed_tpm() && !attributes.fixed_parent());
                assert!(attributes.sensitive_data_origin() && !attributes.restricted());
            }
            "software origin" => {
                assert!(!attributes.sensitive_data_origin());
                assert!(!attributes.restricted());
            }
            _ => {
                assert!(attributes.restricted());
                assert!(attributes.fixed_tpm() && attributes.fixed_parent());
                assert!(attributes.sensitive_data_origin());
            }
        }
        // The evidence carries the weakened public area, correctly certified:
        // only the issuer's attribute checks can refuse it.
        let evidence = attest_round_trip(&tpm, &key, TpmAttestor::new());
        assert_eq!(&evidence.key_public[..], key.public_area(), "{name}");
    }
}

#[test]
fn swtpm_unreachable_tpm_gives_a_clear_error() {
    // Nothing listens on this port: a socket bound and closed just now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = TpmConfig::new(format!("swtpm:host=127.0.0.1,port={port}"));
    let err = Tpm::open(&config).unwrap_err();
    assert!(matches!(err, TpmError::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&config.tcti), "{message}");
    assert!(
        message.starts_with("cannot connect to the TPM"),
        "{message}"
    );

    let err = TpmKey::load(
        &TpmConfig::new("device:/nonexistent/tpmrm0"),
        Path::new("k"),
    )
    .unwrap_err();
    assert!(matches!(err, TpmError::NoDevice { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/tpmrm0"), "{err}");

    let err = Tpm::open(&TpmConfig::new("carrier-pigeon:")).unwrap_err();
    assert!(matches!(err, TpmError::InvalidTcti { .. }), "{err}");
    assert_eq!(TpmConfig::default().tcti, "device:/dev/tpmrm0");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Not an assertion: prints the costs for docs/performance.md
/// (`--nocapture` to see them).
#[test]
fn swtpm_measure_key_creation_and_signing() {
    let (_guard, tpm) = simulator();
    let dir = tempfile::tempdir().unwrap();

    let mut create = Vec::new();
    for i in 0..20 {
        let path = dir.path().join(format!("k{i}.tpmkey"));
        let start = Instant::now();
        let key = tpm.create_key(&path).unwrap();
        create.push(start.elapsed());
        drop(key);
    }
    let path = dir.path().join("k0.tpmkey");
    let mut load = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let key = tpm.load_key(&path).unwrap();
        load.push(start.elapsed());
        drop(key);
    }
    let key = tpm.load_key(&path).unwrap();
    let message = [b'x'; 400];
    let mut sign = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let signature = key.try_sign(&message).unwrap();
        sign.push(start.elapsed());
        assert_eq!(signature.len(), 64);
    }
    let mut attest = Vec::new();
    for attestor in [TpmAttestor::new(), TpmAttestor::with_ek(EkKind::EccP384)] {
        let start = Instant::now();
        let (request, pending) = attestor.begin(&key).unwrap();
        let begin = start.elapsed();
        let activation = make_credential(&pending, &request.ak_public, &[1; 32]).unwrap();
        let start = Instant::now();
        pending.finish(&key, "challenge", &activation).unwrap();
        attest.push(format!(
            "{:?}: begin {:?}, finish {:?}",
            attestor,
            begin,
            start.elapsed()
        ));
    }
    println!(
        "swtpm: key creation median {:?} (n=20), key load median {:?} (n=20), \
         sign median {:?} (n=200); attestation {}",
        median(create),
        median(load),
        median(sign),
        attest.join("; ")
    );
}

#[test]
fn swtpm_types_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<TpmKey>();
    send_sync::<Tpm>();
    send::<holdfast_hw::tpm::PendingTpm>();
    send::<TpmError>();
}

/// The device side against the issuer's verifier (`attestation::tpm`): the
/// software `MakeCredential` is answered by this TPM, the evidence verifies,
/// and the weakened keys and the never-activated AK are refused.
#[test]
fn swtpm_evidence_passes_the_issuer_verifier_and_weakened_keys_do_not() {
    use holdfast_hw::attestation::tpm::{TpmTrust, begin_activation, verify_evidence};
    use holdfast_proto::{Clock as _, SystemClock};

    let (_guard, tpm) = simulator();
    let ca = std::env::var("HOLDFAST_TEST_TPM_EK_CA").expect("set by swtpm_start");
    let trust = TpmTrust::from_pem(&fs::read_to_string(ca).unwrap(), "").unwrap();
    let now = SystemClock.now();
    let challenge = "issuer-challenge-for-this-enrollment";
    let nonce = certify_nonce(challenge);

    let dir = tempfile::tempdir().unwrap();
    let key = tpm.create_key(&dir.path().join("device.tpmkey")).unwrap();
    for attestor in [TpmAttestor::new(), TpmAttestor::with_ek(EkKind::EccP384)] {
        let (request, pending) = attestor.begin(&key).unwrap();
        let (activation, issuer) = begin_activation(&request, &trust, now).unwrap();
        let evidence = pending.finish(&key, challenge, &activation).unwrap();
        verify_evidence(&evidence, &issuer, &trust, &nonce, key.public_jwk(), now)
            .unwrap_or_else(|e| panic!("{attestor:?}: {e}"));
    }

    // An AK that was never activated signs the certification.
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    let (activation, issuer) = begin_activation(&request, &trust, now).unwrap();
    let (evidence, _) = finish_with_other_ak(pending, &key, challenge, &activation).unwrap();
    let err =
        verify_evidence(&evidence, &issuer, &trust, &nonce, key.public_jwk(), now).unwrap_err();
    println!("never-activated AK: {err}");
    drop(key);

    type Make = fn(&Tpm) -> Result<TpmKey, TpmError>;
    let cases: [(&str, Make); 3] = [
        ("duplicable", duplicable_key),
        ("software origin", software_origin_key),
        ("restricted", restricted_key),
    ];
    for (name, make) in cases {
        let key = make(&tpm).unwrap();
        let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
        let (activation, issuer) = begin_activation(&request, &trust, now).unwrap();
        let evidence = pending.finish(&key, challenge, &activation).unwrap();
        let err = verify_evidence(&evidence, &issuer, &trust, &nonce, key.public_jwk(), now)
            .expect_err(name);
        println!("{name}: {err}");
    }
}
