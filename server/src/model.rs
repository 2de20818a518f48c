//! The issuer's nouns: principals, devices, sessions, refresh tokens,
//! enrollment codes, revocations. Plain data; the rules live in the domain
//! modules and storage in `store/`.

use core::fmt;
use core::str::FromStr;

use holdfast_hw::KeyKind;
use holdfast_proto::{Jkt, Jwk, UnixTime};
use serde::{Deserialize, Serialize};

use crate::secret::random_id;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A new random identifier.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "{}"), random_id()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, InvalidId> {
                let ok = s.len() <= 64
                    && s.starts_with($prefix)
                    && s.len() > $prefix.len()
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if ok { Ok(Self(s.to_owned())) } else { Err(InvalidId) }
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(s: String) -> Result<Self, InvalidId> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A principal: a person or a service (`p-…`).
    PrincipalId,
    "p-"
);
id_type!(
    /// A device, which is also its OAuth `client_id` (`d-…`).
    DeviceId,
    "d-"
);
id_type!(
    /// A session, the `sid` of its tokens (`s-…`).
    SessionId,
    "s-"
);

/// An identifier that is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identifier")]
pub struct InvalidId;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Obtains tokens for its devices.
    Device,
    /// Administers the issuer.
    Admin,
}

/// A person or service that owns devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Identifier, the `sub` of its tokens.
    pub id: PrincipalId,
    /// A human-readable unique name (e.g. an email address or service name).
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Disabled principals obtain no tokens.
    pub disabled: bool,
    /// Creation time.
    pub created_at: UnixTime,
}

impl Principal {
    /// True if the principal has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The lifecycle of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Obtains and refreshes tokens.
    Active,
    /// Temporarily refused; an admin can re-enable it.
    Disabled,
    /// Permanently refused.
    Revoked,
}

/// What attestation established about a device key at enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationSummary {
    /// `software` (no attestation), `tpm` or `yubikey`.
    pub kind: String,
    /// Vendor, model, firmware, serial, policies: whatever the verifier found.
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// An enrolled device and its one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Identifier and OAuth `client_id`.
    pub id: DeviceId,
    /// Owner.
    pub principal: PrincipalId,
    /// A name for people (hostname, "Alice's YubiKey").
    pub name: String,
    /// Thumbprint of the enrolled key.
    pub jkt: Jkt,
    /// The enrolled public key.
    pub jwk: Jwk,
    /// Where the key lives.
    #[serde(with = "key_kind")]
    pub kind: KeyKind,
    /// What attestation showed.
    pub attestation: AttestationSummary,
    /// State.
    pub state: DeviceState,
    /// Enrollment time.
    pub created_at: UnixTime,
    /// Last token issued or refreshed.
    pub last_seen: Option<UnixTime>,
}

/// A login: one `client_credentials` grant and its refreshes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `sid`.
    pub id: SessionId,
    /// `sub`.
    pub principal: PrincipalId,
    /// `client_id`.
    pub device: DeviceId,
    /// The key every token of the session is bound to.
    pub jkt: Jkt,
    /// Client address when the session began.
    pub ip: Option<String>,
    /// Client `User-Agent` when the session began.
    pub user_agent: Option<String>,
    /// Start.
    pub created_at: UnixTime,
    /// Last refresh.
    pub refreshed_at: UnixTime,
    /// When the session ends regardless of refreshes.
    pub expires_at: UnixTime,
    /// Set when revoked, with the reason.
    pub revoked: Option<Revocation>,
    /// Risk signals seen (e.g. `ip_deviation`).
    #[serde(default)]
    pub flags: Vec<String>,
}

/// Why and when something was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    pub at: UnixTime,
    /// Why, e.g. `refresh_token_reuse`, `admin`, `rfc7009`.
    pub reason: String,
}

/// One refresh token, stored by the hash of its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The session it continues.
    pub session: SessionId,
    /// Bound key (the session's).
    pub jkt: Jkt,
    /// Issue time.
    pub issued_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Set once it has been exchanged: a second use is theft.
    pub used_at: Option<UnixTime>,
}

/// A one-time code an admin hands to a device owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCode {
    /// The principal the device will belong to.
    pub principal: PrincipalId,
    /// Key kinds the code accepts.
    #[serde(with = "key_kinds")]
    pub allowed_kinds: Vec<KeyKind>,
    /// Who made it (`bootstrap` for the first admin).
    pub created_by: String,
    /// Creation.
    pub created_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Set when redeemed.
    pub used_by: Option<DeviceId>,
}

/// `KeyKind` as its name (serde `with`), in records and on the wire.
pub(crate) mod key_kind {
    use holdfast_hw::KeyKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(kind: &KeyKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyKind, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod key_kinds {
    use holdfast_hw::KeyKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(kinds: &[KeyKind], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(kinds.iter().map(|k| k.as_str()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<KeyKind>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}
