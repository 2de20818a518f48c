//! `holdfast token`: a fresh access token, shown decoded.

use std::path::Path;
use std::process::ExitCode;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use holdfast_proto::{AccessToken, AccessTokenClaims, Clock as _, SystemClock};
use serde_json::{Value, json};

use super::agent::{self, explain};
use super::print_json;
use super::table::{date, print_fields};
use crate::cli::TokenArgs;
use crate::error::CliError;

/// An access token's header and claims, decoded but NOT verified: the token
/// came straight from our issuer over the connection we chose, and it is the
/// resource servers' job to verify it.
pub(crate) struct Decoded {
    pub(crate) header: Value,
    pub(crate) claims_json: Value,
    pub(crate) claims: AccessTokenClaims,
}

pub(crate) fn token(args: &TokenArgs, agent_dir: Option<&Path>) -> Result<ExitCode, CliError> {
    let dir = agent::dir(agent_dir)?;
    let enrolled = agent::load(&dir)?;
    let token = super::block_on(async {
        let client = agent::client(&enrolled).await?;
        client.access_token().await.map_err(explain)
    })??;
    if args.raw {
        println!("{}", token.expose());
        return Ok(ExitCode::SUCCESS);
    }
    let decoded = decode(&token)?;
    if args.json {
        print_json(&json!({ "header": decoded.header, "claims": decoded.claims_json }));
    } else {
        print_claims(&decoded);
        eprintln!(
            "holdfast: a new session (each run starts one: tokens are kept in memory only); \
             the token itself is not shown (--raw prints it)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits and decodes the token's header and claims.
///
/// # Errors
/// [`CliError::Failed`] if it is not a JWT with Holdfast's claims.
pub(crate) fn decode(token: &AccessToken) -> Result<Decoded, CliError> {
    let malformed =
        |what: &str| CliError::Failed(format!("the issuer's token is malformed: {what}"));
    let mut parts = token.expose().split('.');
    let (Some(header), Some(claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three parts"));
    };
    let bytes =
        |b64: &str, what: &str| Base64UrlUnpadded::decode_vec(b64).map_err(|_| malformed(what));
    let header: Value =
        serde_json::from_slice(&bytes(header, "header")?).map_err(|_| malformed("header"))?;
    let claims = bytes(claims, "claims")?;
    // From the bytes, not from a `Value`: `Jkt` deserializes from a borrowed str.
    let claims_json: Value = serde_json::from_slice(&claims).map_err(|_| malformed("claims"))?;
    let claims = serde_json::from_slice(&claims).map_err(|e| malformed(&format!("claims: {e}")))?;
    Ok(Decoded {
        header,
        claims_json,
        claims,
    })
}

/// `2025-11-24T16:05:00Z (299 s left)`.
pub(crate) fn expiry(claims: &AccessTokenClaims) -> String {
    let exp = claims.exp.as_secs();
    let now = SystemClock.now().as_secs();
    let left = if exp > now {
        format!("{} s left", exp - now)
    } else {
        "expired".to_owned()
    };
    format!("{} ({left})", date(exp))
}

fn print_claims(decoded: &Decoded) {
    let claims = &decoded.claims;
    print_fields(&[
        ("header", decoded.header.to_string()),
        ("sub", claims.sub.clone()),
        ("client_id", claims.client_id.clone()),
        ("sid", claims.sid.clone().unwrap_or_else(|| "-".into())),
        ("amr", claims.amr.join(" ")),
        ("cnf.jkt", claims.cnf.jkt.to_string()),
        ("iss", claims.iss.clone()),
        ("exp", expiry(claims)),
    ]);
}
