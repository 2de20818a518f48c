//! RFC 6238 TOTP as authenticator apps speak it: HMAC-SHA1, 30-second
//! steps, 6 digits, a base32 secret in an `otpauth://` URI.
//!
//! Pure: the caller passes the time and keeps the secret; which step was
//! used last (RFC 6238 §5.2: a code is good once) is the store's.

use aws_lc_rs::hmac;
use getrandom::SysRng;
use getrandom::rand_core::TryRng as _;
use holdfast_proto::UnixTime;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

/// Seconds per time step (RFC 6238 §4.1 `X`, the recommended 30).
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one (RFC 6238 §5.2 allows
/// "at most one time step" of network delay; clock drift gets the other).
const ACCEPTED_DRIFT_STEPS: u64 = 1;
/// Length of a generated secret: 160 bits, the HMAC-SHA1 output size
/// (RFC 4226 §4 R6 asks for at least 128, recommends 160).
pub const SECRET_LEN: usize = 20;

/// A TOTP shared secret. Never printed (`Debug` shows `TotpSecret(..)`),
/// wiped on drop.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// 160 random bits.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        // As `secret::random_secret`: an all-zero secret must never be used.
        if SysRng.try_fill_bytes(&mut bytes).is_err() {
            std::process::abort();
        }
        Self(bytes)
    }

    /// A secret from its bytes (as unsealed from the store).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret's bytes, for sealing.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The code for time step `step`.
    pub fn code(&self, step: u64) -> String {
        format!(
            "{:0width$}",
            hotp(&self.0, step, DIGITS),
            width = DIGITS as usize
        )
    }

    /// The step whose code is `code`, among the current step at `now` and
    /// one either side; `None` if none matches. Every candidate is computed
    /// and compared in constant time, so timing does not tell which step
    /// (or how many digits) matched.
    pub fn verify(&self, code: &str, now: UnixTime) -> Option<u64> {
        let current = step_at(now);
        let mut matched = None;
        for step in current.saturating_sub(ACCEPTED_DRIFT_STEPS)
            ..=current.saturating_add(ACCEPTED_DRIFT_STEPS)
        {
            let expected = self.code(step);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                matched = Some(step);
            }
        }
        matched
    }

    /// The `otpauth://totp/` URI an authenticator app imports (the Key URI
    /// Format of Google Authenticator, which every app reads): label
    /// `issuer:account`, base32 secret, SHA1, 6 digits, 30 s.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        let account = percent_encode(account);
        let secret = Zeroizing::new(base32(&self.0));
        format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            secret.as_str()
        )
    }
}

impl core::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// The RFC 6238 time step of `now` (`T = floor(unix time / X)`, `T0 = 0`).
pub fn step_at(now: UnixTime) -> u64 {
    now.as_secs() / STEP_SECS
}

/// What an authenticator app shows for the `otpauth://` URI `uri` at `now`:
/// for tests and scripts that play the admin's phone. `None` if `uri` is not
/// a TOTP URI with a base32 `secret`.
pub fn code_for_uri(uri: &str, now: UnixTime) -> Option<String> {
    let query = uri.strip_prefix("otpauth://totp/")?.split_once('?')?.1;
    let secret = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))?;
    let secret = TotpSecret::from_bytes(base32_decode(secret)?);
    Some(secret.code(step_at(now)))
}

/// RFC 4226 §5.3 HOTP: HMAC-SHA1 over the big-endian counter, dynamic
/// truncation, modulo 10^digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // The low 4 bits of the last byte pick the offset (at most 15, and the
    // MAC is 20 bytes), so the four bytes are always there.
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    let mut word = [0u8; 4];
    if let Some(bytes) = mac.get(offset..offset + 4) {
        word.copy_from_slice(bytes);
    }
    let binary = u32::from_be_bytes(word) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// RFC 4648 §6 base32, upper case, without padding (as `otpauth://` URIs
/// carry it).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for byte in bytes {
        buffer = (buffer << 8) | u64::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                ALPHABET
                    .get(((buffer >> bits) & 31) as usize)
                    .copied()
                    .unwrap_or(b'A'),
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET
                .get(((buffer << (5 - bits)) & 31) as usize)
                .copied()
                .unwrap_or(b'A'),
        ));
    }
    buffer.zeroize();
    out
}

/// Base32 without padding, case-insensitive; `None` on any other character.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for c in text.trim_end_matches('=').bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    buffer.zeroize();
    Some(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: (time, T as hex, 8-digit TOTP),
    /// with the seed "12345678901234567890".
    const RFC6238_SHA1: [(u64, u64, u32); 6] = [
        (59, 0x1, 94_287_082),
        (1_111_111_109, 0x23523EC, 7_081_804),
        (1_111_111_111, 0x23523ED, 14_050_471),
        (1_234_567_890, 0x273EF07, 89_005_924),
        (2_000_000_000, 0x3F940AA, 69_279_037),
        (20_000_000_000, 0x27BC86AA, 65_353_130),
    ];
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn matches_rfc6238_appendix_b_sha1_vectors() {
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        for (time, t, totp8) in RFC6238_SHA1 {
            let now = UnixTime::from_secs(time);
            assert_eq!(step_at(now), t, "T at {time}");
            assert_eq!(hotp(RFC_SEED, t, 8), totp8, "8 digits at {time}");
            // Six digits are the low six of the same truncated value.
            let six = format!("{:06}", totp8 % 1_000_000);
            assert_eq!(secret.code(t), six, "6 digits at {time}");
            assert_eq!(secret.verify(&six, now), Some(t));
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_no_further() {
        let secret = TotpSecret::generate();
        let now = UnixTime::from_secs(1_764_000_015);
        let t = step_at(now);
        for step in [t - 1, t, t + 1] {
            assert_eq!(secret.verify(&secret.code(step), now), Some(step));
        }
        for step in [t - 2, t + 2] {
            let code = secret.code(step);
            // A code of a far step may collide with a near one by chance.
            if ![t - 1, t, t + 1].iter().any(|s| secret.code(*s) == code) {
                assert_eq!(secret.verify(&code, now), None);
            }
        }
        assert_eq!(secret.verify("", now), None);
        assert_eq!(secret.verify("12345", now), None);
    }

    #[test]
    fn uri_round_trips_through_an_authenticator() {
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        let uri = secret.otpauth_uri("Holdfast issuer.test", "root@x");
        assert_eq!(
            uri,
            "otpauth://totp/Holdfast%20issuer.test:root%40x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Holdfast%20issuer.test&algorithm=SHA1&digits=6&period=30"
        );
        let now = UnixTime::from_secs(59);
        assert_eq!(code_for_uri(&uri, now).unwrap(), "287082");
        assert_eq!(code_for_uri("https://example.com", now), None);
        assert_eq!(
            code_for_uri("otpauth://totp/x?secret=not*base32", now),
            None
        );
    }

    #[test]
    fn base32_round_trips_every_length() {
        for len in 0..=SECRET_LEN {
            let bytes: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(37) ^ 0x5a)
                .collect();
            assert_eq!(base32_decode(&base32(&bytes)).unwrap(), bytes, "{len}");
        }
        // RFC 4648 §10.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = TotpSecret::from_bytes(RFC_SEED.to_vec());
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }
}
