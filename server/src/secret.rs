//! Random identifiers and one-time secrets, and how secrets are stored
//! (only their SHA-256).

use aws_lc_rs::digest;
use base64ct::{Base64UrlUnpadded, Encoding};
use getrandom::SysRng;
use getrandom::rand_core::TryRng as _;

/// 128 random bits as base64url, for identifiers.
pub fn random_id() -> String {
    random_b64::<16>()
}

/// 256 random bits as base64url, for refresh tokens, codes and challenges.
pub fn random_secret() -> String {
    random_b64::<32>()
}

fn random_b64<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    // The OS generator does not fail on supported platforms; if it ever
    // did, an all-zero value must never be used, so abort the request.
    if SysRng.try_fill_bytes(&mut bytes).is_err() {
        std::process::abort();
    }
    Base64UrlUnpadded::encode_string(&bytes)
}

/// The storage key of a secret: its SHA-256. A leaked database holds no
/// usable refresh token or enrollment code.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}
