//! The certificate layer both attestation verifiers build on: parse a
//! certificate, check one link (issuer name and signature), check validity
//! at a given time, read extensions and public keys.
//!
//! There are deliberately no path-building or WebPKI rules here. TPM EK
//! chains and Yubico PIV chains each break RFC 5280 in known ways (empty
//! subjects, f9 certificates without basicConstraints, a root with
//! `pathLen` 0 that signs a CA), so each verifier states the exact chain
//! shapes it accepts and checks them link by link with these functions.
//!
//! Certificates are decoded with the lenient `Raw` profile of `x509-cert`
//! (real EK certificates carry serials RFC 5280 forbids), and signatures are
//! checked over the `tbsCertificate` bytes exactly as received, never over a
//! re-encoding. Signature verification is aws-lc-rs, the project's one
//! verification backend.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use base64ct::Encoding as _;
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Encode, Reader, SliceReader};
use holdfast_proto::UnixTime;
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::ext::pkix::BasicConstraints as X509BasicConstraints;

/// A parsed certificate and the DER it came from.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    inner: CertificateInner<Raw>,
}

impl core::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .finish_non_exhaustive()
    }
}

/// One extension of a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Whether it is marked critical.
    pub critical: bool,
    /// The contents of `extnValue` (the DER inside the OCTET STRING).
    pub value: &'a [u8],
}

/// The basicConstraints extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicConstraints {
    /// `cA`.
    pub ca: bool,
    /// `pathLenConstraint`.
    pub path_len: Option<u8>,
}

/// A public key from a certificate (or, for TPM keys, from a `TPMT_PUBLIC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// ECDSA on P-256: the uncompressed SEC1 point `04 ‖ X ‖ Y`.
    EcP256 {
        /// `04 ‖ X ‖ Y`.
        sec1: Vec<u8>,
    },
    /// ECDSA on P-384: the uncompressed SEC1 point `04 ‖ X ‖ Y`.
    EcP384 {
        /// `04 ‖ X ‖ Y`.
        sec1: Vec<u8>,
    },
}

/// A signature algorithm, as certificates and TPM signatures name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-1 (old TPM attestation keys still use it).
    RsaPkcs1Sha1,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, salt as long as the digest).
    RsaPssSha256,
    /// ECDSA with SHA-256, ASN.1 DER signature.
    EcdsaSha256,
    /// ECDSA with SHA-384, ASN.1 DER signature.
    EcdsaSha384,
    /// ECDSA with SHA-512, ASN.1 DER signature.
    EcdsaSha512,
}

/// Why a certificate or a link failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// Not a certificate, or not one this layer can read.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// `notBefore` is after the verification time.
    #[error("certificate {subject} is not valid before {not_before} (checked at {at})")]
    NotYetValid {
        /// Subject of the certificate.
        subject: String,
        /// Its `notBefore`, Unix seconds.
        not_before: u64,
        /// The verification time, Unix seconds.
        at: u64,
    },
    /// `notAfter` is before the verification time.
    #[error("certificate {subject} expired at {not_after} (checked at {at})")]
    Expired {
        /// Subject of the certificate.
        subject: String,
        /// Its `notAfter`, Unix seconds.
        not_after: u64,
        /// The verification time, Unix seconds.
        at: u64,
    },
    /// The certificate names another issuer.
    #[error("certificate {subject} names issuer {issuer}, not {candidate}")]
    IssuerMismatch {
        /// Subject of the certificate.
        subject: String,
        /// The issuer it names.
        issuer: String,
        /// The subject of the certificate offered as its issuer.
        candidate: String,
    },
    /// The signature does not verify with the issuer's key.
    #[error("the signature on {subject} does not verify with its issuer's key")]
    BadSignature {
        /// Subject of the signed certificate, or what was signed.
        subject: String,
    },
    /// A signature algorithm this layer does not accept.
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A public key type this layer does not accept.
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
}

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Largest certificate accepted, before parsing.
const MAX_CERT_LEN: usize = 16 * 1024;

impl Certificate {
    /// Parses exactly one DER certificate.
    ///
    /// # Errors
    /// [`X509Error::Malformed`].
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        if der.len() > MAX_CERT_LEN {
            return Err(X509Error::Malformed(format!(
                "{} bytes is more than the {MAX_CERT_LEN} accepted",
                der.len()
            )));
        }
        let inner = CertificateInner::<Raw>::from_der(der)
            .map_err(|e| X509Error::Malformed(e.to_string()))?;
        // The tbsCertificate must be reachable as received (checked here so
        // later signature checks cannot fail on framing).
        tbs_bytes(der)?;
        Ok(Self {
            der: der.to_vec(),
            inner,
        })
    }

    /// Parses the first DER element of `bytes` as a certificate; what
    /// follows must be padding (`0xFF` or `0x00`), as TPM NV indexes store
    /// EK certificates.
    ///
    /// # Errors
    /// [`X509Error::Malformed`], also for anything but padding after it.
    pub fn from_der_padded(bytes: &[u8]) -> Result<Self, X509Error> {
        let len = first_tlv_len(bytes)?;
        let (cert, rest) = bytes.split_at_checked(len).ok_or_else(|| {
            X509Error::Malformed("the certificate is longer than the data".into())
        })?;
        if rest.iter().any(|&b| b != 0xff && b != 0x00) {
            return Err(X509Error::Malformed(
                "data after the certificate is not NV padding".into(),
            ));
        }
        Self::from_der(cert)
    }

    /// Every `CERTIFICATE` block of a PEM text, in order.
    ///
    /// # Errors
    /// [`X509Error::Malformed`] for a bad block or a text without any.
    pub fn from_pem(text: &str) -> Result<Vec<Self>, X509Error> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(BEGIN) {
            let after = rest.get(start + BEGIN.len()..).unwrap_or_default();
            let end = after
                .find(END)
                .ok_or_else(|| X509Error::Malformed("PEM block without an end line".into()))?;
            let body: String = after
                .get(..end)
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let der = base64ct::Base64::decode_vec(&body)
                .map_err(|_| X509Error::Malformed("PEM block is not base64".into()))?;
            out.push(Self::from_der(&der)?);
            rest = after.get(end + END.len()..).unwrap_or_default();
        }
        if out.is_empty() {
            return Err(X509Error::Malformed("no CERTIFICATE block in PEM".into()));
        }
        Ok(out)
    }

    /// The DER encoding, as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn inner(&self) -> &CertificateInner<Raw> {
        &self.inner
    }

    /// The subject, RFC 4514 style, for messages.
    pub fn subject(&self) -> String {
        name_text(self.inner.tbs_certificate().subject())
    }

    /// The issuer, RFC 4514 style, for messages.
    pub fn issuer(&self) -> String {
        name_text(self.inner.tbs_certificate().issuer())
    }

    /// SHA-256 of the DER.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, &self.der).as_ref());
        out
    }

    /// The subject public key.
    ///
    /// # Errors
    /// [`X509Error::UnsupportedKey`] for anything but RSA, P-256 and P-384.
    pub fn public_key(&self) -> Result<PublicKey, X509Error> {
        let spki = self.inner.tbs_certificate().subject_public_key_info();
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| X509Error::UnsupportedKey("public key has unused bits".into()))?;
        match spki.algorithm.oid {
            RSA_ENCRYPTION => rsa_components(bits),
            EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or_else(|| {
                        X509Error::UnsupportedKey("EC key without a named curve".into())
                    })?;
                let sec1 = bits.to_vec();
                match (curve, sec1.len()) {
                    (SECP256R1, 65) => Ok(PublicKey::EcP256 { sec1 }),
                    (SECP384R1, 97) => Ok(PublicKey::EcP384 { sec1 }),
                    (SECP256R1 | SECP384R1, _) => Err(X509Error::UnsupportedKey(
                        "EC point is not uncompressed".into(),
                    )),
                    (other, _) => Err(X509Error::UnsupportedKey(format!("EC curve {other}"))),
                }
            }
            other => Err(X509Error::UnsupportedKey(format!("key algorithm {other}"))),
        }
    }

    /// Checks `notBefore <= at <= notAfter`.
    ///
    /// # Errors
    /// [`X509Error::NotYetValid`], [`X509Error::Expired`].
    pub fn check_validity(&self, at: UnixTime) -> Result<(), X509Error> {
        let validity = self.inner.tbs_certificate().validity();
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();
        let at = at.as_secs();
        if at < not_before {
            return Err(X509Error::NotYetValid {
                subject: self.subject(),
                not_before,
                at,
            });
        }
        if at > not_after {
            return Err(X509Error::Expired {
                subject: self.subject(),
                not_after,
                at,
            });
        }
        Ok(())
    }

    /// Checks one link: this certificate names `issuer`'s subject as its
    /// issuer, and `issuer`'s key verifies its signature. Nothing else (no
    /// CA flags, no validity): the caller's chain rules decide those.
    ///
    /// # Errors
    /// [`X509Error::IssuerMismatch`], [`X509Error::BadSignature`], or an
    /// unsupported algorithm or key.
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), X509Error> {
        let named = encoded_name(self.inner.tbs_certificate().issuer())?;
        let candidate = encoded_name(issuer.inner.tbs_certificate().subject())?;
        if named != candidate {
            return Err(X509Error::IssuerMismatch {
                subject: self.subject(),
                issuer: self.issuer(),
                candidate: issuer.subject(),
            });
        }
        let alg = signature_alg(&self.inner.signature_algorithm().oid)?;
        let signature = self
            .inner
            .signature()
            .as_bytes()
            .ok_or_else(|| X509Error::Malformed("signature has unused bits".into()))?;
        issuer
            .public_key()?
            .verify(alg, tbs_bytes(&self.der)?, signature)
            .map_err(|_| X509Error::BadSignature {
                subject: self.subject(),
            })
    }

    /// The extension with this OID, if present.
    pub fn extension(&self, oid: &ObjectIdentifier) -> Option<Extension<'_>> {
        self.inner
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|ext| ext.extn_id == *oid)
            .map(|ext| Extension {
                critical: ext.critical,
                value: ext.extn_value.as_bytes(),
            })
    }

    /// The basicConstraints extension, if present.
    ///
    /// # Errors
    /// [`X509Error::Malformed`] if it does not decode.
    pub fn basic_constraints(&self) -> Result<Option<BasicConstraints>, X509Error> {
        let Some(ext) = self.extension(&BASIC_CONSTRAINTS) else {
            return Ok(None);
        };
        let bc = X509BasicConstraints::from_der(ext.value)
            .map_err(|e| X509Error::Malformed(format!("basicConstraints: {e}")))?;
        Ok(Some(BasicConstraints {
            ca: bc.ca,
            path_len: bc.path_len_constraint,
        }))
    }
}

impl PublicKey {
    /// Verifies `signature` over `message`. ECDSA signatures are ASN.1 DER
    /// (see [`ecdsa_der_from_rs`] for TPM `(r, s)` pairs).
    ///
    /// # Errors
    /// [`X509Error::BadSignature`] (with an empty subject: the caller knows
    /// what was signed), or [`X509Error::UnsupportedAlgorithm`] when the
    /// algorithm does not fit the key.
    pub fn verify(
        &self,
        alg: SignatureAlg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), X509Error> {
        let bad = || X509Error::BadSignature {
            subject: String::new(),
        };
        match self {
            Self::Rsa { n, e } => {
                let params = match alg {
                    SignatureAlg::RsaPkcs1Sha1 => {
                        &sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
                    }
                    SignatureAlg::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    SignatureAlg::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    SignatureAlg::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    SignatureAlg::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
                    other => return Err(mismatch(other, "an RSA key")),
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .map_err(|_| bad())
            }
            Self::EcP256 { sec1 } => {
                let alg: &sig::EcdsaVerificationAlgorithm = match alg {
                    SignatureAlg::EcdsaSha256 => &sig::ECDSA_P256_SHA256_ASN1,
                    SignatureAlg::EcdsaSha384 => &sig::ECDSA_P256_SHA384_ASN1,
                    SignatureAlg::EcdsaSha512 => &sig::ECDSA_P256_SHA512_ASN1,
                    other => return Err(mismatch(other, "a P-256 key")),
                };
                UnparsedPublicKey::new(alg, sec1)
                    .verify(message, signature)
                    .map_err(|_| bad())
            }
            Self::EcP384 { sec1 } => {
                let alg: &sig::EcdsaVerificationAlgorithm = match alg {
                    SignatureAlg::EcdsaSha256 => &sig::ECDSA_P384_SHA256_ASN1,
                    SignatureAlg::EcdsaSha384 => &sig::ECDSA_P384_SHA384_ASN1,
                    SignatureAlg::EcdsaSha512 => &sig::ECDSA_P384_SHA512_ASN1,
                    other => return Err(mismatch(other, "a P-384 key")),
                };
                UnparsedPublicKey::new(alg, sec1)
                    .verify(message, signature)
                    .map_err(|_| bad())
            }
        }
    }
}

/// Encodes an ECDSA `(r, s)` pair (big-endian, any leading zeros) as the
/// ASN.1 DER `ECDSA-Sig-Value` that [`PublicKey::verify`] takes.
pub fn ecdsa_der_from_rs(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
        let trimmed = match bytes.iter().position(|&b| b != 0) {
            Some(i) => bytes.get(i..).unwrap_or_default(),
            None => &[0u8][..],
        };
        let pad = trimmed.first().is_some_and(|&b| b & 0x80 != 0);
        out.push(0x02);
        push_len(out, trimmed.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
    }
    let mut body = Vec::with_capacity(r.len() + s.len() + 8);
    integer(&mut body, r);
    integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    // Lengths here are at most a few hundred bytes.
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        Ok(byte) => out.extend_from_slice(&[0x81, byte]),
        Err(_) => {
            let [hi, lo] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
            out.extend_from_slice(&[0x82, hi, lo]);
        }
    }
}

fn mismatch(alg: SignatureAlg, key: &str) -> X509Error {
    X509Error::UnsupportedAlgorithm(format!("{alg:?} with {key}"))
}

fn signature_alg(oid: &ObjectIdentifier) -> Result<SignatureAlg, X509Error> {
    Ok(match *oid {
        SHA1_WITH_RSA => SignatureAlg::RsaPkcs1Sha1,
        SHA256_WITH_RSA => SignatureAlg::RsaPkcs1Sha256,
        SHA384_WITH_RSA => SignatureAlg::RsaPkcs1Sha384,
        SHA512_WITH_RSA => SignatureAlg::RsaPkcs1Sha512,
        ECDSA_SHA256 => SignatureAlg::EcdsaSha256,
        ECDSA_SHA384 => SignatureAlg::EcdsaSha384,
        ECDSA_SHA512 => SignatureAlg::EcdsaSha512,
        other => return Err(X509Error::UnsupportedAlgorithm(other.to_string())),
    })
}

fn rsa_components(bits: &[u8]) -> Result<PublicKey, X509Error> {
    let bad = |e: der::Error| X509Error::UnsupportedKey(format!("RSA public key: {e}"));
    let mut reader = SliceReader::new(bits).map_err(bad)?;
    let (n, e) = reader
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            let e = UintRef::decode(r)?;
            Ok::<_, der::Error>((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
        })
        .map_err(bad)?;
    Ok(PublicKey::Rsa { n, e })
}

fn encoded_name(name: &x509_cert::name::Name) -> Result<Vec<u8>, X509Error> {
    name.to_der()
        .map_err(|e| X509Error::Malformed(format!("name: {e}")))
}

fn name_text(name: &x509_cert::name::Name) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "(empty subject)".to_owned()
    } else {
        text
    }
}

/// The `tbsCertificate` TLV inside a certificate's outer SEQUENCE, as
/// received.
fn tbs_bytes(der: &[u8]) -> Result<&[u8], X509Error> {
    let (header, _) = tlv_header(der)?;
    let body = der
        .get(header..)
        .ok_or_else(|| X509Error::Malformed("truncated certificate".into()))?;
    let len = first_tlv_len(body)?;
    body.get(..len)
        .ok_or_else(|| X509Error::Malformed("truncated tbsCertificate".into()))
}

/// Total length (header + contents) of the DER element at the start.
fn first_tlv_len(bytes: &[u8]) -> Result<usize, X509Error> {
    let (header, contents) = tlv_header(bytes)?;
    header
        .checked_add(contents)
        .filter(|&total| total <= bytes.len())
        .ok_or_else(|| X509Error::Malformed("the DER length runs past the data".into()))
}

/// (header length, contents length) of a SEQUENCE at the start of `bytes`.
fn tlv_header(bytes: &[u8]) -> Result<(usize, usize), X509Error> {
    let malformed = || X509Error::Malformed("not a DER SEQUENCE".into());
    match bytes {
        [0x30, short, ..] if *short < 0x80 => Ok((2, usize::from(*short))),
        [0x30, 0x81, len, ..] => Ok((3, usize::from(*len))),
        [0x30, 0x82, hi, lo, ..] => Ok((4, usize::from(u16::from_be_bytes([*hi, *lo])))),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with OpenSSL on 2026-11-25, valid ten years (tests/data/x509/README.md).
    const SELF_SIGNED: &str = include_str!("../../tests/data/x509/self-signed-p256.pem");
    const RSA_ROOT: &str = include_str!("../../tests/data/x509/rsa-root.pem");
    const RSA_LEAF: &str = include_str!("../../tests/data/x509/rsa-leaf-ec.pem");

    fn one(pem: &str) -> Certificate {
        Certificate::from_pem(pem).unwrap().remove(0)
    }

    #[test]
    fn self_signed_verifies_and_names_itself() {
        let cert = one(SELF_SIGNED);
        assert_eq!(cert.subject(), "CN=holdfast x509 test");
        cert.verify_issued_by(&cert).unwrap();
        assert!(matches!(
            cert.public_key().unwrap(),
            PublicKey::EcP256 { .. }
        ));
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.ca);
    }

    #[test]
    fn rsa_link_verifies_and_a_wrong_issuer_is_named() {
        let root = one(RSA_ROOT);
        let leaf = one(RSA_LEAF);
        leaf.verify_issued_by(&root).unwrap();
        let other = one(SELF_SIGNED);
        let err = leaf.verify_issued_by(&other).unwrap_err();
        assert!(matches!(err, X509Error::IssuerMismatch { .. }), "{err}");
    }

    #[test]
    fn a_flipped_signature_bit_is_refused() {
        let cert = one(SELF_SIGNED);
        let mut der = cert.der().to_vec();
        let last = der.len() - 1;
        der[last] ^= 1;
        let tampered = Certificate::from_der(&der).unwrap();
        assert_eq!(
            tampered.verify_issued_by(&cert).unwrap_err(),
            X509Error::BadSignature {
                subject: "CN=holdfast x509 test".into()
            }
        );
    }

    #[test]
    fn validity_is_checked_at_the_given_time() {
        let cert = one(SELF_SIGNED);
        // 2030-01-01 inside; 2024-01-01 before; 2040-01-01 after.
        cert.check_validity(UnixTime::from_secs(1_893_456_000))
            .unwrap();
        assert!(matches!(
            cert.check_validity(UnixTime::from_secs(1_704_067_200)),
            Err(X509Error::NotYetValid { .. })
        ));
        assert!(matches!(
            cert.check_validity(UnixTime::from_secs(2_208_988_800)),
            Err(X509Error::Expired { .. })
        ));
    }

    #[test]
    fn nv_padding_is_tolerated_and_anything_else_is_not() {
        let cert = one(SELF_SIGNED);
        let mut padded = cert.der().to_vec();
        padded.extend_from_slice(&[0xff; 300]);
        assert_eq!(
            Certificate::from_der_padded(&padded).unwrap().der(),
            cert.der()
        );
        assert!(Certificate::from_der(&padded).is_err());
        padded.push(0x01);
        assert!(Certificate::from_der_padded(&padded).is_err());
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x82\xff\xff",
            b"\x30\x03\x02\x01\x01",
            b"hello",
        ] {
            assert!(matches!(
                Certificate::from_der(bytes),
                Err(X509Error::Malformed(_))
            ));
            assert!(Certificate::from_der_padded(bytes).is_err());
        }
        assert!(Certificate::from_pem("no pem here").is_err());
    }

    #[test]
    fn ecdsa_rs_to_der_round_trips_through_verification() {
        // r with a high bit (needs a 0x00 pad) and s with leading zeros.
        let der = ecdsa_der_from_rs(&[0x80; 32], &[0x00, 0x00, 0x01]);
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
    }
}
