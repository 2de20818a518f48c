//! What the issuer has pushed to this verifier: the enrolled device keys
//! and every revocation. A token is admitted only if the key it is bound to
//! is an enrolled, active device key of an enabled principal, its session is
//! not revoked, and it was issued after the last revoke-all: a stolen issuer
//! signing key alone mints nothing usable.
//!
//! Pure state; `feed.rs` fills it from the issuer.
//!
//! # Memory
//!
//! - One [`DeviceEntry`] per enrolled device key (about 250 bytes with its
//!   table slot): bounded by the issuer's devices.
//! - One id per disabled principal: bounded by the issuer's principals.
//! - One id and instant per revoked session, about 100 bytes (a 24-byte
//!   `s-…` id on the heap, its `String`, the instant and the table slot),
//!   kept for [`SESSION_RETENTION_SECS`] after the revocation, then pruned:
//!   a token of a session revoked that long ago has expired anyway (access
//!   tokens live minutes). 100 000 session revocations a day cost about
//!   10 MB.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use holdfast_proto::{AccessTokenClaims, Jkt, UnixTime};
use serde::Deserialize;

/// One enrolled device key, as the issuer publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceEntry {
    /// Device id (`client_id`).
    pub device_id: String,
    /// Owner (`sub`).
    pub principal_id: String,
    /// The key.
    pub jkt: Jkt,
    /// `active`, `disabled` or `revoked`.
    pub state: String,
    /// True when the owner is disabled.
    #[serde(default)]
    pub principal_disabled: bool,
}

/// One event of the issuer's feed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FeedEvent {
    /// Position in the feed.
    pub cursor: u64,
    /// When.
    pub at: UnixTime,
    /// `session`, `device`, `principal`, `all_before`, or `device_enrolled` /
    /// `device_state` for registry changes.
    pub kind: String,
    /// The id concerned (empty for `all_before`).
    #[serde(default)]
    pub id: String,
    /// For `all_before`.
    #[serde(default)]
    pub before: Option<UnixTime>,
    /// For device events: the device's current entry.
    #[serde(default)]
    pub device: Option<DeviceEntry>,
}

/// Why the registry refuses a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryRefusal {
    /// The registry has not heard from the issuer for too long (fail closed).
    #[error("the verifier has not synchronised with the issuer for {age} s")]
    Stale {
        /// Seconds since the last successful sync (`u64::MAX` if never).
        age: u64,
    },
    /// `cnf.jkt` is not an enrolled device key.
    #[error("the token is bound to a key that is not enrolled")]
    KeyNotEnrolled,
    /// The key's device is not the token's client, or not active.
    #[error("the token's device is not active")]
    DeviceNotActive,
    /// The token's client or principal does not match the enrolled key's.
    #[error("the token's client does not hold the key it is bound to")]
    DeviceMismatch,
    /// The principal is disabled.
    #[error("the token's principal is disabled")]
    PrincipalDisabled,
    /// The session was revoked.
    #[error("the token's session is revoked")]
    SessionRevoked,
    /// The token was issued before a revoke-all.
    #[error("the token was issued before a revoke-all")]
    RevokedAll,
}

impl RegistryRefusal {
    /// A stable name for the check.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Stale { .. } => "registry_stale",
            Self::KeyNotEnrolled => "key_not_enrolled",
            Self::DeviceNotActive => "device_not_active",
            Self::DeviceMismatch => "device_mismatch",
            Self::PrincipalDisabled => "principal_disabled",
            Self::SessionRevoked => "session_revoked",
            Self::RevokedAll => "revoked_all",
        }
    }
}

/// How long a revoked session's id is kept, in seconds (one day). It must
/// exceed the issuer's access-token lifetime: every token of a session was
/// issued before its revocation, so none is still valid after this.
pub const SESSION_RETENTION_SECS: u64 = 86_400;

/// Pruning walks every revoked session; at most once per this many seconds.
const PRUNE_EVERY_SECS: u64 = 60;

#[derive(Debug, Default)]
struct State {
    devices: HashMap<Jkt, DeviceEntry>,
    /// Revoked session ids and when they were revoked (for pruning).
    revoked_sessions: HashMap<String, UnixTime>,
    pruned_at: Option<UnixTime>,
    disabled_principals: HashSet<String>,
    revoke_all_before: Option<UnixTime>,
    cursor: u64,
    synced_at: Option<UnixTime>,
}

/// How much the registry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrySizes {
    /// Device keys (any state).
    pub devices: usize,
    /// Revoked sessions still remembered.
    pub revoked_sessions: usize,
    /// Disabled principals.
    pub disabled_principals: usize,
}

/// The registry: read on every request, written by the feed follower.
#[derive(Debug, Default)]
pub struct Registry {
    state: RwLock<State>,
}

impl Registry {
    /// An empty registry that has never synchronised (admits nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits or refuses the token `claims` at `now`. With `max_staleness`
    /// set, a registry not synchronised within that many seconds refuses
    /// everything (fail closed).
    ///
    /// # Errors
    /// The [`RegistryRefusal`] naming why.
    pub fn admit(
        &self,
        claims: &AccessTokenClaims,
        now: UnixTime,
        max_staleness: Option<u64>,
    ) -> Result<(), RegistryRefusal> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if let Some(bound) = max_staleness {
            let age = state
                .synced_at
                .map_or(u64::MAX, |at| now.as_secs().saturating_sub(at.as_secs()));
            if age > bound {
                return Err(RegistryRefusal::Stale { age });
            }
        }
        let device = state
            .devices
            .get(&claims.cnf.jkt)
            .ok_or(RegistryRefusal::KeyNotEnrolled)?;
        if device.device_id != claims.client_id || device.principal_id != claims.sub {
            return Err(RegistryRefusal::DeviceMismatch);
        }
        if device.state != "active" {
            return Err(RegistryRefusal::DeviceNotActive);
        }
        if device.principal_disabled || state.disabled_principals.contains(&claims.sub) {
            return Err(RegistryRefusal::PrincipalDisabled);
        }
        if claims
            .sid
            .as_ref()
            .is_some_and(|sid| state.revoked_sessions.contains_key(sid))
        {
            return Err(RegistryRefusal::SessionRevoked);
        }
        if state
            .revoke_all_before
            .is_some_and(|before| claims.iat < before)
        {
            return Err(RegistryRefusal::RevokedAll);
        }
        Ok(())
    }

    /// Replaces the device table with a full snapshot.
    pub fn apply_snapshot(&self, devices: Vec<DeviceEntry>, revoke_all_before: Option<UnixTime>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.devices = devices.into_iter().map(|d| (d.jkt, d)).collect();
        if revoke_all_before > state.revoke_all_before {
            state.revoke_all_before = revoke_all_before;
        }
    }

    /// Moves the revoke-all instant forward to `before` (the feed's
    /// `revoke_all_before`); never backward.
    pub fn raise_revoke_all_before(&self, before: Option<UnixTime>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if before > state.revoke_all_before {
            state.revoke_all_before = before;
        }
    }

    /// Applies feed events in order.
    pub fn apply_events(&self, events: &[FeedEvent]) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for event in events {
            match event.kind.as_str() {
                "session" => {
                    state.revoked_sessions.insert(event.id.clone(), event.at);
                }
                "device" => {
                    for device in state.devices.values_mut() {
                        if device.device_id == event.id {
                            device.state = "revoked".into();
                        }
                    }
                    if let Some(device) = &event.device {
                        state.devices.insert(device.jkt, device.clone());
                    }
                }
                "principal" => {
                    state.disabled_principals.insert(event.id.clone());
                }
                "all_before" => {
                    if event.before > state.revoke_all_before {
                        state.revoke_all_before = event.before;
                    }
                }
                "device_enrolled" | "device_state" => {
                    if let Some(device) = &event.device {
                        state.devices.insert(device.jkt, device.clone());
                    }
                }
                other => tracing::warn!(kind = other, "unknown feed event kind; ignored"),
            }
            state.cursor = state.cursor.max(event.cursor);
        }
    }

    /// Records a successful synchronisation at `now`, and forgets sessions
    /// revoked more than [`SESSION_RETENTION_SECS`] before it (at most once
    /// a minute: pruning walks them all).
    pub fn mark_synced(&self, now: UnixTime) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.synced_at = Some(now);
        let due = state
            .pruned_at
            .is_none_or(|at| now.as_secs().saturating_sub(at.as_secs()) >= PRUNE_EVERY_SECS);
        if due {
            state.pruned_at = Some(now);
            let horizon = now.as_secs().saturating_sub(SESSION_RETENTION_SECS);
            state
                .revoked_sessions
                .retain(|_, revoked_at| revoked_at.as_secs() >= horizon);
        }
    }

    /// The enrolled device key `jkt`, as last pushed.
    pub fn device(&self, jkt: &Jkt) -> Option<DeviceEntry> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.devices.get(jkt).cloned()
    }

    /// How many device keys and revoked sessions are held (for metrics).
    pub fn sizes(&self) -> RegistrySizes {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        RegistrySizes {
            devices: state.devices.len(),
            revoked_sessions: state.revoked_sessions.len(),
            disabled_principals: state.disabled_principals.len(),
        }
    }

    /// The feed cursor reached.
    pub fn cursor(&self) -> u64 {
        self.state.read().map(|s| s.cursor).unwrap_or(0)
    }

    /// When the registry last synchronised.
    pub fn synced_at(&self) -> Option<UnixTime> {
        self.state.read().ok().and_then(|s| s.synced_at)
    }
}

#[cfg(test)]
mod tests {
    use holdfast_proto::{Audience, Confirmation};

    use super::*;

    const NOW: u64 = 1_764_000_000;
    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    fn entry(state: &str) -> DeviceEntry {
        DeviceEntry {
            device_id: "d-1".into(),
            principal_id: "p-1".into(),
            jkt: JKT.parse().unwrap(),
            state: state.into(),
            principal_disabled: false,
        }
    }

    fn claims(sid: &str) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://issuer.example".into(),
            sub: "p-1".into(),
            aud: Audience::One("api".into()),
            exp: UnixTime::from_secs(NOW + 300),
            iat: UnixTime::from_secs(NOW),
            nbf: None,
            jti: "t-1".into(),
            client_id: "d-1".into(),
            scope: None,
            sid: Some(sid.into()),
            cnf: Confirmation {
                jkt: JKT.parse().unwrap(),
            },
            amr: Vec::new(),
            ipb: None,
        }
    }

    fn event(cursor: u64, kind: &str, at: u64, device: Option<DeviceEntry>) -> FeedEvent {
        FeedEvent {
            cursor,
            at: UnixTime::from_secs(at),
            kind: kind.into(),
            id: device
                .as_ref()
                .map_or_else(|| format!("s-{cursor}"), |d| d.device_id.clone()),
            before: None,
            device,
        }
    }

    fn synced(devices: Vec<DeviceEntry>) -> Registry {
        let registry = Registry::new();
        registry.apply_snapshot(devices, None);
        registry.mark_synced(UnixTime::from_secs(NOW));
        registry
    }

    #[test]
    fn rejects_every_token_before_the_first_sync() {
        let registry = Registry::new();
        registry.apply_snapshot(vec![entry("active")], None);
        assert_eq!(
            registry.admit(&claims("s-1"), UnixTime::from_secs(NOW), Some(30)),
            Err(RegistryRefusal::Stale { age: u64::MAX })
        );
    }

    #[test]
    fn follows_device_state_events() {
        let registry = synced(Vec::new());
        let now = UnixTime::from_secs(NOW);
        assert_eq!(
            registry.admit(&claims("s-1"), now, Some(30)),
            Err(RegistryRefusal::KeyNotEnrolled)
        );
        registry.apply_events(&[event(1, "device_enrolled", NOW, Some(entry("active")))]);
        assert_eq!(registry.admit(&claims("s-1"), now, Some(30)), Ok(()));
        registry.apply_events(&[event(2, "device_state", NOW, Some(entry("disabled")))]);
        assert_eq!(
            registry.admit(&claims("s-1"), now, Some(30)),
            Err(RegistryRefusal::DeviceNotActive)
        );
        registry.apply_events(&[event(3, "device_state", NOW, Some(entry("active")))]);
        assert_eq!(registry.admit(&claims("s-1"), now, Some(30)), Ok(()));
        registry.apply_events(&[event(4, "device", NOW, Some(entry("revoked")))]);
        assert_eq!(
            registry.admit(&claims("s-1"), now, Some(30)),
            Err(RegistryRefusal::DeviceNotActive)
        );
        assert_eq!(registry.cursor(), 4);
    }

    #[test]
    fn revoke_all_only_moves_forward() {
        let registry = synced(vec![entry("active")]);
        let now = UnixTime::from_secs(NOW + 10);
        registry.raise_revoke_all_before(Some(UnixTime::from_secs(NOW + 1)));
        registry.raise_revoke_all_before(Some(UnixTime::from_secs(NOW - 100)));
        registry.raise_revoke_all_before(None);
        assert_eq!(
            registry.admit(&claims("s-1"), now, None),
            Err(RegistryRefusal::RevokedAll)
        );
    }

    #[test]
    fn forgets_sessions_revoked_before_the_retention_bound() {
        let registry = synced(vec![entry("active")]);
        let old = NOW - SESSION_RETENTION_SECS - 1;
        registry.apply_events(&[
            event(1, "session", old, None),
            event(2, "session", NOW - 10, None),
        ]);
        assert_eq!(registry.sizes().revoked_sessions, 2);
        // Within a minute of the last pruning nothing is walked.
        registry.mark_synced(UnixTime::from_secs(NOW + 30));
        assert_eq!(registry.sizes().revoked_sessions, 2);
        registry.mark_synced(UnixTime::from_secs(NOW + PRUNE_EVERY_SECS));
        assert_eq!(registry.sizes().revoked_sessions, 1);
        let now = UnixTime::from_secs(NOW + PRUNE_EVERY_SECS);
        assert_eq!(
            registry.admit(&claims("s-2"), now, None),
            Err(RegistryRefusal::SessionRevoked)
        );
        assert_eq!(registry.admit(&claims("s-1"), now, None), Ok(()));
    }
}
