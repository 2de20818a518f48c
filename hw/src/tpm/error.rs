//! `TpmError`: what went wrong with the TPM, in words an operator can act on.
//!
//! tpm2-tss reports a 32-bit response code whose upper byte names the layer
//! that failed (the TPM itself, the TCTI transport, ESAPI…). The code is
//! classified here once; the common cases (no TPM, lockout, wrong
//! authorization, a key file from another TPM) get their own variants.

use std::path::PathBuf;

use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind};

use crate::private_file::PrivateFileError;

/// Why a TPM operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    /// The TCTI configuration string is not one tpm2-tss understands.
    #[error(
        "invalid TPM TCTI `{tcti}` (expected e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`)"
    )]
    InvalidTcti {
        /// The configured TCTI.
        tcti: String,
    },
    /// The TPM could not be reached through the configured TCTI (for
    /// instance, no simulator listening).
    #[error(
        "cannot connect to the TPM through `{tcti}`: {source} (is the TPM, resource manager or simulator it names running and reachable?)"
    )]
    Connect {
        /// The configured TCTI.
        tcti: String,
        /// The code tpm2-tss returned.
        #[source]
        source: TssError,
    },
    /// The TPM device does not exist: this machine has no TPM, it is
    /// disabled in the firmware, or its driver is not loaded.
    #[error(
        "no TPM device at {path} (is a TPM 2.0 present and enabled in the firmware, and its driver loaded?)"
    )]
    NoDevice {
        /// The device path from the TCTI.
        path: PathBuf,
    },
    /// The TPM device exists but this user may not open it.
    #[error(
        "no permission to use the TPM device {path} (add the user to the group owning it, usually `tss`)"
    )]
    DevicePermission {
        /// The device path from the TCTI.
        path: PathBuf,
    },
    /// The connection to the TPM failed after it was opened.
    #[error("{operation}: lost the connection to the TPM: {source}")]
    Transport {
        /// The TPM command or step that failed.
        operation: &'static str,
        /// The code tpm2-tss returned.
        #[source]
        source: TssError,
    },
    /// The TPM is in dictionary-attack lockout and refuses authorizations
    /// for protected objects until the lockout interval passes or the
    /// lockout authority resets it (`tpm2_dictionarylockout --clear-lockout`).
    #[error(
        "{operation}: the TPM is in dictionary-attack lockout; wait for the lockout interval or reset it with the lockout authorization"
    )]
    Lockout {
        /// The TPM command or step that failed.
        operation: &'static str,
    },
    /// The TPM refused an authorization: a hierarchy (owner or endorsement)
    /// has a password, or a policy was not satisfied.
    #[error(
        "{operation}: the TPM refused the authorization ({source}); Holdfast uses the owner and endorsement hierarchies with empty passwords"
    )]
    AuthFailed {
        /// The TPM command or step that failed.
        operation: &'static str,
        /// The code the TPM returned.
        #[source]
        source: TssError,
    },
    /// The key file was made by another TPM, or by this one before its
    /// owner hierarchy was cleared: this TPM cannot unwrap it.
    #[error(
        "{path}: this TPM cannot load the key (integrity check failed): the file was made by another TPM, or the TPM was cleared since"
    )]
    KeyFromAnotherTpm {
        /// The key file.
        path: PathBuf,
    },
    /// A TPM command failed for another reason.
    #[error("{operation} failed: {source}")]
    Command {
        /// The TPM command or step that failed.
        operation: &'static str,
        /// The code tpm2-tss returned.
        #[source]
        source: TssError,
    },
    /// The TPM answered with something Holdfast cannot use (e.g. a public
    /// key that is not on P-256).
    #[error("{operation}: unexpected answer from the TPM: {what}")]
    UnexpectedResponse {
        /// The TPM command or step.
        operation: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// A key file could not be created, written or read, already exists,
    /// or can be read by other users.
    #[error(transparent)]
    File(#[from] PrivateFileError),
    /// The key file is not a Holdfast TPM key file, or is damaged.
    #[error("{path}: not a Holdfast TPM key file ({reason})")]
    MalformedKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TPM holds no EK certificate at any of the indices looked at.
    #[error(
        "the TPM has no EK certificate in NV (looked at {looked_at}); without one it cannot be attested"
    )]
    NoEkCertificate {
        /// The NV indices read, e.g. `0x01c00002, 0x01c0000a, 0x01c00016`.
        looked_at: String,
    },
    /// The EK certificate at an NV index is not a certificate Holdfast can use.
    #[error("EK certificate at NV index {index:#010x}: {reason}")]
    BadEkCertificate {
        /// The NV index.
        index: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The EK made from the TCG default template is not the key in the EK
    /// certificate: the certificate belongs to another EK (another template
    /// or another TPM), so credential activation would fail.
    #[error(
        "the EK created from the TCG default template does not match the public key of the EK certificate at NV index {index:#010x}"
    )]
    EkCertificateMismatch {
        /// The NV index of the certificate.
        index: u32,
    },
    /// The issuer's credential-activation challenge is not well-formed.
    #[error("malformed credential-activation challenge: {0}")]
    MalformedChallenge(&'static str),
    /// The TPM refused to release the issuer's secret: the challenge was not
    /// made for this TPM's EK and this attestation key.
    #[error(
        "TPM2_ActivateCredential: the challenge was not made for this TPM's EK and attestation key ({source})"
    )]
    ActivationRefused {
        /// The code the TPM returned.
        #[source]
        source: TssError,
    },
    /// An attestation was finished with a key held on another TPM
    /// connection than the one it began on.
    #[error("the key and the attestation in progress use different TPM connections")]
    DifferentConnection,
}

/// A tpm2-tss response code and its meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (TSS2_RC {code:#010x})")]
pub struct TssError {
    code: u32,
    message: String,
}

impl TssError {
    /// The raw `TSS2_RC` (0 for errors raised by the Rust wrapper itself).
    pub fn code(&self) -> u32 {
        self.code
    }

    /// The layer that reported the error (bits 16–23 of the code): 0 is
    /// the TPM, 10 the TCTI, 7 ESAPI.
    pub fn layer(&self) -> u8 {
        layer_of(self.code)
    }
}

/// How an error is classified before the operation name is attached.
pub(crate) enum Class {
    Transport,
    Lockout,
    Auth,
    Integrity,
    Other,
}

const LAYER_TPM: u8 = 0;
const LAYER_ESAPI: u8 = 7;
const LAYER_SYS: u8 = 8;
const LAYER_MU: u8 = 9;
const LAYER_TCTI: u8 = 10;
const LAYER_RESMGR: u8 = 11;
const LAYER_RESMGR_TPM: u8 = 12;

/// The TSS "base" error codes shared by the software layers.
fn base_message(base: u32) -> &'static str {
    match base {
        1 => "general failure",
        2 => "not implemented",
        3 => "bad context",
        4 => "ABI mismatch",
        5 => "bad reference",
        6 => "insufficient buffer",
        7 => "bad sequence",
        8 => "no connection",
        9 => "try again",
        10 => "input/output error",
        11 => "bad value",
        12 => "not permitted",
        13 => "invalid sessions",
        16 => "bad size",
        17 => "malformed response",
        20 => "incompatible TCTI",
        21 => "not supported",
        23 => "out of memory",
        27 => "response authorization failed",
        _ => "error",
    }
}

impl TssError {
    pub(crate) fn new(error: tss_esapi::Error) -> (Self, Class) {
        match error {
            tss_esapi::Error::WrapperError(kind) => (
                Self {
                    code: 0,
                    message: format!("tss-esapi: {kind}"),
                },
                Class::Other,
            ),
            tss_esapi::Error::Tss2Error(rc) => {
                let code = raw_code(rc);
                let layer = layer_of(code);
                let base = code & 0xffff;
                match layer {
                    LAYER_TPM | LAYER_RESMGR_TPM => {
                        let class = match rc.kind() {
                            Some(Tss2ResponseCodeKind::Lockout) => Class::Lockout,
                            Some(
                                Tss2ResponseCodeKind::AuthFail
                                | Tss2ResponseCodeKind::BadAuth
                                | Tss2ResponseCodeKind::PolicyFail
                                | Tss2ResponseCodeKind::AuthUnavailable,
                            ) => Class::Auth,
                            Some(Tss2ResponseCodeKind::Integrity) => Class::Integrity,
                            _ => Class::Other,
                        };
                        (
                            Self {
                                code,
                                message: format!("TPM: {rc}"),
                            },
                            class,
                        )
                    }
                    _ => {
                        let layer_name = match layer {
                            LAYER_ESAPI => "ESAPI",
                            LAYER_SYS => "SAPI",
                            LAYER_MU => "marshalling",
                            LAYER_TCTI => "TCTI",
                            LAYER_RESMGR => "resource manager",
                            _ => "tpm2-tss",
                        };
                        let class = match (layer, base) {
                            // A lost or refused connection, whichever layer saw it.
                            (_, 8 | 10) | (LAYER_TCTI, _) => Class::Transport,
                            _ => Class::Other,
                        };
                        (
                            Self {
                                code,
                                message: format!("{layer_name}: {}", base_message(base)),
                            },
                            class,
                        )
                    }
                }
            }
        }
    }
}

/// Bits 16–23 of a `TSS2_RC`.
fn layer_of(code: u32) -> u8 {
    // Truncation intended: the layer is one byte.
    (code >> 16) as u8
}

/// tss-esapi 7 keeps the raw code private but prints it in hex.
fn raw_code(rc: Tss2ResponseCode) -> u32 {
    let text = match rc {
        Tss2ResponseCode::Success => return 0,
        Tss2ResponseCode::FormatZero(code) => code.to_string(),
        Tss2ResponseCode::FormatOne(code) => code.to_string(),
    };
    text.rsplit_once("0x")
        .and_then(|(_, hex)| u32::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

impl TpmError {
    /// The error for a failed TPM command, classified.
    pub(crate) fn command(operation: &'static str, error: tss_esapi::Error) -> Self {
        let (source, class) = TssError::new(error);
        match class {
            Class::Transport => Self::Transport { operation, source },
            Class::Lockout => Self::Lockout { operation },
            Class::Auth => Self::AuthFailed { operation, source },
            Class::Integrity | Class::Other => Self::Command { operation, source },
        }
    }

    /// Like [`TpmError::command`], but an integrity failure means the key
    /// file at `path` does not belong to this TPM.
    pub(crate) fn load(path: &std::path::Path, error: tss_esapi::Error) -> Self {
        let (source, class) = TssError::new(error);
        match class {
            Class::Integrity => Self::KeyFromAnotherTpm {
                path: path.to_owned(),
            },
            Class::Transport => Self::Transport {
                operation: "TPM2_Load",
                source,
            },
            Class::Lockout => Self::Lockout {
                operation: "TPM2_Load",
            },
            Class::Auth => Self::AuthFailed {
                operation: "TPM2_Load",
                source,
            },
            Class::Other => Self::Command {
                operation: "TPM2_Load",
                source,
            },
        }
    }

    /// True when the TPM reported that a handle (an NV index, an object)
    /// does not exist.
    pub(crate) fn is_missing_handle(error: &tss_esapi::Error) -> bool {
        matches!(
            error,
            tss_esapi::Error::Tss2Error(rc)
                if layer_of(raw_code(*rc)) == LAYER_TPM
                    && rc.kind() == Some(Tss2ResponseCodeKind::Handle)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_code(code: u32) -> tss_esapi::Error {
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::from(code))
    }

    #[test]
    fn classifies_the_common_failures() {
        // TPM_RC_LOCKOUT (warning 0x921).
        assert!(matches!(
            TpmError::command("TPM2_Sign", from_code(0x921)),
            TpmError::Lockout {
                operation: "TPM2_Sign"
            }
        ));
        // TPM_RC_AUTH_FAIL on session 1 (0x98e) and TPM_RC_BAD_AUTH (0x9a2).
        for code in [0x98e, 0x9a2] {
            assert!(matches!(
                TpmError::command("TPM2_CreatePrimary", from_code(code)),
                TpmError::AuthFailed { .. }
            ));
        }
        // TPM_RC_INTEGRITY on parameter 1 (0x1df) while loading a key file.
        let err = TpmError::load(std::path::Path::new("/k"), from_code(0x1df));
        assert!(matches!(err, TpmError::KeyFromAnotherTpm { .. }), "{err}");
        // TSS2_TCTI_RC_IO_ERROR.
        let err = TpmError::command("TPM2_Sign", from_code(0x000a_000a));
        let TpmError::Transport { source, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(source.code(), 0x000a_000a);
        assert_eq!(source.layer(), 10);
        assert_eq!(
            err.to_string(),
            "TPM2_Sign: lost the connection to the TPM: TCTI: input/output error (TSS2_RC 0x000a000a)"
        );
    }

    #[test]
    fn recognises_a_missing_handle() {
        // TPM_RC_HANDLE on handle 1 (0x18b).
        assert!(TpmError::is_missing_handle(&from_code(0x18b)));
        assert!(!TpmError::is_missing_handle(&from_code(0x921)));
        // The same low bits from another layer are not the TPM's answer.
        assert!(!TpmError::is_missing_handle(&from_code(0x0007_018b)));
    }
}
