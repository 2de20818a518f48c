//! HAR scrubbing (`holdfast_client::har::scrub`) on arbitrary documents.

use base64ct::{Base64UrlUnpadded, Encoding as _};
use holdfast_client::har::{REDACTED, scrub};
use serde_json::Value;

use super::Verdict;

/// `holdfast_client::har::scrub` on arbitrary bytes.
///
/// The input is a document, scrubbed when it is JSON (as the CLI does).
///
/// Invariants (docs/har-scrub.md): a document that is not a HAR is refused
/// and left untouched; in a HAR, every non-empty `Authorization` and `DPoP`
/// header value of a request or response is masked, and a JWT sent in one
/// (a DPoP proof, a JWT access token, alone or after its scheme) is left in
/// no string of the output, wherever else it was copied (a JWT glued to the
/// end of a longer word is not one, by the documented definition); the
/// entries are kept; scrubbing again changes nothing and reports nothing.
pub fn har_scrub(data: &[u8]) -> Verdict {
    let Ok(mut har) = serde_json::from_slice::<Value>(data) else {
        return Verdict::Refused;
    };
    let original = har.clone();
    let report = match scrub(&mut har) {
        Ok(report) => report,
        Err(_) => {
            assert_eq!(har, original, "a refused document was changed");
            return Verdict::Refused;
        }
    };

    let entries = |doc: &Value| doc["log"]["entries"].as_array().map(Vec::len);
    assert_eq!(entries(&har), entries(&original), "entries were dropped");

    let mut masked = 0;
    let mut jwts = Vec::new();
    for (path, value) in credential_headers(&original) {
        let Some(value) = value.as_str().filter(|v| !v.is_empty()) else {
            continue;
        };
        assert_eq!(
            har.pointer(&path).and_then(Value::as_str),
            Some(REDACTED),
            "{path} was not masked"
        );
        if value != REDACTED {
            masked += 1;
        }
        jwts.extend(jwt_in(value));
    }
    assert!(report.total() >= masked, "the report misses masked headers");
    for jwt in &jwts {
        if let Some(found) = strings(&har).find(|s| contains_jwt(s, jwt)) {
            panic!("a JWT from a credential header survived scrubbing in {found:?}");
        }
    }

    // Idempotent: a scrubbed HAR scrubs to itself, with nothing to report.
    let mut again = har.clone();
    let second = scrub(&mut again).expect("a scrubbed HAR is still a HAR");
    assert!(second.is_empty(), "scrubbing again masked {second}");
    assert_eq!(again, har, "scrubbing again changed the HAR");
    Verdict::Accepted
}

/// JSON pointers and values of every request and response header named
/// `Authorization` or `DPoP` (any case) in `log.entries`.
fn credential_headers(har: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    let entries = har["log"]["entries"].as_array().into_iter().flatten();
    for (i, entry) in entries.enumerate() {
        for side in ["request", "response"] {
            let headers = entry.get(side).and_then(|s| s.get("headers"));
            for (j, header) in headers
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let name = header.get("name").and_then(Value::as_str).unwrap_or("");
                let credential =
                    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("dpop");
                if let (true, Some(value)) = (credential, header.get("value")) {
                    found.push((format!("/log/entries/{i}/{side}/headers/{j}/value"), value));
                }
            }
        }
    }
    found
}

/// The JWT in a credential header's value: the whole value, or what follows
/// its scheme (`DPoP eyJ…`), when it is three or five base64url segments of
/// which the first decodes to a JSON object with a string `alg`.
fn jwt_in(value: &str) -> Option<String> {
    let credential = match value.split_once(' ') {
        Some((_scheme, rest)) => rest.trim_start_matches(' '),
        None => value,
    };
    let segments: Vec<&str> = credential.split('.').collect();
    let well_formed = matches!(segments.len(), 3 | 5)
        && segments.iter().all(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    let header = Base64UrlUnpadded::decode_vec(segments[0]).ok();
    let jose = header
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .is_some_and(|h| h.get("alg").is_some_and(Value::is_string));
    (well_formed && segments[0].starts_with("eyJ") && jose).then(|| credential.to_owned())
}

/// True if `jwt` occurs in `text` as a JWT: not glued to the end of a
/// longer word.
fn contains_jwt(text: &str, jwt: &str) -> bool {
    let bytes = text.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    text.match_indices(jwt).any(|(at, _)| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i));
        !before.is_some_and(word)
    })
}

/// Every string value in a document (object keys are names, not values).
fn strings(value: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        Value::String(s) => Box::new(std::iter::once(s.as_str())),
        Value::Array(items) => Box::new(items.iter().flat_map(strings)),
        Value::Object(members) => Box::new(members.values().flat_map(strings)),
        Value::Null | Value::Bool(_) | Value::Number(_) => Box::new(std::iter::empty()),
    }
}
