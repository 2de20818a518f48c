//! Enrollment: how a device key joins the issuer. No HTTP here:
//! `http/enroll.rs` turns requests into these calls and [`EnrollError`]s
//! into RFC 6749 answers.
//!
//! 1. An admin (or `holdfastd admin bootstrap`, for the first admin) makes a
//!    one-time **enrollment code** ([`create_code`], [`bootstrap_admin`]). It
//!    names a principal and the key kinds it allows, and expires. Only its
//!    SHA-256 is stored.
//! 2. The device asks for a one-time **challenge** ([`issue_challenge`],
//!    `POST /enroll/challenge`), valid [`CHALLENGE_TTL_SECS`] seconds. Only
//!    its SHA-256 is stored.
//! 3. The device signs an **enrollment proof** with its new key: a compact
//!    JWS with header `{"typ":"holdfast-enroll+jwt","alg":"ES256","jwk":…}`
//!    (the new public key) and claims `{"challenge","code_hash","iat"}`.
//!    `code_hash` is the base64url SHA-256 of the code: it binds the proof to
//!    this code, so a proof seen once cannot be moved to another code. The
//!    challenge makes the proof fresh and single-use.
//! 4. The device redeems the code ([`enroll`], `POST /enroll`) with the proof,
//!    its key kind, a name and, for hardware keys, attestation evidence.
//!
//! [`enroll`] checks, in this order, each with its own [`EnrollError`]: the
//! device name; the proof (JWS, `typ`, `alg`, `jwk`, P-256, signature,
//! claims); `code_hash`; `iat`; the code (known, unused, unexpired); its
//! principal; the kind (allowed by the code and by the policy); the
//! challenge (live; its stored context is read); the evidence
//! (`attestation::verify`: TPM and YubiKey attestation, see that module);
//! then it spends the challenge, and finally the store redeems the code and
//! registers the device in one atomic step. The challenge is spent after
//! every stateless and read-only check, so a request refused for another
//! reason does not burn it. Every decision, made or refused, is audited and
//! counted.
//!
//! A TPM enrollment sends its EK certificate and attestation key with the
//! challenge request ([`ChallengeRequest`]): the answer then carries a
//! credential-activation challenge, and the activation's context is stored
//! with the challenge.

mod attestation;
mod error;
mod proof;

use holdfast_hw::KeyKind;
use holdfast_proto::{Jkt, UnixTime};
use serde::{Deserialize, Serialize};

pub use attestation::{AttestationTrust, ChallengeRequest};
pub use error::EnrollError;
pub use proof::{ENROLL_PROOF_TYP, IAT_WINDOW_SECS, code_hash};

use crate::audit::AuditEntry;
use crate::issuer::{RequestContext, audit};
use crate::model::{Device, DeviceId, DeviceState, EnrollmentCode, Principal, PrincipalId, Role};
use crate::secret::{random_secret, secret_hash};
use crate::state::AppState;
use crate::store::{Redeemed, StoreError};

use self::proof::verify_proof;

/// How long a challenge can be used, in seconds.
pub const CHALLENGE_TTL_SECS: u64 = 300;
/// Longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 100;
/// Longest principal name, in characters.
pub const MAX_PRINCIPAL_NAME_CHARS: usize = 200;
/// `created_by` of the codes `holdfastd admin bootstrap` makes.
pub const BOOTSTRAP_CREATOR: &str = "bootstrap";

/// A one-time challenge for an enrollment proof (`POST /enroll/challenge`).
#[derive(Clone, Serialize)]
pub struct Challenge {
    /// The value to put in the proof's `challenge` claim.
    pub challenge: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// For a TPM enrollment: the credential-activation challenge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<holdfast_hw::attestation::evidence::TpmActivationChallenge>,
}

impl core::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Challenge")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The body of `POST /enroll`. Unknown members are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment code, as the admin handed it out.
    pub code: String,
    /// Where the key lives: `software`, `tpm` or `yubikey`.
    #[serde(deserialize_with = "crate::model::key_kind::deserialize")]
    pub kind: KeyKind,
    /// A name for people, 1 to [`MAX_DEVICE_NAME_CHARS`] characters.
    pub name: String,
    /// The enrollment proof (compact JWS by the new key).
    pub proof: String,
    /// Attestation evidence: `null` or absent for software keys, required
    /// for hardware keys.
    #[serde(default)]
    pub attestation: Option<serde_json::Value>,
}

impl core::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The code is a secret and the proof a credential: neither is printed.
        f.debug_struct("EnrollRequest")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("attestation", &self.attestation.is_some())
            .finish_non_exhaustive()
    }
}

/// A registered device, as `POST /enroll` answers (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    /// The new device.
    pub device_id: DeviceId,
    /// Its OAuth `client_id` (the device id).
    pub client_id: DeviceId,
    /// The owner's id, the `sub` of its tokens.
    pub principal_id: PrincipalId,
    /// The owner's name.
    pub principal: String,
    /// Thumbprint of the enrolled key.
    pub jkt: Jkt,
    /// `software`, `tpm` or `yubikey`.
    pub kind: &'static str,
    /// Where to get tokens.
    pub token_endpoint: String,
    /// The issuer (`iss` of its tokens).
    pub issuer: String,
}

/// Makes a one-time enrollment code for the principal named
/// `principal_name`, allowing `allowed_kinds`, valid `ttl_secs` from `now`.
///
/// The principal is created (with `roles`) if no principal has that name;
/// otherwise it is reused, but only if its roles are exactly `roles`: a code
/// never changes what a principal may do. Only the code's SHA-256 is stored,
/// and the creation is audited without the code. Returns the code (to hand
/// to the device owner) and its stored record.
///
/// # Errors
/// [`EnrollError::PrincipalNameInvalid`], [`EnrollError::NoKindsAllowed`],
/// [`EnrollError::RolesDiffer`], [`EnrollError::PrincipalUnavailable`] for a
/// disabled principal, or a storage failure.
pub fn create_code(
    state: &AppState,
    principal_name: &str,
    roles: &[Role],
    allowed_kinds: &[KeyKind],
    created_by: &str,
    ttl_secs: u64,
    now: UnixTime,
) -> Result<(String, EnrollmentCode), EnrollError> {
    if !valid_name(principal_name, MAX_PRINCIPAL_NAME_CHARS) {
        return Err(EnrollError::PrincipalNameInvalid);
    }
    let mut kinds: Vec<KeyKind> = Vec::new();
    for kind in allowed_kinds {
        if !kinds.contains(kind) {
            kinds.push(*kind);
        }
    }
    if kinds.is_empty() {
        return Err(EnrollError::NoKindsAllowed);
    }
    let principal = principal_for_code(state, principal_name, roles, now)?;
    let code = random_secret();
    let record = EnrollmentCode {
        principal: principal.id.clone(),
        allowed_kinds: kinds,
        created_by: created_by.to_owned(),
        created_at: now,
        expires_at: now.plus(ttl_secs),
        used_by: None,
    };
    state
        .store
        .put_enrollment_code(&secret_hash(&code), &record)?;
    audit(
        state,
        AuditEntry::new(now, "enrollment_code_created", created_by, "ok")
            .detail("principal", principal.id.as_str())
            .detail("principal_name", principal.name.as_str())
            .detail("kinds", kinds_text(&record.allowed_kinds))
            .detail("expires_at", record.expires_at.as_secs()),
    );
    Ok((code, record))
}

/// For `holdfastd admin bootstrap`: creates the admin principal
/// `admin_name` (roles `admin` and `device`) and returns a one-time code for
/// its first device, allowing every kind the policy accepts and valid
/// `policy.enrollment_code_ttl_secs`.
///
/// Refused once an enabled admin has an active device: from then on, admins
/// make codes through the admin API. Until then it can be run again (say,
/// after the first code expired). Audited either way.
///
/// # Errors
/// [`EnrollError::AlreadyBootstrapped`], the errors of [`create_code`].
pub fn bootstrap_admin(
    state: &AppState,
    admin_name: &str,
    now: UnixTime,
) -> Result<String, EnrollError> {
    let result = bootstrap_inner(state, admin_name, now);
    let outcome = match &result {
        Ok(_) => "ok",
        Err(err) => err.wire_code(),
    };
    let mut entry = AuditEntry::new(now, "admin_bootstrap", BOOTSTRAP_CREATOR, outcome)
        .detail("principal_name", admin_name);
    if let Err(err) = &result {
        entry = entry
            .detail("check", err.check())
            .detail("reason", err.to_string());
    }
    audit(state, entry);
    result
}

fn bootstrap_inner(
    state: &AppState,
    admin_name: &str,
    now: UnixTime,
) -> Result<String, EnrollError> {
    let devices = state.store.devices()?;
    for principal in state.store.principals()? {
        if principal.has_role(Role::Admin)
            && !principal.disabled
            && devices
                .iter()
                .any(|d| d.principal == principal.id && d.state == DeviceState::Active)
        {
            return Err(EnrollError::AlreadyBootstrapped);
        }
    }
    let (code, _) = create_code(
        state,
        admin_name,
        &[Role::Admin, Role::Device],
        &state.settings.accepted_kinds,
        BOOTSTRAP_CREATOR,
        state.settings.raw.policy.enrollment_code_ttl_secs,
        now,
    )?;
    Ok(code)
}

/// Issues a one-time challenge, valid [`CHALLENGE_TTL_SECS`] from `now`.
/// Only its SHA-256 is stored.
///
/// # Errors
/// A storage failure.
pub fn issue_challenge(
    state: &AppState,
    request: &ChallengeRequest,
    now: UnixTime,
) -> Result<Challenge, EnrollError> {
    let (tpm, context) = match &request.tpm {
        Some(activation) => {
            let (challenge, context) =
                attestation::begin_tpm(&state.settings.attestation, activation, now)?;
            (Some(challenge), context)
        }
        None => (None, Vec::new()),
    };
    let challenge = random_secret();
    state.store.put_challenge(
        &secret_hash(&challenge),
        now.plus(CHALLENGE_TTL_SECS),
        &context,
    )?;
    Ok(Challenge {
        challenge,
        expires_in: CHALLENGE_TTL_SECS,
        tpm,
    })
}

/// Redeems an enrollment code: checks `request` (see the module docs for the
/// order) and registers the device. The decision is audited and counted.
///
/// # Errors
/// The [`EnrollError`] of the first failed check.
#[tracing::instrument(skip_all, fields(kind = %request.kind))]
pub fn enroll(
    state: &AppState,
    request: &EnrollRequest,
    ctx: &RequestContext,
) -> Result<Enrolled, EnrollError> {
    let mut seen = Seen::default();
    let result = enroll_inner(state, request, ctx, &mut seen);
    match &result {
        Ok(enrolled) => {
            state.metrics.enrolled();
            tracing::info!(device_id = %enrolled.device_id, jkt = %enrolled.jkt, "device enrolled");
        }
        Err(err) => refused(state, err, ctx, Some(request.kind), &seen),
    }
    result
}

/// Records a refusal decided before [`enroll`] could run (a body that is not
/// JSON, or too large): counted and audited like any other.
pub fn record_refusal(state: &AppState, err: &EnrollError, ctx: &RequestContext) {
    refused(state, err, ctx, None, &Seen::default());
}

/// What a refused attempt had shown before it failed, for the audit record.
#[derive(Default)]
struct Seen {
    jkt: Option<Jkt>,
    principal: Option<PrincipalId>,
}

fn enroll_inner(
    state: &AppState,
    request: &EnrollRequest,
    ctx: &RequestContext,
    seen: &mut Seen,
) -> Result<Enrolled, EnrollError> {
    let now = ctx.now;
    if !valid_name(&request.name, MAX_DEVICE_NAME_CHARS) {
        return Err(EnrollError::DeviceNameInvalid);
    }
    // Possession of the new key, bound to this code and fresh.
    let proof = verify_proof(&request.proof, &request.code, now)?;
    seen.jkt = Some(proof.jkt());

    // The code: known, unused, unexpired. Read here for a precise answer;
    // the redemption below checks it again atomically.
    let code_hash = secret_hash(&request.code);
    let code = state
        .store
        .enrollment_code(&code_hash)?
        .ok_or(EnrollError::UnknownCode)?;
    seen.principal = Some(code.principal.clone());
    if code.used_by.is_some() {
        return Err(EnrollError::CodeUsed);
    }
    if code.expires_at <= now {
        return Err(EnrollError::CodeExpired);
    }
    let principal = state
        .store
        .principal(&code.principal)?
        .filter(|p| !p.disabled)
        .ok_or(EnrollError::PrincipalUnavailable)?;

    // The kind: allowed by the admin who made the code, and by the policy
    // (software keys only with `danger_accept_software_keys`).
    if !code.allowed_kinds.contains(&request.kind) {
        return Err(EnrollError::KindNotAllowed { kind: request.kind });
    }
    if !state.settings.accepted_kinds.contains(&request.kind) {
        return Err(EnrollError::KindNotAccepted { kind: request.kind });
    }
    // The challenge must be live; it is read here (the evidence may depend
    // on what was stored with it) and spent only once everything passed.
    let challenge_hash = secret_hash(proof.challenge());
    let context = state
        .store
        .challenge(&challenge_hash, now)?
        .ok_or(EnrollError::ChallengeUnknown)?;
    let attestation = attestation::verify(
        &state.settings.attestation,
        request.kind,
        request.attestation.as_ref(),
        &proof,
        &context,
        principal.has_role(Role::Admin),
        now,
    )?;
    if state.store.take_challenge(&challenge_hash, now)?.as_deref() != Some(context.as_slice()) {
        return Err(EnrollError::ChallengeUnknown);
    }

    let device = Device {
        id: DeviceId::generate(),
        principal: principal.id.clone(),
        name: request.name.clone(),
        jkt: proof.jkt(),
        jwk: proof.jwk().clone(),
        kind: request.kind,
        attestation,
        state: DeviceState::Active,
        created_at: now,
        last_seen: None,
    };
    let device = match state
        .store
        .redeem_enrollment_code(&code_hash, &device, now)?
    {
        Redeemed::Enrolled(device) => device,
        Redeemed::UnknownCode => return Err(EnrollError::UnknownCode),
        Redeemed::CodeUsed => return Err(EnrollError::CodeUsed),
        Redeemed::CodeExpired => return Err(EnrollError::CodeExpired),
        Redeemed::KeyAlreadyEnrolled => return Err(EnrollError::KeyAlreadyEnrolled),
    };
    // Verifiers admit only enrolled keys: tell them about this one.
    crate::revocation::publish_device(state, "device_enrolled", &device, now)?;
    audit(
        state,
        AuditEntry::new(now, "device_enrolled", device.id.as_str(), "ok")
            .ip(ctx.ip.map(|ip| ip.to_string()).as_deref())
            .detail("principal", principal.id.as_str())
            .detail("device_id", device.id.as_str())
            .detail("name", device.name.as_str())
            .detail("jkt", device.jkt.as_str())
            .detail("kind", device.kind.as_str())
            .detail("code_created_by", code.created_by.as_str()),
    );
    Ok(Enrolled {
        device_id: device.id.clone(),
        client_id: device.id.clone(),
        principal_id: principal.id,
        principal: principal.name,
        jkt: device.jkt,
        kind: device.kind.as_str(),
        token_endpoint: state.settings.token_endpoint.as_str().to_owned(),
        issuer: state.settings.issuer.clone(),
    })
}

/// The principal a new code is for: the one with this name, or a new one.
fn principal_for_code(
    state: &AppState,
    name: &str,
    roles: &[Role],
    now: UnixTime,
) -> Result<Principal, EnrollError> {
    let mut wanted: Vec<Role> = Vec::new();
    for role in roles {
        if !wanted.contains(role) {
            wanted.push(*role);
        }
    }
    let principal = match state.store.principal_by_name(name)? {
        Some(existing) => existing,
        None => {
            let new = Principal {
                id: PrincipalId::generate(),
                name: name.to_owned(),
                roles: wanted.clone(),
                disabled: false,
                created_at: now,
            };
            match state.store.put_principal(&new) {
                Ok(()) => return Ok(new),
                // Another code for the same new name won the race: use its principal.
                Err(StoreError::Conflict(what)) => state
                    .store
                    .principal_by_name(name)?
                    .ok_or(EnrollError::Store(StoreError::Conflict(what)))?,
                Err(err) => return Err(err.into()),
            }
        }
    };
    let same_roles = principal.roles.iter().all(|r| wanted.contains(r))
        && wanted.iter().all(|r| principal.roles.contains(r));
    if !same_roles {
        return Err(EnrollError::RolesDiffer {
            name: name.to_owned(),
        });
    }
    if principal.disabled {
        return Err(EnrollError::PrincipalUnavailable);
    }
    Ok(principal)
}

fn refused(
    state: &AppState,
    err: &EnrollError,
    ctx: &RequestContext,
    kind: Option<KeyKind>,
    seen: &Seen,
) {
    state.metrics.refused("enrollment_refused", err.check());
    // Storage failures are logged once, where they become `server_error`.
    if !matches!(err, EnrollError::Store(_)) {
        tracing::info!(
            check = err.check(),
            error = err.wire_code(),
            "enrollment refused"
        );
    }
    let mut entry = AuditEntry::new(ctx.now, "enrollment_refused", "anonymous", err.wire_code())
        .ip(ctx.ip.map(|ip| ip.to_string()).as_deref())
        .detail("check", err.check())
        .detail("reason", err.to_string());
    if let Some(kind) = kind {
        entry = entry.detail("kind", kind.as_str());
    }
    if let Some(jkt) = &seen.jkt {
        entry = entry.detail("jkt", jkt.as_str());
    }
    if let Some(principal) = &seen.principal {
        entry = entry.detail("principal", principal.as_str());
    }
    audit(state, entry);
}

/// 1 to `max` characters, not blank, no control characters (which would
/// forge lines in logs and listings).
fn valid_name(name: &str, max: usize) -> bool {
    let count = name.chars().count();
    (1..=max).contains(&count) && !name.trim().is_empty() && !name.chars().any(char::is_control)
}

fn kinds_text(kinds: &[KeyKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use holdfast_hw::SoftwareKey;

    use super::*;
    use crate::testing::TestIssuer;

    fn proof(key: &SoftwareKey, challenge: &str, code: &str, iat: u64) -> String {
        holdfast_proto::build_enrollment_proof(key, challenge, code, UnixTime::from_secs(iat))
            .unwrap()
    }

    #[test]
    fn create_code_stores_only_the_hash_and_audits_without_the_code() {
        let issuer = TestIssuer::new();
        let state = &issuer.state;
        let (code, record) = create_code(
            state,
            "alice@example.com",
            &[Role::Device],
            &[KeyKind::Software, KeyKind::Software, KeyKind::Tpm],
            "admin:p-x",
            3600,
            issuer.now(),
        )
        .unwrap();
        assert_eq!(record.allowed_kinds, [KeyKind::Software, KeyKind::Tpm]);
        assert_eq!(record.expires_at, issuer.now().plus(3600));
        assert_eq!(
            state.store.enrollment_code(&secret_hash(&code)).unwrap(),
            Some(record.clone())
        );
        let principal = state
            .store
            .principal_by_name("alice@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(principal.id, record.principal);
        assert_eq!(principal.roles, [Role::Device]);

        let records = state.store.audit_range(0, 1000).unwrap();
        let last = records.last().unwrap();
        assert_eq!(last.entry.event, "enrollment_code_created");
        assert_eq!(last.entry.actor, "admin:p-x");
        assert_eq!(last.entry.details["kinds"], "software tpm");
        let everything = serde_json::to_string(&records).unwrap();
        assert!(!everything.contains(&code));
        assert!(!everything.contains(&code_hash(&code)));
    }

    #[test]
    fn create_code_reuses_a_principal_with_the_same_roles() {
        let issuer = TestIssuer::new();
        let state = &issuer.state;
        let now = issuer.now();
        let (_, first) = create_code(
            state,
            "ops",
            &[Role::Admin, Role::Device],
            &[KeyKind::Tpm],
            "x",
            60,
            now,
        )
        .unwrap();
        let (_, second) = create_code(
            state,
            "ops",
            &[Role::Device, Role::Admin],
            &[KeyKind::Tpm],
            "x",
            60,
            now,
        )
        .unwrap();
        assert_eq!(first.principal, second.principal);
        assert_eq!(state.store.principals().unwrap().len(), 1);
    }

    #[test]
    fn create_code_refuses_a_principal_with_other_roles() {
        let issuer = TestIssuer::new();
        let state = &issuer.state;
        let now = issuer.now();
        create_code(state, "bob", &[Role::Device], &[KeyKind::Tpm], "x", 60, now).unwrap();
        let err = create_code(
            state,
            "bob",
            &[Role::Admin, Role::Device],
            &[KeyKind::Tpm],
            "x",
            60,
            now,
        )
        .unwrap_err();
        assert!(
            matches!(err, EnrollError::RolesDiffer { ref name } if name == "bob"),
            "{err:?}"
        );
    }

    #[test]
    fn create_code_refuses_bad_names_no_kinds_and_disabled_principals() {
        let issuer = TestIssuer::new();
        let state = &issuer.state;
        let now = issuer.now();
        for name in ["", "   ", "a\nb", &"x".repeat(MAX_PRINCIPAL_NAME_CHARS + 1)] {
            let err = create_code(state, name, &[Role::Device], &[KeyKind::Tpm], "x", 60, now)
                .unwrap_err();
            assert!(
                matches!(err, EnrollError::PrincipalNameInvalid),
                "{name:?}: {err:?}"
            );
        }
        let err = create_code(state, "carol", &[Role::Device], &[], "x", 60, now).unwrap_err();
        assert!(matches!(err, EnrollError::NoKindsAllowed), "{err:?}");

        create_code(
            state,
            "carol",
            &[Role::Device],
            &[KeyKind::Tpm],
            "x",
            60,
            now,
        )
        .unwrap();
        let mut carol = state.store.principal_by_name("carol").unwrap().unwrap();
        carol.disabled = true;
        state.store.put_principal(&carol).unwrap();
        let err = create_code(
            state,
            "carol",
            &[Role::Device],
            &[KeyKind::Tpm],
            "x",
            60,
            now,
        )
        .unwrap_err();
        assert!(matches!(err, EnrollError::PrincipalUnavailable), "{err:?}");
    }

    #[test]
    fn bootstrap_creates_an_admin_and_a_code_for_every_accepted_kind() {
        let issuer = TestIssuer::new();
        let state = &issuer.state;
        let code = bootstrap_admin(state, "root", issuer.now()).unwrap();
        let admin = state.store.principal_by_name("root").unwrap().unwrap();
        assert!(admin.has_role(Role::Admin) && admin.has_role(Role::Device));
        let record = state
            .store
            .enrollment_code(&secret_hash(&code))
            .unwrap()
            .unwrap();
        assert_eq!(record.principal, admin.id);
        assert_eq!(record.created_by, BOOTSTRAP_CREATOR);
        assert_eq!(record.allowed_kinds, state.settings.accepted_kinds);
        assert_eq!(
            record.expires_at,
            issuer
                .now()
                .plus(state.settings.raw.policy.enrollment_code_ttl_secs)
        );
        let last = state.store.audit_range(0, 1000).unwrap().pop().unwrap();
        assert_eq!(
            (last.entry.event.as_str(), last.entry.outcome.as_str()),
            ("admin_bootstrap", "ok")
        );
    }

    #[test]
    fn bootstrap_is_refused_once_an_admin_has_an_active_device() {
        let issuer = TestIssuer::new();
        let state = &issuer.state;
        let now = issuer.now();
        // Before the admin enrolls a device, bootstrap can run again.
        bootstrap_admin(state, "root", now).unwrap();
        let code = bootstrap_admin(state, "root", now).unwrap();
        assert_eq!(state.store.principals().unwrap().len(), 1);

        let key = SoftwareKey::generate().unwrap();
        let challenge = issue_challenge(state, &ChallengeRequest::default(), now)
            .unwrap()
            .challenge;
        let request = EnrollRequest {
            proof: proof(&key, &challenge, &code, now.as_secs()),
            code,
            kind: KeyKind::Software,
            name: "root-laptop".into(),
            attestation: None,
        };
        let ctx = RequestContext {
            ip: None,
            user_agent: None,
            now,
        };
        enroll(state, &request, &ctx).unwrap();

        let err = bootstrap_admin(state, "root", now).unwrap_err();
        assert!(matches!(err, EnrollError::AlreadyBootstrapped), "{err:?}");
        let err = bootstrap_admin(state, "another-root", now).unwrap_err();
        assert!(matches!(err, EnrollError::AlreadyBootstrapped), "{err:?}");
        let last = state.store.audit_range(0, 1000).unwrap().pop().unwrap();
        assert_eq!(last.entry.event, "admin_bootstrap");
        assert_eq!(last.entry.outcome, "access_denied");
        assert_eq!(last.entry.details["check"], "already_bootstrapped");
    }

    #[test]
    fn device_names_are_bounded_and_printable() {
        assert!(valid_name("laptop-42", MAX_DEVICE_NAME_CHARS));
        assert!(valid_name("Alice’s YubiKey", MAX_DEVICE_NAME_CHARS));
        assert!(valid_name(
            &"é".repeat(MAX_DEVICE_NAME_CHARS),
            MAX_DEVICE_NAME_CHARS
        ));
        for bad in ["", " ", "a\u{7}", "a\r\nb", "\u{85}"] {
            assert!(!valid_name(bad, MAX_DEVICE_NAME_CHARS), "{bad:?}");
        }
        assert!(!valid_name(
            &"é".repeat(MAX_DEVICE_NAME_CHARS + 1),
            MAX_DEVICE_NAME_CHARS
        ));
    }

    #[test]
    fn debug_never_prints_the_code_or_proof() {
        let request = EnrollRequest {
            code: "the-secret-code".into(),
            kind: KeyKind::Software,
            name: "n".into(),
            proof: "the.proof.jws".into(),
            attestation: None,
        };
        let text = format!("{request:?}");
        assert!(
            !text.contains("the-secret-code") && !text.contains("the.proof.jws"),
            "{text}"
        );
        let challenge = Challenge {
            challenge: "the-challenge".into(),
            expires_in: 300,
            tpm: None,
        };
        assert!(!format!("{challenge:?}").contains("the-challenge"));
    }
}
