//! `holdfastd`: the Holdfast issuer.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use holdfast_proto::{Clock, Htu, IpPrefix, SystemClock};
use holdfast_server::audit::{AuditEntry, AuditPages, verify_chain};
use holdfast_server::config::{Config, ENV_OVERRIDES, LimitsConfig, LogFormat, Settings};
use holdfast_server::http::serve::ServeLimits;
use holdfast_server::keys::Keyring;
use holdfast_server::state::{AppState, load_or_create_nonce_secret};
use holdfast_server::store::{SledStore, Store};
use holdfast_verifier::{ProxyOptions, VerifierConfig, proxy_router};

/// The Holdfast issuer: enrolls hardware-bound device keys and mints DPoP-bound
/// sessions for them.
///
/// Configuration comes from an optional TOML file (--config), then
/// HOLDFAST_* environment variables, then the command-line flags. With none,
/// `holdfastd serve` runs a development issuer on http://127.0.0.1:8080 with
/// its store in ./data. `holdfastd serve --help` lists the variables.
#[derive(Debug, Parser)]
#[command(name = "holdfastd", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the issuer.
    #[command(after_long_help = env_help())]
    Serve(ServeArgs),
    /// Administer the issuer from its host (the server must be stopped:
    /// the store allows one process at a time).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage the issuer's signing keys (server stopped; or use
    /// POST /admin/keys/rotate while it runs).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check and export the audit log (server stopped).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the verifying reverse proxy: check every request's DPoP-bound
    /// token and proof against an issuer, and forward verified ones, with
    /// the caller in `X-Holdfast-*` headers, to a service in any language.
    Proxy(ProxyArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE", env = "HOLDFAST_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the store (default ./data). Overrides data_dir.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on (default 127.0.0.1:8080). Overrides listen.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Public base URL clients use (default http://<listen>). Overrides public_url.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

/// `holdfastd proxy` (docs/verifier.md, "Verifying reverse proxy").
#[derive(Debug, Args)]
struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", env = "HOLDFAST_PROXY_LISTEN")]
    listen: SocketAddr,
    /// Base URL of the protected service; the request path and query are
    /// appended. It must be reachable only through this proxy.
    #[arg(long, value_name = "URL", env = "HOLDFAST_PROXY_UPSTREAM")]
    upstream: String,
    /// The issuer's public URL (its `iss`): metadata, keys and the
    /// revocation feed are read from it.
    #[arg(long, value_name = "URL", env = "HOLDFAST_PROXY_ISSUER")]
    issuer: String,
    /// The `aud` this service accepts.
    #[arg(
        long,
        value_name = "AUD",
        default_value = "holdfast",
        env = "HOLDFAST_PROXY_AUDIENCE"
    )]
    audience: String,
    /// The proxy's public base URL, what clients call (`htu` is checked
    /// against it, never against the Host header). Default http://<listen>.
    #[arg(long, value_name = "URL", env = "HOLDFAST_PROXY_PUBLIC_URL")]
    public_url: Option<String>,
    /// This service's resource-server id at the issuer (for the feed).
    #[arg(long, value_name = "ID", env = "HOLDFAST_PROXY_CLIENT_ID")]
    client_id: String,
    /// Its secret. Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        value_name = "SECRET",
        env = "HOLDFAST_PROXY_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: String,
    /// Per-request upstream timeout: connect and response headers (else
    /// 504), and any pause in a streamed body.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,
    /// Refuse every request (503) once the issuer's feed has been
    /// unreachable for this long (fail closed).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    max_staleness_secs: u64,
    /// A proxy in front of this one (CIDR, e.g. 10.0.0.0/8, or one
    /// address), repeatable: when the TCP peer is one, the client's address
    /// for session IP binding is read from X-Forwarded-For, past every
    /// trusted proxy. Default none: the peer is the client.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "HOLDFAST_PROXY_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_prefix
    )]
    trusted_proxies: Vec<IpPrefix>,
    /// DANGER: also forward `Authorization` and `DPoP` to the upstream
    /// (off: the upstream never sees tokens or proofs).
    #[arg(long)]
    danger_forward_credentials: bool,
    /// DANGER, benchmarking only: forward every request WITHOUT verifying
    /// it, to measure what verification costs (docs/performance.md).
    /// Refused unless --bench-only is also given and --listen is loopback.
    #[arg(long, requires = "bench_only")]
    danger_no_verify: bool,
    /// Confirms a benchmarking-only setting (see --danger-no-verify).
    #[arg(long)]
    bench_only: bool,
    /// `text` or `json` logs.
    #[arg(long, value_name = "FORMAT", default_value = "text", env = "HOLDFAST_LOG_FORMAT", value_parser = parse_log_format)]
    log_format: LogFormat,
    /// Most connections served at once; more wait to be accepted (as the
    /// issuer's limits.max_connections).
    #[arg(long, value_name = "N", default_value_t = LimitsConfig::default().max_connections, env = "HOLDFAST_PROXY_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..).map(|n: u32| n as usize))]
    max_connections: usize,
    /// Most connections served at once from one client address (IPv6: one
    /// /64); 0, the default, for no limit (as the issuer's
    /// limits.max_connections_per_ip).
    #[arg(long, value_name = "N", default_value_t = LimitsConfig::default().max_connections_per_ip, env = "HOLDFAST_PROXY_MAX_CONNECTIONS_PER_IP", value_parser = clap::value_parser!(u32).map(|n: u32| n as usize))]
    max_connections_per_ip: usize,
    /// Longest wait for a request's headers, idle keep-alive time included
    /// (as the issuer's limits.header_read_timeout_secs).
    #[arg(long, value_name = "SECS", default_value_t = LimitsConfig::default().header_read_timeout_secs, env = "HOLDFAST_PROXY_HEADER_READ_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..))]
    header_read_timeout_secs: u64,
    /// Largest request line plus headers in bytes, at least 8192; 431
    /// beyond (as the issuer's limits.max_header_bytes).
    #[arg(long, value_name = "BYTES", default_value_t = LimitsConfig::default().max_header_bytes, env = "HOLDFAST_PROXY_MAX_HEADER_BYTES", value_parser = clap::value_parser!(u32).range(8192..).map(|n: u32| n as usize))]
    max_header_bytes: usize,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create the first admin principal and print a one-time enrollment
    /// code for the admin's device.
    Bootstrap {
        #[command(flatten)]
        common: Common,
        /// Name of the admin principal.
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// Remove an admin's TOTP secret (a lost authenticator). The admin
    /// enrolls a new one with `holdfast admin step-up totp-enroll`: from a
    /// fresh session if it has no other factor, else after a step-up.
    TotpReset {
        #[command(flatten)]
        common: Common,
        /// Name of the admin principal.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Lift an admin's step-up lockout (three failed step-ups) and reset
    /// its failure count. While the server runs, another admin can do the
    /// same with `holdfast admin step-up unlock NAME`.
    UnlockStepUp {
        #[command(flatten)]
        common: Common,
        /// Name of the admin principal.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Retire the signing key and create a new one. The old key stays
    /// published until the tokens it signed have expired.
    Rotate {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and name the first broken record (exit 1).
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Write records as JSON lines (for a SIEM) to standard output.
    Export {
        #[command(flatten)]
        common: Common,
        /// First sequence number to export.
        #[arg(long, default_value_t = 1)]
        since: u64,
    },
}

fn env_help() -> String {
    let mut help =
        String::from("Environment variables (each overrides the configuration key shown):\n");
    for (var, key) in ENV_OVERRIDES {
        help.push_str(&format!("  {var:<40} {key}\n"));
    }
    help
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Admin(AdminCommand::Bootstrap { common, name }) => bootstrap(&common, &name),
        Command::Admin(AdminCommand::TotpReset { common, name }) => totp_reset(&common, &name),
        Command::Admin(AdminCommand::UnlockStepUp { common, name }) => {
            unlock_step_up(&common, &name)
        }
        Command::Keys(KeysCommand::Rotate { common }) => rotate(&common),
        Command::Audit(AuditCommand::Verify { common }) => audit_verify(&common),
        Command::Audit(AuditCommand::Export { common, since }) => audit_export(&common, since),
        Command::Proxy(args) => proxy(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("holdfastd: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration: file, then environment, then flags.
fn settings(common: &Common, edit: impl FnOnce(&mut Config)) -> Result<Settings, String> {
    let mut config =
        Config::load(common.config.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    if let Some(data) = &common.data {
        config.data_dir = data.clone();
    }
    edit(&mut config);
    config.resolve().map_err(|e| e.to_string())
}

fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, String> {
    let dir = &settings.raw.data_dir;
    create_private_dir(dir)?;
    let store = SledStore::open(&dir.join("store"), settings.raw.sync_writes).map_err(|e| {
        format!("{e}\n(is holdfastd already running on this data directory? the store allows one process)")
    })?;
    Ok(Arc::new(store))
}

fn open_state(settings: Settings) -> Result<AppState, String> {
    let store = open_store(&settings)?;
    let secret = load_or_create_nonce_secret(&settings.raw.data_dir.join("nonce.secret"))
        .map_err(|e| format!("nonce secret: {e}"))?;
    AppState::new(settings, store, Arc::new(SystemClock), secret).map_err(|e| e.to_string())
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let mut prebound = None;
    let mut bind_error = None;
    let settings = settings(&args.common, |config| {
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if let Some(url) = &args.public_url {
            config.public_url = Some(url.clone());
        }
        // Port 0 asks the OS for a free port. The default public URL
        // (`http://<listen>`) must name the port actually bound, so bind now.
        if config.listen.port() == 0 && config.public_url.is_none() {
            match bind_now(config.listen) {
                Ok((listener, bound)) => {
                    config.listen = bound;
                    prebound = Some(listener);
                }
                Err(e) => bind_error = Some(e),
            }
        }
    });
    if let Some(e) = bind_error {
        return Err(e);
    }
    let settings = settings?;
    init_tracing(settings.raw.log_format);
    let listen = settings.raw.listen;
    if settings.raw.policy.danger_accept_software_keys {
        tracing::warn!(
            "policy.danger_accept_software_keys is on: software keys (no attestation) can enroll; \
             set it to false in production"
        );
    }
    for root in settings.attestation.test_roots() {
        tracing::warn!(
            "attestation.danger_yubikey_test_roots trusts {}: whoever holds its key can attest \
             software keys as YubiKeys; never configure it in production",
            root.display()
        );
    }
    if !settings.raw.sync_writes {
        tracing::warn!(
            "sync_writes is off: up to ~500 ms of acknowledged writes can be lost on a crash"
        );
    }
    let state = open_state(settings)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(run(state, listen, prebound))?;
    Ok(ExitCode::SUCCESS)
}

/// Binds `listen` before the runtime exists (for port 0).
fn bind_now(listen: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), String> {
    let error = |e: std::io::Error| format!("cannot listen on {listen}: {e}");
    let listener = std::net::TcpListener::bind(listen).map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    Ok((listener, bound))
}

async fn run(
    state: AppState,
    listen: SocketAddr,
    prebound: Option<std::net::TcpListener>,
) -> Result<(), String> {
    let listener = match prebound {
        Some(listener) => tokio::net::TcpListener::from_std(listener),
        None => tokio::net::TcpListener::bind(listen).await,
    }
    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    record(
        &state,
        "server_started",
        &[
            ("listen", local.to_string()),
            ("issuer", state.settings.issuer.clone()),
        ],
    );
    tracing::info!(listen = %local, issuer = %state.settings.issuer, "holdfastd serving");

    let pruner = tokio::spawn(prune_replay(state.clone()));
    let app = holdfast_server::http::router(state.clone());
    // Header timeout, connection cap and head size: docs/security.md,
    // "Hostile load".
    let limits = ServeLimits::from_config(&state.settings.raw.limits);
    holdfast_server::http::serve::serve(listener, app, limits, shutdown_signal()).await;
    pruner.abort();
    record(&state, "server_stopped", &[]);
    state
        .store
        .flush()
        .map_err(|e| format!("flushing the store: {e}"))?;
    tracing::info!("holdfastd stopped; store flushed");
    Ok(())
}

/// Deletes expired replay records once a minute.
async fn prune_replay(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match state.store.prune_replay(state.clock.now()) {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "pruned replay records"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot prune replay records"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

fn parse_prefix(value: &str) -> Result<IpPrefix, String> {
    value
        .trim()
        .parse()
        .map_err(|e: holdfast_proto::IpPrefixError| e.to_string())
}

fn parse_log_format(value: &str) -> Result<LogFormat, String> {
    match value {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not text or json")),
    }
}

/// `holdfastd proxy`: binds, connects the verifier to the issuer, then
/// serves until SIGINT or SIGTERM.
fn proxy(args: ProxyArgs) -> Result<ExitCode, String> {
    init_tracing(args.log_format);
    let (listener, bound) = bind_now(args.listen)?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    // Clients sign `htu`s under this URL: insist on the normal form rather
    // than guess how they will write it (as `serve` does for public_url).
    let base = public_url.trim_end_matches('/');
    let parsed = Htu::parse(base).map_err(|e| format!("--public-url {public_url:?}: {e}"))?;
    let normal = parsed.as_str().trim_end_matches('/');
    if normal != base {
        return Err(format!(
            "--public-url {public_url:?} is not in normal form; use {normal:?}"
        ));
    }
    if args.danger_no_verify {
        if !bound.ip().is_loopback() {
            return Err(format!(
                "--danger-no-verify serves unverified requests: it listens on loopback only, not {bound}"
            ));
        }
        eprintln!(
            "holdfastd proxy: --danger-no-verify: EVERY REQUEST IS FORWARDED WITHOUT VERIFICATION \
             (benchmarking only)"
        );
    }
    if args.danger_forward_credentials {
        tracing::warn!(
            "--danger-forward-credentials is on: the upstream receives Authorization and DPoP; \
             anything it logs or leaks can be replayed"
        );
    }
    let mut config = VerifierConfig::new(
        &args.issuer,
        &args.audience,
        &public_url,
        &args.client_id,
        &args.client_secret,
    );
    config.max_staleness = Some(args.max_staleness_secs);
    config.trusted_proxies = args.trusted_proxies.clone();
    let timeout = Duration::from_secs(args.timeout_secs);
    let limits = ServeLimits {
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        max_header_bytes: args.max_header_bytes,
    };
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let (verifier, feed) = holdfast_verifier::connect(config, reqwest::Client::new())
            .await
            .map_err(|e| {
                format!(
                    "cannot follow the issuer {}: {}",
                    args.issuer,
                    error_chain(&e)
                )
            })?;
        let options = ProxyOptions {
            timeout,
            danger_forward_credentials: args.danger_forward_credentials,
            feed: Some(feed.monitor()),
        };
        let app = if args.danger_no_verify {
            holdfast_verifier::proxy::danger_unverified_proxy_router_for_benchmarks(
                verifier,
                &args.upstream,
                options,
            )
        } else {
            proxy_router(verifier, &args.upstream, options)
        }
        .map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| format!("cannot listen on {bound}: {e}"))?;
        tracing::info!(
            listen = %bound,
            public_url = %public_url,
            upstream = %args.upstream,
            issuer = %args.issuer,
            "holdfastd proxy serving"
        );
        holdfast_server::http::serve::serve(listener, app, limits, shutdown_signal()).await;
        feed.shutdown().await;
        tracing::info!("holdfastd proxy stopped");
        Ok::<(), String>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// An error and its sources, `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let (filter, bad_filter) = match std::env::var("HOLDFAST_LOG") {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!(
                    "HOLDFAST_LOG {spec:?} is invalid ({e}); using info"
                )),
            ),
        },
        Err(_) => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    if let Some(warning) = bad_filter {
        tracing::warn!("{warning}");
    }
}

fn record(state: &AppState, event: &str, details: &[(&str, String)]) {
    let mut entry = AuditEntry::new(state.clock.now(), event, "system", "ok");
    for (key, value) in details {
        entry = entry.detail(key, value.clone());
    }
    if let Err(e) = state.store.append_audit(entry) {
        tracing::error!(error = %e, "cannot append to the audit log");
    }
}

fn bootstrap(common: &Common, name: &str) -> Result<ExitCode, String> {
    let state = open_state(settings(common, |_| {})?)?;
    let code = holdfast_server::enrollment::bootstrap_admin(&state, name, state.clock.now())
        .map_err(|e| e.to_string())?;
    state.store.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "holdfastd: created admin principal {name:?}. Enroll the admin's device with this one-time code \
         (valid {} s):",
        state.settings.raw.policy.enrollment_code_ttl_secs
    );
    println!("{code}");
    Ok(ExitCode::SUCCESS)
}

/// `holdfastd admin totp-reset NAME`.
fn totp_reset(common: &Common, name: &str) -> Result<ExitCode, String> {
    let state = open_state(settings(common, |_| {})?)?;
    let had = holdfast_server::step_up::totp_reset(&state, name, state.clock.now())
        .map_err(|e| e.to_string())?;
    state.store.flush().map_err(|e| e.to_string())?;
    if had {
        eprintln!(
            "holdfastd: removed the TOTP secret of {name:?}; they enroll a new one with \
             `holdfast admin step-up totp-enroll`"
        );
    } else {
        eprintln!("holdfastd: {name:?} had no TOTP secret; nothing changed");
    }
    Ok(ExitCode::SUCCESS)
}

/// `holdfastd admin unlock-step-up NAME`.
fn unlock_step_up(common: &Common, name: &str) -> Result<ExitCode, String> {
    let state = open_state(settings(common, |_| {})?)?;
    let was_locked = holdfast_server::step_up::unlock_by_name(&state, name, state.clock.now())
        .map_err(|e| e.to_string())?;
    state.store.flush().map_err(|e| e.to_string())?;
    if was_locked {
        eprintln!("holdfastd: step-up of {name:?} unlocked; its failure count is reset");
    } else {
        eprintln!("holdfastd: step-up of {name:?} was not locked; its failure count is reset");
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(common: &Common) -> Result<ExitCode, String> {
    let settings = settings(common, |_| {})?;
    let store = open_store(&settings)?;
    let now = SystemClock.now();
    let kid = Keyring::rotate(store.as_ref(), now).map_err(|e| e.to_string())?;
    store
        .append_audit(
            AuditEntry::new(now, "signing_key_rotated", "cli", "ok").detail("kid", kid.clone()),
        )
        .map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())?;
    println!("{kid}");
    eprintln!(
        "holdfastd: new signing key {kid}; the previous key stays published until its tokens expire"
    );
    Ok(ExitCode::SUCCESS)
}

fn audit_verify(common: &Common) -> Result<ExitCode, String> {
    let settings = settings(common, |_| {})?;
    let store = open_store(&settings)?;
    let records = AuditPages::new(store.as_ref(), 1)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    match verify_chain(records) {
        Ok(n) => {
            println!("audit chain intact: {n} records");
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!("{broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn audit_export(common: &Common, since: u64) -> Result<ExitCode, String> {
    use std::io::Write as _;
    let settings = settings(common, |_| {})?;
    let store = open_store(&settings)?;
    let mut out = std::io::stdout().lock();
    for record in AuditPages::new(store.as_ref(), since) {
        let line = serde_json::to_string(&record.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
