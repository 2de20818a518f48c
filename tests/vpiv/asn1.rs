//! A small DER writer: just what the attestation certificates need, so that
//! every byte (UTF8String names, UTCTime / GeneralizedTime, raw Yubico
//! extension values, no extra extensions) is the one a YubiKey writes.

use const_oid::ObjectIdentifier;

use crate::tlv::push_len;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OBJECT_IDENTIFIER: u8 = 0x06;
const UTF8_STRING: u8 = 0x0C;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `tag ‖ length ‖ content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded elements.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// An explicit context-specific tag `[n]` around one element.
pub(crate) fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xA0 | n, inner)
}

/// A non-negative INTEGER from big-endian magnitude bytes, in minimal form.
pub(crate) fn uint(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|&&b| b == 0).count();
    let digits = magnitude.get(skip..).unwrap_or_default();
    let mut content = Vec::with_capacity(digits.len() + 1);
    // A leading 1 bit would make it negative; zero is one 00 byte.
    if digits.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(INTEGER, &content)
}

pub(crate) fn oid(oid: &ObjectIdentifier) -> Vec<u8> {
    tlv(OBJECT_IDENTIFIER, oid.as_bytes())
}

pub(crate) fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(OCTET_STRING, bytes)
}

/// A BIT STRING of whole bytes (no unused bits).
pub(crate) fn bits(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(BIT_STRING, &content)
}

/// A time as RFC 5280 4.1.2.5 wants it: `YYMMDDHHMMSSZ` as UTCTime through
/// 2049, `YYYYMMDDHHMMSSZ` as GeneralizedTime from 2050.
pub(crate) fn time(generalized: &str) -> Vec<u8> {
    match generalized.strip_prefix("20") {
        Some(short) if generalized < "2050" => tlv(UTC_TIME, short.as_bytes()),
        _ => tlv(GENERALIZED_TIME, generalized.as_bytes()),
    }
}

/// A Name with one common name, as a UTF8String (as Yubico encodes it).
pub(crate) fn name_cn(cn: &str) -> Vec<u8> {
    let attribute = seq(&[
        &oid(&const_oid::db::rfc4519::CN),
        &tlv(UTF8_STRING, cn.as_bytes()),
    ]);
    seq(&[&tlv(SET, &attribute)])
}

/// An Extension: `extnValue` holds `value` as is.
pub(crate) fn extension(id: &ObjectIdentifier, critical: bool, value: &[u8]) -> Vec<u8> {
    let critical = if critical {
        tlv(BOOLEAN, &[0xFF])
    } else {
        Vec::new()
    };
    seq(&[&oid(id), &critical, &octets(value)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        // Yubico's serial extension for 15732500: 02 04 00 F0 0F 14.
        assert_eq!(
            uint(&15_732_500u32.to_be_bytes()),
            [2, 4, 0, 0xF0, 0x0F, 0x14]
        );
        assert_eq!(
            uint(&33_162_554u32.to_be_bytes()),
            [2, 4, 1, 0xFA, 0x05, 0x3A]
        );
        assert_eq!(uint(&[0, 0, 0]), [2, 1, 0]);
        assert_eq!(uint(&[]), [2, 1, 0]);
        assert_eq!(uint(&[0x7F]), [2, 1, 0x7F]);
    }

    #[test]
    fn times_switch_encoding_at_2050() {
        assert_eq!(time("20160314000000Z"), tlv(UTC_TIME, b"160314000000Z"));
        assert_eq!(time("20491231235959Z")[0], UTC_TIME);
        assert_eq!(
            time("20520417000000Z"),
            tlv(GENERALIZED_TIME, b"20520417000000Z")
        );
        assert_eq!(time("99991231235959Z")[0], GENERALIZED_TIME);
    }

    #[test]
    fn names_match_yubicos_encoding() {
        // From a real slot certificate: 30 21 31 1F 30 1D 06 03 55 04 03 0C 16 "Yubico PIV Attestation".
        let mut expected = vec![
            0x30, 0x21, 0x31, 0x1F, 0x30, 0x1D, 0x06, 0x03, 0x55, 0x04, 0x03,
        ];
        expected.extend([0x0C, 0x16]);
        expected.extend(b"Yubico PIV Attestation");
        assert_eq!(name_cn("Yubico PIV Attestation"), expected);
    }

    #[test]
    fn extensions_carry_raw_values() {
        let firmware = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
        // 30 11 06 0A 2B 06 01 04 01 82 C4 0A 03 03 04 03 05 04 03
        let mut expected = vec![0x30, 0x11, 0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82];
        expected.extend([0xC4, 0x0A, 0x03, 0x03, 0x04, 0x03, 0x05, 0x04, 0x03]);
        assert_eq!(extension(&firmware, false, &[5, 4, 3]), expected);
        let critical = extension(&firmware, true, &[]);
        assert_eq!(&critical[14..17], [0x01, 0x01, 0xFF]);
    }
}
