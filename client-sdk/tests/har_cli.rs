//! `holdfast har scrub` end to end: the binary masks a HAR's secrets, says
//! what it removed, refuses what is not a HAR, and never clobbers a file it
//! was not told to.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};

const REFRESH_TOKEN: &str = "rt_8Qm3vZx7LkP2wR9sT4uY6nB1cD5eF0gH";
const SESSION: &str = "s%3Aq9X2vL7mN4pR8tW1yZ3b";
const CODE: &str = "SplxlOBeZQQYbYS6WxSbIA";

fn holdfast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(args)
        .output()
        .unwrap()
}

fn holdfast_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses before reading closes the pipe early.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn access_token() -> String {
    let encode = |v: Value| Base64UrlUnpadded::encode_string(v.to_string().as_bytes());
    format!(
        "{}.{}.c2lnbmF0dXJlX29mX3RoZV9hY2Nlc3NfdG9rZW4",
        encode(json!({ "alg": "ES256", "typ": "at+jwt" })),
        encode(
            json!({ "sub": "device-42", "cnf": { "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } })
        ),
    )
}

/// A token response and an API call made with its token.
fn capture() -> Value {
    let token = access_token();
    let body = json!({ "access_token": token, "token_type": "DPoP", "expires_in": 300, "refresh_token": REFRESH_TOKEN });
    json!({ "log": { "version": "1.2", "creator": { "name": "test", "version": "1" }, "entries": [
        {
            "request": { "method": "POST", "url": "https://issuer.example/token", "headers": [
                { "name": "DPoP", "value": "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln" },
            ], "cookies": [], "queryString": [] },
            "response": { "status": 200, "headers": [{ "name": "Content-Type", "value": "application/json" }],
                          "cookies": [], "content": { "mimeType": "application/json", "text": body.to_string() } },
        },
        {
            "request": { "method": "GET", "url": format!("https://app.example/cb?code={CODE}&state=kept_state"),
                         "headers": [
                             { "name": "Authorization", "value": format!("DPoP {token}") },
                             { "name": "Cookie", "value": format!("session={SESSION}") },
                         ],
                         "cookies": [{ "name": "session", "value": SESSION }],
                         "queryString": [{ "name": "code", "value": CODE }, { "name": "state", "value": "kept_state" }] },
            "response": { "status": 200, "headers": [], "cookies": [],
                          "content": { "mimeType": "text/html", "text": format!("<p>{token}</p>") } },
        },
    ] } })
}

fn secrets() -> Vec<String> {
    vec![
        access_token(),
        REFRESH_TOKEN.to_owned(),
        SESSION.to_owned(),
        CODE.to_owned(),
    ]
}

fn assert_scrubbed(text: &str) {
    let har: Value = serde_json::from_str(text).unwrap();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 2);
    for secret in secrets() {
        assert!(!text.contains(&secret), "{secret} survived:\n{text}");
    }
    assert!(text.contains("kept_state"));
}

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

#[test]
fn scrubs_a_file_to_output_and_summarises_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.har");
    let output = dir.path().join("clean.har");
    write(&input, &capture());

    let run = holdfast(&[
        "har",
        "scrub",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(run.stdout.is_empty());
    let summary = stderr(&run);
    for part in [
        "removed:",
        "1 Authorization header",
        "1 DPoP header",
        "1 Cookie header",
        "1 cookie",
        "1 code (query)",
        "1 access_token (JSON)",
        "1 refresh_token (JSON)",
        "1 JWT in text",
    ] {
        assert!(summary.contains(part), "{part} missing from: {summary}");
    }
    assert_scrubbed(&std::fs::read_to_string(&output).unwrap());
    // The input is left as it was.
    let original: Value = serde_json::from_slice(&std::fs::read(&input).unwrap()).unwrap();
    assert_eq!(original, capture());
}

#[test]
fn scrubs_standard_input_to_standard_output() {
    let run = holdfast_stdin(&["har", "scrub", "-"], &capture().to_string());
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_scrubbed(&String::from_utf8(run.stdout.clone()).unwrap());
    assert!(stderr(&run).contains("removed:"));
}

#[test]
fn refuses_json_that_is_not_a_har() {
    let run = holdfast_stdin(&["har", "scrub", "-"], r#"{"entries": []}"#);
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    assert!(stderr(&run).contains("not a HAR"), "{}", stderr(&run));

    let run = holdfast_stdin(&["har", "scrub", "-"], r#"{"log": {"version": "1.2"}}"#);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("log.entries"), "{}", stderr(&run));
}

#[test]
fn refuses_a_file_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("notes.txt");
    std::fs::write(&input, "Authorization: DPoP abc").unwrap();
    let output = dir.path().join("out.har");
    let run = holdfast(&[
        "har",
        "scrub",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("is not JSON"), "{}", stderr(&run));
    assert!(!output.exists());
}

#[test]
fn refuses_to_overwrite_an_existing_output_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.har");
    let output = dir.path().join("clean.har");
    write(&input, &capture());
    std::fs::write(&output, "keep me").unwrap();

    let run = holdfast(&[
        "har",
        "scrub",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("--force"), "{}", stderr(&run));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "keep me");

    let run = holdfast(&[
        "har",
        "scrub",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_scrubbed(&std::fs::read_to_string(&output).unwrap());
}

#[test]
fn refuses_to_write_over_the_input_unless_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capture.har");
    write(&input, &capture());
    let before = std::fs::read(&input).unwrap();

    let same = input.to_str().unwrap();
    let run = holdfast(&["har", "scrub", same, "-o", same, "--force"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("--in-place"), "{}", stderr(&run));
    assert_eq!(std::fs::read(&input).unwrap(), before);

    let run = holdfast(&["har", "scrub", same, "--in-place"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(run.stdout.is_empty());
    assert_scrubbed(&std::fs::read_to_string(&input).unwrap());
    // Nothing is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn in_place_needs_a_file() {
    let run = holdfast_stdin(&["har", "scrub", "-", "--in-place"], &capture().to_string());
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stdout.is_empty());
}
