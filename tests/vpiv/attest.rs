//! The attestation chain of this run: a test root (made here, trusted by
//! nothing unless a test says so) → the f9 device certificate → the slot
//! certificates ATTEST returns.
//!
//! The certificates copy what YubiKeys write (compare with
//! `shared/testdata/attestation/yubikey/`): UTF8String common names
//! "Yubico PIV Attestation" (from 5.7.4: "YubiKey PIV Attestation") and
//! "YubiKey PIV Attestation <slot>", the f9 validity copied into each slot
//! certificate, a 16-byte serial starting with 01, and only the Yubico
//! extensions, non-critical, with raw values: `.3` firmware (3 bytes), `.7`
//! serial (DER INTEGER, from 5.0), `.8` PIN and touch policy (2 bytes), `.9`
//! form factor (1 byte, from 5.0); the f9 certificate has `.3` and, from
//! 5.0, a critical basicConstraints CA with pathLen 0. One deliberate
//! difference: real chains are RSA-2048 with SHA-256; here every key is
//! P-256 and every signature ECDSA with SHA-256, because generating RSA keys
//! on each run would be slow.

use const_oid::ObjectIdentifier;
use getrandom::SysRng;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;

use crate::asn1;
use crate::firmware::Firmware;
use crate::keys::{KeyAlg, SlotKey, ec_spki};

/// The test root's common name: says what it is to anyone who reads it.
pub(crate) const ROOT_CN: &str =
    "Holdfast TEST PIV Attestation Root \u{2014} not a Yubico root, tests only";

const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const OID_FORM_FACTOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");

/// basicConstraints `cA TRUE` (root: no path length).
const BASIC_CONSTRAINTS_CA: &[u8] = &[0x30, 0x03, 0x01, 0x01, 0xFF];
/// basicConstraints `cA TRUE, pathLenConstraint 0` (Yubico's f9 certificates).
const BASIC_CONSTRAINTS_CA_PATHLEN_0: &[u8] = &[0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x00];
/// keyUsage keyCertSign | cRLSign.
const KEY_USAGE_CA: &[u8] = &[0x03, 0x02, 0x01, 0x06];

/// Validity of the root: covers both f9 shapes below.
const ROOT_VALIDITY: (&str, &str) = ("20160314000000Z", "99991231235959Z");
/// f9 (and slot) validity before 5.7.4, as on YubiKey 4.3–5.7.2.
const VALIDITY_2016: (&str, &str) = ("20160314000000Z", "20520417000000Z");
/// f9 (and slot) validity from 5.7.4.
const VALIDITY_2024: (&str, &str) = ("20241201000000Z", "99991231235959Z");

/// A certificate could not be made (no entropy for a serial or a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub(crate) struct RandomFailed;

/// The per-run test root and the card's f9 attestation key.
pub(crate) struct Attestation {
    root_key: SigningKey,
    root_cert: Vec<u8>,
    f9_key: SigningKey,
    f9_serial: [u8; 8],
    /// The f9 certificate for the firmware it was last made for: it states
    /// the firmware, which the control file may change.
    f9_cert: Option<(Firmware, Vec<u8>)>,
}

/// What the slot certificate states about the device and the key.
pub(crate) struct DeviceFacts {
    pub(crate) firmware: Firmware,
    pub(crate) serial: u32,
    pub(crate) form_factor: u8,
}

impl Attestation {
    pub(crate) fn generate() -> Result<Self, RandomFailed> {
        let root_key = SigningKey::try_generate_from_rng(&mut SysRng).map_err(|_| RandomFailed)?;
        let f9_key = SigningKey::try_generate_from_rng(&mut SysRng).map_err(|_| RandomFailed)?;
        let root_name = asn1::name_cn(ROOT_CN);
        let root_cert = sign_certificate(
            &random::<16>()?,
            &root_name,
            ROOT_VALIDITY,
            &root_name,
            &public_spki(&root_key),
            &[
                asn1::extension(
                    &const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                    true,
                    BASIC_CONSTRAINTS_CA,
                ),
                asn1::extension(&const_oid::db::rfc5280::ID_CE_KEY_USAGE, true, KEY_USAGE_CA),
            ],
            &root_key,
        );
        Ok(Self {
            root_key,
            root_cert,
            f9_key,
            f9_serial: random::<8>()?,
            f9_cert: None,
        })
    }

    /// The test root, DER.
    #[cfg(test)]
    pub(crate) fn root_der(&self) -> &[u8] {
        &self.root_cert
    }

    /// The test root as a PEM file's contents.
    pub(crate) fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root_cert)
    }

    /// The public half of the f9 key (for GET METADATA of slot F9).
    pub(crate) fn f9_point(&self) -> Vec<u8> {
        self.f9_key
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The f9 certificate as this firmware would carry it.
    pub(crate) fn f9_cert(&mut self, firmware: Firmware) -> &[u8] {
        let stale = self
            .f9_cert
            .as_ref()
            .is_none_or(|(made_for, _)| *made_for != firmware);
        if stale {
            let mut extensions = vec![asn1::extension(&OID_FIRMWARE, false, &firmware.bytes())];
            // YubiKey 4 f9 certificates carry no basicConstraints.
            if firmware.major >= 5 {
                extensions.push(asn1::extension(
                    &const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
                    true,
                    BASIC_CONSTRAINTS_CA_PATHLEN_0,
                ));
            }
            let cert = sign_certificate(
                &self.f9_serial,
                &asn1::name_cn(ROOT_CN),
                validity(firmware),
                &asn1::name_cn(f9_cn(firmware)),
                &public_spki(&self.f9_key),
                &extensions,
                &self.root_key,
            );
            self.f9_cert = Some((firmware, cert));
        }
        self.f9_cert
            .as_ref()
            .map_or(&[], |(_, cert)| cert.as_slice())
    }

    /// The certificate ATTEST answers for the key in `slot`.
    pub(crate) fn slot_cert(
        &self,
        slot: u8,
        key: &SlotKey,
        facts: &DeviceFacts,
    ) -> Result<Vec<u8>, RandomFailed> {
        let mut serial = random::<16>()?;
        serial[0] = 0x01;
        let policy = [key.pin_policy as u8, key.touch_policy as u8];
        let mut extensions = vec![asn1::extension(
            &OID_FIRMWARE,
            false,
            &facts.firmware.bytes(),
        )];
        // Serial and form factor appear from firmware 5 (not on YubiKey 4).
        if facts.firmware.major >= 5 {
            extensions.push(asn1::extension(
                &OID_SERIAL,
                false,
                &asn1::uint(&facts.serial.to_be_bytes()),
            ));
        }
        extensions.push(asn1::extension(&OID_POLICY, false, &policy));
        if facts.firmware.major >= 5 {
            extensions.push(asn1::extension(
                &OID_FORM_FACTOR,
                false,
                &[facts.form_factor],
            ));
        }
        Ok(sign_certificate(
            &serial,
            &asn1::name_cn(f9_cn(facts.firmware)),
            validity(facts.firmware),
            &asn1::name_cn(&format!("YubiKey PIV Attestation {slot:02x}")),
            &ec_spki(key.alg(), &key.public_point()),
            &extensions,
            &self.f9_key,
        ))
    }
}

fn f9_cn(firmware: Firmware) -> &'static str {
    if firmware.has_2024_attestation() {
        "YubiKey PIV Attestation"
    } else {
        "Yubico PIV Attestation"
    }
}

fn validity(firmware: Firmware) -> (&'static str, &'static str) {
    if firmware.has_2024_attestation() {
        VALIDITY_2024
    } else {
        VALIDITY_2016
    }
}

fn public_spki(key: &SigningKey) -> Vec<u8> {
    ec_spki(
        KeyAlg::P256,
        key.verifying_key().to_sec1_point(false).as_bytes(),
    )
}

fn random<const N: usize>() -> Result<[u8; N], RandomFailed> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| RandomFailed)?;
    Ok(out)
}

/// An X.509 v3 certificate signed with ECDSA P-256 / SHA-256.
fn sign_certificate(
    serial: &[u8],
    issuer: &[u8],
    (not_before, not_after): (&str, &str),
    subject: &[u8],
    spki: &[u8],
    extensions: &[Vec<u8>],
    signer: &SigningKey,
) -> Vec<u8> {
    // ecdsa-with-SHA256 has no parameters (RFC 5758 3.2).
    let algorithm = asn1::seq(&[&asn1::oid(&const_oid::db::rfc5912::ECDSA_WITH_SHA_256)]);
    let extension_refs: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    let tbs = asn1::seq(&[
        &asn1::explicit(0, &asn1::uint(&[2])),
        &asn1::uint(serial),
        &algorithm,
        issuer,
        &asn1::seq(&[&asn1::time(not_before), &asn1::time(not_after)]),
        subject,
        spki,
        &asn1::explicit(3, &asn1::seq(&extension_refs)),
    ]);
    let signature: Signature = signer.sign(&tbs);
    asn1::seq(&[&tbs, &algorithm, &asn1::bits(signature.to_der().as_bytes())])
}

/// RFC 7468 text encoding.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    let body = Base64::encode_string(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;
    use x509_cert::Certificate;
    use x509_cert::der::{Decode, Encode};

    use super::*;
    use crate::keys::{PinPolicy, TouchPolicy};

    fn verifies(cert: &Certificate, issuer: &Certificate) -> bool {
        let spki = &issuer.tbs_certificate().subject_public_key_info();
        let key = VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).unwrap();
        let signature = Signature::from_der(cert.signature().raw_bytes()).unwrap();
        key.verify(&cert.tbs_certificate().to_der().unwrap(), &signature)
            .is_ok()
    }

    fn extension_values(cert: &Certificate) -> Vec<(String, bool, Vec<u8>)> {
        cert.tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e.extn_id.to_string(),
                    e.critical,
                    e.extn_value.as_bytes().to_vec(),
                )
            })
            .collect()
    }

    fn cn(name: &x509_cert::name::Name) -> String {
        name.to_string()
    }

    #[test]
    fn chain_verifies_and_carries_yubico_extensions() {
        let mut attestation = Attestation::generate().unwrap();
        let root = Certificate::from_der(attestation.root_der()).unwrap();
        assert!(verifies(&root, &root), "the root is self-signed");
        // RFC 4514 escapes the comma when printing.
        let printed = format!("CN={}", ROOT_CN.replace(',', "\\,"));
        assert_eq!(cn(root.tbs_certificate().subject()), printed);

        let firmware = Firmware::new(5, 4, 3);
        let f9 = Certificate::from_der(attestation.f9_cert(firmware)).unwrap();
        assert!(verifies(&f9, &root));
        assert_eq!(
            cn(f9.tbs_certificate().subject()),
            "CN=Yubico PIV Attestation"
        );
        assert_eq!(
            extension_values(&f9),
            [
                ("1.3.6.1.4.1.41482.3.3".to_owned(), false, vec![5, 4, 3]),
                (
                    "2.5.29.19".to_owned(),
                    true,
                    BASIC_CONSTRAINTS_CA_PATHLEN_0.to_vec()
                ),
            ]
        );

        let key = SlotKey::generate(KeyAlg::P256, PinPolicy::Once, TouchPolicy::Never).unwrap();
        let facts = DeviceFacts {
            firmware,
            serial: 15_732_500,
            form_factor: 0x04,
        };
        let slot =
            Certificate::from_der(&attestation.slot_cert(0x9A, &key, &facts).unwrap()).unwrap();
        assert!(verifies(&slot, &f9));
        assert!(!verifies(&slot, &root));
        let tbs = slot.tbs_certificate();
        assert_eq!(cn(tbs.subject()), "CN=YubiKey PIV Attestation 9a");
        assert_eq!(tbs.issuer(), f9.tbs_certificate().subject());
        assert_eq!(tbs.validity(), f9.tbs_certificate().validity());
        assert_eq!(tbs.serial_number().as_bytes().len(), 16);
        assert_eq!(tbs.serial_number().as_bytes()[0], 0x01);
        assert_eq!(
            tbs.subject_public_key_info().subject_public_key.raw_bytes(),
            key.public_point()
        );
        // The raw values of the real yk5-fw5.4.3-sn15732500-slot9a certificate.
        assert_eq!(
            extension_values(&slot),
            [
                (
                    "1.3.6.1.4.1.41482.3.3".to_owned(),
                    false,
                    vec![0x05, 0x04, 0x03]
                ),
                (
                    "1.3.6.1.4.1.41482.3.7".to_owned(),
                    false,
                    vec![0x02, 0x04, 0x00, 0xF0, 0x0F, 0x14]
                ),
                ("1.3.6.1.4.1.41482.3.8".to_owned(), false, vec![0x02, 0x01]),
                ("1.3.6.1.4.1.41482.3.9".to_owned(), false, vec![0x04]),
            ]
        );
    }

    #[test]
    fn firmware_5_7_4_uses_the_2024_names_and_validity() {
        let mut attestation = Attestation::generate().unwrap();
        let firmware = Firmware::new(5, 7, 4);
        let f9 = Certificate::from_der(attestation.f9_cert(firmware)).unwrap();
        assert_eq!(
            cn(f9.tbs_certificate().subject()),
            "CN=YubiKey PIV Attestation"
        );
        let key = SlotKey::generate(KeyAlg::P384, PinPolicy::Never, TouchPolicy::Always).unwrap();
        let facts = DeviceFacts {
            firmware,
            serial: 33_162_554,
            form_factor: 0x03,
        };
        let der = attestation.slot_cert(0x82, &key, &facts).unwrap();
        let slot = Certificate::from_der(&der).unwrap();
        assert!(verifies(&slot, &f9));
        assert_eq!(
            cn(slot.tbs_certificate().issuer()),
            "CN=YubiKey PIV Attestation"
        );
        assert_eq!(
            cn(slot.tbs_certificate().subject()),
            "CN=YubiKey PIV Attestation 82"
        );
        // Same notAfter as the real 5.7.4 certificates: 9999-12-31 23:59:59.
        let not_after = slot
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
            .as_secs();
        assert_eq!(not_after, 253_402_300_799);
        let values = extension_values(&slot);
        assert_eq!(values[1].2, [0x02, 0x04, 0x01, 0xFA, 0x05, 0x3A]);
        assert_eq!(values[2].2, [0x01, 0x02], "PIN never, touch always");
    }

    #[test]
    fn yubikey_4_certificates_have_no_serial_form_factor_or_constraints() {
        let mut attestation = Attestation::generate().unwrap();
        let firmware = Firmware::new(4, 3, 7);
        let f9 = Certificate::from_der(attestation.f9_cert(firmware)).unwrap();
        assert_eq!(extension_values(&f9).len(), 1);
        let key = SlotKey::generate(KeyAlg::P256, PinPolicy::Once, TouchPolicy::Never).unwrap();
        let facts = DeviceFacts {
            firmware,
            serial: 1,
            form_factor: 1,
        };
        let slot =
            Certificate::from_der(&attestation.slot_cert(0x9A, &key, &facts).unwrap()).unwrap();
        let oids: Vec<_> = extension_values(&slot)
            .into_iter()
            .map(|(oid, _, _)| oid)
            .collect();
        assert_eq!(oids, ["1.3.6.1.4.1.41482.3.3", "1.3.6.1.4.1.41482.3.8"]);
    }

    #[test]
    fn the_f9_certificate_follows_firmware_changes_with_the_same_key() {
        let mut attestation = Attestation::generate().unwrap();
        let old = Certificate::from_der(attestation.f9_cert(Firmware::new(5, 4, 3))).unwrap();
        let new = Certificate::from_der(attestation.f9_cert(Firmware::new(5, 7, 4))).unwrap();
        assert_ne!(old, new);
        assert_eq!(
            old.tbs_certificate().subject_public_key_info(),
            new.tbs_certificate().subject_public_key_info()
        );
        assert_eq!(
            attestation.f9_point(),
            new.tbs_certificate()
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes()
        );
    }

    #[test]
    fn root_pem_round_trips() {
        let attestation = Attestation::generate().unwrap();
        let pem = attestation.root_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64ct::{Base64, Encoding};
        assert_eq!(Base64::decode_vec(&body).unwrap(), attestation.root_der());
    }
}
