//! Proof signing on the client with hardware keys: a whole `build_proof`
//! (claims, base64url, the device's signature, DER to `r ‖ s`) with a
//! `TpmKey` on swtpm and a `PivKey` on the virtual PIV card, beside the
//! software keys.
//!
//! Start the devices first (each case is skipped, with a note, when its
//! variables are not set):
//!
//! ```sh
//! source scripts/swtpm.sh && swtpm_start "$(mktemp -d)"
//! source scripts/vpiv.sh && vpiv_start "$(mktemp -d)"
//! cargo bench -p holdfast-benches --features hardware --bench hw_sign
//! swtpm_stop; vpiv_stop
//! ```
//!
//! Group `hw_sign`: `software_key` (RustCrypto `p256`), `fast_key`
//! (aws-lc-rs), `swtpm` (`HOLDFAST_TEST_TPM_TCTI`), `vpiv` (the card named
//! by `HOLDFAST_TEST_PIV_SERIAL`, PIN `123456`, a key generated in retired
//! slot `95` with PIN policy `once` and no touch). Both devices are
//! software reached over loopback: they show what the Holdfast and driver
//! stacks add, not what a chip takes (`docs/performance.md` quotes real
//! devices).

// A bench must stop loudly when its setup is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use base64ct::Encoding as _;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use getrandom::SysRng;
use holdfast_benches::{FastKey, NOW, ThisRun, criterion_home, result_files};
use holdfast_hw::SoftwareKey;
use holdfast_hw::piv::{PinPolicy, PinSource, PivConfig, PivKey, TouchPolicy};
use holdfast_hw::tpm::{Tpm, TpmConfig};
use holdfast_proto::{Alg, Htu, ProofRequest, Signer, VerifyingKey, build_proof};

const GROUP: &str = "hw_sign";
const IDS: [&str; 4] = ["software_key", "fast_key", "swtpm", "vpiv"];

fn main() {
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    let ids: Vec<String> = IDS.iter().map(|s| (*s).to_owned()).collect();
    let files = result_files(&home, GROUP, &ids);
    let htu = Htu::parse("https://api.example.com/v1/orders/42").unwrap();

    let mut group = criterion.benchmark_group(GROUP);
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    bench(&mut group, IDS[0], &SoftwareKey::generate().unwrap(), &htu);
    bench(&mut group, IDS[1], &FastKey::generate().unwrap(), &htu);

    // The devices take hundreds of µs per signature: flat samples.
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(6));
    let tpm_dir = tempfile::tempdir().unwrap();
    match std::env::var("HOLDFAST_TEST_TPM_TCTI") {
        Ok(tcti) => {
            let tpm = Tpm::open(&TpmConfig::new(tcti)).expect("connect to swtpm");
            let key = tpm
                .create_key(&tpm_dir.path().join("bench.tpmkey"))
                .expect("a key on swtpm");
            bench(&mut group, IDS[2], &key, &htu);
        }
        Err(_) => println!(
            "{GROUP}/{}: skipped, HOLDFAST_TEST_TPM_TCTI is not set \
             (source scripts/swtpm.sh && swtpm_start DIR)",
            IDS[2]
        ),
    }
    match std::env::var("HOLDFAST_TEST_PIV_SERIAL") {
        Ok(serial) => {
            let mut config = PivConfig::new(PinSource::Value("123456".to_owned().into()));
            config.serial = Some(serial.parse().expect("a decimal serial"));
            config.slot = "95".parse().unwrap();
            config.pin_policy = PinPolicy::Once;
            config.touch_policy = TouchPolicy::Never;
            config.overwrite = true;
            let key = PivKey::generate(config).expect("a key on the virtual card");
            bench(&mut group, IDS[3], &key, &htu);
        }
        Err(_) => println!(
            "{GROUP}/{}: skipped, HOLDFAST_TEST_PIV_SERIAL is not set \
             (source scripts/vpiv.sh && vpiv_start DIR)",
            IDS[3]
        ),
    }
    group.finish();
    criterion.final_summary();

    let run = ThisRun::read(GROUP, &files);
    if run.is_empty() {
        println!("\nNo table: nothing ran in benchmark mode in this invocation.");
        return;
    }
    run.print_table();
}

/// Times whole proofs signed by `key`, after checking one verifies.
fn bench(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, key: &dyn Signer, htu: &Htu) {
    let request = ProofRequest {
        htm: "GET",
        htu,
        nonce: None,
        access_token: None,
    };
    let proof = build_proof(key, &mut SysRng, &request, NOW).unwrap();
    let (input, signature) = proof.rsplit_once('.').unwrap();
    let signature = base64ct::Base64UrlUnpadded::decode_vec(signature).unwrap();
    VerifyingKey::new(key.public_jwk(), Alg::Es256)
        .unwrap()
        .verify(input.as_bytes(), &signature)
        .expect("the proof's signature verifies with the key's JWK");
    group.bench_function(id, |b| {
        b.iter(|| build_proof(key, &mut SysRng, black_box(&request), NOW).expect("signed"));
    });
}
