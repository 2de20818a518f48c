// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64ct::{Base64, Base64UrlUnpadded, Encoding as _};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::scan::{REDACTED_ENCODED, is_secret_header, is_secret_name, percent_decode};
use super::*;

/// A compact JWS with a made-up signature: shaped like the real thing,
/// which is all the scrubber looks at.
fn jws(header: &Value, claims: &Value, signature: &str) -> String {
    let encode = |v: &Value| Base64UrlUnpadded::encode_string(v.to_string().as_bytes());
    format!("{}.{}.{signature}", encode(header), encode(claims))
}

fn har(entries: Vec<Value>) -> Value {
    json!({ "log": { "version": "1.2", "creator": { "name": "test", "version": "1" }, "entries": entries } })
}

fn entry(request: Value, response: Value) -> Value {
    json!({ "startedDateTime": "2025-01-01T00:00:00Z", "time": 1, "request": request, "response": response })
}

fn get(url: &str, headers: Value) -> Value {
    json!({ "method": "GET", "url": url, "httpVersion": "HTTP/1.1", "headers": headers,
            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0 })
}

fn ok(headers: Value, mime: &str, text: &str) -> Value {
    json!({ "status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": headers,
            "cookies": [], "content": { "size": text.len(), "mimeType": mime, "text": text },
            "redirectURL": "", "headersSize": -1, "bodySize": -1 })
}

fn empty_ok() -> Value {
    ok(json!([]), "text/plain", "")
}

fn header_value(headers: &Value, name: &str) -> Value {
    headers
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no {name} header"))["value"]
        .clone()
}

fn scrubbed(mut value: Value) -> (Value, ScrubReport) {
    let report = scrub(&mut value).unwrap();
    (value, report)
}

fn access_token() -> String {
    jws(
        &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "issuer-2025" }),
        &json!({ "iss": "https://issuer.example", "sub": "device-42", "cnf": { "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }, "exp": 1_700_000_300 }),
        "AT_sig_3uHq8Zr2Jx7Wp1Ks9Ld3Vn6Mb4Tc0Yf5Ge8Ha2",
    )
}

#[test]
fn masks_credential_headers_whole_and_keeps_the_rest() {
    let headers = json!([
        { "name": "Authorization", "value": "DPoP opaque-token-value-1234567" },
        { "name": "proxy-authorization", "value": "Basic dXNlcjpwYXNz" },
        { "name": "DPoP", "value": "not-even-a-jwt" },
        { "name": "dpop-nonce", "value": "nonce-1" },
        { "name": "Cookie", "value": "session=abc; theme=dark" },
        { "name": "X-Api-Key", "value": "k1" },
        { "name": "X-Auth-Token", "value": "t1" },
        { "name": "X-CSRF-Token", "value": "csrf1" },
        { "name": "X-Client-Secret", "value": "s1" },
        { "name": "Content-Type", "value": "application/json" },
        { "name": "Host", "value": "api.example" },
        { "name": "Accept", "value": "*/*" },
    ]);
    let response_headers = json!([
        { "name": "Set-Cookie", "value": "session=def; Path=/; HttpOnly" },
        { "name": "WWW-Authenticate", "value": "DPoP error=\"use_dpop_nonce\", algs=\"ES256\"" },
        { "name": "DPoP-Nonce", "value": "nonce-2" },
    ]);
    let (har, report) = scrubbed(har(vec![entry(
        get("https://api.example/v1", headers),
        ok(response_headers, "text/plain", ""),
    )]));
    let request = &har["log"]["entries"][0]["request"]["headers"];
    let response = &har["log"]["entries"][0]["response"]["headers"];
    for name in [
        "Authorization",
        "proxy-authorization",
        "DPoP",
        "dpop-nonce",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "X-CSRF-Token",
        "X-Client-Secret",
    ] {
        assert_eq!(header_value(request, name), REDACTED, "{name}");
    }
    assert_eq!(header_value(response, "Set-Cookie"), REDACTED);
    assert_eq!(header_value(response, "DPoP-Nonce"), REDACTED);
    assert_eq!(header_value(request, "Content-Type"), "application/json");
    assert_eq!(header_value(request, "Host"), "api.example");
    assert_eq!(header_value(request, "Accept"), "*/*");
    assert_eq!(
        header_value(response, "WWW-Authenticate"),
        "DPoP error=\"use_dpop_nonce\", algs=\"ES256\""
    );
    assert_eq!(report.headers["dpop-nonce"], 2);
    assert_eq!(report.headers["authorization"], 1);
    assert_eq!(report.total(), 11);
}

#[test]
fn header_names_are_matched_without_case_and_by_word() {
    for name in [
        "authorization",
        "AUTHORIZATION",
        "DPoP",
        "X-Amz-Security-Token",
        "x-goog-api-key",
        "X-Refresh-Token",
        "X-Session-Id",
    ] {
        assert!(is_secret_header(name), "{name}");
    }
    for name in [
        "Content-Type",
        "WWW-Authenticate",
        "Location",
        "Referer",
        "Date",
        "Cache-Control",
    ] {
        assert!(!is_secret_header(name), "{name}");
    }
}

#[test]
fn secret_names_cover_oauth_and_keep_what_support_needs() {
    for name in [
        "access_token",
        "accessToken",
        "Refresh-Token",
        "id_token",
        "subject_token",
        "token",
        "client_assertion",
        "assertion",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "password",
        "new_password",
        "nonce",
        "session",
        "api_key",
        "apiKey",
        "key",
        "id_token_hint",
        "X-Amz-Signature",
        "pin",
    ] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in [
        "state",
        "sid",
        "token_type",
        "token_type_hint",
        "expires_in",
        "refresh_token_expires_in",
        "client_id",
        "client_assertion_type",
        "grant_type",
        "code_challenge",
        "code_challenge_method",
        "response_type",
        "scope",
        "token_endpoint",
        "kind",
    ] {
        assert!(!is_secret_name(name), "{name}");
    }
}

#[test]
fn masks_every_cookie_value_and_keeps_cookie_names() {
    let mut request = get("https://app.example/", json!([]));
    request["cookies"] = json!([
        { "name": "session", "value": "s3cr3t-session" },
        { "name": "theme", "value": "dark" },
        { "name": "deleted", "value": "" },
    ]);
    let mut response = empty_ok();
    response["cookies"] =
        json!([{ "name": "session", "value": "n3w-session", "path": "/", "httpOnly": true }]);
    let (har, report) = scrubbed(har(vec![entry(request, response)]));
    let entry = &har["log"]["entries"][0];
    assert_eq!(
        entry["request"]["cookies"][0],
        json!({ "name": "session", "value": REDACTED })
    );
    assert_eq!(entry["request"]["cookies"][1]["value"], REDACTED);
    assert_eq!(entry["request"]["cookies"][2]["value"], "");
    assert_eq!(
        entry["response"]["cookies"][0],
        json!({ "name": "session", "value": REDACTED, "path": "/", "httpOnly": true })
    );
    assert_eq!(report.cookies, 3);
}

#[test]
fn masks_query_params_in_the_url_and_query_string_counting_them_once() {
    let mut request = get(
        "https://app.example/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz&api_key=k%2B1",
        json!([]),
    );
    request["queryString"] = json!([
        { "name": "code", "value": "SplxlOBeZQQYbYS6WxSbIA" },
        { "name": "state", "value": "xyz" },
        { "name": "api_key", "value": "k+1" },
    ]);
    let (har, report) = scrubbed(har(vec![entry(request, empty_ok())]));
    let request = &har["log"]["entries"][0]["request"];
    assert_eq!(
        request["url"],
        format!(
            "https://app.example/cb?code={REDACTED_ENCODED}&state=xyz&api_key={REDACTED_ENCODED}"
        )
    );
    assert_eq!(
        request["queryString"],
        json!([
            { "name": "code", "value": REDACTED },
            { "name": "state", "value": "xyz" },
            { "name": "api_key", "value": REDACTED },
        ])
    );
    assert_eq!(report.query_params["code"], 1);
    assert_eq!(report.query_params["api_key"], 1);
    assert_eq!(report.total(), 2);
}

#[test]
fn masks_tokens_in_a_redirect_fragment_once_for_location_and_redirect_url() {
    let location =
        "https://app.example/cb#access_token=2YotnFZFEjr1zCsicMWpAA&token_type=Bearer&state=s1";
    let mut response = ok(
        json!([{ "name": "Location", "value": location }]),
        "text/html",
        "",
    );
    response["status"] = json!(302);
    response["redirectURL"] = json!(location);
    let (har, report) = scrubbed(har(vec![entry(
        get("https://issuer.example/authorize", json!([])),
        response,
    )]));
    let expected = format!(
        "https://app.example/cb#access_token={REDACTED_ENCODED}&token_type=Bearer&state=s1"
    );
    let response = &har["log"]["entries"][0]["response"];
    assert_eq!(
        header_value(&response["headers"], "Location"),
        expected.as_str()
    );
    assert_eq!(response["redirectURL"], expected.as_str());
    assert_eq!(report.query_params["access_token"], 1);
    assert_eq!(report.total(), 1);
}

#[test]
fn masks_form_fields_in_text_and_params() {
    let text = "grant_type=password&username=alice&password=correct+horse&client_secret=cs%2F1\
                &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
    let mut request = get("https://issuer.example/token", json!([]));
    request["method"] = json!("POST");
    request["postData"] = json!({
        "mimeType": "application/x-www-form-urlencoded",
        "text": text,
        "params": [
            { "name": "grant_type", "value": "password" },
            { "name": "username", "value": "alice" },
            { "name": "password", "value": "correct horse" },
            { "name": "client_secret", "value": "cs/1" },
        ],
    });
    let (har, report) = scrubbed(har(vec![entry(request, empty_ok())]));
    let post = &har["log"]["entries"][0]["request"]["postData"];
    assert_eq!(
        post["text"],
        format!(
            "grant_type=password&username=alice&password={REDACTED_ENCODED}&client_secret={REDACTED_ENCODED}\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        )
    );
    assert_eq!(post["params"][0]["value"], "password");
    assert_eq!(post["params"][1]["value"], "alice");
    assert_eq!(post["params"][2]["value"], REDACTED);
    assert_eq!(post["params"][3]["value"], REDACTED);
    assert_eq!(report.form_fields["password"], 1);
    assert_eq!(report.form_fields["client_secret"], 1);
    assert_eq!(report.total(), 2);
}

#[test]
fn masks_nested_form_names_by_their_last_part() {
    let mut report = ScrubReport::default();
    let text = super::scan::scan_text(
        "user%5Bpassword%5D=pw1&user[name]=bob&a.b.code=c1",
        ParamKind::Form,
        &mut report,
    )
    .unwrap();
    assert_eq!(
        text,
        format!("user%5Bpassword%5D={REDACTED_ENCODED}&user[name]=bob&a.b.code={REDACTED_ENCODED}")
    );
    assert_eq!(report.form_fields.len(), 2);

    // The same body as `text` and `params` counts once, under the last part.
    let mut request = get("https://app.example/signup", json!([]));
    request["postData"] = json!({
        "mimeType": "application/x-www-form-urlencoded",
        "text": "user%5Bname%5D=bob&user%5Bpassword%5D=pw1",
        "params": [
            { "name": "user[name]", "value": "bob" },
            { "name": "user[password]", "value": "pw1" },
        ],
    });
    let (har, report) = scrubbed(har(vec![entry(request, empty_ok())]));
    let post = &har["log"]["entries"][0]["request"]["postData"];
    assert_eq!(post["params"][0]["value"], "bob");
    assert_eq!(post["params"][1]["value"], REDACTED);
    assert_eq!(report.form_fields["password"], 1);
    assert_eq!(report.total(), 1);
}

#[test]
fn masks_json_members_at_any_depth_and_keeps_the_rest() {
    let body = json!({
        "access_token": "opaque-at",
        "token_type": "DPoP",
        "expires_in": 300,
        "scope": "devices:read",
        "session": { "sid": "sid-1", "refreshToken": "rt-1", "history": [{ "code": 123_456 }] },
        "kind": "session",
    });
    let (har, report) = scrubbed(har(vec![entry(
        get("https://issuer.example/token", json!([])),
        ok(json!([]), "application/json", &body.to_string()),
    )]));
    let text = har["log"]["entries"][0]["response"]["content"]["text"]
        .as_str()
        .unwrap();
    let out: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        out,
        json!({
            "access_token": REDACTED,
            "token_type": "DPoP",
            "expires_in": 300,
            "scope": "devices:read",
            "session": { "sid": "sid-1", "refreshToken": REDACTED, "history": [{ "code": REDACTED }] },
            "kind": "session",
        })
    );
    assert_eq!(report.json_fields["access_token"], 1);
    assert_eq!(report.json_fields["refreshToken"], 1);
    assert_eq!(report.json_fields["code"], 1);
    assert_eq!(report.total(), 3);
}

#[test]
fn masks_private_jwk_members_only_inside_a_jwk() {
    let body = json!({
        "jwk": { "kty": "EC", "crv": "P-256", "x": "x1", "y": "y1", "d": "private-d" },
        "point": { "d": 4, "x": 1 },
    });
    let mut request = get("https://issuer.example/keys", json!([]));
    request["postData"] = json!({ "mimeType": "application/json", "text": body.to_string() });
    let (har, report) = scrubbed(har(vec![entry(request, empty_ok())]));
    let text = har["log"]["entries"][0]["request"]["postData"]["text"]
        .as_str()
        .unwrap();
    let out: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        out["jwk"],
        json!({ "kty": "EC", "crv": "P-256", "x": "x1", "y": "y1", "d": REDACTED })
    );
    assert_eq!(out["point"], json!({ "d": 4, "x": 1 }));
    assert_eq!(report.json_fields["d"], 1);
}

#[test]
fn masks_jwts_in_free_text_anywhere() {
    let token = access_token();
    let html =
        format!("<html><script>window.t = \"{token}\";</script><p>token: {token}.</p></html>");
    let mut request = get(
        "https://app.example/page",
        json!([{ "name": "Referer", "value": format!("https://app.example/?t={token}") }]),
    );
    request["comment"] = json!(format!("sent with {token}"));
    let mut har = har(vec![entry(request, ok(json!([]), "text/html", &html))]);
    har["log"]["pages"] = json!([{ "id": "page_1", "title": format!("app {token}") }]);
    let (har, report) = scrubbed(har);
    let out = har.to_string();
    assert!(!out.contains(&token));
    assert!(!out.contains(token.split('.').nth(1).unwrap()));
    assert_eq!(
        har["log"]["entries"][0]["response"]["content"]["text"],
        format!(
            "<html><script>window.t = \"{REDACTED}\";</script><p>token: {REDACTED}.</p></html>"
        )
    );
    assert_eq!(har["log"]["pages"][0]["title"], format!("app {REDACTED}"));
    assert_eq!(report.jwts, 5);
}

#[test]
fn masks_all_five_parts_of_a_jwe() {
    let header = Base64UrlUnpadded::encode_string(br#"{"alg":"ECDH-ES","enc":"A256GCM"}"#);
    let jwe = format!("{header}..iv_part.ciphertext_part.tag_part");
    let mut report = ScrubReport::default();
    let out = super::scan::scan_text(&format!("x {jwe} y"), ParamKind::Query, &mut report).unwrap();
    assert_eq!(out, format!("x {REDACTED} y"));
    assert_eq!(report.jwts, 1);
}

#[test]
fn keeps_strings_that_only_look_like_jwts() {
    let no_alg = Base64UrlUnpadded::encode_string(br#"{"typ":"JWT"}"#);
    for text in [
        "eyJhello.world.again".to_owned(),
        format!("{no_alg}.e30.sig"),
        format!(
            "{}.e30",
            Base64UrlUnpadded::encode_string(br#"{"alg":"ES256"}"#)
        ),
        "eyJ".to_owned(),
        "plain text with dots. And eyJ words.".to_owned(),
    ] {
        let mut report = ScrubReport::default();
        assert_eq!(
            super::scan::scan_text(&text, ParamKind::Query, &mut report),
            None,
            "{text}"
        );
        assert!(report.is_empty());
    }
}

#[test]
fn masks_opaque_credentials_after_a_scheme_but_not_prose() {
    let mut report = ScrubReport::default();
    let text = "curl -H 'Authorization: Bearer 2YotnFZFEjr1zCsicMWpAA' and dpop  Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU==, ok";
    let out = super::scan::scan_text(text, ParamKind::Query, &mut report).unwrap();
    assert_eq!(
        out,
        format!("curl -H 'Authorization: Bearer {REDACTED}' and dpop  {REDACTED}, ok")
    );
    assert_eq!(report.credentials, 2);
    for prose in [
        "a DPoP proof is required",
        "DPoP Proof-of-Possession-Tokens",
        "DPoP algs=\"ES256 PS256 EdDSA RS256\"",
        "Bearer realm=\"example-realm-that-is-long\"",
        "Bearer error=\"invalid_token\"",
        "token_type: DPoP",
        "Bearer shorttoken",
    ] {
        let mut report = ScrubReport::default();
        assert_eq!(
            super::scan::scan_text(prose, ParamKind::Query, &mut report),
            None,
            "{prose}"
        );
    }
}

#[test]
fn scrubs_base64_text_bodies_and_leaves_binary_ones() {
    let token = access_token();
    let body = json!({ "refresh_token": "rt-b64", "note": format!("see {token}") }).to_string();
    let mut text_response = ok(json!([]), "application/json", "");
    text_response["content"]["text"] = json!(Base64::encode_string(body.as_bytes()));
    text_response["content"]["encoding"] = json!("base64");
    let binary = Base64::encode_string(&[0xff, 0xfe, 0x00, 0x80]);
    let mut binary_response = ok(json!([]), "image/png", "");
    binary_response["content"]["text"] = json!(binary);
    binary_response["content"]["encoding"] = json!("base64");
    let (har, report) = scrubbed(har(vec![
        entry(get("https://api.example/a", json!([])), text_response),
        entry(get("https://api.example/b", json!([])), binary_response),
    ]));
    let encoded = har["log"]["entries"][0]["response"]["content"]["text"]
        .as_str()
        .unwrap();
    let decoded: Value = serde_json::from_slice(&Base64::decode_vec(encoded).unwrap()).unwrap();
    assert_eq!(
        decoded,
        json!({ "refresh_token": REDACTED, "note": format!("see {REDACTED}") })
    );
    assert_eq!(
        har["log"]["entries"][1]["response"]["content"]["text"],
        binary
    );
    assert_eq!(report.json_fields["refresh_token"], 1);
    assert_eq!(report.jwts, 1);
}

#[test]
fn refuses_a_document_without_log() {
    for mut doc in [
        json!({ "entries": [] }),
        json!([1, 2]),
        json!("har"),
        json!({ "log": [] }),
    ] {
        let before = doc.clone();
        assert_eq!(scrub(&mut doc), Err(HarError::MissingLog));
        assert_eq!(doc, before);
    }
}

#[test]
fn refuses_a_log_without_an_entries_array() {
    for mut doc in [
        json!({ "log": { "version": "1.2" } }),
        json!({ "log": { "entries": {} } }),
    ] {
        assert_eq!(scrub(&mut doc), Err(HarError::MissingEntries));
    }
}

#[test]
fn leaves_a_har_without_secrets_unchanged() {
    let mut request = get(
        "https://api.example/v1/devices?state=s1&page=2&response_type=code",
        json!([
            { "name": "Accept", "value": "application/json" },
            { "name": "Referer", "value": "https://app.example/devices?sort=name" },
        ]),
    );
    request["queryString"] =
        json!([{ "name": "state", "value": "s1" }, { "name": "page", "value": "2" }]);
    let body = r#"{ "devices": [ { "id": "dev-1", "name": "laptop-42", "kind": "tpm" } ], "token_type": "DPoP" }"#;
    let original = har(vec![entry(
        request,
        ok(
            json!([{ "name": "Date", "value": "Mon, 01 Jan 2025 00:00:00 GMT" }]),
            "application/json",
            body,
        ),
    )]);
    let (har, report) = scrubbed(original.clone());
    assert_eq!(har, original);
    assert!(report.is_empty());
    assert_eq!(report.to_string(), "nothing");
}

#[test]
fn summary_names_each_kind() {
    let mut report = ScrubReport::default();
    report.headers.insert("authorization".into(), 3);
    report.headers.insert("dpop".into(), 1);
    report.headers.insert("dpop-nonce".into(), 2);
    report.cookies = 5;
    report.json_fields.insert("refresh_token".into(), 1);
    report.query_params.insert("code".into(), 2);
    report.form_fields.insert("client_assertion".into(), 1);
    report.jwts = 4;
    report.credentials = 1;
    assert_eq!(
        report.to_string(),
        "3 Authorization headers, 1 DPoP header, 2 DPoP-Nonce headers, 5 cookies, 2 code (query), \
         1 client_assertion (form), 1 refresh_token (JSON), 4 JWTs in text, 1 Bearer/DPoP credential in text"
    );
    assert_eq!(report.total(), 20);
}

#[test]
fn the_encoded_marker_decodes_to_the_marker() {
    assert_eq!(percent_decode(REDACTED_ENCODED), REDACTED);
    assert_eq!(percent_decode("a+b%2Fc%zz%4"), "a b/c%zz%4");
}

// ---------------------------------------------------------------------------
// A realistic login flow.

/// Every secret the login-flow HAR holds, each of which must be gone.
struct Secrets {
    client_assertion: String,
    proof_token: String,
    proof_retry: String,
    proof_api: String,
    access_token: String,
    id_token: String,
    refresh_token: &'static str,
    nonce: &'static str,
    session: &'static str,
    new_session: &'static str,
    code: &'static str,
    password: &'static str,
    api_key: &'static str,
    opaque_bearer: &'static str,
}

impl Secrets {
    fn new() -> Self {
        let proof = |jti: &str, htm: &str, htu: &str, extra: Value| {
            let mut claims = json!({ "jti": jti, "htm": htm, "htu": htu, "iat": 1_700_000_000 });
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            jws(
                &json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": { "kty": "EC", "crv": "P-256", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA" } }),
                &claims,
                &format!("sig_{jti}_Qk9yT2xkZmFzdFNpZ25hdHVyZQ"),
            )
        };
        Self {
            client_assertion: jws(
                &json!({ "alg": "ES256", "kid": "device-42" }),
                &json!({ "iss": "device-42", "sub": "device-42", "aud": "https://issuer.example/token", "jti": "ca-1", "exp": 1_700_000_060 }),
                "CA_sig_Zr2Jx7Wp1Ks9Ld3Vn6Mb4Tc0Yf5Ge8Ha2",
            ),
            proof_token: proof("p1", "POST", "https://issuer.example/token", json!({})),
            proof_retry: proof(
                "p2",
                "POST",
                "https://issuer.example/token",
                json!({ "nonce": "eyJ7S2VfZ0VuUw" }),
            ),
            proof_api: proof(
                "p3",
                "GET",
                "https://api.example/v1/devices",
                json!({ "ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" }),
            ),
            access_token: access_token(),
            id_token: jws(
                &json!({ "alg": "RS256", "kid": "idp-1" }),
                &json!({ "iss": "https://idp.example", "sub": "alice", "email": "alice@example.com", "nonce": "n-0S6_WzA2Mj" }),
                "ID_sig_b2xkZmFzdElkVG9rZW5TaWduYXR1cmU",
            ),
            refresh_token: "rt_8Qm3vZx7LkP2wR9sT4uY6nB1cD5eF0gH",
            nonce: "eyJ7S2VfZ0VuUw",
            session: "s%3Aq9X2vL7mN4pR8tW1yZ3b",
            new_session: "s%3Ak5J8hG2fD6sA9qW3eR7t",
            code: "SplxlOBeZQQYbYS6WxSbIA",
            password: "correct+horse+battery+staple",
            api_key: "hf_live_7rT2kQ9xW4mZ",
            opaque_bearer: "mF_9B5f4XJqMzQ2vL8pK1rT6",
        }
    }

    /// Each secret string, and each part of each JWT.
    fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = [
            self.refresh_token,
            self.nonce,
            self.session,
            self.new_session,
            self.code,
            self.password,
            "correct horse battery staple",
            self.api_key,
            self.opaque_bearer,
        ]
        .map(str::to_owned)
        .into();
        for jwt in [
            &self.client_assertion,
            &self.proof_token,
            &self.proof_retry,
            &self.proof_api,
            &self.access_token,
            &self.id_token,
        ] {
            all.push(jwt.clone());
            // Headers repeat between proofs and carry nothing secret.
            all.extend(jwt.split('.').skip(1).map(str::to_owned));
        }
        all
    }
}

fn header(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

fn login_flow(s: &Secrets) -> Value {
    let form = format!(
        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={}",
        s.client_assertion
    );
    let token_request = |proof: &str| {
        json!({
            "method": "POST", "url": "https://issuer.example/token", "httpVersion": "HTTP/1.1",
            "headers": [
                header("Host", "issuer.example"),
                header("Content-Type", "application/x-www-form-urlencoded"),
                header("DPoP", proof),
            ],
            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": form.len(),
            "postData": {
                "mimeType": "application/x-www-form-urlencoded",
                "text": form,
                "params": [
                    { "name": "grant_type", "value": "client_credentials" },
                    { "name": "client_assertion_type", "value": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" },
                    { "name": "client_assertion", "value": s.client_assertion },
                ],
            },
        })
    };
    let mut nonce_challenge = ok(
        json!([
            header("DPoP-Nonce", s.nonce),
            header("WWW-Authenticate", "DPoP error=\"use_dpop_nonce\""),
        ]),
        "application/json",
        r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#,
    );
    nonce_challenge["status"] = json!(400);
    let token_body = json!({
        "access_token": s.access_token, "token_type": "DPoP", "expires_in": 300,
        "refresh_token": s.refresh_token,
    });
    let token_response = ok(
        json!([
            header("Content-Type", "application/json"),
            header("Cache-Control", "no-store"),
            header("DPoP-Nonce", s.nonce)
        ]),
        "application/json",
        &token_body.to_string(),
    );

    let mut api_request = get(
        "https://api.example/v1/devices",
        json!([
            header("Authorization", &format!("DPoP {}", s.access_token)),
            header("DPoP", &s.proof_api),
            header("Cookie", &format!("session={}", s.session)),
            header("X-Api-Key", s.api_key),
        ]),
    );
    api_request["cookies"] = json!([{ "name": "session", "value": s.session }]);
    let api_body = json!({
        "devices": [{ "id": "dev-1", "name": "laptop-42", "kind": "tpm" }],
        "debug": { "request": { "headers": { "authorization": format!("DPoP {}", s.access_token) } },
                   "upstream": { "claims": { "raw": [s.id_token] } } },
    });
    let mut api_response = ok(
        json!([header(
            "Set-Cookie",
            &format!("session={}; Path=/; Secure; HttpOnly", s.new_session)
        )]),
        "application/json; charset=utf-8",
        &api_body.to_string(),
    );
    api_response["cookies"] = json!([{ "name": "session", "value": s.new_session, "path": "/", "httpOnly": true, "secure": true }]);

    let callback = format!("https://app.example/cb?code={}&state=xyz_state_77", s.code);
    let mut redirect = ok(json!([header("Location", &callback)]), "text/html", "");
    redirect["status"] = json!(302);
    redirect["redirectURL"] = json!(callback);

    let mut callback_request = get(
        &callback,
        json!([header("Referer", "https://idp.example/login")]),
    );
    callback_request["queryString"] =
        json!([{ "name": "code", "value": s.code }, { "name": "state", "value": "xyz_state_77" }]);
    let html = format!(
        "<html><body><script>var idToken = '{}';</script><pre>curl -H \"Authorization: Bearer {}\" https://api.example</pre></body></html>",
        s.id_token, s.opaque_bearer
    );

    let mut login = get(
        "https://idp.example/login",
        json!([header("Content-Type", "application/x-www-form-urlencoded")]),
    );
    login["method"] = json!("POST");
    login["postData"] = json!({
        "mimeType": "application/x-www-form-urlencoded",
        "text": format!("username=alice&password={}", s.password),
        "params": [{ "name": "username", "value": "alice" }, { "name": "password", "value": "correct horse battery staple" }],
    });

    let mut entries = vec![
        entry(token_request(&s.proof_token), nonce_challenge),
        entry(token_request(&s.proof_retry), token_response),
        entry(api_request, api_response),
        entry(login, empty_ok()),
        entry(
            get(
                "https://idp.example/authorize?client_id=app&response_type=code&state=xyz_state_77",
                json!([]),
            ),
            redirect,
        ),
        entry(callback_request, ok(json!([]), "text/html", &html)),
    ];
    entries[0]["comment"] = json!(format!("first attempt, proof {}", s.proof_token));
    let mut har = har(entries);
    har["log"]["pages"] = json!([{ "id": "page_1", "title": callback, "startedDateTime": "2025-01-01T00:00:00Z", "pageTimings": {} }]);
    har
}

#[test]
fn a_scrubbed_login_flow_holds_none_of_its_secrets() {
    let secrets = Secrets::new();
    let original = login_flow(&secrets);
    let before = serde_json::to_string_pretty(&original).unwrap();
    for secret in secrets.all() {
        assert!(before.contains(&secret), "the fixture lacks {secret}");
    }

    let (har, report) = scrubbed(original.clone());
    let after = serde_json::to_string_pretty(&har).unwrap();
    for secret in secrets.all() {
        assert!(!after.contains(&secret), "{secret} survived:\n{after}");
    }

    // Still a HAR, with what support needs.
    let parsed: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(parsed["log"]["version"], "1.2");
    let entries = parsed["log"]["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        original["log"]["entries"].as_array().unwrap().len()
    );
    for (entry, before) in entries
        .iter()
        .zip(original["log"]["entries"].as_array().unwrap())
    {
        assert!(entry["request"].is_object() && entry["response"].is_object());
        assert_eq!(entry["request"]["method"], before["request"]["method"]);
        assert_eq!(entry["response"]["status"], before["response"]["status"]);
        assert_eq!(entry["startedDateTime"], before["startedDateTime"]);
    }
    for kept in [
        "xyz_state_77",
        "use_dpop_nonce",
        "client_credentials",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "laptop-42",
        "username=alice",
        "https://api.example/v1/devices",
        "\\\"token_type\\\":\\\"DPoP\\\"",
        "\\\"expires_in\\\":300",
    ] {
        assert!(after.contains(kept), "{kept} was lost");
    }

    assert_eq!(report.headers["authorization"], 1);
    assert_eq!(report.headers["dpop"], 3);
    assert_eq!(report.headers["dpop-nonce"], 2);
    assert_eq!(report.headers["cookie"], 1);
    assert_eq!(report.headers["set-cookie"], 1);
    assert_eq!(report.headers["x-api-key"], 1);
    assert_eq!(report.cookies, 2);
    assert_eq!(report.form_fields["client_assertion"], 2);
    assert_eq!(report.form_fields["password"], 1);
    assert_eq!(report.json_fields["access_token"], 1);
    assert_eq!(report.json_fields["refresh_token"], 1);
    assert_eq!(report.json_fields["authorization"], 1);
    // The redirect (Location and redirectURL), the callback URL and the page title.
    assert_eq!(report.query_params["code"], 3);
    // The id token in the JSON body and in the HTML, and the comment's proof.
    assert_eq!(report.jwts, 3);
    assert_eq!(report.credentials, 1);
}

#[test]
fn scrubbing_twice_changes_nothing_the_second_time() {
    let (once, report) = scrubbed(login_flow(&Secrets::new()));
    assert!(!report.is_empty());
    let (twice, again) = scrubbed(once.clone());
    assert_eq!(twice, once);
    assert!(again.is_empty(), "{again}");
}

// ---------------------------------------------------------------------------
// Properties.

/// Pieces that meet the scanners' edge cases when strung together.
fn tricky_text() -> impl Strategy<Value = String> {
    let jwt = access_token();
    let jwe_header = Base64UrlUnpadded::encode_string(br#"{"alg":"dir","enc":"A256GCM"}"#);
    let fragment = prop_oneof![
        prop::sample::select(vec![
            "eyJhbGciOiJFUzI1NiJ9",
            ".",
            "..",
            "code",
            "password",
            "user[token]",
            "=",
            "==",
            "&",
            "?",
            "#",
            ";",
            "Bearer ",
            "DPoP ",
            "basic ",
            " ",
            "\"",
            "\\",
            "'",
            "%",
            "%5B",
            "%zz",
            "+",
            "[",
            "]",
            "{",
            "}",
            ":",
            ",",
            REDACTED,
            REDACTED_ENCODED,
            "holdfast]",
            "abcdefghijklmnopqrstu",
            "é",
            "\u{1F600}",
            "\n",
        ])
        .prop_map(str::to_owned),
        Just(jwt),
        Just(jwe_header),
        "[a-zA-Z0-9_.~+/-]{0,24}",
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(fragment, 0..12).prop_map(|parts| parts.concat()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        tricky_text().prop_map(Value::String),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "log",
            "entries",
            "request",
            "response",
            "headers",
            "name",
            "value",
            "url",
            "queryString",
            "postData",
            "params",
            "text",
            "mimeType",
            "content",
            "encoding",
            "cookies",
            "redirectURL",
            "access_token",
            "code",
            "kty",
            "d",
            "token_type",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn name_value() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "Authorization",
            "DPoP",
            "Location",
            "Referer",
            "code",
            "state",
            "session"
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ];
    (name, tricky_text()).prop_map(|(name, value)| json!({ "name": name, "value": value }))
}

/// A text body: JSON, form, plain, maybe base64.
fn body() -> impl Strategy<Value = Value> {
    let mime = prop::sample::select(vec![
        "application/json",
        "application/x-www-form-urlencoded",
        "text/html",
        "",
    ]);
    let text = prop_oneof![tricky_text(), json_value().prop_map(|v| v.to_string())];
    (mime, text, any::<bool>()).prop_map(|(mime, text, base64)| {
        if base64 {
            json!({ "mimeType": mime, "text": Base64::encode_string(text.as_bytes()), "encoding": "base64" })
        } else {
            json!({ "mimeType": mime, "text": text })
        }
    })
}

fn har_entry() -> impl Strategy<Value = Value> {
    let list = || prop::collection::vec(name_value(), 0..4);
    let request = (tricky_text(), list(), list(), list(), body(), list()).prop_map(
        |(url, headers, query, cookies, post, params)| {
            let mut post = post;
            post["params"] = Value::Array(params);
            json!({ "method": "POST", "url": url, "headers": headers, "queryString": query, "cookies": cookies, "postData": post })
        },
    );
    let response = (list(), list(), body(), tricky_text()).prop_map(|(headers, cookies, content, redirect)| {
        json!({ "status": 200, "headers": headers, "cookies": cookies, "content": content, "redirectURL": redirect })
    });
    prop_oneof![
        (request, response, tricky_text())
            .prop_map(|(request, response, comment)| json!({ "request": request, "response": response, "comment": comment })),
        json_value(),
    ]
}

fn assert_idempotent(once: &Value) -> Result<(), TestCaseError> {
    let mut twice = once.clone();
    let again = scrub(&mut twice).unwrap();
    prop_assert!(again.is_empty(), "second pass masked {again}");
    prop_assert_eq!(&twice, once);
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics(mut value in json_value()) {
        let _ = scrub(&mut value);
    }

    #[test]
    fn arbitrary_har_keeps_its_entries_and_is_scrubbed_once(
        entries in prop::collection::vec(har_entry(), 0..4),
        extra in json_value(),
    ) {
        let mut value = har(entries.clone());
        value["log"]["comment"] = extra;
        scrub(&mut value).unwrap();
        prop_assert_eq!(value["log"]["entries"].as_array().unwrap().len(), entries.len());
        assert_idempotent(&value)?;
    }

    #[test]
    fn text_scans_never_panic_and_are_idempotent(text in tricky_text()) {
        let mut report = ScrubReport::default();
        let once = super::scan::scan_text(&text, ParamKind::Query, &mut report).unwrap_or(text);
        let mut again = ScrubReport::default();
        prop_assert_eq!(super::scan::scan_text(&once, ParamKind::Query, &mut again), None);
        prop_assert!(again.is_empty());
    }
}
