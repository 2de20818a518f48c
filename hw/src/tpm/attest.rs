//! TPM attestation on the device: the two steps of the enrollment ceremony
//! described in [`crate::attestation::evidence`].
//!
//! ```text
//! let (request, pending) = TpmAttestor::new().begin(&key)?;   // EK cert + AK
//! // … send `request`, receive the challenge string and `activation` …
//! let evidence = pending.finish(&key, &challenge, &activation)?;
//! ```
//!
//! [`TpmAttestor::begin`] reads the EK certificate, re-creates the EK, and
//! creates an attestation key (AK) under it: a restricted ECC P-256 signing
//! key (`fixedTPM`, `fixedParent`, `sensitiveDataOrigin`), so the TPM signs
//! with it only structures it produced itself. The EK and AK stay loaded in
//! the [`PendingTpm`] between the two steps (dropping it flushes them).
//!
//! [`PendingTpm::finish`] recovers the issuer's secret with
//! `TPM2_ActivateCredential` (the TPM releases it only if the AK whose name
//! the issuer used is loaded beside the EK the issuer encrypted to), then
//! has the AK `TPM2_Certify` the device key over
//! [`certify_nonce`](crate::attestation::evidence::certify_nonce) of the
//! challenge.
//!
//! Nothing here is persistent in the TPM: the AK is used for one enrollment
//! and thrown away.

use core::fmt;

use tss_esapi::Context;
use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, DefaultKey, ak};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{AuthHandle, KeyHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, SignatureSchemeAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Data, Digest, EncryptedSecret, IdObject, Nonce, Public, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::traits::Marshall as _;

use super::device::Tpm;
use super::ek::{EkKind, LoadedEk, flush_quietly, load_ek};
use super::error::{Class, TpmError, TssError};
use super::key::TpmKey;
use crate::attestation::evidence::{
    Bytes, TpmActivationChallenge, TpmActivationRequest, TpmEvidence, certify_nonce,
};

/// Starts TPM attestations. By default it uses the first EK with a
/// certificate in the order of [`EkKind::ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TpmAttestor {
    ek: Option<EkKind>,
}

impl TpmAttestor {
    /// An attestor that picks the EK (RSA-2048 first).
    pub fn new() -> Self {
        Self::default()
    }

    /// An attestor that uses the EK of `kind` only.
    pub fn with_ek(kind: EkKind) -> Self {
        Self { ek: Some(kind) }
    }

    /// Step 1: the EK certificate and a fresh AK, for `POST /enroll/challenge`.
    ///
    /// # Errors
    /// [`TpmError::NoEkCertificate`], [`TpmError::BadEkCertificate`],
    /// [`TpmError::EkCertificateMismatch`], or a TPM error.
    pub fn begin(&self, key: &TpmKey) -> Result<(TpmActivationRequest, PendingTpm), TpmError> {
        let tpm = key.tpm().clone();
        let pending = tpm.with(|ctx| {
            let ek = load_ek(ctx, self.ek)?;
            match create_ak(ctx, ek.handle) {
                Ok((ak, ak_public)) => Ok((ek, ak, ak_public)),
                Err(e) => {
                    flush_quietly(ctx, ek.handle);
                    Err(e)
                }
            }
        });
        let (ek, ak, ak_public) = pending?;
        let request = TpmActivationRequest {
            ek_certificate: Bytes(ek.certificate.clone()),
            ak_public: Bytes(ak_public.clone()),
        };
        Ok((
            request,
            PendingTpm {
                tpm,
                ek: Some(ek),
                ak: Some(ak),
                ak_public,
            },
        ))
    }
}

/// An attestation between its two steps: the EK and the AK, loaded.
///
/// Owns what it needs (it can be moved to another thread, e.g. into
/// `spawn_blocking`). Dropping it without [`finish`](Self::finish) flushes
/// the EK and AK from the TPM.
pub struct PendingTpm {
    tpm: Tpm,
    ek: Option<LoadedEk>,
    ak: Option<KeyHandle>,
    ak_public: Vec<u8>,
}

impl PendingTpm {
    /// The EK attested with.
    pub fn ek_kind(&self) -> Option<EkKind> {
        self.ek.as_ref().map(|ek| ek.kind)
    }

    /// The AK's public area (marshalled `TPMT_PUBLIC`), as sent in step 1.
    pub fn ak_public(&self) -> &[u8] {
        &self.ak_public
    }

    /// Step 2: answers the issuer's challenge. `challenge` is the
    /// enrollment challenge string (its SHA-256 is the certify nonce) and
    /// `activation` the credential the issuer made for this EK and AK.
    ///
    /// # Errors
    /// [`TpmError::ActivationRefused`] if the credential was not made for
    /// this TPM's EK and this AK; [`TpmError::MalformedChallenge`];
    /// [`TpmError::DifferentConnection`] if `key` is not on the connection
    /// the attestation began on; TPM errors.
    pub fn finish(
        mut self,
        key: &TpmKey,
        challenge: &str,
        activation: &TpmActivationChallenge,
    ) -> Result<TpmEvidence, TpmError> {
        if !self.tpm.same_connection(key.tpm()) {
            return Err(TpmError::DifferentConnection);
        }
        // Both are always present until `finish` or a test constructor
        // consumes the attestation.
        let (Some(ek), Some(ak)) = (self.ek.take(), self.ak.take()) else {
            return Err(TpmError::UnexpectedResponse {
                operation: "finishing the attestation",
                what: "the EK and AK are no longer loaded",
            });
        };
        let nonce = certify_nonce(challenge);
        let result = self.tpm.with(|ctx| {
            let secret = activate(ctx, &ek, ak, activation);
            // The EK is done with: free its slot before Certify.
            flush_quietly(ctx, ek.handle);
            let certified = secret.and_then(|secret| {
                certify(ctx, key, ak, &nonce).map(|(info, signature)| (secret, info, signature))
            });
            flush_quietly(ctx, ak);
            certified
        });
        let (secret, certify_info, certify_signature) = result?;
        Ok(TpmEvidence {
            ek_certificate: Bytes(ek.certificate),
            ak_public: Bytes(core::mem::take(&mut self.ak_public)),
            activated_secret: Bytes(secret),
            key_public: Bytes(key.public_area().to_vec()),
            certify_info: Bytes(certify_info),
            certify_signature: Bytes(certify_signature),
        })
    }

    /// For the test constructors: the loaded EK and AK, left in place.
    pub(crate) fn parts(&self) -> Option<(&Tpm, &LoadedEk, KeyHandle)> {
        Some((&self.tpm, self.ek.as_ref()?, self.ak?))
    }

    /// For the test constructors: takes the EK and AK out (the caller
    /// flushes them).
    pub(crate) fn take_parts(&mut self) -> Option<(Tpm, LoadedEk, KeyHandle, Vec<u8>)> {
        let ek = self.ek.take()?;
        let ak = self.ak.take()?;
        Some((
            self.tpm.clone(),
            ek,
            ak,
            core::mem::take(&mut self.ak_public),
        ))
    }
}

impl Drop for PendingTpm {
    fn drop(&mut self) {
        let ek = self.ek.take().map(|ek| ek.handle);
        let ak = self.ak.take();
        if ek.is_none() && ak.is_none() {
            return;
        }
        let _ = self.tpm.with(|ctx| {
            if let Some(ak) = ak {
                flush_quietly(ctx, ak);
            }
            if let Some(ek) = ek {
                flush_quietly(ctx, ek);
            }
            Ok(())
        });
    }
}

impl fmt::Debug for PendingTpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingTpm")
            .field("ek", &self.ek_kind())
            .field("tpm", &self.tpm)
            .finish_non_exhaustive()
    }
}

/// Creates and loads an AK under the EK: restricted ECDSA P-256/SHA-256.
/// Returns its handle and marshalled `TPMT_PUBLIC`.
pub(crate) fn create_ak(
    ctx: &mut Context,
    ek: KeyHandle,
) -> Result<(KeyHandle, Vec<u8>), TpmError> {
    let created = ak::create_ak_2(
        ctx,
        ek,
        HashingAlgorithm::Sha256,
        AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        SignatureSchemeAlgorithm::EcDsa,
        None,
        DefaultKey,
    )
    .map_err(|e| TpmError::command("TPM2_Create (attestation key)", e))?;
    let public = created
        .out_public
        .marshall()
        .map_err(|e| TpmError::command("marshalling the AK public area", e))?;
    let handle = ak::load_ak(ctx, ek, None, created.out_private, created.out_public)
        .map_err(|e| TpmError::command("TPM2_Load (attestation key)", e))?;
    Ok((handle, public))
}

/// `TPM2_ActivateCredential`: the secret the issuer encrypted to this EK
/// for this AK.
pub(crate) fn activate(
    ctx: &mut Context,
    ek: &LoadedEk,
    ak: KeyHandle,
    activation: &TpmActivationChallenge,
) -> Result<Vec<u8>, TpmError> {
    const OP: &str = "TPM2_ActivateCredential";
    let credential = IdObject::try_from(activation.credential_blob.0.clone())
        .map_err(|_| TpmError::MalformedChallenge("credential_blob is too long"))?;
    let secret = EncryptedSecret::try_from(activation.encrypted_secret.0.clone())
        .map_err(|_| TpmError::MalformedChallenge("encrypted_secret is too long"))?;
    if activation.credential_blob.is_empty() || activation.encrypted_secret.is_empty() {
        return Err(TpmError::MalformedChallenge(
            "credential_blob or encrypted_secret is empty",
        ));
    }
    let ek_session = ek_auth_session(ctx, &ek.public)?;
    let activated = ctx.execute_with_sessions(
        (Some(AuthSession::Password), Some(ek_session), None),
        |ctx| ctx.activate_credential(ak, ek.handle, credential, secret),
    );
    if let AuthSession::PolicySession(_) = ek_session {
        flush_quietly(ctx, SessionHandle::from(ek_session));
    }
    match activated {
        Ok(digest) => Ok(digest.value().to_vec()),
        Err(e) => {
            let (source, class) = TssError::new(e);
            Err(match class {
                // The TPM's own refusal (integrity, value, size, point…): the
                // blob was made for another EK or another AK name.
                Class::Integrity | Class::Other if source.layer() == 0 => {
                    TpmError::ActivationRefused { source }
                }
                _ => TpmError::command(OP, e),
            })
        }
    }
}

/// The authorization the EK needs as `TPM2_ActivateCredential`'s key
/// handle. The low-range templates clear `userWithAuth`: the EK is usable
/// only through its policy, `PolicySecret(TPM_RH_ENDORSEMENT)` (policy A).
/// The high-range templates set it, and an empty password does.
fn ek_auth_session(ctx: &mut Context, ek: &Public) -> Result<AuthSession, TpmError> {
    const OP: &str = "starting the EK policy session";
    if ek.object_attributes().user_with_auth() {
        return Ok(AuthSession::Password);
    }
    let session = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Policy,
            SymmetricDefinition::AES_128_CFB,
            ek.name_hashing_algorithm(),
        )
        .map_err(|e| TpmError::command(OP, e))?
        .ok_or(TpmError::UnexpectedResponse {
            operation: OP,
            what: "no session handle",
        })?;
    let policy = PolicySession::try_from(session).map_err(|e| TpmError::command(OP, e))?;
    let secret = ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
        ctx.policy_secret(
            policy,
            AuthHandle::Endorsement,
            Nonce::default(),
            Digest::default(),
            Nonce::default(),
            None,
        )
    });
    if let Err(e) = secret {
        flush_quietly(ctx, SessionHandle::from(session));
        return Err(TpmError::command("TPM2_PolicySecret (endorsement)", e));
    }
    Ok(session)
}

/// `TPM2_Certify` of `key` by the AK over `nonce`: the marshalled
/// `TPMS_ATTEST` and `TPMT_SIGNATURE`.
pub(crate) fn certify(
    ctx: &mut Context,
    key: &TpmKey,
    ak: KeyHandle,
    nonce: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), TpmError> {
    const OP: &str = "TPM2_Certify";
    let data = Data::try_from(nonce.to_vec()).map_err(|e| TpmError::command(OP, e))?;
    // Two authorizations: the certified object, then the signing key. A
    // restricted AK signs with its own scheme: the scheme here is Null.
    let (attest, signature) = ctx
        .execute_with_sessions(
            (
                Some(AuthSession::Password),
                Some(AuthSession::Password),
                None,
            ),
            |ctx| ctx.certify(key.handle().into(), ak, data, SignatureScheme::Null),
        )
        .map_err(|e| TpmError::command(OP, e))?;
    let info = attest
        .marshall()
        .map_err(|e| TpmError::command("marshalling TPMS_ATTEST", e))?;
    let signature = signature
        .marshall()
        .map_err(|e| TpmError::command("marshalling TPMT_SIGNATURE", e))?;
    Ok((info, signature))
}
