//! The first request with a new access token: the verifier checks the
//! token's signature and the proof's, beside two bare P-256 verifications.
//!
//! One run measures, in the group `first_sight`:
//!
//! - `bare_p256_x2`: two aws-lc-rs `ParsedPublicKey::verify_sig` calls per
//!   iteration, one of a real issuer-signed token (issuer key) and one of a
//!   real proof (device key), both keys parsed once: the floor.
//! - `bare_p256_x2_distinct`: the same over 4096 different tokens and
//!   proofs, as a server sees them.
//! - `check_request_cold`: `Verifier::check_request` of a request whose
//!   token the verifier has never seen (a verified-token cache miss: the
//!   token's signature, its claims, then the proof) with a fresh proof.
//! - `check_request_warm`: the same request with a token verified before
//!   (the cached path of `verifier_request`), for comparison.
//!
//! Every timed iteration has a token and a proof made for it (with `ath`)
//! before the sample's timed loop, on both cores; any refusal stops the
//! bench. At the end it prints the cold request's rate as a fraction of the
//! two-verification rate, from this run's means.
//! `cargo bench -p holdfast-benches --bench first_sight`; results in
//! `docs/performance.md`.

// A bench must stop loudly when its setup is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use getrandom::SysRng;
use holdfast_benches::{
    DISTINCT_SIGNATURES, FastKey, NOW, ProofParts, ThisRun, criterion_home, prefilled_guard,
    result_files,
};
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessToken, AccessTokenClaims, Alg, Audience, CompactJws, Confirmation,
    FixedClock, Htu, IssuerKeys, JwtHeader, ProofRequest, Signer, VerifyingKey, build_proof,
    sign_jwt,
};
use holdfast_verifier::registry::DeviceEntry;
use holdfast_verifier::{Registry, RequestParts, Verifier, VerifierConfig};

const GROUP: &str = "first_sight";
const IDS: [&str; 4] = [
    "bare_p256_x2",
    "bare_p256_x2_distinct",
    "check_request_cold",
    "check_request_warm",
];

const ISSUER: &str = "https://issuer.example.com";
const AUDIENCE: &str = "https://api.example.com";
const BASE_URL: &str = "https://api.example.com";
const PATH: &str = "/v1/orders/42";
const KID: &str = "holdfast-2025-06-a";

fn main() {
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    let ids: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
    let files = result_files(&home, GROUP, &ids);

    let fx = Fixture::new();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    bench_bare(&mut group, &fx);
    bench_cold(&mut group, &fx);
    bench_warm(&mut group, &fx);
    group.finish();
    criterion.final_summary();

    let run = ThisRun::read(GROUP, &files);
    if run.is_empty() {
        println!("\nNo ratio: nothing ran in benchmark mode in this invocation.");
        return;
    }
    run.print_table();
    println!("\n== Rates as a fraction of two bare P-256 verifications, this run ==");
    run.print_ratio("check_request_cold", "bare_p256_x2", None);
    run.print_ratio("check_request_cold", "bare_p256_x2_distinct", None);
    run.print_ratio("check_request_warm", "bare_p256_x2", None);
    if let (Some(cold), Some(warm)) = (run.get(IDS[2]), run.get(IDS[3])) {
        println!(
            "check_request_cold - check_request_warm: {:.2} µs (the token's signature, claims and the cache insert)",
            (cold.mean_ns - warm.mean_ns) / 1e3
        );
    }
}

struct Keys(HashMap<String, Arc<VerifyingKey>>);

impl IssuerKeys for Keys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.0.get(kid).cloned()
    }
}

/// An issuer key, an enrolled device key, and a verifier at [`NOW`].
struct Fixture {
    issuer: FastKey,
    device: FastKey,
    htu: Htu,
    verifier: Verifier,
    authorization: String,
    serial: AtomicU64,
}

impl Fixture {
    fn new() -> Self {
        let issuer = FastKey::generate().unwrap();
        let device = FastKey::generate().unwrap();
        let jkt = device.public_jwk().thumbprint();
        let verifying = VerifyingKey::new(issuer.public_jwk(), Alg::Es256).unwrap();
        let keys = Keys(HashMap::from([(KID.to_owned(), Arc::new(verifying))]));
        let registry = Registry::new();
        registry.apply_snapshot(
            vec![DeviceEntry {
                device_id: "d-7f3a9c1e5b2d".into(),
                principal_id: "p-3m9Qx1".into(),
                jkt,
                state: "active".into(),
                principal_disabled: false,
            }],
            None,
        );
        registry.mark_synced(NOW);
        let htu = Htu::parse(&format!("{BASE_URL}{PATH}")).unwrap();
        let config = VerifierConfig::new(ISSUER, AUDIENCE, BASE_URL, "rs", "secret");
        let verifier = Verifier::new(config, Arc::new(keys), Arc::new(registry))
            .with_clock(Arc::new(FixedClock(NOW)))
            .with_replay_guard(Arc::new(prefilled_guard(&htu).unwrap()));
        let mut fx = Self {
            issuer,
            device,
            htu,
            verifier,
            authorization: String::new(),
            serial: AtomicU64::new(0),
        };
        // A token for the warm case, verified once now; a fresh proof
        // passes, the same proof again is a replay.
        let token = fx.token();
        fx.authorization = format!("DPoP {token}");
        let first = fx.proof(&token);
        let cold = fx
            .verifier
            .check_request(&fx.parts(&fx.authorization, &first));
        assert!(cold.is_ok(), "{cold:?}");
        let second = fx.proof(&token);
        assert!(
            fx.verifier
                .check_request(&fx.parts(&fx.authorization, &second))
                .is_ok()
        );
        assert!(
            fx.verifier
                .check_request(&fx.parts(&fx.authorization, &second))
                .is_err()
        );
        fx
    }

    /// A new token for the device (its own `jti` and `sid`), signed now.
    fn token(&self) -> String {
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let claims = AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "p-3m9Qx1".into(),
            aud: Audience::One(AUDIENCE.into()),
            exp: NOW.plus(300),
            iat: NOW,
            nbf: Some(NOW),
            jti: format!("jti-{n:016x}-Qm9vZ2llV29v"),
            client_id: "d-7f3a9c1e5b2d".into(),
            scope: Some("orders:read orders:write".into()),
            sid: Some(format!("s-{n:016x}-c2Vzc2lvbi0")),
            cnf: Confirmation {
                jkt: self.device.public_jwk().thumbprint(),
            },
            amr: vec!["hwk".into(), "pop".into()],
            ipb: None,
        };
        let header = JwtHeader {
            typ: ACCESS_TOKEN_TYP,
            kid: Some(KID),
            jwk: None,
        };
        sign_jwt(&self.issuer, &header, &claims).unwrap()
    }

    /// A fresh proof for the request, bound to `token` (`ath`).
    fn proof(&self, token: &str) -> String {
        let token = AccessToken::new(token.to_owned());
        let request = ProofRequest {
            htm: "GET",
            htu: &self.htu,
            nonce: None,
            access_token: Some(&token),
        };
        build_proof(&self.device, &mut SysRng, &request, NOW).unwrap()
    }

    /// `n` (Authorization value, proof) pairs, each with a new token,
    /// made on both cores.
    fn fresh_pairs(&self, n: usize) -> Vec<(String, String)> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per = n.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let count = per.min(n.saturating_sub(t * per));
                    scope.spawn(move || {
                        (0..count)
                            .map(|_| {
                                let token = self.token();
                                let proof = self.proof(&token);
                                (format!("DPoP {token}"), proof)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    }

    fn parts<'a>(&self, authorization: &'a str, proof: &'a str) -> RequestParts<'a> {
        RequestParts {
            method: "GET",
            path: PATH,
            authorization: vec![authorization.as_bytes()],
            dpop: vec![proof.as_bytes()],
            client_ip: None,
        }
    }
}

/// The signing input, signature of a token (issuer key) and of a proof
/// (device key).
struct Pair {
    token: (Vec<u8>, Vec<u8>),
    proof: (Vec<u8>, Vec<u8>),
}

fn split(authorization: &str, proof: &str) -> Pair {
    let token = authorization.strip_prefix("DPoP ").unwrap();
    let jws = CompactJws::parse(token).unwrap();
    let parts = ProofParts::of(proof).unwrap();
    Pair {
        token: (jws.signing_input().to_vec(), jws.signature().to_vec()),
        proof: (parts.signing_input, parts.signature),
    }
}

fn parsed(key: &FastKey) -> ParsedPublicKey {
    let holdfast_proto::Jwk::Ec(ec) = key.public_jwk() else {
        panic!("a FastKey is P-256")
    };
    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, ec.sec1_uncompressed()).unwrap()
}

fn bench_bare(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let (issuer, device) = (parsed(&fx.issuer), parsed(&fx.device));
    let pairs: Vec<Pair> = fx
        .fresh_pairs(DISTINCT_SIGNATURES)
        .iter()
        .map(|(a, p)| split(a, p))
        .collect();
    let one = &pairs[0];
    assert!(issuer.verify_sig(&one.token.0, &one.token.1).is_ok());
    assert!(device.verify_sig(&one.proof.0, &one.proof.1).is_ok());
    assert!(device.verify_sig(&one.token.0, &one.token.1).is_err());
    let both = |pair: &Pair| {
        issuer
            .verify_sig(black_box(&pair.token.0), black_box(&pair.token.1))
            .expect("verifies");
        device
            .verify_sig(black_box(&pair.proof.0), black_box(&pair.proof.1))
            .expect("verifies");
    };
    group.bench_function(IDS[0], |b| b.iter(|| both(one)));
    let mut next = 0;
    group.bench_function(IDS[1], |b| {
        b.iter(|| {
            both(&pairs[next % pairs.len()]);
            next += 1;
        });
    });
}

fn bench_cold(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let mut verified: u64 = 0;
    group.bench_function(IDS[2], |b| {
        b.iter_custom(|iters| {
            let pairs = fx.fresh_pairs(usize::try_from(iters).unwrap());
            let mut refused = None;
            let start = Instant::now();
            for (authorization, proof) in &pairs {
                if let Err(e) = fx.verifier.check_request(&fx.parts(authorization, proof)) {
                    refused = Some(e);
                }
            }
            let elapsed = start.elapsed();
            if let Some(e) = refused {
                panic!("{}: a fresh request was refused: {e}", IDS[2]);
            }
            verified += iters;
            elapsed
        });
    });
    println!("{}: {verified} new tokens verified, none refused", IDS[2]);
}

fn bench_warm(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let token = fx.authorization.strip_prefix("DPoP ").unwrap().to_owned();
    let mut verified: u64 = 0;
    group.bench_function(IDS[3], |b| {
        b.iter_custom(|iters| {
            let proofs: Vec<String> = (0..iters).map(|_| fx.proof(&token)).collect();
            let mut refused = None;
            let start = Instant::now();
            for proof in &proofs {
                if let Err(e) = fx
                    .verifier
                    .check_request(&fx.parts(&fx.authorization, proof))
                {
                    refused = Some(e);
                }
            }
            let elapsed = start.elapsed();
            if let Some(e) = refused {
                panic!("{}: a fresh request was refused: {e}", IDS[3]);
            }
            verified += iters;
            elapsed
        });
    });
    println!("{}: {verified} requests verified, none refused", IDS[3]);
}
