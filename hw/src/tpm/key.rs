//! `TpmKey`: an ECC P-256 signing key generated inside the TPM.
//!
//! The key is a child of a storage primary key (the "SRK") that the TPM
//! re-derives from its owner-hierarchy seed and a fixed template whenever it
//! is needed, so nothing persistent is allocated in the TPM. The key's
//! wrapped private area lives in a file ([`super::blob`]); only the TPM that
//! wrapped it can load it, and only while its owner hierarchy is not cleared.
//!
//! Attributes: `fixedTPM` and `fixedParent` (the key can never be duplicated
//! out of this TPM), `sensitiveDataOrigin` (the TPM generated the private
//! key), `userWithAuth` with an empty authorization (any local process that
//! can reach the TPM can sign: the key proves the device, not the user),
//! `sign`, and neither `restricted` nor `decrypt`, so it signs arbitrary
//! digests (DPoP proofs) and nothing else.

use core::fmt;
use std::path::Path;

use holdfast_proto::{Jwk, Signer, SignerError};
use sha2::{Digest as _, Sha256};
use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Digest, EccParameter, EccPoint, EccScheme, HashScheme, HashcheckTicket, MaxBuffer, Public,
    PublicBuilder, PublicEccParametersBuilder, Signature, SignatureScheme,
    SymmetricDefinitionObject,
};
use tss_esapi::traits::Marshall as _;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;

use super::blob::{KeyBlob, read_key_file};
use super::device::{Tpm, TpmConfig};
use super::ek::flush_quietly;
use super::error::TpmError;
use crate::kind::KeyKind;
use crate::private_file::NewPrivateFile;
use crate::signature::{left_pad, p256_jws_from_scalars};

/// A P-256 signing key inside a TPM, loaded and ready to sign.
///
/// Made by [`TpmKey::create`] (or [`Tpm::create_key`]), which also writes the
/// key file; loaded again from that file by [`TpmKey::load`]. Signing takes
/// the connection's lock: one TPM command at a time per [`Tpm`]. Dropping
/// the key unloads it from the TPM (the file stays).
pub struct TpmKey {
    tpm: Tpm,
    handle: KeyHandle,
    public_area: Vec<u8>,
    jwk: Jwk,
    restricted: bool,
}

impl TpmKey {
    /// Connects to the TPM, creates a new key in it, and writes the key
    /// file at `path` (mode 0600; it must not exist).
    ///
    /// # Errors
    /// [`TpmError::File`] ([`PrivateFileError::Exists`]) if the file exists (checked before the TPM does any work);
    /// connection, TPM and IO errors otherwise.
    pub fn create(config: &TpmConfig, path: &Path) -> Result<Self, TpmError> {
        Tpm::open(config)?.create_key(path)
    }

    /// Connects to the TPM and loads the key in the file at `path`.
    ///
    /// # Errors
    /// [`TpmError::KeyFromAnotherTpm`] if the file was made by another TPM
    /// (or before this one was cleared); [`TpmError::MalformedKeyFile`],
    /// [`TpmError::File`] (for instance
    /// [`PrivateFileError::InsecurePermissions`]), connection and TPM errors
    /// otherwise.
    pub fn load(config: &TpmConfig, path: &Path) -> Result<Self, TpmError> {
        Tpm::open(config)?.load_key(path)
    }

    /// The key's public area: a marshalled `TPMT_PUBLIC`, the structure
    /// whose name `TPM2_Certify` attests.
    pub fn public_area(&self) -> &[u8] {
        &self.public_area
    }

    /// The connection the key is loaded on.
    pub fn tpm(&self) -> &Tpm {
        &self.tpm
    }

    /// Always [`KeyKind::Tpm`].
    pub fn kind(&self) -> KeyKind {
        KeyKind::Tpm
    }

    pub(crate) fn handle(&self) -> KeyHandle {
        self.handle
    }

    /// Takes ownership of a key just loaded on `tpm`: on error the handle
    /// is flushed.
    pub(crate) fn from_loaded(
        tpm: &Tpm,
        handle: KeyHandle,
        public: &Public,
    ) -> Result<Self, TpmError> {
        let checked = p256_jwk(public).and_then(|jwk| {
            public
                .marshall()
                .map(|public_area| (jwk, public_area))
                .map_err(|e| TpmError::command("marshalling the key's public area", e))
        });
        match checked {
            Ok((jwk, public_area)) => Ok(Self {
                tpm: tpm.clone(),
                handle,
                public_area,
                jwk,
                restricted: public.object_attributes().restricted(),
            }),
            Err(e) => {
                let _ = tpm.with(|ctx| {
                    flush_quietly(ctx, handle);
                    Ok(())
                });
                Err(e)
            }
        }
    }

    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], TpmError> {
        const OP: &str = "TPM2_Sign";
        let scheme = SignatureScheme::EcDsa {
            hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
        };
        let signature = self.tpm.with(|ctx| {
            let (digest, ticket) = if self.restricted {
                // A restricted key signs only digests the TPM computed itself
                // (and checked not to start with TPM_GENERATED_VALUE); only the
                // weakened test keys are restricted.
                let data = MaxBuffer::try_from(message.to_vec())
                    .map_err(|e| TpmError::command("TPM2_Hash", e))?;
                ctx.execute_without_session(|ctx| {
                    ctx.hash(data, HashingAlgorithm::Sha256, Hierarchy::Owner)
                })
                .map_err(|e| TpmError::command("TPM2_Hash", e))?
            } else {
                let digest = Digest::try_from(Sha256::digest(message).to_vec())
                    .map_err(|e| TpmError::command(OP, e))?;
                (digest, null_ticket()?)
            };
            ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.sign(self.handle, digest, scheme, ticket)
            })
            .map_err(|e| TpmError::command(OP, e))
        })?;
        let Signature::EcDsa(ecdsa) = signature else {
            return Err(TpmError::UnexpectedResponse {
                operation: OP,
                what: "not an ECDSA signature",
            });
        };
        p256_jws_from_scalars(ecdsa.signature_r().value(), ecdsa.signature_s().value()).map_err(
            |_| TpmError::UnexpectedResponse {
                operation: OP,
                what: "an ECDSA signature with r or s out of range",
            },
        )
    }
}

impl Tpm {
    /// Creates a new key in this TPM and writes its key file at `path`
    /// (mode 0600; it must not exist).
    ///
    /// # Errors
    /// As [`TpmKey::create`].
    pub fn create_key(&self, path: &Path) -> Result<TpmKey, TpmError> {
        let file = NewPrivateFile::create(path)?;
        let template =
            device_key_template().map_err(|e| TpmError::command("building the key template", e))?;
        let (blob, handle) = self.with(|ctx| create_and_load(ctx, template))?;
        let key = TpmKey::from_loaded(self, handle, &blob.public)?;
        file.commit(&blob.encode()?)?;
        Ok(key)
    }

    /// Loads the key in the file at `path` into this TPM.
    ///
    /// # Errors
    /// As [`TpmKey::load`].
    pub fn load_key(&self, path: &Path) -> Result<TpmKey, TpmError> {
        let blob = read_key_file(path)?;
        if p256_jwk(&blob.public).is_err() || !blob.public.object_attributes().sign_encrypt() {
            return Err(TpmError::MalformedKeyFile {
                path: path.to_owned(),
                reason: "not an ECC P-256 signing key",
            });
        }
        let handle = self.with(|ctx| {
            with_storage_primary(ctx, |ctx, srk| {
                ctx.execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.load(srk, blob.private.clone(), blob.public.clone())
                })
                .map_err(|e| TpmError::load(path, e))
            })
        })?;
        TpmKey::from_loaded(self, handle, &blob.public)
    }
}

impl Signer for TpmKey {
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.sign_message(message)
            .map(|sig| sig.to_vec())
            .map_err(|e| SignerError::with_source("the TPM failed to sign", e))
    }
}

impl Drop for TpmKey {
    fn drop(&mut self) {
        // Free the TPM's object slot now rather than when the connection
        // closes: a TPM without a resource manager holds only a few.
        let handle = self.handle;
        let _ = self.tpm.with(|ctx| {
            flush_quietly(ctx, handle);
            Ok(())
        });
    }
}

impl fmt::Debug for TpmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TpmKey({})", self.jwk.thumbprint())
    }
}

/// Runs `f` with the storage primary key loaded, and flushes it afterwards
/// whatever `f` returned.
pub(crate) fn with_storage_primary<T>(
    ctx: &mut Context,
    f: impl FnOnce(&mut Context, KeyHandle) -> Result<T, TpmError>,
) -> Result<T, TpmError> {
    let template = storage_primary_template()
        .map_err(|e| TpmError::command("building the SRK template", e))?;
    let srk = ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map_err(|e| TpmError::command("TPM2_CreatePrimary (storage key)", e))?
        .key_handle;
    let result = f(ctx, srk);
    let flushed = ctx
        .flush_context(srk.into())
        .map_err(|e| TpmError::command("TPM2_FlushContext", e));
    let value = result?;
    flushed?;
    Ok(value)
}

/// Creates a key from `template` under the storage primary and loads it.
pub(crate) fn create_and_load(
    ctx: &mut Context,
    template: Public,
) -> Result<(KeyBlob, KeyHandle), TpmError> {
    with_storage_primary(ctx, |ctx, srk| {
        let created = ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.create(srk, template, None, None, None, None)
            })
            .map_err(|e| TpmError::command("TPM2_Create", e))?;
        let blob = KeyBlob {
            public: created.out_public,
            private: created.out_private,
        };
        let handle = ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.load(srk, blob.private.clone(), blob.public.clone())
            })
            .map_err(|e| TpmError::command("TPM2_Load", e))?;
        Ok((blob, handle))
    })
}

/// The storage primary key ("SRK"): the ECC P-256 template of the TCG TPM
/// v2.0 Provisioning Guidance, so the TPM derives the same key from its
/// owner seed every time. Changing anything here orphans every key file of
/// version 1.
pub(crate) fn storage_primary_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::new(
            EccParameter::try_from(vec![0u8; 32])?,
            EccParameter::try_from(vec![0u8; 32])?,
        ))
        .build()
}

/// The device key: see the module documentation for the attributes.
pub(crate) fn device_key_template() -> tss_esapi::Result<Public> {
    signing_key_template(
        ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_sign_encrypt(true),
    )
}

/// An ECC P-256 ECDSA/SHA-256 signing key template with the given attributes.
pub(crate) fn signing_key_template(
    attributes: ObjectAttributesBuilder,
) -> tss_esapi::Result<Public> {
    let attributes = attributes.build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new()
                .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
                .with_curve(EccCurve::NistP256)
                .with_key_derivation_function_scheme(
                    tss_esapi::structures::KeyDerivationFunctionScheme::Null,
                )
                .with_is_signing_key(true)
                .with_is_decryption_key(false)
                .with_restricted(attributes.restricted())
                .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The "no ticket" an unrestricted key signs with (TPM 2.0 Part 3, TPM2_Sign:
/// a NULL ticket is allowed when the key is not restricted).
fn null_ticket() -> Result<HashcheckTicket, TpmError> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
    .map_err(|e| TpmError::command("building the NULL hash-check ticket", e))
}

/// The JWK of an ECC P-256 public area, checked to be a point on the curve.
pub(crate) fn p256_jwk(public: &Public) -> Result<Jwk, TpmError> {
    const OP: &str = "reading the key's public area";
    let Public::Ecc {
        parameters, unique, ..
    } = public
    else {
        return Err(TpmError::UnexpectedResponse {
            operation: OP,
            what: "not an ECC key",
        });
    };
    if parameters.ecc_curve() != EccCurve::NistP256 {
        return Err(TpmError::UnexpectedResponse {
            operation: OP,
            what: "not a P-256 key",
        });
    }
    let (Some(x), Some(y)) = (
        left_pad::<32>(unique.x().value()),
        left_pad::<32>(unique.y().value()),
    ) else {
        return Err(TpmError::UnexpectedResponse {
            operation: OP,
            what: "a P-256 coordinate longer than 32 bytes",
        });
    };
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    if p256::PublicKey::from_sec1_bytes(&sec1).is_err() {
        return Err(TpmError::UnexpectedResponse {
            operation: OP,
            what: "a public key that is not a point on P-256",
        });
    }
    Ok(Jwk::p256(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_key_template_has_the_attested_attributes() {
        let public = device_key_template().unwrap();
        let attributes = public.object_attributes();
        assert!(attributes.fixed_tpm());
        assert!(attributes.fixed_parent());
        assert!(attributes.sensitive_data_origin());
        assert!(attributes.user_with_auth());
        assert!(attributes.sign_encrypt());
        assert!(!attributes.restricted());
        assert!(!attributes.decrypt());
        assert_eq!(public.name_hashing_algorithm(), HashingAlgorithm::Sha256);
    }
}
