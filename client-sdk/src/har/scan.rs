//! Which names are secret, and the scans of free text: `name=value` pairs,
//! JWTs, and credentials after an HTTP authentication scheme.
//!
//! Every scan is byte-wise over ASCII delimiters, so the offsets it cuts at
//! are always character boundaries; no regular expressions.

use base64ct::{Base64UrlUnpadded, Encoding as _};

use super::{REDACTED, ScrubReport};

/// [`REDACTED`] percent-encoded, for URLs and form bodies.
pub(super) const REDACTED_ENCODED: &str = "%5BREDACTED%20by%20holdfast%5D";

/// Headers that carry credentials (compared without case, `-` and `_`).
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxyauthorization",
    "dpop",
    "dpopnonce",
    "cookie",
    "setcookie",
    "xapikey",
    "xauthtoken",
    "xauth",
    "xauthorization",
];

/// Words that make any header name secret (`X-CSRF-Token`,
/// `X-Amz-Security-Token`, `X-Client-Secret`, `X-Goog-Api-Key` …).
const SECRET_HEADER_WORDS: &[&str] = &["token", "secret", "password", "apikey", "session"];

/// Parameter and JSON member names whose value is a secret (compared without
/// case, `-` and `_`), besides any name ending in `token` or `assertion` or
/// containing `secret`, `password`, `passwd` or `apikey`.
///
/// `state`, `sid`, `client_id`, `token_type`, `expires_in`, `scope` and
/// `code_challenge` are kept: they are not secrets and support needs them.
const SECRET_NAMES: &[&str] = &[
    // OAuth 2.0 and OpenID Connect.
    "code",
    "codeverifier",
    "devicecode",
    "usercode",
    "nonce",
    "idtokenhint",
    "samlresponse",
    // DPoP and HTTP authentication, when logged as data.
    "dpop",
    "dpopnonce",
    "authorization",
    "cookie",
    "setcookie",
    // Sessions.
    "session",
    "sessionid",
    "sessionkey",
    "sessid",
    "jsessionid",
    "phpsessid",
    // Keys, one-time codes and signed-URL credentials.
    "key",
    "privatekey",
    "pwd",
    "pin",
    "otp",
    "totp",
    "credential",
    "signature",
    "sig",
    "xamzcredential",
    "xamzsignature",
];

/// Schemes whose credential follows a space (RFC 9110 §11.4, RFC 9449 §7.1).
const SCHEMES: &[&str] = &["bearer", "dpop", "basic"];

/// A credential after a scheme is at least this long, so prose such as
/// "DPoP proof" is not mistaken for one.
const MIN_CREDENTIAL_LEN: usize = 16;

/// Longest JOSE header (base64url) examined when looking for JWTs.
const MAX_JOSE_HEADER_LEN: usize = 4096;

/// Where a secret `name=value` pair is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParamKind {
    /// A URL query or fragment, or a pair in any text.
    Query,
    /// A form-encoded body.
    Form,
}

/// True for a header whose value is a credential.
pub(super) fn is_secret_header(name: &str) -> bool {
    let name = normalise(name);
    SECRET_HEADERS.contains(&name.as_str())
        || SECRET_HEADER_WORDS.iter().any(|word| name.contains(word))
}

/// True for a parameter or JSON member name whose value is a secret.
pub(super) fn is_secret_name(name: &str) -> bool {
    let name = normalise(name);
    name.ends_with("token")
        || name.ends_with("assertion")
        || ["secret", "password", "passwd", "apikey"]
            .iter()
            .any(|word| name.contains(word))
        || SECRET_NAMES.contains(&name.as_str())
}

/// The part of a parameter name that names the value: `password` in
/// `user[password]`, `code` in `a.b.code`.
pub(super) fn leaf_name(name: &str) -> Option<&str> {
    name.rsplit(['[', ']', '.']).find(|part| !part.is_empty())
}

/// Masks secret `name=value` pairs, then JWTs, then credentials after a
/// scheme, in one piece of text. Returns the new text when something was
/// masked.
pub(super) fn scan_text(text: &str, kind: ParamKind, report: &mut ScrubReport) -> Option<String> {
    let pairs = mask_pairs(text, kind, report);
    let text = pairs.as_deref().unwrap_or(text);
    let jwts = mask_jwts(text, report);
    let text = jwts.as_deref().unwrap_or(text);
    let credentials = mask_credentials(text, report);
    credentials.or(jwts).or(pairs)
}

/// Lower case, without `-` and `_`: `Access-Token`, `access_token` and
/// `accessToken` are one name.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Masks the value of each `name=value` pair whose name is secret: URL
/// queries and fragments (`#access_token=…` from the implicit flow), form
/// bodies, and pairs inside any text (a URL in an HTML body). The value is
/// replaced with [`REDACTED_ENCODED`] so a URL stays a URL.
fn mask_pairs(text: &str, kind: ParamKind, report: &mut ScrubReport) -> Option<String> {
    let bytes = text.as_bytes();
    let mut edits = Vec::new();
    let mut masked_to = 0;
    for (eq, _) in text.match_indices('=') {
        if eq < masked_to {
            continue;
        }
        let name_start = bytes
            .get(..eq)
            .and_then(|before| before.iter().rposition(|b| !is_name_byte(*b)))
            .map_or(0, |at| at + 1);
        let value_start = eq + 1;
        let value_len = bytes
            .get(value_start..)
            .and_then(|after| after.iter().position(|b| ends_value(*b)))
            .unwrap_or(bytes.len().saturating_sub(value_start));
        let value_end = value_start + value_len;
        let (Some(raw_name), Some(raw_value)) =
            (text.get(name_start..eq), text.get(value_start..value_end))
        else {
            continue;
        };
        if raw_value.bytes().all(|b| b == b'=') {
            continue; // Empty, or base64 padding.
        }
        let name = percent_decode(raw_name);
        let Some(leaf) = leaf_name(&name) else {
            continue;
        };
        if !is_secret_name(leaf) || percent_decode(raw_value) == REDACTED {
            continue;
        }
        report.count_param(kind, leaf);
        edits.push((value_start, value_end));
        masked_to = value_end;
    }
    (!edits.is_empty()).then(|| splice(text, &edits, REDACTED_ENCODED))
}

/// Masks JWTs: runs of base64url segments joined by dots, starting with a
/// segment that decodes to a JSON object with `alg` (a JOSE header), three
/// segments for a JWS and five for a JWE.
fn mask_jwts(text: &str, report: &mut ScrubReport) -> Option<String> {
    let mut edits = Vec::new();
    for (run_start, run) in runs(text, is_jwt_byte) {
        let segments: Vec<(usize, &str)> = split_with_offsets(run, '.');
        let mut i = 0;
        while let Some(&(offset, segment)) = segments.get(i) {
            let Some(parts) = jose_header_parts(segment) else {
                i += 1;
                continue;
            };
            // A JWE's five parts when present, else a JWS's three.
            let parts = if segments.len() >= i + parts {
                parts
            } else {
                3
            };
            let Some(&(last_offset, last)) = segments.get(i + parts - 1) else {
                i += 1;
                continue;
            };
            report.jwts += 1;
            edits.push((run_start + offset, run_start + last_offset + last.len()));
            i += parts;
        }
    }
    (!edits.is_empty()).then(|| splice(text, &edits, REDACTED))
}

/// Masks the credential after `Bearer `, `DPoP ` or `Basic ` (a token68,
/// RFC 9110 §11.2) in text; an `Authorization` header is masked whole
/// elsewhere, this catches the same value quoted in a body or a comment.
fn mask_credentials(text: &str, report: &mut ScrubReport) -> Option<String> {
    let bytes = text.as_bytes();
    let mut edits = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(after_scheme) = scheme_at(bytes, at) else {
            at += 1;
            continue;
        };
        let start = after_scheme
            + bytes
                .get(after_scheme..)
                .map_or(0, |rest| rest.iter().take_while(|b| **b == b' ').count());
        let token_len = run_len(bytes, start, is_token68_byte);
        let padded_len = token_len + run_len(bytes, start + token_len, |b| b == b'=');
        let end = start + padded_len;
        let token = text.get(start..start + token_len).unwrap_or_default();
        // A token68 ends the credential (`realm=x` is an auth-param); a
        // quoted auth-param (`algs="ES256"`) is shorter than a credential.
        let well_ended = bytes.get(end).is_none_or(|b| !is_token68_byte(*b));
        if start > after_scheme && well_ended && looks_like_credential(token) {
            report.credentials += 1;
            edits.push((start, end));
            at = end;
        } else {
            at = after_scheme;
        }
    }
    (!edits.is_empty()).then(|| splice(text, &edits, REDACTED))
}

/// If a scheme word followed by a space starts at `at` (and does not end a
/// longer word), the offset after the word.
fn scheme_at(bytes: &[u8], at: usize) -> Option<usize> {
    if at > 0 && bytes.get(at - 1).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    SCHEMES.iter().find_map(|scheme| {
        let end = at + scheme.len();
        let word = bytes.get(at..end)?;
        (word.eq_ignore_ascii_case(scheme.as_bytes()) && bytes.get(end) == Some(&b' '))
            .then_some(end)
    })
}

/// Long enough, and not a hyphenated phrase such as `Proof-of-Possession`.
fn looks_like_credential(token: &str) -> bool {
    let phrase = token.contains('-') && token.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
    token.len() >= MIN_CREDENTIAL_LEN && !phrase
}

/// How many parts the compact serialisation starting with `segment` has:
/// 5 for a JWE header (it has `enc`), 3 for a JWS one, `None` if `segment`
/// is not a JOSE header.
fn jose_header_parts(segment: &str) -> Option<usize> {
    if !segment.starts_with("eyJ") || segment.len() > MAX_JOSE_HEADER_LEN {
        return None;
    }
    let bytes = Base64UrlUnpadded::decode_vec(segment).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let header = header.as_object()?;
    if !header.get("alg").is_some_and(serde_json::Value::is_string) {
        return None;
    }
    Some(if header.contains_key("enc") { 5 } else { 3 })
}

/// Maximal runs of bytes matching `keep`, with their offsets.
fn runs(text: &str, keep: fn(u8) -> bool) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = run_len(bytes, at, keep);
        if len == 0 {
            at += 1;
            continue;
        }
        if let Some(run) = text.get(at..at + len) {
            found.push((at, run));
        }
        at += len;
    }
    found
}

fn split_with_offsets(text: &str, separator: char) -> Vec<(usize, &str)> {
    let mut offset = 0;
    text.split(separator)
        .map(|part| {
            let at = offset;
            offset += part.len() + separator.len_utf8();
            (at, part)
        })
        .collect()
}

fn run_len(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| keep(**b)).count())
}

/// Replaces each `(start, end)` range (sorted, disjoint, on character
/// boundaries) with `with`.
fn splice(text: &str, edits: &[(usize, usize)], with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in edits {
        out.push_str(text.get(at..start).unwrap_or_default());
        out.push_str(with);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); a bad
/// escape is kept as it is.
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        let hex = |i: usize| bytes.get(i).and_then(|h| char::from(*h).to_digit(16));
        match (b, hex(at + 1), hex(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits are at most 0xff.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                at += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                at += 1;
            }
            _ => {
                out.push(b);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Characters of a parameter name, including `[]` and `.` of nested names
/// and `%` of escapes.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%' | b'[' | b']')
}

/// What ends a parameter value in a URL, a form body or text around them
/// (a quote or backslash ends it too, so a JSON string is never cut open).
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(
            b,
            b'&' | b';' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\'
        )
}

fn is_jwt_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn is_token68_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}
