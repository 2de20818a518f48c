//! Chain verification for the known YubiKey shapes only (see the module
//! docs of [`super`] for the shapes and the RFC 5280 exceptions).

use holdfast_proto::UnixTime;

use super::attestation::PivAttestation;
use super::error::{CertRole, PivAttestError};
use super::extensions;
use super::trust::{Anchor, AnchorKind, Depth, PivTrust, common_name};
use crate::attestation::evidence::PivEvidence;
use crate::attestation::x509::{Certificate, X509Error};

/// Subjects (CN) of Yubico-issued f9 certificates: "Yubico PIV Attestation"
/// before firmware 5.7.4, "YubiKey PIV Attestation" from 5.7.4.
const YUBICO_F9_NAMES: [&str; 2] = ["Yubico PIV Attestation", "YubiKey PIV Attestation"];

/// The prefix of a slot certificate's subject CN; the slot follows in hex.
const SLOT_CN_PREFIX: &str = "YubiKey PIV Attestation ";

/// basicConstraints and keyUsage: the only critical extensions this
/// verifier understands on device certificates.
const KNOWN_CRITICAL: [const_oid::ObjectIdentifier; 2] = [
    const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
    const_oid::db::rfc5280::ID_CE_KEY_USAGE,
];

/// Verifies the chain of `ev` against `trust` at time `at` and reads the
/// Yubico extensions. Policy and the enrolled key are not checked here:
/// see [`PivAttestation::check_policy`] and [`PivAttestation::check_key`],
/// or [`super::verify_evidence`] for all of it.
///
/// # Errors
/// The first check that fails: a certificate that does not parse
/// ([`PivAttestError::AttestationMalformed`]), a chain of an unknown shape
/// ([`PivAttestError::ChainShapeInvalid`]), an issuer outside `trust`
/// ([`PivAttestError::ChainUntrusted`]), a link whose names or signature do
/// not match ([`PivAttestError::ChainIssuerMismatch`],
/// [`PivAttestError::ChainSignatureInvalid`]), a certificate outside its
/// validity ([`PivAttestError::CertificateExpired`],
/// [`PivAttestError::CertificateNotYetValid`]), or a missing or unknown
/// Yubico extension ([`PivAttestError::AttestationMalformed`]).
pub fn verify_chain(
    ev: &PivEvidence,
    trust: &PivTrust,
    at: UnixTime,
) -> Result<PivAttestation, PivAttestError> {
    let slot = parse(CertRole::Slot, &ev.slot_certificate)?;
    let f9 = parse(CertRole::F9, &ev.intermediate_certificate)?;

    // Shape: a device sends exactly its slot and f9 certificates. A CA of
    // the trust store in either place would make a chain one level shorter
    // than the known shapes (e.g. a real f9 certificate posing as a slot
    // certificate under its root).
    not_a_trusted_ca(trust, &slot, CertRole::Slot)?;
    not_a_trusted_ca(trust, &f9, CertRole::F9)?;
    if issued_by(&f9, &f9) {
        return Err(PivAttestError::shape(format!(
            "the f9 certificate ({}) is self-issued: a root cannot be a device's f9 certificate",
            f9.subject()
        )));
    }
    let slot_ca = basic_constraints(&slot, CertRole::Slot)?.is_some_and(|bc| bc.ca);
    if slot_ca {
        return Err(PivAttestError::shape(format!(
            "the slot certificate ({}) is a CA certificate: it must attest a key, not issue certificates",
            slot.subject()
        )));
    }
    // RFC 5280 exception 1: f9 certificates without basicConstraints are
    // accepted as the slot certificate's issuer; one that says it is not a
    // CA is not.
    if basic_constraints(&f9, CertRole::F9)?.is_some_and(|bc| !bc.ca) {
        return Err(PivAttestError::shape(format!(
            "the f9 certificate ({}) says it is not a CA (basicConstraints cA FALSE)",
            f9.subject()
        )));
    }
    extension_list(&slot, CertRole::Slot)?;
    extension_list(&f9, CertRole::F9)?;

    let (anchor, path) = path_above_f9(trust, &f9)?;
    if anchor.kind == AnchorKind::Yubico {
        let f9_name = common_name(&f9);
        if !f9_name
            .as_deref()
            .is_some_and(|name| YUBICO_F9_NAMES.contains(&name))
        {
            // Yubico's roots also issue other certificates (U2F attestation
            // certificates under the U2F root): only an f9 certificate may
            // issue slot certificates.
            return Err(PivAttestError::shape(format!(
                "the certificate under {} is {}, not a YubiKey f9 certificate (CN={})",
                anchor.name,
                f9.subject(),
                YUBICO_F9_NAMES.join(" or CN=")
            )));
        }
    }

    // Each link: issuer name, signature, validity at `at`.
    link(&slot, CertRole::Slot, &f9, CertRole::F9)?;
    valid_at(&slot, CertRole::Slot, at)?;
    valid_at(&f9, CertRole::F9, at)?;
    let mut child = (&f9, CertRole::F9);
    for intermediate in path.iter().copied() {
        link(child.0, child.1, intermediate, CertRole::Intermediate)?;
        valid_at(intermediate, CertRole::Intermediate, at)?;
        child = (intermediate, CertRole::Intermediate);
    }
    link(child.0, child.1, &anchor.cert, CertRole::Root)?;
    valid_at(&anchor.cert, CertRole::Root, at)?;

    // What the device states.
    let slot_ext = extensions::read_slot(&slot)?;
    let f9_ext = extensions::read_f9(&f9)?;
    match f9_ext.firmware {
        // Firmware cannot be upgraded: the f9 certificate (written at
        // manufacture) and the slot certificate must agree.
        Some(f9_firmware) if f9_firmware != slot_ext.firmware => {
            return Err(PivAttestError::malformed(
                CertRole::Slot,
                format!(
                    "its firmware {} differs from the f9 certificate's {f9_firmware}",
                    slot_ext.firmware
                ),
            ));
        }
        None if anchor.kind == AnchorKind::Yubico => {
            return Err(PivAttestError::malformed(
                CertRole::F9,
                "it has no firmware extension (1.3.6.1.4.1.41482.3.3), which every Yubico f9 \
                 certificate carries",
            ));
        }
        _ => {}
    }
    let public_key = slot
        .public_key()
        .map_err(|e| PivAttestError::malformed(CertRole::Slot, format!("its public key: {e}")))?;

    Ok(PivAttestation {
        anchor: anchor.name.clone(),
        anchor_kind: anchor.kind,
        intermediates: path
            .iter()
            .map(|cert| common_name(cert).unwrap_or_else(|| cert.subject()))
            .collect(),
        serial: slot_ext.serial,
        firmware: slot_ext.firmware,
        pin_policy: slot_ext.pin_policy,
        touch_policy: slot_ext.touch_policy,
        form_factor: slot_ext.form_factor,
        fips: f9_ext.fips,
        cspn: f9_ext.cspn,
        slot: slot_number(&slot),
        public_key,
    })
}

/// Finds the one known shape above `f9`: the anchor and the pinned
/// intermediates between them (f9 side first). Only issuer names are
/// compared here; [`link`] then checks each signature.
fn path_above_f9<'t>(
    trust: &'t PivTrust,
    f9: &Certificate,
) -> Result<(&'t Anchor, Vec<&'t Certificate>), PivAttestError> {
    // (a), (b), (d): slot ← f9 ← root (PIV Root 263751, U2F Root, a test
    // root).
    if let Some(anchor) = trust
        .anchors
        .iter()
        .find(|anchor| anchor.depth == Depth::SignsF9 && issued_by(f9, &anchor.cert))
    {
        return Ok((anchor, Vec::new()));
    }
    // (c): slot ← f9 ← PIV Attestation X 1 ← Attestation Intermediate X 1
    // ← Attestation Root 1, the two intermediates from the trust store.
    if let Some(path) = trust
        .pinned_paths
        .iter()
        .find(|path| issued_by(f9, &path.piv))
    {
        let anchor = trust.anchors.iter().find(|anchor| {
            anchor.depth == Depth::TwoPinnedIntermediates
                && issued_by(&path.intermediate, &anchor.cert)
        });
        return match anchor {
            Some(anchor) => Ok((anchor, vec![&path.piv, &path.intermediate])),
            None => Err(untrusted(trust, path.intermediate.issuer())),
        };
    }
    Err(untrusted(trust, f9.issuer()))
}

fn untrusted(trust: &PivTrust, issuer: String) -> PivAttestError {
    PivAttestError::ChainUntrusted {
        issuer,
        trusted: super::policy::list(trust.anchor_names()),
    }
}

/// The certificate's DER, parsed; any failure is the certificate's fault.
fn parse(role: CertRole, der: &[u8]) -> Result<Certificate, PivAttestError> {
    if der.is_empty() {
        return Err(PivAttestError::malformed(role, "it is empty"));
    }
    Certificate::from_der(der).map_err(|e| PivAttestError::malformed(role, e.to_string()))
}

/// `child` names `issuer`'s subject as its issuer.
fn issued_by(child: &Certificate, issuer: &Certificate) -> bool {
    child.inner().tbs_certificate().issuer() == issuer.inner().tbs_certificate().subject()
}

fn not_a_trusted_ca(
    trust: &PivTrust,
    cert: &Certificate,
    role: CertRole,
) -> Result<(), PivAttestError> {
    let fingerprint = cert.fingerprint();
    let is_ca = trust
        .anchors
        .iter()
        .map(|anchor| &anchor.cert)
        .chain(
            trust
                .pinned_paths
                .iter()
                .flat_map(|path| [&path.piv, &path.intermediate]),
        )
        .any(|ca| ca.fingerprint() == fingerprint);
    if is_ca {
        return Err(PivAttestError::shape(format!(
            "the {role} certificate is {}, a CA of the trust store: a device sends only its slot \
             and f9 certificates",
            cert.subject()
        )));
    }
    Ok(())
}

fn basic_constraints(
    cert: &Certificate,
    role: CertRole,
) -> Result<Option<crate::attestation::x509::BasicConstraints>, PivAttestError> {
    cert.basic_constraints()
        .map_err(|e| PivAttestError::malformed(role, format!("its basicConstraints: {e}")))
}

/// RFC 5280 §4.2: no extension twice, and no critical extension this
/// verifier does not understand.
fn extension_list(cert: &Certificate, role: CertRole) -> Result<(), PivAttestError> {
    let Some(extensions) = cert.inner().tbs_certificate().extensions() else {
        return Ok(());
    };
    for (i, ext) in extensions.iter().enumerate() {
        if extensions
            .iter()
            .skip(i.saturating_add(1))
            .any(|other| other.extn_id == ext.extn_id)
        {
            return Err(PivAttestError::malformed(
                role,
                format!("extension {} appears more than once", ext.extn_id),
            ));
        }
        if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
            return Err(PivAttestError::malformed(
                role,
                format!("unknown critical extension {}", ext.extn_id),
            ));
        }
    }
    Ok(())
}

/// One link: `issuer` issued `child` (name and signature).
fn link(
    child: &Certificate,
    child_role: CertRole,
    issuer: &Certificate,
    issuer_role: CertRole,
) -> Result<(), PivAttestError> {
    let mismatch = || PivAttestError::ChainIssuerMismatch {
        child: child_role,
        issuer: issuer_role,
        expected: child.issuer(),
        found: issuer.subject(),
    };
    if !issued_by(child, issuer) {
        return Err(mismatch());
    }
    child.verify_issued_by(issuer).map_err(|e| match e {
        X509Error::BadSignature { .. } => PivAttestError::ChainSignatureInvalid {
            child: child_role,
            issuer: issuer_role,
            issuer_subject: issuer.subject(),
        },
        X509Error::IssuerMismatch { .. } => mismatch(),
        other => PivAttestError::malformed(
            child_role,
            format!("its signature cannot be checked: {other}"),
        ),
    })
}

/// The certificate is valid at `at`.
fn valid_at(cert: &Certificate, role: CertRole, at: UnixTime) -> Result<(), PivAttestError> {
    let validity = cert.inner().tbs_certificate().validity();
    match cert.check_validity(at) {
        Ok(()) => Ok(()),
        Err(X509Error::Expired { .. }) => Err(PivAttestError::CertificateExpired {
            role,
            subject: cert.subject(),
            not_after: validity.not_after.to_date_time().to_string(),
            at: rfc3339(at),
        }),
        Err(X509Error::NotYetValid { .. }) => Err(PivAttestError::CertificateNotYetValid {
            role,
            subject: cert.subject(),
            not_before: validity.not_before.to_date_time().to_string(),
            at: rfc3339(at),
        }),
        Err(other) => Err(PivAttestError::malformed(
            role,
            format!("its validity: {other}"),
        )),
    }
}

fn rfc3339(at: UnixTime) -> String {
    der::DateTime::from_unix_duration(core::time::Duration::from_secs(at.as_secs())).map_or_else(
        |_| format!("{} s after the epoch", at.as_secs()),
        |t| t.to_string(),
    )
}

/// The slot from a subject CN "YubiKey PIV Attestation 9a".
fn slot_number(slot: &Certificate) -> Option<u8> {
    let name = common_name(slot)?;
    let hex = name.strip_prefix(SLOT_CN_PREFIX)?;
    if hex.len() != 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}
