//! Asymmetric keys in PIV slots: ECC P-256 and P-384 (what Holdfast uses),
//! with the PIN and touch policies fixed when the key is made.

use getrandom::SysRng;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::elliptic_curve::Generate;

use crate::asn1;

/// PIV algorithm identifiers for the curves this card implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAlg {
    P256,
    P384,
}

impl KeyAlg {
    pub(crate) fn from_id(id: u8) -> Option<Self> {
        match id {
            0x11 => Some(Self::P256),
            0x14 => Some(Self::P384),
            _ => None,
        }
    }

    pub(crate) fn id(self) -> u8 {
        match self {
            Self::P256 => 0x11,
            Self::P384 => 0x14,
        }
    }

    /// The longest digest GENERAL AUTHENTICATE signs: the field size.
    pub(crate) fn field_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// PIN policy (tag AA), values as on the wire and in attestation `.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinPolicy {
    Never = 1,
    Once = 2,
    Always = 3,
}

/// Touch policy (tag AB), values as on the wire and in attestation `.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TouchPolicy {
    Never = 1,
    Always = 2,
    Cached = 3,
}

impl PinPolicy {
    /// The wire value, or `None` for 0 ("the slot's default").
    pub(crate) fn from_wire(value: u8) -> Result<Option<Self>, ()> {
        match value {
            0 => Ok(None),
            1 => Ok(Some(Self::Never)),
            2 => Ok(Some(Self::Once)),
            3 => Ok(Some(Self::Always)),
            _ => Err(()),
        }
    }

    /// A YubiKey's default per slot: signature (9C) always, card
    /// authentication (9E) never, the others once.
    pub(crate) fn default_for(slot: u8) -> Self {
        match slot {
            0x9C => Self::Always,
            0x9E => Self::Never,
            _ => Self::Once,
        }
    }
}

impl TouchPolicy {
    pub(crate) fn from_wire(value: u8) -> Result<Option<Self>, ()> {
        match value {
            0 => Ok(None),
            1 => Ok(Some(Self::Never)),
            2 => Ok(Some(Self::Always)),
            3 => Ok(Some(Self::Cached)),
            _ => Err(()),
        }
    }
}

/// Whether the key was generated on the card (attestable) or imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Generated = 1,
    Imported = 2,
}

enum Secret {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// A private key in a slot with its policies.
pub(crate) struct SlotKey {
    secret: Secret,
    pub(crate) pin_policy: PinPolicy,
    pub(crate) touch_policy: TouchPolicy,
    pub(crate) origin: Origin,
}

/// A key operation failed: bad import bytes, an unusable digest, no entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("the system random number generator failed")]
    Random,
    #[error("the private scalar is not valid for the curve")]
    BadScalar,
    #[error("the digest cannot be signed with this curve")]
    BadDigest,
}

impl SlotKey {
    pub(crate) fn generate(
        alg: KeyAlg,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    ) -> Result<Self, KeyError> {
        let secret = match alg {
            KeyAlg::P256 => Secret::P256(
                p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(|_| KeyError::Random)?,
            ),
            KeyAlg::P384 => Secret::P384(
                p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(|_| KeyError::Random)?,
            ),
        };
        Ok(Self {
            secret,
            pin_policy,
            touch_policy,
            origin: Origin::Generated,
        })
    }

    pub(crate) fn import(
        alg: KeyAlg,
        scalar: &[u8],
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    ) -> Result<Self, KeyError> {
        if scalar.len() != alg.field_len() {
            return Err(KeyError::BadScalar);
        }
        let secret = match alg {
            KeyAlg::P256 => Secret::P256(
                p256::ecdsa::SigningKey::from_slice(scalar).map_err(|_| KeyError::BadScalar)?,
            ),
            KeyAlg::P384 => Secret::P384(
                p384::ecdsa::SigningKey::from_slice(scalar).map_err(|_| KeyError::BadScalar)?,
            ),
        };
        Ok(Self {
            secret,
            pin_policy,
            touch_policy,
            origin: Origin::Imported,
        })
    }

    pub(crate) fn alg(&self) -> KeyAlg {
        match self.secret {
            Secret::P256(_) => KeyAlg::P256,
            Secret::P384(_) => KeyAlg::P384,
        }
    }

    /// The public key as an uncompressed SEC1 point (`04 ‖ X ‖ Y`).
    pub(crate) fn public_point(&self) -> Vec<u8> {
        match &self.secret {
            Secret::P256(key) => key.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            Secret::P384(key) => key.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
        }
    }

    /// SubjectPublicKeyInfo DER, as in the attestation certificate.
    #[cfg(test)]
    pub(crate) fn spki(&self) -> Vec<u8> {
        ec_spki(self.alg(), &self.public_point())
    }

    /// ECDSA over a digest the host computed; DER `ECDSA-Sig-Value`.
    pub(crate) fn sign_prehash(&self, digest: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.secret {
            Secret::P256(key) => {
                let signature: p256::ecdsa::Signature =
                    key.sign_prehash(digest).map_err(|_| KeyError::BadDigest)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            Secret::P384(key) => {
                let signature: p384::ecdsa::Signature =
                    key.sign_prehash(digest).map_err(|_| KeyError::BadDigest)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// `SubjectPublicKeyInfo` for an EC point on a named curve (RFC 5480).
pub(crate) fn ec_spki(alg: KeyAlg, point: &[u8]) -> Vec<u8> {
    let curve = match alg {
        KeyAlg::P256 => const_oid::db::rfc5912::SECP_256_R_1,
        KeyAlg::P384 => const_oid::db::rfc5912::SECP_384_R_1,
    };
    let algorithm = asn1::seq(&[
        &asn1::oid(&const_oid::db::rfc5912::ID_EC_PUBLIC_KEY),
        &asn1::oid(&curve),
    ]);
    asn1::seq(&[&algorithm, &asn1::bits(point)])
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    use super::*;

    #[test]
    fn signs_digests_that_verify() {
        for alg in [KeyAlg::P256, KeyAlg::P384] {
            let key = SlotKey::generate(alg, PinPolicy::Once, TouchPolicy::Never).unwrap();
            assert_eq!(key.alg(), alg);
            let point = key.public_point();
            assert_eq!(point.len(), 1 + 2 * alg.field_len());
            let digest = vec![0x5Au8; alg.field_len()];
            let der = key.sign_prehash(&digest).unwrap();
            match alg {
                KeyAlg::P256 => {
                    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
                    vk.verify_prehash(&digest, &sig).unwrap();
                }
                KeyAlg::P384 => {
                    let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                    let sig = p384::ecdsa::Signature::from_der(&der).unwrap();
                    vk.verify_prehash(&digest, &sig).unwrap();
                }
            }
        }
    }

    #[test]
    fn imports_a_scalar_and_marks_it_imported() {
        let key = SlotKey::import(
            KeyAlg::P256,
            &[7u8; 32],
            PinPolicy::Never,
            TouchPolicy::Never,
        )
        .unwrap();
        assert_eq!(key.origin, Origin::Imported);
        assert_eq!(
            SlotKey::import(
                KeyAlg::P256,
                &[0u8; 32],
                PinPolicy::Never,
                TouchPolicy::Never
            )
            .err(),
            Some(KeyError::BadScalar)
        );
        assert_eq!(
            SlotKey::import(
                KeyAlg::P384,
                &[7u8; 32],
                PinPolicy::Never,
                TouchPolicy::Never
            )
            .err(),
            Some(KeyError::BadScalar)
        );
    }

    #[test]
    fn spki_is_what_x509_parsers_expect() {
        use x509_cert::der::Decode;
        let key = SlotKey::generate(KeyAlg::P384, PinPolicy::Once, TouchPolicy::Never).unwrap();
        let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&key.spki()).unwrap();
        assert_eq!(spki.algorithm.oid, const_oid::db::rfc5912::ID_EC_PUBLIC_KEY);
        assert_eq!(spki.subject_public_key.raw_bytes(), key.public_point());
    }

    #[test]
    fn default_pin_policies_follow_the_slot() {
        assert_eq!(PinPolicy::default_for(0x9A), PinPolicy::Once);
        assert_eq!(PinPolicy::default_for(0x9C), PinPolicy::Always);
        assert_eq!(PinPolicy::default_for(0x9E), PinPolicy::Never);
        assert_eq!(PinPolicy::default_for(0x95), PinPolicy::Once);
        assert_eq!(PinPolicy::from_wire(4), Err(()));
        assert_eq!(TouchPolicy::from_wire(3), Ok(Some(TouchPolicy::Cached)));
    }
}
