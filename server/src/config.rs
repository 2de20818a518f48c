//! `holdfastd` configuration: one TOML file, every key overridable by a
//! `HOLDFAST_*` environment variable, parsed once at start-up into checked
//! types. A bad value stops start-up with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use holdfast_hw::KeyKind;
use holdfast_hw::attestation::piv::{PivPolicy, TouchPolicy};
use holdfast_proto::{AllowedAlgs, Htu, IatWindow};
use serde::Deserialize;

/// The file as written: every section optional, unknown keys refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The issuer's public base URL: its `iss`, and the base of every `htu`
    /// it checks. Default `http://<listen>`. Behind a proxy, set it to the
    /// URL clients use: the `Host` header is never trusted.
    pub public_url: Option<String>,
    /// Where the sled store lives. Default `./data`.
    pub data_dir: PathBuf,
    /// `text` (default) or `json` logs.
    pub log_format: LogFormat,
    /// fsync every acknowledged write (default true). Off loses up to
    /// ~500 ms of writes on a crash, including replay records.
    pub sync_writes: bool,
    /// Token lifetimes and audience.
    pub tokens: TokensConfig,
    /// DPoP acceptance rules.
    pub dpop: DpopConfig,
    /// What the issuer admits.
    pub policy: PolicyConfig,
    /// The admin API.
    pub admin: AdminConfig,
    /// Resource servers allowed to introspect and follow the revocation feed.
    pub resource_servers: Vec<ResourceServerConfig>,
    /// What hardware evidence the issuer trusts.
    pub attestation: AttestationConfig,
    /// What one client can hold of the server: connections, time, bytes.
    pub limits: LimitsConfig,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[tokens]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Access token lifetime. Default 300 s: a stolen token is short-lived
    /// even before revocation reaches a verifier.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime (each refresh issues a new one). Default 1 day.
    pub refresh_token_ttl_secs: u64,
    /// Longest a session lives, however often refreshed. Default 7 days.
    pub session_ttl_secs: u64,
    /// `aud` of access tokens unless the client has its own. Default `["holdfast"]`.
    pub audience: Vec<String>,
    /// `aud` per client, keyed by device id (`client_id`) or principal name;
    /// a device id entry wins. Example: `client_audience = { alice = ["payments-api"] }`.
    pub client_audience: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[dpop]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Oldest accepted proof, seconds. Default 60.
    pub max_age_secs: u64,
    /// Newest accepted proof (clock skew), seconds. Default 5.
    pub max_future_secs: u64,
    /// Accepted proof algorithms. Default `["ES256"]`.
    pub algs: Vec<String>,
    /// Require server nonces at the token endpoint (RFC 9449 §8). Default true.
    pub require_nonce: bool,
}

/// IP binding of a session (`off`, `same-prefix`, `strict`): the type the
/// issuer and verifiers share (the binding travels in the token's `ipb`).
pub use holdfast_proto::IpBinding;

/// What to do with a session used from outside its binding (a refresh, or
/// a request a verifier reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnIpViolation {
    /// Refuse the request and flag the session.
    Flag,
    /// Refuse the request and revoke the session.
    Revoke,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Admit software keys (no attestation). The development default is
    /// true; production issuers set it false. Warned about at start-up.
    pub danger_accept_software_keys: bool,
    /// IP binding for sessions of `device` principals. Default `off`.
    pub ip_binding_device: IpBinding,
    /// IP binding for sessions of `admin` principals. Default `strict`.
    pub ip_binding_admin: IpBinding,
    /// Prefix length for `same-prefix` on IPv4. Default 24.
    pub ipv4_prefix: u8,
    /// Prefix length for `same-prefix` on IPv6. Default 56.
    pub ipv6_prefix: u8,
    /// `flag` or `revoke` (default) on a violation.
    pub on_ip_violation: OnIpViolation,
    /// Lifetime of enrollment codes. Default 1 day.
    pub enrollment_code_ttl_secs: u64,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Networks the admin API answers. Default loopback only.
    pub allowed_cidrs: Vec<String>,
    /// How long a step-up (YubiKey touch or TOTP) lets its session perform
    /// privileged actions. Default 300 s: long enough for a few actions,
    /// short enough that a session left open is not a standing privilege.
    pub step_up_ttl_secs: u64,
    /// Enrolling an admin's first step-up factor needs a session begun at
    /// most this long ago. Default 300 s.
    pub step_up_max_age_secs: u64,
    /// How long step-up stays locked after three consecutive failures.
    /// Default 900 s: a few guesses per quarter hour.
    pub step_up_lockout_secs: u64,
    /// The key that seals TOTP secrets in the store. Default
    /// `<data_dir>/totp.key`, created (mode 0600) at the first enrolment;
    /// put it elsewhere to keep it out of store backups.
    pub totp_key_file: Option<PathBuf>,
}

/// `[attestation]`: the roots hardware evidence must chain to, and the
/// YubiKey policies. See docs/enrollment.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttestationConfig {
    /// PEM files of TPM manufacturer root CAs: an EK certificate must chain
    /// to one of them. Empty (the default): TPM enrollment is refused, with
    /// a message naming this key.
    pub tpm_roots: Vec<PathBuf>,
    /// PEM files of TPM manufacturer intermediate CAs (used to build chains,
    /// never trusted on their own).
    pub tpm_intermediates: Vec<PathBuf>,
    /// Extra YubiKey attestation roots, for the tests' virtual card only.
    /// Yubico's roots are pinned in the binary; anything listed here is
    /// trusted *as well* and is warned about at start-up.
    pub danger_yubikey_test_roots: Vec<PathBuf>,
    /// YubiKey policy for devices of non-admin principals. Default: touch
    /// `never` or `cached` (every request is a signature). Keys left out of
    /// the table keep these defaults.
    #[serde(deserialize_with = "yubikey_device_policy")]
    pub yubikey_device: PivPolicy,
    /// YubiKey policy for devices of admins. Default: touch `always` or
    /// `cached` (physical presence). Keys left out of the table keep these
    /// defaults, so setting only `min_firmware` keeps the touch requirement.
    #[serde(deserialize_with = "yubikey_admin_policy")]
    pub yubikey_admin: PivPolicy,
}

fn yubikey_device_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PivPolicy, D::Error> {
    AttestationConfig::default()
        .yubikey_device
        .deserialize_over(d)
}

fn yubikey_admin_policy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PivPolicy, D::Error> {
    AttestationConfig::default()
        .yubikey_admin
        .deserialize_over(d)
}

impl Default for AttestationConfig {
    fn default() -> Self {
        let with_touch = |touch: &[TouchPolicy]| PivPolicy {
            touch_policies: touch.iter().copied().collect(),
            ..PivPolicy::default()
        };
        Self {
            tpm_roots: Vec::new(),
            tpm_intermediates: Vec::new(),
            danger_yubikey_test_roots: Vec::new(),
            yubikey_device: with_touch(&[TouchPolicy::Never, TouchPolicy::Cached]),
            yubikey_admin: with_touch(&[TouchPolicy::Always, TouchPolicy::Cached]),
        }
    }
}

/// `[limits]`: bounds on what clients can hold of the server, so that
/// slow or oversized requests cannot starve honest ones (docs/security.md,
/// "Hostile load").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most connections served at once; further ones wait in the listen
    /// backlog until one closes. Default 512: far more than an issuer's
    /// honest concurrency, and well below the usual 1024-descriptor limit.
    pub max_connections: usize,
    /// Most connections served at once from one client address (one /64
    /// for IPv6); more are closed as soon as they are accepted. Default 0,
    /// no limit per address: behind a proxy or load balancer every
    /// connection comes from its address. Set it (to 64, say) when clients
    /// connect directly, so one address cannot take every slot.
    pub max_connections_per_ip: usize,
    /// Longest a client may take to send a request's line and headers,
    /// and longest an idle keep-alive connection stays open. Default 10 s.
    pub header_read_timeout_secs: u64,
    /// Longest a client may take to send a request's body. Default 30 s.
    pub body_read_timeout_secs: u64,
    /// Largest request line plus headers, in bytes (431 beyond). At least
    /// 8192. Default 65536: a token and a proof take under 17 KiB.
    pub max_header_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_connections_per_ip: 0,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Smallest `limits.max_header_bytes`: hyper's smallest read buffer.
pub const MIN_HEADER_BYTES: usize = 8192;

impl LimitsConfig {
    /// Refuses limits that would stop the server from serving anyone.
    fn check(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError(
                "limits.max_connections must be at least 1".into(),
            ));
        }
        for (key, value) in [
            (
                "limits.header_read_timeout_secs",
                self.header_read_timeout_secs,
            ),
            ("limits.body_read_timeout_secs", self.body_read_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be at least 1")));
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError(format!(
                "limits.max_header_bytes must be at least {MIN_HEADER_BYTES}"
            )));
        }
        Ok(())
    }
}

/// A resource server that may call `/introspect` and `/revocations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerConfig {
    /// Its client id (HTTP Basic user name).
    pub id: String,
    /// SHA-256 of its secret, hex (`printf %s SECRET | sha256sum`).
    pub secret_sha256: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            sync_writes: true,
            tokens: TokensConfig::default(),
            dpop: DpopConfig::default(),
            policy: PolicyConfig::default(),
            admin: AdminConfig::default(),
            resource_servers: Vec::new(),
            attestation: AttestationConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 300,
            refresh_token_ttl_secs: 86_400,
            session_ttl_secs: 7 * 86_400,
            audience: vec!["holdfast".to_owned()],
            client_audience: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for DpopConfig {
    fn default() -> Self {
        let window = IatWindow::default();
        Self {
            max_age_secs: window.max_age,
            max_future_secs: window.max_future,
            algs: vec!["ES256".to_owned()],
            require_nonce: true,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            danger_accept_software_keys: true,
            ip_binding_device: IpBinding::Off,
            ip_binding_admin: IpBinding::Strict,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            on_ip_violation: OnIpViolation::Revoke,
            enrollment_code_ttl_secs: 86_400,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            allowed_cidrs: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            step_up_ttl_secs: 300,
            step_up_max_age_secs: 300,
            step_up_lockout_secs: 900,
            totp_key_file: None,
        }
    }
}

/// Environment variables and the keys they override. A list, not a naming
/// rule, so `--help` and the docs can show every one.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("HOLDFAST_LISTEN", "listen"),
    ("HOLDFAST_PUBLIC_URL", "public_url"),
    ("HOLDFAST_DATA", "data_dir"),
    ("HOLDFAST_LOG_FORMAT", "log_format"),
    ("HOLDFAST_SYNC_WRITES", "sync_writes"),
    (
        "HOLDFAST_ACCESS_TOKEN_TTL_SECS",
        "tokens.access_token_ttl_secs",
    ),
    (
        "HOLDFAST_REFRESH_TOKEN_TTL_SECS",
        "tokens.refresh_token_ttl_secs",
    ),
    ("HOLDFAST_SESSION_TTL_SECS", "tokens.session_ttl_secs"),
    ("HOLDFAST_AUDIENCE", "tokens.audience"),
    ("HOLDFAST_DPOP_MAX_AGE_SECS", "dpop.max_age_secs"),
    ("HOLDFAST_DPOP_MAX_FUTURE_SECS", "dpop.max_future_secs"),
    ("HOLDFAST_DPOP_ALGS", "dpop.algs"),
    ("HOLDFAST_DPOP_REQUIRE_NONCE", "dpop.require_nonce"),
    (
        "HOLDFAST_DANGER_ACCEPT_SOFTWARE_KEYS",
        "policy.danger_accept_software_keys",
    ),
    ("HOLDFAST_IP_BINDING_DEVICE", "policy.ip_binding_device"),
    ("HOLDFAST_IP_BINDING_ADMIN", "policy.ip_binding_admin"),
    ("HOLDFAST_IPV4_PREFIX", "policy.ipv4_prefix"),
    ("HOLDFAST_IPV6_PREFIX", "policy.ipv6_prefix"),
    ("HOLDFAST_ON_IP_VIOLATION", "policy.on_ip_violation"),
    (
        "HOLDFAST_ENROLLMENT_CODE_TTL_SECS",
        "policy.enrollment_code_ttl_secs",
    ),
    ("HOLDFAST_ADMIN_ALLOWED_CIDRS", "admin.allowed_cidrs"),
    (
        "HOLDFAST_ADMIN_STEP_UP_MAX_AGE_SECS",
        "admin.step_up_max_age_secs",
    ),
    ("HOLDFAST_ADMIN_STEP_UP_TTL_SECS", "admin.step_up_ttl_secs"),
    (
        "HOLDFAST_ADMIN_STEP_UP_LOCKOUT_SECS",
        "admin.step_up_lockout_secs",
    ),
    ("HOLDFAST_ADMIN_TOTP_KEY_FILE", "admin.totp_key_file"),
    ("HOLDFAST_TPM_ROOTS", "attestation.tpm_roots"),
    (
        "HOLDFAST_TPM_INTERMEDIATES",
        "attestation.tpm_intermediates",
    ),
    (
        "HOLDFAST_DANGER_YUBIKEY_TEST_ROOTS",
        "attestation.danger_yubikey_test_roots",
    ),
    ("HOLDFAST_MAX_CONNECTIONS", "limits.max_connections"),
    (
        "HOLDFAST_MAX_CONNECTIONS_PER_IP",
        "limits.max_connections_per_ip",
    ),
    (
        "HOLDFAST_HEADER_READ_TIMEOUT_SECS",
        "limits.header_read_timeout_secs",
    ),
    (
        "HOLDFAST_BODY_READ_TIMEOUT_SECS",
        "limits.body_read_timeout_secs",
    ),
    ("HOLDFAST_MAX_HEADER_BYTES", "limits.max_header_bytes"),
];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &[
    "tokens.audience",
    "dpop.algs",
    "admin.allowed_cidrs",
    "attestation.tpm_roots",
    "attestation.tpm_intermediates",
    "attestation.danger_yubikey_test_roots",
];

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads `file` (if any), then applies `env` overrides (name, value).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, key or variable at fault.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some((_, key)) = ENV_OVERRIDES.iter().find(|(var, _)| *var == name) else {
                continue;
            };
            set_path(&mut table, key, env_value(key, &value));
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError(e.to_string()))
    }

    /// Checks every value and parses it into the types the server uses.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        let issuer = public_url.trim_end_matches('/').to_owned();
        // Clients sign `htu`s under this URL: insist on the normal form
        // rather than guess how they will write it.
        let base =
            Htu::parse(&issuer).map_err(|e| ConfigError(format!("public_url {issuer:?}: {e}")))?;
        let normal = base.as_str().trim_end_matches('/');
        if normal != issuer {
            return Err(ConfigError(format!(
                "public_url {issuer:?} is not in normal form; use {normal:?}"
            )));
        }
        let algs = AllowedAlgs::from_names(self.dpop.algs.iter().map(String::as_str))
            .map_err(|e| ConfigError(format!("dpop.algs: {e}")))?;
        let admin_cidrs = self
            .admin
            .allowed_cidrs
            .iter()
            .map(|c| {
                c.parse::<holdfast_proto::IpPrefix>()
                    .map_err(|e| ConfigError(format!("admin.allowed_cidrs {c:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.policy.ipv4_prefix > 32 || self.policy.ipv6_prefix > 128 {
            return Err(ConfigError(
                "policy.ipv4_prefix/ipv6_prefix out of range".into(),
            ));
        }
        for (key, value) in [
            (
                "tokens.access_token_ttl_secs",
                self.tokens.access_token_ttl_secs,
            ),
            (
                "tokens.refresh_token_ttl_secs",
                self.tokens.refresh_token_ttl_secs,
            ),
            ("tokens.session_ttl_secs", self.tokens.session_ttl_secs),
            (
                "policy.enrollment_code_ttl_secs",
                self.policy.enrollment_code_ttl_secs,
            ),
            ("admin.step_up_ttl_secs", self.admin.step_up_ttl_secs),
            (
                "admin.step_up_lockout_secs",
                self.admin.step_up_lockout_secs,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be at least 1")));
            }
        }
        self.limits.check()?;
        if let Some((client, _)) = self
            .tokens
            .client_audience
            .iter()
            .find(|(_, aud)| aud.is_empty())
        {
            return Err(ConfigError(format!(
                "tokens.client_audience.{client} must name at least one audience"
            )));
        }
        if self.tokens.audience.is_empty() {
            return Err(ConfigError(
                "tokens.audience must name at least one audience".into(),
            ));
        }
        let mut resource_servers = Vec::new();
        for rs in &self.resource_servers {
            let hash = hex32(&rs.secret_sha256).ok_or_else(|| {
                ConfigError(format!(
                    "resource_servers {:?}: secret_sha256 is not 64 hex digits",
                    rs.id
                ))
            })?;
            resource_servers.push((rs.id.clone(), hash));
        }
        let mut accepted_kinds = vec![KeyKind::Tpm, KeyKind::Yubikey];
        if self.policy.danger_accept_software_keys {
            accepted_kinds.push(KeyKind::Software);
        }
        let attestation = std::sync::Arc::new(crate::enrollment::AttestationTrust::load(
            &self.attestation,
        )?);
        Ok(Settings {
            attestation,
            token_endpoint: endpoint(&issuer, holdfast_proto::endpoints::TOKEN_PATH)?,
            revoke_endpoint: endpoint(&issuer, holdfast_proto::endpoints::REVOKE_PATH)?,
            issuer,
            algs,
            window: IatWindow {
                max_age: self.dpop.max_age_secs,
                max_future: self.dpop.max_future_secs,
            },
            admin_cidrs,
            resource_servers,
            accepted_kinds,
            known_audiences: {
                let mut all: Vec<String> = self.tokens.audience.clone();
                for aud in self.tokens.client_audience.values().flatten() {
                    if !all.contains(aud) {
                        all.push(aud.clone());
                    }
                }
                all
            },
            raw: self.clone(),
        })
    }
}

/// The configuration after checking: what the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `iss`: the public URL without a trailing slash.
    pub issuer: String,
    /// The token endpoint's `htu`.
    pub token_endpoint: Htu,
    /// The revocation endpoint's `htu`.
    pub revoke_endpoint: Htu,
    /// Accepted proof algorithms.
    pub algs: AllowedAlgs,
    /// Proof acceptance window.
    pub window: IatWindow,
    /// Networks allowed to call the admin API.
    pub admin_cidrs: Vec<holdfast_proto::IpPrefix>,
    /// Resource servers: id and SHA-256 of their secret.
    pub resource_servers: Vec<(String, [u8; 32])>,
    /// Key kinds the policy admits.
    pub accepted_kinds: Vec<KeyKind>,
    /// Every audience this issuer puts in tokens (default and per client):
    /// what its own endpoints accept.
    pub known_audiences: Vec<String>,
    /// The roots and policies hardware evidence is checked against.
    pub attestation: std::sync::Arc<crate::enrollment::AttestationTrust>,
    /// The file values, for everything not parsed further.
    pub raw: Config,
}

fn endpoint(issuer: &str, path: &str) -> Result<Htu, ConfigError> {
    Htu::parse(&format!("{issuer}{path}")).map_err(|e| ConfigError(format!("public_url: {e}")))
}

fn env_value(key: &str, value: &str) -> toml::Value {
    if LIST_KEYS.contains(&key) {
        return toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        );
    }
    if let Ok(b) = value.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(n) = value.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    toml::Value::String(value.to_owned())
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut current = table;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_owned(), value);
            return;
        }
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            return;
        };
        current = next;
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_a_development_issuer_on_loopback() {
        let config = Config::load(None, []).unwrap();
        let settings = config.resolve().unwrap();
        assert_eq!(settings.issuer, "http://127.0.0.1:8080");
        assert_eq!(
            settings.token_endpoint.as_str(),
            "http://127.0.0.1:8080/token"
        );
        assert!(settings.accepted_kinds.contains(&KeyKind::Software));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn yubikey_policy_tables_keep_the_defaults_they_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holdfast.toml");
        std::fs::write(
            &path,
            "[attestation.yubikey_admin]\nmin_firmware = \"5.4.0\"\n\
             [attestation.yubikey_device]\ntouch_policies = [\"never\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), []).unwrap();
        let admin = &config.attestation.yubikey_admin;
        assert_eq!(admin.min_firmware, Some("5.4.0".parse().unwrap()));
        // Not every touch policy: the admin default still applies.
        assert_eq!(
            admin.touch_policies,
            [TouchPolicy::Always, TouchPolicy::Cached]
                .into_iter()
                .collect()
        );
        let device = &config.attestation.yubikey_device;
        assert_eq!(
            device.touch_policies,
            [TouchPolicy::Never].into_iter().collect()
        );
        assert_eq!(device.min_firmware, None);
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holdfast.toml");
        std::fs::write(
            &path,
            "public_url = \"https://issuer.example\"\n[dpop]\nmax_age_secs = 30\n",
        )
        .unwrap();
        let env = [
            ("HOLDFAST_DPOP_MAX_AGE_SECS".to_owned(), "45".to_owned()),
            (
                "HOLDFAST_ADMIN_ALLOWED_CIDRS".to_owned(),
                "10.0.0.0/8, ::1/128".to_owned(),
            ),
            (
                "HOLDFAST_DANGER_ACCEPT_SOFTWARE_KEYS".to_owned(),
                "false".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.dpop.max_age_secs, 45);
        let settings = config.resolve().unwrap();
        assert_eq!(settings.issuer, "https://issuer.example");
        assert_eq!(settings.admin_cidrs.len(), 2);
        assert!(!settings.accepted_kinds.contains(&KeyKind::Software));
    }

    #[test]
    fn bad_values_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holdfast.toml");
        std::fs::write(&path, "[dpop]\nmax_age = 30\n").unwrap();
        let err = Config::load(Some(&path), []).unwrap_err().to_string();
        assert!(err.contains("max_age"), "{err}");

        let env = [("HOLDFAST_DPOP_ALGS".to_owned(), "HS256".to_owned())];
        let err = Config::load(None, env)
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("dpop.algs"), "{err}");

        let env = [(
            "HOLDFAST_ADMIN_ALLOWED_CIDRS".to_owned(),
            "nonsense".to_owned(),
        )];
        let err = Config::load(None, env)
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin.allowed_cidrs"), "{err}");

        let env = [(
            "HOLDFAST_PUBLIC_URL".to_owned(),
            "https://Issuer.example:443/".to_owned(),
        )];
        let err = Config::load(None, env)
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("normal form"), "{err}");
    }

    #[test]
    fn limits_default_and_refuse_values_that_would_serve_nobody() {
        let config = Config::load(None, []).unwrap();
        assert_eq!(config.limits.max_connections, 512);
        assert_eq!(config.limits.header_read_timeout_secs, 10);
        assert_eq!(config.limits.body_read_timeout_secs, 30);
        assert_eq!(config.limits.max_header_bytes, 65536);
        let env = [("HOLDFAST_MAX_CONNECTIONS".to_owned(), "64".to_owned())];
        assert_eq!(Config::load(None, env).unwrap().limits.max_connections, 64);
        for (var, value, key) in [
            ("HOLDFAST_MAX_CONNECTIONS", "0", "limits.max_connections"),
            (
                "HOLDFAST_HEADER_READ_TIMEOUT_SECS",
                "0",
                "limits.header_read_timeout_secs",
            ),
            (
                "HOLDFAST_BODY_READ_TIMEOUT_SECS",
                "0",
                "limits.body_read_timeout_secs",
            ),
            (
                "HOLDFAST_MAX_HEADER_BYTES",
                "8191",
                "limits.max_header_bytes",
            ),
        ] {
            let env = [(var.to_owned(), value.to_owned())];
            let err = Config::load(None, env)
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }
}
