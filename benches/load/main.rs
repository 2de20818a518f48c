//! `holdfast-load`: a load generator for a running Holdfast issuer
//! (`token` mode: `POST /token` with `client_credentials` +
//! `private_key_jwt` + DPoP) or a running verifying proxy (`proxy` mode:
//! `GET` with each device's access token and a fresh proof per request).
//!
//! It enrolls its own software-key devices with an admin enrollment code,
//! signs proofs ahead of time on `std::thread` workers so that it is not the
//! bottleneck (and reports whether it was), and prints requests/s, latency
//! percentiles, errors by status and OAuth `error`, and the server's peak
//! RSS, as Markdown and as JSON. It refuses any target outside loopback
//! unless told `--allow-non-loopback`. Runs are bounded in time.

mod cli;
mod drive;
mod presign;
mod report;
mod rss;
mod setup;
mod upstream;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;

use crate::cli::{Args, Mode};
use crate::presign::{Pool, Recipe};

/// A failure that stops the run, with its message.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("holdfast-load: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("holdfast-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    if let Mode::Upstream { listen } = &args.mode {
        return upstream::serve(*listen).await;
    }
    args.check_targets()?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(args.timeout_secs))
        .pool_max_idle_per_host(usize::MAX)
        .build()?;
    let issuer = args.issuer.trim_end_matches('/').to_owned();
    eprintln!(
        "setup: enrolling an admin and {} devices at {issuer}",
        args.devices
    );
    let mut setup = setup::Setup::new(http.clone(), &issuer);
    setup.enroll_admin(&args.enroll_code).await?;
    let mut devices = setup.enroll_devices(args.devices).await?;
    // Token-mode proofs carry the issuer's nonce; proxy-mode ones none.
    let (recipe, nonce) = match &args.mode {
        Mode::Token => (Recipe::token(&setup.token_url())?, setup.nonce()),
        Mode::Proxy { target } => {
            eprintln!("setup: one access token per device");
            setup.log_in_all(&mut devices).await?;
            (Recipe::proxy(target)?, None)
        }
        Mode::Upstream { .. } => return Err("the upstream sends no load".into()),
    };
    let pool = Arc::new(Pool::new(devices, recipe, args.queue_depth, nonce));
    let signers = pool.start_signers(args.signer_threads());
    // One run, or one per level of a concurrency sweep.
    let levels: Vec<Args> = if args.sweep.is_empty() {
        vec![args.clone()]
    } else {
        args.sweep
            .iter()
            .map(|&c| Args {
                concurrency: c,
                ..args.clone()
            })
            .collect()
    };
    let mut reports = Vec::new();
    let mut failure = None;
    for level in &levels {
        match drive::drive(&http, &pool, level).await {
            Ok(outcome) => {
                let result = report::Report::new(level, outcome);
                println!("{}", result.markdown());
                reports.push(result.json());
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    pool.stop();
    for signer in signers {
        if signer.join().is_err() {
            eprintln!("holdfast-load: a signer thread panicked");
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(path) = &args.json {
        let doc = match reports.as_slice() {
            [one] if args.sweep.is_empty() => one.clone(),
            _ => serde_json::json!({ "sweep": reports }),
        };
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
