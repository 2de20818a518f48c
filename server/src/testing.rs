//! Test support shared by this crate's tests and the end-to-end tests: an
//! issuer on a temporary store with a clock the test moves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use holdfast_proto::{Clock, NonceSecret, UnixTime};

use crate::config::Config;
use crate::state::AppState;
use crate::store::SledStore;

/// A clock that only moves when told.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `secs`.
    pub fn new(secs: u64) -> Self {
        Self(AtomicU64::new(secs))
    }

    /// Moves the clock forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, secs: u64) {
        self.0.store(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// The time test issuers start at.
pub const TEST_NOW: u64 = 1_764_000_000;
/// The public URL of test issuers.
pub const TEST_ISSUER: &str = "http://issuer.test";

/// An issuer on a temporary sled store.
pub struct TestIssuer {
    /// The state to build a router from.
    pub state: AppState,
    /// The clock.
    pub clock: Arc<ManualClock>,
    /// Keeps the store's directory alive.
    pub dir: tempfile::TempDir,
}

impl TestIssuer {
    /// Default configuration, public URL [`TEST_ISSUER`].
    pub fn new() -> Self {
        Self::with_config(|_| {})
    }

    /// Default configuration changed by `edit`.
    pub fn with_config(edit: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::open(dir, edit)
    }

    /// Opens (or reopens) an issuer on `dir`.
    pub fn open(dir: tempfile::TempDir, edit: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::load(None, []).unwrap();
        config.public_url = Some(TEST_ISSUER.to_owned());
        config.data_dir = dir.path().to_owned();
        // Tests run many writes; durability is tested separately.
        config.sync_writes = false;
        edit(&mut config);
        let settings = config.resolve().unwrap();
        let store =
            Arc::new(SledStore::open(&dir.path().join("store"), config.sync_writes).unwrap());
        let clock = Arc::new(ManualClock::new(TEST_NOW));
        let state = AppState::new(
            settings,
            store,
            clock.clone(),
            NonceSecret::new(&[42; 32]).unwrap(),
        )
        .unwrap();
        Self { state, clock, dir }
    }

    /// The router over this issuer's state.
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.state.clone())
    }

    /// The current test time.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}
