//! What the networked commands share: the agent directory, the enrolled
//! identity and its key, a `DpopClient` for it, and SDK errors explained for
//! a person at a terminal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use holdfast_client::{ClientError, DpopClient};
use holdfast_hw::{KeyKind, SoftwareKey};
use holdfast_proto::{Signer, SystemClock};

use crate::agent_state::{AgentState, AgentStateError, agent_dir};
use crate::error::CliError;

/// How long to wait for a TCP connection before calling the issuer down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent directory for this run: `--agent-dir`, else the environment.
///
/// # Errors
/// [`CliError::Failed`] when no directory can be found.
pub(crate) fn dir(flag: Option<&Path>) -> Result<PathBuf, CliError> {
    agent_dir(flag, |name| std::env::var_os(name)).map_err(CliError::from)
}

/// The enrolled identity and its loaded key.
pub(crate) struct Enrolled {
    pub(crate) state: AgentState,
    pub(crate) key: Arc<dyn Signer>,
}

/// Loads the state in `dir` and the key it names, checking that the key is
/// the enrolled one.
///
/// # Errors
/// Not enrolled, a damaged state file, a key kind this build cannot use, an
/// unreadable key or a key that is not the enrolled one.
pub(crate) fn load(dir: &Path) -> Result<Enrolled, CliError> {
    let state = AgentState::load(dir)?;
    let key: Arc<dyn Signer> = match (state.kind, &state.tpm, &state.yubikey) {
        (KeyKind::Software, _, _) => Arc::new(
            SoftwareKey::load(&state.key_file)
                .map_err(|e| CliError::Failed(format!("cannot load the device key: {e}")))?,
        ),
        (KeyKind::Tpm, Some(location), _) => super::tpm::open(location, &state.key_file)?,
        (KeyKind::Yubikey, _, Some(location)) => super::yubikey::open(location, &state.jkt)?,
        (other, _, _) => {
            return Err(CliError::Failed(format!(
                "{} names a {other} key without saying where it is: enroll again with --force",
                dir.join(crate::agent_state::STATE_FILE).display()
            )));
        }
    };
    let jkt = key.public_jwk().thumbprint();
    if jkt != state.jkt {
        return Err(CliError::Failed(format!(
            "the device key is {jkt}, but this agent enrolled {}: restore the enrolled key, or enroll again with --force",
            state.jkt
        )));
    }
    Ok(Enrolled { state, key })
}

/// The HTTP client every command uses: a bounded connect time, and a
/// `User-Agent` the issuer records with each session.
///
/// # Errors
/// [`CliError::Failed`] if the TLS configuration cannot be built.
pub(crate) fn http_client() -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("holdfast-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CliError::Failed(format!("cannot build the HTTP client: {e}")))
}

/// A client for the enrolled identity: discovers the issuer's metadata.
///
/// # Errors
/// The issuer cannot be reached or answers nonsense ([`explain`]ed).
pub(crate) async fn client(enrolled: &Enrolled) -> Result<DpopClient, CliError> {
    DpopClient::discover_with(
        &enrolled.state.server,
        &enrolled.state.client_id,
        Arc::clone(&enrolled.key),
        http_client()?,
        Arc::new(SystemClock),
    )
    .await
    .map_err(explain)
}

/// An SDK error as a message that says what to do.
pub(crate) fn explain(err: ClientError) -> CliError {
    CliError::Failed(match err {
        ClientError::Unreachable { url, source } => {
            format!(
                "cannot reach {url}: {}; is holdfastd running?",
                root_cause(&source)
            )
        }
        ClientError::ReauthenticationRequired(why) => format!(
            "re-authentication required: {why}. This device can no longer get a session: ask \
             your admin. A disabled device can be enabled again; a revoked one enrolls again with \
             a new code (`holdfast enroll --force …`)"
        ),
        ClientError::Refused {
            status,
            error,
            description,
        } => format!("the issuer refused ({status} {error}): {description}"),
        ClientError::Protocol(why) => format!("unexpected answer from the issuer: {why}"),
        other => other.to_string(),
    })
}

/// The innermost cause of a transport error ("Connection refused (os error
/// 111)"), which says more than reqwest's outer "error sending request".
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl From<AgentStateError> for CliError {
    fn from(err: AgentStateError) -> Self {
        Self::Failed(err.to_string())
    }
}
