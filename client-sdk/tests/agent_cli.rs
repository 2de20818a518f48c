//! The `holdfast` agent and admin commands, run as a binary against a real
//! issuer served in-process on 127.0.0.1: enroll, token, request, status,
//! admin listing, codes and revocation, and the messages for a wrong or
//! expired code, a server that is down and hardware this build lacks.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use holdfast_proto::{Clock as _, SystemClock};
use serde_json::Value;

use support::{
    Issuer, assert_fails, assert_ok, assert_private, holdfast, json, state, stderr, stdout,
};

fn enroll(dir: &Path, url: &str, code: &str, name: &str) -> Output {
    holdfast(
        dir,
        &[
            "enroll",
            "--server",
            url,
            "--code",
            code,
            "--software",
            "--name",
            name,
        ],
    )
}

#[test]
fn agent_and_admin_commands_against_a_real_issuer() {
    let server = Issuer::start(|_| {});
    let admin = tempfile::tempdir().unwrap();
    let admin = admin.path();

    // Enroll the first admin with the bootstrap code.
    let enrolled = enroll(admin, &server.url, &server.bootstrap(), "admin-laptop");
    assert_ok(&enrolled);
    assert!(stdout(&enrolled).contains("enrolled device d-"));
    assert!(stderr(&enrolled).contains("SOFTWARE key, for development only"));
    let saved = state(admin);
    assert_eq!(saved["server"], server.url.as_str());
    assert_eq!(saved["principal"], "root");
    assert_eq!(saved["kind"], "software");
    let client_id = saved["client_id"].as_str().unwrap().to_owned();
    let jkt = saved["jkt"].as_str().unwrap().to_owned();
    assert_eq!(
        saved["key_file"],
        admin.join("device.pem").display().to_string()
    );
    for file in ["agent.json", "device.pem"] {
        assert_private(&admin.join(file));
    }
    assert_fails(
        &enroll(admin, &server.url, "any", "again"),
        1,
        "already enrolled as device",
    );

    // token: the claims, never the token; --raw: only the token.
    let shown = holdfast(admin, &["token"]);
    assert_ok(&shown);
    let text = stdout(&shown);
    for expected in [
        "sub",
        "p-",
        "client_id",
        &client_id,
        "sid",
        "s-",
        "swk",
        &jkt,
        "s left",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let raw = holdfast(admin, &["token", "--raw"]);
    assert_ok(&raw);
    let raw = stdout(&raw);
    let token = raw.trim();
    assert_eq!(token.split('.').count(), 3);
    assert!(token.starts_with("eyJ"));
    assert!(
        !text.contains("eyJ"),
        "the human output shows no JWT: {text}"
    );
    let claims = json(&holdfast(admin, &["token", "--json"]));
    assert_eq!(claims["claims"]["client_id"], client_id.as_str());
    assert_eq!(claims["claims"]["cnf"]["jkt"], jkt.as_str());
    assert_eq!(claims["header"]["typ"], "at+jwt");

    // request: the admin API is a DPoP-protected resource.
    let devices_url = format!("{}/admin/devices", server.url);
    let listed = holdfast(admin, &["request", "GET", &devices_url, "-i"]);
    let body = json(&listed);
    assert_eq!(body["devices"][0]["id"], client_id.as_str());
    assert!(stderr(&listed).starts_with("HTTP/1.1 200 OK"));
    assert!(stderr(&listed).contains("cache-control: no-store"));
    let missing = holdfast(admin, &["request", "GET", &format!("{devices_url}/d-none")]);
    assert_fails(&missing, 1, "404 Not Found");
    assert_eq!(
        serde_json::from_slice::<Value>(&missing.stdout).unwrap()["error"],
        "not_found"
    );

    // status
    let status = json(&holdfast(admin, &["status", "--json"]));
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["state"]["client_id"], client_id.as_str());
    assert_eq!(status["session"]["ok"], true);
    assert!(status["session"]["exp"].as_u64().unwrap() > SystemClock.now().as_secs());

    // admin devices list, as JSON and as a table.
    let devices = json(&holdfast(admin, &["admin", "devices", "list", "--json"]));
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1);
    let table = holdfast(admin, &["admin", "devices", "list"]);
    assert_ok(&table);
    assert!(stdout(&table).starts_with("ID "));
    assert!(stdout(&table).contains(&client_id));

    // A code for alice; a second agent enrolls with it.
    let code = json(&holdfast(
        admin,
        &[
            "admin",
            "codes",
            "create",
            "--principal",
            "alice",
            "--kinds",
            "software",
            "--ttl",
            "1h",
            "--json",
        ],
    ));
    let code = code["code"].as_str().unwrap().to_owned();
    let laptop = tempfile::tempdir().unwrap();
    let laptop = laptop.path();
    assert_ok(&enroll(laptop, &server.url, &code, "alice-laptop"));
    let laptop_id = state(laptop)["client_id"].as_str().unwrap().to_owned();
    assert_eq!(state(laptop)["principal"], "alice");
    assert_ok(&holdfast(laptop, &["status"]));
    // A used code says so, and what to do.
    let third = tempfile::tempdir().unwrap();
    let reused = enroll(third.path(), &server.url, &code, "another");
    assert_fails(&reused, 1, "ask your admin for a new code");
    assert!(!third.path().join("agent.json").exists());
    // Alice is no admin.
    assert_fails(
        &holdfast(laptop, &["admin", "devices", "list"]),
        1,
        "is not an admin",
    );

    // Filters by principal name.
    let alices = json(&holdfast(
        admin,
        &["admin", "devices", "list", "--principal", "alice", "--json"],
    ));
    assert_eq!(alices["devices"].as_array().unwrap().len(), 1);
    assert_eq!(alices["devices"][0]["id"], laptop_id.as_str());

    // Revoke alice's laptop: its status now asks for re-authentication.
    let revoked = holdfast(admin, &["admin", "devices", "revoke", &laptop_id]);
    assert_ok(&revoked);
    assert!(stdout(&revoked).contains("revoked device"));
    assert_fails(
        &holdfast(laptop, &["status"]),
        1,
        "re-authentication required",
    );
    let status = holdfast(laptop, &["status", "--json"]);
    assert_eq!(status.status.code(), Some(1));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["session"]["ok"], false);
    assert!(
        status["session"]["error"]
            .as_str()
            .unwrap()
            .contains("re-authentication required")
    );
    let shown = json(&holdfast(
        admin,
        &["admin", "devices", "show", &laptop_id, "--json"],
    ));
    assert_eq!(shown["state"], "revoked");

    // Sessions and principals.
    let sessions = json(&holdfast(
        admin,
        &[
            "admin", "sessions", "list", "--device", &laptop_id, "--json",
        ],
    ));
    let sessions = sessions["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|s| s["revoked"]["reason"] == "admin"));
    let principals = json(&holdfast(admin, &["admin", "principals", "list", "--json"]));
    let names: Vec<&str> = principals["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"root") && names.contains(&"alice"));

    // revoke-all: no terminal and no --yes is refused; --yes goes through,
    // and the reason reaches the audit record.
    assert_fails(
        &holdfast(admin, &["admin", "revoke-all", "--reason", "drill"]),
        2,
        "pass --yes",
    );
    // Privileged actions need a step-up of the run's own session.
    let refused = holdfast(
        admin,
        &["admin", "revoke-all", "--reason", "incident drill", "--yes"],
    );
    assert_fails(&refused, 1, "holdfast admin step-up totp-enroll");
    assert_fails(&refused, 1, "add --totp CODE");
    let uri = stdout(&holdfast(admin, &["admin", "step-up", "totp-enroll"]));
    let uri = uri.trim();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let code = |server: &Issuer| {
        holdfast_server::step_up::totp::code_for_uri(uri, server.issuer.now()).unwrap()
    };
    assert_fails(
        &holdfast(admin, &["admin", "step-up"]),
        2,
        "give the factor: --totp CODE",
    );
    assert_fails(
        &holdfast(admin, &["admin", "step-up", "--totp", "12345"]),
        2,
        "6 digits",
    );
    let wrong = if code(&server) == "000000" {
        "000001"
    } else {
        "000000"
    };
    assert_fails(
        &holdfast(admin, &["admin", "step-up", "--totp", wrong]),
        1,
        "wrong TOTP code",
    );
    let all = holdfast(
        admin,
        &[
            "admin",
            "revoke-all",
            "--reason",
            "incident drill",
            "--yes",
            "--totp",
            &code(&server),
        ],
    );
    assert_ok(&all);
    assert!(stdout(&all).contains("revoked every session"));
    // One success per code: the next step-up takes the next code (TOTP
    // steps are 30 s; the issuer's clock moves, the binary's proofs stay
    // inside the 60 s window).
    let reused = holdfast(
        admin,
        &["admin", "keys", "rotate", "--totp", &code(&server)],
    );
    assert_fails(&reused, 1, "used already");
    server.issuer.clock.advance(30);
    let rotated = json(&holdfast(
        admin,
        &[
            "admin",
            "keys",
            "rotate",
            "--json",
            "--totp",
            &code(&server),
        ],
    ));
    assert_eq!(rotated["published"].as_array().unwrap().len(), 2);

    // The audit log: tail, verify, export agree (each run adds records:
    // its new session is audited, so tail comes first).
    let tail = json(&holdfast(
        admin,
        &["admin", "audit", "tail", "-n", "3", "--json"],
    ));
    let tail = tail["records"].as_array().unwrap().clone();
    assert_eq!(tail.len(), 3);
    let exported = holdfast(admin, &["admin", "audit", "export"]);
    assert_ok(&exported);
    let records: Vec<Value> = stdout(&exported)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(records.len() > 5);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i as u64 + 1);
    }
    for record in &tail {
        let seq = record["seq"].as_u64().unwrap() as usize;
        assert_eq!(&records[seq - 1], record);
    }
    assert_eq!(
        tail[2]["seq"].as_u64().unwrap(),
        tail[0]["seq"].as_u64().unwrap() + 2
    );
    let drill = records
        .iter()
        .find(|r| r["details"]["note"] == "incident drill")
        .expect("the revoke-all record carries the reason");
    assert_eq!(drill["event"], "revocation");
    assert_eq!(drill["details"]["target"], "all_before");
    let since = holdfast(admin, &["admin", "audit", "export", "--since", "3"]);
    let first: Value = serde_json::from_str(stdout(&since).lines().next().unwrap()).unwrap();
    assert_eq!(first, records[2]);
    let verified = holdfast(admin, &["admin", "audit", "verify"]);
    assert_ok(&verified);
    assert!(stdout(&verified).contains("intact"));

    server.stop();
}

#[test]
fn enroll_explains_wrong_and_expired_codes() {
    let server = Issuer::start(|_| {});
    let admin = tempfile::tempdir().unwrap();
    assert_ok(&enroll(
        admin.path(),
        &server.url,
        &server.bootstrap(),
        "admin",
    ));

    let device = tempfile::tempdir().unwrap();
    let wrong = enroll(device.path(), &server.url, "not-a-code", "laptop");
    assert_fails(&wrong, 1, "the enrollment code was refused");
    assert!(stderr(&wrong).contains("ask your admin for a new code"));
    assert!(!device.path().join("agent.json").exists());

    let created = holdfast(
        admin.path(),
        &[
            "admin",
            "codes",
            "create",
            "--principal",
            "bob",
            "--kinds",
            "software",
            "--ttl",
            "1",
        ],
    );
    assert_ok(&created);
    // Shown once, alone on its line, indented.
    let code = stdout(&created)
        .lines()
        .find_map(|line| line.strip_prefix("    "))
        .unwrap()
        .to_owned();
    server.issuer.clock.advance(5);
    let expired = enroll(device.path(), &server.url, &code, "laptop");
    assert_fails(&expired, 1, "expired");
    assert!(stderr(&expired).contains("ask your admin for a new code"));
    // The key made for the failed attempt is kept and reused next time.
    assert!(device.path().join("device.pem").exists());
    server.stop();
}

#[test]
fn a_server_that_is_down_gets_a_clear_message() {
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let output = enroll(dir.path(), &url, "code", "laptop");
    assert_fails(&output, 1, &format!("cannot reach {url}/enroll/challenge"));
    assert!(stderr(&output).contains("is holdfastd running?"));

    // An enrolled agent whose issuer has stopped.
    let server = Issuer::start(|_| {});
    assert_ok(&enroll(
        dir.path(),
        &server.url,
        &server.bootstrap(),
        "admin",
    ));
    let url = server.url.clone();
    server.stop();
    for args in [&["status"][..], &["token"], &["admin", "devices", "list"]] {
        let output = holdfast(dir.path(), args);
        assert_fails(&output, 1, &format!("cannot reach {url}"));
        assert!(stderr(&output).contains("is holdfastd running?"));
    }
}

#[test]
fn key_kind_flags_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = ["enroll", "--server", "http://127.0.0.1:9", "--code", "c"];
    // Exactly one kind.
    assert_eq!(holdfast(dir.path(), &base).status.code(), Some(2));
    let two = holdfast(dir.path(), &[&base[..], &["--software", "--tpm"]].concat());
    assert_eq!(two.status.code(), Some(2));
    // A kind's own flags need that kind.
    for flags in [
        &["--software", "--tpm-tcti", "device:/dev/tpmrm0"][..],
        &["--software", "--piv-slot", "9a"],
        &["--tpm", "--serial", "7"],
        &["--tpm", "--touch-policy", "always"],
    ] {
        let output = holdfast(dir.path(), &[&base[..], flags].concat());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flags:?}: {}",
            stderr(&output)
        );
    }
    assert!(!dir.path().join("agent.json").exists());
}

#[test]
fn commands_before_enrollment_say_to_enroll() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["status"][..], &["token"], &["admin", "devices", "list"]] {
        assert_fails(&holdfast(dir.path(), args), 1, "not enrolled");
    }
    let status = holdfast(dir.path(), &["status", "--json"]);
    assert!(stderr(&status).contains("run `holdfast enroll` first"));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["enrolled"], false);

    // Without --agent-dir: $HOLDFAST_AGENT_DIR, else $XDG_CONFIG_HOME/holdfast.
    let from_env = |var: &str, value: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["status", "--json"])
            .env_remove("HOLDFAST_AGENT_DIR")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        serde_json::from_slice::<Value>(&output.stdout).unwrap()["agent_dir"].clone()
    };
    let dir = dir.path();
    assert_eq!(
        from_env("HOLDFAST_AGENT_DIR", dir),
        dir.display().to_string()
    );
    assert_eq!(
        from_env("XDG_CONFIG_HOME", dir),
        dir.join("holdfast").display().to_string()
    );
}
