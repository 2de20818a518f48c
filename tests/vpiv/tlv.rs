//! BER-TLV as PIV uses it (SP 800-73-4 part 2, 3.3): tags of one to three
//! bytes (`7C`, `7F49`, `5FC105`), definite lengths of one to four bytes.

/// One parsed data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The tag bytes as a big-endian number (`0x7F49`).
    pub(crate) tag: u32,
    pub(crate) value: &'a [u8],
}

/// Why bytes are not a sequence of data objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TlvError {
    #[error("data object truncated")]
    Truncated,
    #[error("data object tag longer than three bytes")]
    TagTooLong,
    #[error("indefinite or over-long data object length")]
    BadLength,
}

impl<'a> Tlv<'a> {
    /// Parses the first data object, returning it and what follows.
    pub(crate) fn parse(input: &'a [u8]) -> Result<(Self, &'a [u8]), TlvError> {
        let (tag, rest) = parse_tag(input)?;
        let (len, rest) = parse_len(rest)?;
        if rest.len() < len {
            return Err(TlvError::Truncated);
        }
        let (value, rest) = rest.split_at(len);
        Ok((Self { tag, value }, rest))
    }

    /// Parses consecutive data objects that fill `input` exactly.
    pub(crate) fn parse_all(mut input: &'a [u8]) -> Result<Vec<Self>, TlvError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (tlv, rest) = Self::parse(input)?;
            out.push(tlv);
            input = rest;
        }
        Ok(out)
    }

    /// Parses `input` as exactly one data object with the given tag.
    pub(crate) fn parse_single(input: &'a [u8], tag: u32) -> Option<&'a [u8]> {
        match Self::parse(input) {
            Ok((tlv, [])) if tlv.tag == tag => Some(tlv.value),
            _ => None,
        }
    }
}

fn parse_tag(input: &[u8]) -> Result<(u32, &[u8]), TlvError> {
    let (&first, mut rest) = input.split_first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    // Low five bits all set: subsequent bytes follow while their top bit is set.
    if first & 0x1F == 0x1F {
        for n in 1.. {
            if n > 2 {
                return Err(TlvError::TagTooLong);
            }
            let (&next, after) = rest.split_first().ok_or(TlvError::Truncated)?;
            tag = (tag << 8) | u32::from(next);
            rest = after;
            if next & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((tag, rest))
}

fn parse_len(input: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let (&first, rest) = input.split_first().ok_or(TlvError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let count = usize::from(first & 0x7F);
    if count == 0 || count > 3 {
        return Err(TlvError::BadLength);
    }
    let bytes = rest.get(..count).ok_or(TlvError::Truncated)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, rest.get(count..).unwrap_or_default()))
}

/// Encodes one data object; `tag` is written with as many bytes as it needs.
pub(crate) fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 7);
    let tag_bytes = tag.to_be_bytes();
    let skip = tag_bytes.iter().take(3).take_while(|&&b| b == 0).count();
    out.extend(tag_bytes.iter().skip(skip));
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// Appends a definite length in the shortest form (`81 xx` from 128 up).
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    match significant {
        [] => out.push(0),
        [b] if *b < 0x80 => out.push(*b),
        _ => {
            // usize has at most 8 bytes: the count fits the low seven bits.
            out.push(0x80 | (significant.len() as u8));
            out.extend_from_slice(significant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_general_authenticate_template() {
        // 7C 24 { 82 00, 81 20 <digest> } as the yubikey crate sends it.
        let mut template = vec![0x7C, 0x24, 0x82, 0x00, 0x81, 0x20];
        template.extend([0xAB; 32]);
        let inner = Tlv::parse_single(&template, 0x7C).unwrap();
        let parts = Tlv::parse_all(inner).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].tag, parts[0].value.len()), (0x82, 0));
        assert_eq!((parts[1].tag, parts[1].value), (0x81, &[0xAB; 32][..]));
    }

    #[test]
    fn parses_multi_byte_tags_and_long_lengths() {
        let (tlv, rest) = Tlv::parse(&[0x7F, 0x49, 0x03, 1, 2, 3, 9]).unwrap();
        assert_eq!(
            (tlv.tag, tlv.value, rest),
            (0x7F49, &[1, 2, 3][..], &[9][..])
        );
        let (tlv, _) = Tlv::parse(&[0x5F, 0xC1, 0x05, 0x01, 7]).unwrap();
        assert_eq!(tlv.tag, 0x5FC105);
        let mut long = vec![0x53, 0x82, 0x01, 0x00];
        long.extend([0u8; 256]);
        assert_eq!(Tlv::parse_single(&long, 0x53).unwrap().len(), 256);
        let mut mid = vec![0x70, 0x81, 0x80];
        mid.extend([0u8; 128]);
        assert_eq!(Tlv::parse_single(&mid, 0x70).unwrap().len(), 128);
    }

    #[test]
    fn rejects_malformed_objects() {
        assert_eq!(Tlv::parse(&[]), Err(TlvError::Truncated));
        assert_eq!(Tlv::parse(&[0x53]), Err(TlvError::Truncated));
        assert_eq!(Tlv::parse(&[0x53, 0x80]), Err(TlvError::BadLength));
        assert_eq!(
            Tlv::parse(&[0x53, 0x85, 0, 0, 0, 0, 1]),
            Err(TlvError::BadLength)
        );
        assert_eq!(Tlv::parse(&[0x53, 0x03, 1, 2]), Err(TlvError::Truncated));
        assert_eq!(Tlv::parse(&[0x53, 0x82, 0x01]), Err(TlvError::Truncated));
        assert_eq!(
            Tlv::parse(&[0x5F, 0xFF, 0xFF, 0x01, 0]),
            Err(TlvError::TagTooLong)
        );
        assert_eq!(Tlv::parse(&[0x5F, 0xC1]), Err(TlvError::Truncated));
        assert!(Tlv::parse_single(&[0x53, 0x01, 0x00, 0x00], 0x53).is_none());
        assert!(Tlv::parse_single(&[0x70, 0x01, 0x00], 0x53).is_none());
    }

    #[test]
    fn encoding_round_trips() {
        for len in [0usize, 1, 0x7F, 0x80, 0xFF, 0x100, 3000, 70_000] {
            for tag in [0x53u32, 0x7F49, 0x5FC105] {
                let value = vec![0x5A; len];
                let encoded = encode(tag, &value);
                let (tlv, rest) = Tlv::parse(&encoded).unwrap();
                assert_eq!((tlv.tag, tlv.value.len(), rest.len()), (tag, len, 0));
            }
        }
        assert_eq!(encode(0x80, &[]), [0x80, 0x00]);
        assert_eq!(&encode(0x53, &[0; 0x80])[..3], [0x53, 0x81, 0x80]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut buf = [0u8; 48];
        for round in 0..2000 {
            getrandom::fill(&mut buf).unwrap();
            let len = round % buf.len();
            let _ = Tlv::parse_all(&buf[..len]);
        }
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = Tlv::parse_all(&[a, b, 0x01]);
            }
        }
    }
}
