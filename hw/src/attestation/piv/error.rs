//! Why a PIV attestation was refused: one variant per failed check.

use core::fmt;

use super::extensions::{Firmware, PinPolicy, TouchPolicy};

/// Which certificate of a PIV attestation chain a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertRole {
    /// The slot's attestation certificate (the output of PIV `ATTEST`).
    Slot,
    /// The device's attestation certificate, from slot f9.
    F9,
    /// A pinned intermediate between the f9 certificate and the root.
    Intermediate,
    /// The trust anchor the chain ends at.
    Root,
}

impl CertRole {
    /// The role's name, as used in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Slot => "slot",
            Self::F9 => "f9",
            Self::Intermediate => "intermediate",
            Self::Root => "root",
        }
    }
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PIV attestation that does not prove what the issuer needs.
///
/// Each variant is one check; [`PivAttestError::check`] names it in
/// snake_case for logs, audit records and metrics. Messages name the
/// certificate and the reason; nothing here is secret (certificates and
/// policies are public).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PivAttestError {
    /// A certificate does not parse, or a Yubico extension is missing or
    /// holds a value this verifier does not know.
    #[error("the {role} certificate is malformed: {reason}")]
    AttestationMalformed {
        /// The certificate at fault.
        role: CertRole,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificates are not one of the known chain shapes (for example
    /// a root or a pinned intermediate sent in place of the f9 certificate,
    /// or a slot certificate that claims to be a CA).
    #[error("the chain is not a YubiKey attestation chain: {reason}")]
    ChainShapeInvalid {
        /// Which shape rule was broken.
        reason: String,
    },
    /// The f9 certificate (or the last pinned intermediate) was issued by a
    /// CA that is not among the trust store's anchors.
    #[error("the chain ends at {issuer}, which is not a trusted root (trusted: {trusted})")]
    ChainUntrusted {
        /// The untrusted issuer's name.
        issuer: String,
        /// The anchors the trust store holds.
        trusted: String,
    },
    /// A certificate names an issuer other than the certificate above it.
    #[error(
        "the {child} certificate was not issued by the {issuer} certificate: it names its issuer \
         {expected}, the {issuer} certificate is {found}"
    )]
    ChainIssuerMismatch {
        /// The certificate whose issuer name is wrong.
        child: CertRole,
        /// The certificate expected to have issued it.
        issuer: CertRole,
        /// The issuer name in `child`.
        expected: String,
        /// The subject of `issuer`.
        found: String,
    },
    /// A signature in the chain does not verify under its issuer's key.
    #[error(
        "the {child} certificate was not issued by the {issuer} certificate ({issuer_subject}): \
         signature does not verify"
    )]
    ChainSignatureInvalid {
        /// The certificate whose signature failed.
        child: CertRole,
        /// The certificate whose key was used.
        issuer: CertRole,
        /// The subject of `issuer`.
        issuer_subject: String,
    },
    /// A certificate of the chain has expired at the time of the check.
    #[error("the {role} certificate ({subject}) expired at {not_after} (checked at {at})")]
    CertificateExpired {
        /// The expired certificate.
        role: CertRole,
        /// Its subject.
        subject: String,
        /// Its notAfter (RFC 3339).
        not_after: String,
        /// The time of the check (RFC 3339).
        at: String,
    },
    /// A certificate of the chain is not valid yet at the time of the check.
    #[error(
        "the {role} certificate ({subject}) is not valid before {not_before} (checked at {at})"
    )]
    CertificateNotYetValid {
        /// The certificate.
        role: CertRole,
        /// Its subject.
        subject: String,
        /// Its notBefore (RFC 3339).
        not_before: String,
        /// The time of the check (RFC 3339).
        at: String,
    },
    /// The chain ends at a trusted anchor that this policy does not allow.
    #[error("the chain ends at {anchor}, which this policy does not allow (allowed: {allowed})")]
    AnchorNotAllowed {
        /// The anchor's name (subject CN).
        anchor: String,
        /// The anchors the policy allows.
        allowed: String,
    },
    /// The YubiKey's firmware is older than the policy requires.
    #[error("firmware {found} is below the required {required}")]
    FirmwareTooOld {
        /// The attested firmware.
        found: Firmware,
        /// The policy's minimum.
        required: Firmware,
    },
    /// The key's PIN policy is not one the policy allows.
    #[error("PIN policy `{found}` is not allowed (allowed: {allowed})")]
    PinPolicyNotAllowed {
        /// The attested PIN policy.
        found: PinPolicy,
        /// The allowed PIN policies, comma-separated.
        allowed: String,
    },
    /// The key's touch policy is not one the policy allows.
    #[error("touch policy `{found}` is not allowed (allowed: {allowed})")]
    TouchPolicyNotAllowed {
        /// The attested touch policy.
        found: TouchPolicy,
        /// The allowed touch policies, comma-separated.
        allowed: String,
    },
    /// The policy requires a FIPS YubiKey and the f9 certificate carries no
    /// FIPS marker.
    #[error(
        "a FIPS YubiKey is required, and the f9 certificate has no FIPS marker \
         (1.3.6.1.4.1.41482.3.10)"
    )]
    FipsRequired,
    /// The attested public key is not the key being enrolled.
    #[error("the attested key is not the key being enrolled ({detail})")]
    KeyMismatch {
        /// How they differ (curve, or "different point").
        detail: String,
    },
}

impl PivAttestError {
    /// The stable snake_case name of the failed check, for logs, audit
    /// records and metrics.
    pub const fn check(&self) -> &'static str {
        match self {
            Self::AttestationMalformed { .. } => "attestation_malformed",
            Self::ChainShapeInvalid { .. } => "chain_shape_invalid",
            Self::ChainUntrusted { .. } => "chain_untrusted",
            Self::ChainIssuerMismatch { .. } => "chain_issuer_mismatch",
            Self::ChainSignatureInvalid { .. } => "chain_signature_invalid",
            Self::CertificateExpired { .. } => "certificate_expired",
            Self::CertificateNotYetValid { .. } => "certificate_not_yet_valid",
            Self::AnchorNotAllowed { .. } => "anchor_not_allowed",
            Self::FirmwareTooOld { .. } => "firmware_too_old",
            Self::PinPolicyNotAllowed { .. } => "pin_policy_not_allowed",
            Self::TouchPolicyNotAllowed { .. } => "touch_policy_not_allowed",
            Self::FipsRequired => "fips_required",
            Self::KeyMismatch { .. } => "key_mismatch",
        }
    }

    pub(super) fn malformed(role: CertRole, reason: impl Into<String>) -> Self {
        Self::AttestationMalformed {
            role,
            reason: reason.into(),
        }
    }

    pub(super) fn shape(reason: impl Into<String>) -> Self {
        Self::ChainShapeInvalid {
            reason: reason.into(),
        }
    }
}

/// A [`super::PivTrust`] that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PivTrustError {
    /// An anchor name that the trust store does not hold.
    #[error("unknown PIV trust anchor {name:?} (known: {known})")]
    UnknownAnchor {
        /// The name asked for.
        name: String,
        /// The names the trust store holds.
        known: String,
    },
    /// A test root whose name is already taken by another anchor (a test
    /// root must never pass for a Yubico root in a policy's anchor list).
    #[error("a PIV trust anchor named {name:?} is already present")]
    DuplicateAnchor {
        /// The name in conflict.
        name: String,
    },
    /// The test root PEM does not hold exactly one certificate that parses.
    #[error("the PIV test root is not one PEM certificate: {reason}")]
    TestRoot {
        /// Why.
        reason: String,
    },
}
