//! What a protected request costs in `holdfast-verifier`, beside the one
//! P-256 verification it contains.
//!
//! One run measures, in the group `verifier_request`:
//!
//! - `bare_p256`: aws-lc-rs `ParsedPublicKey::verify_sig` of one real
//!   proof's signing input (the floor, as in `proof_verify`), and
//!   `bare_p256_distinct`, the same over 4096 different signatures.
//! - `proof_only`: `ProofVerifier::verify` of the request's proof alone.
//! - `check_request`: `Verifier::check_request` of a whole request
//!   (`Authorization: DPoP` with a real issuer-signed token, a fresh proof
//!   each iteration): header parsing, the verified-token cache (the token was
//!   verified once before timing, as for any request after a client's
//!   first), the registry, `htu`, the proof and the replay guard.
//! - `layer_call`: the same request as an `http::Request` through
//!   `VerifierService` to an inner service that answers at once: header
//!   extraction, the check, the identity into the extensions.
//!
//! At the end it prints each rate as a fraction of the bare rate, from
//! criterion's means of this run, and an interleaved cross-check.
//! `cargo bench -p holdfast-benches --bench verifier_request`; results in
//! `docs/performance.md`.

// A bench must stop loudly when its setup is wrong (a refused request would
// make it time refusals), so the no-panic lints for library code are lifted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future as _;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use axum::body::Body;
use axum::response::Response;
use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use holdfast_benches::{
    DISTINCT_SIGNATURES, Estimates, NOW, ProofFactory, ProofParts, ResultFile, TARGET_RATIO,
    criterion_home, distinct_signatures, prefilled_guard, print_results,
};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessToken, AccessTokenClaims, Alg, Audience, Confirmation, FixedClock, Htu,
    IssuerKeys, Jkt, JwtHeader, NonceCheck, ProofCheck, ProofVerifier, Signer, VerifyingKey,
    sign_jwt,
};
use holdfast_verifier::registry::DeviceEntry;
use holdfast_verifier::{
    Registry, RequestParts, VerifiedIdentity, Verifier, VerifierConfig, VerifierLayer,
};
use tower::{Layer as _, Service as _};

const GROUP: &str = "verifier_request";
const IDS: [&str; 5] = [
    "bare_p256",
    "bare_p256_distinct",
    "proof_only",
    "check_request",
    "layer_call",
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
    let files: Vec<(&str, ResultFile)> = IDS
        .iter()
        .map(|id| (*id, ResultFile::before_run(&home, GROUP, id)))
        .collect();

    let fx = Fixture::new();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    bench_bare(&mut group, &fx);
    bench_proof_only(&mut group, &fx);
    bench_check_request(&mut group, &fx);
    bench_layer_call(&mut group, &fx);
    group.finish();
    criterion.final_summary();

    report(&files, &fx);
}

struct Keys(HashMap<String, Arc<VerifyingKey>>);

impl IssuerKeys for Keys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.0.get(kid).cloned()
    }
}

/// An issuer key, a device key enrolled in the registry, a real access
/// token bound to it, and a verifier whose clock stands at [`NOW`].
struct Fixture {
    proofs: ProofFactory,
    device_jkt: Jkt,
    token: String,
    authorization: String,
    verifier: Arc<Verifier>,
    sample: String,
}

impl Fixture {
    fn new() -> Self {
        let issuer_key = SoftwareKey::generate().unwrap();
        let device = SoftwareKey::generate().unwrap();
        let device_jkt = device.public_jwk().thumbprint();
        let claims = AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "p-3m9Qx1".into(),
            aud: Audience::One(AUDIENCE.into()),
            exp: NOW.plus(300),
            iat: NOW,
            nbf: Some(NOW),
            jti: "Qm9vZ2llV29vZ2llMTIzNA".into(),
            client_id: "d-7f3a9c1e5b2d".into(),
            scope: Some("orders:read orders:write".into()),
            sid: Some("s-c2Vzc2lvbi0wMDAwMDAwMQ".into()),
            cnf: Confirmation { jkt: device_jkt },
            amr: vec!["hwk".into(), "pop".into()],
            ipb: None,
        };
        let header = JwtHeader {
            typ: ACCESS_TOKEN_TYP,
            kid: Some(KID),
            jwk: None,
        };
        let token = sign_jwt(&issuer_key, &header, &claims).unwrap();
        let verifying = VerifyingKey::new(issuer_key.public_jwk(), Alg::Es256).unwrap();
        let keys = Keys(HashMap::from([(KID.to_owned(), Arc::new(verifying))]));

        let registry = Registry::new();
        registry.apply_snapshot(
            vec![DeviceEntry {
                device_id: claims.client_id.clone(),
                principal_id: claims.sub.clone(),
                jkt: device_jkt,
                state: "active".into(),
                principal_disabled: false,
            }],
            None,
        );
        registry.mark_synced(NOW);

        let htu = format!("{BASE_URL}{PATH}");
        let config = VerifierConfig::new(ISSUER, AUDIENCE, BASE_URL, "rs", "secret");
        let verifier = Verifier::new(config, Arc::new(keys), Arc::new(registry))
            .with_clock(Arc::new(FixedClock(NOW)))
            .with_replay_guard(Arc::new(
                prefilled_guard(&Htu::parse(&htu).unwrap()).unwrap(),
            ));
        let proofs =
            ProofFactory::new(device, "GET", &htu, Some(AccessToken::new(token.clone()))).unwrap();
        let sample = proofs.one().unwrap();
        let fx = Self {
            authorization: format!("DPoP {token}"),
            proofs,
            device_jkt,
            token,
            verifier: Arc::new(verifier),
            sample,
        };
        // The first request verifies the token and caches it; a fresh proof
        // after that passes, and the same proof again is a replay.
        let first = fx.proofs.one().unwrap();
        fx.verifier.check_request(&fx.parts(&first)).unwrap();
        let second = fx.proofs.one().unwrap();
        let identity = fx.verifier.check_request(&fx.parts(&second)).unwrap();
        assert_eq!(identity.jkt, device_jkt);
        assert!(fx.verifier.check_request(&fx.parts(&second)).is_err());
        fx
    }

    fn parts<'a>(&'a self, proof: &'a str) -> RequestParts<'a> {
        RequestParts {
            method: "GET",
            path: PATH,
            authorization: vec![self.authorization.as_bytes()],
            dpop: vec![proof.as_bytes()],
            client_ip: None,
        }
    }

    fn http_request(&self, proof: &str) -> http::Request<Body> {
        http::Request::get(format!("{BASE_URL}{PATH}"))
            .header("authorization", &self.authorization)
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    }
}

fn bench_bare(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let parts = ProofParts::of(&fx.sample).unwrap();
    let (msg, sig) = (&parts.signing_input, &parts.signature);
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &parts.sec1).unwrap();
    let mut tampered = sig.clone();
    tampered[10] ^= 1;
    assert!(parsed.verify_sig(msg, sig).is_ok());
    assert!(parsed.verify_sig(msg, &tampered).is_err());
    group.bench_function(IDS[0], |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(msg), black_box(sig))
                .expect("verifies")
        });
    });
    let pairs = distinct_signatures(&fx.proofs).unwrap();
    let mut next = 0;
    group.bench_function(IDS[1], |b| {
        b.iter(|| {
            let (m, s) = &pairs[next % DISTINCT_SIGNATURES];
            next += 1;
            parsed
                .verify_sig(black_box(m), black_box(s))
                .expect("verifies")
        });
    });
}

fn bench_proof_only(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let verifier = ProofVerifier::default();
    let guard = prefilled_guard(fx.proofs.htu()).unwrap();
    let check = ProofCheck {
        htm: "GET",
        htu: fx.proofs.htu(),
        access_token: Some(&fx.token),
        bound_jkt: Some(&fx.device_jkt),
        nonce: NonceCheck::NotRequired,
        now: NOW,
    };
    timed_over_fresh_proofs(group, IDS[2], fx, |proof| {
        verifier
            .verify(proof, &check, &guard)
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

fn bench_check_request(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    timed_over_fresh_proofs(group, IDS[3], fx, |proof| {
        fx.verifier
            .check_request(&fx.parts(proof))
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

fn bench_layer_call(group: &mut BenchmarkGroup<'_, WallTime>, fx: &Fixture) {
    let inner = tower::service_fn(|request: http::Request<Body>| {
        let verified = request.extensions().get::<VerifiedIdentity>().is_some();
        let status = if verified { 200 } else { 500 };
        let mut response = Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let mut service = VerifierLayer::new(Arc::clone(&fx.verifier)).layer(inner);
    let mut cx = Context::from_waker(Waker::noop());
    let mut call = move |request: http::Request<Body>| -> Result<(), String> {
        let mut future = service.call(request);
        match Pin::new(&mut future).poll(&mut cx) {
            Poll::Ready(Ok(response)) if response.status() == 200 => Ok(()),
            Poll::Ready(Ok(response)) => Err(format!("refused: {}", response.status())),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Err("the inner service is ready at once".to_owned()),
        }
    };
    let mut verified: u64 = 0;
    group.bench_function(IDS[4], |b| {
        b.iter_custom(|iters| {
            let requests: Vec<_> = fx
                .proofs
                .many(usize::try_from(iters).unwrap())
                .unwrap()
                .iter()
                .map(|proof| fx.http_request(proof))
                .collect();
            let start = Instant::now();
            let mut refused = None;
            for request in requests {
                if let Err(e) = call(black_box(request)) {
                    refused = Some(e);
                }
            }
            let elapsed = start.elapsed();
            if let Some(e) = refused {
                panic!("{}: a fresh request was refused: {e}", IDS[4]);
            }
            verified += iters;
            elapsed
        });
    });
    println!("{}: {verified} requests verified, none refused", IDS[4]);
}

/// Times `check` over proofs made fresh for each sample, outside the timed
/// loop; any refusal stops the bench.
fn timed_over_fresh_proofs(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    fx: &Fixture,
    check: impl Fn(&str) -> Result<(), String>,
) {
    let mut verified: u64 = 0;
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let proofs = fx.proofs.many(usize::try_from(iters).unwrap()).unwrap();
            let mut refused = None;
            let start = Instant::now();
            for proof in &proofs {
                if let Err(e) = check(black_box(proof)) {
                    refused = Some(e);
                }
            }
            let elapsed = start.elapsed();
            if let Some(e) = refused {
                panic!("{id}: a fresh request was refused: {e}");
            }
            verified += iters;
            elapsed
        });
    });
    println!("{id}: {verified} requests verified, none refused");
}

fn report(files: &[(&str, ResultFile)], fx: &Fixture) {
    let ran: Vec<(&str, Estimates)> = files
        .iter()
        .filter_map(|(id, f)| Some((*id, f.estimates()?)))
        .collect();
    print_results(ran.iter().map(|(id, e)| (format!("{GROUP}/{id}"), e)));
    let find = |id: &str| ran.iter().find(|(i, _)| *i == id).map(|(_, e)| *e);
    let Some(bare) = find(IDS[0]) else {
        println!(
            "\nNo ratio: {GROUP}/{} did not run in benchmark mode in this invocation \
             (filtered out, --test or --list); results of earlier runs are not used.",
            IDS[0]
        );
        return;
    };
    println!();
    println!(
        "== Rate / bare P-256 verification rate ({GROUP}/{}, {:.0}/s), from the means of this run ==",
        IDS[0],
        1e9 / bare.mean_ns
    );
    for id in &IDS[2..] {
        let Some(e) = find(id) else { continue };
        let ratio = bare.mean_ns / e.mean_ns;
        let slope_ratio = match (bare.slope_ns, e.slope_ns) {
            (Some(b), Some(f)) => format!(", {:.3} from the slopes", b / f),
            _ => String::new(),
        };
        let verdict = if ratio >= TARGET_RATIO {
            "meets 0.80"
        } else {
            "BELOW 0.80"
        };
        println!(
            "{GROUP}/{id}: {:.0}/s, ratio {ratio:.3}{slope_ratio} ({verdict})",
            1e9 / e.mean_ns
        );
    }
    if let (Some(proof), Some(request)) = (find(IDS[2]), find(IDS[3])) {
        println!(
            "check_request - proof_only: {:.2} µs per request (token cache, registry, htu, headers)",
            (request.mean_ns - proof.mean_ns) / 1e3
        );
    }
    if let Some(distinct) = find(IDS[1]) {
        let ratios: Vec<String> = IDS[2..]
            .iter()
            .filter_map(|id| Some(format!("{id} {:.3}", distinct.mean_ns / find(id)?.mean_ns)))
            .collect();
        println!(
            "against {GROUP}/{} ({:.0}/s): {}",
            IDS[1],
            1e9 / distinct.mean_ns,
            ratios.join(", ")
        );
    }
    if find(IDS[3]).is_some() {
        interleaved_cross_check(fx);
    }
}

/// Alternates blocks of bare verifications and whole-request checks, so both
/// see the same machine load, and prints their ratio.
fn interleaved_cross_check(fx: &Fixture) {
    const ROUNDS: usize = 20;
    const BLOCK: usize = 1_000;
    let parts = ProofParts::of(&fx.sample).unwrap();
    let (msg, sig) = (&parts.signing_input, &parts.signature);
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &parts.sec1).unwrap();
    let (mut bare, mut full) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let proofs = fx.proofs.many(BLOCK).unwrap();
        let start = Instant::now();
        for _ in 0..BLOCK {
            parsed
                .verify_sig(black_box(msg), black_box(sig))
                .expect("verifies");
        }
        bare += start.elapsed();
        let start = Instant::now();
        for proof in &proofs {
            drop(black_box(
                fx.verifier
                    .check_request(&fx.parts(proof))
                    .expect("verifies"),
            ));
        }
        full += start.elapsed();
    }
    let n = (ROUNDS * BLOCK) as f64;
    println!(
        "interleaved cross-check ({ROUNDS} x {BLOCK} each): bare {:.2} µs, check_request {:.2} µs, ratio {:.3}",
        bare.as_secs_f64() * 1e6 / n,
        full.as_secs_f64() * 1e6 / n,
        bare.as_secs_f64() / full.as_secs_f64()
    );
}
