//! `TPMS_ATTEST` (TCG TPM 2.0 Part 2 §10.12.12): what a TPM signs when it
//! certifies an object (`TPM2_Certify`) or its creation (`TPM2_CertifyCreation`).
//!
//! The magic `TPM_GENERATED_VALUE` is checked while parsing: a restricted
//! signing key signs only digests whose data did not start with it unless
//! the TPM built the data itself, so a signed structure carrying it came
//! from the TPM (Part 1 §36.4). Other attestation types (quote, audit, time,
//! NV) are refused: enrollment uses none of them.

use super::marshal::{ParseError, ParseProblem, Reader};

const STRUCTURE: &str = "TPMS_ATTEST";
/// `TPM_GENERATED_VALUE`.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_CERTIFY`.
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// `TPM_ST_ATTEST_CREATION`.
pub const TPM_ST_ATTEST_CREATION: u16 = 0x801A;
/// `sizeof(TPMU_NAME)`: a hash algorithm and a SHA-512 digest.
const MAX_NAME: usize = 2 + 64;
/// `sizeof(TPMT_HA)`, the bound of `TPM2B_DATA`.
const MAX_DATA: usize = 2 + 64;
/// `sizeof(TPMU_HA)`, the bound of `TPM2B_DIGEST`.
const MAX_DIGEST: usize = 64;

/// A parsed `TPMS_ATTEST` of type certify or creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmsAttest {
    attest_type: u16,
    qualified_signer: Vec<u8>,
    extra_data: Vec<u8>,
    clock_info: ClockInfo,
    firmware_version: u64,
    attested: Attested,
}

/// `TPMS_CLOCK_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockInfo {
    /// `clock`: milliseconds the TPM has been powered since it was made.
    pub clock: u64,
    /// `resetCount`.
    pub reset_count: u32,
    /// `restartCount`.
    pub restart_count: u32,
    /// `safe`.
    pub safe: bool,
}

/// `TPMU_ATTEST` for the supported types.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attested {
    /// `TPMS_CERTIFY_INFO` (`TPM_ST_ATTEST_CERTIFY`).
    Certify {
        /// `name`: the certified object's name.
        name: Vec<u8>,
        /// `qualifiedName`.
        qualified_name: Vec<u8>,
    },
    /// `TPMS_CREATION_INFO` (`TPM_ST_ATTEST_CREATION`).
    Creation {
        /// `objectName`.
        object_name: Vec<u8>,
        /// `creationHash`: the digest of the `TPMS_CREATION_DATA`.
        creation_hash: Vec<u8>,
    },
}

impl TpmsAttest {
    /// Parses a marshalled `TPMS_ATTEST` (the contents of a `TPM2B_ATTEST`).
    ///
    /// # Errors
    /// A [`ParseError`] naming the field: a magic other than
    /// `TPM_GENERATED_VALUE`, a type other than certify or creation,
    /// `clockInfo.safe` not 0 or 1, truncated or trailing input, a `TPM2B`
    /// over its maximum.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes, STRUCTURE);
        let magic = r.u32("magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(r.error(
                "magic",
                ParseProblem::BadValue {
                    value: u64::from(magic),
                },
            ));
        }
        let kind = r.u16("type")?;
        if kind != TPM_ST_ATTEST_CERTIFY && kind != TPM_ST_ATTEST_CREATION {
            return Err(r.error("type", ParseProblem::Unsupported { value: kind }));
        }
        let qualified_signer = r.tpm2b("qualifiedSigner", MAX_NAME)?.to_vec();
        let extra_data = r.tpm2b("extraData", MAX_DATA)?.to_vec();
        let clock = r.u64("clockInfo.clock")?;
        let reset_count = r.u32("clockInfo.resetCount")?;
        let restart_count = r.u32("clockInfo.restartCount")?;
        let safe = match r.u8("clockInfo.safe")? {
            0 => false,
            1 => true,
            other => {
                return Err(r.error(
                    "clockInfo.safe",
                    ParseProblem::BadValue {
                        value: u64::from(other),
                    },
                ));
            }
        };
        let firmware_version = r.u64("firmwareVersion")?;
        let attested = if kind == TPM_ST_ATTEST_CERTIFY {
            Attested::Certify {
                name: r.tpm2b("attested.certify.name", MAX_NAME)?.to_vec(),
                qualified_name: r
                    .tpm2b("attested.certify.qualifiedName", MAX_NAME)?
                    .to_vec(),
            }
        } else {
            Attested::Creation {
                object_name: r.tpm2b("attested.creation.objectName", MAX_NAME)?.to_vec(),
                creation_hash: r
                    .tpm2b("attested.creation.creationHash", MAX_DIGEST)?
                    .to_vec(),
            }
        };
        r.finish()?;
        Ok(Self {
            attest_type: kind,
            qualified_signer,
            extra_data,
            clock_info: ClockInfo {
                clock,
                reset_count,
                restart_count,
                safe,
            },
            firmware_version,
            attested,
        })
    }

    /// `type`: [`TPM_ST_ATTEST_CERTIFY`] or [`TPM_ST_ATTEST_CREATION`].
    pub const fn attest_type(&self) -> u16 {
        self.attest_type
    }

    /// `qualifiedSigner`: the qualified name of the signing key.
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }

    /// `extraData`: the caller's `qualifyingData` (the issuer's nonce).
    pub fn extra_data(&self) -> &[u8] {
        &self.extra_data
    }

    /// `clockInfo`.
    pub const fn clock_info(&self) -> ClockInfo {
        self.clock_info
    }

    /// `firmwareVersion`: vendor-defined; most vendors put major.minor in
    /// the high 32 bits.
    pub const fn firmware_version(&self) -> u64 {
        self.firmware_version
    }

    /// `attested`.
    pub const fn attested(&self) -> &Attested {
        &self.attested
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attestation::tpm::marshal::put_tpm2b;

    /// A marshalled certify `TPMS_ATTEST`.
    fn certify(extra_data: &[u8], name: &[u8]) -> Vec<u8> {
        let mut out = TPM_GENERATED_VALUE.to_be_bytes().to_vec();
        out.extend_from_slice(&TPM_ST_ATTEST_CERTIFY.to_be_bytes());
        put_tpm2b(&mut out, &[0x00, 0x0b, 7, 7]);
        put_tpm2b(&mut out, extra_data);
        out.extend_from_slice(&1234u64.to_be_bytes());
        out.extend_from_slice(&5u32.to_be_bytes());
        out.extend_from_slice(&6u32.to_be_bytes());
        out.push(1);
        out.extend_from_slice(&0x0002_0000_0000_0001u64.to_be_bytes());
        put_tpm2b(&mut out, name);
        put_tpm2b(&mut out, &[0x00, 0x0b, 9]);
        out
    }

    #[test]
    fn parses_a_certify_structure() {
        let attest = TpmsAttest::parse(&certify(&[0xaa; 32], &[0x00, 0x0b, 1, 2])).unwrap();
        assert_eq!(attest.extra_data(), &[0xaa; 32]);
        assert_eq!(attest.qualified_signer(), &[0x00, 0x0b, 7, 7]);
        assert_eq!(
            attest.clock_info(),
            ClockInfo {
                clock: 1234,
                reset_count: 5,
                restart_count: 6,
                safe: true
            }
        );
        assert_eq!(attest.firmware_version(), 0x0002_0000_0000_0001);
        assert_eq!(
            attest.attested(),
            &Attested::Certify {
                name: vec![0x00, 0x0b, 1, 2],
                qualified_name: vec![0x00, 0x0b, 9]
            }
        );
    }

    #[test]
    fn refuses_a_wrong_magic_type_or_safe_flag() {
        let good = certify(&[0xaa; 32], &[0x00, 0x0b, 1, 2]);
        let mut bad = good.clone();
        bad[0] = 0;
        let err = TpmsAttest::parse(&bad).unwrap_err();
        assert_eq!(err.field(), "magic");
        assert_eq!(err.problem(), ParseProblem::BadValue { value: 0x0054_4347 });

        let mut bad = good.clone();
        bad[5] = 0x18; // TPM_ST_ATTEST_QUOTE
        assert_eq!(
            TpmsAttest::parse(&bad).unwrap_err().problem(),
            ParseProblem::Unsupported { value: 0x8018 }
        );

        let mut bad = good;
        let safe = 4 + 2 + 2 + 4 + 2 + 32 + 8 + 4 + 4;
        bad[safe] = 2;
        assert_eq!(
            TpmsAttest::parse(&bad).unwrap_err().field(),
            "clockInfo.safe"
        );
    }

    #[test]
    fn refuses_oversized_names() {
        let attest = certify(&[0xaa; 32], &[0x11; 67]);
        assert_eq!(
            TpmsAttest::parse(&attest).unwrap_err().problem(),
            ParseProblem::TooLong { len: 67, max: 66 }
        );
    }
}
