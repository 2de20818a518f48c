//! Token issuance in-process, beside the three signature operations it
//! cannot avoid.
//!
//! A `client_credentials` grant (`holdfast_server::issuer::client_credentials`)
//! verifies the client assertion and the DPoP proof (two P-256
//! verifications), signs the access token (one P-256 signature), and writes
//! the store: two replay records, the session and its refresh token, the
//! device's `last_seen`, two audit records. One run measures, in the group
//! `issuance`:
//!
//! - `verify_p256`: one aws-lc-rs `ParsedPublicKey::verify_sig`.
//! - `sign_aws_lc`: one aws-lc-rs `EcdsaKeyPair::sign` of a token's signing
//!   input, and `sign_p256`, the same with RustCrypto `p256` (`SoftwareKey`).
//! - `issuer_sign_token`: `Keyring::sign_access_token`, the issuer's own
//!   signing step (claims JSON, base64url, signature).
//! - `three_sig_ops`: two verifications and one aws-lc-rs signature per
//!   iteration: the floor.
//! - `grant_sync_off`: the whole grant on a `TestIssuer`-like issuer, sled
//!   on a temp dir, `sync_writes = false` (sled flushes in the background).
//! - `grant_sync_on`: the same with `sync_writes = true` (the default):
//!   every store write is flushed to disk before the grant answers.
//!
//! Each grant gets its own assertion and proof (fresh `jti`s, the issuer's
//! nonce), made before the sample's timed loop; any refusal stops the
//! bench. At the end it prints each grant's rate as a fraction of the
//! three-operation rate (the issue's target: at least 0.5).
//! `cargo bench -p holdfast-benches --bench issuance`; results in
//! `docs/performance.md`.

// A bench must stop loudly when its setup is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, ParsedPublicKey,
};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use getrandom::SysRng;
use holdfast_benches::{ProofParts, ThisRun, criterion_home, result_files};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    CompactJws, JwtHeader, ProofRequest, Signer as _, UnixTime, build_proof, sign_jwt,
};
use holdfast_server::issuer::{RequestContext, client_credentials};
use holdfast_server::keys::Keyring;
use holdfast_server::model::Role;
use holdfast_server::testing::{TestDevice, TestIssuer};

const GROUP: &str = "issuance";
const IDS: [&str; 8] = [
    "verify_p256",
    "sign_aws_lc",
    "sign_p256",
    "issuer_sign_token",
    "three_sig_ops",
    "grant_sync_off",
    "grant_sync_on",
    "three_sig_ops_again",
];

fn main() {
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    let ids: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
    let files = result_files(&home, GROUP, &ids);

    let fast = Issuer::new(false);
    let durable = Issuer::new(true);
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    let floor = Floor::new(&fast);
    floor.bench(&mut group, IDS[0..5].try_into().unwrap());
    fast.bench(&mut group, IDS[5]);
    // Each durable grant waits for several fsyncs: fewer, flat samples.
    group
        .sample_size(15)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(8));
    durable.bench(&mut group, IDS[6]);
    // The floor again after the slow case, so drift shows.
    group
        .sample_size(40)
        .sampling_mode(SamplingMode::Auto)
        .measurement_time(Duration::from_secs(4));
    floor.bench_three(&mut group, IDS[7]);
    group.finish();
    criterion.final_summary();

    let run = ThisRun::read(GROUP, &files);
    if run.is_empty() {
        println!("\nNo ratio: nothing ran in benchmark mode in this invocation.");
        return;
    }
    run.print_table();
    println!(
        "\n== Grant rate as a fraction of the three-signature-operation rate (target 0.50), this run =="
    );
    for grant in [IDS[5], IDS[6]] {
        run.print_ratio(grant, "three_sig_ops", Some(0.5));
    }
    run.print_ratio(IDS[5], "three_sig_ops_again", Some(0.5));
    if let (Some(v), Some(s), Some(p)) = (run.get(IDS[0]), run.get(IDS[1]), run.get(IDS[2])) {
        println!(
            "bound from the parts: 2 x verify + 1 x sign = {:.1} µs with aws-lc-rs signing \
             ({:.0}/s per core), {:.1} µs with p256 signing ({:.0}/s per core)",
            (2.0 * v.mean_ns + s.mean_ns) / 1e3,
            1e9 / (2.0 * v.mean_ns + s.mean_ns),
            (2.0 * v.mean_ns + p.mean_ns) / 1e3,
            1e9 / (2.0 * v.mean_ns + p.mean_ns),
        );
    }
    if let (Some(off), Some(floor)) = (run.get(IDS[5]), run.get(IDS[4])) {
        println!(
            "grant_sync_off - three_sig_ops: {:.1} µs per grant outside the signature operations",
            (off.mean_ns - floor.mean_ns) / 1e3
        );
    }
    if let (Some(on), Some(off)) = (run.get(IDS[6]), run.get(IDS[5])) {
        println!(
            "grant_sync_on - grant_sync_off: {:.1} µs per grant waiting for the disk",
            (on.mean_ns - off.mean_ns) / 1e3
        );
    }
}

/// An issuer on a temporary sled store with one enrolled device.
struct Issuer {
    issuer: TestIssuer,
    device: TestDevice,
    label: &'static str,
}

impl Issuer {
    fn new(sync_writes: bool) -> Self {
        let issuer = TestIssuer::with_config(|config| config.sync_writes = sync_writes);
        let device = issuer.enrolled_device("bench", &[Role::Device]);
        let fx = Self {
            issuer,
            device,
            label: if sync_writes { "sync on" } else { "sync off" },
        };
        // A grant passes; the same assertion and proof again are refused.
        let (assertion, proof) = fx.credentials();
        fx.grant(&assertion, &proof).unwrap();
        assert!(fx.grant(&assertion, &proof).is_err());
        fx
    }

    fn now(&self) -> UnixTime {
        self.issuer.now()
    }

    /// A client assertion and a proof with the issuer's current nonce.
    fn credentials(&self) -> (String, String) {
        let state = &self.issuer.state;
        let now = self.now();
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).unwrap();
        let client_id = self.device.device.id.as_str();
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": state.settings.token_endpoint.as_str(),
            "iat": now,
            "exp": now.plus(60),
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        let header = JwtHeader {
            typ: "JWT",
            kid: None,
            jwk: None,
        };
        let assertion = sign_jwt(&self.device.key, &header, &claims).unwrap();
        let nonce = state.nonces.issue(now);
        let request = ProofRequest {
            htm: "POST",
            htu: &state.settings.token_endpoint,
            nonce: Some(&nonce),
            access_token: None,
        };
        let proof = build_proof(&self.device.key, &mut SysRng, &request, now).unwrap();
        (assertion, proof)
    }

    fn many(&self, n: u64) -> Vec<(String, String)> {
        let n = usize::try_from(n).unwrap();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per = n.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let count = per.min(n.saturating_sub(t * per));
                    scope.spawn(move || (0..count).map(|_| self.credentials()).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    }

    fn grant(&self, assertion: &str, proof: &str) -> Result<(), String> {
        let ctx = RequestContext {
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            user_agent: Some("holdfast-bench".into()),
            now: self.now(),
        };
        client_credentials(&self.issuer.state, assertion, proof, &ctx)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn bench(&self, group: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
        let mut granted: u64 = 0;
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let credentials = self.many(iters);
                let mut refused = None;
                let start = Instant::now();
                for (assertion, proof) in &credentials {
                    if let Err(e) = self.grant(black_box(assertion), black_box(proof)) {
                        refused = Some(e);
                    }
                }
                let elapsed = start.elapsed();
                if let Some(e) = refused {
                    panic!("{id}: a fresh grant was refused: {e}");
                }
                granted += iters;
                elapsed
            });
        });
        println!(
            "{id} ({}): {granted} tokens issued, none refused",
            self.label
        );
    }
}

/// The three operations a grant cannot avoid, on real inputs: the
/// assertion's and the proof's signatures, and a token's signing input.
struct Floor {
    assertion: (Vec<u8>, Vec<u8>),
    proof: (Vec<u8>, Vec<u8>),
    device: ParsedPublicKey,
    token_input: Vec<u8>,
    aws_lc: EcdsaKeyPair,
    p256: SoftwareKey,
    rng: SystemRandom,
    keyring: Arc<Keyring>,
    device_claims: holdfast_proto::AccessTokenClaims,
}

impl Floor {
    fn new(fx: &Issuer) -> Self {
        let (assertion, proof) = fx.credentials();
        let jws = CompactJws::parse(&assertion).unwrap();
        let parts = ProofParts::of(&proof).unwrap();
        let device = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &parts.sec1).unwrap();
        let claims = fx.device.claims(&fx.issuer);
        let token = fx
            .issuer
            .state
            .keyring()
            .sign_access_token(&claims)
            .unwrap();
        let token_input = CompactJws::parse(&token).unwrap().signing_input().to_vec();
        let floor = Self {
            assertion: (jws.signing_input().to_vec(), jws.signature().to_vec()),
            proof: (parts.signing_input, parts.signature),
            device,
            token_input,
            aws_lc: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            p256: SoftwareKey::generate().unwrap(),
            rng: SystemRandom::new(),
            keyring: fx.issuer.state.keyring(),
            device_claims: claims,
        };
        assert!(floor.verify_both().is_ok());
        assert!(
            floor
                .device
                .verify_sig(&floor.token_input, &floor.proof.1)
                .is_err()
        );
        floor
    }

    fn verify_both(&self) -> Result<(), aws_lc_rs::error::Unspecified> {
        self.device
            .verify_sig(black_box(&self.assertion.0), black_box(&self.assertion.1))?;
        self.device
            .verify_sig(black_box(&self.proof.0), black_box(&self.proof.1))
    }

    fn bench(&self, group: &mut BenchmarkGroup<'_, WallTime>, ids: [&str; 5]) {
        group.bench_function(ids[0], |b| {
            b.iter(|| {
                self.device
                    .verify_sig(black_box(&self.proof.0), black_box(&self.proof.1))
                    .expect("verifies")
            });
        });
        group.bench_function(ids[1], |b| {
            b.iter(|| {
                self.aws_lc
                    .sign(&self.rng, black_box(&self.token_input))
                    .expect("signs")
            });
        });
        group.bench_function(ids[2], |b| {
            b.iter(|| {
                self.p256
                    .try_sign(black_box(&self.token_input))
                    .expect("signs")
            });
        });
        group.bench_function(ids[3], |b| {
            b.iter(|| {
                self.keyring
                    .sign_access_token(black_box(&self.device_claims))
                    .expect("signs")
            });
        });
        self.bench_three(group, ids[4]);
    }

    fn bench_three(&self, group: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
        group.bench_function(id, |b| {
            b.iter(|| {
                self.verify_both().expect("verifies");
                self.aws_lc
                    .sign(&self.rng, black_box(&self.token_input))
                    .expect("signs")
            });
        });
    }
}
