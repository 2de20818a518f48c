//! **Test support only: never use in production.** Weakened keys and forged
//! evidence that a correct issuer must refuse, and the TPM-side
//! `MakeCredential` the swtpm tests use to build challenges.
//!
//! Each function makes something a real attacker could present: a key that
//! can leave the TPM, a key whose private part came from software, a key
//! the TPM will not sign arbitrary data with, a certification by an AK that
//! was never activated. The issuer's negative tests enroll them and expect a
//! refusal naming the failed check.

use getrandom::SysRng;
use p256::elliptic_curve::Generate as _;
use p256::elliptic_curve::sec1::ToSec1Point as _;
use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::CapabilityType;
use tss_esapi::constants::tss::TPM2_TRANSIENT_FIRST;
use tss_esapi::handles::TpmHandle;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{
    Auth, CapabilityData, Digest, EccParameter, EccPoint, Name, Public, Sensitive,
};

use super::PendingTpm;
use super::attest::{activate, certify, create_ak};
use super::device::Tpm;
use super::ek::flush_quietly;
use super::error::TpmError;
use super::key::{TpmKey, create_and_load, signing_key_template};
use crate::attestation::evidence::{Bytes, TpmActivationChallenge, TpmEvidence, certify_nonce};

/// A P-256 key created by the TPM under the storage primary, but with
/// `fixedTPM` and `fixedParent` clear: it could be duplicated to another
/// TPM (or, with a duplication policy, out to software).
pub fn duplicable_key(tpm: &Tpm) -> Result<TpmKey, TpmError> {
    create_weakened(
        tpm,
        ObjectAttributesBuilder::new()
            .with_fixed_tpm(false)
            .with_fixed_parent(false)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_sign_encrypt(true),
    )
}

/// A restricted signing key (like an AK): otherwise fixed and
/// TPM-generated. It signs only digests the TPM computed (the signer hashes
/// through `TPM2_Hash`, messages up to 1024 bytes).
pub fn restricted_key(tpm: &Tpm) -> Result<TpmKey, TpmError> {
    create_weakened(
        tpm,
        ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_sign_encrypt(true)
            .with_restricted(true),
    )
}

/// A key generated in software and loaded into the TPM
/// (`TPM2_LoadExternal`, null hierarchy): `sensitiveDataOrigin` is clear,
/// since the caller supplied the private key. The TPM requires `fixedTPM`
/// and `fixedParent` to be clear too for an object whose private part comes
/// from outside, so this key fails those checks as well.
pub fn software_origin_key(tpm: &Tpm) -> Result<TpmKey, TpmError> {
    const OP: &str = "TPM2_LoadExternal (software key)";
    let secret = p256::SecretKey::try_generate_from_rng(&mut SysRng).map_err(|_| {
        TpmError::UnexpectedResponse {
            operation: OP,
            what: "the system random number generator failed",
        }
    })?;
    let point = secret.public_key().to_sec1_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(TpmError::UnexpectedResponse {
            operation: OP,
            what: "an uncompressed point without coordinates",
        });
    };
    let template = software_origin_template(x, y).map_err(|e| TpmError::command(OP, e))?;
    let sensitive = EccParameter::try_from(secret.to_bytes().to_vec())
        .map(|sensitive| Sensitive::Ecc {
            auth_value: Auth::default(),
            seed_value: Digest::default(),
            sensitive,
        })
        .map_err(|e| TpmError::command(OP, e))?;
    let handle = tpm.with(|ctx| {
        ctx.execute_without_session(|ctx| {
            ctx.load_external(sensitive, template.clone(), Hierarchy::Null)
        })
        .map_err(|e| TpmError::command(OP, e))
    })?;
    TpmKey::from_loaded(tpm, handle, &template)
}

fn software_origin_template(x: &[u8], y: &[u8]) -> tss_esapi::Result<Public> {
    let Public::Ecc {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        ..
    } = signing_key_template(
        ObjectAttributesBuilder::new()
            .with_fixed_tpm(false)
            .with_fixed_parent(false)
            .with_sensitive_data_origin(false)
            .with_user_with_auth(true)
            .with_sign_encrypt(true),
    )?
    else {
        return Err(tss_esapi::Error::WrapperError(
            tss_esapi::WrapperErrorKind::InternalError,
        ));
    };
    Ok(Public::Ecc {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        unique: EccPoint::new(
            EccParameter::try_from(x.to_vec())?,
            EccParameter::try_from(y.to_vec())?,
        ),
    })
}

fn create_weakened(tpm: &Tpm, attributes: ObjectAttributesBuilder) -> Result<TpmKey, TpmError> {
    let template = signing_key_template(attributes)
        .map_err(|e| TpmError::command("building a weakened key template", e))?;
    let (blob, handle) = tpm.with(|ctx| create_and_load(ctx, template))?;
    TpmKey::from_loaded(tpm, handle, &blob.public)
}

/// Like [`PendingTpm::finish`], but `TPM2_Certify` is signed by a second AK
/// that was never activated, while the evidence still names the activated
/// AK. Returns the evidence and the second AK's public area (a test can put
/// it in `ak_public` to present the never-activated AK instead).
pub fn finish_with_other_ak(
    mut pending: PendingTpm,
    key: &TpmKey,
    challenge: &str,
    activation: &TpmActivationChallenge,
) -> Result<(TpmEvidence, Vec<u8>), TpmError> {
    let Some((tpm, ek, ak, ak_public)) = pending.take_parts() else {
        return Err(TpmError::DifferentConnection);
    };
    if !tpm.same_connection(key.tpm()) {
        tpm.with(|ctx| {
            flush_quietly(ctx, ak);
            flush_quietly(ctx, ek.handle);
            Ok(())
        })?;
        return Err(TpmError::DifferentConnection);
    }
    let nonce = certify_nonce(challenge);
    let result = tpm.with(|ctx| {
        let secret = activate(ctx, &ek, ak, activation);
        // Free the activated AK's slot, make the other AK under the EK,
        // then free the EK's slot before Certify.
        flush_quietly(ctx, ak);
        let other =
            secret.and_then(|secret| create_ak(ctx, ek.handle).map(|other| (secret, other)));
        flush_quietly(ctx, ek.handle);
        let (secret, (other_ak, other_public)) = other?;
        let certified = certify(ctx, key, other_ak, &nonce);
        flush_quietly(ctx, other_ak);
        let (info, signature) = certified?;
        Ok((secret, info, signature, other_public))
    });
    let (secret, certify_info, certify_signature, other_public) = result?;
    Ok((
        TpmEvidence {
            ek_certificate: Bytes(ek.certificate),
            ak_public: Bytes(ak_public),
            activated_secret: Bytes(secret),
            key_public: Bytes(key.public_area().to_vec()),
            certify_info: Bytes(certify_info),
            certify_signature: Bytes(certify_signature),
        },
        other_public,
    ))
}

/// `TPM2_MakeCredential` by the TPM itself, with the pending attestation's
/// EK: the challenge an issuer would make for `ak_public` (a marshalled
/// `TPMT_PUBLIC`, normally the one from step 1) and `secret` (at most 64
/// bytes). The AK name is computed here from `ak_public`, as the issuer
/// does: `nameAlg ‖ SHA-256(ak_public)`.
pub fn make_credential(
    pending: &PendingTpm,
    ak_public: &[u8],
    secret: &[u8],
) -> Result<TpmActivationChallenge, TpmError> {
    const OP: &str = "TPM2_MakeCredential";
    let Some((tpm, ek, _)) = pending.parts() else {
        return Err(TpmError::DifferentConnection);
    };
    let name = Name::try_from(sha256_name(ak_public)).map_err(|e| TpmError::command(OP, e))?;
    let credential = Digest::try_from(secret.to_vec()).map_err(|e| TpmError::command(OP, e))?;
    let (blob, encrypted) = tpm.with(|ctx| {
        ctx.execute_without_session(|ctx| ctx.make_credential(ek.handle, credential, name))
            .map_err(|e| TpmError::command(OP, e))
    })?;
    Ok(TpmActivationChallenge {
        credential_blob: Bytes(blob.value().to_vec()),
        encrypted_secret: Bytes(encrypted.value().to_vec()),
    })
}

/// The TPM name of a SHA-256-named object: `0x000b ‖ SHA-256(public area)`.
pub fn sha256_name(public_area: &[u8]) -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let mut name = vec![0x00, 0x0b];
    name.extend_from_slice(&Sha256::digest(public_area));
    name
}

/// Flushes every transient object in the TPM, including those another
/// (crashed) connection left behind. For simulators without a resource
/// manager, between tests. Returns how many were flushed.
pub fn flush_transient_objects(tpm: &Tpm) -> Result<usize, TpmError> {
    const OP: &str = "TPM2_GetCapability (transient handles)";
    tpm.with(|ctx| {
        let (data, _) = ctx
            .execute_without_session(|ctx| {
                ctx.get_capability(CapabilityType::Handles, TPM2_TRANSIENT_FIRST, 64)
            })
            .map_err(|e| TpmError::command(OP, e))?;
        let CapabilityData::Handles(handles) = data else {
            return Err(TpmError::UnexpectedResponse {
                operation: OP,
                what: "not a handle list",
            });
        };
        let mut flushed = 0;
        for handle in handles.iter() {
            if flush_tpm_handle(ctx, *handle) {
                flushed += 1;
            }
        }
        Ok(flushed)
    })
}

fn flush_tpm_handle(ctx: &mut Context, handle: TpmHandle) -> bool {
    let Ok(object) = ctx.execute_without_session(|ctx| ctx.tr_from_tpm_public(handle)) else {
        return false;
    };
    ctx.flush_context(object).is_ok()
}

/// The number of free transient object slots the TPM reports.
pub fn transient_slots_available(tpm: &Tpm) -> Result<Option<u32>, TpmError> {
    tpm.with(|ctx| {
        ctx.get_tpm_property(tss_esapi::constants::PropertyTag::HrTransientAvail)
            .map_err(|e| TpmError::command("TPM2_GetCapability", e))
    })
}
