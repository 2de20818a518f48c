//! The [`Store`] conformance suite, run for every implementation, and the
//! sled store's own guarantees (durability across a restart, the store
//! lock, the versioned record envelope).
//!
//! Each conformance case takes a fresh, empty `&dyn Store`; the
//! `store_conformance!` macro turns every case into one `#[test]` for an
//! implementation. Time is a fixed [`NOW`]; nothing sleeps.

use holdfast_hw::KeyKind;
use holdfast_proto::{Freshness, Jwk, UnixTime};
use tempfile::TempDir;

use super::records::{self, FORMAT_VERSION};
use super::{Redeemed, RevocationEvent, Rotated, SigningKeyRecord, SledStore, Store, StoreError};
use crate::audit::{AuditEntry, GENESIS_HASH, verify_chain};
use crate::model::{
    AttestationSummary, Device, DeviceId, DeviceState, EnrollmentCode, Principal, PrincipalId,
    RefreshRecord, Revocation, Role, Session, SessionId,
};

const NOW: UnixTime = UnixTime::from_secs(1_750_000_000);

// ---------------------------------------------------------------------------
// Helpers.

/// A distinct 32-byte hash per tag (code, challenge, refresh and replay keys).
fn hash(tag: u8) -> [u8; 32] {
    let mut out = [tag; 32];
    out[0] = 0xA5;
    out
}

fn principal(name: &str) -> Principal {
    Principal {
        id: PrincipalId::generate(),
        name: name.to_owned(),
        roles: vec![Role::Device],
        disabled: false,
        created_at: NOW,
    }
}

/// A device of `owner` whose key is determined by `seed` (same seed, same
/// `jkt`).
fn device(owner: &Principal, seed: u8) -> Device {
    let jwk = Jwk::p256([seed; 32], [seed.wrapping_add(1); 32]);
    let mut details = serde_json::Map::new();
    details.insert("seed".to_owned(), seed.into());
    Device {
        id: DeviceId::generate(),
        principal: owner.id.clone(),
        name: format!("device-{seed}"),
        jkt: jwk.thumbprint(),
        jwk,
        kind: KeyKind::Software,
        attestation: AttestationSummary {
            kind: "software".to_owned(),
            details,
        },
        state: DeviceState::Active,
        created_at: NOW,
        last_seen: None,
    }
}

fn code(owner: &Principal, expires_at: UnixTime) -> EnrollmentCode {
    EnrollmentCode {
        principal: owner.id.clone(),
        allowed_kinds: vec![KeyKind::Software, KeyKind::Tpm],
        created_by: "bootstrap".to_owned(),
        created_at: NOW.minus(60),
        expires_at,
        used_by: None,
    }
}

fn session(device: &Device) -> Session {
    Session {
        id: SessionId::generate(),
        principal: device.principal.clone(),
        device: device.id.clone(),
        jkt: device.jkt,
        ip: Some("192.0.2.7".to_owned()),
        user_agent: Some("holdfast-test/1".to_owned()),
        created_at: NOW,
        refreshed_at: NOW,
        expires_at: NOW.plus(86_400),
        revoked: None,
        flags: Vec::new(),
    }
}

fn refresh(session: &Session, issued_at: UnixTime, expires_at: UnixTime) -> RefreshRecord {
    RefreshRecord {
        session: session.id.clone(),
        jkt: session.jkt,
        issued_at,
        expires_at,
        used_at: None,
    }
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry::new(NOW.plus(i), "test_event", "system", "ok")
        .ip(Some("192.0.2.1"))
        .detail("i", i)
}

fn revocation(kind: &str, id: &str, at: UnixTime) -> RevocationEvent {
    RevocationEvent {
        cursor: 0,
        at,
        kind: kind.to_owned(),
        id: id.to_owned(),
        before: None,
        device: None,
    }
}

fn signing_key(kid: &str, created_at: UnixTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        pkcs8_pem: format!("-----BEGIN PRIVATE KEY-----\n{kid}\n-----END PRIVATE KEY-----\n"),
        created_at,
        retired_at: None,
    }
}

/// Enrolls `device` through a fresh code stored under `code_hash`.
fn enroll(store: &dyn Store, code_hash: &[u8; 32], owner: &Principal, device: &Device) {
    store
        .put_enrollment_code(code_hash, &code(owner, NOW.plus(600)))
        .unwrap();
    assert_eq!(
        store
            .redeem_enrollment_code(code_hash, device, NOW)
            .unwrap(),
        Redeemed::Enrolled(Box::new(device.clone()))
    );
}

fn sorted_by_id<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(|item| key(item));
    items
}

// ---------------------------------------------------------------------------
// The conformance suite: one function per case, each on a fresh store.

mod conformance {
    use super::*;

    // Principals.

    pub(super) fn principals_round_trip(store: &dyn Store) {
        assert_eq!(store.principals().unwrap(), Vec::new());
        let alice = principal("alice@example.com");
        let bob = principal("bob@example.com");
        assert_eq!(store.principal(&alice.id).unwrap(), None);
        assert_eq!(store.principal_by_name(&alice.name).unwrap(), None);

        store.put_principal(&alice).unwrap();
        store.put_principal(&bob).unwrap();

        assert_eq!(store.principal(&alice.id).unwrap(), Some(alice.clone()));
        assert_eq!(store.principal(&bob.id).unwrap(), Some(bob.clone()));
        assert_eq!(
            store.principal_by_name("alice@example.com").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.principal_by_name("bob@example.com").unwrap(),
            Some(bob.clone())
        );
        assert_eq!(store.principal_by_name("carol@example.com").unwrap(), None);
        assert_eq!(
            sorted_by_id(store.principals().unwrap(), |p| p.id.clone()),
            sorted_by_id(vec![alice, bob], |p| p.id.clone())
        );
    }

    pub(super) fn principal_update_replaces(store: &dyn Store) {
        let mut alice = principal("alice");
        store.put_principal(&alice).unwrap();
        alice.disabled = true;
        alice.roles = vec![Role::Device, Role::Admin];
        store.put_principal(&alice).unwrap();

        assert_eq!(store.principal(&alice.id).unwrap(), Some(alice.clone()));
        assert_eq!(
            store.principal_by_name("alice").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.principals().unwrap(), vec![alice]);
    }

    pub(super) fn principal_name_conflict(store: &dyn Store) {
        let alice = principal("alice");
        store.put_principal(&alice).unwrap();
        let impostor = principal("alice");
        assert_ne!(impostor.id, alice.id);

        let err = store.put_principal(&impostor).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

        // Nothing of the refused principal was stored.
        assert_eq!(store.principal(&impostor.id).unwrap(), None);
        assert_eq!(
            store.principal_by_name("alice").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.principals().unwrap(), vec![alice]);
    }

    pub(super) fn principal_rename_frees_old_name(store: &dyn Store) {
        let mut alice = principal("alice");
        store.put_principal(&alice).unwrap();
        alice.name = "alice.smith".to_owned();
        store.put_principal(&alice).unwrap();

        assert_eq!(
            store.principal_by_name("alice.smith").unwrap(),
            Some(alice.clone())
        );
        // The old name no longer leads anywhere and may be taken again.
        assert_eq!(store.principal_by_name("alice").unwrap(), None);
        let other = principal("alice");
        store.put_principal(&other).unwrap();
        assert_eq!(
            store.principal_by_name("alice").unwrap(),
            Some(other.clone())
        );
        assert_eq!(
            store.principal_by_name("alice.smith").unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.principals().unwrap().len(), 2);
    }

    // Devices and enrollment.

    pub(super) fn enrollment_code_round_trip(store: &dyn Store) {
        let alice = principal("alice");
        let stored = code(&alice, NOW.plus(600));
        assert_eq!(store.enrollment_code(&hash(1)).unwrap(), None);
        store.put_enrollment_code(&hash(1), &stored).unwrap();
        assert_eq!(store.enrollment_code(&hash(1)).unwrap(), Some(stored));
        assert_eq!(store.enrollment_code(&hash(2)).unwrap(), None);
    }

    pub(super) fn redeem_enrolls(store: &dyn Store) {
        let alice = principal("alice");
        store.put_principal(&alice).unwrap();
        let laptop = device(&alice, 1);
        let stored = code(&alice, NOW.plus(600));
        store.put_enrollment_code(&hash(1), &stored).unwrap();
        assert_eq!(store.devices().unwrap(), Vec::new());

        assert_eq!(
            store
                .redeem_enrollment_code(&hash(1), &laptop, NOW)
                .unwrap(),
            Redeemed::Enrolled(Box::new(laptop.clone()))
        );

        assert_eq!(store.device(&laptop.id).unwrap(), Some(laptop.clone()));
        assert_eq!(
            store.device_by_jkt(&laptop.jkt).unwrap(),
            Some(laptop.clone())
        );
        assert_eq!(store.devices().unwrap(), vec![laptop.clone()]);
        let spent = store.enrollment_code(&hash(1)).unwrap().unwrap();
        assert_eq!(
            spent,
            EnrollmentCode {
                used_by: Some(laptop.id.clone()),
                ..stored
            }
        );
    }

    pub(super) fn redeem_twice_is_code_used(store: &dyn Store) {
        let alice = principal("alice");
        let laptop = device(&alice, 1);
        enroll(store, &hash(1), &alice, &laptop);

        // The same device again, and another device with another key.
        assert_eq!(
            store
                .redeem_enrollment_code(&hash(1), &laptop, NOW)
                .unwrap(),
            Redeemed::CodeUsed
        );
        let phone = device(&alice, 2);
        assert_eq!(
            store
                .redeem_enrollment_code(&hash(1), &phone, NOW.plus(1))
                .unwrap(),
            Redeemed::CodeUsed
        );

        assert_eq!(store.devices().unwrap(), vec![laptop.clone()]);
        assert_eq!(store.device(&phone.id).unwrap(), None);
        assert_eq!(store.device_by_jkt(&phone.jkt).unwrap(), None);
        assert_eq!(
            store.enrollment_code(&hash(1)).unwrap().unwrap().used_by,
            Some(laptop.id)
        );
    }

    pub(super) fn redeem_expired_code(store: &dyn Store) {
        let alice = principal("alice");
        let laptop = device(&alice, 1);
        // Expired long ago, and expiring exactly now (`exp` is exclusive).
        let old = code(&alice, NOW.minus(1));
        let edge = code(&alice, NOW);
        store.put_enrollment_code(&hash(1), &old).unwrap();
        store.put_enrollment_code(&hash(2), &edge).unwrap();

        assert_eq!(
            store
                .redeem_enrollment_code(&hash(1), &laptop, NOW)
                .unwrap(),
            Redeemed::CodeExpired
        );
        assert_eq!(
            store
                .redeem_enrollment_code(&hash(2), &laptop, NOW)
                .unwrap(),
            Redeemed::CodeExpired
        );

        assert_eq!(store.devices().unwrap(), Vec::new());
        assert_eq!(store.device(&laptop.id).unwrap(), None);
        assert_eq!(store.device_by_jkt(&laptop.jkt).unwrap(), None);
        assert_eq!(store.enrollment_code(&hash(1)).unwrap(), Some(old));
        assert_eq!(store.enrollment_code(&hash(2)).unwrap(), Some(edge));

        // One second earlier the edge code was still good.
        assert_eq!(
            store
                .redeem_enrollment_code(&hash(2), &laptop, NOW.minus(1))
                .unwrap(),
            Redeemed::Enrolled(Box::new(laptop.clone()))
        );
    }

    pub(super) fn redeem_unknown_code(store: &dyn Store) {
        let alice = principal("alice");
        let laptop = device(&alice, 1);
        assert_eq!(
            store
                .redeem_enrollment_code(&hash(9), &laptop, NOW)
                .unwrap(),
            Redeemed::UnknownCode
        );
        assert_eq!(store.devices().unwrap(), Vec::new());
        assert_eq!(store.device(&laptop.id).unwrap(), None);
        assert_eq!(store.device_by_jkt(&laptop.jkt).unwrap(), None);
        assert_eq!(store.enrollment_code(&hash(9)).unwrap(), None);
    }

    pub(super) fn redeem_same_key_twice_is_refused(store: &dyn Store) {
        let alice = principal("alice");
        let laptop = device(&alice, 1);
        enroll(store, &hash(1), &alice, &laptop);

        // Another code, another device id, the same key.
        let second = code(&alice, NOW.plus(600));
        store.put_enrollment_code(&hash(2), &second).unwrap();
        let clone = Device {
            id: DeviceId::generate(),
            name: "clone".to_owned(),
            ..laptop.clone()
        };
        assert_eq!(clone.jkt, laptop.jkt);
        assert_eq!(
            store.redeem_enrollment_code(&hash(2), &clone, NOW).unwrap(),
            Redeemed::KeyAlreadyEnrolled
        );

        assert_eq!(store.devices().unwrap(), vec![laptop.clone()]);
        assert_eq!(store.device(&clone.id).unwrap(), None);
        assert_eq!(
            store.device_by_jkt(&laptop.jkt).unwrap(),
            Some(laptop.clone())
        );
        assert_eq!(store.enrollment_code(&hash(2)).unwrap(), Some(second));

        // The refused code is still good for a new key.
        let phone = device(&alice, 2);
        assert_eq!(
            store.redeem_enrollment_code(&hash(2), &phone, NOW).unwrap(),
            Redeemed::Enrolled(Box::new(phone.clone()))
        );
        assert_eq!(store.devices().unwrap().len(), 2);
    }

    pub(super) fn concurrent_redemptions_enroll_once(store: &dyn Store) {
        let alice = principal("alice");
        store
            .put_enrollment_code(&hash(1), &code(&alice, NOW.plus(600)))
            .unwrap();
        let candidates: Vec<Device> = (1..=8).map(|seed| device(&alice, seed)).collect();

        let outcomes: Vec<Redeemed> = std::thread::scope(|scope| {
            let handles: Vec<_> = candidates
                .iter()
                .map(|d| {
                    scope.spawn(move || store.redeem_enrollment_code(&hash(1), d, NOW).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let enrolled: Vec<&Device> = outcomes
            .iter()
            .filter_map(|o| match o {
                Redeemed::Enrolled(d) => Some(&**d),
                _ => None,
            })
            .collect();
        assert_eq!(enrolled.len(), 1, "{outcomes:?}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == Redeemed::CodeUsed)
                .count(),
            candidates.len() - 1
        );
        let winner = enrolled[0].clone();
        assert_eq!(store.devices().unwrap(), vec![winner.clone()]);
        assert_eq!(
            store.enrollment_code(&hash(1)).unwrap().unwrap().used_by,
            Some(winner.id)
        );
    }

    pub(super) fn devices_update(store: &dyn Store) {
        let alice = principal("alice");
        let laptop = device(&alice, 1);
        let phone = device(&alice, 2);
        enroll(store, &hash(1), &alice, &laptop);
        enroll(store, &hash(2), &alice, &phone);
        assert_eq!(store.device(&DeviceId::generate()).unwrap(), None);
        assert_eq!(store.device_by_jkt(&device(&alice, 3).jkt).unwrap(), None);

        let updated = Device {
            state: DeviceState::Disabled,
            last_seen: Some(NOW.plus(30)),
            ..laptop.clone()
        };
        store.update_device(&updated).unwrap();

        assert_eq!(store.device(&laptop.id).unwrap(), Some(updated.clone()));
        assert_eq!(
            store.device_by_jkt(&laptop.jkt).unwrap(),
            Some(updated.clone())
        );
        assert_eq!(store.device(&phone.id).unwrap(), Some(phone.clone()));
        assert_eq!(
            sorted_by_id(store.devices().unwrap(), |d| d.id.clone()),
            sorted_by_id(vec![updated, phone], |d| d.id.clone())
        );
    }

    // Challenges.

    pub(super) fn challenges_are_taken_once(store: &dyn Store) {
        store.put_challenge(&hash(1), NOW.plus(60), b"").unwrap();
        assert_eq!(store.take_challenge(&hash(1), NOW).unwrap(), Some(vec![]));
        assert_eq!(store.take_challenge(&hash(1), NOW).unwrap(), None);
        assert_eq!(store.take_challenge(&hash(2), NOW).unwrap(), None);
    }

    pub(super) fn challenge_context_is_kept_and_peeking_does_not_spend(store: &dyn Store) {
        store
            .put_challenge(&hash(1), NOW.plus(60), b"tpm activation")
            .unwrap();
        assert_eq!(
            store.challenge(&hash(1), NOW).unwrap().as_deref(),
            Some(&b"tpm activation"[..])
        );
        assert_eq!(store.challenge(&hash(1), NOW.plus(60)).unwrap(), None);
        assert_eq!(
            store.take_challenge(&hash(1), NOW).unwrap().as_deref(),
            Some(&b"tpm activation"[..])
        );
        assert_eq!(store.challenge(&hash(1), NOW).unwrap(), None);
    }

    pub(super) fn expired_challenges_are_refused(store: &dyn Store) {
        store.put_challenge(&hash(1), NOW.minus(1), b"").unwrap();
        store.put_challenge(&hash(2), NOW, b"").unwrap();
        assert_eq!(store.challenge(&hash(1), NOW).unwrap(), None);
        assert_eq!(store.take_challenge(&hash(1), NOW).unwrap(), None);
        assert_eq!(store.take_challenge(&hash(2), NOW).unwrap(), None);
        // Taking removed them, even though they were refused.
        assert_eq!(
            store.take_challenge(&hash(1), NOW.minus(100)).unwrap(),
            None
        );
        assert_eq!(
            store.take_challenge(&hash(2), NOW.minus(100)).unwrap(),
            None
        );
    }

    pub(super) fn pruning_keeps_live_challenges(store: &dyn Store) {
        store.put_challenge(&hash(1), NOW.plus(60), b"ctx").unwrap();
        store.prune_replay(NOW).unwrap();
        assert_eq!(
            store.take_challenge(&hash(1), NOW).unwrap().as_deref(),
            Some(&b"ctx"[..])
        );
    }

    // Sessions and refresh tokens.

    pub(super) fn sessions_round_trip(store: &dyn Store) {
        let alice = principal("alice");
        let laptop = device(&alice, 1);
        let s = session(&laptop);
        let r = refresh(&s, NOW, NOW.plus(3600));
        assert_eq!(store.session(&s.id).unwrap(), None);
        assert_eq!(store.sessions().unwrap(), Vec::new());
        assert_eq!(store.refresh_token(&hash(1)).unwrap(), None);

        store.create_session(&s, &hash(1), &r).unwrap();

        assert_eq!(store.session(&s.id).unwrap(), Some(s.clone()));
        assert_eq!(store.sessions().unwrap(), vec![s.clone()]);
        assert_eq!(store.refresh_token(&hash(1)).unwrap(), Some(r));
        assert_eq!(store.refresh_token(&hash(2)).unwrap(), None);
        assert_eq!(store.session(&SessionId::generate()).unwrap(), None);

        let updated = Session {
            refreshed_at: NOW.plus(100),
            flags: vec!["ip_deviation".to_owned()],
            revoked: Some(Revocation {
                at: NOW.plus(200),
                reason: "admin".to_owned(),
            }),
            ..s.clone()
        };
        store.update_session(&updated).unwrap();
        assert_eq!(store.session(&s.id).unwrap(), Some(updated.clone()));

        let other = session(&laptop);
        store
            .create_session(&other, &hash(3), &refresh(&other, NOW, NOW.plus(3600)))
            .unwrap();
        assert_eq!(
            sorted_by_id(store.sessions().unwrap(), |s| s.id.clone()),
            sorted_by_id(vec![updated, other], |s| s.id.clone())
        );
    }

    pub(super) fn rotation_and_reuse(store: &dyn Store) {
        let alice = principal("alice");
        let s = session(&device(&alice, 1));
        let r0 = refresh(&s, NOW, NOW.plus(3600));
        store.create_session(&s, &hash(0), &r0).unwrap();

        // First exchange: spent and replaced.
        let r1 = refresh(&s, NOW.plus(10), NOW.plus(3610));
        let spent = RefreshRecord {
            used_at: Some(NOW.plus(10)),
            ..r0.clone()
        };
        assert_eq!(
            store
                .rotate_refresh_token(&hash(0), &hash(1), &r1, NOW.plus(10))
                .unwrap(),
            Rotated::Rotated(spent.clone())
        );
        assert_eq!(store.refresh_token(&hash(0)).unwrap(), Some(spent.clone()));
        assert_eq!(store.refresh_token(&hash(1)).unwrap(), Some(r1.clone()));
        assert_eq!(store.session(&s.id).unwrap().unwrap().revoked, None);

        // The old token again: theft. Nothing new is stored, the session dies.
        let r2 = refresh(&s, NOW.plus(20), NOW.plus(3620));
        assert_eq!(
            store
                .rotate_refresh_token(&hash(0), &hash(2), &r2, NOW.plus(20))
                .unwrap(),
            Rotated::Reused(spent.clone())
        );
        assert_eq!(store.refresh_token(&hash(2)).unwrap(), None);
        assert_eq!(store.refresh_token(&hash(0)).unwrap(), Some(spent.clone()));
        assert_eq!(store.refresh_token(&hash(1)).unwrap(), Some(r1));
        let revoked = Revocation {
            at: NOW.plus(20),
            reason: "refresh_token_reuse".to_owned(),
        };
        let after = store.session(&s.id).unwrap().unwrap();
        assert_eq!(
            after,
            Session {
                revoked: Some(revoked.clone()),
                ..s.clone()
            }
        );

        // A third use keeps the first revocation.
        assert_eq!(
            store
                .rotate_refresh_token(&hash(0), &hash(3), &r2, NOW.plus(30))
                .unwrap(),
            Rotated::Reused(spent)
        );
        assert_eq!(store.refresh_token(&hash(3)).unwrap(), None);
        assert_eq!(
            store.session(&s.id).unwrap().unwrap().revoked,
            Some(revoked)
        );
    }

    pub(super) fn rotation_of_unknown_or_expired_token(store: &dyn Store) {
        let alice = principal("alice");
        let s = session(&device(&alice, 1));
        let r0 = refresh(&s, NOW.minus(3600), NOW);
        store.create_session(&s, &hash(0), &r0).unwrap();
        let r1 = refresh(&s, NOW, NOW.plus(3600));

        assert_eq!(
            store
                .rotate_refresh_token(&hash(7), &hash(1), &r1, NOW.minus(10))
                .unwrap(),
            Rotated::Unknown
        );
        assert_eq!(store.refresh_token(&hash(1)).unwrap(), None);

        // Expiring exactly now is expired.
        assert_eq!(
            store
                .rotate_refresh_token(&hash(0), &hash(1), &r1, NOW)
                .unwrap(),
            Rotated::Unknown
        );
        assert_eq!(store.refresh_token(&hash(1)).unwrap(), None);
        assert_eq!(store.refresh_token(&hash(0)).unwrap(), Some(r0.clone()));
        assert_eq!(store.session(&s.id).unwrap(), Some(s.clone()));

        // And it was not spent by the refusal: one second earlier it rotates.
        assert_eq!(
            store
                .rotate_refresh_token(&hash(0), &hash(1), &r1, NOW.minus(1))
                .unwrap(),
            Rotated::Rotated(RefreshRecord {
                used_at: Some(NOW.minus(1)),
                ..r0
            })
        );
    }

    pub(super) fn concurrent_rotations_rotate_once(store: &dyn Store) {
        let alice = principal("alice");
        let s = session(&device(&alice, 1));
        store
            .create_session(&s, &hash(0), &refresh(&s, NOW, NOW.plus(3600)))
            .unwrap();
        let next = refresh(&s, NOW.plus(5), NOW.plus(3605));

        let outcomes: Vec<(u8, Rotated)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=8u8)
                .map(|tag| {
                    let next = &next;
                    scope.spawn(move || {
                        let outcome = store
                            .rotate_refresh_token(&hash(0), &hash(tag), next, NOW.plus(5))
                            .unwrap();
                        (tag, outcome)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let winners: Vec<u8> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Rotated::Rotated(_)))
            .map(|(tag, _)| *tag)
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|(tag, o)| *tag == winners[0] || matches!(o, Rotated::Reused(_))),
            "{outcomes:?}"
        );
        for tag in 1..=8u8 {
            let stored = store.refresh_token(&hash(tag)).unwrap();
            assert_eq!(stored.is_some(), tag == winners[0], "refresh token {tag}");
        }
        assert_eq!(
            store
                .session(&s.id)
                .unwrap()
                .unwrap()
                .revoked
                .map(|r| r.reason),
            Some("refresh_token_reuse".to_owned())
        );
    }

    // Replay cache.

    pub(super) fn replay_fresh_then_replayed(store: &dyn Store) {
        let key = hash(1);
        assert_eq!(
            store.check_and_record(&key, NOW.plus(60), NOW).unwrap(),
            Freshness::Fresh
        );
        assert_eq!(
            store.check_and_record(&key, NOW.plus(60), NOW).unwrap(),
            Freshness::Replayed
        );
        assert_eq!(
            store
                .check_and_record(&key, NOW.plus(120), NOW.plus(59))
                .unwrap(),
            Freshness::Replayed
        );
        // Another key is independent.
        assert_eq!(
            store.check_and_record(&hash(2), NOW.plus(60), NOW).unwrap(),
            Freshness::Fresh
        );
        // At its expiry the entry is dead, and is recorded anew.
        assert_eq!(
            store
                .check_and_record(&key, NOW.plus(120), NOW.plus(60))
                .unwrap(),
            Freshness::Fresh
        );
        assert_eq!(
            store
                .check_and_record(&key, NOW.plus(180), NOW.plus(119))
                .unwrap(),
            Freshness::Replayed
        );
        assert_eq!(
            store
                .check_and_record(&key, NOW.plus(180), NOW.plus(120))
                .unwrap(),
            Freshness::Fresh
        );
    }

    pub(super) fn prune_removes_only_expired(store: &dyn Store) {
        assert_eq!(store.prune_replay(NOW).unwrap(), 0);
        for (tag, expires) in [
            (1, NOW.plus(5)),
            (2, NOW.plus(10)),
            (3, NOW.plus(100)),
            (4, NOW.plus(11)),
        ] {
            assert_eq!(
                store.check_and_record(&hash(tag), expires, NOW).unwrap(),
                Freshness::Fresh
            );
        }

        assert_eq!(store.prune_replay(NOW.plus(10)).unwrap(), 2);
        assert_eq!(store.prune_replay(NOW.plus(10)).unwrap(), 0);
        for tag in [3, 4] {
            assert_eq!(
                store
                    .check_and_record(&hash(tag), NOW.plus(200), NOW.plus(10))
                    .unwrap(),
                Freshness::Replayed,
                "key {tag}"
            );
        }
        assert_eq!(store.prune_replay(NOW.plus(1000)).unwrap(), 2);
    }

    pub(super) fn concurrent_replays_admit_one(store: &dyn Store) {
        let fresh = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    scope
                        .spawn(move || store.check_and_record(&hash(1), NOW.plus(60), NOW).unwrap())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|f| *f == Freshness::Fresh)
                .count()
        });
        assert_eq!(fresh, 1);
    }

    pub(super) fn replay_guard_adapter(store: &dyn Store) {
        use holdfast_proto::{ReplayGuard as _, ReplayKey};
        let jkt = device(&principal("alice"), 1).jkt;
        let key = ReplayKey::new(&jkt, "https://issuer.example/token", "jti-1");
        let guard = super::super::StoreReplayGuard(store);
        assert_eq!(
            guard.check_and_record(key, NOW.plus(60), NOW),
            Ok(Freshness::Fresh)
        );
        assert_eq!(
            guard.check_and_record(key, NOW.plus(60), NOW),
            Ok(Freshness::Replayed)
        );
        // The guard records under the key's bytes.
        assert_eq!(
            store
                .check_and_record(key.as_bytes(), NOW.plus(60), NOW)
                .unwrap(),
            Freshness::Replayed
        );
    }

    // Signing keys.

    pub(super) fn signing_keys_oldest_first(store: &dyn Store) {
        assert!(store.signing_keys().unwrap().is_empty());
        // Written newest first; a kid that sorts before the older one's.
        store
            .put_signing_key(&signing_key("aaa-new", NOW.plus(100)))
            .unwrap();
        store.put_signing_key(&signing_key("zzz-old", NOW)).unwrap();
        store
            .put_signing_key(&signing_key("mmm-mid", NOW.plus(50)))
            .unwrap();

        let keys = store.signing_keys().unwrap();
        let summary: Vec<(String, UnixTime, Option<UnixTime>)> = keys
            .iter()
            .map(|k| (k.kid.clone(), k.created_at, k.retired_at))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("zzz-old".to_owned(), NOW, None),
                ("mmm-mid".to_owned(), NOW.plus(50), None),
                ("aaa-new".to_owned(), NOW.plus(100), None),
            ]
        );
        assert_eq!(keys[0].pkcs8_pem, signing_key("zzz-old", NOW).pkcs8_pem);

        // Retiring a key replaces its record.
        let retired = SigningKeyRecord {
            retired_at: Some(NOW.plus(100)),
            ..signing_key("zzz-old", NOW)
        };
        store.put_signing_key(&retired).unwrap();
        let keys = store.signing_keys().unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0].kid, "zzz-old");
        assert_eq!(keys[0].retired_at, Some(NOW.plus(100)));
    }

    // Revocation.

    pub(super) fn revocation_feed(store: &dyn Store) {
        assert_eq!(store.revocations_since(0, 100).unwrap(), Vec::new());
        let events: Vec<RevocationEvent> = [
            revocation("session", SessionId::generate().as_str(), NOW),
            revocation("device", DeviceId::generate().as_str(), NOW.plus(1)),
            RevocationEvent {
                before: Some(NOW.plus(2)),
                ..revocation("all_before", "", NOW.plus(2))
            },
            revocation("principal", PrincipalId::generate().as_str(), NOW.plus(3)),
        ]
        .into_iter()
        .map(|event| {
            let appended = store.append_revocation(event.clone()).unwrap();
            assert_eq!(
                appended,
                RevocationEvent {
                    cursor: appended.cursor,
                    ..event
                }
            );
            appended
        })
        .collect();

        assert!(events[0].cursor > 0);
        assert!(
            events.windows(2).all(|w| w[0].cursor < w[1].cursor),
            "{events:?}"
        );

        assert_eq!(store.revocations_since(0, 100).unwrap(), events);
        assert_eq!(
            store.revocations_since(events[0].cursor, 100).unwrap(),
            events[1..]
        );
        assert_eq!(
            store.revocations_since(events[1].cursor, 1).unwrap(),
            events[2..3]
        );
        assert_eq!(store.revocations_since(0, 2).unwrap(), events[..2]);
        assert_eq!(store.revocations_since(0, 0).unwrap(), Vec::new());
        assert_eq!(
            store.revocations_since(events[3].cursor, 100).unwrap(),
            Vec::new()
        );
        assert_eq!(store.revocations_since(u64::MAX, 100).unwrap(), Vec::new());
    }

    pub(super) fn revoke_all_only_moves_forward(store: &dyn Store) {
        assert_eq!(store.revoke_all_before().unwrap(), None);
        store.set_revoke_all_before(NOW).unwrap();
        assert_eq!(store.revoke_all_before().unwrap(), Some(NOW));
        store.set_revoke_all_before(NOW.minus(10)).unwrap();
        assert_eq!(store.revoke_all_before().unwrap(), Some(NOW));
        store.set_revoke_all_before(NOW.plus(10)).unwrap();
        assert_eq!(store.revoke_all_before().unwrap(), Some(NOW.plus(10)));
        store.set_revoke_all_before(NOW.plus(10)).unwrap();
        assert_eq!(store.revoke_all_before().unwrap(), Some(NOW.plus(10)));
    }

    // Audit.

    pub(super) fn audit_chain(store: &dyn Store) {
        assert_eq!(store.audit_range(1, 100).unwrap(), Vec::new());
        let appended: Vec<_> = (1..=5)
            .map(|i| store.append_audit(entry(i)).unwrap())
            .collect();

        for (i, record) in (1..).zip(&appended) {
            assert_eq!(record.seq, i);
            assert_eq!(record.entry, entry(i));
        }
        assert_eq!(appended[0].prev_hash, GENESIS_HASH);
        assert_eq!(appended[1].prev_hash, appended[0].hash);

        let all = store.audit_range(1, 100).unwrap();
        assert_eq!(all, appended);
        assert_eq!(verify_chain(all), Ok(5));
        assert_eq!(store.audit_range(0, 100).unwrap(), appended);
    }

    pub(super) fn audit_pagination(store: &dyn Store) {
        let appended: Vec<_> = (1..=7)
            .map(|i| store.append_audit(entry(i)).unwrap())
            .collect();

        assert_eq!(store.audit_range(1, 3).unwrap(), appended[..3]);
        assert_eq!(store.audit_range(4, 3).unwrap(), appended[3..6]);
        assert_eq!(store.audit_range(7, 3).unwrap(), appended[6..]);
        assert_eq!(store.audit_range(8, 3).unwrap(), Vec::new());
        assert_eq!(store.audit_range(3, 0).unwrap(), Vec::new());

        // Walking the pages reassembles the chain.
        let mut walked = Vec::new();
        let mut from = 1;
        loop {
            let page = store.audit_range(from, 2).unwrap();
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            walked.extend(page);
        }
        assert_eq!(walked, appended);
        assert_eq!(verify_chain(walked), Ok(7));
    }

    pub(super) fn flush_succeeds(store: &dyn Store) {
        store.flush().unwrap();
        store.set_revoke_all_before(NOW).unwrap();
        store.flush().unwrap();
        assert_eq!(store.revoke_all_before().unwrap(), Some(NOW));
    }
}

/// One `#[test]` per conformance case for the implementation that
/// `$open()` returns as `(guard, Box<dyn Store>)`; the guard (e.g. a
/// temporary directory) lives as long as the store.
macro_rules! store_conformance {
    ($open:path) => {
        store_conformance!(@cases $open;
            principals_round_trip,
            principal_update_replaces,
            principal_name_conflict,
            principal_rename_frees_old_name,
            enrollment_code_round_trip,
            redeem_enrolls,
            redeem_twice_is_code_used,
            redeem_expired_code,
            redeem_unknown_code,
            redeem_same_key_twice_is_refused,
            concurrent_redemptions_enroll_once,
            devices_update,
            challenges_are_taken_once,
            challenge_context_is_kept_and_peeking_does_not_spend,
            expired_challenges_are_refused,
            pruning_keeps_live_challenges,
            sessions_round_trip,
            rotation_and_reuse,
            rotation_of_unknown_or_expired_token,
            concurrent_rotations_rotate_once,
            replay_fresh_then_replayed,
            prune_removes_only_expired,
            concurrent_replays_admit_one,
            replay_guard_adapter,
            signing_keys_oldest_first,
            revocation_feed,
            revoke_all_only_moves_forward,
            audit_chain,
            audit_pagination,
            flush_succeeds,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let (_guard, store) = $open();
                $crate::store::tests::conformance::$case(&*store);
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// SledStore.

fn open_sled() -> (TempDir, Box<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), false).unwrap();
    (dir, Box::new(store))
}

fn open_sled_synced() -> (TempDir, Box<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), true).unwrap();
    (dir, Box::new(store))
}

mod sled_store {
    store_conformance!(super::open_sled);
}

/// The same suite with an fsync after every write, as deployed.
mod sled_store_synced {
    store_conformance!(super::open_sled_synced);
}

#[test]
fn sled_state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let alice = principal("alice");
    let laptop = device(&alice, 1);
    let s = session(&laptop);
    let r0 = refresh(&s, NOW, NOW.plus(3600));
    let r1 = refresh(&s, NOW.plus(10), NOW.plus(3610));
    let first_revocation;
    let audited;
    {
        let store = SledStore::open(dir.path(), true).unwrap();
        store.put_principal(&alice).unwrap();
        enroll(&store, &hash(1), &alice, &laptop);
        store.create_session(&s, &hash(10), &r0).unwrap();
        assert!(matches!(
            store
                .rotate_refresh_token(&hash(10), &hash(11), &r1, NOW.plus(10))
                .unwrap(),
            Rotated::Rotated(_)
        ));
        assert_eq!(
            store
                .check_and_record(&hash(20), NOW.plus(60), NOW)
                .unwrap(),
            Freshness::Fresh
        );
        store
            .put_challenge(&hash(30), NOW.plus(60), b"ctx")
            .unwrap();
        store.put_signing_key(&signing_key("kid-1", NOW)).unwrap();
        first_revocation = store
            .append_revocation(revocation("session", s.id.as_str(), NOW.plus(1)))
            .unwrap();
        store.set_revoke_all_before(NOW.minus(5)).unwrap();
        audited = (1..=3)
            .map(|i| store.append_audit(entry(i)).unwrap())
            .collect::<Vec<_>>();
        // Dropped here without an explicit flush: sync_writes made every
        // acknowledged write durable already.
    }

    let store = crate::testing::reopen_store(dir.path(), true);
    assert_eq!(
        store.principal_by_name("alice").unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.device(&laptop.id).unwrap(), Some(laptop.clone()));
    assert_eq!(
        store.device_by_jkt(&laptop.jkt).unwrap(),
        Some(laptop.clone())
    );
    assert_eq!(
        store.enrollment_code(&hash(1)).unwrap().unwrap().used_by,
        Some(laptop.id.clone())
    );
    assert_eq!(
        store
            .redeem_enrollment_code(&hash(1), &device(&alice, 2), NOW)
            .unwrap(),
        Redeemed::CodeUsed
    );
    assert_eq!(store.session(&s.id).unwrap(), Some(s.clone()));
    assert_eq!(
        store.refresh_token(&hash(10)).unwrap().unwrap().used_at,
        Some(NOW.plus(10))
    );
    assert_eq!(store.refresh_token(&hash(11)).unwrap(), Some(r1));
    assert_eq!(
        store
            .check_and_record(&hash(20), NOW.plus(60), NOW.plus(1))
            .unwrap(),
        Freshness::Replayed
    );
    assert_eq!(
        store.take_challenge(&hash(30), NOW).unwrap().as_deref(),
        Some(&b"ctx"[..])
    );
    assert_eq!(store.signing_keys().unwrap().len(), 1);
    assert_eq!(
        store.revocations_since(0, 10).unwrap(),
        vec![first_revocation.clone()]
    );
    assert_eq!(store.revoke_all_before().unwrap(), Some(NOW.minus(5)));

    // The revocation cursor keeps increasing across the restart.
    let second_revocation = store
        .append_revocation(revocation("device", laptop.id.as_str(), NOW.plus(2)))
        .unwrap();
    assert!(second_revocation.cursor > first_revocation.cursor);
    assert_eq!(
        store
            .revocations_since(first_revocation.cursor, 10)
            .unwrap(),
        vec![second_revocation]
    );

    // The audit chain continues where it stopped.
    assert_eq!(store.audit_range(1, 100).unwrap(), audited);
    let next = store.append_audit(entry(4)).unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(next.prev_hash, audited[2].hash);
    assert_eq!(verify_chain(store.audit_range(1, 100).unwrap()), Ok(4));
}

#[test]
fn sled_store_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), false).unwrap();
    let err = SledStore::open(dir.path(), false).err().unwrap();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    drop(store);
    SledStore::open(dir.path(), false).unwrap();
}

// ---------------------------------------------------------------------------
// The versioned envelope.

#[test]
fn records_round_trip_in_the_current_format() {
    let event = RevocationEvent {
        cursor: 7,
        before: Some(NOW),
        ..revocation("all_before", "", NOW)
    };
    let bytes = records::encode("revocations", &event).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["v"], FORMAT_VERSION);
    assert_eq!(json["cursor"], 7);
    assert_eq!(
        records::decode::<RevocationEvent>("revocations", &bytes).unwrap(),
        event
    );

    let alice = principal("alice");
    let laptop = device(&alice, 1);
    let bytes = records::encode("devices", &laptop).unwrap();
    assert_eq!(
        records::decode::<Device>("devices", &bytes).unwrap(),
        laptop
    );

    let record = crate::audit::chain(None, entry(1));
    let bytes = records::encode("audit", &record).unwrap();
    assert_eq!(
        records::decode::<super::AuditRecord>("audit", &bytes).unwrap(),
        record
    );
}

#[test]
fn revocation_events_carry_a_device_entry_only_when_present() {
    // A record written before device events existed still decodes.
    let old = br#"{"v":1,"cursor":3,"at":1750000000,"kind":"session","id":"s-x"}"#;
    let event = records::decode::<RevocationEvent>("revocations", old).unwrap();
    assert_eq!(event.device, None);
    let bytes = records::encode("revocations", &event).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(json.get("device").is_none(), "{json}");

    let alice = principal("alice");
    let laptop = device(&alice, 1);
    let event = RevocationEvent {
        device: Some(super::DeviceFeedEntry::new(&laptop, false)),
        ..revocation("device_enrolled", laptop.id.as_str(), NOW)
    };
    let bytes = records::encode("revocations", &event).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        json["device"],
        serde_json::json!({
            "device_id": laptop.id.as_str(),
            "principal_id": alice.id.as_str(),
            "jkt": laptop.jkt.as_str(),
            "kind": laptop.kind.as_str(),
            "state": "active",
            "principal_disabled": false,
        })
    );
    assert_eq!(
        records::decode::<RevocationEvent>("revocations", &bytes).unwrap(),
        event
    );
}

#[test]
fn records_of_an_unknown_format_are_corrupt() {
    let future = br#"{"v":99,"cursor":1,"at":1750000000,"kind":"session","id":"s-x"}"#;
    match records::decode::<RevocationEvent>("revocations", future) {
        Err(StoreError::Corrupt { tree, reason }) => {
            assert_eq!(tree, "revocations");
            assert!(reason.contains("99"), "{reason}");
            assert!(reason.contains("format version"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A version 0 is no better than a newer one.
    let past = br#"{"v":0,"cursor":1,"at":1750000000,"kind":"session","id":"s-x"}"#;
    assert!(matches!(
        records::decode::<RevocationEvent>("revocations", past),
        Err(StoreError::Corrupt {
            tree: "revocations",
            ..
        })
    ));
}

#[test]
fn undecodable_records_are_corrupt() {
    let cases: &[(&str, &[u8])] = &[
        ("garbage", b"\x00\xffnot json at all"),
        ("empty", b""),
        (
            "no version",
            br#"{"cursor":1,"at":1750000000,"kind":"session","id":"s-x"}"#,
        ),
        (
            "version not a number",
            br#"{"v":"1","cursor":1,"at":1,"kind":"session","id":"s-x"}"#,
        ),
        (
            "missing field",
            br#"{"v":1,"cursor":1,"kind":"session","id":"s-x"}"#,
        ),
        (
            "wrong type",
            br#"{"v":1,"cursor":"one","at":1,"kind":"session","id":"s-x"}"#,
        ),
        ("truncated", br#"{"v":1,"cursor":1,"at":17500"#),
        ("not an object", b"[1,2,3]"),
    ];
    for (name, bytes) in cases {
        match records::decode::<RevocationEvent>("revocations", bytes) {
            Err(StoreError::Corrupt { tree, reason }) => {
                assert_eq!(tree, "revocations", "{name}");
                assert!(!reason.is_empty(), "{name}");
            }
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
    }
    // A record whose id is not one of ours is corrupt too.
    let bad_id = br#"{"v":1,"session":"x-1","jkt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","issued_at":1,"expires_at":2,"used_at":null}"#;
    assert!(matches!(
        records::decode::<RefreshRecord>("refresh_tokens", bad_id),
        Err(StoreError::Corrupt { .. })
    ));
}

// ---------------------------------------------------------------------------
// Admin step-up (issue 7): the conformance cases of the step-up methods,
// run for every implementation like the suite above.

mod step_up_conformance {
    use super::*;
    use crate::store::{StepUpAttempt, StepUpChallengeRecord, StepUpGrant, StoredTotp};

    fn totp(tag: &str) -> StoredTotp {
        StoredTotp {
            nonce: format!("nonce-{tag}"),
            sealed: format!("sealed-{tag}"),
            enrolled_at: NOW,
            confirmed: false,
        }
    }

    fn grant(sid: &SessionId, owner: &PrincipalId, expires_at: UnixTime) -> StepUpGrant {
        StepUpGrant {
            sid: sid.clone(),
            principal: owner.clone(),
            method: "totp".to_owned(),
            device: None,
            granted_at: NOW,
            expires_at,
        }
    }

    fn challenge(owner: &PrincipalId, expires_at: UnixTime) -> StepUpChallengeRecord {
        StepUpChallengeRecord {
            sid: SessionId::generate(),
            principal: owner.clone(),
            expires_at,
        }
    }

    pub(super) fn state_defaults_and_totp_secret(store: &dyn Store) {
        let alice = PrincipalId::generate();
        let bob = PrincipalId::generate();
        assert_eq!(store.step_up_state(&alice).unwrap(), Default::default());
        assert!(!store.set_totp_secret(&alice, Some(&totp("a1"))).unwrap());
        assert!(store.set_totp_secret(&alice, Some(&totp("a2"))).unwrap());
        let state = store.step_up_state(&alice).unwrap();
        assert_eq!(state.totp, Some(totp("a2")));
        // Debug never shows the sealed secret.
        assert!(!format!("{state:?}").contains("sealed-a2"), "{state:?}");
        // Another principal's state is its own.
        assert_eq!(store.step_up_state(&bob).unwrap(), Default::default());
        // Failures survive a secret change; a reset removes only the secret.
        assert_eq!(
            store.begin_step_up_attempt(&alice, NOW, 3).unwrap(),
            StepUpAttempt::Allowed(1)
        );
        assert!(store.set_totp_secret(&alice, None).unwrap());
        assert!(!store.set_totp_secret(&alice, None).unwrap());
        let state = store.step_up_state(&alice).unwrap();
        assert_eq!((state.totp, state.failures), (None, 1));
    }

    pub(super) fn totp_steps_are_spent_once_and_in_order(store: &dyn Store) {
        let alice = PrincipalId::generate();
        store.set_totp_secret(&alice, Some(&totp("a"))).unwrap();
        assert!(store.spend_totp_step(&alice, 10).unwrap());
        let state = store.step_up_state(&alice).unwrap();
        assert_eq!(state.last_totp_step, Some(10));
        assert!(
            state.totp.unwrap().confirmed,
            "a spent step confirms the secret"
        );
        assert!(!store.spend_totp_step(&alice, 10).unwrap(), "same step");
        assert!(!store.spend_totp_step(&alice, 9).unwrap(), "earlier step");
        assert!(store.spend_totp_step(&alice, 11).unwrap());
        // Steps are per principal, and per secret.
        assert!(store.spend_totp_step(&PrincipalId::generate(), 11).unwrap());
        store.set_totp_secret(&alice, Some(&totp("b"))).unwrap();
        assert_eq!(store.step_up_state(&alice).unwrap().last_totp_step, None);
        assert!(store.spend_totp_step(&alice, 11).unwrap());
    }

    pub(super) fn attempts_lock_after_the_limit_and_clear(store: &dyn Store) {
        let alice = PrincipalId::generate();
        let until = NOW.plus(900);
        for n in 1..=2 {
            assert_eq!(
                store.begin_step_up_attempt(&alice, NOW, 3).unwrap(),
                StepUpAttempt::Allowed(n)
            );
            let after = store.fail_step_up_attempt(&alice, 3, until).unwrap();
            assert_eq!((after.failures, after.locked_until), (n, None));
        }
        assert_eq!(
            store.begin_step_up_attempt(&alice, NOW, 3).unwrap(),
            StepUpAttempt::Allowed(3)
        );
        let after = store.fail_step_up_attempt(&alice, 3, until).unwrap();
        assert_eq!((after.failures, after.locked_until), (0, Some(until)));
        assert_eq!(
            store
                .begin_step_up_attempt(&alice, NOW.plus(899), 3)
                .unwrap(),
            StepUpAttempt::Locked(until)
        );
        // The lock ends on its own; the count starts again.
        assert_eq!(
            store.begin_step_up_attempt(&alice, until, 3).unwrap(),
            StepUpAttempt::Allowed(1)
        );
        // A success (or an unlock) clears everything.
        assert!(!store.clear_step_up_failures(&alice, until).unwrap());
        assert_eq!(store.step_up_state(&alice).unwrap(), Default::default());
        // Unlocking a locked principal says it was locked.
        for _ in 0..3 {
            store.begin_step_up_attempt(&alice, NOW, 3).unwrap();
        }
        store.fail_step_up_attempt(&alice, 3, until).unwrap();
        assert!(store.clear_step_up_failures(&alice, NOW).unwrap());
        assert_eq!(
            store.begin_step_up_attempt(&alice, NOW, 3).unwrap(),
            StepUpAttempt::Allowed(1)
        );
    }

    pub(super) fn attempts_under_way_cannot_exceed_the_limit(store: &dyn Store) {
        let alice = PrincipalId::generate();
        let outcomes: Vec<StepUpAttempt> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| store.begin_step_up_attempt(&alice, NOW, 3).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let allowed = outcomes
            .iter()
            .filter(|o| matches!(o, StepUpAttempt::Allowed(_)))
            .count();
        assert_eq!(allowed, 3, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, StepUpAttempt::Allowed(_) | StepUpAttempt::Saturated)),
            "{outcomes:?}"
        );
    }

    pub(super) fn grants_belong_to_one_session(store: &dyn Store) {
        let alice = PrincipalId::generate();
        let (s1, s2) = (SessionId::generate(), SessionId::generate());
        assert_eq!(store.step_up_grant(&s1).unwrap(), None);
        store
            .put_step_up_grant(&grant(&s1, &alice, NOW.plus(300)))
            .unwrap();
        assert_eq!(
            store.step_up_grant(&s1).unwrap(),
            Some(grant(&s1, &alice, NOW.plus(300)))
        );
        assert_eq!(store.step_up_grant(&s2).unwrap(), None);
        // A new grant replaces the old one.
        store
            .put_step_up_grant(&grant(&s1, &alice, NOW.plus(600)))
            .unwrap();
        assert_eq!(
            store.step_up_grant(&s1).unwrap().unwrap().expires_at,
            NOW.plus(600)
        );
    }

    pub(super) fn step_up_challenges_are_taken_once(store: &dyn Store) {
        let alice = PrincipalId::generate();
        let live = challenge(&alice, NOW.plus(120));
        store.put_step_up_challenge(&hash(1), &live).unwrap();
        assert_eq!(
            store.take_step_up_challenge(&hash(1), NOW).unwrap(),
            Some(live)
        );
        assert_eq!(store.take_step_up_challenge(&hash(1), NOW).unwrap(), None);
        assert_eq!(store.take_step_up_challenge(&hash(2), NOW).unwrap(), None);
        // An expired one is refused, and gone.
        store
            .put_step_up_challenge(&hash(3), &challenge(&alice, NOW))
            .unwrap();
        assert_eq!(store.take_step_up_challenge(&hash(3), NOW).unwrap(), None);
        assert_eq!(
            store
                .take_step_up_challenge(&hash(3), NOW.minus(10))
                .unwrap(),
            None
        );
        // Enrollment challenges and step-up challenges do not mix.
        store
            .put_step_up_challenge(&hash(4), &challenge(&alice, NOW.plus(120)))
            .unwrap();
        assert_eq!(store.take_challenge(&hash(4), NOW).unwrap(), None);
        assert!(
            store
                .take_step_up_challenge(&hash(4), NOW)
                .unwrap()
                .is_some()
        );
    }

    pub(super) fn step_up_pruning_removes_only_expired(store: &dyn Store) {
        let alice = PrincipalId::generate();
        let (old, live) = (SessionId::generate(), SessionId::generate());
        store.put_step_up_grant(&grant(&old, &alice, NOW)).unwrap();
        store
            .put_step_up_grant(&grant(&live, &alice, NOW.plus(1)))
            .unwrap();
        store
            .put_step_up_challenge(&hash(1), &challenge(&alice, NOW))
            .unwrap();
        store
            .put_step_up_challenge(&hash(2), &challenge(&alice, NOW.plus(1)))
            .unwrap();
        store.set_totp_secret(&alice, Some(&totp("a"))).unwrap();
        assert_eq!(store.prune_step_up(NOW).unwrap(), 2);
        assert_eq!(store.step_up_grant(&old).unwrap(), None);
        assert!(store.step_up_grant(&live).unwrap().is_some());
        assert!(
            store
                .take_step_up_challenge(&hash(2), NOW)
                .unwrap()
                .is_some()
        );
        // The admin's state is not pruned.
        assert!(store.step_up_state(&alice).unwrap().totp.is_some());
        assert_eq!(store.prune_step_up(NOW).unwrap(), 0);
    }
}

/// One `#[test]` per step-up conformance case, as `store_conformance!`.
macro_rules! step_up_store_conformance {
    ($open:path) => {
        step_up_store_conformance!(@cases $open;
            state_defaults_and_totp_secret,
            totp_steps_are_spent_once_and_in_order,
            attempts_lock_after_the_limit_and_clear,
            attempts_under_way_cannot_exceed_the_limit,
            grants_belong_to_one_session,
            step_up_challenges_are_taken_once,
            step_up_pruning_removes_only_expired,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let (_guard, store) = $open();
                $crate::store::tests::step_up_conformance::$case(&*store);
            }
        )*
    };
}

mod sled_store_step_up {
    step_up_store_conformance!(super::open_sled);
}

mod sled_store_step_up_synced {
    step_up_store_conformance!(super::open_sled_synced);
}

#[test]
fn step_up_state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let alice = PrincipalId::generate();
    let sid = SessionId::generate();
    {
        let store = SledStore::open(dir.path(), true).unwrap();
        store.begin_step_up_attempt(&alice, NOW, 3).unwrap();
        assert!(store.spend_totp_step(&alice, 7).unwrap());
        store
            .put_step_up_grant(&super::StepUpGrant {
                sid: sid.clone(),
                principal: alice.clone(),
                method: "yubikey".to_owned(),
                device: Some(DeviceId::generate()),
                granted_at: NOW,
                expires_at: NOW.plus(300),
            })
            .unwrap();
    }
    let store = crate::testing::reopen_store(dir.path(), true);
    let state = store.step_up_state(&alice).unwrap();
    assert_eq!((state.failures, state.last_totp_step), (1, Some(7)));
    assert!(!store.spend_totp_step(&alice, 7).unwrap());
    assert_eq!(
        store.step_up_grant(&sid).unwrap().unwrap().method,
        "yubikey"
    );
}
