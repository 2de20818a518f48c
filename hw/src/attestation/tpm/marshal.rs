//! Reading TPM 2.0 marshalled structures (TCG TPM 2.0 Part 2 §§ 5–11):
//! big-endian integers and `TPM2B` size-prefixed buffers, each read bounded
//! by the structure's own maximum so no input can make us allocate more than
//! the TPM could have produced, and no input can make us panic.

use core::fmt;

/// Why a TPM structure was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{structure}.{field}: {problem}")]
pub struct ParseError {
    structure: &'static str,
    field: &'static str,
    problem: ParseProblem,
}

/// What was wrong in a TPM structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseProblem {
    /// The input ended before the field did.
    Truncated,
    /// Bytes were left after the structure ended.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A `TPM2B` is larger than the structure allows.
    TooLong {
        /// Its declared size.
        len: usize,
        /// The largest the TPM specification allows.
        max: usize,
    },
    /// A value that the specification does not allow here (for example a
    /// `TPMS_ATTEST` magic other than `TPM_GENERATED_VALUE`).
    BadValue {
        /// The value found.
        value: u64,
    },
    /// An algorithm, type or selector this verifier does not handle.
    Unsupported {
        /// The value found.
        value: u16,
    },
}

impl ParseError {
    pub(crate) const fn new(
        structure: &'static str,
        field: &'static str,
        problem: ParseProblem,
    ) -> Self {
        Self {
            structure,
            field,
            problem,
        }
    }

    /// The structure being parsed (`TPMS_ATTEST`, `TPMT_PUBLIC`, …).
    pub const fn structure(&self) -> &'static str {
        self.structure
    }

    /// The field where parsing stopped.
    pub const fn field(&self) -> &'static str {
        self.field
    }

    /// What was wrong with it.
    pub const fn problem(&self) -> ParseProblem {
        self.problem
    }
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the input ends inside this field"),
            Self::TrailingBytes { count } => {
                write!(f, "{count} bytes follow the end of the structure")
            }
            Self::TooLong { len, max } => {
                write!(f, "declared size {len} exceeds the maximum of {max}")
            }
            Self::BadValue { value } => write!(f, "value {value:#x} is not allowed here"),
            Self::Unsupported { value } => write!(f, "value {value:#06x} is not supported"),
        }
    }
}

/// A cursor over one marshalled structure.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8], structure: &'static str) -> Self {
        Self {
            rest: bytes,
            structure,
        }
    }

    /// An error about `field` of this structure.
    pub(crate) const fn error(&self, field: &'static str, problem: ParseProblem) -> ParseError {
        ParseError::new(self.structure, field, problem)
    }

    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], ParseError> {
        let Some((head, tail)) = self.rest.split_at_checked(len) else {
            return Err(self.error(field, ParseProblem::Truncated));
        };
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ParseError> {
        let bytes = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, ParseError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A `TPM2B_*`: a 16-bit size, then that many bytes, at most `max`.
    pub(crate) fn tpm2b(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], ParseError> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(self.error(field, ParseProblem::TooLong { len, max }));
        }
        self.take(field, len)
    }

    /// Ends the structure: nothing may follow it.
    pub(crate) fn finish(self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.error(
                "(end)",
                ParseProblem::TrailingBytes {
                    count: self.rest.len(),
                },
            ))
        }
    }
}

/// Appends a `TPM2B`: 16-bit size, then the bytes. Callers pass buffers the
/// specification bounds far below 64 KiB (digests, names, key sizes).
pub(crate) fn put_tpm2b(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_and_buffers_and_refuses_overruns() {
        let bytes = [0x01, 0x00, 0x02, 0xaa, 0xbb, 0xcc];
        let mut r = Reader::new(&bytes, "T");
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.tpm2b("b", 2).unwrap(), &[0xaa, 0xbb]);
        assert_eq!(r.u16("c").unwrap_err().problem(), ParseProblem::Truncated);
    }

    #[test]
    fn refuses_oversized_tpm2b_and_trailing_bytes() {
        let mut r = Reader::new(&[0x00, 0x03, 1, 2, 3], "T");
        assert_eq!(
            r.tpm2b("x", 2).unwrap_err().problem(),
            ParseProblem::TooLong { len: 3, max: 2 }
        );
        let mut r = Reader::new(&[0x00, 0x01, 1, 2], "T");
        r.tpm2b("x", 2).unwrap();
        let err = r.finish().unwrap_err();
        assert_eq!(err.problem(), ParseProblem::TrailingBytes { count: 1 });
        assert_eq!(
            err.to_string(),
            "T.(end): 1 bytes follow the end of the structure"
        );
    }

    #[test]
    fn put_tpm2b_prefixes_the_size() {
        let mut out = Vec::new();
        put_tpm2b(&mut out, &[9, 9, 9]);
        assert_eq!(out, [0, 3, 9, 9, 9]);
    }
}
