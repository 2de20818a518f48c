//! An attacker who can use an admin's device key (a second session of that
//! admin) but not the admin's second factor: guessing TOTP codes locks
//! step-up, on the record, and privileged actions stay refused until an
//! unlock.

use holdfast_server::step_up::{totp::code_for_uri, unlock_by_name};
use reqwest::StatusCode;
use serde_json::json;

use super::stage::last_audited;
use crate::issuer_flow::admin_agent;
use crate::support::Server;

#[tokio::test]
async fn attack_admin_step_up_guessing_locks_and_is_audited_until_unlocked() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let now = server.now();

    // The real admin enrolled TOTP (the first factor, from a fresh session)
    // and confirmed it with one code.
    let own = admin.login(now).await.unwrap();
    let enrolled = admin
        .admin("POST", "/admin/step-up/totp", &own.access, None, now)
        .await
        .unwrap();
    let uri = enrolled["otpauth_uri"].as_str().unwrap().to_owned();
    let code = code_for_uri(&uri, now).unwrap();
    admin
        .admin(
            "POST",
            "/admin/step-up",
            &own.access,
            Some(json!({"method": "totp", "code": code})),
            now,
        )
        .await
        .unwrap();

    // A minute later the attacker, with a session of their own, guesses.
    server.issuer.clock.advance(60);
    let now = server.now();
    let attacker = admin.login(now).await.unwrap();
    let good = code_for_uri(&uri, now).unwrap();
    let wrong: Vec<String> = (0..3u32)
        .map(|i| format!("{:06}", (good.parse::<u32>().unwrap() + 1 + i) % 1_000_000))
        .collect();
    let mut answers = Vec::new();
    for guess in &wrong {
        let refusal = admin
            .admin(
                "POST",
                "/admin/step-up",
                &attacker.access,
                Some(json!({"method": "totp", "code": guess})),
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(refusal.status, StatusCode::FORBIDDEN, "{:?}", refusal.body);
        assert_eq!(refusal.error, "access_denied");
        answers.push(refusal.description().to_owned());
    }
    assert_eq!(
        answers[0],
        "wrong TOTP code (check the authenticator's clock); 2 more failures lock step-up"
    );
    assert_eq!(
        answers[1],
        "wrong TOTP code (check the authenticator's clock); 1 more failure locks step-up"
    );
    assert!(
        answers[2].starts_with(
            "wrong TOTP code (check the authenticator's clock); step-up is now locked until"
        ),
        "{}",
        answers[2]
    );

    // Locked: even the right code is refused now, and so is revoke-all.
    let locked = admin
        .admin(
            "POST",
            "/admin/step-up",
            &attacker.access,
            Some(json!({"method": "totp", "code": good})),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(locked.status, StatusCode::FORBIDDEN);
    assert!(
        locked.description().starts_with("step-up is locked until"),
        "{}",
        locked.description()
    );
    let refused = admin
        .admin("POST", "/admin/revoke-all", &attacker.access, None, now)
        .await
        .unwrap_err();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.description().starts_with("step-up required"),
        "{}",
        refused.description()
    );
    assert!(
        server
            .issuer
            .state
            .store
            .revoke_all_before()
            .unwrap()
            .is_none()
    );

    // On the record: three counted failures, the lockout, and the attempt
    // made while locked; none with a code in it.
    let failures = server.audited("step_up_failed");
    let checks: Vec<(&str, bool)> = failures
        .iter()
        .map(|r| {
            (
                r.entry.details["check"].as_str().unwrap(),
                r.entry.details["counted"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("totp_mismatch", true),
            ("totp_mismatch", true),
            ("totp_mismatch", true),
            ("locked", false),
        ]
    );
    let lock = last_audited(&server, "step_up_locked").entry;
    assert_eq!(lock.outcome, "access_denied");
    for record in failures.iter().map(|r| &r.entry).chain([&lock]) {
        let text = serde_json::to_string(record).unwrap();
        for guess in &wrong {
            assert!(!text.contains(guess.as_str()), "{text}");
        }
    }

    // Recovery on the server host (what `holdfastd admin unlock-step-up
    // root` runs), audited; then the real admin steps up with the next code.
    assert!(unlock_by_name(&server.issuer.state, "root", now).unwrap());
    assert_eq!(last_audited(&server, "step_up_unlocked").entry.actor, "cli");
    server.issuer.clock.advance(30);
    let now = server.now();
    let next = code_for_uri(&uri, now).unwrap();
    let granted = admin
        .admin(
            "POST",
            "/admin/step-up",
            &attacker.access,
            Some(json!({"method": "totp", "code": next})),
            now,
        )
        .await
        .unwrap();
    assert_eq!(granted["method"], "totp");
}
