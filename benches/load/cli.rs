//! The command line, and the loopback rule: a target outside 127.0.0.0/8
//! and ::1 is refused unless `--allow-non-loopback` is given.

use std::net::{IpAddr, ToSocketAddrs as _};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::Error;

/// Drives a running Holdfast issuer or verifying proxy with many
/// software-key devices and a fresh DPoP proof per request.
#[derive(Debug, Clone, Parser)]
#[command(name = "holdfast-load", version)]
pub(crate) struct Args {
    /// What to drive.
    #[command(subcommand)]
    pub(crate) mode: Mode,
    /// The issuer's base URL (enrollment, admin API, tokens).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) issuer: String,
    /// An admin enrollment code, as `holdfastd admin bootstrap` prints it.
    #[arg(long, global = true, value_name = "CODE", default_value = "")]
    pub(crate) enroll_code: String,
    /// Software-key devices to enroll and cycle through.
    #[arg(long, global = true, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) devices: u32,
    /// Requests in flight at all times (closed loop); with `--rate`, the most
    /// in flight (and connections open), as in wrk2.
    #[arg(long, global = true, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) concurrency: u32,
    /// Run once per concurrency level listed (e.g. 1,2,4,…,256), each with
    /// its warm-up, on the same enrolled devices; the JSON holds every run.
    #[arg(long, global = true, value_name = "C,C,…", value_delimiter = ',', conflicts_with = "rate",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) sweep: Vec<u32>,
    /// Requests started per second on a fixed schedule (open loop), instead
    /// of a fixed concurrency. Latency counts from the scheduled start.
    #[arg(long, global = true, value_name = "R")]
    pub(crate) rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) duration: u64,
    /// Seconds of load before the measurement starts (not counted).
    #[arg(long, global = true, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub(crate) warmup: u64,
    /// Write the results here as JSON.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Report the peak RSS of this process (repeatable: issuer and proxy).
    #[arg(long = "server-pid", global = true, value_name = "PID")]
    pub(crate) server_pids: Vec<u32>,
    /// Pre-signed proofs kept ready per device.
    #[arg(long, global = true, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) queue_depth: u64,
    /// Signing threads (default: the number of cores).
    #[arg(long, global = true)]
    pub(crate) signers: Option<usize>,
    /// Per-request timeout, seconds.
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) timeout_secs: u64,
    /// Most open-loop requests waiting for a free connection; a start
    /// beyond it is counted as `not_sent` rather than queued.
    #[arg(long, global = true, default_value_t = 4096)]
    pub(crate) max_in_flight: usize,
    /// Send load to a host outside 127.0.0.0/8 and ::1. Only ever at a
    /// server you run, on a network you may load.
    #[arg(long, global = true)]
    pub(crate) allow_non_loopback: bool,
}

/// The endpoint under load.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Mode {
    /// `POST /token` (`client_credentials`, `private_key_jwt`, DPoP with the
    /// server's nonce).
    Token,
    /// `GET TARGET` through a verifying proxy with each device's access
    /// token and a fresh proof.
    Proxy {
        /// The full URL requested through the proxy, e.g.
        /// `http://127.0.0.1:8081/jwks`.
        #[arg(long, value_name = "URL")]
        target: String,
    },
    /// Serve a trivial upstream for the proxy (every GET answers `200 ok`)
    /// until killed; sends no load. Loopback only.
    Upstream {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
}

impl Args {
    /// Refuses a non-loopback issuer or proxy target unless allowed.
    pub(crate) fn check_targets(&self) -> Result<(), Error> {
        if self.enroll_code.is_empty() {
            return Err("--enroll-code is required (holdfastd admin bootstrap prints one)".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("--rate must be a positive number of requests per second".into());
        }
        let mut targets = vec![self.issuer.as_str()];
        match &self.mode {
            Mode::Proxy { target } => targets.push(target),
            Mode::Token => {}
            Mode::Upstream { .. } => return Ok(()),
        }
        for target in targets {
            let loopback = is_loopback(target)?;
            if !loopback && !self.allow_non_loopback {
                return Err(format!(
                    "{target} is not on loopback (127.0.0.0/8, ::1); refusing to send load \
                     there without --allow-non-loopback"
                )
                .into());
            }
            if !loopback {
                eprintln!("warning: sending load to {target}, outside loopback");
            }
        }
        Ok(())
    }

    /// Signing threads to start.
    pub(crate) fn signer_threads(&self) -> usize {
        self.signers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1)
    }
}

/// Whether every address `url`'s host names is a loopback address. A host
/// name is resolved, and passes only if all its addresses are loopback.
fn is_loopback(url: &str) -> Result<bool, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let Some(host) = parsed.host_str() else {
        return Err(format!("{url} has no host").into());
    };
    // An IPv6 literal comes bracketed.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve {host}: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    Ok(!addresses.is_empty() && addresses.iter().all(IpAddr::is_loopback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback_targets() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9/",
            "http://[::1]:1/x",
            "http://localhost:9",
        ] {
            assert!(is_loopback(url).unwrap(), "{url}");
        }
        for url in [
            "http://10.0.0.1:8080",
            "http://192.168.1.1/",
            "http://[::2]/",
            "http://0.0.0.0/",
        ] {
            assert!(!is_loopback(url).unwrap(), "{url}");
        }
        assert!(is_loopback("not a url").is_err());
    }
}
