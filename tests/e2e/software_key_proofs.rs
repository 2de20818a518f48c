//! A software key on disk (hw) signs proofs that the verifier (proto)
//! accepts once, bound to the key's thumbprint.

use getrandom::SysRng;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    AccessToken, Htu, MemoryReplayGuard, NonceCheck, NonceIssuer, NonceSecret, ProofCheck,
    ProofError, ProofRequest, ProofVerifier, Signer as _, UnixTime, build_proof,
};

const NOW: u64 = 1_764_000_000;

#[test]
fn key_from_disk_signs_proofs_bound_to_its_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.pem");
    SoftwareKey::generate().unwrap().save_new(&path).unwrap();
    let key = SoftwareKey::load(&path).unwrap();

    let htu = Htu::parse("https://api.example.com/orders").unwrap();
    let token = AccessToken::new("token-bound-to-agent");
    let nonces = NonceIssuer::new(NonceSecret::new(&[9; 32]).unwrap(), [], 60, 3).unwrap();
    let nonce = nonces.issue(UnixTime::from_secs(NOW));
    let request = ProofRequest {
        htm: "GET",
        htu: &htu,
        nonce: Some(&nonce),
        access_token: Some(&token),
    };
    let proof = build_proof(&key, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap();

    let jkt = key.public_jwk().thumbprint();
    let check = ProofCheck {
        htm: "GET",
        htu: &htu,
        access_token: Some(token.expose()),
        bound_jkt: Some(&jkt),
        nonce: NonceCheck::Issuer(&nonces),
        now: UnixTime::from_secs(NOW + 2),
    };
    let verifier = ProofVerifier::default();
    let replay = MemoryReplayGuard::default();
    let verified = verifier.verify(&proof, &check, &replay).unwrap();
    assert_eq!(verified.jkt(), &jkt);
    assert_eq!(
        verifier.verify(&proof, &check, &replay),
        Err(ProofError::JtiReplayed)
    );

    // Another software key cannot use the token.
    let thief = SoftwareKey::generate().unwrap();
    let stolen = build_proof(&thief, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap();
    assert_eq!(
        verifier.verify(&stolen, &check, &replay),
        Err(ProofError::JktMismatch)
    );
}
