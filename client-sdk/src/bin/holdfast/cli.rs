//! The command line, as clap definitions only; the work is in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Holdfast: hardware-bound, DPoP-protected sessions.
///
/// These commands work offline: they create keys, compute thumbprints and
/// sign, inspect or verify DPoP proofs (RFC 9449), for example proofs found
/// in logs or HAR captures.
#[derive(Debug, Parser)]
#[command(
    name = "holdfast",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create device keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Work with JSON Web Keys.
    #[command(subcommand)]
    Jwk(JwkCommand),
    /// Sign, inspect and verify DPoP proofs.
    #[command(subcommand)]
    Dpop(DpopCommand),
    /// Make HAR captures safe to share.
    #[command(subcommand)]
    Har(HarCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Generate a P-256 key and print its public JWK and thumbprint (jkt).
    ///
    /// Only software keys exist so far. A software key is for development:
    /// it can be copied, so an issuer in production refuses it.
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeyGenerateArgs {
    /// Generate a software key in a PKCS#8 PEM file (development only).
    #[arg(long, required = true)]
    pub(crate) software: bool,
    /// Where to write the private key (created with mode 0600; never overwritten).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JwkCommand {
    /// Print the RFC 7638 SHA-256 thumbprint of a public JWK (EC, RSA or OKP).
    ///
    /// A JWK with private members (d, p, q, …) or a symmetric key is refused.
    Thumbprint {
        /// JWK file, or `-` for standard input.
        #[arg(value_name = "FILE|-", default_value = "-")]
        input: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DpopCommand {
    /// Sign a DPoP proof for one request and print it.
    Sign(SignArgs),
    /// Decode a proof's header and claims WITHOUT verifying anything.
    Inspect {
        /// The proof (compact JWS), or `-` for standard input.
        #[arg(value_name = "PROOF|-")]
        proof: String,
    },
    /// Verify a proof as a server would, and print the result as JSON.
    ///
    /// Exit status: 0 valid, 1 invalid, 2 usage error. Use --now to examine a
    /// captured proof at the time it was sent. No replay cache is consulted:
    /// a proof seen before is reported valid here.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Software key file (PKCS#8 PEM, as made by `holdfast key generate`).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// HTTP method of the request, e.g. POST.
    #[arg(long, value_name = "METHOD")]
    pub(crate) htm: String,
    /// URL of the request; query and fragment are dropped.
    #[arg(long, value_name = "URL")]
    pub(crate) htu: String,
    #[command(flatten)]
    pub(crate) token: TokenArg,
    /// Server-provided nonce (from a DPoP-Nonce header).
    #[arg(long, value_name = "N")]
    pub(crate) nonce: Option<String>,
    /// Issue time as Unix seconds (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) iat: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The proof (compact JWS), or `-` for standard input.
    #[arg(value_name = "PROOF|-")]
    pub(crate) proof: String,
    /// Expected HTTP method.
    #[arg(long, value_name = "METHOD")]
    pub(crate) htm: String,
    /// Expected URL (compared after RFC 3986 normalisation; query and fragment ignored).
    #[arg(long, value_name = "URL")]
    pub(crate) htu: String,
    #[command(flatten)]
    pub(crate) token: TokenArg,
    /// Require exactly this nonce (a missing or different one is use_dpop_nonce).
    #[arg(long, value_name = "N")]
    pub(crate) nonce: Option<String>,
    /// Verify as if the time were this (Unix seconds), for captured proofs.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub(crate) now: Option<u64>,
    /// Oldest acceptable proof, in seconds before now.
    #[arg(long, value_name = "SECONDS", default_value_t = holdfast_proto::IatWindow::default().max_age)]
    pub(crate) max_age: u64,
    /// Newest acceptable proof, in seconds after now (clock skew).
    #[arg(long, value_name = "SECONDS", default_value_t = holdfast_proto::IatWindow::default().max_future)]
    pub(crate) max_future: u64,
    /// Accepted signature algorithms (none and HMAC are never accepted).
    #[arg(long = "alg", value_name = "ALG", default_values_t = ["ES256".to_owned()])]
    pub(crate) algs: Vec<String>,
}

/// The access token, which is a secret: prefer the environment variable or
/// a file to the command line, where other users can see it.
#[derive(Debug, Args)]
pub(crate) struct TokenArg {
    /// Access token sent with the request (checked against `ath`).
    #[arg(
        long,
        value_name = "T",
        env = "HOLDFAST_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub(crate) access_token: Option<String>,
    /// Read the access token from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "access_token")]
    pub(crate) access_token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HarCommand {
    /// Mask the tokens, cookies and keys in a HAR file so it can be shared.
    ///
    /// Masked with "[REDACTED by holdfast]": credential headers (Authorization,
    /// DPoP, DPoP-Nonce, Cookie, Set-Cookie, API keys, any *token* or *secret*
    /// header), every cookie value, secret query parameters, form fields and
    /// JSON members (access_token, refresh_token, id_token, client_assertion,
    /// code, password, …), and JWTs or Bearer/DPoP credentials anywhere. The
    /// entries and their structure are kept. A summary goes to standard error.
    /// See docs/har-scrub.md.
    Scrub(HarScrubArgs),
}

#[derive(Debug, Args)]
pub(crate) struct HarScrubArgs {
    /// The HAR file, or `-` for standard input.
    #[arg(value_name = "IN.har|-")]
    pub(crate) input: PathBuf,
    /// Write the scrubbed HAR here (default: standard output).
    #[arg(short, long, value_name = "OUT.har", conflicts_with = "in_place")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite OUT.har if it exists.
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
    /// Replace IN.har with its scrubbed version.
    #[arg(long)]
    pub(crate) in_place: bool,
}
