//! What a step-up refusal says: which check failed (for audit records and
//! metrics) and what the admin should do next (the message).

use holdfast_proto::{StepUpProofError, UnixTime};

use super::{MAX_FAILURES, SealError};
use crate::model::DeviceId;
use crate::store::StoreError;

/// A factor that was checked and did not hold. Each of these counts towards
/// the lockout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FactorFailure {
    /// No step of the accepted window has this code.
    #[error("wrong TOTP code (check the authenticator's clock)")]
    TotpMismatch,
    /// The code's step, or a later one, has granted a step-up already.
    #[error("this TOTP code was used already: wait for the next one (every 30 s)")]
    TotpReused,
    /// The challenge is unknown, expired, spent, or another session's.
    #[error(
        "the step-up challenge is unknown, expired, used or another session's: ask for a new one"
    )]
    ChallengeUnknown,
    /// The proof does not hold.
    #[error("step-up proof refused: {0}")]
    Proof(StepUpProofError),
}

impl FactorFailure {
    /// The failed check's name, for audit records and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            Self::TotpMismatch => "totp_mismatch",
            Self::TotpReused => "totp_reused",
            Self::ChallengeUnknown => "challenge_unknown",
            Self::Proof(e) => e.check(),
        }
    }
}

/// Why a step-up (or a step-up administration call) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepUpError {
    /// A factor was checked and failed; `remaining` more failures lock
    /// step-up, or it is now locked until `locked_until`.
    #[error("{failure}; {}", after_failure(*.remaining, *.locked_until))]
    Failed {
        /// What failed.
        failure: FactorFailure,
        /// Failures left before the lockout (0 when it locked now).
        remaining: u32,
        /// Set when this failure locked step-up.
        locked_until: Option<UnixTime>,
    },
    /// Step-up is locked after repeated failures.
    #[error(
        "step-up is locked until {until} (Unix time) after {MAX_FAILURES} failures: wait, ask \
         another admin to unlock it (`holdfast admin step-up unlock NAME`), or run `holdfastd \
         admin unlock-step-up NAME` on the server host"
    )]
    Locked {
        /// Until when.
        until: UnixTime,
    },
    /// As many attempts as allowed are already under way.
    #[error("another step-up attempt of this admin is under way: wait for it and try again")]
    Saturated,
    /// No TOTP secret is enrolled.
    #[error("no TOTP secret is enrolled for this admin: run `holdfast admin step-up totp-enroll`")]
    TotpNotEnrolled,
    /// The code is not six digits.
    #[error("a TOTP code is 6 digits")]
    TotpMalformed,
    /// The device is not the caller's, or not active.
    #[error("{0} is not an active device of this admin")]
    DeviceNotYours(DeviceId),
    /// The device cannot answer a step-up (see [`touch_always`]).
    #[error(
        "{device} cannot step up: {reason}; step-up needs a YubiKey whose attested touch policy is `always`, or TOTP"
    )]
    DeviceNotEligible {
        /// The device.
        device: DeviceId,
        /// Why not.
        reason: String,
    },
    /// The caller may not do this (e.g. replace a factor without a step-up).
    #[error("{0}")]
    NotPermitted(String),
    /// No such principal (host commands, unlock).
    #[error("no principal {0:?}")]
    UnknownPrincipal(String),
    /// The TOTP key file or a sealed secret is unusable.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StepUpError {
    /// The check's name, for audit records and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Failed { failure, .. } => failure.check(),
            Self::Locked { .. } => "locked",
            Self::Saturated => "attempts_saturated",
            Self::TotpNotEnrolled => "totp_not_enrolled",
            Self::TotpMalformed => "totp_malformed",
            Self::DeviceNotYours(_) => "device_not_yours",
            Self::DeviceNotEligible { .. } => "device_not_eligible",
            Self::NotPermitted(_) => "not_permitted",
            Self::UnknownPrincipal(_) => "unknown_principal",
            Self::Seal(_) => "totp_key",
            Self::Store(_) => "server_error",
        }
    }
}

fn after_failure(remaining: u32, locked_until: Option<UnixTime>) -> String {
    match locked_until {
        Some(until) => format!(
            "step-up is now locked until {until} (Unix time) after {MAX_FAILURES} failures: ask \
             another admin to unlock it, or run `holdfastd admin unlock-step-up NAME` on the \
             server host"
        ),
        None if remaining == 1 => "1 more failure locks step-up".to_owned(),
        None => format!("{remaining} more failures lock step-up"),
    }
}

/// Why a privileged action is refused: the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step-up required: {0}")]
pub struct StepUpRequired(pub(super) String);

/// Why [`require`] did not let an action through.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequireError {
    /// No live step-up for this session.
    #[error(transparent)]
    Required(#[from] StepUpRequired),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
