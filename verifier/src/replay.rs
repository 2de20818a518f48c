//! Replay state that outlives the process: a [`ReplayGuard`] on sled.
//!
//! One verifier instance can use `proto`'s in-memory guard; this one keeps
//! used proofs across restarts. Several instances of one service must share
//! one guard (a proof replayed to another instance is still a replay): the
//! trait boundary is [`ReplayGuard::check_and_record`], an atomic
//! insert-if-absent with expiry, which maps one-to-one onto a networked
//! store (Redis `SET key 1 NX EXAT expires_at`, or a PostgreSQL
//! `INSERT … ON CONFLICT DO NOTHING` on a table keyed by the 32-byte
//! `ReplayKey`). See `docs/verifier.md`, "Several instances".

use std::path::Path;

use holdfast_proto::{Freshness, ReplayGuard, ReplayGuardError, ReplayKey, UnixTime};

/// A durable replay guard in a sled tree.
#[derive(Debug, Clone)]
pub struct SledReplayGuard {
    tree: sled::Tree,
}

impl SledReplayGuard {
    /// Opens (or creates) the guard's database in `dir`.
    ///
    /// # Errors
    /// The sled error, e.g. when another process holds the directory.
    pub fn open(dir: &Path) -> Result<Self, sled::Error> {
        let db = sled::open(dir)?;
        Ok(Self {
            tree: db.open_tree("replay")?,
        })
    }

    /// Deletes expired entries; returns how many. Call it periodically.
    ///
    /// # Errors
    /// The sled error.
    pub fn prune(&self, now: UnixTime) -> Result<usize, sled::Error> {
        let mut removed = 0;
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            if expiry(&value).is_none_or(|e| e <= now)
                && self
                    .tree
                    .compare_and_swap(&key, Some(value), None as Option<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn expiry(bytes: &[u8]) -> Option<UnixTime> {
    Some(UnixTime::from_secs(u64::from_be_bytes(
        bytes.try_into().ok()?,
    )))
}

impl ReplayGuard for SledReplayGuard {
    fn check_and_record(
        &self,
        key: ReplayKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, ReplayGuardError> {
        let store = |e: sled::Error| ReplayGuardError::Store(e.to_string());
        let current = self.tree.get(key.as_bytes()).map_err(store)?;
        if current.as_deref().and_then(expiry).is_some_and(|e| e > now) {
            return Ok(Freshness::Replayed);
        }
        let swapped = self
            .tree
            .compare_and_swap(
                key.as_bytes(),
                current,
                Some(&expires_at.as_secs().to_be_bytes()),
            )
            .map_err(store)?;
        // Lost the race to another request with the same proof: a replay.
        Ok(if swapped.is_ok() {
            Freshness::Fresh
        } else {
            Freshness::Replayed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(jti: &str) -> ReplayKey {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
            .parse()
            .unwrap();
        ReplayKey::new(&jkt, "https://api.example/x", jti)
    }

    #[test]
    fn records_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let t = UnixTime::from_secs;
        {
            let guard = SledReplayGuard::open(dir.path()).unwrap();
            assert_eq!(
                guard.check_and_record(key("a"), t(160), t(100)),
                Ok(Freshness::Fresh)
            );
            assert_eq!(
                guard.check_and_record(key("a"), t(160), t(101)),
                Ok(Freshness::Replayed)
            );
        }
        // sled's background flusher can hold the directory lock a moment
        // after the last handle is dropped: wait for it rather than fail.
        let guard = (0..100)
            .find_map(|_| {
                SledReplayGuard::open(dir.path())
                    .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                    .ok()
            })
            .expect("the store reopens once the previous handle is gone");
        assert_eq!(
            guard.check_and_record(key("a"), t(160), t(102)),
            Ok(Freshness::Replayed)
        );
        // After expiry the key is free again, and pruning removes it.
        assert_eq!(guard.prune(t(170)).unwrap(), 1);
        assert_eq!(
            guard.check_and_record(key("a"), t(260), t(170)),
            Ok(Freshness::Fresh)
        );
    }

    #[test]
    fn concurrent_uses_of_one_proof_let_exactly_one_through() {
        let dir = tempfile::tempdir().unwrap();
        let guard = SledReplayGuard::open(dir.path()).unwrap();
        let t = UnixTime::from_secs;
        let fresh = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| guard.check_and_record(key("race"), t(160), t(100))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|r| *r == Ok(Freshness::Fresh))
                .count()
        });
        assert_eq!(fresh, 1);
    }
}
