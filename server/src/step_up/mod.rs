//! Admin step-up: what privileged admin actions (revoke-all, key rotation,
//! admin enrollment codes, disabling an admin) need on top of an admin's
//! DPoP-bound token.
//!
//! A step-up is a *grant* bound to one session (`sid`) for
//! `admin.step_up_ttl_secs`, obtained with one factor:
//! - a signature over a one-time challenge by a YubiKey of the same admin
//!   whose attested touch policy is `always` (physical presence), or
//! - a TOTP code (RFC 6238), the secret sealed under a key kept outside
//!   the store.
//!
//! [`MAX_FAILURES`] consecutive failed attempts lock step-up for the admin
//! for `admin.step_up_lockout_secs`; another admin with a step-up, or the
//! server host, can unlock. Every grant, failure, lockout, unlock and TOTP
//! change is audited; no record holds a code, a secret or a proof.
//!
//! No HTTP here: `http/admin/step_up.rs` maps these calls and errors to the
//! wire.

mod error;
mod seal;
pub mod totp;

use std::path::PathBuf;

use holdfast_hw::KeyKind;
use holdfast_proto::{StepUpCheck, UnixTime, verify_step_up_proof};

pub use error::{FactorFailure, RequireError, StepUpError, StepUpRequired};
pub use seal::SealError;

use self::seal::SealingKey;
use self::totp::TotpSecret;
use crate::audit::AuditEntry;
use crate::issuer::audit;
use crate::model::{Device, DeviceId, DeviceState, Principal, PrincipalId, Session};
use crate::secret::{random_secret, secret_hash};
use crate::state::AppState;
use crate::store::{StepUpAttempt, StepUpChallengeRecord, StepUpGrant, StepUpState, StoreError};

/// Consecutive failed attempts that lock step-up.
pub const MAX_FAILURES: u32 = 3;
/// Lifetime of a step-up challenge, seconds: enough to find and touch a
/// YubiKey.
pub const CHALLENGE_TTL_SECS: u64 = 120;
/// Largest distance between a step-up proof's `iat` and the issuer's
/// clock, seconds.
pub const PROOF_SKEW_SECS: u64 = 60;

/// The admin asking: who, in which session, from where.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The admin principal.
    pub principal: &'a Principal,
    /// The session the grant will belong to.
    pub session: &'a Session,
    /// The client address, for the audit log.
    pub ip: &'a str,
}

impl Caller<'_> {
    fn actor(&self) -> String {
        format!("admin:{}", self.principal.id)
    }

    fn entry(&self, now: UnixTime, event: &str, outcome: &str) -> AuditEntry {
        AuditEntry::new(now, event, &self.actor(), outcome)
            .ip(Some(self.ip))
            .detail("sid", self.session.id.as_str())
    }
}

/// A factor presented for a step-up.
#[derive(Debug, Clone, Copy)]
pub enum Factor<'a> {
    /// A TOTP code from the admin's authenticator.
    Totp {
        /// Six digits.
        code: &'a str,
    },
    /// A step-up proof by one of the admin's YubiKeys.
    Yubikey {
        /// The device whose key signed.
        device: &'a DeviceId,
        /// The compact JWS (`holdfast-step-up+jwt`).
        proof: &'a str,
    },
}

impl Factor<'_> {
    /// `totp` or `yubikey`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Totp { .. } => "totp",
            Self::Yubikey { .. } => "yubikey",
        }
    }
}

/// Whether `device` can answer a step-up: a YubiKey whose attestation
/// showed touch policy `always`, so every signature needed a touch. The one
/// place that reads the attestation details' `touch_policy`.
///
/// # Errors
/// Why not, for a person.
pub fn touch_always(device: &Device) -> Result<(), String> {
    if device.kind != KeyKind::Yubikey || device.attestation.kind != KeyKind::Yubikey.as_str() {
        return Err(format!(
            "it is a {} key, not an attested YubiKey",
            device.kind.as_str()
        ));
    }
    match device.attestation.details.get("touch_policy") {
        Some(serde_json::Value::String(policy)) if policy == "always" => Ok(()),
        Some(serde_json::Value::String(policy)) => Err(format!(
            "its attested touch policy is `{}`",
            policy.chars().take(16).collect::<String>()
        )),
        _ => Err("its attestation shows no touch policy".to_owned()),
    }
}

/// Checks that `caller` holds a live step-up grant for its session.
///
/// # Errors
/// [`RequireError::Required`] saying what to do, or a store failure.
pub fn require(state: &AppState, caller: &Caller<'_>, now: UnixTime) -> Result<(), RequireError> {
    let grant = state.store.step_up_grant(&caller.session.id)?;
    let live = grant.is_some_and(|g| g.principal == caller.principal.id && g.expires_at > now);
    if live {
        return Ok(());
    }
    // An unconfirmed TOTP secret is not yet a factor for enrollment, but it
    // is what the admin steps up with next.
    let enrolled = state
        .store
        .step_up_state(&caller.principal.id)?
        .totp
        .is_some();
    let message = if enrolled || has_factor(state, &caller.principal.id)? {
        "run `holdfast admin step-up` (a YubiKey touch or a TOTP code)".to_owned()
    } else {
        "this admin has no step-up factor yet: enroll TOTP with `holdfast admin step-up \
         totp-enroll` (or enroll a YubiKey with touch policy always), then run `holdfast admin \
         step-up`"
            .to_owned()
    };
    Err(StepUpRequired(message).into())
}

/// A new one-time challenge for a YubiKey step-up by `caller`'s session:
/// `(challenge, lifetime in seconds)`.
///
/// # Errors
/// A store failure.
pub fn challenge(
    state: &AppState,
    caller: &Caller<'_>,
    now: UnixTime,
) -> Result<(String, u64), StoreError> {
    // Expired challenges and grants go here, so they cannot pile up.
    state.store.prune_step_up(now)?;
    let challenge = random_secret();
    let record = StepUpChallengeRecord {
        sid: caller.session.id.clone(),
        principal: caller.principal.id.clone(),
        expires_at: now.plus(CHALLENGE_TTL_SECS),
    };
    state
        .store
        .put_step_up_challenge(&secret_hash(&challenge), &record)?;
    Ok((challenge, CHALLENGE_TTL_SECS))
}

/// Checks `factor` for `caller` and, if it holds, grants its session a
/// step-up. Refusals are audited (`step_up_failed`, `step_up_locked`) and
/// counted in metrics here.
///
/// # Errors
/// [`StepUpError`]; [`StepUpError::Failed`] says how many failures remain.
pub fn step_up(
    state: &AppState,
    caller: &Caller<'_>,
    factor: Factor<'_>,
    now: UnixTime,
) -> Result<StepUpGrant, StepUpError> {
    let result = attempt(state, caller, factor, now);
    match &result {
        Ok(grant) => audit(
            state,
            caller
                .entry(now, "step_up_granted", "ok")
                .detail("method", factor.method())
                .detail("expires_at", grant.expires_at.as_secs())
                .detail(
                    "device_id",
                    grant.device.as_ref().map(|d| d.as_str().to_owned()),
                ),
        ),
        Err(err) => refused(state, caller, factor, err, now),
    }
    result
}

fn attempt(
    state: &AppState,
    caller: &Caller<'_>,
    factor: Factor<'_>,
    now: UnixTime,
) -> Result<StepUpGrant, StepUpError> {
    let principal = &caller.principal.id;
    // Locked: nothing is checked, nothing counted.
    let current = state.store.step_up_state(principal)?;
    if let Some(until) = current.locked_until.filter(|until| *until > now) {
        return Err(StepUpError::Locked { until });
    }
    // What can be checked without guessing anything is checked before the
    // attempt counts: a typo in the request is not a failed factor.
    let prepared = prepare(state, caller, &current, factor)?;
    match state
        .store
        .begin_step_up_attempt(principal, now, MAX_FAILURES)?
    {
        StepUpAttempt::Allowed(_) => {}
        StepUpAttempt::Locked(until) => return Err(StepUpError::Locked { until }),
        StepUpAttempt::Saturated => return Err(StepUpError::Saturated),
    }
    match verify(state, caller, prepared, now) {
        Ok(device) => {
            state.store.clear_step_up_failures(principal, now)?;
            let grant = StepUpGrant {
                sid: caller.session.id.clone(),
                principal: principal.clone(),
                method: factor.method().to_owned(),
                device,
                granted_at: now,
                expires_at: now.plus(state.settings.raw.admin.step_up_ttl_secs),
            };
            state.store.put_step_up_grant(&grant)?;
            Ok(grant)
        }
        Err(Verify::Failed(failure)) => {
            let lock_until = now.plus(state.settings.raw.admin.step_up_lockout_secs);
            let after = state
                .store
                .fail_step_up_attempt(principal, MAX_FAILURES, lock_until)?;
            let locked_until = after.locked_until.filter(|until| *until > now);
            let remaining = match locked_until {
                Some(_) => 0,
                None => MAX_FAILURES.saturating_sub(after.failures),
            };
            Err(StepUpError::Failed {
                failure,
                remaining,
                locked_until,
            })
        }
        Err(Verify::Error(e)) => Err(e),
    }
}

/// A factor ready to check: the TOTP secret unsealed, or the device found
/// and eligible.
enum Prepared<'a> {
    Totp { code: &'a str, secret: TotpSecret },
    Yubikey { device: Box<Device>, proof: &'a str },
}

fn prepare<'a>(
    state: &AppState,
    caller: &Caller<'_>,
    current: &StepUpState,
    factor: Factor<'a>,
) -> Result<Prepared<'a>, StepUpError> {
    match factor {
        Factor::Totp { code } => {
            if code.len() != totp::DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(StepUpError::TotpMalformed);
            }
            let stored = current.totp.as_ref().ok_or(StepUpError::TotpNotEnrolled)?;
            let key = SealingKey::load(&key_file(state), false)?;
            let secret = key.open(stored, &caller.principal.id)?;
            Ok(Prepared::Totp { code, secret })
        }
        Factor::Yubikey { device, proof } => {
            let found = state
                .store
                .device(device)?
                .filter(|d| d.principal == caller.principal.id && d.state == DeviceState::Active)
                .ok_or_else(|| StepUpError::DeviceNotYours(device.clone()))?;
            touch_always(&found).map_err(|reason| StepUpError::DeviceNotEligible {
                device: device.clone(),
                reason,
            })?;
            Ok(Prepared::Yubikey {
                device: Box::new(found),
                proof,
            })
        }
    }
}

enum Verify {
    Failed(FactorFailure),
    Error(StepUpError),
}

impl From<StoreError> for Verify {
    fn from(e: StoreError) -> Self {
        Self::Error(e.into())
    }
}

/// Checks a prepared factor; the device that signed, for a YubiKey.
fn verify(
    state: &AppState,
    caller: &Caller<'_>,
    prepared: Prepared<'_>,
    now: UnixTime,
) -> Result<Option<DeviceId>, Verify> {
    let principal = &caller.principal.id;
    match prepared {
        Prepared::Totp { code, secret } => {
            let step = secret
                .verify(code, now)
                .ok_or(Verify::Failed(FactorFailure::TotpMismatch))?;
            // RFC 6238 §5.2: one success per code. Spent last, so a wrong
            // code burns nothing.
            if !state.store.spend_totp_step(principal, step)? {
                return Err(Verify::Failed(FactorFailure::TotpReused));
            }
            Ok(None)
        }
        Prepared::Yubikey { device, proof } => {
            let kids = [device.jkt.as_str(), device.id.as_str()];
            let check = StepUpCheck {
                jwk: &device.jwk,
                kids: &kids,
                sid: caller.session.id.as_str(),
                max_skew_secs: PROOF_SKEW_SECS,
                now,
            };
            let verified = verify_step_up_proof(proof, &check)
                .map_err(|e| Verify::Failed(FactorFailure::Proof(e)))?;
            // The challenge is state: consulted last, so a bad proof cannot
            // burn it. It must be this session's.
            let challenge = state
                .store
                .take_step_up_challenge(&secret_hash(verified.challenge()), now)?;
            if !challenge.is_some_and(|r| r.sid == caller.session.id && r.principal == *principal) {
                return Err(Verify::Failed(FactorFailure::ChallengeUnknown));
            }
            Ok(Some(device.id))
        }
    }
}

/// Counts, logs and audits a refused step-up.
fn refused(
    state: &AppState,
    caller: &Caller<'_>,
    factor: Factor<'_>,
    err: &StepUpError,
    now: UnixTime,
) {
    if matches!(err, StepUpError::Store(_)) {
        return;
    }
    let check = err.check();
    state.metrics.refused("step_up_failed", check);
    tracing::warn!(
        check,
        method = factor.method(),
        sid = %caller.session.id,
        "step-up refused"
    );
    let mut entry = caller
        .entry(now, "step_up_failed", "access_denied")
        .detail("method", factor.method())
        .detail("check", check)
        .detail("reason", err.to_string())
        .detail("counted", matches!(err, StepUpError::Failed { .. }));
    if let Factor::Yubikey { device, .. } = factor {
        entry = entry.detail("device_id", device.as_str());
    }
    audit(state, entry);
    if let StepUpError::Failed {
        locked_until: Some(until),
        ..
    } = err
    {
        state.metrics.refused("step_up_locked", factor.method());
        tracing::warn!(principal = %caller.principal.id, until = until.as_secs(), "step-up locked");
        audit(
            state,
            caller
                .entry(now, "step_up_locked", "access_denied")
                .detail("principal", caller.principal.id.as_str())
                .detail("method", factor.method())
                .detail("failures", MAX_FAILURES)
                .detail("until", until.as_secs()),
        );
    }
}

/// Enrolls (or replaces) `caller`'s TOTP secret and returns the
/// `otpauth://` URI, the only time the secret is shown.
///
/// The bootstrap rule: while the admin has no step-up factor (no confirmed
/// TOTP secret, no touch-`always` YubiKey), a session begun within
/// `admin.step_up_max_age_secs` is enough, and the secret counts as a
/// factor once a code from it has granted a step-up; once the admin has a
/// factor, replacing the secret needs a step-up of this session (and the
/// new secret counts at once). Never while locked.
///
/// # Errors
/// [`StepUpError::Locked`], [`StepUpError::NotPermitted`], or a key file or
/// store failure.
pub fn enroll_totp(
    state: &AppState,
    caller: &Caller<'_>,
    now: UnixTime,
) -> Result<String, StepUpError> {
    let principal = &caller.principal.id;
    let current = state.store.step_up_state(principal)?;
    if let Some(until) = current.locked_until.filter(|until| *until > now) {
        return Err(StepUpError::Locked { until });
    }
    let authorised_by =
        if has_factor(state, principal)? {
            match require(state, caller, now) {
                Ok(()) => {}
                Err(RequireError::Store(e)) => return Err(e.into()),
                Err(RequireError::Required(_)) => return Err(StepUpError::NotPermitted(
                    "this admin has a step-up factor already: step up first to replace the TOTP \
                 secret (`holdfast admin step-up totp-enroll --totp CODE` or `--yubikey`); if \
                 the authenticator is lost, run `holdfastd admin totp-reset NAME` on the server \
                 host"
                        .to_owned(),
                )),
            }
            "step_up"
        } else {
            let max_age = state.settings.raw.admin.step_up_max_age_secs;
            let age = now
                .as_secs()
                .saturating_sub(caller.session.created_at.as_secs());
            if age > max_age {
                return Err(StepUpError::NotPermitted(format!(
                    "enrolling the first step-up factor needs a session begun within {max_age} s: \
                 log in again (every holdfast run starts a new session) and retry"
                )));
            }
            "recent_session"
        };
    let key = SealingKey::load(&key_file(state), true)?;
    let secret = TotpSecret::generate();
    let mut stored = key.seal(&secret, principal, now)?;
    // A secret set under a step-up is a factor at once: otherwise a stolen
    // session could replace it again before its first use.
    stored.confirmed = authorised_by == "step_up";
    let replaced = state.store.set_totp_secret(principal, Some(&stored))?;
    let host = state
        .settings
        .issuer
        .split("://")
        .nth(1)
        .unwrap_or(&state.settings.issuer);
    let uri = secret.otpauth_uri(&format!("Holdfast {host}"), &caller.principal.name);
    audit(
        state,
        caller
            .entry(now, "step_up_totp_enrolled", "ok")
            .detail("principal", principal.as_str())
            .detail("authorised_by", authorised_by)
            .detail("replaced", replaced),
    );
    Ok(uri)
}

/// Lifts `target`'s step-up lockout and failure count, for `actor` (an
/// admin `admin:<id>` with a step-up, or `cli` on the server host).
/// Returns whether it was locked.
///
/// # Errors
/// [`StepUpError::UnknownPrincipal`] or a store failure.
pub fn unlock(
    state: &AppState,
    target: &PrincipalId,
    actor: &str,
    ip: Option<&str>,
    now: UnixTime,
) -> Result<bool, StepUpError> {
    if state.store.principal(target)?.is_none() {
        return Err(StepUpError::UnknownPrincipal(target.to_string()));
    }
    let was_locked = state.store.clear_step_up_failures(target, now)?;
    state.store.append_audit(
        AuditEntry::new(now, "step_up_unlocked", actor, "ok")
            .ip(ip)
            .detail("principal", target.as_str())
            .detail("was_locked", was_locked),
    )?;
    Ok(was_locked)
}

/// Removes `name`'s TOTP secret (on the server host, when the
/// authenticator is lost). Returns whether there was one.
///
/// # Errors
/// [`StepUpError::UnknownPrincipal`] or a store failure.
pub fn totp_reset(state: &AppState, name: &str, now: UnixTime) -> Result<bool, StepUpError> {
    let principal = principal_named(state, name)?;
    let had = state.store.set_totp_secret(&principal.id, None)?;
    state.store.append_audit(
        AuditEntry::new(now, "step_up_totp_reset", "cli", "ok")
            .detail("principal", principal.id.as_str())
            .detail("had_secret", had),
    )?;
    Ok(had)
}

/// [`unlock`] by principal name, on the server host.
///
/// # Errors
/// [`StepUpError::UnknownPrincipal`] or a store failure.
pub fn unlock_by_name(state: &AppState, name: &str, now: UnixTime) -> Result<bool, StepUpError> {
    let principal = principal_named(state, name)?;
    unlock(state, &principal.id, "cli", None, now)
}

fn principal_named(state: &AppState, name: &str) -> Result<Principal, StepUpError> {
    state
        .store
        .principal_by_name(name)?
        .ok_or_else(|| StepUpError::UnknownPrincipal(name.to_owned()))
}

/// Whether `principal` has a step-up factor: a confirmed TOTP secret, or an
/// active YubiKey with touch policy `always`.
fn has_factor(state: &AppState, principal: &PrincipalId) -> Result<bool, StoreError> {
    let current = state.store.step_up_state(principal)?;
    if current.totp.as_ref().is_some_and(|t| t.confirmed) {
        return Ok(true);
    }
    Ok(state.store.devices()?.iter().any(|d| {
        d.principal == *principal && d.state == DeviceState::Active && touch_always(d).is_ok()
    }))
}

/// Where the TOTP sealing key lives: `admin.totp_key_file`, by default
/// `<data_dir>/totp.key`.
fn key_file(state: &AppState) -> PathBuf {
    let raw = &state.settings.raw;
    raw.admin
        .totp_key_file
        .clone()
        .unwrap_or_else(|| raw.data_dir.join("totp.key"))
}
