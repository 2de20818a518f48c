//! What `DpopClient` adds to a request beyond the signature it must make.
//!
//! An in-process HTTP server on loopback answers the issuer metadata, the
//! token endpoint (a fixed DPoP token) and `GET /resource` (`200 ok`). One
//! run measures, in the group `sdk_overhead`:
//!
//! - `raw_reqwest`: the same `GET /resource` with reqwest alone, carrying a
//!   ready-made `Authorization: DPoP` and `DPoP` header of real size: the
//!   HTTP round trip the SDK cannot avoid.
//! - `dpop_client_zero_signer`: `DpopClient::request` with a signer that
//!   returns 64 zero bytes at no cost: everything the SDK does (token
//!   lookup, nonce and skew bookkeeping, the proof's JSON and base64url, the
//!   `spawn_blocking` hop, headers) plus the round trip.
//! - `dpop_client_software_key`: the same with a `SoftwareKey` (RustCrypto
//!   `p256`), and `sign_software_key`, that key's bare signature.
//! - `build_proof_zero_signer`: `build_proof` alone with the free signer.
//!
//! The SDK's own cost per request is `dpop_client_zero_signer -
//! raw_reqwest` (and, as a cross-check, `dpop_client_software_key -
//! raw_reqwest - sign_software_key`); the target is under a millisecond.
//! `cargo bench -p holdfast-benches --bench sdk_overhead`.

// A bench must stop loudly when its setup is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use criterion::Criterion;
use getrandom::SysRng;
use holdfast_benches::{FastKey, NOW, ThisRun, criterion_home, fake_access_token, result_files};
use holdfast_client::DpopClient;
use holdfast_hw::SoftwareKey;
use holdfast_proto::endpoints::{METADATA_PATH, TOKEN_PATH};
use holdfast_proto::{
    AccessToken, Htu, Jwk, ProofRequest, Signer, SignerError, SystemClock, build_proof,
};
use reqwest::Method;
use reqwest::header::HeaderMap;

const GROUP: &str = "sdk_overhead";
const IDS: [&str; 5] = [
    "raw_reqwest",
    "dpop_client_zero_signer",
    "dpop_client_software_key",
    "sign_software_key",
    "build_proof_zero_signer",
];

/// A signer that does not sign: 64 zero bytes, at no cost. The test
/// server never checks them.
struct ZeroSigner(Jwk);

impl Signer for ZeroSigner {
    fn public_jwk(&self) -> &Jwk {
        &self.0
    }

    fn try_sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(vec![0; 64])
    }
}

fn main() {
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    let ids: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
    let files = result_files(&home, GROUP, &ids);

    // Two workers: the server's and the client's tasks share the machine's
    // two cores, as an agent and a local service would.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fast = FastKey::generate().unwrap();
    let token = fake_access_token(&fast.public_jwk().thumbprint());
    let base = runtime.block_on(serve(token.clone()));
    let resource = format!("{base}/resource");

    let http = reqwest::Client::new();
    let zero: Arc<dyn Signer> = Arc::new(ZeroSigner(fast.public_jwk().clone()));
    let software: Arc<dyn Signer> = Arc::new(SoftwareKey::generate().unwrap());
    let client = |signer: Arc<dyn Signer>| {
        runtime.block_on(async {
            let client = DpopClient::discover_with(
                &base,
                "d-bench",
                signer,
                http.clone(),
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
            // The first request starts the session; later ones reuse it.
            let answer = client
                .request(Method::GET, &resource, HeaderMap::new(), None)
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            client
        })
    };
    let zero_client = client(Arc::clone(&zero));
    let software_client = client(Arc::clone(&software));
    // A real proof of the size the SDK sends, for the raw request.
    let htu = Htu::parse(&resource).unwrap();
    let access = AccessToken::new(token.clone());
    let proof_request = ProofRequest {
        htm: "GET",
        htu: &htu,
        nonce: None,
        access_token: Some(&access),
    };
    let ready_proof = build_proof(&fast, &mut SysRng, &proof_request, NOW).unwrap();
    let authorization = format!("DPoP {token}");

    let mut group = criterion.benchmark_group(GROUP);
    group
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    group.bench_function(IDS[0], |b| {
        b.iter(|| {
            runtime.block_on(async {
                let answer = http
                    .get(&resource)
                    .header("Authorization", &authorization)
                    .header("DPoP", &ready_proof)
                    .send()
                    .await
                    .expect("answered");
                assert_eq!(answer.status(), 200);
                black_box(answer.bytes().await.expect("body"))
            })
        });
    });
    for (id, client) in [(IDS[1], &zero_client), (IDS[2], &software_client)] {
        group.bench_function(id, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let answer = client
                        .request(Method::GET, &resource, HeaderMap::new(), None)
                        .await
                        .expect("answered");
                    assert_eq!(answer.status(), 200);
                    black_box(answer.bytes().await.expect("body"))
                })
            });
        });
    }
    group.bench_function(IDS[3], |b| {
        b.iter(|| {
            software
                .try_sign(black_box(ready_proof.as_bytes()))
                .expect("signs")
        });
    });
    group.bench_function(IDS[4], |b| {
        b.iter(|| {
            build_proof(zero.as_ref(), &mut SysRng, black_box(&proof_request), NOW).expect("built")
        });
    });
    group.finish();
    criterion.final_summary();

    let run = ThisRun::read(GROUP, &files);
    if run.is_empty() {
        println!("\nNo result: nothing ran in benchmark mode in this invocation.");
        return;
    }
    run.print_table();
    let get = |id: &str| run.get(id).map(|e| e.mean_ns / 1e3);
    if let (Some(raw), Some(zero)) = (get(IDS[0]), get(IDS[1])) {
        println!(
            "\nSDK's own cost per request (dpop_client_zero_signer - raw_reqwest): {:.1} µs (target < 1000 µs)",
            zero - raw
        );
    }
    if let (Some(raw), Some(soft), Some(sign)) = (get(IDS[0]), get(IDS[2]), get(IDS[3])) {
        println!(
            "cross-check (dpop_client_software_key - raw_reqwest - sign_software_key): {:.1} µs",
            soft - raw - sign
        );
    }
}

/// Serves the metadata, the token endpoint and `/resource` on a free
/// loopback port; its base URL.
async fn serve(token: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = serde_json::json!({
        "issuer": base,
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
    });
    let tokens = serde_json::json!({
        "access_token": token,
        "token_type": "DPoP",
        "expires_in": 3600,
        "refresh_token": "r-bench",
    });
    let app = Router::new()
        .route(METADATA_PATH, get(move || async move { Json(metadata) }))
        .route(TOKEN_PATH, post(move || async move { Json(tokens) }))
        .route("/resource", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}
