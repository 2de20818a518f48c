//! `holdfast-vpiv`: a virtual YubiKey (PIV applet) for Holdfast's tests.
//!
//! It is a TEST FIXTURE. It connects to the `vsmartcard-vpcd` reader driver
//! inside pcscd, so that the real path — yubikey crate → pcsc → libpcsclite
//! → pcscd — runs in CI without a YubiKey. Its attestation root is made per
//! run and trusted by nothing unless a test configures it; it keeps keys in
//! memory in the clear and simulates touch. It never protects anything.
//! See README.md beside this file and `scripts/vpiv.sh`.

mod apdu;
mod asn1;
mod attest;
mod card;
mod control;
mod firmware;
mod keys;
mod mgm;
mod tlv;
mod vpcd;

#[cfg(test)]
mod selfcheck;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::attest::Attestation;
use crate::card::{Card, CardConfig};
use crate::firmware::Firmware;

const ABOUT: &str =
    "TEST FIXTURE: a virtual YubiKey (PIV) for Holdfast's tests, behind pcscd's vpcd reader";

fn long_about() -> String {
    format!(
        "{ABOUT}.\n\n\
         This is not a security device. Its attestation root (\"{root}\") is generated \
         on each run, written to DIR/root.pem, and trusted by nothing unless a test \
         configures it (HOLDFAST_TEST_PIV_ROOT). Keys live in memory in the clear; \
         touch is simulated as given at once.\n\n\
         Defaults are those of a YubiKey 5 out of the box: PIN 123456 (3 tries), PUK \
         12345678, management key 010203040506070801020304050607080102030405060708 \
         (3DES before firmware 5.7, AES-192 from 5.7; the default firmware is 5.7.4).\n\n\
         The control file (DIR/control unless --control) is read before every command; \
         one directive per line, '#' comments:\n{directives}\n\n\
         Usually started by scripts/vpiv.sh (vpiv_start DIR), which also starts pcscd.",
        root = attest::ROOT_CN,
        directives = control::DIRECTIVES,
    )
}

#[derive(Parser)]
#[command(name = "holdfast-vpiv", about = ABOUT, long_about = long_about())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to vpcd and act as a YubiKey until vpcd hangs up.
    Run(RunArgs),
    /// Wait until pcscd shows a YubiKey with this serial (opens it through
    /// the yubikey crate: SELECT, GET VERSION, GET SERIAL).
    Probe {
        #[arg(long)]
        serial: u32,
        #[arg(long, default_value_t = 15_000)]
        timeout_ms: u64,
    },
    /// Print a TCP port P such that P and P+1 are free (vpcd listens on both,
    /// on all interfaces).
    FreePort,
}

#[derive(clap::Args)]
struct RunArgs {
    /// vpcd's port (the reader.conf DEVICENAME /dev/null:PORT).
    #[arg(long)]
    port: u16,
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Where to write root.pem and serial; holds the control file by default.
    #[arg(long)]
    dir: PathBuf,
    /// The control file (default: DIR/control).
    #[arg(long)]
    control: Option<PathBuf>,
    /// The card's serial number (default: random, 8 digits).
    #[arg(long)]
    serial: Option<u32>,
    /// Firmware version reported (5.4.3 for the 3DES management key path).
    #[arg(long, default_value = "5.7.4")]
    firmware: Firmware,
    /// Attestation form factor byte (.9): 1 USB-A keychain, 2 USB-A nano,
    /// 3 USB-C keychain, 4 USB-C nano, 5 USB-C/Lightning; +0x80 FIPS.
    #[arg(long, default_value_t = 1)]
    form_factor: u8,
    /// Print one line per command on stderr (headers and status words only).
    #[arg(long)]
    trace: bool,
    /// Do not set TCP_QUICKACK (only to measure the ~40 ms it saves per APDU).
    #[arg(long)]
    no_quickack: bool,
    #[arg(long, default_value_t = 10_000)]
    connect_timeout_ms: u64,
}

/// Why the card or a helper command stopped.
#[derive(Debug, thiserror::Error)]
enum VpivError {
    #[error("the system random number generator failed")]
    Random,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot connect to vpcd at {addr}: {source} (is pcscd running with the vpcd reader on that port?)"
    )]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to vpcd failed: {0}")]
    Link(#[source] std::io::Error),
    #[error("no YubiKey with serial {serial} through pcscd after {waited_ms} ms: {last}")]
    ProbeTimeout {
        serial: u32,
        waited_ms: u64,
        last: String,
    },
    #[error("no free pair of TCP ports found: {0}")]
    NoPort(#[source] std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Probe { serial, timeout_ms } => probe(serial, Duration::from_millis(timeout_ms)),
        Command::FreePort => free_port().map(|port| println!("{port}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("holdfast-vpiv: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> Result<(), VpivError> {
    let serial = match args.serial {
        Some(serial) => serial,
        None => random_serial()?,
    };
    let attestation = Attestation::generate().map_err(|_| VpivError::Random)?;
    write_file(
        &args.dir.join("root.pem"),
        attestation.root_pem().as_bytes(),
    )?;
    write_file(&args.dir.join("serial"), format!("{serial}\n").as_bytes())?;
    let control = args.control.unwrap_or_else(|| args.dir.join("control"));
    if !control.exists() {
        write_file(&control, b"")?;
    }
    let mut card = Card::new(
        CardConfig {
            serial,
            firmware: args.firmware,
            form_factor: args.form_factor,
            control: Some(control.clone()),
            trace: args.trace,
        },
        attestation,
    );
    let addr = SocketAddr::new(args.host, args.port);
    let stream = vpcd::connect(addr, Duration::from_millis(args.connect_timeout_ms))
        .map_err(|source| VpivError::Connect { addr, source })?;
    eprintln!(
        "holdfast-vpiv: TEST card serial {} firmware {} connected to vpcd at {addr}; control file {}",
        card.serial(),
        args.firmware,
        control.display()
    );
    let options = vpcd::LinkOptions {
        quickack: !args.no_quickack,
    };
    vpcd::serve(stream, &mut card, &options).map_err(VpivError::Link)?;
    eprintln!("holdfast-vpiv: vpcd closed the connection; stopping");
    Ok(())
}

/// Eight digits, like a YubiKey 5 serial.
fn random_serial() -> Result<u32, VpivError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(|_| VpivError::Random)?;
    Ok(10_000_000 + u32::from_be_bytes(bytes) % 30_000_000)
}

/// Writes through a temporary file and a rename, so readers never see half.
fn write_file(path: &Path, contents: &[u8]) -> Result<(), VpivError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| VpivError::Write {
            path: path.to_owned(),
            source,
        })
}

fn probe(serial: u32, timeout: Duration) -> Result<(), VpivError> {
    let started = Instant::now();
    loop {
        match yubikey::YubiKey::open_by_serial(yubikey::Serial(serial)) {
            Ok(yubikey) => {
                println!(
                    "reader {:?}: serial {} firmware {}",
                    yubikey.name(),
                    yubikey.serial(),
                    yubikey.version()
                );
                return Ok(());
            }
            Err(e) if started.elapsed() >= timeout => {
                return Err(VpivError::ProbeTimeout {
                    serial,
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    last: e.to_string(),
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn free_port() -> Result<u16, VpivError> {
    let mut last = std::io::Error::other("no attempt");
    for _ in 0..50 {
        let first = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)) {
            Ok(listener) => listener,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let port = match first.local_addr() {
            Ok(addr) => addr.port(),
            Err(e) => {
                last = e;
                continue;
            }
        };
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        match TcpListener::bind((Ipv4Addr::UNSPECIFIED, next)) {
            Ok(_) => return Ok(port),
            Err(e) => last = e,
        }
    }
    Err(VpivError::NoPort(last))
}
