//! Fuzz harnesses: one function per `cargo fuzz` target in `fuzz/`. The e2e
//! test `fuzz_corpus` runs the same functions over every committed corpus
//! file, so a regression is caught by `cargo test`, without the fuzzer.
//!
//! A harness takes arbitrary bytes, drives a parser or a check the way the
//! product does, and panics only when an invariant breaks: an input accepted
//! that must not be, a refusal that changed state, an error message that
//! echoes unbounded input, a result that changes when it must not. A refusal
//! is never a bug by itself.
//!
//! Random bytes never carry a valid signature, so the checks after the
//! signature would stay unexplored. Inputs that start with [`SIGNED`] or
//! [`SIGNED_HEADER`] are therefore signed by a fixed key before they are
//! checked: the fuzzer then explores claims, time windows, `ath`, nonces and
//! replay. Any other input is checked exactly as it arrives.

// A harness reports a broken invariant by panicking: that is what the fuzzer
// and the replay test detect.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod attestation;
mod har;
mod jose;
mod token_form;

use std::sync::LazyLock;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use holdfast_hw::SoftwareKey;
use holdfast_proto::Signer as _;

pub use attestation::{
    ATTESTATION_NOW, TEST_F9_PEM, TEST_SLOT_PEM, piv_chain, tpm_evidence, tpm_structures, x509_cert,
};
pub use har::har_scrub;
pub use jose::{
    AUDIENCE, EXACT_NONCE, ISSUER, ISSUER_KID, NOW, ProofFlags, RESOURCE_HTU, RFC_ACCESS_TOKEN,
    TOKEN_HTU, access_token, dpop_proof, jwk, nonce_issuer,
};
pub use token_form::{
    DEVICE_ID, FormOutcome, ISSUER_URL, TOKEN_ENDPOINT, token_form, token_form_body,
    token_form_outcome,
};

/// A harness: arbitrary bytes in, a panic when an invariant breaks.
pub type Harness = fn(&[u8]) -> Verdict;

/// What a harness made of its input. The replay test checks that each
/// corpus reaches both, so the checks behind a signature stay covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The input passed the target's main check: a proof, token, assertion,
    /// chain or evidence verified, a key, structure or certificate parsed,
    /// a HAR scrubbed.
    Accepted,
    /// Anything else, including input that is not even text or JSON.
    Refused,
}

impl Verdict {
    fn from(accepted: bool) -> Self {
        if accepted {
            Self::Accepted
        } else {
            Self::Refused
        }
    }
}

/// Every target: its name (the `fuzz/fuzz_targets/` file and the
/// `fuzz/corpus/` directory) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("dpop_proof", dpop_proof),
    ("jwk", jwk),
    ("token_form", token_form),
    ("har_scrub", har_scrub),
    ("access_token", access_token),
    ("tpm_structures", tpm_structures),
    ("x509_cert", x509_cert),
    ("piv_chain", piv_chain),
    ("tpm_evidence", tpm_evidence),
];

/// First byte of an input whose rest is a JWT payload (after a flags byte
/// where the target says so): the harness adds the target's usual header
/// and signs it with its fixed key.
pub const SIGNED: u8 = 0x01;

/// First byte of an input whose rest is `header '\n' payload`, both taken
/// as they are and signed with the target's fixed key: for headers the
/// product must refuse even with a valid signature (`alg`, `typ`, `kid`,
/// `jwk`, `crit`).
pub const SIGNED_HEADER: u8 = 0x02;

/// Longest acceptable error message: messages may quote an attacker's input
/// only truncated, whatever the input's size (an attacker must not make
/// responses and logs grow with what they send).
pub const MAX_MESSAGE_LEN: usize = 512;

/// A fixed P-256 test key, made for these harnesses only: the device key
/// that signs proofs and client assertions.
const DEVICE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAOh3Bs6SKR7dKO57
8FBsUVyEdypNKrwY3r/Vl+YVofyhRANCAAThL5bXXp/u2csPoCvl99uWDYF+odeb
ycPq/H2S1+Djn8gEnqjIOXcdqR81wHot7Bfkj/FzpeS5lN3c07uzaCMp
-----END PRIVATE KEY-----
";

/// A fixed P-256 test key, made for these harnesses only: the issuer key
/// that signs access tokens.
const ISSUER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8xmhG7Ml1JS022+2
cF8s5eWUzEA54iQkqdsVjX3os1KhRANCAAR+UAkp/eBSfQHy4tWsbS1qY2WViIjk
ABSUW0eBNDjFiAzm7seHdtDl2pB+YqbhU46TBvHSNvp3bwFHv5aLKkJW
-----END PRIVATE KEY-----
";

/// The fixed device key (proofs, client assertions).
pub fn device_key() -> &'static SoftwareKey {
    static KEY: LazyLock<SoftwareKey> =
        LazyLock::new(|| SoftwareKey::from_pkcs8_pem(DEVICE_KEY_PEM).unwrap());
    &KEY
}

/// The fixed issuer key (access tokens).
pub fn issuer_key() -> &'static SoftwareKey {
    static KEY: LazyLock<SoftwareKey> =
        LazyLock::new(|| SoftwareKey::from_pkcs8_pem(ISSUER_KEY_PEM).unwrap());
    &KEY
}

/// A compact JWS of `header` and `payload`, taken as they are, signed by `key`.
pub fn sign_compact(key: &SoftwareKey, header: &[u8], payload: &[u8]) -> String {
    let mut jws = Base64UrlUnpadded::encode_string(header);
    jws.push('.');
    jws.push_str(&Base64UrlUnpadded::encode_string(payload));
    let signature = key.try_sign(jws.as_bytes()).unwrap();
    jws.push('.');
    jws.push_str(&Base64UrlUnpadded::encode_string(&signature));
    jws
}

/// Splits a [`SIGNED_HEADER`] input's rest at its first newline.
fn header_and_payload(rest: &[u8]) -> (&[u8], &[u8]) {
    match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[]),
    }
}

/// Panics if an error message is longer than [`MAX_MESSAGE_LEN`].
fn assert_bounded(what: &str, message: &str) {
    assert!(
        message.len() <= MAX_MESSAGE_LEN,
        "{what} message is {} bytes (over {MAX_MESSAGE_LEN}): {:?}…",
        message.len(),
        message.chars().take(120).collect::<String>()
    );
}
