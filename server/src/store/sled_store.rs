//! The embedded store: sled, one tree per collection, JSON records in the
//! versioned envelope, multi-tree transactions where an operation must be
//! atomic, and an fsync after every acknowledged write by default.

use std::path::Path;

use holdfast_proto::{Freshness, Jkt, UnixTime};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use sled::{Db, Tree};

use super::records::{decode, encode};
use super::{AuditRecord, Redeemed, RevocationEvent, Rotated, SigningKeyRecord, Store, StoreError};
use super::{StepUpAttempt, StepUpChallengeRecord, StepUpGrant, StepUpState, StoredTotp};
use crate::audit::{AuditEntry, chain};
use crate::model::{
    Device, DeviceId, EnrollmentCode, Principal, PrincipalId, RefreshRecord, Revocation, Session,
    SessionId,
};

const AUDIT_HEAD: &[u8] = b"audit_head";
const REVOKE_ALL_BEFORE: &[u8] = b"revoke_all_before";

/// sled behind [`Store`].
pub struct SledStore {
    db: Db,
    principals: Tree,
    principal_names: Tree,
    devices: Tree,
    device_jkts: Tree,
    codes: Tree,
    challenges: Tree,
    sessions: Tree,
    refresh: Tree,
    replay: Tree,
    keys: Tree,
    revocations: Tree,
    audit: Tree,
    meta: Tree,
    /// Serialises feed appends: a cursor is handed out and its event written
    /// before the next cursor exists, so a reader never skips an event.
    revocation_lock: std::sync::Mutex<()>,
    sync_writes: bool,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. With `sync_writes`, every
    /// write is flushed to disk before it is acknowledged.
    ///
    /// # Errors
    /// [`StoreError::Backend`], e.g. when another process holds the store.
    pub fn open(dir: &Path, sync_writes: bool) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open().map_err(|e| {
            StoreError::Backend(format!("cannot open the store in {}: {e}", dir.display()))
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        Ok(Self {
            principals: tree("principals")?,
            principal_names: tree("principal_names")?,
            devices: tree("devices")?,
            device_jkts: tree("device_jkts")?,
            codes: tree("enrollment_codes")?,
            challenges: tree("enrollment_challenges")?,
            sessions: tree("sessions")?,
            refresh: tree("refresh_tokens")?,
            replay: tree("replay")?,
            keys: tree("signing_keys")?,
            revocations: tree("revocations")?,
            audit: tree("audit")?,
            meta: tree("meta")?,
            db,
            revocation_lock: std::sync::Mutex::new(()),
            sync_writes,
        })
    }

    fn durable(&self) -> Result<(), StoreError> {
        if self.sync_writes {
            self.db.flush().map_err(backend)?;
        }
        Ok(())
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        tree.get(key)
            .map_err(backend)?
            .map(|v| decode(name, &v))
            .transpose()
    }

    fn all<T: serde::de::DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        tree.iter()
            .values()
            .map(|v| decode(name, &v.map_err(backend)?))
            .collect()
    }
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn secs(bytes: &[u8]) -> Option<UnixTime> {
    Some(UnixTime::from_secs(u64::from_be_bytes(
        bytes.try_into().ok()?,
    )))
}

/// The context of a stored challenge (expiry ‖ context) if unexpired at `now`.
fn live_challenge(value: &[u8], now: UnixTime) -> Option<Vec<u8>> {
    let (expiry, context) = value.split_at_checked(8)?;
    (secs(expiry)? > now).then(|| context.to_vec())
}

impl Store for SledStore {
    fn put_principal(&self, principal: &Principal) -> Result<(), StoreError> {
        let value = encode("principals", principal)?;
        let id = principal.id.as_str().as_bytes();
        (&self.principals, &self.principal_names)
            .transaction(|(principals, names)| {
                if let Some(owner) = names.get(principal.name.as_bytes())?
                    && owner.as_ref() != id
                {
                    return Err(abort(StoreError::Conflict("a principal with this name")));
                }
                // A rename frees the old name.
                if let Some(raw) = principals.get(id)? {
                    let old: Principal = decode("principals", &raw).map_err(abort)?;
                    if old.name != principal.name {
                        names.remove(old.name.as_bytes())?;
                    }
                }
                principals.insert(id, value.as_slice())?;
                names.insert(principal.name.as_bytes(), id)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.durable()
    }

    fn principal(&self, id: &PrincipalId) -> Result<Option<Principal>, StoreError> {
        self.get(&self.principals, "principals", id.as_str().as_bytes())
    }

    fn principal_by_name(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        match self.principal_names.get(name.as_bytes()).map_err(backend)? {
            Some(id) => self.get(&self.principals, "principals", &id),
            None => Ok(None),
        }
    }

    fn principals(&self) -> Result<Vec<Principal>, StoreError> {
        self.all(&self.principals, "principals")
    }

    fn update_device(&self, device: &Device) -> Result<(), StoreError> {
        let value = encode("devices", device)?;
        self.devices
            .insert(device.id.as_str().as_bytes(), value)
            .map_err(backend)?;
        self.durable()
    }

    fn device(&self, id: &DeviceId) -> Result<Option<Device>, StoreError> {
        self.get(&self.devices, "devices", id.as_str().as_bytes())
    }

    fn device_by_jkt(&self, jkt: &Jkt) -> Result<Option<Device>, StoreError> {
        match self
            .device_jkts
            .get(jkt.as_str().as_bytes())
            .map_err(backend)?
        {
            Some(id) => self.get(&self.devices, "devices", &id),
            None => Ok(None),
        }
    }

    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        self.all(&self.devices, "devices")
    }

    fn put_enrollment_code(
        &self,
        code_hash: &[u8; 32],
        code: &EnrollmentCode,
    ) -> Result<(), StoreError> {
        self.codes
            .insert(code_hash, encode("enrollment_codes", code)?)
            .map_err(backend)?;
        self.durable()
    }

    fn enrollment_code(&self, code_hash: &[u8; 32]) -> Result<Option<EnrollmentCode>, StoreError> {
        self.get(&self.codes, "enrollment_codes", code_hash)
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &[u8; 32],
        device: &Device,
        now: UnixTime,
    ) -> Result<Redeemed, StoreError> {
        let device_value = encode("devices", device)?;
        let outcome = (&self.codes, &self.devices, &self.device_jkts)
            .transaction(|(codes, devices, jkts)| {
                let Some(raw) = codes.get(code_hash)? else {
                    return Ok(Redeemed::UnknownCode);
                };
                let mut code: EnrollmentCode = decode("enrollment_codes", &raw).map_err(abort)?;
                if code.used_by.is_some() {
                    return Ok(Redeemed::CodeUsed);
                }
                if code.expires_at <= now {
                    return Ok(Redeemed::CodeExpired);
                }
                if jkts.get(device.jkt.as_str().as_bytes())?.is_some() {
                    return Ok(Redeemed::KeyAlreadyEnrolled);
                }
                code.used_by = Some(device.id.clone());
                codes.insert(code_hash, encode("enrollment_codes", &code).map_err(abort)?)?;
                devices.insert(device.id.as_str().as_bytes(), device_value.as_slice())?;
                jkts.insert(
                    device.jkt.as_str().as_bytes(),
                    device.id.as_str().as_bytes(),
                )?;
                Ok(Redeemed::Enrolled(Box::new(device.clone())))
            })
            .map_err(tx_error)?;
        self.durable()?;
        Ok(outcome)
    }

    fn put_challenge(
        &self,
        challenge_hash: &[u8; 32],
        expires_at: UnixTime,
        context: &[u8],
    ) -> Result<(), StoreError> {
        // Expiry first (8 bytes, big-endian), then the context.
        let mut value = Vec::with_capacity(8 + context.len());
        value.extend_from_slice(&expires_at.as_secs().to_be_bytes());
        value.extend_from_slice(context);
        self.challenges
            .insert(challenge_hash, value)
            .map_err(backend)?;
        self.durable()
    }

    fn challenge(
        &self,
        challenge_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.challenges.get(challenge_hash).map_err(backend)?;
        Ok(value.and_then(|v| live_challenge(&v, now)))
    }

    fn take_challenge(
        &self,
        challenge_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let removed = self.challenges.remove(challenge_hash).map_err(backend)?;
        self.durable()?;
        Ok(removed.and_then(|v| live_challenge(&v, now)))
    }

    fn create_session(
        &self,
        session: &Session,
        refresh_hash: &[u8; 32],
        refresh: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let session_value = encode("sessions", session)?;
        let refresh_value = encode("refresh_tokens", refresh)?;
        (&self.sessions, &self.refresh)
            .transaction(|(sessions, tokens)| {
                sessions.insert(session.id.as_str().as_bytes(), session_value.as_slice())?;
                tokens.insert(refresh_hash, refresh_value.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.durable()
    }

    fn update_session(&self, session: &Session) -> Result<(), StoreError> {
        self.sessions
            .insert(session.id.as_str().as_bytes(), encode("sessions", session)?)
            .map_err(backend)?;
        self.durable()
    }

    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.get(&self.sessions, "sessions", id.as_str().as_bytes())
    }

    fn sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.all(&self.sessions, "sessions")
    }

    fn refresh_token(&self, hash: &[u8; 32]) -> Result<Option<RefreshRecord>, StoreError> {
        self.get(&self.refresh, "refresh_tokens", hash)
    }

    fn rotate_refresh_token(
        &self,
        old_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new: &RefreshRecord,
        now: UnixTime,
    ) -> Result<Rotated, StoreError> {
        let new_value = encode("refresh_tokens", new)?;
        let outcome = (&self.refresh, &self.sessions)
            .transaction(|(tokens, sessions)| {
                let Some(raw) = tokens.get(old_hash)? else {
                    return Ok(Rotated::Unknown);
                };
                let mut old: RefreshRecord = decode("refresh_tokens", &raw).map_err(abort)?;
                if old.used_at.is_some() {
                    // Second use of a spent token: whoever holds it, the
                    // session is compromised (RFC 9700 §4.14.2).
                    let key = old.session.as_str().as_bytes();
                    if let Some(raw) = sessions.get(key)? {
                        let mut session: Session = decode("sessions", &raw).map_err(abort)?;
                        if session.revoked.is_none() {
                            session.revoked = Some(Revocation {
                                at: now,
                                reason: "refresh_token_reuse".into(),
                            });
                            sessions.insert(key, encode("sessions", &session).map_err(abort)?)?;
                        }
                    }
                    return Ok(Rotated::Reused(old));
                }
                if old.expires_at <= now {
                    return Ok(Rotated::Unknown);
                }
                old.used_at = Some(now);
                tokens.insert(old_hash, encode("refresh_tokens", &old).map_err(abort)?)?;
                tokens.insert(new_hash, new_value.as_slice())?;
                Ok(Rotated::Rotated(old))
            })
            .map_err(tx_error)?;
        self.durable()?;
        Ok(outcome)
    }

    fn check_and_record(
        &self,
        key: &[u8; 32],
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, StoreError> {
        let current = self.replay.get(key).map_err(backend)?;
        if current
            .as_deref()
            .and_then(secs)
            .is_some_and(|expiry| expiry > now)
        {
            return Ok(Freshness::Replayed);
        }
        let swapped = self
            .replay
            .compare_and_swap(key, current, Some(&expires_at.as_secs().to_be_bytes()))
            .map_err(backend)?;
        if swapped.is_err() {
            // Another request recorded this key between our read and write.
            return Ok(Freshness::Replayed);
        }
        self.durable()?;
        Ok(Freshness::Fresh)
    }

    fn prune_replay(&self, now: UnixTime) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.replay.iter() {
            let (key, value) = entry.map_err(backend)?;
            if secs(&value).is_none_or(|expiry| expiry <= now) {
                // Only remove the value we saw: a concurrent re-insert wins.
                if self
                    .replay
                    .compare_and_swap(&key, Some(value), None as Option<&[u8]>)
                    .map_err(backend)?
                    .is_ok()
                {
                    removed += 1;
                }
            }
        }
        for entry in self.challenges.iter() {
            let (key, value) = entry.map_err(backend)?;
            if live_challenge(&value, now).is_none() {
                self.challenges.remove(&key).map_err(backend)?;
            }
        }
        Ok(removed)
    }

    fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let sort_key = format!("{:020}-{}", key.created_at.as_secs(), key.kid);
        self.keys
            .insert(sort_key.as_bytes(), encode("signing_keys", key)?)
            .map_err(backend)?;
        self.durable()
    }

    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.all(&self.keys, "signing_keys")
    }

    fn append_revocation(&self, mut event: RevocationEvent) -> Result<RevocationEvent, StoreError> {
        let _serial = self
            .revocation_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Monotonic across restarts; the feed cursor.
        event.cursor = self.db.generate_id().map_err(backend)? + 1;
        self.revocations
            .insert(event.cursor.to_be_bytes(), encode("revocations", &event)?)
            .map_err(backend)?;
        self.durable()?;
        Ok(event)
    }

    fn revocations_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<RevocationEvent>, StoreError> {
        self.revocations
            .range(cursor.saturating_add(1).to_be_bytes()..)
            .values()
            .take(limit)
            .map(|v| decode("revocations", &v.map_err(backend)?))
            .collect()
    }

    fn revoke_all_before(&self) -> Result<Option<UnixTime>, StoreError> {
        Ok(self
            .meta
            .get(REVOKE_ALL_BEFORE)
            .map_err(backend)?
            .and_then(|v| secs(&v)))
    }

    fn set_revoke_all_before(&self, at: UnixTime) -> Result<(), StoreError> {
        self.meta
            .fetch_and_update(REVOKE_ALL_BEFORE, |old| {
                let old = old.and_then(secs);
                let new = old.map_or(at, |old| old.max(at));
                Some(new.as_secs().to_be_bytes().to_vec())
            })
            .map_err(backend)?;
        self.durable()
    }

    fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        let record = (&self.audit, &self.meta)
            .transaction(|(audit, meta)| {
                let head: Option<AuditRecord> = match meta.get(AUDIT_HEAD)? {
                    Some(raw) => Some(decode("audit", &raw).map_err(abort)?),
                    None => None,
                };
                let record = chain(head.as_ref(), entry.clone());
                let value = encode("audit", &record).map_err(abort)?;
                audit.insert(&record.seq.to_be_bytes(), value.as_slice())?;
                meta.insert(AUDIT_HEAD, value)?;
                Ok(record)
            })
            .map_err(tx_error)?;
        self.durable()?;
        Ok(record)
    }

    fn audit_range(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .values()
            .take(limit)
            .map(|v| decode("audit", &v.map_err(backend)?))
            .collect()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }

    // -----------------------------------------------------------------
    // Admin step-up (issue 7): trees `step_up` (state by principal id),
    // `step_up_grants` (by sid) and `step_up_challenges` (by hash).
    // -----------------------------------------------------------------

    fn step_up_state(&self, principal: &PrincipalId) -> Result<StepUpState, StoreError> {
        let tree = self.step_up_tree(STEP_UP)?;
        Ok(self
            .get(&tree, STEP_UP, principal.as_str().as_bytes())?
            .unwrap_or_default())
    }

    fn set_totp_secret(
        &self,
        principal: &PrincipalId,
        totp: Option<&StoredTotp>,
    ) -> Result<bool, StoreError> {
        let had = self.update_step_up(principal, |state| {
            let had = state.totp.is_some();
            state.totp = totp.cloned();
            // Steps count per secret: a new secret's codes were never used.
            state.last_totp_step = None;
            had
        })?;
        self.durable()?;
        Ok(had)
    }

    fn spend_totp_step(&self, principal: &PrincipalId, step: u64) -> Result<bool, StoreError> {
        let spent = self.update_step_up(principal, |state| {
            if state.last_totp_step.is_some_and(|last| last >= step) {
                return false;
            }
            state.last_totp_step = Some(step);
            if let Some(totp) = state.totp.as_mut() {
                totp.confirmed = true;
            }
            true
        })?;
        self.durable()?;
        Ok(spent)
    }

    fn begin_step_up_attempt(
        &self,
        principal: &PrincipalId,
        now: UnixTime,
        max_failures: u32,
    ) -> Result<StepUpAttempt, StoreError> {
        let attempt = self.update_step_up(principal, |state| {
            if let Some(until) = state.locked_until.filter(|until| *until > now) {
                return StepUpAttempt::Locked(until);
            }
            if state.failures >= max_failures {
                return StepUpAttempt::Saturated;
            }
            state.failures += 1;
            StepUpAttempt::Allowed(state.failures)
        })?;
        self.durable()?;
        Ok(attempt)
    }

    fn fail_step_up_attempt(
        &self,
        principal: &PrincipalId,
        max_failures: u32,
        lock_until: UnixTime,
    ) -> Result<StepUpState, StoreError> {
        let state = self.update_step_up(principal, |state| {
            if state.failures >= max_failures {
                state.failures = 0;
                state.locked_until = Some(lock_until);
            }
            state.clone()
        })?;
        self.durable()?;
        Ok(state)
    }

    fn clear_step_up_failures(
        &self,
        principal: &PrincipalId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let was_locked = self.update_step_up(principal, |state| {
            let locked = state.locked_until.is_some_and(|until| until > now);
            state.failures = 0;
            state.locked_until = None;
            locked
        })?;
        self.durable()?;
        Ok(was_locked)
    }

    fn put_step_up_grant(&self, grant: &StepUpGrant) -> Result<(), StoreError> {
        self.step_up_tree(STEP_UP_GRANTS)?
            .insert(
                grant.sid.as_str().as_bytes(),
                encode(STEP_UP_GRANTS, grant)?,
            )
            .map_err(backend)?;
        self.durable()
    }

    fn step_up_grant(&self, sid: &SessionId) -> Result<Option<StepUpGrant>, StoreError> {
        let tree = self.step_up_tree(STEP_UP_GRANTS)?;
        self.get(&tree, STEP_UP_GRANTS, sid.as_str().as_bytes())
    }

    fn put_step_up_challenge(
        &self,
        challenge_hash: &[u8; 32],
        challenge: &StepUpChallengeRecord,
    ) -> Result<(), StoreError> {
        self.step_up_tree(STEP_UP_CHALLENGES)?
            .insert(challenge_hash, encode(STEP_UP_CHALLENGES, challenge)?)
            .map_err(backend)?;
        self.durable()
    }

    fn take_step_up_challenge(
        &self,
        challenge_hash: &[u8; 32],
        now: UnixTime,
    ) -> Result<Option<StepUpChallengeRecord>, StoreError> {
        let removed = self
            .step_up_tree(STEP_UP_CHALLENGES)?
            .remove(challenge_hash)
            .map_err(backend)?;
        self.durable()?;
        let Some(raw) = removed else {
            return Ok(None);
        };
        let record: StepUpChallengeRecord = decode(STEP_UP_CHALLENGES, &raw)?;
        Ok((record.expires_at > now).then_some(record))
    }

    fn prune_step_up(&self, now: UnixTime) -> Result<usize, StoreError> {
        let mut removed = 0;
        for name in [STEP_UP_GRANTS, STEP_UP_CHALLENGES] {
            let tree = self.step_up_tree(name)?;
            for entry in tree.iter() {
                let (key, value) = entry.map_err(backend)?;
                // Both records carry `expires_at`; an unreadable one is
                // useless and goes too.
                let expires_at = serde_json::from_slice::<Expiring>(&value)
                    .map_or(UnixTime::from_secs(0), |r| r.expires_at);
                if expires_at <= now
                    && tree
                        .compare_and_swap(&key, Some(value), None as Option<&[u8]>)
                        .map_err(backend)?
                        .is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

// Admin step-up (issue 7): tree names and helpers.

const STEP_UP: &str = "step_up";
const STEP_UP_GRANTS: &str = "step_up_grants";
const STEP_UP_CHALLENGES: &str = "step_up_challenges";

/// The expiry of a grant or challenge, whatever else it holds.
#[derive(serde::Deserialize)]
struct Expiring {
    expires_at: UnixTime,
}

impl SledStore {
    /// A step-up tree. sled hands back the already-open tree after the
    /// first call, so opening on use costs a map lookup.
    fn step_up_tree(&self, name: &'static str) -> Result<Tree, StoreError> {
        self.db.open_tree(name).map_err(backend)
    }

    /// Atomically reads, changes and writes `principal`'s step-up state;
    /// returns what `change` returned.
    fn update_step_up<R>(
        &self,
        principal: &PrincipalId,
        change: impl Fn(&mut StepUpState) -> R,
    ) -> Result<R, StoreError> {
        let tree = self.step_up_tree(STEP_UP)?;
        let key = principal.as_str().as_bytes();
        tree.transaction(|tx| {
            let mut state: StepUpState = match tx.get(key)? {
                Some(raw) => decode(STEP_UP, &raw).map_err(abort)?,
                None => StepUpState::default(),
            };
            let out = change(&mut state);
            tx.insert(key, encode(STEP_UP, &state).map_err(abort)?)?;
            Ok(out)
        })
        .map_err(tx_error)
    }
}
