//! Storage: one trait for everything the issuer keeps, so a networked
//! backend (PostgreSQL for records, Redis for the replay cache) can replace
//! the embedded sled store without touching a handler.
//!
//! Every operation that must not be half-done (redeeming a code, rotating a
//! refresh token, appending to the audit chain) is one call here, and each
//! implementation makes it atomic.

mod records;
mod sled_store;

use holdfast_proto::{Freshness, Jkt, UnixTime};

pub use records::{AuditRecord, DeviceFeedEntry, RevocationEvent, SigningKeyRecord};
pub use sled_store::SledStore;

use crate::model::{
    Device, DeviceId, EnrollmentCode, Principal, PrincipalId, RefreshRecord, Session, SessionId,
};

/// A storage failure. Handlers answer `server_error` and log it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored record could not be decoded (corruption or a newer format).
    #[error("stored record in {tree} cannot be decoded: {reason}")]
    Corrupt {
        /// Which collection.
        tree: &'static str,
        /// Why.
        reason: String,
    },
    /// A uniqueness rule would be broken (e.g. a key enrolled twice).
    #[error("{0} already exists")]
    Conflict(&'static str),
}

/// What happened to an enrollment code on redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The device is registered and the code is spent.
    Enrolled(Box<Device>),
    /// No such code.
    UnknownCode,
    /// The code was used already.
    CodeUsed,
    /// The code expired.
    CodeExpired,
    /// The key is enrolled already (for another device).
    KeyAlreadyEnrolled,
}

/// What happened to a refresh token on exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// Spent; the new one is stored.
    Rotated(RefreshRecord),
    /// Already spent: theft. The session has been revoked.
    Reused(RefreshRecord),
    /// Unknown or expired.
    Unknown,
}

/// Everything the issuer stores.
pub trait Store: Send + Sync + 'static {
    // Principals.
    /// Creates or replaces a principal (names are unique).
    fn put_principal(&self, principal: &Principal) -> Result<(), StoreError>;
    /// A principal by id.
    fn principal(&self, id: &PrincipalId) -> Result<Option<Principal>, StoreError>;
    /// A principal by name.
    fn principal_by_name(&self, name: &str) -> Result<Option<Principal>, StoreError>;
    /// All principals.
    fn principals(&self) -> Result<Vec<Principal>, StoreError>;

    // Devices.
    /// Replaces an existing device record (state, last seen).
    fn update_device(&self, device: &Device) -> Result<(), StoreError>;
    /// A device by id.
    fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError>;
    /// The device holding key `jkt`.
    fn device_by_jkt(&self, jkt: &Jkt) -> Result<Option<Device>, StoreError>;
    /// All devices.
    fn devices(&self) -> Result<Vec<Device>, StoreError>;

    // Enrollment.
    /// Stores a code under the hash of its value.
    fn put_enrollment_code(
        &self,
        code_hash: &[u8; 32],
        code: &EnrollmentCode,
    ) -> Result<(), StoreError>;
    /// The code stored under `code_hash`.
    fn enrollment_code(&self, code_hash: &[u8; 32]) -> Result<Option<EnrollmentCode>, StoreError>;
    /// Atomically: the code is unused and unexpired at `now`, the key is not
    /// enrolled; then the code is spent and `device` registered.
    fn redeem_enrollment_code(
        &self,
        code_hash: &[u8; 32],
        device: &Device,
        now: UnixTime,
    ) -> Result<Redeemed, StoreError>;
    /// Stores a one-time enrollment challenge until `expires_at`, with the
    /// context the enrollment flow attaches to it (empty for most kinds; a
    /// TPM credential-activation record for TPM enrollments). The store does
    /// not interpret the context.
    fn put_challenge(
        &self,
        challenge_hash: &[u8; 32],
        expires_at: UnixTime,
        context: &[u8],
    ) -> Result<(), StoreError>;
    /// The context of a challenge that exists and is unexpired at `now`,
    /// without spending it.
    fn challenge(
        &self,
        challenge_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes a challenge; its context if it existed and was unexpired at
    /// `now`.
    fn take_challenge(
        &self,
        challenge_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    // Sessions and refresh tokens.
    /// Stores a new session and its first refresh token together.
    fn create_session(
        &self,
        session: &Session,
        refresh_hash: &[u8; 32],
        refresh: &RefreshRecord,
    ) -> Result<(), StoreError>;
    /// Replaces a session record (refresh time, flags, revocation).
    fn update_session(&self, session: &Session) -> Result<(), StoreError>;
    /// A session by id.
    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;
    /// All sessions (admin listing).
    fn sessions(&self) -> Result<Vec<Session>, StoreError>;
    /// The refresh token stored under `hash`.
    fn refresh_token(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError>;
    /// Atomically spends the refresh token `old_hash` and stores `new`
    /// under `new_hash`; if it was already spent, revokes its session
    /// (reason `refresh_token_reuse`) and stores nothing new.
    fn rotate_refresh_token(
        &self,
        old_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new: &RefreshRecord,
        now: UnixTime,
    ) -> Result<Rotated, StoreError>;

    // Replay cache (proof and client-assertion `jti`s).
    /// Insert-if-absent with expiry; durable across restarts.
    fn check_and_record(
        &self,
        key: &[u8; 32],
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, StoreError>;
    /// Deletes expired entries; returns how many.
    fn prune_replay(&self, now: UnixTime) -> Result<usize, StoreError>;

    // Issuer signing keys.
    /// Stores a key record (new or retired).
    fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// All signing keys, oldest first.
    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    // Revocation.
    /// Appends to the revocation feed; returns the event with its cursor.
    fn append_revocation(&self, event: RevocationEvent) -> Result<RevocationEvent, StoreError>;
    /// Feed events after `cursor`, at most `limit`.
    fn revocations_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<RevocationEvent>, StoreError>;
    /// Tokens issued before this instant are dead ("revoke all").
    fn revoke_all_before(&self) -> Result<Option<UnixTime>, StoreError>;
    /// Sets the revoke-all instant (only ever moves forward).
    fn set_revoke_all_before(&self, at: UnixTime) -> Result<(), StoreError>;

    // Audit.
    /// Appends a record to the hash chain, atomically with its link.
    fn append_audit(&self, entry: crate::audit::AuditEntry) -> Result<AuditRecord, StoreError>;
    /// Records with `seq >= from`, at most `limit`.
    fn audit_range(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Makes every acknowledged write durable.
    fn flush(&self) -> Result<(), StoreError>;

    // -----------------------------------------------------------------
    // Admin step-up (issue 7). The rules are `crate::step_up`'s; these
    // are the atomic pieces it needs.
    // -----------------------------------------------------------------
    /// `principal`'s step-up state (the default when nothing is stored).
    fn step_up_state(&self, principal: &PrincipalId) -> Result<StepUpState, StoreError>;
    /// Replaces `principal`'s TOTP secret, or removes it (`None`); true if
    /// one was enrolled before. The spent steps go with the old secret;
    /// failures and lockout are kept.
    fn set_totp_secret(
        &self,
        principal: &PrincipalId,
        totp: Option<&StoredTotp>,
    ) -> Result<bool, StoreError>;
    /// Atomically spends TOTP time step `step` for `principal`: true (and
    /// the secret is marked confirmed) if it is later than every step
    /// spent before; false if it, or a later one, was spent already.
    fn spend_totp_step(&self, principal: &PrincipalId, step: u64) -> Result<bool, StoreError>;
    /// Atomically starts a step-up attempt at `now`: refused while locked,
    /// or when `max_failures` attempts are already counted; otherwise the
    /// attempt is counted as a failure in advance (so concurrent guesses
    /// cannot exceed the limit) until [`Self::clear_step_up_failures`].
    fn begin_step_up_attempt(
        &self,
        principal: &PrincipalId,
        now: UnixTime,
        max_failures: u32,
    ) -> Result<StepUpAttempt, StoreError>;
    /// An attempt failed: if `max_failures` are counted, locks step-up
    /// until `lock_until` and restarts the count. Returns the state after.
    fn fail_step_up_attempt(
        &self,
        principal: &PrincipalId,
        max_failures: u32,
        lock_until: UnixTime,
    ) -> Result<StepUpState, StoreError>;
    /// A success or an unlock: no failures, no lockout. True if step-up
    /// was locked at `now`.
    fn clear_step_up_failures(
        &self,
        principal: &PrincipalId,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Stores `grant` for its session, replacing any earlier one.
    fn put_step_up_grant(&self, grant: &StepUpGrant) -> Result<(), StoreError>;
    /// The grant of session `sid`, expired or not.
    fn step_up_grant(&self, sid: &SessionId) -> Result<Option<StepUpGrant>, StoreError>;
    /// Stores a one-time step-up challenge under its hash.
    fn put_step_up_challenge(
        &self,
        challenge_hash: &[u8; 32],
        challenge: &StepUpChallengeRecord,
    ) -> Result<(), StoreError>;
    /// Removes a step-up challenge; the record if it existed and was
    /// unexpired at `now`.
    fn take_step_up_challenge(
        &self,
        challenge_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<StepUpChallengeRecord>, StoreError>;
    /// Deletes expired step-up grants and challenges; returns how many.
    fn prune_step_up(&self, now: UnixTime) -> Result<usize, StoreError>;
}

/// Puts a [`Store`]'s replay cache behind `proto`'s [`holdfast_proto::ReplayGuard`].
pub struct StoreReplayGuard<'a>(pub &'a dyn Store);

impl holdfast_proto::ReplayGuard for StoreReplayGuard<'_> {
    fn check_and_record(
        &self,
        key: holdfast_proto::ReplayKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, holdfast_proto::ReplayGuardError> {
        self.0
            .check_and_record(key.as_bytes(), expires_at, now)
            .map_err(|e| holdfast_proto::ReplayGuardError::Store(e.to_string()))
    }
}

// Admin step-up records (issue 7).
pub use records::{StepUpAttempt, StepUpChallengeRecord, StepUpGrant, StepUpState, StoredTotp};

#[cfg(test)]
mod tests;
