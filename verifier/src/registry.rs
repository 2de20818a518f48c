//! What the issuer has pushed to this verifier: the enrolled device keys
//! and every revocation. A token is admitted only if the key it is bound to
//! is an enrolled, active device key of an enabled principal, its session is
//! not revoked, and it was issued after the last revoke-all: a stolen issuer
//! signing key alone mints nothing usable.
//!
//! Pure state; `feed.rs` fills it from the issuer.

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

#[derive(Debug, Default)]
struct State {
    devices: HashMap<Jkt, DeviceEntry>,
    revoked_sessions: HashSet<String>,
    disabled_principals: HashSet<String>,
    revoke_all_before: Option<UnixTime>,
    cursor: u64,
    synced_at: Option<UnixTime>,
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
            .is_some_and(|sid| state.revoked_sessions.contains(sid))
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

    /// Applies feed events in order.
    pub fn apply_events(&self, events: &[FeedEvent]) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for event in events {
            match event.kind.as_str() {
                "session" => {
                    state.revoked_sessions.insert(event.id.clone());
                }
                "device" => {
                    for device in state.devices.values_mut() {
                        if device.device_id == event.id {
                            device.state = "revoked".into();
                        }
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

    /// Records a successful synchronisation at `now`.
    pub fn mark_synced(&self, now: UnixTime) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.synced_at = Some(now);
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
