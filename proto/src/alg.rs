//! JWS `alg` values (RFC 7518 §3.1, RFC 8037 §3.1) and the allow-list a
//! verifier accepts.

use core::fmt;

/// A JWS algorithm name as it appears in a header.
///
/// Symmetric (`HS*`) and `none` are modelled so that they can be *named* in an
/// error; [`AllowedAlgs`] can never contain them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256: the algorithm of every Holdfast device key.
    Es256,
    /// ECDSA with P-384 and SHA-384.
    Es384,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// An HMAC algorithm (`HS256`, `HS384`, `HS512`): symmetric, never acceptable
    /// for proof of possession (RFC 9449 §4.3 step 5).
    Hmac(&'static str),
    /// `none`: no signature at all.
    None,
}

impl Alg {
    /// Parses a header's `alg`; `None` for names this crate does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" => Self::EdDsa,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            "HS256" => Self::Hmac("HS256"),
            "HS384" => Self::Hmac("HS384"),
            "HS512" => Self::Hmac("HS512"),
            "none" => Self::None,
            _ => return None,
        })
    }

    /// The registered name (RFC 7518 §7.1.2).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Hmac(name) => name,
            Self::None => "none",
        }
    }

    /// True for algorithms with a public verification key.
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Hmac(_) | Self::None)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The asymmetric algorithms a verifier accepts (RFC 9449 §4.3 step 5).
///
/// The default is ES256 alone: every Holdfast device key is P-256, and a
/// shorter list is a smaller attack surface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedAlgs(Vec<Alg>);

impl AllowedAlgs {
    /// An allow-list of the given algorithms.
    ///
    /// # Errors
    /// [`AlgListError::Symmetric`] if the list names `none` or an HMAC
    /// algorithm, [`AlgListError::Empty`] if it is empty.
    pub fn new(algs: impl IntoIterator<Item = Alg>) -> Result<Self, AlgListError> {
        let mut list = Vec::new();
        for alg in algs {
            if !alg.is_asymmetric() {
                return Err(AlgListError::Symmetric(alg.name()));
            }
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        if list.is_empty() {
            return Err(AlgListError::Empty);
        }
        Ok(Self(list))
    }

    /// Parses names such as `["ES256", "EdDSA"]`.
    ///
    /// # Errors
    /// As [`AllowedAlgs::new`], plus [`AlgListError::Unknown`] for a name this
    /// crate cannot verify.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, AlgListError> {
        let mut algs = Vec::new();
        for name in names {
            algs.push(Alg::from_name(name).ok_or_else(|| AlgListError::Unknown(name.to_owned()))?);
        }
        Self::new(algs)
    }

    /// True if `alg` is on the list.
    pub fn contains(&self, alg: Alg) -> bool {
        self.0.contains(&alg)
    }

    /// The algorithms, in the order given: the value of `algs` in
    /// `WWW-Authenticate` and of `dpop_signing_alg_values_supported`.
    pub fn iter(&self) -> impl Iterator<Item = Alg> + '_ {
        self.0.iter().copied()
    }
}

impl Default for AllowedAlgs {
    fn default() -> Self {
        Self(vec![Alg::Es256])
    }
}

/// Why an algorithm allow-list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgListError {
    /// The list names a symmetric algorithm or `none`.
    #[error("`{0}` is not an asymmetric algorithm and can never be allowed for DPoP")]
    Symmetric(&'static str),
    /// The list names an algorithm this crate does not know.
    #[error("unknown or unsupported algorithm `{0}`")]
    Unknown(String),
    /// The list is empty.
    #[error("the list of allowed algorithms is empty")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_es256_only() {
        let algs = AllowedAlgs::default();
        assert!(algs.contains(Alg::Es256));
        assert!(!algs.contains(Alg::EdDsa));
    }

    #[test]
    fn refuses_none_and_hmac_in_allow_list() {
        assert_eq!(
            AllowedAlgs::from_names(["ES256", "none"]),
            Err(AlgListError::Symmetric("none"))
        );
        assert_eq!(
            AllowedAlgs::from_names(["HS256"]),
            Err(AlgListError::Symmetric("HS256"))
        );
        assert_eq!(
            AllowedAlgs::from_names(["ES999"]),
            Err(AlgListError::Unknown("ES999".into()))
        );
        assert_eq!(AllowedAlgs::new([]), Err(AlgListError::Empty));
    }
}
