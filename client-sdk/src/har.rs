//! Scrubbing secrets out of HAR captures (HTTP Archive 1.2) before they are
//! shared.
//!
//! A HAR saved from a browser's network panel holds every header, cookie and
//! body of a session: DPoP-bound and bearer access tokens, refresh tokens,
//! client assertions, session cookies. Shared with a vendor's support desk, it
//! hands over the session (a HAR full of tokens is how the breach this product
//! answers began). [`scrub`] masks those values in place with [`REDACTED`],
//! keeping every entry, member and header so the file still opens in a HAR
//! viewer and a support engineer can still follow the flow.
//!
//! This module does no IO: the caller reads and writes the file. What is
//! masked, and what is deliberately kept, is listed in `docs/har-scrub.md`.

mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64ct::{Base64, Encoding as _};
use serde_json::Value;

use self::scan::{ParamKind, is_secret_header, is_secret_name, leaf_name, scan_text};

/// What a masked value is replaced with.
///
/// Inside URLs and form bodies it is written percent-encoded
/// (`%5BREDACTED%20by%20holdfast%5D`) so the URL stays valid; it decodes to
/// this string.
pub const REDACTED: &str = "[REDACTED by holdfast]";

/// Members of a JWK (RFC 7518 §6) that hold private key material, masked in
/// any JSON object that has a `kty` member.
const JWK_PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JSON document is not a HAR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HarError {
    /// The document has no `log` object at the top level.
    #[error("not a HAR: there is no \"log\" object at the top level")]
    MissingLog,
    /// `log.entries` is missing or is not an array.
    #[error("not a HAR: \"log.entries\" is missing or is not an array")]
    MissingEntries,
}

/// What [`scrub`] masked, counted by kind.
///
/// Counts are occurrences: a token sent in five requests counts five times.
/// A HAR shows some values twice (`request.url` and `request.queryString`,
/// `postData.text` and `postData.params`); such a pair counts once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrubReport {
    /// Request and response headers, by lower-case header name.
    pub headers: BTreeMap<String, usize>,
    /// Values in `request.cookies` and `response.cookies`.
    pub cookies: usize,
    /// Query parameters (in URLs, `queryString` and `name=value` pairs in any
    /// other text), by parameter name.
    pub query_params: BTreeMap<String, usize>,
    /// Form fields (`postData.params` and form-encoded bodies), by name.
    pub form_fields: BTreeMap<String, usize>,
    /// Members of JSON bodies, by key.
    pub json_fields: BTreeMap<String, usize>,
    /// JWTs (JWS or JWE compact serialisations) found in any other text.
    pub jwts: usize,
    /// Opaque credentials after `Bearer `, `DPoP ` or `Basic ` in text.
    pub credentials: usize,
}

/// Masks the secrets in a HAR document, in place.
///
/// Headers that carry credentials, all cookie values, secret query
/// parameters, form fields and JSON members, and JWT-shaped or
/// `Bearer`/`DPoP`-prefixed strings anywhere are replaced with [`REDACTED`].
/// Everything else, including the number of entries and every field's
/// place, is kept. Scrubbing an already scrubbed HAR changes nothing and
/// reports nothing.
///
/// # Errors
///
/// [`HarError`] when `har` has no `log` object or no `log.entries` array;
/// `har` is then left untouched.
pub fn scrub(har: &mut Value) -> Result<ScrubReport, HarError> {
    let Some(log) = har.get_mut("log").filter(|log| log.is_object()) else {
        return Err(HarError::MissingLog);
    };
    let Some(entries) = log.get_mut("entries").and_then(Value::as_array_mut) else {
        return Err(HarError::MissingEntries);
    };
    let mut report = ScrubReport::default();
    for entry in entries.iter_mut() {
        scrub_entry(entry, &mut report);
    }
    // Then every string left anywhere: pages, comments, other headers
    // (`Location`, `Referer`), text bodies, WebSocket messages, and the
    // custom `_…` fields browsers add.
    scan_strings(har, &mut report);
    Ok(report)
}

impl ScrubReport {
    /// How many values were masked in all.
    #[must_use]
    pub fn total(&self) -> usize {
        let named = [
            &self.headers,
            &self.query_params,
            &self.form_fields,
            &self.json_fields,
        ];
        named
            .iter()
            .flat_map(|counts| counts.values())
            .chain([&self.cookies, &self.jwts, &self.credentials])
            .sum()
    }

    /// True when nothing was masked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    fn count_header(&mut self, name: &str) {
        bump(&mut self.headers, &name.to_ascii_lowercase());
    }

    fn count_param(&mut self, kind: ParamKind, name: &str) {
        let counts = match kind {
            ParamKind::Query => &mut self.query_params,
            ParamKind::Form => &mut self.form_fields,
        };
        bump(counts, name);
    }

    /// Adds the larger of `a` and `b`, field by field: for two views of the
    /// same values (a URL and its `queryString`), so they count once.
    fn add_larger(&mut self, a: &Self, b: &Self) {
        add_larger_map(&mut self.headers, &a.headers, &b.headers);
        add_larger_map(&mut self.query_params, &a.query_params, &b.query_params);
        add_larger_map(&mut self.form_fields, &a.form_fields, &b.form_fields);
        add_larger_map(&mut self.json_fields, &a.json_fields, &b.json_fields);
        self.cookies += a.cookies.max(b.cookies);
        self.jwts += a.jwts.max(b.jwts);
        self.credentials += a.credentials.max(b.credentials);
    }
}

/// A one-line summary: `3 Authorization headers, 5 cookies, 1 refresh_token
/// (JSON), 4 JWTs in text`, or `nothing`.
impl fmt::Display for ScrubReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, &n) in &self.headers {
            parts.push(format!("{n} {} header{}", header_case(name), plural(n)));
        }
        if self.cookies > 0 {
            parts.push(format!("{} cookie{}", self.cookies, plural(self.cookies)));
        }
        for (counts, kind) in [
            (&self.query_params, "query"),
            (&self.form_fields, "form"),
            (&self.json_fields, "JSON"),
        ] {
            for (name, n) in counts {
                parts.push(format!("{n} {name} ({kind})"));
            }
        }
        if self.jwts > 0 {
            parts.push(format!("{} JWT{} in text", self.jwts, plural(self.jwts)));
        }
        if self.credentials > 0 {
            let n = self.credentials;
            parts.push(format!("{n} Bearer/DPoP credential{} in text", plural(n)));
        }
        if parts.is_empty() {
            return f.write_str("nothing");
        }
        f.write_str(&parts.join(", "))
    }
}

/// The parts of one entry whose meaning is known: headers, cookies, the
/// query, and the bodies.
fn scrub_entry(entry: &mut Value, report: &mut ScrubReport) {
    if let Some(request) = entry.get_mut("request") {
        mask_headers(request.get_mut("headers"), report);
        mask_cookies(request.get_mut("cookies"), report);

        let mut from_url = ScrubReport::default();
        if let Some(url) = request.get_mut("url") {
            scan_strings(url, &mut from_url);
        }
        let mut from_query = ScrubReport::default();
        mask_params(
            request.get_mut("queryString"),
            ParamKind::Query,
            &mut from_query,
        );
        report.add_larger(&from_url, &from_query);

        if let Some(post) = request.get_mut("postData") {
            scrub_post_data(post, report);
        }
    }
    if let Some(response) = entry.get_mut("response") {
        mask_headers(response.get_mut("headers"), report);
        mask_cookies(response.get_mut("cookies"), report);

        let mut from_location = ScrubReport::default();
        let headers = response.get_mut("headers").and_then(Value::as_array_mut);
        for header in headers.into_iter().flatten() {
            let name = header.get("name").and_then(Value::as_str);
            if name.is_some_and(|name| name.eq_ignore_ascii_case("location")) {
                scan_strings(header, &mut from_location);
            }
        }
        let mut from_redirect = ScrubReport::default();
        if let Some(url) = response.get_mut("redirectURL") {
            scan_strings(url, &mut from_redirect);
        }
        report.add_larger(&from_location, &from_redirect);

        if let Some(content) = response.get_mut("content") {
            scrub_content(content, report);
        }
    }
}

/// `[{name, value}]` headers: a secret header's value is masked whole.
fn mask_headers(headers: Option<&mut Value>, report: &mut ScrubReport) {
    for header in headers.and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(name) = header.get("name").and_then(Value::as_str) else {
            continue;
        };
        if !is_secret_header(name) {
            continue;
        }
        let name = name.to_owned();
        if mask_string(header.get_mut("value")) {
            report.count_header(&name);
        }
    }
}

/// Every cookie's value, whatever its name: cookies carry sessions.
fn mask_cookies(cookies: Option<&mut Value>, report: &mut ScrubReport) {
    for cookie in cookies.and_then(Value::as_array_mut).into_iter().flatten() {
        if mask_string(cookie.get_mut("value")) {
            report.cookies += 1;
        }
    }
}

/// `[{name, value}]` parameters (`queryString`, `postData.params`): a secret
/// name's value is masked, any other value is scanned as text.
fn mask_params(params: Option<&mut Value>, kind: ParamKind, report: &mut ScrubReport) {
    for param in params.and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(name) = param.get("name").and_then(Value::as_str) else {
            continue;
        };
        let leaf = leaf_name(name).unwrap_or(name).to_owned();
        if is_secret_name(&leaf) && mask_string(param.get_mut("value")) {
            report.count_param(kind, &leaf);
            continue;
        }
        if let Some(value) = param.get_mut("value") {
            scan_strings(value, report);
        }
    }
}

/// `postData`: its `text` and its parsed `params` are two views of one body.
fn scrub_post_data(post: &mut Value, report: &mut ScrubReport) {
    let mime = mime_type(post);
    let mut from_text = ScrubReport::default();
    if let Some(Value::String(text)) = post.get_mut("text")
        && let Some(scrubbed) = scrub_body(text, &mime, &mut from_text)
    {
        *text = scrubbed;
    }
    let mut from_params = ScrubReport::default();
    mask_params(post.get_mut("params"), ParamKind::Form, &mut from_params);
    report.add_larger(&from_text, &from_params);
}

/// `response.content`: the body, decoded first when it is base64.
fn scrub_content(content: &mut Value, report: &mut ScrubReport) {
    let mime = mime_type(content);
    let base64 = content.get("encoding").and_then(Value::as_str) == Some("base64");
    let Some(Value::String(text)) = content.get_mut("text") else {
        return;
    };
    if !base64 {
        if let Some(scrubbed) = scrub_body(text, &mime, report) {
            *text = scrubbed;
        }
        return;
    }
    // A binary body is left alone; a text one is scrubbed like any other
    // and encoded again. (`content.size` keeps the original length.)
    let Some(decoded) = Base64::decode_vec(text.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return;
    };
    let body = scrub_body(&decoded, &mime, report);
    let body_text = body.as_deref().unwrap_or(&decoded);
    let scanned = scan_text(body_text, ParamKind::Query, report);
    if let Some(final_text) = scanned.or(body) {
        *text = Base64::encode_string(final_text.as_bytes());
    }
}

/// A body by its kind: form fields, or JSON members at any depth. Returns
/// the new text when something was masked; anything else is left to the
/// free-text scan.
fn scrub_body(text: &str, mime: &str, report: &mut ScrubReport) -> Option<String> {
    if mime.contains("x-www-form-urlencoded") {
        return scan_text(text, ParamKind::Form, report);
    }
    let trimmed = text.trim_start();
    if mime.contains("json") || trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut json: Value = serde_json::from_str(text).ok()?;
        // Rewritten (compact, keys sorted) only when something changed, so
        // a clean body keeps its bytes.
        if mask_json(&mut json, report) {
            return serde_json::to_string(&json).ok();
        }
    }
    None
}

/// Masks secret members of a JSON body at any depth, and scans every other
/// string. Returns true when something changed.
fn mask_json(value: &mut Value, report: &mut ScrubReport) -> bool {
    match value {
        Value::Object(members) => {
            // A JWK's private members ("d" …) only mean a key inside a JWK.
            let is_jwk = members.contains_key("kty");
            let mut changed = false;
            for (key, member) in members.iter_mut() {
                let secret =
                    is_secret_name(key) || (is_jwk && JWK_PRIVATE_MEMBERS.contains(&key.as_str()));
                if secret && mask_scalar(member) {
                    bump(&mut report.json_fields, key);
                    changed = true;
                } else {
                    changed |= mask_json(member, report);
                }
            }
            changed
        }
        Value::Array(items) => {
            // Every item, so no short-circuiting `any`.
            let mut changed = false;
            for item in items {
                changed |= mask_json(item, report);
            }
            changed
        }
        Value::String(text) => match scan_text(text, ParamKind::Query, report) {
            Some(scanned) => {
                *text = scanned;
                true
            }
            None => false,
        },
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Scans every string in `value` (not object keys) for JWTs, credentials
/// and secret `name=value` pairs.
fn scan_strings(value: &mut Value, report: &mut ScrubReport) {
    match value {
        Value::String(text) => {
            if let Some(scanned) = scan_text(text, ParamKind::Query, report) {
                *text = scanned;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| scan_strings(item, report)),
        Value::Object(members) => members
            .values_mut()
            .for_each(|member| scan_strings(member, report)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Masks a non-empty string value. Returns true when it did.
fn mask_string(value: Option<&mut Value>) -> bool {
    match value {
        Some(Value::String(text)) if !text.is_empty() && text != REDACTED => {
            REDACTED.clone_into(text);
            true
        }
        _ => false,
    }
}

/// Masks a non-empty string or a number (a numeric code or PIN); an
/// object or array under a secret name is walked instead.
fn mask_scalar(value: &mut Value) -> bool {
    match value {
        Value::Number(_) => {
            *value = Value::String(REDACTED.to_owned());
            true
        }
        Value::String(_) => mask_string(Some(value)),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => false,
    }
}

fn mime_type(value: &Value) -> String {
    value
        .get("mimeType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn bump(counts: &mut BTreeMap<String, usize>, name: &str) {
    *counts.entry(name.to_owned()).or_default() += 1;
}

fn add_larger_map(
    into: &mut BTreeMap<String, usize>,
    a: &BTreeMap<String, usize>,
    b: &BTreeMap<String, usize>,
) {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        let count = |view: &BTreeMap<String, usize>| view.get(name).copied().unwrap_or(0);
        *into.entry(name.clone()).or_default() += count(a).max(count(b));
    }
}

/// `dpop-nonce` → `DPoP-Nonce`, `x-api-key` → `X-Api-Key`.
fn header_case(lower: &str) -> String {
    lower
        .split('-')
        .map(|word| {
            if word == "dpop" {
                return "DPoP".to_owned();
            }
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests;
