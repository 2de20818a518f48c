//! The state behind a request: replay guards at 10⁴, 10⁵ and 10⁶ live
//! entries, the issuer's nonces, and the sled writes the issuer makes per
//! token.
//!
//! Groups:
//!
//! - `replay_guard`: `check_and_record` of a new key (`*_insert/N`) and of a
//!   recorded, live key (`*_lookup/N`, a replay) in `MemoryReplayGuard`
//!   (`memory_*`, proto) and `SledReplayGuard` (`sled_*`, the verifier's
//!   durable guard), each holding N live entries. An insert bench keeps the
//!   guard near N: after every chunk of at most N/10 inserts, untimed, the
//!   memory guard is rebuilt with its N entries and the sled guard prunes
//!   the chunk's keys (they expire a second after the prefill would not).
//! - `nonce`: `NonceIssuer::issue` and `NonceIssuer::check`.
//! - `issuer_store`: the writes one `client_credentials` grant makes in the
//!   issuer's `SledStore`, one at a time and all together (`per_token`),
//!   with `sync_writes` off and on.
//!
//! `cargo bench -p holdfast-benches --bench state_ops`; results in
//! `docs/performance.md`.

// A bench must stop loudly when its setup is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, measurement::WallTime};
use holdfast_benches::{NOW, ThisRun, criterion_home, result_files};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    Freshness, Jkt, MemoryReplayGuard, NonceIssuer, NonceSecret, ReplayGuard, ReplayKey,
    Signer as _,
};
use holdfast_server::audit::AuditEntry;
use holdfast_server::model::{RefreshRecord, Role, Session, SessionId};
use holdfast_server::secret::{random_secret, secret_hash};
use holdfast_server::store::Store;
use holdfast_server::testing::{TestDevice, TestIssuer};
use holdfast_verifier::SledReplayGuard;

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const HTU: &str = "https://api.example.com/v1/orders/42";
/// Prefill entries stay live for the whole run.
const FAR: u64 = 1_000_000;

fn main() {
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    let mut replay_ids = Vec::new();
    for n in SIZES {
        for case in [
            "memory_insert",
            "memory_lookup",
            "sled_insert",
            "sled_lookup",
        ] {
            replay_ids.push(format!("{case}/{n}"));
        }
    }
    let replay_files = result_files(&home, "replay_guard", &replay_ids);
    let mut store_ids: Vec<String> = ["sync_off", "sync_on"]
        .iter()
        .flat_map(|mode| STORE_CASES.iter().map(move |case| format!("{case}/{mode}")))
        .collect();
    store_ids.push(format!("{ONE_FLUSH}/sync_off"));
    let store_files = result_files(&home, "issuer_store", &store_ids);

    bench_replay(&mut criterion);
    bench_nonce(&mut criterion);
    bench_store(&mut criterion);
    criterion.final_summary();

    let replay = ThisRun::read("replay_guard", &replay_files);
    let store = ThisRun::read("issuer_store", &store_files);
    if replay.is_empty() && store.is_empty() {
        println!("\nNo table: nothing ran in benchmark mode in this invocation.");
        return;
    }
    replay.print_table();
    store.print_table();
    for mode in ["sync_off", "sync_on"] {
        let parts: f64 = STORE_CASES[..4]
            .iter()
            .zip([2.0, 1.0, 1.0, 2.0])
            .filter_map(|(case, times)| Some(store.get(&format!("{case}/{mode}"))?.mean_ns * times))
            .sum();
        if let Some(one) = store.get(&format!("{ONE_FLUSH}/{mode}")) {
            println!(
                "issuer_store {mode}: the same writes, then one flush: {:.1} µs ({:.0} tokens/s on one writer)",
                one.mean_ns / 1e3,
                1e9 / one.mean_ns
            );
        }
        if let Some(all) = store.get(&format!("per_token/{mode}")) {
            println!(
                "issuer_store {mode}: per_token {:.1} µs ({:.0} tokens/s on one writer); \
                 sum of the parts (2 replay + session + device + 2 audit) {:.1} µs",
                all.mean_ns / 1e3,
                1e9 / all.mean_ns,
                parts / 1e3
            );
        }
    }
}

// ---------------------------------------------------------------- replay

/// Keys as the verifier makes them: one device, one URI, `jti`s.
struct Keys {
    jkt: Jkt,
    prefill: Vec<ReplayKey>,
    next: u64,
}

impl Keys {
    fn new(max: usize) -> Self {
        let jkt = SoftwareKey::generate().unwrap().public_jwk().thumbprint();
        let prefill = (0..max)
            .map(|i| ReplayKey::new(&jkt, HTU, &format!("prefill-{i:08}")))
            .collect();
        Self {
            jkt,
            prefill,
            next: 0,
        }
    }

    /// `n` keys never used before.
    fn fresh(&mut self, n: usize) -> Vec<ReplayKey> {
        (0..n)
            .map(|_| {
                self.next += 1;
                ReplayKey::new(&self.jkt, HTU, &format!("bench-{:012}", self.next))
            })
            .collect()
    }

    /// `n` of the first `live` prefill keys, spread over them (a large odd
    /// stride), so lookups do not walk memory in insertion order.
    fn recorded(&self, live: usize, n: usize, start: &mut usize) -> Vec<ReplayKey> {
        (0..n)
            .map(|_| {
                *start = (*start + 7_919_993) % live;
                self.prefill[*start]
            })
            .collect()
    }
}

fn memory_guard(keys: &Keys, n: usize) -> MemoryReplayGuard {
    // Twice the live entries: it never fills, so it never sweeps.
    let guard = MemoryReplayGuard::new(2 * n);
    for key in &keys.prefill[..n] {
        guard
            .check_and_record(*key, NOW.plus(FAR), NOW)
            .expect("room");
    }
    guard
}

fn bench_replay(criterion: &mut Criterion) {
    let mut keys = Keys::new(SIZES[SIZES.len() - 1]);
    let sled_dir = tempfile::tempdir().unwrap();
    let sled = SledReplayGuard::open(sled_dir.path()).unwrap();
    let mut sled_live = 0;
    let mut group = criterion.benchmark_group("replay_guard");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let mut memory = memory_guard(&keys, n);
        assert_eq!(memory.len(), n);
        for key in &keys.prefill[sled_live..n] {
            assert_eq!(
                sled.check_and_record(*key, NOW.plus(FAR), NOW),
                Ok(Freshness::Fresh)
            );
        }
        sled_live = n;
        let chunk_max = (n / 10).max(1);

        group.bench_function(BenchmarkId::new("memory_insert", n), |b| {
            b.iter_custom(|iters| {
                let mut left = usize::try_from(iters).unwrap();
                let mut total = Duration::ZERO;
                while left > 0 {
                    let chunk = left.min(chunk_max);
                    if memory.len() + chunk > n + chunk_max {
                        memory = memory_guard(&keys, n);
                    }
                    let fresh = keys.fresh(chunk);
                    let start = Instant::now();
                    for key in fresh {
                        let got = memory.check_and_record(black_box(key), NOW.plus(61), NOW);
                        assert_eq!(got, Ok(Freshness::Fresh));
                    }
                    total += start.elapsed();
                    left -= chunk;
                }
                total
            });
        });
        let mut at = 0;
        group.bench_function(BenchmarkId::new("memory_lookup", n), |b| {
            b.iter_custom(|iters| {
                let recorded = keys.recorded(n, usize::try_from(iters).unwrap(), &mut at);
                let start = Instant::now();
                for key in recorded {
                    let got = memory.check_and_record(black_box(key), NOW.plus(61), NOW);
                    assert_eq!(got, Ok(Freshness::Replayed));
                }
                start.elapsed()
            });
        });
        drop(memory);

        group.bench_function(BenchmarkId::new("sled_insert", n), |b| {
            b.iter_custom(|iters| {
                let mut left = usize::try_from(iters).unwrap();
                let mut total = Duration::ZERO;
                while left > 0 {
                    let chunk = left.min(chunk_max);
                    let fresh = keys.fresh(chunk);
                    let start = Instant::now();
                    for key in fresh {
                        // Expires one second in: pruned below, untimed.
                        let got = sled.check_and_record(black_box(key), NOW.plus(1), NOW);
                        assert_eq!(got, Ok(Freshness::Fresh));
                    }
                    total += start.elapsed();
                    assert_eq!(sled.prune(NOW.plus(2)).unwrap(), chunk);
                    left -= chunk;
                }
                total
            });
        });
        let mut at = 0;
        group.bench_function(BenchmarkId::new("sled_lookup", n), |b| {
            b.iter_custom(|iters| {
                let recorded = keys.recorded(n, usize::try_from(iters).unwrap(), &mut at);
                let start = Instant::now();
                for key in recorded {
                    let got = sled.check_and_record(black_box(key), NOW.plus(61), NOW);
                    assert_eq!(got, Ok(Freshness::Replayed));
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

// ----------------------------------------------------------------- nonce

fn bench_nonce(criterion: &mut Criterion) {
    let issuer = NonceIssuer::new(
        NonceSecret::new(&[7; 32]).unwrap(),
        [NonceSecret::new(&[8; 32]).unwrap()],
        NonceIssuer::DEFAULT_STEP_SECS,
        NonceIssuer::DEFAULT_ACCEPTED_STEPS,
    )
    .unwrap();
    let nonce = issuer.issue(NOW);
    assert_eq!(issuer.check(&nonce, NOW.plus(30)), Ok(()));
    assert!(issuer.check(&nonce, NOW.plus(600)).is_err());
    let mut group = criterion.benchmark_group("nonce");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("issue", |b| b.iter(|| issuer.issue(black_box(NOW))));
    group.bench_function("check", |b| {
        b.iter(|| {
            issuer
                .check(black_box(&nonce), black_box(NOW))
                .expect("valid")
        });
    });
    group.finish();
}

// ---------------------------------------------------------- issuer store

/// The cases of `issuer_store`; the first four are the writes of one
/// grant (the replay record and the audit record twice each).
const STORE_CASES: [&str; 5] = [
    "replay_record",
    "create_session",
    "update_device",
    "append_audit",
    "per_token",
];

/// The writes of one grant on a store without `sync_writes`, then one
/// `flush`: what a grant would wait for if it flushed once, not after each
/// write (`sync_off` only).
const ONE_FLUSH: &str = "per_token_then_one_flush";

/// An issuer's store with one enrolled device, and the records one grant
/// writes.
struct StoreFixture {
    issuer: TestIssuer,
    device: TestDevice,
}

impl StoreFixture {
    fn new(sync_writes: bool) -> Self {
        let issuer = TestIssuer::with_config(|config| config.sync_writes = sync_writes);
        let device = issuer.enrolled_device("bench", &[Role::Device]);
        Self { issuer, device }
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.issuer.state.store
    }

    fn replay_record(&self) {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap();
        let got = self
            .store()
            .check_and_record(&key, NOW.plus(66), self.issuer.now())
            .unwrap();
        assert_eq!(got, Freshness::Fresh);
    }

    fn create_session(&self) {
        let now = self.issuer.now();
        let device = &self.device.device;
        let session = Session {
            id: SessionId::generate(),
            principal: device.principal.clone(),
            device: device.id.clone(),
            jkt: device.jkt,
            ip: Some("127.0.0.1".into()),
            user_agent: Some("holdfast-bench".into()),
            created_at: now,
            refreshed_at: now,
            expires_at: now.plus(28_800),
            revoked: None,
            flags: Vec::new(),
        };
        let refresh = RefreshRecord {
            session: session.id.clone(),
            jkt: device.jkt,
            issued_at: now,
            expires_at: now.plus(86_400),
            used_at: None,
        };
        self.store()
            .create_session(&session, &secret_hash(&random_secret()), &refresh)
            .unwrap();
    }

    fn update_device(&self) {
        let mut seen = self.device.device.clone();
        seen.last_seen = Some(self.issuer.now());
        self.store().update_device(&seen).unwrap();
    }

    fn append_audit(&self) {
        let entry = AuditEntry::new(
            self.issuer.now(),
            "token_issued",
            self.device.device.id.as_str(),
            "ok",
        )
        .ip(Some("127.0.0.1"))
        .detail("sid", self.device.session.id.as_str())
        .detail("jti", "Qm9vZ2llV29vZ2llMTIzNA")
        .detail("amr", "swk pop");
        self.store().append_audit(entry).unwrap();
    }

    fn per_token(&self) {
        self.replay_record();
        self.replay_record();
        self.create_session();
        self.update_device();
        self.append_audit();
        self.append_audit();
    }

    fn run(&self, case: &str) {
        match case {
            "replay_record" => self.replay_record(),
            "create_session" => self.create_session(),
            "update_device" => self.update_device(),
            "append_audit" => self.append_audit(),
            "per_token" => self.per_token(),
            ONE_FLUSH => {
                self.per_token();
                self.store().flush().unwrap();
            }
            other => panic!("no store case {other}"),
        }
    }
}

fn bench_store(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("issuer_store");
    for (mode, sync) in [("sync_off", false), ("sync_on", true)] {
        if sync {
            // Every write waits for an fsync: fewer, flat samples.
            group
                .sample_size(15)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(4));
        } else {
            group
                .sample_size(30)
                .sampling_mode(SamplingMode::Auto)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        }
        let fx = StoreFixture::new(sync);
        for case in STORE_CASES {
            run_store_case(&mut group, &fx, case, mode);
        }
        if !sync {
            // Flat samples: each iteration waits for one fsync.
            group
                .sample_size(15)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(4));
            run_store_case(&mut group, &fx, ONE_FLUSH, mode);
        }
    }
    group.finish();
}

fn run_store_case(
    group: &mut BenchmarkGroup<'_, WallTime>,
    fx: &StoreFixture,
    case: &str,
    mode: &str,
) {
    group.bench_function(BenchmarkId::new(case, mode), |b| b.iter(|| fx.run(case)));
}
