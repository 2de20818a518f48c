//! base64url without padding (RFC 7515 §2), strict: padding, `+`/`/` and
//! non-canonical trailing bits are refused, so one value has one encoding.

use base64ct::{Base64UrlUnpadded, Encoding};

/// Encodes `bytes` as base64url without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes base64url without padding, refusing anything longer than
/// `max_decoded` bytes before allocating.
pub(crate) fn decode(input: &str, max_decoded: usize) -> Option<Vec<u8>> {
    // Every 4 characters carry 3 bytes; refuse before decoding so a huge
    // value costs nothing.
    if input.len() / 4 * 3 > max_decoded.saturating_add(3) {
        return None;
    }
    let bytes = Base64UrlUnpadded::decode_vec(input).ok()?;
    (bytes.len() <= max_decoded).then_some(bytes)
}

/// Decodes into a fixed-size array, refusing any other length.
pub(crate) fn decode_array<const N: usize>(input: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let decoded = Base64UrlUnpadded::decode(input, &mut out).ok()?;
    (decoded.len() == N).then_some(out)
}

/// True when `input` is well-formed base64url without padding.
pub(crate) fn is_valid(input: &str, max_decoded: usize) -> bool {
    decode(input, max_decoded).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xa5).collect();
            assert_eq!(decode(&encode(&bytes), 64).unwrap(), bytes);
        }
    }

    #[test]
    fn refuses_padding_standard_alphabet_and_noncanonical_bits() {
        assert!(decode("YQ==", 8).is_none());
        assert!(decode("a+b/", 8).is_none());
        // "YR" decodes to 'a' only if the unused low bits are ignored.
        assert!(decode("YR", 8).is_none());
        assert!(decode("YQ", 8).is_some());
        assert!(decode("Y", 8).is_none());
    }

    #[test]
    fn refuses_oversized_input_before_decoding() {
        assert!(decode(&"A".repeat(100), 10).is_none());
        assert!(decode_array::<2>("YWJj").is_none());
        assert_eq!(decode_array::<3>("YWJj"), Some(*b"abc"));
    }
}
