//! `holdfast-scale`: what Holdfast's state costs in memory as it grows, and
//! a fast way to give an issuer many devices and sessions.
//!
//! - `memory --what W --sizes 1000,10000,…`: for each size, in a fresh
//!   child process (so one measurement's freed memory cannot flatter the
//!   next), `VmRSS` before and after building W with that many entries:
//!   `replay-memory` (proto's `MemoryReplayGuard`), `replay-sled` (the
//!   verifier's `SledReplayGuard`, plus its size on disk), `token-cache`
//!   (the verifier's verified-token cache, realistic claims) or `registry`
//!   (the verifier's enrolled-device registry). Prints a table; `--json`
//!   writes the points for `holdfast-plot`.
//! - `enroll --data DIR --devices N --sessions M`: writes N principals, each
//!   with one enrolled software-key device (an enrollment code redeemed in
//!   the store, as `POST /enroll` does), and M live sessions spread over
//!   them, straight into the store of `holdfastd serve --data DIR` (which
//!   must not be running). HTTP enrollment runs at tens per second; this
//!   at thousands.
//!
//! Bench tooling, not part of Holdfast.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use holdfast_benches::{FastKey, NOW};
use holdfast_hw::KeyKind;
use holdfast_proto::{
    AccessTokenClaims, Audience, Confirmation, Jkt, MemoryReplayGuard, ReplayGuard, ReplayKey,
    Signer as _, UnixTime,
};
use holdfast_server::model::{
    AttestationSummary, Device, DeviceId, DeviceState, EnrollmentCode, Principal, PrincipalId,
    RefreshRecord, Role, Session, SessionId,
};
use holdfast_server::secret::{random_secret, secret_hash};
use holdfast_server::store::{Redeemed, SledStore, Store};
use holdfast_verifier::check::TokenCache;
use holdfast_verifier::registry::DeviceEntry;
use holdfast_verifier::{Registry, SledReplayGuard};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "holdfast-scale")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Memory of one structure at several sizes, one child process each.
    Memory {
        /// What to fill.
        #[arg(long, value_enum)]
        what: What,
        /// Entries, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,10000,100000,1000000"
        )]
        sizes: Vec<usize>,
        /// Write the points here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// One measurement in this process (what `memory` runs in each child).
    #[command(hide = true)]
    MemoryOne {
        #[arg(long, value_enum)]
        what: What,
        #[arg(long)]
        n: usize,
    },
    /// Enroll devices and start sessions straight in an issuer's store.
    Enroll {
        /// The issuer's data directory (`holdfastd serve --data`).
        #[arg(long)]
        data: PathBuf,
        /// Devices to enroll (one principal each).
        #[arg(long)]
        devices: usize,
        /// Live sessions to start, spread over the devices.
        #[arg(long, default_value_t = 0)]
        sessions: usize,
        /// Threads writing.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum What {
    ReplayMemory,
    ReplaySled,
    TokenCache,
    Registry,
}

impl What {
    fn name(self) -> &'static str {
        match self {
            Self::ReplayMemory => "replay-memory",
            Self::ReplaySled => "replay-sled",
            Self::TokenCache => "token-cache",
            Self::Registry => "registry",
        }
    }
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Cmd::Memory { what, sizes, json } => memory(what, &sizes, json.as_deref()),
        Cmd::MemoryOne { what, n } => memory_one(what, n).map(|point| println!("{point}")),
        Cmd::Enroll {
            data,
            devices,
            sessions,
            threads,
        } => enroll(&data, devices, sessions, threads),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("holdfast-scale: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- memory

fn memory(what: What, sizes: &[usize], json_out: Option<&Path>) -> Result<(), Error> {
    let me = std::env::current_exe()?;
    let mut points = Vec::new();
    println!(
        "| structure | entries | VmRSS before (MiB) | after (MiB) | bytes per entry | on disk (MiB) | build s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let output = Command::new(&me)
            .args(["memory-one", "--what", what.name(), "--n", &n.to_string()])
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "measuring {} at {n}: {}",
                what.name(),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let point: Value = serde_json::from_slice(&output.stdout)?;
        let mib = |key: &str| {
            point
                .get(key)
                .and_then(Value::as_f64)
                .map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k / 1024.0))
        };
        println!(
            "| {} | {n} | {} | {} | {:.0} | {} | {:.2} |",
            what.name(),
            mib("rss_before_kib"),
            mib("rss_after_kib"),
            point
                .get("bytes_per_entry")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
            mib("disk_kib"),
            point
                .get("build_secs")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
        );
        points.push(point);
    }
    if let Some(path) = json_out {
        let doc = json!({ "kind": "memory", "what": what.name(), "points": points });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn memory_one(what: What, n: usize) -> Result<Value, Error> {
    let jkt = FastKey::generate()?.public_jwk().thumbprint();
    let before = rss_kib().ok_or("no /proc/self/status")?;
    let started = Instant::now();
    let mut disk_kib = None;
    // Each structure is kept alive until after the second reading.
    let kept: Box<dyn std::any::Any> = match what {
        What::ReplayMemory => {
            // The default capacity (1M), or n with room to spare: each of
            // the 16 shards holds a sixteenth, and keys do not spread evenly
            // enough for a guard of capacity n to take exactly n.
            let guard = MemoryReplayGuard::new(n.saturating_add(n / 10).max(1_000_000));
            for i in 0..n {
                let key = ReplayKey::new(&jkt, "https://api.example.com/v1/orders/42", &jti(i));
                guard.check_and_record(key, NOW.plus(61), NOW)?;
            }
            Box::new(guard)
        }
        What::ReplaySled => {
            let dir = tempfile::tempdir()?;
            let guard = SledReplayGuard::open(dir.path())?;
            for i in 0..n {
                let key = ReplayKey::new(&jkt, "https://api.example.com/v1/orders/42", &jti(i));
                guard.check_and_record(key, NOW.plus(61), NOW)?;
            }
            drop(guard);
            disk_kib = Some(dir_size(dir.path()) / 1024);
            // Reopened, the guard holds what it held, on disk.
            Box::new(dir)
        }
        What::TokenCache => {
            let cache = TokenCache::new(n.max(1));
            for i in 0..n {
                let (token, claims) = token_like(&jkt, i);
                cache.insert(&token, Arc::new(claims));
            }
            Box::new(cache)
        }
        What::Registry => {
            let registry = Registry::new();
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let device_jkt = FastKey::generate()?.public_jwk().thumbprint();
                entries.push(device_entry(device_jkt));
            }
            registry.apply_snapshot(entries, None);
            Box::new(registry)
        }
    };
    let build_secs = started.elapsed().as_secs_f64();
    let after = rss_kib().ok_or("no /proc/self/status")?;
    drop(kept);
    let per_entry = (after.saturating_sub(before) as f64 * 1024.0) / n.max(1) as f64;
    Ok(json!({
        "what": what.name(),
        "n": n,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_entry": per_entry,
        "disk_kib": disk_kib,
        "build_secs": build_secs,
    }))
}

fn jti(i: usize) -> String {
    format!("jti-{i:012}-bench")
}

/// A token-shaped string and the claims a verifier caches for it: the
/// cache keeps the claims (and a 32-byte hash), never the token text.
fn token_like(jkt: &Jkt, i: usize) -> (String, AccessTokenClaims) {
    let claims = AccessTokenClaims {
        iss: "https://issuer.example.com".into(),
        sub: format!("p-{i:010}"),
        aud: Audience::One("https://api.example.com".into()),
        exp: NOW.plus(300),
        iat: NOW,
        nbf: Some(NOW),
        jti: format!("{i:022}"),
        client_id: format!("d-{i:012}"),
        scope: None,
        sid: Some(format!("s-{i:022}")),
        cnf: Confirmation { jkt: *jkt },
        amr: vec!["hwk".into(), "pop".into()],
        ipb: None,
    };
    (format!("token-{i}"), claims)
}

fn device_entry(jkt: Jkt) -> DeviceEntry {
    DeviceEntry {
        device_id: format!("d-{}", jkt.as_str().get(..22).unwrap_or_default()),
        principal_id: format!("p-{}", jkt.as_str().get(22..).unwrap_or_default()),
        jkt,
        state: "active".into(),
        principal_disabled: false,
    }
}

/// `VmRSS` of this process, KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_size(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

// ---------------------------------------------------------------- enroll

fn enroll(data: &Path, devices: usize, sessions: usize, threads: usize) -> Result<(), Error> {
    let store = SledStore::open(&data.join("store"), false)?;
    let now = holdfast_proto::Clock::now(&holdfast_proto::SystemClock);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let enrolled: Vec<Device> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<Vec<Device>, Error> {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= devices {
                            return Ok(mine);
                        }
                        mine.push(enroll_one(&store, i, now)?);
                        if i > 0 && i.is_multiple_of(100_000) {
                            eprintln!("enrolled {i} devices");
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(devices);
        for handle in handles {
            all.extend(
                handle
                    .join()
                    .map_err(|_| "an enrolling thread panicked")??,
            );
        }
        Ok::<_, Error>(all)
    })?;
    let enrolled_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..sessions {
        let Some(device) = enrolled.get(i % enrolled.len().max(1)) else {
            return Err("sessions need at least one device".into());
        };
        start_session(&store, device, now)?;
    }
    store.flush()?;
    eprintln!(
        "enrolled {devices} devices in {enrolled_secs:.1} s and started {sessions} sessions in {:.1} s in {}",
        started.elapsed().as_secs_f64(),
        data.display()
    );
    Ok(())
}

fn enroll_one(store: &SledStore, i: usize, now: UnixTime) -> Result<Device, Error> {
    let principal = Principal {
        id: PrincipalId::generate(),
        name: format!("scale-{i:08}"),
        roles: vec![Role::Device],
        disabled: false,
        created_at: now,
    };
    store.put_principal(&principal)?;
    let jwk = FastKey::generate()?.public_jwk().clone();
    let device = Device {
        id: DeviceId::generate(),
        principal: principal.id.clone(),
        name: format!("scale-{i:08}'s laptop"),
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
        created_by: "holdfast-scale".into(),
        created_at: now,
        expires_at: now.plus(600),
        used_by: None,
    };
    store.put_enrollment_code(&code_hash, &code)?;
    match store.redeem_enrollment_code(&code_hash, &device, now)? {
        Redeemed::Enrolled(_) => Ok(device),
        _ => Err(format!("the store refused to enroll device {i}").into()),
    }
}

fn start_session(store: &SledStore, device: &Device, now: UnixTime) -> Result<(), Error> {
    let session = Session {
        id: SessionId::generate(),
        principal: device.principal.clone(),
        device: device.id.clone(),
        jkt: device.jkt,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("holdfast-scale".into()),
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
    store.create_session(&session, &secret_hash(&random_secret()), &refresh)?;
    Ok(())
}
