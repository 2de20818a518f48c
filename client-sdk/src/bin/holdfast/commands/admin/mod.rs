//! `holdfast admin …`: the admin API through the agent's own identity.
//!
//! Every command is one or a few calls to `/admin/…` with a DPoP-bound
//! token of a new session (so a step-up always passes). Output is a table
//! for people, or the server's JSON with `--json`. A refusal becomes a
//! message that says what to do.

mod audit;
mod devices;
mod principals;
mod sessions;
mod setup;

use std::path::Path;
use std::process::ExitCode;

use holdfast_client::DpopClient;
use holdfast_proto::endpoints::ADMIN_PREFIX;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::agent::{self, explain};
use super::print_json;
use crate::cli::{AdminArgs, AdminCommand};
use crate::error::CliError;

pub(crate) fn run(args: &AdminArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    let dir = agent::dir(agent_dir)?;
    let enrolled = agent::load(&dir)?;
    super::block_on(async {
        let admin = Admin {
            client: agent::client(&enrolled).await?,
            server: enrolled.state.server.clone(),
            principal: enrolled.state.principal.clone(),
            json: args.json,
        };
        match &args.command {
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
            return Ok(json);
        }
        Err(self.refusal(status, &json, &url))
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
            (StatusCode::FORBIDDEN, "access_denied") if description.starts_with("step-up") => {
                format!(
                    "this action needs a recent login ({description}); every holdfast run starts \
                     a new session, so run the command again at once. If it is refused again, \
                     check the clocks and the issuer's admin.step_up_max_age_secs"
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
