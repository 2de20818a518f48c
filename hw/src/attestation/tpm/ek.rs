//! EK certificates and their chains to configured TPM-vendor roots.
//!
//! These are the TCG EK Credential Profile rules, not WebPKI's:
//!
//! - the path is leaf ← zero or more configured intermediates ← a configured
//!   anchor; every link is checked with `verify_issued_by`, every certificate
//!   (anchor included) with `check_validity` at the given time;
//! - every issuing certificate (intermediates and anchor) has
//!   basicConstraints `cA` = true, keyCertSign if it has a keyUsage, and a
//!   pathLenConstraint that the path respects. The real vendor chains in the
//!   test data (STMicro, Google, Microsoft) need no exception to this;
//! - an anchor need not be self-signed (STM's ECC root is itself issued by a
//!   GlobalSign root that is not distributed): it is trusted as configured;
//! - the leaf may have an empty subject; its identity is the subjectAltName
//!   `directoryName` with TPM manufacturer (2.23.133.2.1), model
//!   (2.23.133.2.2) and version (2.23.133.2.3), all three required, and the
//!   extension critical when the subject is empty (RFC 5280 §4.2.1.6);
//! - an extendedKeyUsage, if present, contains tcg-kp-EKCertificate
//!   (2.23.133.8.1); a keyUsage, if present, allows keyEncipherment (RSA EK)
//!   or keyAgreement (ECC EK): a signing key is not an EK; the leaf is not a
//!   CA;
//! - trailing 0xFF/0x00 NV padding after the DER is tolerated.

use std::path::Path;

use const_oid::ObjectIdentifier;
use der::{Decode, Tag, Tagged};
use holdfast_proto::UnixTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::credential::EkPublicKey;
use super::error::{TpmAttestError, TpmTrustError};
use crate::attestation::x509::{Certificate, PublicKey, X509Error};

const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// tcg-kp-EKCertificate.
const TCG_KP_EK_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.8.1");
/// tcg-at-tpmManufacturer.
const TPM_MANUFACTURER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.1");
/// tcg-at-tpmModel.
const TPM_MODEL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.2");
/// tcg-at-tpmVersion.
const TPM_VERSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.3");
/// Most certificates between a leaf and its anchor (real EK paths have 0–2).
const MAX_INTERMEDIATES: usize = 4;
/// Longest manufacturer, model or version string kept.
const MAX_ATTRIBUTE_LEN: usize = 128;

/// The TPM-vendor certificates EK chains must end in.
#[derive(Clone, Debug)]
pub struct TpmTrust {
    anchors: Vec<Certificate>,
    intermediates: Vec<Certificate>,
}

/// A verified path from a certificate to a configured anchor.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedPath {
    /// Subjects from the leaf's issuer to the anchor, in order.
    pub issuers: Vec<String>,
    /// The anchor's subject.
    pub anchor: String,
}

/// The TPM identity an EK (or AK) certificate's subjectAltName carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TpmIdentity {
    /// The manufacturer's TCG vendor ID as 8 uppercase hex digits
    /// (`53544D20`), or the attribute as written if it is not `id:` + hex.
    pub manufacturer: String,
    /// The vendor's name, for IDs in the TCG vendor registry.
    pub manufacturer_name: Option<&'static str>,
    /// The TPM model (`ST33HTPHAHB4`, `swtpm`).
    pub model: String,
    /// The TPM version attribute as written (`id:00490004`): vendor-defined,
    /// usually the firmware version at manufacture.
    pub version: String,
}

/// An EK certificate that chains to a configured root and follows the TCG
/// EK profile.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedEk {
    /// The certificate.
    pub certificate: Certificate,
    /// SHA-256 of the certificate's DER (without NV padding).
    pub fingerprint: [u8; 32],
    /// Its public key and the EK template it implies.
    pub public_key: EkPublicKey,
    /// The TPM identity from its subjectAltName.
    pub identity: TpmIdentity,
    /// The path to the anchor.
    pub path: VerifiedPath,
}

impl TpmTrust {
    /// Trust in `anchors`, with `intermediates` available to build paths.
    ///
    /// # Errors
    /// [`TpmTrustError::NoAnchors`] if `anchors` is empty.
    pub fn new(
        anchors: Vec<Certificate>,
        intermediates: Vec<Certificate>,
    ) -> Result<Self, TpmTrustError> {
        if anchors.is_empty() {
            return Err(TpmTrustError::NoAnchors);
        }
        Ok(Self {
            anchors,
            intermediates,
        })
    }

    /// Trust from PEM texts: every `CERTIFICATE` block of `anchors` is an
    /// anchor, every block of `intermediates` (which may be empty) an
    /// intermediate.
    ///
    /// # Errors
    /// [`TpmTrustError::Certificate`] for a bad block,
    /// [`TpmTrustError::NoAnchors`].
    pub fn from_pem(anchors: &str, intermediates: &str) -> Result<Self, TpmTrustError> {
        let anchors =
            Certificate::from_pem(anchors).map_err(|source| TpmTrustError::Certificate {
                origin: "anchors PEM".into(),
                source,
            })?;
        let intermediates = if intermediates.trim().is_empty() {
            Vec::new()
        } else {
            Certificate::from_pem(intermediates).map_err(|source| TpmTrustError::Certificate {
                origin: "intermediates PEM".into(),
                source,
            })?
        };
        Self::new(anchors, intermediates)
    }

    /// Trust from files, each PEM (any number of certificates) or a single
    /// DER certificate.
    ///
    /// # Errors
    /// [`TpmTrustError::Io`], [`TpmTrustError::Certificate`] naming the
    /// file, [`TpmTrustError::NoAnchors`].
    pub fn from_files<P: AsRef<Path>>(
        anchors: &[P],
        intermediates: &[P],
    ) -> Result<Self, TpmTrustError> {
        let read = |paths: &[P]| -> Result<Vec<Certificate>, TpmTrustError> {
            let mut out = Vec::new();
            for path in paths {
                out.extend(read_certificates(path.as_ref())?);
            }
            Ok(out)
        };
        let anchors = read(anchors)?;
        let intermediates = read(intermediates)?;
        Self::new(anchors, intermediates)
    }

    /// The configured anchors.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// The configured intermediates.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    /// Verifies `ek_certificate` (DER, NV padding tolerated) as an EK
    /// certificate that chains to an anchor at `at`.
    ///
    /// # Errors
    /// The [`TpmAttestError`] `Ek*` variant of the first failed rule.
    pub fn verify_ek(
        &self,
        ek_certificate: &[u8],
        at: UnixTime,
    ) -> Result<VerifiedEk, TpmAttestError> {
        let certificate =
            Certificate::from_der_padded(ek_certificate).map_err(TpmAttestError::EkMalformed)?;
        let path = self.verify_path(&certificate, at)?;
        let x509_key = certificate
            .public_key()
            .map_err(TpmAttestError::EkMalformed)?;
        check_ek_usage(&certificate, &x509_key)?;
        let identity = tpm_identity(&certificate)?;
        let public_key = match &x509_key {
            PublicKey::Rsa { n, e } => EkPublicKey::rsa(n, e),
            PublicKey::EcP256 { sec1 } => EkPublicKey::ec_p256(sec1),
            PublicKey::EcP384 { sec1 } => EkPublicKey::ec_p384(sec1),
        }
        .map_err(TpmAttestError::EkKeyUnsupported)?;
        Ok(VerifiedEk {
            fingerprint: certificate.fingerprint(),
            certificate,
            public_key,
            identity,
            path,
        })
    }

    /// Verifies only the path from `leaf` to an anchor at `at` (the chain
    /// rules in the module documentation, none of the EK leaf rules). Also
    /// used for AK certificates, such as Windows Hello's.
    ///
    /// # Errors
    /// [`TpmAttestError::EkUntrusted`], [`TpmAttestError::EkChainSignature`],
    /// [`TpmAttestError::EkChainExpired`], [`TpmAttestError::EkIssuerNotCa`].
    pub fn verify_path(
        &self,
        leaf: &Certificate,
        at: UnixTime,
    ) -> Result<VerifiedPath, TpmAttestError> {
        leaf.check_validity(at)
            .map_err(TpmAttestError::EkChainExpired)?;
        let mut issuers = Vec::new();
        self.extend_path(leaf, at, &mut issuers)?;
        let anchor = issuers.last().cloned().unwrap_or_default();
        Ok(VerifiedPath { issuers, anchor })
    }

    /// Depth-first search for an issuer of `cert`: anchors first, then
    /// intermediates not already on the path. `issuers` holds the subjects
    /// found so far; on success it ends with the anchor's.
    fn extend_path(
        &self,
        cert: &Certificate,
        at: UnixTime,
        issuers: &mut Vec<String>,
    ) -> Result<(), TpmAttestError> {
        let mut first_error = None;
        for anchor in &self.anchors {
            match self.link(cert, anchor, at, issuers.len()) {
                Ok(()) => {
                    issuers.push(anchor.subject());
                    return Ok(());
                }
                Err(None) => {}
                Err(Some(err)) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if issuers.len() < MAX_INTERMEDIATES {
            for intermediate in &self.intermediates {
                if issuers.contains(&intermediate.subject()) {
                    continue;
                }
                match self.link(cert, intermediate, at, issuers.len()) {
                    Ok(()) => {
                        issuers.push(intermediate.subject());
                        match self.extend_path(intermediate, at, issuers) {
                            Ok(()) => return Ok(()),
                            Err(err) => {
                                issuers.pop();
                                first_error.get_or_insert(err);
                            }
                        }
                    }
                    Err(None) => {}
                    Err(Some(err)) => {
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        Err(first_error.unwrap_or_else(|| TpmAttestError::EkUntrusted {
            issuer: cert.issuer(),
        }))
    }

    /// Checks that `issuer` issued `cert` and may issue certificates with
    /// `below` CA certificates under it. `Err(None)`: not its issuer (names
    /// differ), try another.
    fn link(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        at: UnixTime,
        below: usize,
    ) -> Result<(), Option<TpmAttestError>> {
        match cert.verify_issued_by(issuer) {
            Ok(()) => {}
            Err(X509Error::IssuerMismatch { .. }) => return Err(None),
            Err(source) => {
                return Err(Some(TpmAttestError::EkChainSignature {
                    subject: cert.subject(),
                    source,
                }));
            }
        }
        check_ca(issuer, below).map_err(Some)?;
        issuer
            .check_validity(at)
            .map_err(|e| Some(TpmAttestError::EkChainExpired(e)))
    }
}

/// An issuing certificate's CA rules.
fn check_ca(issuer: &Certificate, below: usize) -> Result<(), TpmAttestError> {
    let not_ca = |reason| TpmAttestError::EkIssuerNotCa {
        subject: issuer.subject(),
        reason,
    };
    let constraints = issuer
        .basic_constraints()
        .map_err(TpmAttestError::EkMalformed)?
        .ok_or_else(|| not_ca("it has no basicConstraints"))?;
    if !constraints.ca {
        return Err(not_ca("basicConstraints cA is not set"));
    }
    if constraints
        .path_len
        .is_some_and(|max| below > usize::from(max))
    {
        return Err(not_ca("its pathLenConstraint is exceeded"));
    }
    if key_usage(issuer)?.is_some_and(|usage| !usage.key_cert_sign()) {
        return Err(not_ca("its keyUsage lacks keyCertSign"));
    }
    Ok(())
}

/// The EK leaf's usage rules.
fn check_ek_usage(cert: &Certificate, key: &PublicKey) -> Result<(), TpmAttestError> {
    if let Some(ext) = cert.extension(&EXTENDED_KEY_USAGE) {
        let eku = ExtendedKeyUsage::from_der(ext.value).map_err(|e| {
            TpmAttestError::EkMalformed(X509Error::Malformed(format!("extendedKeyUsage: {e}")))
        })?;
        if !eku.0.contains(&TCG_KP_EK_CERTIFICATE) {
            return Err(TpmAttestError::EkNotAnEk(
                "its extendedKeyUsage lacks tcg-kp-EKCertificate (2.23.133.8.1)",
            ));
        }
    }
    if let Some(usage) = key_usage(cert)? {
        let ok = match key {
            PublicKey::Rsa { .. } => usage.key_encipherment(),
            PublicKey::EcP256 { .. } | PublicKey::EcP384 { .. } => usage.key_agreement(),
        };
        if !ok {
            return Err(TpmAttestError::EkNotAnEk(
                "its keyUsage allows neither keyEncipherment (RSA) nor keyAgreement (ECC)",
            ));
        }
    }
    if cert
        .basic_constraints()
        .map_err(TpmAttestError::EkMalformed)?
        .is_some_and(|bc| bc.ca)
    {
        return Err(TpmAttestError::EkNotAnEk("it is a CA certificate"));
    }
    Ok(())
}

fn key_usage(cert: &Certificate) -> Result<Option<KeyUsage>, TpmAttestError> {
    cert.extension(&KEY_USAGE)
        .map(|ext| {
            KeyUsage::from_der(ext.value).map_err(|e| {
                TpmAttestError::EkMalformed(X509Error::Malformed(format!("keyUsage: {e}")))
            })
        })
        .transpose()
}

/// The TPM manufacturer, model and version from a certificate's
/// subjectAltName `directoryName` (TCG EK Credential Profile §3.2.9; AK
/// certificates use the same form).
///
/// # Errors
/// [`TpmAttestError::EkSanInvalid`] if the extension is missing, not
/// critical under an empty subject, malformed, or lacks one of the three.
pub fn tpm_identity(cert: &Certificate) -> Result<TpmIdentity, TpmAttestError> {
    let invalid = |msg: &str| TpmAttestError::EkSanInvalid(msg.to_owned());
    let ext = cert
        .extension(&SUBJECT_ALT_NAME)
        .ok_or_else(|| invalid("the certificate has no subjectAltName"))?;
    if cert.inner().tbs_certificate().subject().is_empty() && !ext.critical {
        return Err(invalid(
            "the subject is empty and the subjectAltName is not critical",
        ));
    }
    let san = SubjectAltName::from_der(ext.value).map_err(|e| {
        TpmAttestError::EkSanInvalid(format!("subjectAltName does not decode: {e}"))
    })?;
    let (mut manufacturer, mut model, mut version) = (None, None, None);
    for name in &san.0 {
        let GeneralName::DirectoryName(dn) = name else {
            continue;
        };
        for attribute in dn.iter() {
            let slot = match attribute.oid {
                TPM_MANUFACTURER => &mut manufacturer,
                TPM_MODEL => &mut model,
                TPM_VERSION => &mut version,
                _ => continue,
            };
            if slot.is_some() {
                return Err(invalid("a TPM attribute appears twice"));
            }
            *slot = Some(attribute_text(&attribute.value)?);
        }
    }
    let manufacturer = manufacturer.ok_or_else(|| invalid("no TPM manufacturer (2.23.133.2.1)"))?;
    let model = model.ok_or_else(|| invalid("no TPM model (2.23.133.2.2)"))?;
    let version = version.ok_or_else(|| invalid("no TPM version (2.23.133.2.3)"))?;
    let (manufacturer, manufacturer_name) = match vendor_id(&manufacturer) {
        Some(id) => (format!("{id:08X}"), vendor_name(id)),
        None => (manufacturer, None),
    };
    Ok(TpmIdentity {
        manufacturer,
        manufacturer_name,
        model,
        version,
    })
}

/// A directory string attribute (UTF8String, PrintableString or IA5String).
fn attribute_text(value: &der::Any) -> Result<String, TpmAttestError> {
    let invalid = |msg: &str| TpmAttestError::EkSanInvalid(msg.to_owned());
    if !matches!(
        value.tag(),
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
    ) {
        return Err(invalid("a TPM attribute is not a string"));
    }
    if value.value().len() > MAX_ATTRIBUTE_LEN {
        return Err(invalid("a TPM attribute is too long"));
    }
    let text =
        core::str::from_utf8(value.value()).map_err(|_| invalid("a TPM attribute is not UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(invalid("a TPM attribute contains control characters"));
    }
    Ok(text.to_owned())
}

/// `id:XXXXXXXX` (TCG EK Credential Profile §3.2.9: a 4-byte vendor ID in
/// hex, `id:` prefix) to its value.
fn vendor_id(text: &str) -> Option<u32> {
    let hex = text
        .get(..3)?
        .eq_ignore_ascii_case("id:")
        .then(|| text.get(3..))??;
    if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Names from the TCG TPM Vendor ID Registry (most IDs are the vendor's
/// ASCII ticker), and swtpm's `id:00001014` (IBM's PCI vendor ID).
fn vendor_name(id: u32) -> Option<&'static str> {
    Some(match &id.to_be_bytes() {
        b"AMD\0" => "AMD",
        b"ATML" => "Atmel",
        b"BRCM" => "Broadcom",
        b"CSCO" => "Cisco",
        b"GOOG" => "Google",
        b"HISI" => "Huawei",
        b"HPE\0" => "HPE",
        b"IBM\0" | [0x00, 0x00, 0x10, 0x14] => "IBM",
        b"IFX\0" => "Infineon",
        b"INTC" => "Intel",
        b"LEN\0" => "Lenovo",
        b"MSFT" => "Microsoft",
        b"NSM " => "National Semiconductor",
        b"NTZ\0" => "Nationz",
        b"NTC\0" => "Nuvoton",
        b"QCOM" => "Qualcomm",
        b"ROCC" => "Fuzhou Rockchip",
        b"SMSC" => "SMSC",
        b"SMSN" => "Samsung",
        b"SNS\0" => "Sinosun",
        b"STM " => "STMicroelectronics",
        b"TXN\0" => "Texas Instruments",
        b"WEC\0" => "Winbond",
        _ => return None,
    })
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate>, TpmTrustError> {
    let bytes = std::fs::read(path).map_err(|source| TpmTrustError::Io {
        path: path.to_owned(),
        source,
    })?;
    let origin = || path.display().to_string();
    if bytes.first() == Some(&0x30) {
        return Certificate::from_der(&bytes)
            .map(|cert| vec![cert])
            .map_err(|source| TpmTrustError::Certificate {
                origin: origin(),
                source,
            });
    }
    let text = String::from_utf8(bytes).map_err(|_| TpmTrustError::Certificate {
        origin: origin(),
        source: X509Error::Malformed("neither DER nor PEM text".into()),
    })?;
    Certificate::from_pem(&text).map_err(|source| TpmTrustError::Certificate {
        origin: origin(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_ids_parse_and_name_known_vendors() {
        assert_eq!(vendor_id("id:53544D20"), Some(0x5354_4D20));
        assert_eq!(vendor_id("ID:00001014"), Some(0x1014));
        assert_eq!(vendor_id("id:13"), Some(0x13));
        assert_eq!(vendor_id("53544D20"), None);
        assert_eq!(vendor_id("id:"), None);
        assert_eq!(vendor_id("id:123456789"), None);
        assert_eq!(vendor_id("id:+1"), None);
        assert_eq!(vendor_name(0x5354_4D20), Some("STMicroelectronics"));
        assert_eq!(vendor_name(0x4946_5800), Some("Infineon"));
        assert_eq!(vendor_name(0x4E54_4300), Some("Nuvoton"));
        assert_eq!(vendor_name(0x494E_5443), Some("Intel"));
        assert_eq!(vendor_name(0x0000_1014), Some("IBM"));
        assert_eq!(vendor_name(0x474F_4F47), Some("Google"));
        assert_eq!(vendor_name(0x1234_5678), None);
    }
}
