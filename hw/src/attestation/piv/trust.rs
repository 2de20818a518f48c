//! The PIV trust store: pinned Yubico anchors and intermediates, and test
//! roots only when a caller adds one explicitly.

use core::fmt;

use super::error::PivTrustError;
use super::policy::list;
use crate::attestation::x509::Certificate;

/// `CN=Yubico PIV Root CA Serial 263751`: the anchor for YubiKeys before
/// firmware 5.7.4.
pub const YUBICO_PIV_ROOT_CA: &str = "Yubico PIV Root CA Serial 263751";
/// `CN=Yubico U2F Root CA Serial 457200631`: the anchor of some YubiKey 4
/// batches' f9 certificates.
pub const YUBICO_U2F_ROOT_CA: &str = "Yubico U2F Root CA Serial 457200631";
/// `CN=Yubico Attestation Root 1`: the anchor from firmware 5.7.4.
pub const YUBICO_ATTESTATION_ROOT_1: &str = "Yubico Attestation Root 1";

const PIV_ROOT_PEM: &str = include_str!("../yubico/yubico-piv-root-ca-serial-263751.pem");
const U2F_ROOT_PEM: &str = include_str!("../yubico/yubico-u2f-root-ca-serial-457200631.pem");
const ATTESTATION_ROOT_1_PEM: &str = include_str!("../yubico/yubico-attestation-root-1.pem");
const ATTESTATION_INTERMEDIATE_A_1_PEM: &str =
    include_str!("../yubico/yubico-attestation-intermediate-a-1.pem");
const ATTESTATION_INTERMEDIATE_B_1_PEM: &str =
    include_str!("../yubico/yubico-attestation-intermediate-b-1.pem");
const PIV_ATTESTATION_A_1_PEM: &str = include_str!("../yubico/yubico-piv-attestation-a-1.pem");
const PIV_ATTESTATION_B_1_PEM: &str = include_str!("../yubico/yubico-piv-attestation-b-1.pem");

/// Who operates a trust anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnchorKind {
    /// A Yubico root, pinned in this crate.
    Yubico,
    /// A root added with [`PivTrust::with_test_root`]: a test fixture such
    /// as the virtual card's per-run CA. Never trusted unless configured.
    Test,
}

impl AnchorKind {
    /// `yubico` or `test`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Yubico => "yubico",
            Self::Test => "test",
        }
    }
}

impl fmt::Display for AnchorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an anchor sits above a device's f9 certificate: that is the only
/// chain shape accepted under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Depth {
    /// The anchor signs f9 certificates itself (PIV Root 263751, U2F Root,
    /// test roots).
    SignsF9,
    /// f9 ← PIV Attestation X 1 ← Attestation Intermediate X 1 ← anchor
    /// (Attestation Root 1), both intermediates pinned.
    TwoPinnedIntermediates,
}

/// A trust anchor: a root certificate and how chains under it look.
#[derive(Clone, Debug)]
pub(super) struct Anchor {
    pub(super) name: String,
    pub(super) kind: AnchorKind,
    pub(super) depth: Depth,
    pub(super) cert: Certificate,
}

/// The roots (and pinned intermediates) that PIV attestation chains may end
/// at.
///
/// [`PivTrust::yubico`] holds Yubico's three roots and the four 2024
/// intermediates, compiled in (see `hw/src/attestation/yubico/README.md` for
/// their sources and SHA-256). A deployment may keep only some roots
/// ([`PivTrust::only`]); tests add their per-run root explicitly
/// ([`PivTrust::with_test_root`]): nothing else is ever trusted.
#[derive(Clone, Debug)]
pub struct PivTrust {
    pub(super) anchors: Vec<Anchor>,
    /// The pinned CA pairs between f9 and an anchor with
    /// [`Depth::TwoPinnedIntermediates`]. Never sent by devices: YubiKeys
    /// do not hand them out.
    pub(super) pinned_paths: Vec<PinnedPath>,
}

/// f9 ← `piv` ← `intermediate` ← Attestation Root 1.
#[derive(Clone, Debug)]
pub(super) struct PinnedPath {
    /// "Yubico PIV Attestation A 1" or "… B 1": issues f9 certificates.
    pub(super) piv: Certificate,
    /// "Yubico Attestation Intermediate A 1" or "… B 1": issues `piv`.
    pub(super) intermediate: Certificate,
}

impl PivTrust {
    /// No anchors at all: every chain is refused until a root is added.
    pub fn empty() -> Self {
        Self {
            anchors: Vec::new(),
            pinned_paths: Vec::new(),
        }
    }

    /// Yubico's roots ([`YUBICO_PIV_ROOT_CA`], [`YUBICO_U2F_ROOT_CA`],
    /// [`YUBICO_ATTESTATION_ROOT_1`]) and the intermediates PIV Attestation
    /// A 1 / B 1 and Attestation Intermediate A 1 / B 1.
    pub fn yubico() -> Self {
        let yubico = |name: &str, depth, pem| Anchor {
            name: name.to_owned(),
            kind: AnchorKind::Yubico,
            depth,
            cert: pinned(pem),
        };
        Self {
            anchors: vec![
                yubico(YUBICO_PIV_ROOT_CA, Depth::SignsF9, PIV_ROOT_PEM),
                yubico(YUBICO_U2F_ROOT_CA, Depth::SignsF9, U2F_ROOT_PEM),
                yubico(
                    YUBICO_ATTESTATION_ROOT_1,
                    Depth::TwoPinnedIntermediates,
                    ATTESTATION_ROOT_1_PEM,
                ),
            ],
            pinned_paths: vec![
                PinnedPath {
                    piv: pinned(PIV_ATTESTATION_A_1_PEM),
                    intermediate: pinned(ATTESTATION_INTERMEDIATE_A_1_PEM),
                },
                PinnedPath {
                    piv: pinned(PIV_ATTESTATION_B_1_PEM),
                    intermediate: pinned(ATTESTATION_INTERMEDIATE_B_1_PEM),
                },
            ],
        }
    }

    /// Keeps only the anchors named (subject CN), e.g. to refuse the U2F
    /// root.
    ///
    /// # Errors
    /// [`PivTrustError::UnknownAnchor`] for a name this store does not hold,
    /// so a typo in configuration stops start-up instead of refusing every
    /// key.
    pub fn only<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self, PivTrustError> {
        for name in names {
            let name = name.as_ref();
            if !self.anchors.iter().any(|anchor| anchor.name == name) {
                return Err(PivTrustError::UnknownAnchor {
                    name: name.chars().take(100).collect(),
                    known: list(self.anchor_names()),
                });
            }
        }
        self.anchors
            .retain(|anchor| names.iter().any(|name| name.as_ref() == anchor.name));
        Ok(self)
    }

    /// Adds a test root (for example the virtual card's per-run CA). Under
    /// it, f9 certificates are accepted as issued directly by the root.
    /// Attestations under it report [`AnchorKind::Test`].
    ///
    /// # Errors
    /// [`PivTrustError::DuplicateAnchor`] when an anchor of the same name
    /// (its subject CN, or its whole subject if it has no CN) is present.
    pub fn with_test_root(mut self, root: Certificate) -> Result<Self, PivTrustError> {
        let name = common_name(&root).unwrap_or_else(|| root.subject());
        if self.anchors.iter().any(|anchor| anchor.name == name) {
            return Err(PivTrustError::DuplicateAnchor { name });
        }
        self.anchors.push(Anchor {
            name,
            kind: AnchorKind::Test,
            depth: Depth::SignsF9,
            cert: root,
        });
        Ok(self)
    }

    /// [`PivTrust::with_test_root`] from PEM text holding exactly one
    /// certificate.
    ///
    /// # Errors
    /// [`PivTrustError::TestRoot`] when the text is not one certificate;
    /// otherwise as [`PivTrust::with_test_root`].
    pub fn with_test_root_pem(self, pem: &str) -> Result<Self, PivTrustError> {
        let mut certs = Certificate::from_pem(pem).map_err(|e| PivTrustError::TestRoot {
            reason: e.to_string(),
        })?;
        let (Some(root), true) = (certs.pop(), certs.is_empty()) else {
            return Err(PivTrustError::TestRoot {
                reason: "expected exactly one CERTIFICATE block".to_owned(),
            });
        };
        self.with_test_root(root)
    }

    /// The anchors' names (subject CN), in order.
    pub fn anchor_names(&self) -> impl Iterator<Item = &str> {
        self.anchors.iter().map(|anchor| anchor.name.as_str())
    }

    /// The anchors' names and kinds, in order.
    pub fn anchors(&self) -> impl Iterator<Item = (&str, AnchorKind)> {
        self.anchors
            .iter()
            .map(|anchor| (anchor.name.as_str(), anchor.kind))
    }
}

/// The first CN of a certificate's subject, if it has one that decodes.
pub(super) fn common_name(cert: &Certificate) -> Option<String> {
    cert.inner()
        .tbs_certificate()
        .subject()
        .common_name()
        .ok()
        .flatten()
        .map(String::from)
}

/// Parses a certificate compiled into this crate.
#[allow(clippy::expect_used)]
fn pinned(pem: &'static str) -> Certificate {
    // The PEM files are constants of this crate and
    // `tests::pinned_certificates_parse` parses each one: this cannot fail
    // at run time.
    Certificate::from_pem(pem)
        .ok()
        .and_then(|mut certs| certs.pop())
        .expect("a pinned Yubico certificate parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_certificates_parse() {
        for pem in [
            PIV_ROOT_PEM,
            U2F_ROOT_PEM,
            ATTESTATION_ROOT_1_PEM,
            ATTESTATION_INTERMEDIATE_A_1_PEM,
            ATTESTATION_INTERMEDIATE_B_1_PEM,
            PIV_ATTESTATION_A_1_PEM,
            PIV_ATTESTATION_B_1_PEM,
        ] {
            let certs = Certificate::from_pem(pem).unwrap();
            assert_eq!(certs.len(), 1);
        }
    }

    #[test]
    fn pinned_anchors_are_the_documented_files() {
        let hex = |cert: &Certificate| -> String {
            cert.fingerprint()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let trust = PivTrust::yubico();
        let anchors: Vec<(String, String)> = trust
            .anchors
            .iter()
            .map(|a| (a.name.clone(), hex(&a.cert)))
            .collect();
        // SHA-256 of the DER, as in yubico/README.md.
        assert_eq!(
            anchors,
            [
                (
                    YUBICO_PIV_ROOT_CA.to_owned(),
                    "63ece914e54dd87915f34033c85af4c0696ba1512f8add66ced738331207b546".to_owned()
                ),
                (
                    YUBICO_U2F_ROOT_CA.to_owned(),
                    "0fa1386f80eb8713263ae5c1d84deb455bdf08aea50ab05503cefee82b092d42".to_owned()
                ),
                (
                    YUBICO_ATTESTATION_ROOT_1.to_owned(),
                    "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8".to_owned()
                ),
            ]
        );
        for anchor in &trust.anchors {
            assert_eq!(
                common_name(&anchor.cert).as_deref(),
                Some(anchor.name.as_str())
            );
        }
        let paths: Vec<(String, String)> = trust
            .pinned_paths
            .iter()
            .map(|p| (hex(&p.piv), hex(&p.intermediate)))
            .collect();
        assert_eq!(
            paths,
            [
                (
                    "6de693f05376f5d8ca29069261e1c8626c75d503bd2edbfd75354cad1f722870".to_owned(),
                    "4698a1d3389c3ec60016c216250f1d0439922832d65142327436376dc2942b55".to_owned()
                ),
                (
                    "2d55b7998f4e42569d6d8fa382b6dc77d1dacf07358b19701163892922b17052".to_owned(),
                    "d4cc3f456fdaf4e7812a21aab1dfe9d8e27d24e2fd2d6f21c9940109f0daa754".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn only_keeps_named_anchors_and_refuses_unknown_names() {
        let trust = PivTrust::yubico().only(&[YUBICO_PIV_ROOT_CA]).unwrap();
        assert_eq!(
            trust.anchor_names().collect::<Vec<_>>(),
            [YUBICO_PIV_ROOT_CA]
        );
        let err = PivTrust::yubico()
            .only(&["Yubico PIV Root CA"])
            .unwrap_err();
        assert!(matches!(err, PivTrustError::UnknownAnchor { .. }), "{err}");
        assert!(err.to_string().contains(YUBICO_ATTESTATION_ROOT_1), "{err}");
    }

    #[test]
    fn a_test_root_cannot_take_a_yubico_name() {
        let root = pinned(PIV_ROOT_PEM);
        let err = PivTrust::yubico().with_test_root(root.clone()).unwrap_err();
        assert_eq!(
            err,
            PivTrustError::DuplicateAnchor {
                name: YUBICO_PIV_ROOT_CA.to_owned()
            }
        );
        let trust = PivTrust::empty().with_test_root(root).unwrap();
        assert_eq!(
            trust.anchors().collect::<Vec<_>>(),
            [(YUBICO_PIV_ROOT_CA, AnchorKind::Test)]
        );
        assert!(matches!(
            PivTrust::empty().with_test_root_pem(&format!("{PIV_ROOT_PEM}{U2F_ROOT_PEM}")),
            Err(PivTrustError::TestRoot { .. })
        ));
        assert!(matches!(
            PivTrust::empty().with_test_root_pem(""),
            Err(PivTrustError::TestRoot { .. })
        ));
    }
}
