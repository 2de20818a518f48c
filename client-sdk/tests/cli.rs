//! The `holdfast` binary end to end: RFC 9449 examples verify, each broken
//! variant is refused with its wire error, keys round-trip.

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
use serde_json::Value;

const FIG13_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const FIG13_HTU: &str = "https://resource.example.org/protectedresource";
const FIG13_IAT: &str = "1562262618";
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../proto/tests/data/rfc_vectors.json")).unwrap()
}

fn figure(n: &str) -> Value {
    vectors()["rfc9449"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["figure"] == n)
        .unwrap()
        .clone()
}

fn holdfast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(args)
        .env_remove("HOLDFAST_ACCESS_TOKEN")
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Verifies Figure 13 with `extra` arguments replacing the defaults.
fn verify_fig13(
    proof: &str,
    htm: &str,
    htu: &str,
    token: Option<&str>,
    now: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "dpop", "verify", proof, "--htm", htm, "--htu", htu, "--now", now,
    ];
    if let Some(token) = token {
        args.extend(["--access-token", token]);
    }
    args.extend(extra);
    holdfast(&args)
}

fn assert_refused(output: &Output, error: &str, check: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let result = json(output);
    assert_eq!(result["valid"], false);
    assert_eq!(result["error"], error, "{result}");
    assert_eq!(result["check"], check, "{result}");
    assert!(result["description"].as_str().unwrap().len() > 10);
}

/// Figure 2 with its header replaced (payload and signature kept).
fn with_header(header: &Value) -> String {
    let proof = figure("2")["proof"].as_str().unwrap().to_owned();
    let (_, rest) = proof.split_once('.').unwrap();
    format!(
        "{}.{rest}",
        Base64UrlUnpadded::encode_string(header.to_string().as_bytes())
    )
}

#[test]
fn rfc9449_figures_verify_at_their_time() {
    for f in vectors()["rfc9449"].as_array().unwrap() {
        let iat = f["iat"].to_string();
        let mut args = vec![
            "dpop",
            "verify",
            f["proof"].as_str().unwrap(),
            "--htm",
            f["htm"].as_str().unwrap(),
            "--htu",
            f["htu"].as_str().unwrap(),
            "--now",
            &iat,
        ];
        if let Some(token) = f["access_token"].as_str() {
            args.extend(["--access-token", token]);
        }
        let output = holdfast(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "Figure {}: {}",
            f["figure"],
            String::from_utf8_lossy(&output.stdout)
        );
        let result = json(&output);
        assert_eq!(result["valid"], true);
        assert_eq!(result["jkt"], RFC_JKT);
        assert_eq!(result["iat"], f["iat"]);
    }
}

#[test]
fn refuses_each_broken_variant_of_figure_13() {
    let fig = figure("13");
    let proof = fig["proof"].as_str().unwrap();
    let token = Some(FIG13_TOKEN);
    let idp = "invalid_dpop_proof";
    assert_refused(
        &verify_fig13(proof, "POST", FIG13_HTU, token, FIG13_IAT, &[]),
        idp,
        "htm_mismatch",
    );
    assert_refused(
        &verify_fig13(
            proof,
            "GET",
            "https://resource.example.org/other",
            token,
            FIG13_IAT,
            &[],
        ),
        idp,
        "htu_mismatch",
    );
    assert_refused(
        &verify_fig13(proof, "GET", FIG13_HTU, token, "1562262679", &[]),
        idp,
        "iat_too_old",
    );
    assert_refused(
        &verify_fig13(proof, "GET", FIG13_HTU, token, "1562262612", &[]),
        idp,
        "iat_in_future",
    );
    assert_refused(
        &verify_fig13(proof, "GET", FIG13_HTU, Some("stolen"), FIG13_IAT, &[]),
        idp,
        "ath_mismatch",
    );
    assert_refused(
        &verify_fig13(
            proof,
            "GET",
            FIG13_HTU,
            token,
            FIG13_IAT,
            &["--nonce", "n-1"],
        ),
        "use_dpop_nonce",
        "nonce_missing",
    );
    assert_refused(
        &verify_fig13(
            proof,
            "GET",
            FIG13_HTU,
            token,
            FIG13_IAT,
            &["--alg", "EdDSA"],
        ),
        idp,
        "alg_not_allowed",
    );
    // A flipped signature bit.
    let mut tampered = proof.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'Q' } else { 'A' });
    assert_refused(
        &verify_fig13(&tampered, "GET", FIG13_HTU, token, FIG13_IAT, &[]),
        idp,
        "invalid_signature",
    );
    // The window is configurable: the stale proof passes with a longer one.
    let late = verify_fig13(
        proof,
        "GET",
        FIG13_HTU,
        token,
        "1562262679",
        &["--max-age", "120"],
    );
    assert_eq!(late.status.code(), Some(0));
}

#[test]
fn figure_2_with_an_access_token_lacks_ath() {
    let fig = figure("2");
    let output = holdfast(&[
        "dpop",
        "verify",
        fig["proof"].as_str().unwrap(),
        "--htm",
        "POST",
        "--htu",
        "https://server.example.com/token",
        "--now",
        "1562262616",
        "--access-token",
        FIG13_TOKEN,
    ]);
    assert_refused(&output, "invalid_dpop_proof", "ath_missing");
}

#[test]
fn refuses_forged_headers() {
    let header = figure("2")["header"].clone();
    let verify = |proof: &str| {
        holdfast(&[
            "dpop",
            "verify",
            proof,
            "--htm",
            "POST",
            "--htu",
            "https://server.example.com/token",
            "--now",
            "1562262616",
        ])
    };
    for alg in ["none", "HS256"] {
        let mut h = header.clone();
        h["alg"] = alg.into();
        assert_refused(
            &verify(&with_header(&h)),
            "invalid_dpop_proof",
            "alg_not_allowed",
        );
    }
    let mut h = header.clone();
    h["jwk"]["d"] = "bm90LWEtcmVhbC1rZXk".into();
    assert_refused(
        &verify(&with_header(&h)),
        "invalid_dpop_proof",
        "jwk_has_private_key",
    );
    let mut h = header.clone();
    h["typ"] = "JWT".into();
    assert_refused(
        &verify(&with_header(&h)),
        "invalid_dpop_proof",
        "typ_mismatch",
    );
    assert_refused(&verify("a.b"), "invalid_dpop_proof", "malformed");
}

#[test]
fn usage_errors_exit_2() {
    let fig = figure("13");
    let output = holdfast(&[
        "dpop",
        "verify",
        fig["proof"].as_str().unwrap(),
        "--htm",
        "GET",
        "--htu",
        "not a url",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--htu"));
    let output = holdfast(&[
        "dpop", "verify", "x", "--htm", "GET", "--htu", FIG13_HTU, "--alg", "HS256",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("never be allowed"));
    let output = holdfast(&["dpop", "verify", "x"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn jwk_thumbprints_of_published_keys() {
    let v = vectors();
    for (name, expected) in [
        ("rfc7638_rsa", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
        (
            "rfc8037_ed25519",
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        ),
    ] {
        let output = holdfast_stdin(&["jwk", "thumbprint", "-"], &v[name]["jwk"].to_string());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), expected);
    }
    let ec = figure("2")["header"]["jwk"].to_string();
    let output = holdfast_stdin(&["jwk", "thumbprint"], &ec);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), RFC_JKT);
}

#[test]
fn jwk_thumbprint_refuses_private_and_symmetric_keys() {
    let mut private = figure("2")["header"]["jwk"].clone();
    private["d"] = "bm90LWEtcmVhbC1rZXk".into();
    let output = holdfast_stdin(&["jwk", "thumbprint", "-"], &private.to_string());
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("private key member `d`"));
    let output = holdfast_stdin(
        &["jwk", "thumbprint", "-"],
        r#"{"kty":"oct","k":"c2VjcmV0"}"#,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("symmetric"));
}

#[test]
fn generate_sign_inspect_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("device.pem");
    let key_arg = key.to_str().unwrap();
    let generated = holdfast(&["key", "generate", "--software", "--out", key_arg]);
    assert!(generated.status.success());
    let generated = json(&generated);
    assert_eq!(generated["kind"], "software");
    check_mode_0600(&key);
    // Never overwritten.
    assert_eq!(
        holdfast(&["key", "generate", "--software", "--out", key_arg])
            .status
            .code(),
        Some(1)
    );

    let signed = holdfast(&[
        "dpop",
        "sign",
        "--key",
        key_arg,
        "--htm",
        "POST",
        "--htu",
        "https://api.example.com/x?q=1",
        "--access-token",
        "tok",
        "--nonce",
        "n-9",
        "--iat",
        "1700000000",
    ]);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let proof = String::from_utf8(signed.stdout).unwrap();

    let inspected = json(&holdfast(&["dpop", "inspect", proof.trim()]));
    assert_eq!(inspected["verified"], false);
    assert_eq!(inspected["claims"]["htu"], "https://api.example.com/x");
    assert_eq!(inspected["claims"]["nonce"], "n-9");
    assert_eq!(inspected["jkt"], generated["jkt"]);

    let verified = holdfast_stdin(
        &[
            "dpop",
            "verify",
            "-",
            "--htm",
            "POST",
            "--htu",
            "https://API.example.com:443/x",
            "--access-token",
            "tok",
            "--nonce",
            "n-9",
            "--now",
            "1700000010",
        ],
        &proof,
    );
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert_eq!(json(&verified)["jkt"], generated["jkt"]);
}

#[test]
fn inspect_refuses_garbage() {
    let output = holdfast(&["dpop", "inspect", "garbage"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a DPoP proof"));
}

#[cfg(unix)]
fn check_mode_0600(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[cfg(not(unix))]
fn check_mode_0600(_path: &Path) {}
