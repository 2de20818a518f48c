//! Test support shared by this crate's tests and the end-to-end tests: an
//! issuer on a temporary store with a clock the test moves, and devices
//! enrolled in it directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use getrandom::SysRng;
use holdfast_hw::{KeyKind, SoftwareKey};
use holdfast_proto::{
    AccessToken, AccessTokenClaims, Audience, Clock, Confirmation, Htu, NonceSecret, ProofRequest,
    Signer as _, UnixTime, build_proof,
};

use crate::config::Config;
use crate::model::{
    AttestationSummary, Device, DeviceId, DeviceState, EnrollmentCode, Principal, PrincipalId,
    RefreshRecord, Role, Session, SessionId,
};
use crate::secret::{random_id, random_secret, secret_hash};
use crate::state::AppState;
use crate::store::{Redeemed, SledStore};

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
        let store = Arc::new(reopen_store(&dir.path().join("store"), config.sync_writes));
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

    /// Creates principal `name` with `roles`, enrolls a software key for it
    /// (a code redeemed in the store, as `/enroll` does) and starts a
    /// session, all at the current time.
    pub fn enrolled_device(&self, name: &str, roles: &[Role]) -> TestDevice {
        let store = self.state.store.as_ref();
        let now = self.now();
        let principal = Principal {
            id: PrincipalId::generate(),
            name: name.to_owned(),
            roles: roles.to_vec(),
            disabled: false,
            created_at: now,
        };
        store.put_principal(&principal).unwrap();
        let key = SoftwareKey::generate().unwrap();
        let jwk = key.public_jwk().clone();
        let device = Device {
            id: DeviceId::generate(),
            principal: principal.id.clone(),
            name: format!("{name}'s laptop"),
            jkt: jwk.thumbprint(),
            jwk,
            kind: KeyKind::Software,
            attestation: AttestationSummary {
                kind: "software".into(),
                details: serde_json::Map::new(),
            },
            state: DeviceState::Active,
            created_at: now,
            last_seen: None,
        };
        let code_hash = secret_hash(&random_secret());
        let code = EnrollmentCode {
            principal: principal.id.clone(),
            allowed_kinds: vec![KeyKind::Software],
            created_by: "test".into(),
            created_at: now,
            expires_at: now.plus(600),
            used_by: None,
        };
        store.put_enrollment_code(&code_hash, &code).unwrap();
        assert!(matches!(
            store
                .redeem_enrollment_code(&code_hash, &device, now)
                .unwrap(),
            Redeemed::Enrolled(_)
        ));
        let (session, refresh_token) = self.start_session(&device);
        let mut enrolled = TestDevice {
            key,
            principal,
            device,
            session,
            refresh_token,
            token: String::new(),
        };
        enrolled.token = enrolled.access_token(self, |_| {});
        enrolled
    }

    /// A new session of `device` at the current time (a fresh login),
    /// expiring in an hour, and its refresh token, expiring in ten minutes.
    fn start_session(&self, device: &Device) -> (Session, String) {
        let now = self.now();
        let session = Session {
            id: SessionId::generate(),
            principal: device.principal.clone(),
            device: device.id.clone(),
            jkt: device.jkt,
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            created_at: now,
            refreshed_at: now,
            expires_at: now.plus(3600),
            revoked: None,
            flags: Vec::new(),
        };
        let refresh_token = random_secret();
        let record = RefreshRecord {
            session: session.id.clone(),
            jkt: device.jkt,
            issued_at: now,
            expires_at: now.plus(600),
            used_at: None,
        };
        self.state
            .store
            .create_session(&session, &secret_hash(&refresh_token), &record)
            .unwrap();
        (session, refresh_token)
    }

    /// A DPoP proof by `key` for `method` on `path` at this issuer, now,
    /// with `ath` when `access_token` is given.
    pub fn proof(
        &self,
        key: &SoftwareKey,
        method: &str,
        path: &str,
        access_token: Option<&str>,
    ) -> String {
        let htu = Htu::parse(&format!("{}{path}", self.state.settings.issuer)).unwrap();
        let access_token = access_token.map(AccessToken::new);
        let request = ProofRequest {
            htm: method,
            htu: &htu,
            nonce: None,
            access_token: access_token.as_ref(),
        };
        build_proof(key, &mut SysRng, &request, self.now()).unwrap()
    }
}

/// A device enrolled by [`TestIssuer::enrolled_device`]: its key, principal,
/// live session, and tokens.
pub struct TestDevice {
    /// The device's software key.
    pub key: SoftwareKey,
    /// Its principal.
    pub principal: Principal,
    /// The device.
    pub device: Device,
    /// Its live session.
    pub session: Session,
    /// The session's refresh token.
    pub refresh_token: String,
    /// An access token for the session, signed when it started.
    pub token: String,
}

impl TestDevice {
    /// The claims the issuer would put in an access token for this
    /// device's session now.
    pub fn claims(&self, issuer: &TestIssuer) -> AccessTokenClaims {
        let now = issuer.now();
        AccessTokenClaims {
            iss: issuer.state.settings.issuer.clone(),
            sub: self.session.principal.to_string(),
            aud: Audience::One("holdfast".into()),
            exp: now.plus(300),
            iat: now,
            nbf: Some(now),
            jti: random_id(),
            client_id: self.device.id.to_string(),
            scope: None,
            sid: Some(self.session.id.to_string()),
            cnf: Confirmation {
                jkt: self.device.jkt,
            },
            amr: vec!["swk".into(), "pop".into()],
            ipb: None,
        }
    }

    /// An access token signed by the issuer now, with `edit` applied to
    /// its claims.
    pub fn access_token(
        &self,
        issuer: &TestIssuer,
        edit: impl FnOnce(&mut AccessTokenClaims),
    ) -> String {
        let mut claims = self.claims(issuer);
        edit(&mut claims);
        issuer.state.keyring().sign_access_token(&claims).unwrap()
    }

    /// Logs in again now: a new session, refresh token and access token.
    pub fn start_session(&mut self, issuer: &TestIssuer) {
        (self.session, self.refresh_token) = issuer.start_session(&self.device);
        self.token = self.access_token(issuer, |_| {});
    }

    /// A DPoP proof by this device's key for `method` on `path`, with `ath`
    /// when `access_token` is given.
    pub fn proof(
        &self,
        issuer: &TestIssuer,
        method: &str,
        path: &str,
        access_token: Option<&str>,
    ) -> String {
        issuer.proof(&self.key, method, path, access_token)
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens a sled store, waiting (up to 2 s) for a handle dropped a moment
/// ago: sled's background flusher can hold the directory lock briefly after
/// the last `Db` is dropped, which only a test that reopens in-process sees.
pub fn reopen_store(path: &std::path::Path, sync_writes: bool) -> SledStore {
    let mut last = None;
    for _ in 0..100 {
        match SledStore::open(path, sync_writes) {
            Ok(store) => return store,
            Err(e) => {
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    panic!("cannot reopen the store: {last:?}");
}
