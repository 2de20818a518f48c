//! Pure parsing of what a YubiKey hands out: certificate data objects,
//! public keys, and the Yubico policy extension. Everything here takes bytes
//! from the card, so nothing here may panic on any input.

use der::{Decode as _, Encode as _};
use holdfast_proto::Jwk;
use p256::elliptic_curve::sec1::ToSec1Point as _;
use p256::pkcs8::DecodePublicKey as _;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::attestation::piv::{PinPolicy, TouchPolicy};

/// Yubico's PIN and touch policy extension (1.3.6.1.4.1.41482.3.8): two raw
/// bytes, PIN policy then touch policy.
const YUBICO_POLICY: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");

/// What a PIV certificate data object holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CertificateObject<'a> {
    /// No certificate (an absent or empty object).
    Empty,
    /// An uncompressed DER certificate.
    Der(&'a [u8]),
    /// A gzip-compressed certificate (tag `71` = 1): real YubiKeys write
    /// these only for large RSA certificates; Holdfast does not inflate them.
    Compressed,
}

/// The object is not a PIV certificate object (SP 800-73-4 part 1 appendix
/// A: `70` certificate, `71` CertInfo, `FE` error detection code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MalformedObject;

/// Parses the contents of a certificate data object (inside its `53` tag, as
/// `YubiKey::fetch_object` returns it).
pub(crate) fn certificate_object(object: &[u8]) -> Result<CertificateObject<'_>, MalformedObject> {
    let mut rest = object;
    let mut cert = None;
    let mut compressed = false;
    while !rest.is_empty() {
        let (tag, value, next) = tlv(rest).ok_or(MalformedObject)?;
        match tag {
            0x70 => cert = Some(value),
            0x71 => compressed = value.first().is_some_and(|&info| info & 0x01 != 0),
            // Error detection code (empty on YubiKeys) and unknown tags.
            _ => {}
        }
        rest = next;
    }
    Ok(match cert {
        None => CertificateObject::Empty,
        Some([]) => CertificateObject::Empty,
        Some(_) if compressed => CertificateObject::Compressed,
        Some(der) => CertificateObject::Der(der),
    })
}

/// Whether the YubiKey's admin data object (`5FFF00`, as
/// `YubiKey::fetch_object` returns it) says the management key is stored
/// PIN-protected on the card (`ykman piv access change-management-key
/// --protect`): tag `80` holds tag `81`, flags, bit `0x02`.
pub(crate) fn admin_data_says_protected(object: &[u8]) -> bool {
    let Some((0x80, mut inner, _)) = tlv(object) else {
        return false;
    };
    while let Some((tag, value, rest)) = tlv(inner) {
        if tag == 0x81 {
            return value.first().is_some_and(|&flags| flags & 0x02 != 0);
        }
        inner = rest;
    }
    false
}

/// One BER-TLV with a one-byte tag and a definite length of at most three
/// bytes (the forms PIV objects use): `(tag, value, rest)`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&len, rest) = rest.split_first()?;
            (usize::from(len), rest)
        }
        0x82 => {
            let (len, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*len)), rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// The public key of a P-256 SubjectPublicKeyInfo as a JWK; `None` for any
/// other key type or a point not on the curve.
pub(crate) fn p256_jwk_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<Jwk> {
    let der = spki.to_der().ok()?;
    let key = p256::PublicKey::from_public_key_der(&der).ok()?;
    let point = key.to_sec1_point(false);
    let x: [u8; 32] = point.x()?.as_slice().try_into().ok()?;
    let y: [u8; 32] = point.y()?.as_slice().try_into().ok()?;
    Some(Jwk::p256(x, y))
}

/// A short description of a non-P-256 key, for error messages.
pub(crate) fn describe_spki(spki: &SubjectPublicKeyInfoOwned) -> String {
    let name = |oid: &const_oid::ObjectIdentifier| {
        const_oid::db::DB
            .by_oid(oid)
            .map_or_else(|| oid.to_string(), str::to_owned)
    };
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|params| params.decode_as::<const_oid::ObjectIdentifier>().ok());
    match curve {
        Some(curve) => format!("{} {}", name(&spki.algorithm.oid), name(&curve)),
        None => name(&spki.algorithm.oid),
    }
}

/// What an attestation certificate says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttestedKey {
    /// The attested public key, if it is P-256.
    pub(crate) jwk: Option<Jwk>,
    /// The SubjectPublicKeyInfo, to describe a key that is not P-256.
    pub(crate) spki: SubjectPublicKeyInfoOwned,
    /// The PIN policy, from Yubico's extension.
    pub(crate) pin_policy: Option<PinPolicy>,
    /// The touch policy, from Yubico's extension.
    pub(crate) touch_policy: Option<TouchPolicy>,
}

/// Reads the key and Yubico policy extension of a certificate (a slot's
/// attestation certificate or a certificate stored in the slot). This is
/// not verification: it only tells the device side what the card says.
pub(crate) fn read_certificate(der: &[u8]) -> Option<AttestedKey> {
    let cert = Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate();
    let spki = tbs.subject_public_key_info().clone();
    let policy = tbs
        .extensions()
        .into_iter()
        .flatten()
        .find(|ext| ext.extn_id == YUBICO_POLICY)
        .map(|ext| ext.extn_value.as_bytes());
    let (pin_policy, touch_policy) = match policy {
        Some([pin, touch, ..]) => (PinPolicy::from_code(*pin), TouchPolicy::from_code(*touch)),
        _ => (None, None),
    };
    Some(AttestedKey {
        jwk: p256_jwk_from_spki(&spki),
        spki,
        pin_policy,
        touch_policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::BitString;
    use spki::AlgorithmIdentifierOwned;

    fn p256_spki() -> (SubjectPublicKeyInfoOwned, [u8; 32], [u8; 32]) {
        use p256::elliptic_curve::Generate as _;
        let key = p256::ecdsa::SigningKey::generate();
        let point = key.verifying_key().to_sec1_point(false);
        let x: [u8; 32] = point.x().unwrap().as_slice().try_into().unwrap();
        let y: [u8; 32] = point.y().unwrap().as_slice().try_into().unwrap();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(
                    der::Any::encode_from(&const_oid::db::rfc5912::SECP_256_R_1).unwrap(),
                ),
            },
            subject_public_key: BitString::from_bytes(point.as_bytes()).unwrap(),
        };
        (spki, x, y)
    }

    #[test]
    fn p256_spki_becomes_its_jwk() {
        let (spki, x, y) = p256_spki();
        assert_eq!(p256_jwk_from_spki(&spki), Some(Jwk::p256(x, y)));
    }

    #[test]
    fn rejects_other_curves_and_points_off_the_curve() {
        let (mut spki, _, _) = p256_spki();
        spki.algorithm.parameters =
            Some(der::Any::encode_from(&const_oid::db::rfc5912::SECP_384_R_1).unwrap());
        assert_eq!(p256_jwk_from_spki(&spki), None);

        let (mut spki, _, _) = p256_spki();
        let mut bad = [0u8; 65];
        bad[0] = 4;
        bad[1] = 1;
        spki.subject_public_key = BitString::from_bytes(&bad).unwrap();
        assert_eq!(p256_jwk_from_spki(&spki), None);
        assert_eq!(describe_spki(&spki), "id-ecPublicKey secp256r1");
    }

    #[test]
    fn parses_certificate_objects() {
        // 70 <cert> 71 00 FE 00, as YubiKeys and the yubikey crate write them.
        let cert = [0x30u8, 0x03, 1, 2, 3];
        let mut object = vec![0x70, cert.len() as u8];
        object.extend_from_slice(&cert);
        object.extend_from_slice(&[0x71, 0x01, 0x00, 0xfe, 0x00]);
        assert_eq!(
            certificate_object(&object),
            Ok(CertificateObject::Der(&cert))
        );

        // Long-form lengths.
        let big = vec![0x30u8; 300];
        let mut object = vec![0x70, 0x82, 0x01, 0x2c];
        object.extend_from_slice(&big);
        assert_eq!(
            certificate_object(&object),
            Ok(CertificateObject::Der(big.as_slice()))
        );
        let mut object = vec![0x70, 0x81, 0x05];
        object.extend_from_slice(&cert);
        assert_eq!(
            certificate_object(&object),
            Ok(CertificateObject::Der(&cert))
        );

        assert_eq!(certificate_object(&[]), Ok(CertificateObject::Empty));
        assert_eq!(
            certificate_object(&[0x70, 0x00, 0x71, 0x01, 0x00]),
            Ok(CertificateObject::Empty)
        );
        assert_eq!(
            certificate_object(&[0x70, 0x01, 0x30, 0x71, 0x01, 0x01]),
            Ok(CertificateObject::Compressed)
        );
    }

    #[test]
    fn rejects_truncated_objects() {
        for bad in [
            &[0x70][..],
            &[0x70, 0x05, 1, 2],
            &[0x70, 0x81],
            &[0x70, 0x82, 0x01],
            &[0x70, 0x83, 0, 0, 1, 0],
            &[0x70, 0x82, 0xff, 0xff, 0],
        ] {
            assert_eq!(certificate_object(bad), Err(MalformedObject), "{bad:02x?}");
        }
    }

    #[test]
    fn reads_the_protected_management_key_flag() {
        // 80 { 81 01 <flags>, 83 04 <timestamp> }
        assert!(admin_data_says_protected(&[0x80, 0x03, 0x81, 0x01, 0x02]));
        assert!(admin_data_says_protected(&[
            0x80, 0x09, 0x83, 0x04, 1, 2, 3, 4, 0x81, 0x01, 0x03
        ]));
        assert!(!admin_data_says_protected(&[0x80, 0x03, 0x81, 0x01, 0x01]));
        assert!(!admin_data_says_protected(&[0x80, 0x02, 0x81, 0x00]));
        assert!(!admin_data_says_protected(&[0x88, 0x03, 0x81, 0x01, 0x02]));
        assert!(!admin_data_says_protected(&[]));
        assert!(!admin_data_says_protected(&[0x80, 0x05, 0x81, 0x01]));
    }

    /// Real ATTEST outputs (copied from shared/testdata/attestation/yubikey).
    const YK5_543_SLOT_9A: &[u8] = include_bytes!("testdata/yk5-fw5.4.3-slot9a.der");
    const YK5C_574_SLOT_82: &[u8] = include_bytes!("testdata/yk5c-fw5.7.4-slot82.der");

    #[test]
    fn reads_key_and_policy_of_real_attestation_certificates() {
        let attested = read_certificate(YK5_543_SLOT_9A).unwrap();
        assert_eq!(attested.pin_policy, Some(PinPolicy::Once));
        assert_eq!(attested.touch_policy, Some(TouchPolicy::Never));
        let Some(Jwk::Ec(ec)) = attested.jwk else {
            panic!("a P-256 key");
        };
        assert_eq!(ec.x().get(..4).unwrap(), [0x04, 0xf3, 0x33, 0x7b]);

        // A P-384 key: policies are read, but it is not a Holdfast key.
        let attested = read_certificate(YK5C_574_SLOT_82).unwrap();
        assert_eq!(attested.pin_policy, Some(PinPolicy::Never));
        assert_eq!(attested.touch_policy, Some(TouchPolicy::Always));
        assert_eq!(attested.jwk, None);
        assert_eq!(describe_spki(&attested.spki), "id-ecPublicKey secp384r1");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap exhaustive-ish sweep over short inputs; the parsers only
        // return None or errors.
        let mut input = Vec::new();
        for a in 0..=255u8 {
            for b in [0u8, 1, 0x7f, 0x80, 0x81, 0x82, 0xff] {
                input.clear();
                input.extend_from_slice(&[a, b, a, b, 0x30, 0x82]);
                let _ = certificate_object(&input);
                let _ = read_certificate(&input);
            }
        }
    }
}
