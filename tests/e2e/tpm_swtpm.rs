//! TPM enrollment end to end, against a software TPM (swtpm) with EK
//! certificates from a private local CA, and an issuer that trusts that CA
//! (`attestation.tpm_roots`) and refuses software keys.
//!
//! - A key created inside the TPM is enrolled through the SDK (credential
//!   activation, `TPM2_Certify` over the challenge), gets a token with a
//!   client assertion and DPoP proofs signed inside the TPM, and passes a
//!   verifier that follows the issuer's feed; the device record carries the
//!   attested facts (manufacturer, model, EK fingerprint, …), through the
//!   admin API too.
//! - Each weakened key and forged piece of evidence is refused over HTTP
//!   with its status, `error`, an `error_description` naming what failed,
//!   and the audit record's `check`.
//!
//! Needs a running swtpm:
//!
//! ```text
//! source scripts/swtpm.sh && swtpm_start "$(mktemp -d)"
//! cargo nextest run -p holdfast-tests swtpm
//! swtpm_stop
//! ```
//!
//! Every test here has `swtpm` in its path (this module's name): nextest runs
//! them one at a time (`.config/nextest.toml`), since the simulator serves
//! one connection at a time; under `cargo test` a lock here does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use holdfast_client::evidence::TpmEnrollment;
use holdfast_client::{EnrollRequest, enroll};
use holdfast_hw::attestation::evidence::{
    Bytes, TpmActivationChallenge, TpmActivationRequest, TpmEvidence,
};
use holdfast_hw::tpm::testing::{
    duplicable_key, finish_with_other_ak, flush_transient_objects, restricted_key, sha256_name,
    software_origin_key,
};
use holdfast_hw::tpm::{EkKind, Tpm, TpmAttestor, TpmConfig, TpmError, TpmKey};
use holdfast_hw::{KeyKind, SoftwareKey};
use holdfast_proto::Signer;
use holdfast_server::enrollment::bootstrap_admin;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, MutexGuard};

use crate::support::enrollment::{
    assert_enrollment_refused, assert_hardware_session, denied, device_code, fact, fixture_env,
    post_challenge,
};
use crate::support::{Refusal, Server};

/// One simulator, one connection at a time (for `cargo test`, which runs
/// the tests of a binary on parallel threads).
static SIMULATOR: Mutex<()> = Mutex::const_new(());

/// The swtpm's environment variable `name`.
fn env(name: &str) -> String {
    fixture_env(name, "a software TPM", "swtpm")
}

/// The swtpm's TCTI.
fn tcti() -> String {
    env("HOLDFAST_TEST_TPM_TCTI")
}

/// The swtpm's EK CA certificates (root and issuing CA), PEM.
fn ek_ca() -> PathBuf {
    PathBuf::from(env("HOLDFAST_TEST_TPM_EK_CA"))
}

/// Test data of the `hw` crate.
fn hw_data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hw/tests/data/tpm")
        .join(path)
}

/// Exclusive use of the simulator, connected, with no objects left over by
/// an earlier (possibly killed) test, and a directory for key files.
struct Swtpm {
    tpm: Tpm,
    dir: tempfile::TempDir,
    _guard: MutexGuard<'static, ()>,
}

impl Swtpm {
    async fn open() -> Self {
        let guard = SIMULATOR.lock().await;
        let tpm = Tpm::open(&TpmConfig::new(tcti())).expect("connect to swtpm");
        flush_transient_objects(&tpm).unwrap();
        Self {
            tpm,
            dir: tempfile::tempdir().unwrap(),
            _guard: guard,
        }
    }

    /// A new device key, the way `holdfast enroll --tpm` makes one.
    fn device_key(&self) -> TpmKey {
        self.tpm
            .create_key(&self.dir.path().join("device.tpmkey"))
            .unwrap()
    }
}

/// An issuer that trusts the EK certificates of `roots` only, and no
/// software keys.
async fn tpm_issuer(roots: Vec<PathBuf>) -> Server {
    Server::start_attesting(|c| c.attestation.tpm_roots = roots).await
}

/// A challenge with a credential activation for `request`.
async fn tpm_challenge(
    server: &Server,
    request: &TpmActivationRequest,
) -> (String, TpmActivationChallenge) {
    let answer = post_challenge(server, Some(json!({ "tpm": request })))
        .await
        .unwrap();
    let challenge = answer["challenge"].as_str().unwrap().to_owned();
    let activation = serde_json::from_value(answer["tpm"].clone()).unwrap();
    (challenge, activation)
}

/// One run of the ceremony by hand: what was sent and answered, and the
/// evidence the TPM produced.
struct Attested {
    request: TpmActivationRequest,
    challenge: String,
    evidence: TpmEvidence,
}

/// Step 1 over HTTP, step 2 in the TPM: honest evidence for `key`.
async fn attest(server: &Server, key: &TpmKey, attestor: TpmAttestor) -> Attested {
    let (request, pending) = attestor.begin(key).unwrap();
    let (challenge, activation) = tpm_challenge(server, &request).await;
    let evidence = pending.finish(key, &challenge, &activation).unwrap();
    Attested {
        request,
        challenge,
        evidence,
    }
}

/// `POST /enroll` of `signer`'s key as a TPM key with `evidence`, the proof
/// signed by `signer` over `challenge`.
async fn post_enroll(
    server: &Server,
    code: &str,
    signer: &dyn Signer,
    challenge: &str,
    evidence: &TpmEvidence,
) -> Result<Value, Refusal> {
    crate::support::enrollment::post_enroll(server, code, "tpm", signer, challenge, evidence).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn enrolls_a_tpm_key_that_gets_tokens_and_passes_the_verifier() {
    let swtpm = Swtpm::open().await;
    let server = tpm_issuer(vec![ek_ca()]).await;
    // The first admin, bootstrapped for the kinds the policy accepts: TPM.
    let code = bootstrap_admin(&server.issuer.state, "root", server.now()).unwrap();
    let key = Arc::new(swtpm.device_key());
    let jkt = key.public_jwk().thumbprint();

    // Enrollment through the SDK: the EK certificate and an AK go with the
    // challenge request; the TPM activates the credential and certifies the
    // key over the challenge.
    let enrolled = enroll(
        &reqwest::Client::new(),
        &server.url,
        EnrollRequest {
            code: &code,
            kind: "tpm",
            name: "swtpm-laptop",
            signer: key.as_ref(),
            evidence: &mut TpmEnrollment::new(Arc::clone(&key)),
        },
        server.now(),
    )
    .await
    .unwrap();
    assert_eq!(enrolled.kind, "tpm");
    assert_eq!(enrolled.jkt, jkt.as_str());

    // The device record carries what the evidence proved.
    let device = server.device(&jkt);
    assert_eq!(device.id.as_str(), enrolled.client_id);
    assert_eq!(device.kind, KeyKind::Tpm);
    assert_eq!(device.attestation.kind, "tpm");
    let ek = swtpm.tpm.ek_certificate(EkKind::Rsa2048).unwrap().unwrap();
    let details = &device.attestation.details;
    let fact = |name: &str| fact(&device, name);
    assert_eq!(fact("tpm_manufacturer"), "00001014");
    assert_eq!(fact("tpm_manufacturer_name"), "IBM");
    assert_eq!(fact("tpm_model"), "swtpm");
    assert!(fact("tpm_firmware").starts_with("id:"), "{details:?}");
    assert_eq!(fact("ek_fingerprint_sha256"), hex(&Sha256::digest(&ek)));
    assert_eq!(fact("ek_key"), "RSA-2048");
    assert!(fact("ek_anchor").contains("swtpm-localca"), "{details:?}");
    assert_eq!(fact("key_name"), hex(&sha256_name(key.public_area())));
    assert_eq!(
        fact("key_attributes"),
        "fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign"
    );
    let audited = server.audited("device_enrolled").pop().unwrap();
    assert_eq!(audited.entry.details["kind"], "tpm");
    assert_eq!(audited.entry.details["jkt"], jkt.as_str());

    // Tokens: the client assertion and every DPoP proof are signed inside
    // the TPM; a protected resource behind the verifier accepts them.
    let signer: Arc<dyn Signer> = key.clone();
    let client = assert_hardware_session(&server, &enrolled, signer).await;

    // The admin API shows the attested facts (the TPM device is the admin).
    let response = client
        .request(
            Method::GET,
            &format!("{}/admin/devices/{}", server.url, enrolled.client_id),
            HeaderMap::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let shown: Value = response.json().await.unwrap();
    assert_eq!(shown["kind"], "tpm");
    assert_eq!(shown["attestation"]["kind"], "tpm");
    assert_eq!(
        shown["attestation"]["details"],
        Value::Object(details.clone())
    );
}

/// Enrolls a weakened key made by `make` with honest evidence: the TPM
/// certifies exactly what the key is, and only the issuer's attribute
/// checks stand in the way.
async fn refuses_weakened_key(
    make: fn(&Tpm) -> Result<TpmKey, TpmError>,
    check: &str,
    description: &str,
) {
    let swtpm = Swtpm::open().await;
    let server = tpm_issuer(vec![ek_ca()]).await;
    let code = device_code(&server, "alice", KeyKind::Tpm);
    let key = make(&swtpm.tpm).unwrap();
    let attested = attest(&server, &key, TpmAttestor::new()).await;
    let got = post_enroll(
        &server,
        &code,
        &key,
        &attested.challenge,
        &attested.evidence,
    )
    .await;
    assert_enrollment_refused(&server, got, denied(check), description);
}

#[tokio::test]
async fn refuses_a_duplicable_key() {
    refuses_weakened_key(
        duplicable_key,
        "key_duplicable",
        "tpm attestation refused: the certified key is duplicable: fixedTPM is not set",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_software_origin_key() {
    refuses_weakened_key(
        software_origin_key,
        "key_not_tpm_generated",
        "tpm attestation refused: the certified key was not generated inside the TPM: \
         sensitiveDataOrigin is not set",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_restricted_key() {
    refuses_weakened_key(
        restricted_key,
        "key_restricted",
        "tpm attestation refused: the certified key is restricted: it cannot sign DPoP proofs",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_certification_over_another_challenge() {
    let swtpm = Swtpm::open().await;
    let server = tpm_issuer(vec![ek_ca()]).await;
    let code = device_code(&server, "alice", KeyKind::Tpm);
    let key = swtpm.device_key();
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    let (challenge, activation) = tpm_challenge(&server, &request).await;
    // Certified over another (real, live) challenge than the one the proof
    // and the activation are for.
    let other = post_challenge(&server, None).await.unwrap();
    let other = other["challenge"].as_str().unwrap();
    let evidence = pending.finish(&key, other, &activation).unwrap();
    let got = post_enroll(&server, &code, &key, &challenge, &evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("nonce_mismatch"),
        "tpm attestation refused: the certify nonce does not match the enrollment challenge",
    );
}

#[tokio::test]
async fn refuses_a_certification_by_an_ak_that_was_never_activated() {
    let swtpm = Swtpm::open().await;
    let server = tpm_issuer(vec![ek_ca()]).await;
    let code = device_code(&server, "alice", KeyKind::Tpm);
    let key = swtpm.device_key();
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    let (challenge, activation) = tpm_challenge(&server, &request).await;
    // The activated AK recovers the secret; a second AK, never activated,
    // signs TPM2_Certify.
    let (mut evidence, other_ak) =
        finish_with_other_ak(pending, &key, &challenge, &activation).unwrap();

    // Presented as the activated AK: its signature does not verify.
    let got = post_enroll(&server, &code, &key, &challenge, &evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("attest_signature_invalid"),
        "tpm attestation refused: TPMS_ATTEST signature does not verify with the attestation key: …",
    );

    // Presented as itself: it is not the AK the credential was made for.
    evidence.ak_public = Bytes(other_ak);
    let got = post_enroll(&server, &code, &key, &challenge, &evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("ak_name_mismatch"),
        "tpm attestation refused: the attestation key differs from the one the activation \
         challenge was made for",
    );
}

#[tokio::test]
async fn refuses_tampered_and_transplanted_evidence_then_accepts_the_honest_one() {
    let swtpm = Swtpm::open().await;
    let server = tpm_issuer(vec![ek_ca()]).await;
    let code = device_code(&server, "alice", KeyKind::Tpm);
    let key = swtpm.device_key();
    // The ECC P-384 EK: the issuer's MakeCredential is ECDH here.
    let honest = attest(&server, &key, TpmAttestor::with_ek(EkKind::EccP384)).await;
    let challenge = honest.challenge.as_str();

    // Another AK's signature (over its own certification of the same key).
    let other = {
        let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
        let (challenge, activation) = tpm_challenge(&server, &request).await;
        finish_with_other_ak(pending, &key, &challenge, &activation)
            .unwrap()
            .0
    };
    let signature_invalid = "tpm attestation refused: TPMS_ATTEST signature does not verify with the attestation key: …";
    // Each change to the honest evidence (the other AK's is at hand), the
    // check that refuses it and its description.
    type Tamper = fn(&mut TpmEvidence, &TpmEvidence);
    let tampered: [(&str, Tamper, &str, &str); 5] = [
        (
            "another AK's signature",
            |evidence, other| evidence.certify_signature = other.certify_signature.clone(),
            "attest_signature_invalid",
            signature_invalid,
        ),
        (
            "one bit of TPMS_ATTEST flipped (its last byte: the certified name)",
            |evidence, _| *evidence.certify_info.0.last_mut().unwrap() ^= 0x01,
            "attest_signature_invalid",
            signature_invalid,
        ),
        (
            "its magic changed: not a structure the TPM made",
            |evidence, _| evidence.certify_info.0[0] ^= 0x01,
            "attest_malformed",
            "tpm attestation refused: TPMS_ATTEST is malformed: …",
        ),
        (
            "another public area than the one certified (one byte of the point)",
            |evidence, _| *evidence.key_public.0.last_mut().unwrap() ^= 0x01,
            "certified_name_mismatch",
            "tpm attestation refused: TPMS_ATTEST certifies another object: the name is not \
             nameAlg ‖ H(key public area)",
        ),
        (
            "a guessed secret",
            |evidence, _| evidence.activated_secret = Bytes(vec![0; 32]),
            "ak_not_activated",
            "tpm attestation refused: the attestation key was never activated: the credential \
             secret does not match",
        ),
    ];
    for (what, tamper, check, description) in tampered {
        println!("tampered: {what}");
        let mut evidence = honest.evidence.clone();
        tamper(&mut evidence, &other);
        let got = post_enroll(&server, &code, &key, challenge, &evidence).await;
        assert_enrollment_refused(&server, got, denied(check), description);
    }

    // The TPM key's evidence, with a software key's proof.
    let software = SoftwareKey::generate().unwrap();
    let got = post_enroll(&server, &code, &software, challenge, &honest.evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("key_mismatch"),
        "tpm attestation refused: the certified key is not the key being enrolled (JWK mismatch)",
    );

    // None of this burned the challenge or the code: the honest evidence
    // enrolls, once.
    let enrolled = post_enroll(&server, &code, &key, challenge, &honest.evidence)
        .await
        .unwrap();
    assert_eq!(enrolled["kind"], "tpm");
    let device = server.issuer.state.store.devices().unwrap().pop().unwrap();
    assert_eq!(device.attestation.details["ek_key"], "ECC NIST P-384");
    let again = post_enroll(&server, &code, &key, challenge, &honest.evidence).await;
    assert_eq!(again.unwrap_err().error, "invalid_grant");
}

#[tokio::test]
async fn refuses_evidence_moved_to_another_challenge() {
    let swtpm = Swtpm::open().await;
    let server = tpm_issuer(vec![ek_ca()]).await;
    let code = device_code(&server, "alice", KeyKind::Tpm);
    let key = swtpm.device_key();
    let honest = attest(&server, &key, TpmAttestor::new()).await;

    // A challenge without credential activation.
    let plain = post_challenge(&server, None).await.unwrap();
    let plain = plain["challenge"].as_str().unwrap();
    let got = post_enroll(&server, &code, &key, plain, &honest.evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "tpm_activation_missing",
        ),
        "this challenge was issued without a TPM credential activation: …",
    );

    // A new activation for the same EK and AK: the secret recovered from
    // the first one does not answer it.
    let (replayed, _) = tpm_challenge(&server, &honest.request).await;
    let got = post_enroll(&server, &code, &key, &replayed, &honest.evidence).await;
    assert_enrollment_refused(
        &server,
        got,
        denied("ak_not_activated"),
        "tpm attestation refused: the attestation key was never activated: the credential \
         secret does not match",
    );
}

#[tokio::test]
async fn refuses_an_ek_certificate_from_an_untrusted_ca() {
    let swtpm = Swtpm::open().await;
    let key = swtpm.device_key();
    let (request, pending) = TpmAttestor::new().begin(&key).unwrap();
    drop(pending);

    // A real TPM vendor's root: the swtpm's EK does not chain to it.
    let vendor = tpm_issuer(vec![hw_data("ek/stmicro/stm-tpm-ek-root-ca.pem")]).await;
    let got = post_challenge(&vendor, Some(json!({ "tpm": request }))).await;
    assert_enrollment_refused(
        &vendor,
        got,
        denied("ek_untrusted"),
        "tpm attestation refused: the EK certificate does not chain to a configured TPM root: …",
    );

    // A CA with the same name as the swtpm's issuing CA, from another run:
    // the names match, the signature does not.
    let look_alike = tpm_issuer(vec![hw_data("swtpm/swtpm-localca.pem")]).await;
    let got = post_challenge(&look_alike, Some(json!({ "tpm": request }))).await;
    assert_enrollment_refused(
        &look_alike,
        got,
        denied("ek_chain_signature_invalid"),
        "tpm attestation refused: the EK chain is broken at …",
    );
}
