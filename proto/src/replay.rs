//! Replay detection for proof `jti`s (RFC 9449 §11.1).
//!
//! A [`ReplayGuard`] remembers each proof for as long as the proof could
//! still be accepted. The in-memory guard here serves one process; the
//! issuer puts a durable one behind the same trait.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest;

use crate::thumbprint::Jkt;
use crate::time::UnixTime;

/// The identity of one proof use: SHA-256 over the key, the URI and the
/// `jti`, each length-prefixed so no two triples collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// The key for a proof by `jkt` for `htu` with `jti`.
    pub fn new(jkt: &Jkt, htu: &str, jti: &str) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [jkt.as_str(), htu, jti] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        Self(key)
    }

    /// The raw 32 bytes, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Whether a proof was seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// First use: recorded now.
    Fresh,
    /// Already recorded and not yet expired.
    Replayed,
}

/// The guard could not answer. Callers refuse the proof: a replay check
/// that cannot run must not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayGuardError {
    /// The guard holds as many live entries as it may.
    #[error("the replay cache is full ({0} live entries)")]
    Full(usize),
    /// The backing store failed.
    #[error("the replay store failed: {0}")]
    Store(String),
}

/// Insert-if-absent with expiry.
pub trait ReplayGuard: Send + Sync {
    /// Records `key` until `expires_at` unless it is already recorded and
    /// unexpired at `now`. Atomic: of two concurrent calls with one key,
    /// exactly one sees [`Freshness::Fresh`].
    ///
    /// # Errors
    /// [`ReplayGuardError`] when the answer is unknown.
    fn check_and_record(
        &self,
        key: ReplayKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, ReplayGuardError>;
}

/// An in-memory [`ReplayGuard`] for one process.
///
/// It never evicts a live entry to make room (an LRU would let a proof be
/// replayed after enough other traffic); when full of live entries it
/// refuses, and expired entries are swept as it fills.
///
/// Large guards are split into 16 shards by the key's first byte (keys are
/// SHA-256 outputs, so shards fill evenly), each behind its own lock, so
/// cores do not queue on one mutex; every operation is O(1) but the
/// once-a-second sweep of a full shard. An entry costs about 48–64 bytes
/// (a 32-byte key, an 8-byte expiry, hash-table overhead): one million
/// entries, the default, is about 64 MB at most.
#[derive(Debug)]
pub struct MemoryReplayGuard {
    shards: Box<[Mutex<Entries>]>,
    shard_capacity: usize,
}

/// Shards of a guard of at least this capacity; smaller guards have one.
const SHARDS: usize = 16;
const SHARDED_FROM: usize = 1024;

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<ReplayKey, UnixTime>,
    /// When the map was last swept: a full guard sweeps at most once a
    /// second, so a flood cannot make every request scan the whole map.
    last_sweep: Option<UnixTime>,
}

impl MemoryReplayGuard {
    /// A guard holding at most `capacity` live entries. At 60 s windows,
    /// a capacity of one million covers about 16k proofs per second.
    pub fn new(capacity: usize) -> Self {
        let shards = if capacity >= SHARDED_FROM { SHARDS } else { 1 };
        Self {
            shards: (0..shards)
                .map(|_| Mutex::new(Entries::default()))
                .collect(),
            shard_capacity: capacity.div_ceil(shards),
        }
    }

    /// Number of entries held, live or not yet swept.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map(|e| e.map.len()).unwrap_or(0))
            .sum()
    }

    fn shard(&self, key: &ReplayKey) -> Option<&Mutex<Entries>> {
        let first = key.0.first().copied().unwrap_or(0);
        self.shards
            .get(usize::from(first) % self.shards.len().max(1))
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryReplayGuard {
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn check_and_record(
        &self,
        key: ReplayKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, ReplayGuardError> {
        // A poisoned lock means another thread panicked mid-insert; the map
        // itself is still consistent (each operation is a single insert).
        // `shards` is never empty; if it were, refusing is the safe answer.
        let Some(shard) = self.shard(&key) else {
            return Err(ReplayGuardError::Full(0));
        };
        let mut entries = shard.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(&expiry) = entries.map.get(&key)
            && expiry > now
        {
            return Ok(Freshness::Replayed);
        }
        if entries.map.len() >= self.shard_capacity {
            if entries.last_sweep.is_none_or(|last| now > last) {
                entries.map.retain(|_, expiry| *expiry > now);
                entries.last_sweep = Some(now);
            }
            if entries.map.len() >= self.shard_capacity {
                return Err(ReplayGuardError::Full(entries.map.len()));
            }
        }
        entries.map.insert(key, expires_at);
        Ok(Freshness::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jkt() -> Jkt {
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
            .parse()
            .unwrap()
    }

    #[test]
    fn second_use_is_a_replay_until_expiry() {
        let guard = MemoryReplayGuard::new(10);
        let key = ReplayKey::new(&jkt(), "https://a/", "j1");
        let t = UnixTime::from_secs;
        assert_eq!(
            guard.check_and_record(key, t(160), t(100)),
            Ok(Freshness::Fresh)
        );
        assert_eq!(
            guard.check_and_record(key, t(160), t(159)),
            Ok(Freshness::Replayed)
        );
        assert_eq!(
            guard.check_and_record(key, t(260), t(160)),
            Ok(Freshness::Fresh)
        );
    }

    #[test]
    fn large_guards_are_sharded_and_still_exact() {
        let guard = MemoryReplayGuard::new(SHARDED_FROM);
        assert_eq!(guard.shards.len(), SHARDS);
        let t = UnixTime::from_secs;
        for i in 0..500 {
            let key = ReplayKey::new(&jkt(), "https://a/", &format!("j{i}"));
            assert_eq!(
                guard.check_and_record(key, t(200), t(100)),
                Ok(Freshness::Fresh)
            );
            assert_eq!(
                guard.check_and_record(key, t(200), t(100)),
                Ok(Freshness::Replayed)
            );
        }
        assert_eq!(guard.len(), 500);
    }

    #[test]
    fn key_separates_parts() {
        let a = ReplayKey::new(&jkt(), "https://a/x", "j");
        let b = ReplayKey::new(&jkt(), "https://a/", "xj");
        assert_ne!(a, b);
    }

    #[test]
    fn full_guard_refuses_instead_of_evicting_live_entries() {
        let guard = MemoryReplayGuard::new(2);
        let t = UnixTime::from_secs;
        for jti in ["a", "b"] {
            let key = ReplayKey::new(&jkt(), "https://a/", jti);
            assert_eq!(
                guard.check_and_record(key, t(200), t(100)),
                Ok(Freshness::Fresh)
            );
        }
        let key = ReplayKey::new(&jkt(), "https://a/", "c");
        assert_eq!(
            guard.check_and_record(key, t(200), t(100)),
            Err(ReplayGuardError::Full(2))
        );
        // Within the same second a full guard does not sweep again.
        assert_eq!(
            guard.check_and_record(key, t(200), t(100)),
            Err(ReplayGuardError::Full(2))
        );
        // Once the others expire they are swept and room is made.
        assert_eq!(
            guard.check_and_record(key, t(300), t(200)),
            Ok(Freshness::Fresh)
        );
        assert_eq!(guard.len(), 1);
    }
}
