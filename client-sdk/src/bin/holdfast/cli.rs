//! The command line, as clap definitions only; the work is in `commands/`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Holdfast: hardware-bound, DPoP-protected sessions.
///
/// The device agent: `enroll` this machine with an issuer, then `token`,
/// `request` and `status`; admins manage the issuer with `admin`. Their
/// state (issuer, device id, key file) lives in the agent directory.
///
/// Offline tools: `key`, `jwk` and `dpop` create keys, compute thumbprints
/// and sign, inspect or verify DPoP proofs (RFC 9449), for example proofs
/// found in logs or HAR captures; `har scrub` masks secrets in HAR files.
#[derive(Debug, Parser)]
#[command(
    name = "holdfast",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// The agent directory, holding agent.json and the default key file.
    /// Default: $HOLDFAST_AGENT_DIR, else $XDG_CONFIG_HOME/holdfast, else
    /// ~/.config/holdfast.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) agent_dir: Option<PathBuf>,
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
    /// Enroll this device with an issuer, redeeming a one-time code.
    ///
    /// Creates (or reuses) the device key, proves possession of it to the
    /// issuer with the code an admin gave you, and saves the identity in the
    /// agent directory (agent.json). Exactly one of --software, --tpm,
    /// --yubikey. The code can also come from $HOLDFAST_ENROLLMENT_CODE, which
    /// keeps it out of the process list.
    Enroll(EnrollArgs),
    /// Get an access token and show its header and claims (not the token).
    ///
    /// Each run of holdfast starts a new session: the SDK keeps tokens in
    /// memory only, so this is a fresh token from a new client_credentials
    /// grant, and it is gone when the command ends. The token itself is a
    /// secret and is printed only with --raw.
    Token(TokenArgs),
    /// Send a DPoP-signed HTTP request, like curl.
    ///
    /// The request carries `Authorization: DPoP <token>` and a fresh proof
    /// for this method and URL (with ath); a server nonce is fetched and the
    /// request retried when asked. The body goes to standard output, the
    /// status line (and headers with -i) to standard error. Exit status: 0
    /// for a 2xx answer, 1 otherwise. Each run starts a new session.
    Request(RequestArgs),
    /// Show this agent's identity and whether it can get a session now.
    ///
    /// Exit status: 0 when a session was obtained, 1 when not enrolled or
    /// the issuer refuses or cannot be reached.
    Status(StatusArgs),
    /// Manage the issuer: devices, sessions, principals, codes, keys, audit.
    ///
    /// The agent's identity must belong to an admin (a principal enrolled
    /// with an admin code; the first one comes from `holdfastd admin
    /// bootstrap`), and the request must come from an address in the
    /// issuer's admin.allowed_cidrs (default: the issuer's own host).
    Admin(AdminArgs),
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

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("key_kind").required(true).args(["software", "tpm", "yubikey"])))]
pub(crate) struct EnrollArgs {
    /// The issuer's URL, e.g. https://holdfast.example.
    #[arg(long, value_name = "URL")]
    pub(crate) server: String,
    /// The one-time enrollment code from your admin.
    #[arg(
        long,
        value_name = "CODE",
        // A base64url code may begin with `-`.
        allow_hyphen_values = true,
        env = "HOLDFAST_ENROLLMENT_CODE",
        hide_env_values = true
    )]
    pub(crate) code: String,
    /// A software key in a file: for development only (it can be copied, so
    /// production issuers refuse it).
    #[arg(long)]
    pub(crate) software: bool,
    /// A key inside this machine's TPM 2.0: created in the TPM (it cannot be
    /// copied out), its wrapped blob saved in the agent directory, and
    /// attested to the issuer (EK certificate, credential activation,
    /// TPM2_Certify).
    #[arg(long)]
    pub(crate) tpm: bool,
    /// A key on a YubiKey's PIV applet: generated on the YubiKey and
    /// attested with its PIV attestation certificates.
    #[arg(long)]
    pub(crate) yubikey: bool,
    /// The key file (default: <agent dir>/device.pem for --software,
    /// <agent dir>/device.tpmkey for --tpm). Created with mode 0600 if
    /// missing; an existing valid key is reused, anything else there is never
    /// overwritten.
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// The TPM's TCTI (with --tpm): device:/dev/tpmrm0 (the default, the
    /// kernel's resource manager), swtpm:host=127.0.0.1,port=2321 (a
    /// simulator).
    #[arg(long, value_name = "TCTI", requires = "tpm")]
    pub(crate) tpm_tcti: Option<String>,
    /// The PIV slot for the new key (with --yubikey): 9a (default), 9c, 9d,
    /// 9e or a retired slot 82-95.
    #[arg(long, value_name = "SLOT", requires = "yubikey")]
    pub(crate) piv_slot: Option<String>,
    /// The YubiKey's serial number (with --yubikey), when several are
    /// plugged in.
    #[arg(long, value_name = "N", requires = "yubikey")]
    pub(crate) serial: Option<u32>,
    /// The key's PIN policy (with --yubikey): once (default), always, never.
    #[arg(long, value_name = "POLICY", requires = "yubikey")]
    pub(crate) pin_policy: Option<String>,
    /// The key's touch policy (with --yubikey): never (default: an agent
    /// signs every request), cached, always (admins: physical presence).
    #[arg(long, value_name = "POLICY", requires = "yubikey")]
    pub(crate) touch_policy: Option<String>,
    /// A file holding the YubiKey PIN (mode 0600; with --yubikey). Without
    /// it the PIN comes from $HOLDFAST_PIV_PIN. Saved in the agent state so
    /// later commands find it.
    #[arg(long, value_name = "FILE", requires = "yubikey")]
    pub(crate) pin_file: Option<PathBuf>,
    /// Replace a key already in the PIV slot (with --yubikey). The old key is
    /// destroyed.
    #[arg(long, requires = "yubikey")]
    pub(crate) overwrite_slot: bool,
    /// The device's name at the issuer (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Enroll even though this agent directory already holds an identity,
    /// replacing it (the old device stays enrolled until an admin revokes it).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Print only the access token (a secret: for scripts, not for logs).
    #[arg(long, conflicts_with = "json")]
    pub(crate) raw: bool,
    /// Print the decoded header and claims as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// The HTTP method, e.g. GET or POST.
    #[arg(value_name = "METHOD")]
    pub(crate) method: String,
    /// The URL.
    #[arg(value_name = "URL")]
    pub(crate) url: String,
    /// Send this body: the text itself, @FILE for a file's bytes, or @- for
    /// standard input. Sets Content-Type application/x-www-form-urlencoded
    /// unless a Content-Type header is given (like curl).
    #[arg(short = 'd', long = "data", value_name = "DATA|@FILE")]
    pub(crate) data: Option<String>,
    /// Add a header, e.g. -H 'Accept: application/json'; repeatable.
    /// Authorization and DPoP are set by holdfast.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// Also print the response headers (to standard error).
    #[arg(short = 'i', long = "include")]
    pub(crate) include: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print the state and the session check as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// Print the server's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Step up with this TOTP code (from your authenticator app) before the
    /// command. Privileged actions need it: revoke-all, keys rotate, admin
    /// enrollment codes, revoking an admin, unlocking another admin.
    #[arg(long, global = true, value_name = "CODE")]
    pub(crate) totp: Option<String>,
    /// Step up with a signature by this agent's key before the command: a
    /// YubiKey whose touch policy is `always` (touch it when it blinks).
    #[arg(long, global = true)]
    pub(crate) yubikey: bool,
    #[command(subcommand)]
    pub(crate) command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// List, show, disable, enable and revoke devices.
    #[command(subcommand)]
    Devices(AdminDevicesCommand),
    /// List and revoke sessions.
    #[command(subcommand)]
    Sessions(AdminSessionsCommand),
    /// List and revoke principals (people and services).
    #[command(subcommand)]
    Principals(AdminPrincipalsCommand),
    /// End every session that began before an instant, yours included.
    ///
    /// One record at the issuer, pushed to every verifier through the
    /// revocation feed: every device must start a new session. Asks for
    /// confirmation unless --yes. Needs a step-up: add --totp CODE or
    /// --yubikey.
    RevokeAll(RevokeAllArgs),
    /// Rotate the issuer's token-signing key.
    #[command(subcommand)]
    Keys(AdminKeysCommand),
    /// Create one-time enrollment codes.
    #[command(subcommand)]
    Codes(AdminCodesCommand),
    /// Read and check the hash-chained audit log.
    #[command(subcommand)]
    Audit(AdminAuditCommand),
    /// Step up for privileged actions; enroll TOTP; unlock another admin.
    ///
    /// Privileged actions (revoke-all, keys rotate, admin enrollment codes,
    /// revoking an admin) need a step-up: a TOTP code (--totp CODE) or a
    /// touch of a YubiKey whose touch policy is `always` (--yubikey, with an
    /// agent whose key is that YubiKey). A step-up lasts a few minutes and
    /// belongs to one session, and each holdfast run is a new session: give
    /// the factor to the privileged command itself, e.g. `holdfast admin keys
    /// rotate --totp 123456`. At a terminal, a refused action asks for a
    /// code. `holdfast admin step-up --totp CODE` alone checks a code (and
    /// confirms a newly enrolled secret). Three failures in a row lock
    /// step-up for a while: another admin can unlock it (`holdfast admin
    /// step-up unlock NAME`), or the server host (`holdfastd admin
    /// unlock-step-up NAME`).
    StepUp(StepUpArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StepUpArgs {
    #[command(subcommand)]
    pub(crate) command: Option<StepUpCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StepUpCommand {
    /// Enroll a TOTP secret and print its otpauth:// URI, once.
    ///
    /// Add the URI to an authenticator app. The first factor needs only a
    /// fresh session (this run's); replacing a confirmed secret, or adding
    /// TOTP next to a YubiKey factor, needs a step-up (--totp or --yubikey).
    /// A lost authenticator is reset on the server host: `holdfastd admin
    /// totp-reset NAME`.
    TotpEnroll,
    /// Lift another admin's step-up lockout (needs your own step-up).
    Unlock {
        /// The admin (a principal id p-…, or a name).
        #[arg(value_name = "P")]
        principal: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminDevicesCommand {
    /// List devices.
    List {
        /// Only this principal's devices (a principal id p-…, or a name).
        #[arg(long, value_name = "P")]
        principal: Option<String>,
    },
    /// Show one device.
    Show {
        /// The device id (d-…).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Disable a device: no new sessions or refreshes until enabled again.
    /// Tokens already issued stay valid until they expire; revoke to end them.
    Disable {
        /// The device id (d-…).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Enable a disabled device.
    Enable {
        /// The device id (d-…).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Revoke a device for good: its sessions end now, verifiers are told.
    Revoke {
        /// The device id (d-…).
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminSessionsCommand {
    /// List sessions, revoked and expired ones included.
    List {
        /// Only this principal's sessions (a principal id p-…, or a name).
        #[arg(long, value_name = "P")]
        principal: Option<String>,
        /// Only this device's sessions (d-…).
        #[arg(long, value_name = "D")]
        device: Option<String>,
    },
    /// Revoke one session and its tokens.
    Revoke {
        /// The session id (s-…).
        #[arg(value_name = "SID")]
        sid: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminPrincipalsCommand {
    /// List principals.
    List,
    /// Disable a principal for good and end its devices' sessions.
    /// Revoking an admin needs a step-up (--totp CODE or --yubikey).
    Revoke {
        /// The principal id (p-…), or a name.
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RevokeAllArgs {
    /// Sessions begun before this instant die: Unix seconds, or `now`.
    #[arg(long, value_name = "UNIX|now", default_value = "now")]
    pub(crate) before: String,
    /// Why, for the audit log (e.g. "signing key leaked, incident 42").
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: String,
    /// Do not ask for confirmation (required when standard input is not a
    /// terminal).
    #[arg(long)]
    pub(crate) yes: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminKeysCommand {
    /// Retire the active signing key and sign with a new one from now on.
    /// Tokens signed by the old key stay valid until they expire. Needs a
    /// step-up (--totp CODE or --yubikey).
    Rotate,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCodesCommand {
    /// Create a one-time enrollment code for a principal and print it once.
    Create(CodesCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CodesCreateArgs {
    /// The principal's name; created with --roles if it does not exist.
    #[arg(long, value_name = "P")]
    pub(crate) principal: String,
    /// The principal's roles (an existing principal's must match exactly).
    /// An admin code needs a step-up (--totp CODE or --yubikey).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "ROLE,…")]
    pub(crate) roles: Vec<RoleArg>,
    /// The key kinds the code allows, e.g. tpm,yubikey.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        required = true,
        value_name = "KIND,…"
    )]
    pub(crate) kinds: Vec<KindArg>,
    /// How long the code stays valid: 30m, 1h, 7d, or seconds (default: the
    /// issuer's policy.enrollment_code_ttl_secs).
    #[arg(long, value_name = "DURATION")]
    pub(crate) ttl: Option<String>,
}

/// A principal's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// May get tokens for its devices.
    Device,
    /// May also use the admin API.
    Admin,
}

/// A key kind an enrollment code allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KindArg {
    /// A key in a file (development only).
    Software,
    /// A TPM 2.0 key.
    Tpm,
    /// A YubiKey PIV key.
    Yubikey,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminAuditCommand {
    /// Show the last records.
    Tail {
        /// How many records.
        #[arg(short = 'n', value_name = "N", default_value_t = 20)]
        n: u64,
    },
    /// Walk the whole hash chain at the issuer; exit 1 if it is broken.
    Verify,
    /// Print records as JSON lines, oldest first.
    Export {
        /// Start at this sequence number (records are numbered from 1).
        #[arg(long, value_name = "N", default_value_t = 1)]
        since: u64,
    },
}
