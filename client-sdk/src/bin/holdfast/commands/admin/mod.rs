//! `holdfast admin …`: the admin API through the agent's own identity.
//!
//! Every command is one or a few calls to `/admin/…` with a DPoP-bound
//! token of a new session. Privileged actions need a step-up of that
//! session: `--totp CODE` or `--yubikey` performs it first, and at a
//! terminal a refused action asks for a TOTP code and tries once more.
//! Output is a table for people, or the server's JSON with `--json`. A
//! refusal becomes a message that says what to do.

mod audit;
mod devices;
mod principals;
mod sessions;
mod setup;
mod step_up;

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use holdfast_client::DpopClient;
use holdfast_hw::KeyKind;
use holdfast_proto::Signer;
use holdfast_proto::endpoints::ADMIN_PREFIX;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::agent::{self, explain};
use super::print_json;
use crate::cli::{AdminArgs, AdminCommand};
use crate::error::CliError;

pub(crate) fn run(args: &AdminArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    // A malformed factor is a usage error, found before anything is loaded.
    let factor = step_up::Factor::from_args(args)?;
    let dir = agent::dir(agent_dir)?;
    let enrolled = agent::load(&dir)?;
    super::block_on(async {
        let admin = Admin {
            client: agent::client(&enrolled).await?,
            server: enrolled.state.server.clone(),
            principal: enrolled.state.principal.clone(),
            json: args.json,
            key: Arc::clone(&enrolled.key),
            kind: enrolled.state.kind,
            device_id: enrolled.state.client_id.clone(),
            // Ask for a code only where someone can type one, and not when
            // a factor was given already.
            may_prompt: factor.is_none() && std::io::stdin().is_terminal(),
        };
        // The step-up comes first, in this run's session, which is the one
        // the command then uses.
        let granted = match &factor {
            Some(factor) => Some(step_up::perform(&admin, factor).await?),
            None => None,
        };
        match &args.command {
            AdminCommand::StepUp(command) => {
                step_up::run(&admin, command.command.as_ref(), granted).await
            }
            AdminCommand::Devices(command) => devices::run(&admin, command).await,
            AdminCommand::Sessions(command) => sessions::run(&admin, command).await,
            AdminCommand::Principals(command) => principals::run(&admin, command).await,
            AdminCommand::RevokeAll(command) => sessions::revoke_all(&admin, command).await,
            AdminCommand::Keys(command) => setup::keys(&admin, command).await,
            AdminCommand::Codes(command) => setup::codes(&admin, command).await,
            AdminCommand::Audit(command) => audit::run(&admin, command).await,
        }
    })?
}

/// An authenticated admin: the SDK client and how to print.
pub(crate) struct Admin {
    client: DpopClient,
    server: String,
    /// The agent's principal name, for error messages.
    principal: String,
    /// Print the server's JSON rather than tables.
    json: bool,
    /// The agent's key, for a YubiKey step-up.
    key: Arc<dyn Signer>,
    /// Where that key lives.
    kind: KeyKind,
    /// The agent's device id.
    device_id: String,
    /// A refused privileged action may ask for a TOTP code and retry.
    may_prompt: bool,
}

impl Admin {
    /// Prints the server's JSON with `--json`, else `human`'s rendering of it.
    pub(crate) fn print(&self, answer: &Value, human: impl FnOnce(&Value)) {
        if self.json {
            print_json(answer);
        } else {
            human(answer);
        }
    }

    /// `GET /admin{path}` (the path may carry a query).
    pub(crate) async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST /admin{path}`, with a JSON body or none.
    pub(crate) async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        self.call(Method::POST, path, body).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        match self.call_once(method.clone(), path, body).await? {
            Ok(answer) => Ok(answer),
            Err((status, json, url)) => {
                // Refused for want of a step-up, at a terminal: ask for a
                // code, step up this session and try once (only) more.
                let code = if self.may_prompt && needs_step_up(status, &json) {
                    step_up::prompt_code(&self.principal)?
                } else {
                    None
                };
                let Some(code) = code else {
                    return Err(self.refusal(status, &json, &url));
                };
                step_up::perform(self, &step_up::Factor::Totp(code)).await?;
                match self.call_once(method, path, body).await? {
                    Ok(answer) => Ok(answer),
                    Err((status, json, url)) => Err(self.refusal(status, &json, &url)),
                }
            }
        }
    }

    /// `POST /admin{path}` without the step-up prompt (for the step-up
    /// itself).
    pub(crate) async fn post_once(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        match self.call_once(Method::POST, path, body).await? {
            Ok(answer) => Ok(answer),
            Err((status, json, url)) => Err(self.refusal(status, &json, &url)),
        }
    }

    /// One call: the answer, or the refusal's status, body and URL.
    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Result<Value, (StatusCode, Value, String)>, CliError> {
        let url = format!("{}{ADMIN_PREFIX}{path}", self.server);
        let mut headers = HeaderMap::new();
        let body = body.map(Value::to_string).map(String::into_bytes);
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let response = self
            .client
            .request(method, &url, headers, body)
            .await
            .map_err(explain)?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::Failed(format!("reading the answer from {url}: {e}")))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Ok(json));
        }
        Ok(Err((status, json, url)))
    }

    /// An admin API refusal, with what to do about it.
    fn refusal(&self, status: StatusCode, body: &Value, url: &str) -> CliError {
        let error = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        CliError::Failed(match (status, error) {
            (StatusCode::FORBIDDEN, "access_denied")
                if description.starts_with("step-up required") =>
            {
                format!(
                    "{description}.\nA step-up belongs to one session and each holdfast run is a \
                     new session: add --totp CODE (your authenticator app) or --yubikey (touch \
                     your YubiKey) to this command, e.g. `holdfast admin keys rotate --totp 123456`"
                )
            }
            (StatusCode::FORBIDDEN, "access_denied") if description.contains("this address") => {
                format!(
                    "{description}: the admin API only answers from the networks in the issuer's \
                     admin.allowed_cidrs (default: the issuer's own host); run this from there"
                )
            }
            (StatusCode::FORBIDDEN, "access_denied") if description.contains("admin role") => {
                format!(
                    "{description}: this agent's principal {:?} is not an admin. Enroll an \
                     identity with an admin code (e.g. `holdfast --agent-dir DIR enroll …`) and \
                     use that",
                    self.principal
                )
            }
            (StatusCode::UNAUTHORIZED, _) => format!(
                "the issuer no longer accepts this identity ({error}: {description}); ask another \
                 admin, then enroll again with a new code"
            ),
            (StatusCode::NOT_FOUND, "") => {
                format!("{url}: not found (is this a Holdfast issuer with the admin API?)")
            }
            (_, _) if !description.is_empty() => description.to_owned(),
            _ => format!("{url}: the issuer answered {status}"),
        })
    }
}

/// Whether a refusal asks for a step-up the admin can give now (it has a
/// factor; without one, the message says how to enroll).
fn needs_step_up(status: StatusCode, body: &Value) -> bool {
    let description = body
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    status == StatusCode::FORBIDDEN && description.starts_with("step-up required: run")
}

/// `id` if it looks like an id with `prefix` (`d-`, `p-`, `s-`): letters,
/// digits, `-` and `_` only, so it is safe in a path or a query.
pub(crate) fn id<'a>(id: &'a str, prefix: &str, what: &str) -> Result<&'a str, CliError> {
    let well_formed = id.starts_with(prefix)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(id)
    } else {
        Err(CliError::Usage(format!(
            "{id:?} is not a {what} id (expected {prefix}…)"
        )))
    }
}

/// A principal given by id (`p-…`) or by name, as an id.
pub(crate) async fn principal_id(admin: &Admin, given: &str) -> Result<String, CliError> {
    if given.starts_with("p-") {
        return id(given, "p-", "principal").map(str::to_owned);
    }
    let list = admin.get("/principals").await?;
    list.get("principals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(given))
        .and_then(|p| p.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .ok_or_else(|| CliError::Failed(format!("no principal named {given:?}")))
}

/// The array `key` of a JSON answer (empty if absent).
pub(crate) fn items<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_have_their_prefix_and_safe_characters() {
        assert_eq!(id("d-3qYw_0-J", "d-", "device").unwrap(), "d-3qYw_0-J");
        for bad in ["p-3qYw", "d-../x", "d-a?b", "d-a b", ""] {
            assert!(
                matches!(id(bad, "d-", "device"), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }
}
