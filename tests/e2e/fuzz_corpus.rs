//! The fuzz corpora (`fuzz/corpus/<target>/`) replayed through the harnesses
//! the fuzzer runs (`holdfast_tests::fuzz`), so whatever a fuzzer once found
//! fails `cargo test` if it comes back; and the token endpoint's corpus sent
//! to the real endpoint, which keeps the harness's copy of the form in step
//! with the handler.
//!
//! `write_seeds` (ignored) regenerates the seeds that need a key or a clock:
//! `cargo test -p holdfast-tests --test e2e fuzz_corpus::write_seeds -- --ignored`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use getrandom::SysRng;
use holdfast_hw::attestation::x509::Certificate;
use holdfast_proto::{
    AccessToken, Htu, JwtHeader, ProofRequest, Signer as _, UnixTime, build_proof, sign_jwt,
};
use holdfast_tests::fuzz::{
    self, AUDIENCE, DEVICE_ID, EXACT_NONCE, FormOutcome, ISSUER, ISSUER_KID, ISSUER_URL, NOW,
    ProofFlags, RESOURCE_HTU, RFC_ACCESS_TOKEN, SIGNED, SIGNED_HEADER, TARGETS, TOKEN_ENDPOINT,
    TOKEN_HTU, Verdict,
};
use serde_json::{Value, json};

use crate::support::Server;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Every file keeps every invariant, and every corpus still holds inputs
/// that pass the target's main check and inputs that fail it (so the
/// checks behind a signature stay covered).
#[test]
fn every_corpus_file_passes_its_harness() {
    let mut failed = Vec::new();
    for (target, harness) in TARGETS {
        let files = corpus(target);
        let (mut accepted, mut refused) = (0, 0);
        for path in files {
            let data = fs::read(&path).unwrap();
            match catch_unwind(AssertUnwindSafe(|| harness(&data))) {
                Ok(Verdict::Accepted) => accepted += 1,
                Ok(Verdict::Refused) => refused += 1,
                Err(_) => failed.push(path),
            }
        }
        assert!(
            accepted > 0 && refused > 0,
            "fuzz/corpus/{target}: {accepted} accepted and {refused} refused inputs"
        );
    }
    assert!(
        failed.is_empty(),
        "corpus files that break an invariant (messages above): {failed:#?}"
    );
}

/// The harness predicts the store-free part of the token endpoint from its
/// copy of the form; the real endpoint (with an empty store, and a `DPoP`
/// header that is present but not a proof) must answer the same.
#[tokio::test]
async fn token_endpoint_answers_every_corpus_body_as_the_harness_predicts() {
    let server = Server::start(|_| {}).await;
    let client = reqwest::Client::new();
    for path in corpus("token_form") {
        let body = fuzz::token_form_body(&fs::read(&path).unwrap());
        let (status, code, description) = match fuzz::token_form_outcome(&body) {
            FormOutcome::Refused {
                status,
                code,
                description,
            } => (status.as_u16(), code, description),
            // The store knows no device and no refresh token.
            FormOutcome::ClientCredentials { .. } => {
                (401, "invalid_client", "unknown client".into())
            }
            FormOutcome::RefreshToken { .. } => {
                (400, "invalid_grant", "unknown refresh token".into())
            }
            other => panic!("{}: unexpected outcome {other:?}", path.display()),
        };
        let response = client
            .post(format!("{}/token", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("dpop", "not-a-proof")
            .body(body)
            .send()
            .await
            .unwrap();
        let got_status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            (
                got_status,
                answer["error"].as_str(),
                answer["error_description"].as_str()
            ),
            (status, Some(code), Some(description.as_str())),
            "{}",
            path.display()
        );
    }
}

/// Regenerates the seeds that need a key, a clock or a nonce secret. The
/// static seeds (RFC examples, hand-written edge cases) are committed as
/// they are.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    dpop_proof_seeds();
    jwk_seeds();
    token_form_seeds();
    har_scrub_seeds();
    access_token_seeds();
    tpm_structures_seeds();
    x509_cert_seeds();
    piv_chain_seeds();
    tpm_evidence_seeds();
}

fn write(target: &str, name: &str, data: impl AsRef<[u8]>) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), data).unwrap();
}

fn signed(flags: Option<u8>, claims: &Value) -> Vec<u8> {
    let mut data = vec![SIGNED];
    data.extend(flags);
    data.extend(serde_json::to_vec(claims).unwrap());
    data
}

fn signed_header(header: &Value, claims: &Value) -> Vec<u8> {
    let mut data = vec![SIGNED_HEADER];
    data.extend(serde_json::to_vec(header).unwrap());
    data.push(b'\n');
    data.extend(serde_json::to_vec(claims).unwrap());
    data
}

fn rfc_vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/tests/data/rfc_vectors.json");
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn dpop_proof_seeds() {
    let t = "dpop_proof";
    for vector in rfc_vectors()["rfc9449"].as_array().unwrap() {
        let figure = vector["figure"].as_str().unwrap();
        write(
            t,
            &format!("rfc9449-figure-{figure}"),
            vector["proof"].as_str().unwrap(),
        );
    }
    let key = fuzz::device_key();
    let now = UnixTime::from_secs(NOW);
    let token_htu = Htu::parse(TOKEN_HTU).unwrap();
    let resource_htu = Htu::parse(RESOURCE_HTU).unwrap();
    let rfc_token = AccessToken::new(RFC_ACCESS_TOKEN);
    let request = |htm, htu, access_token| ProofRequest {
        htm,
        htu,
        nonce: None,
        access_token,
    };
    let token_request = request("POST", &token_htu, None);
    let proof = build_proof(key, &mut SysRng, &token_request, now).unwrap();
    write(t, "built-token-request", proof);
    let resource_request = request("GET", &resource_htu, Some(&rfc_token));
    let proof = build_proof(key, &mut SysRng, &resource_request, now).unwrap();
    write(t, "built-resource-request-with-ath", proof);

    let claims = |extra: Value| {
        let mut claims =
            json!({"jti": "fuzz-jti-0000000001", "htm": "POST", "htu": TOKEN_HTU, "iat": NOW});
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let ath = holdfast_proto::ath(RFC_ACCESS_TOKEN);
    let resource = json!({"htm": "GET", "htu": RESOURCE_HTU, "ath": ath});
    let nonce = fuzz::nonce_issuer().issue(now);
    let cases = [
        ("signed-token-request", 0, claims(json!({}))),
        (
            "signed-resource-request",
            ProofFlags::RESOURCE,
            claims(resource.clone()),
        ),
        (
            "signed-exact-nonce",
            ProofFlags::NONCE_EXACT,
            claims(json!({"nonce": EXACT_NONCE})),
        ),
        (
            "signed-issuer-nonce",
            ProofFlags::NONCE_ISSUER,
            claims(json!({"nonce": nonce})),
        ),
        (
            "signed-bound-to-device",
            ProofFlags::BOUND_DEVICE | ProofFlags::RESOURCE,
            claims(resource.clone()),
        ),
        (
            "signed-bound-to-other-key",
            ProofFlags::BOUND_OTHER,
            claims(json!({})),
        ),
        ("signed-missing-jti", 0, claims(json!({"jti": null}))),
        ("signed-empty-jti", 0, claims(json!({"jti": ""}))),
        (
            "signed-long-jti",
            0,
            claims(json!({"jti": "j".repeat(129)})),
        ),
        ("signed-iat-too-old", 0, claims(json!({"iat": NOW - 61}))),
        ("signed-iat-in-future", 0, claims(json!({"iat": NOW + 6}))),
        ("signed-iat-string", 0, claims(json!({"iat": "1562262620"}))),
        ("signed-htm-lowercase", 0, claims(json!({"htm": "post"}))),
        (
            "signed-htu-query-fragment",
            0,
            claims(json!({"htu": "https://SERVER.example.com:443/token?x=1#f"})),
        ),
        (
            "signed-htu-other-path",
            0,
            claims(json!({"htu": "https://server.example.com/token/"})),
        ),
        (
            "signed-ath-mismatch",
            ProofFlags::RESOURCE,
            claims(json!({"htm": "GET", "htu": RESOURCE_HTU, "ath": "x"})),
        ),
        (
            "signed-wrong-nonce",
            ProofFlags::NONCE_ISSUER,
            claims(json!({"nonce": EXACT_NONCE})),
        ),
        ("signed-claims-array", 0, json!([1, 2])),
    ];
    for (name, flags, claims) in cases {
        write(t, name, signed(Some(flags), &claims));
    }
    let jwk: Value = serde_json::from_str(&key.public_jwk().to_json()).unwrap();
    let header = |extra: Value| {
        let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        for (name, value) in extra.as_object().unwrap() {
            header[name] = value.clone();
        }
        header
    };
    let p384 = json!({"kty": "EC", "crv": "P-384",
        "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
    let mut with_d = jwk.clone();
    with_d["d"] = json!("AAAA");
    let headers = [
        ("header-alg-none", header(json!({"alg": "none"}))),
        ("header-alg-hs256", header(json!({"alg": "HS256"}))),
        ("header-alg-es384", header(json!({"alg": "ES384"}))),
        ("header-typ-jwt", header(json!({"typ": "JWT"}))),
        ("header-jwk-private", header(json!({"jwk": with_d}))),
        (
            "header-jwk-oct",
            header(json!({"jwk": {"kty": "oct", "k": "AAAA"}})),
        ),
        ("header-jwk-p384", header(json!({"jwk": p384}))),
        ("header-no-jwk", header(json!({"jwk": null, "kid": "k"}))),
        ("header-crit", header(json!({"crit": ["exp"]}))),
    ];
    for (name, header) in headers {
        write(t, name, signed_header(&header, &claims(json!({}))));
    }
}

fn jwk_seeds() {
    let t = "jwk";
    let vectors = rfc_vectors();
    write(
        t,
        "rfc9449-ec",
        vectors["rfc9449"][0]["header"]["jwk"].to_string(),
    );
    write(t, "rfc7638-rsa", vectors["rfc7638_rsa"]["jwk"].to_string());
    write(
        t,
        "rfc8037-ed25519",
        vectors["rfc8037_ed25519"]["jwk"].to_string(),
    );
    let device: Value = serde_json::from_str(&fuzz::device_key().public_jwk().to_json()).unwrap();
    write(t, "device-key", device.to_string());
    let x = device["x"].as_str().unwrap();
    let y = device["y"].as_str().unwrap();
    let cases = [
        ("ec-members-reordered-spaced", format!(" {{ \"y\" : \"{y}\" ,\n \"x\":\"{x}\", \"kty\":\"EC\", \"crv\":\"P-256\" }}")),
        ("ec-extra-members", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","kid":"k1","use":"sig","alg":"ES256","key_ops":["verify"]}}"#)),
        ("ec-private-d", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","d":"AAAA"}}"#)),
        ("ec-duplicate-x", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","x":"{y}","y":"{y}"}}"#)),
        ("ec-missing-y", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}"}}"#)),
        ("ec-padded-x", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}=","y":"{y}"}}"#)),
        ("ec-escaped-kty", format!(r#"{{"kty":"\u0045C","crv":"P-256","x":"{x}","y":"{y}"}}"#)),
        ("ec-not-on-curve", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{x}"}}"#)),
        ("ec-p521", r#"{"kty":"EC","crv":"P-521","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.to_owned()),
        ("oct", r#"{"kty":"oct","k":"AAAA"}"#.to_owned()),
        ("rsa-private-p", r#"{"kty":"RSA","n":"AQAB","e":"AQAB","p":"AQAB"}"#.to_owned()),
        ("rsa-short", r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.to_owned()),
        ("unknown-kty", r#"{"kty":"XYZ"}"#.to_owned()),
        ("not-an-object", "[\"kty\",\"EC\"]".to_owned()),
        ("big-number-member", format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}","z":1e999}}"#)),
    ];
    for (name, text) in cases {
        write(t, name, text);
    }
}

fn token_form_seeds() {
    let t = "token_form";
    let assertion_type = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
    let cc = format!("grant_type=client_credentials&client_assertion_type={assertion_type}");
    let claims = |extra: Value| {
        let mut claims = json!({"iss": DEVICE_ID, "sub": DEVICE_ID, "aud": TOKEN_ENDPOINT,
            "exp": NOW + 60, "iat": NOW, "jti": "assertion-jti-1"});
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let signed_form = |claims: Value, form: &str| {
        let mut data = vec![SIGNED];
        data.extend(serde_json::to_vec(&claims).unwrap());
        data.push(b'\n');
        data.extend(form.as_bytes());
        data
    };
    let signed_cases = [
        ("signed-client-credentials", claims(json!({}))),
        (
            "signed-aud-issuer-array",
            claims(json!({"aud": ["x", ISSUER_URL]})),
        ),
        ("signed-iss-not-sub", claims(json!({"iss": "d-Other"}))),
        ("signed-expired", claims(json!({"exp": NOW - 10}))),
        (
            "signed-lifetime-too-long",
            claims(json!({"exp": NOW + 3600})),
        ),
        ("signed-nbf-future", claims(json!({"nbf": NOW + 60}))),
        (
            "signed-other-client",
            claims(json!({"iss": "d-Someone", "sub": "d-Someone"})),
        ),
        ("signed-empty-jti", claims(json!({"jti": ""}))),
    ];
    for (name, claims) in signed_cases {
        write(t, name, signed_form(claims, &cc));
    }
    let cases = [
        (
            "refresh",
            "grant_type=refresh_token&refresh_token=abc".to_owned(),
        ),
        (
            "refresh-missing-token",
            "grant_type=refresh_token&refresh_token=".to_owned(),
        ),
        ("grant-type-missing", "refresh_token=abc".to_owned()),
        (
            "grant-type-unsupported",
            "grant_type=password&username=a&password=b".to_owned(),
        ),
        (
            "repeated-parameter",
            "grant_type=refresh_token&grant_type=refresh_token".to_owned(),
        ),
        (
            "wrong-assertion-type",
            "grant_type=client_credentials&client_assertion_type=basic&client_assertion=x"
                .to_owned(),
        ),
        ("assertion-missing", cc.clone()),
        ("assertion-garbage", format!("{cc}&client_assertion=a.b.c")),
        (
            "percent-and-plus",
            "grant_type=refresh%5Ftoken&refresh_token=a+b%20c%2B".to_owned(),
        ),
        (
            "invalid-utf8-escape",
            "grant_type=%FF%FE&refresh_token=x".to_owned(),
        ),
        ("empty", String::new()),
        // The refusal of a repeated parameter quotes its name whole: a
        // long name makes an unbounded error_description.
        (
            "regression-repeated-long-name",
            format!("{0}=1&{0}=2", "n".repeat(600)),
        ),
    ];
    for (name, body) in cases {
        write(t, name, body);
    }
}

fn har_scrub_seeds() {
    let t = "har_scrub";
    let key = fuzz::device_key();
    let htu = Htu::parse(RESOURCE_HTU).unwrap();
    let token = AccessToken::new(RFC_ACCESS_TOKEN);
    let request = ProofRequest {
        htm: "GET",
        htu: &htu,
        nonce: None,
        access_token: Some(&token),
    };
    let proof = build_proof(key, &mut SysRng, &request, UnixTime::from_secs(NOW)).unwrap();
    let access_token = issuer_token(json!({}));
    let entry = json!({
        "startedDateTime": "2025-01-01T00:00:00.000Z",
        "request": {
            "method": "GET",
            "url": format!("{RESOURCE_HTU}?code=abc123&state=xyz"),
            "headers": [
                {"name": "Authorization", "value": format!("DPoP {access_token}")},
                {"name": "DPoP", "value": proof},
                {"name": "Cookie", "value": "sid=s3cr3t"},
                {"name": "Accept", "value": "application/json"}
            ],
            "cookies": [{"name": "sid", "value": "s3cr3t"}],
            "queryString": [{"name": "code", "value": "abc123"}, {"name": "state", "value": "xyz"}]
        },
        "response": {
            "status": 200,
            "headers": [
                {"name": "DPoP-Nonce", "value": EXACT_NONCE},
                {"name": "WWW-Authenticate", "value": "DPoP error=\"use_dpop_nonce\", algs=\"ES256\""}
            ],
            "cookies": [],
            "content": {
                "mimeType": "application/json",
                "text": json!({"access_token": access_token, "refresh_token": "r-123", "expires_in": 300, "note": format!("DPoP {proof}")}).to_string()
            },
            "redirectURL": ""
        }
    });
    let form_entry = json!({
        "request": {
            "method": "POST",
            "url": TOKEN_HTU,
            "headers": [{"name": "authorization", "value": "Bearer 0123456789abcdef0123"}],
            "postData": {
                "mimeType": "application/x-www-form-urlencoded",
                "text": "grant_type=refresh_token&refresh_token=r-123&client_assertion=eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
                "params": [{"name": "refresh_token", "value": "r-123"}]
            }
        },
        "response": {
            "headers": [{"name": "Location", "value": "https://app.example/cb#access_token=abc&state=1"}],
            "content": {"mimeType": "text/plain", "encoding": "base64", "text": "QmVhcmVyIDAxMjM0NTY3ODlhYmNkZWYwMTIz"}
        }
    });
    let har = |entries: Value| json!({"log": {"version": "1.2", "creator": {"name": "fuzz", "version": "1"}, "entries": entries}});
    write(
        t,
        "dpop-session",
        serde_json::to_string_pretty(&har(json!([entry]))).unwrap(),
    );
    write(
        t,
        "token-endpoint-form",
        serde_json::to_string_pretty(&har(json!([form_entry]))).unwrap(),
    );
    write(t, "empty-entries", har(json!([])).to_string());
    write(t, "no-entries", json!({"log": {}}).to_string());
    write(t, "not-a-har", json!({"entries": []}).to_string());
    let mut jwk_body = har(
        json!([{"response": {"content": {"mimeType": "application/json",
        "text": json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}]}).to_string()}}}]),
    );
    jwk_body["log"]["comment"] = json!(format!("seen: DPoP {proof}"));
    write(t, "jwk-private-member-and-comment", jwk_body.to_string());
}

fn issuer_token(extra: Value) -> String {
    let mut claims = json!({"iss": ISSUER, "sub": "p-alice", "aud": AUDIENCE, "exp": NOW + 300,
        "iat": NOW, "jti": "t-1", "client_id": DEVICE_ID, "sid": "s-1", "scope": "read",
        "cnf": {"jkt": fuzz::device_key().public_jwk().thumbprint().as_str()}, "amr": ["swk", "pop"]});
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    let header = JwtHeader {
        typ: "at+jwt",
        kid: Some(ISSUER_KID),
        jwk: None,
    };
    sign_jwt(fuzz::issuer_key(), &header, &claims).unwrap()
}

fn access_token_seeds() {
    let t = "access_token";
    write(t, "valid", issuer_token(json!({})));
    write(
        t,
        "valid-audience-array-nbf",
        issuer_token(json!({"aud": ["x", AUDIENCE], "nbf": NOW})),
    );
    write(
        t,
        "valid-ip-binding",
        issuer_token(
            json!({"ipb": {"mode": "same-prefix", "ip": "192.0.2.1", "v4_prefix": 24, "v6_prefix": 64}}),
        ),
    );
    write(t, "expired", issuer_token(json!({"exp": NOW - 10})));
    write(
        t,
        "wrong-audience",
        issuer_token(json!({"aud": "https://other.example"})),
    );
    write(t, "missing-cnf", issuer_token(json!({"cnf": null})));
    let claims: Value = {
        let token = issuer_token(json!({}));
        let payload = token.split('.').nth(1).unwrap().to_owned();
        use base64ct::{Base64UrlUnpadded, Encoding as _};
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(&payload).unwrap()).unwrap()
    };
    write(t, "signed-claims", signed(None, &claims));
    let mut future = claims.clone();
    future["nbf"] = json!(NOW + 60);
    write(t, "signed-not-yet-valid", signed(None, &future));
    let headers = [
        (
            "header-alg-none",
            json!({"typ": "at+jwt", "alg": "none", "kid": ISSUER_KID}),
        ),
        (
            "header-alg-es384",
            json!({"typ": "at+jwt", "alg": "ES384", "kid": ISSUER_KID}),
        ),
        (
            "header-typ-jwt",
            json!({"typ": "JWT", "alg": "ES256", "kid": ISSUER_KID}),
        ),
        (
            "header-typ-media-type",
            json!({"typ": "application/at+jwt", "alg": "ES256", "kid": ISSUER_KID}),
        ),
        (
            "header-unknown-kid",
            json!({"typ": "at+jwt", "alg": "ES256", "kid": "other"}),
        ),
        ("header-no-kid", json!({"typ": "at+jwt", "alg": "ES256"})),
    ];
    for (name, header) in headers {
        write(t, name, signed_header(&header, &claims));
    }
}

fn hw_data(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hw/tests/data")
        .join(rel);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pem_ders(rel: &str) -> Vec<Vec<u8>> {
    Certificate::from_pem(&String::from_utf8(hw_data(rel)).unwrap())
        .unwrap()
        .iter()
        .map(|cert| cert.der().to_vec())
        .collect()
}

fn cert_der(rel: &str) -> Vec<u8> {
    if rel.ends_with(".pem") {
        pem_ders(rel).remove(0)
    } else {
        hw_data(rel)
    }
}

fn b64url_field(json: &Value, name: &str) -> Vec<u8> {
    use base64ct::{Base64UrlUnpadded, Encoding as _};
    Base64UrlUnpadded::decode_vec(json[name].as_str().unwrap()).unwrap()
}

fn tpm_structures_seeds() {
    use base64ct::{Base64, Encoding as _};
    let t = "tpm_structures";
    for (name, rel) in [
        (
            "infineon-rsa",
            "tpm/go-attestation/ak-activation-infineon-rsa2048.json",
        ),
        (
            "gce-ecc",
            "tpm/go-attestation/ak-activation-gce-vtpm-eccp256.json",
        ),
    ] {
        let json: Value = serde_json::from_slice(&hw_data(rel)).unwrap();
        let params = &json["attestation_parameters_b64"];
        for (field, what) in [
            ("Public", "tpmt-public"),
            ("CreateAttestation", "tpms-attest-creation"),
            ("CreateSignature", "tpmt-signature"),
        ] {
            let bytes = Base64::decode_vec(params[field].as_str().unwrap()).unwrap();
            write(
                t,
                &format!("{name}-{what}-truncated"),
                &bytes[..bytes.len() - 1],
            );
            write(t, &format!("{name}-{what}"), bytes);
        }
    }
    let evidence: Value =
        serde_json::from_slice(&hw_data("tpm/swtpm/evidence/evidence-good.json")).unwrap();
    for (field, name) in [
        ("ak_public", "swtpm-ak-tpmt-public"),
        ("key_public", "swtpm-key-tpmt-public"),
        ("certify_info", "swtpm-tpms-attest-certify"),
        ("certify_signature", "swtpm-tpmt-signature"),
    ] {
        write(t, name, b64url_field(&evidence, field));
    }
}

fn x509_cert_seeds() {
    let t = "x509_cert";
    for (name, rel) in [
        (
            "ek-stm-rsa-nv-padded",
            "tpm/ek/stmicro/ek-rsa2048-st33htphahb4-as-read-from-nv.der",
        ),
        ("ek-stm-ecc", "tpm/ek/stmicro/ek-eccp256-st33htphahb4.der"),
        ("ek-swtpm-rsa", "tpm/swtpm/ek-rsa2048.der"),
        ("ek-swtpm-ecc-p384", "tpm/swtpm/ek-eccp384.der"),
        ("ek-gce-rsa", "tpm/ek/gce-vtpm/uca_tpm_rsa_enc_cert.pem"),
        ("ek-gce-ecc", "tpm/ek/gce-vtpm/pca_tpm_ecc_enc_cert.pem"),
        (
            "ca-nuvoton-root-2110",
            "tpm/ek/nuvoton/nuvoton-tpm-root-ca-2110.der",
        ),
        (
            "ca-stm-ek-intermediate-05",
            "tpm/ek/stmicro/stm-tpm-ek-intermediate-ca-05.pem",
        ),
        (
            "ca-globalsign-tpm-root",
            "tpm/ek/stmicro/globalsign-trusted-platform-module-root-ca.pem",
        ),
        ("ca-gce-ek-root", "tpm/ek/gce-vtpm/tpm_ek_root_1.pem"),
        ("ca-swtpm-localca", "tpm/swtpm/swtpm-localca.pem"),
        (
            "ca-microsoft-tpm-root-2014",
            "tpm/roots/microsoft-tpm-root-ca-2014.pem",
        ),
        (
            "yubikey-f9-5.4.3",
            "yubikey/yk5-fw5.4.3-sn15732500-slot9a/f9.pem",
        ),
        (
            "yubikey-slot-5.4.3",
            "yubikey/yk5-fw5.4.3-sn15732500-slot9a/slot-9a.pem",
        ),
        (
            "yubikey-f9-5.7.4",
            "yubikey/yk5c-fw5.7.4-sn33162554-slot82/f9.der",
        ),
        (
            "yubikey-f9-fips",
            "yubikey/yk5fips-fw5.4.3-sn25516106-slot9c/f9.pem",
        ),
        ("x509-rsa-root", "x509/rsa-root.pem"),
        ("x509-rsa-leaf-ec", "x509/rsa-leaf-ec.pem"),
        ("x509-self-signed-p256", "x509/self-signed-p256.pem"),
    ] {
        write(t, name, cert_der(rel));
    }
    let slot = pem_der(fuzz::TEST_SLOT_PEM);
    let mut trailing = slot.clone();
    trailing.push(0x42);
    write(t, "test-piv-slot-trailing-byte", trailing);
    write(t, "test-piv-slot-truncated", &slot[..slot.len() - 1]);
    write(t, "test-piv-slot", slot);
}

fn pem_der(text: &str) -> Vec<u8> {
    Certificate::from_pem(text).unwrap()[0].der().to_vec()
}

/// The `tbsCertificate` element of a DER certificate.
fn tbs_of(cert: &[u8]) -> Vec<u8> {
    fn header(tlv: &[u8]) -> (usize, usize) {
        match tlv[1] {
            short @ 0..0x80 => (2, usize::from(short)),
            long => {
                let n = usize::from(long & 0x7f);
                let len = tlv[2..2 + n]
                    .iter()
                    .fold(0, |acc, b| acc * 256 + usize::from(*b));
                (2 + n, len)
            }
        }
    }
    let (outer, _) = header(cert);
    let inner = &cert[outer..];
    let (head, len) = header(inner);
    inner[..head + len].to_vec()
}

fn piv_chain_seeds() {
    let t = "piv_chain";
    let pair = |slot: &[u8], f9: &[u8]| {
        let mut data = vec![0];
        data.extend(u16::try_from(slot.len()).unwrap().to_be_bytes());
        data.extend(slot);
        data.extend(f9);
        data
    };
    for dir in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw/tests/data/yubikey"))
        .unwrap()
    {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut f9 = None;
        let mut slot = None;
        for file in fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let rel = file
                .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw/tests/data"))
                .unwrap();
            let der = cert_der(rel.to_str().unwrap());
            if file
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("f9")
            {
                f9 = Some(der);
            } else {
                slot = Some(der);
            }
        }
        write(
            t,
            &format!("yubikey-{name}"),
            pair(&slot.unwrap(), &f9.unwrap()),
        );
    }
    let slot = pem_der(fuzz::TEST_SLOT_PEM);
    let f9 = pem_der(fuzz::TEST_F9_PEM);
    write(t, "test-pki-pair", pair(&slot, &f9));
    write(t, "test-pki-pair-swapped", pair(&f9, &slot));
    let yk4_f9 = cert_der("yubikey/yk4-fw4.3.7-u2froot-slot9a/f9.pem");
    let yk5_slot = cert_der("yubikey/yk5-fw5.4.3-sn15732500-slot9a/slot-9a.pem");
    write(t, "yubikey-cross-paired", pair(&yk5_slot, &yk4_f9));
    let mut signed_slot = vec![SIGNED];
    signed_slot.extend(tbs_of(&slot));
    write(t, "signed-test-slot-tbs", signed_slot);
    let mut signed_f9 = vec![SIGNED_HEADER];
    signed_f9.extend(tbs_of(&f9));
    write(t, "signed-test-f9-tbs", signed_f9);
}

fn tpm_evidence_seeds() {
    let t = "tpm_evidence";
    for name in ["good", "duplicable", "other-ak", "restricted"] {
        write(
            t,
            &format!("swtpm-{name}"),
            hw_data(&format!("tpm/swtpm/evidence/evidence-{name}.json")),
        );
    }
}
