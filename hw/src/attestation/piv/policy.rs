//! What an issuer requires of a YubiKey, per enrollment code.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};

use super::extensions::{Firmware, PinPolicy, TouchPolicy};

/// Requirements on an attested YubiKey key, checked by
/// [`super::PivAttestation::check_policy`].
///
/// Read from TOML, for example for admins (every signature is a touch):
///
/// ```toml
/// anchors = ["Yubico PIV Root CA Serial 263751", "Yubico Attestation Root 1"]
/// min_firmware = "5.2.0"
/// pin_policies = ["once", "always"]
/// touch_policies = ["always", "cached"]
/// require_fips = false
/// ```
///
/// and for device agents, which sign every request: `touch_policies =
/// ["never", "cached"]`. Every key is optional; [`PivPolicy::default`] is
/// permissive (any anchor of the trust store, any firmware, any policy, FIPS
/// not required), since the trust store alone decides what is genuine. An
/// empty list is refused when read, as it would refuse every key.
///
/// Deserializing reads the keys over [`PivPolicy::default`]; an issuer
/// whose built-in policy is stricter (admins: touch `always` or `cached`)
/// reads its table with [`PivPolicy::deserialize_over`], so that a table
/// setting only `min_firmware` does not quietly allow every touch policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PivPolicy {
    /// Names (subject CN) of the trust anchors a chain may end at; `None`:
    /// any anchor of the [`super::PivTrust`] in use.
    pub anchors: Option<BTreeSet<String>>,
    /// The oldest firmware accepted; `None`: any.
    pub min_firmware: Option<Firmware>,
    /// PIN policies accepted (`never`, `once`, `always`, `match_once`,
    /// `match_always`); default: all.
    pub pin_policies: BTreeSet<PinPolicy>,
    /// Touch policies accepted (`never`, `always`, `cached`); default: all.
    pub touch_policies: BTreeSet<TouchPolicy>,
    /// Require the FIPS marker (1.3.6.1.4.1.41482.3.10) on the f9
    /// certificate; default: false.
    pub require_fips: bool,
}

impl PivPolicy {
    /// Reads a policy table over `self`: each key given replaces this
    /// policy's value, each key left out keeps it.
    ///
    /// # Errors
    /// The deserializer's error for an unknown key, a value of the wrong
    /// type, or an empty list.
    pub fn deserialize_over<'de, D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self, D::Error> {
        let table = PolicyTable::deserialize(deserializer)?;
        Ok(Self {
            anchors: table.anchors.or(self.anchors),
            min_firmware: table.min_firmware.or(self.min_firmware),
            pin_policies: table.pin_policies.unwrap_or(self.pin_policies),
            touch_policies: table.touch_policies.unwrap_or(self.touch_policies),
            require_fips: table.require_fips.unwrap_or(self.require_fips),
        })
    }
}

impl<'de> Deserialize<'de> for PivPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::default().deserialize_over(deserializer)
    }
}

/// A policy table as written: `None` for each key left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyTable {
    #[serde(default, deserialize_with = "non_empty_option")]
    anchors: Option<BTreeSet<String>>,
    #[serde(default)]
    min_firmware: Option<Firmware>,
    #[serde(default, deserialize_with = "non_empty_option")]
    pin_policies: Option<BTreeSet<PinPolicy>>,
    #[serde(default, deserialize_with = "non_empty_option")]
    touch_policies: Option<BTreeSet<TouchPolicy>>,
    #[serde(default)]
    require_fips: Option<bool>,
}

impl Default for PivPolicy {
    fn default() -> Self {
        Self {
            anchors: None,
            min_firmware: None,
            pin_policies: PinPolicy::ALL.into_iter().collect(),
            touch_policies: TouchPolicy::ALL.into_iter().collect(),
            require_fips: false,
        }
    }
}

fn non_empty<'de, D, T>(deserializer: D) -> Result<BTreeSet<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord,
{
    let set = BTreeSet::<T>::deserialize(deserializer)?;
    if set.is_empty() {
        return Err(serde::de::Error::custom(
            "an empty list would refuse every key; leave the key out for the default",
        ));
    }
    Ok(set)
}

fn non_empty_option<'de, D, T>(deserializer: D) -> Result<Option<BTreeSet<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Ord,
{
    non_empty(deserializer).map(Some)
}

/// `a, b, c` for messages.
pub(super) fn list<T: core::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|item| item.to_string()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_everything() {
        let policy = PivPolicy::default();
        assert_eq!(policy.anchors, None);
        assert_eq!(policy.min_firmware, None);
        assert_eq!(policy.pin_policies.len(), PinPolicy::ALL.len());
        assert_eq!(policy.touch_policies.len(), TouchPolicy::ALL.len());
        assert!(!policy.require_fips);
        let empty: PivPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, policy);
    }

    #[test]
    fn reads_the_documented_form() {
        let policy: PivPolicy = serde_json::from_str(
            r#"{"anchors": ["Yubico Attestation Root 1"], "min_firmware": "5.2.0",
                "pin_policies": ["once", "always"], "touch_policies": ["always", "cached"],
                "require_fips": true}"#,
        )
        .unwrap();
        assert_eq!(
            policy.anchors,
            Some(BTreeSet::from(["Yubico Attestation Root 1".to_owned()]))
        );
        assert_eq!(policy.min_firmware, Some(Firmware::new(5, 2, 0)));
        assert_eq!(
            policy.pin_policies,
            BTreeSet::from([PinPolicy::Once, PinPolicy::Always])
        );
        assert_eq!(
            policy.touch_policies,
            BTreeSet::from([TouchPolicy::Always, TouchPolicy::Cached])
        );
        assert!(policy.require_fips);
    }

    #[test]
    fn refuses_unknown_keys_values_and_empty_lists() {
        for bad in [
            r#"{"touch_policies": []}"#,
            r#"{"pin_policies": []}"#,
            r#"{"anchors": []}"#,
            r#"{"touch_policies": ["sometimes"]}"#,
            r#"{"pin_policies": ["default"]}"#,
            r#"{"min_firmware": "5"}"#,
            r#"{"require_fips": "yes"}"#,
            r#"{"require_touch": true}"#,
        ] {
            assert!(serde_json::from_str::<PivPolicy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_table_read_over_a_policy_keeps_what_it_leaves_out() {
        let admin = PivPolicy {
            touch_policies: BTreeSet::from([TouchPolicy::Always, TouchPolicy::Cached]),
            ..PivPolicy::default()
        };
        let mut json = serde_json::Deserializer::from_str(r#"{"min_firmware": "5.4.0"}"#);
        let read = admin.clone().deserialize_over(&mut json).unwrap();
        assert_eq!(read.min_firmware, Some(Firmware::new(5, 4, 0)));
        assert_eq!(read.touch_policies, admin.touch_policies);
        assert_eq!(read.pin_policies, admin.pin_policies);

        let mut json = serde_json::Deserializer::from_str(r#"{"touch_policies": ["always"]}"#);
        let read = admin.clone().deserialize_over(&mut json).unwrap();
        assert_eq!(read.touch_policies, BTreeSet::from([TouchPolicy::Always]));

        let mut json = serde_json::Deserializer::from_str(r#"{"touch_policies": []}"#);
        assert!(admin.deserialize_over(&mut json).is_err());
    }

    #[test]
    fn lists_for_messages() {
        assert_eq!(
            list([TouchPolicy::Always, TouchPolicy::Cached]),
            "always, cached"
        );
        assert_eq!(list(Vec::<String>::new()), "none");
    }
}
