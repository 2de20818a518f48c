//! The agent's state: which issuer, which device identity, which key. One
//! JSON file, `agent.json`, in the agent directory (mode 0700, the file
//! 0600, replaced atomically). It holds no secret: the private key stays in
//! its own file (`key_file`), in the TPM (`key_file` is then its wrapped
//! blob, usable only by that TPM) or on the YubiKey.
//!
//! The directory is, in order: `--agent-dir`, `$HOLDFAST_AGENT_DIR`,
//! `$XDG_CONFIG_HOME/holdfast`, `$HOME/.config/holdfast`. Finding it is a
//! pure function of the flag and the environment ([`agent_dir`]); the file
//! IO is in [`AgentState::load`] and [`AgentState::save`].

use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use holdfast_hw::KeyKind;
use holdfast_hw::private_file::{self, PrivateFileError};
use holdfast_proto::Jkt;
use serde::{Deserialize, Serialize};

/// The state file's name inside the agent directory.
pub(crate) const STATE_FILE: &str = "agent.json";
/// The default software key file's name inside the agent directory.
pub(crate) const DEFAULT_KEY_FILE: &str = "device.pem";
/// The default TPM key blob's name inside the agent directory.
#[cfg(feature = "tpm")]
pub(crate) const DEFAULT_TPM_KEY_FILE: &str = "device.tpmkey";

/// An enrolled device identity, as saved by `holdfast enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AgentState {
    /// The issuer URL (its RFC 8414 `issuer`).
    pub(crate) server: String,
    /// The device id, which is its OAuth `client_id`.
    pub(crate) client_id: String,
    /// The owning principal's name.
    pub(crate) principal: String,
    /// The owning principal's id (`p-…`), for admin filters.
    pub(crate) principal_id: String,
    /// Where the key lives.
    #[serde(with = "kind_name")]
    pub(crate) kind: KeyKind,
    /// The key file: the PKCS#8 file of a software key, the wrapped blob of
    /// a TPM key; empty for a YubiKey.
    #[serde(default)]
    pub(crate) key_file: PathBuf,
    /// The enrolled key's RFC 7638 thumbprint.
    pub(crate) jkt: Jkt,
    /// For a TPM key: where the TPM is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tpm: Option<TpmLocation>,
    /// For a YubiKey key: which YubiKey, which slot, which key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) yubikey: Option<YubikeyLocation>,
}

/// Where a TPM key's TPM is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TpmLocation {
    /// The tpm2-tss TCTI.
    pub(crate) tcti: String,
}

/// Where a YubiKey key is, and where its PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct YubikeyLocation {
    /// Serial number.
    pub(crate) serial: u32,
    /// PIV slot, e.g. `9a`.
    pub(crate) slot: String,
    /// A file with the PIN; without it, `$HOLDFAST_PIV_PIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pin_file: Option<PathBuf>,
}

/// Why the agent state could not be found, read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentStateError {
    /// No flag, no `HOLDFAST_AGENT_DIR`, `XDG_CONFIG_HOME` or `HOME`.
    #[error(
        "cannot find a configuration directory: set HOME, XDG_CONFIG_HOME or HOLDFAST_AGENT_DIR, or pass --agent-dir"
    )]
    NoDirectory,
    /// There is no state file: this agent has not enrolled.
    #[error("not enrolled ({} does not exist): run `holdfast enroll` first", .0.display())]
    NotEnrolled(PathBuf),
    /// The file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The temporary state file could not be written (mode 0600, never
    /// over an existing file).
    #[error(transparent)]
    File(#[from] PrivateFileError),
    /// The file is not a state file this version understands.
    #[error("{} is damaged: {source} (enroll again with `holdfast enroll --force`)", path.display())]
    Malformed {
        /// The state file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl AgentState {
    /// Reads the state in `dir`.
    ///
    /// # Errors
    /// [`AgentStateError::NotEnrolled`] if there is no state file; IO and
    /// parse errors with the path.
    pub(crate) fn load(dir: &Path) -> Result<Self, AgentStateError> {
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(AgentStateError::NotEnrolled(path));
            }
            Err(source) => return Err(AgentStateError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| AgentStateError::Malformed { path, source })
    }

    /// Writes the state to `dir` (created with mode 0700 if missing) through
    /// a temporary file and a rename, so a crash leaves the old state or the
    /// new one, never half of one.
    ///
    /// # Errors
    /// IO errors with the path.
    pub(crate) fn save(&self, dir: &Path) -> Result<PathBuf, AgentStateError> {
        create_dir(dir)?;
        let path = dir.join(STATE_FILE);
        let temporary = dir.join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| AgentStateError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        json.push(b'\n');
        let written = private_file::write_new(&temporary, &json)
            .map_err(AgentStateError::from)
            .and_then(|()| {
                fs::rename(&temporary, &path).map_err(|source| AgentStateError::Io {
                    path: path.clone(),
                    source,
                })
            });
        if written.is_err() {
            // Also clears a temporary left by a crashed run with this pid.
            let _ = fs::remove_file(&temporary);
        }
        written.map(|()| path)
    }
}

/// The agent directory: `flag`, else `HOLDFAST_AGENT_DIR`, else
/// `$XDG_CONFIG_HOME/holdfast`, else `$HOME/.config/holdfast`. Empty
/// variables count as unset; a relative `XDG_CONFIG_HOME` is ignored, as the
/// XDG Base Directory specification says.
///
/// # Errors
/// [`AgentStateError::NoDirectory`] when none of them is set.
pub(crate) fn agent_dir(
    flag: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, AgentStateError> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("HOLDFAST_AGENT_DIR") {
        return Ok(dir);
    }
    if let Some(config) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok(config.join("holdfast"));
    }
    var("HOME")
        .map(|home| home.join(".config").join("holdfast"))
        .ok_or(AgentStateError::NoDirectory)
}

/// Creates the agent directory (and missing parents) with mode 0700: it
/// holds the device key.
///
/// # Errors
/// IO errors with the path.
pub(crate) fn create_dir(dir: &Path) -> Result<(), AgentStateError> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| AgentStateError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// `KeyKind` as its name (`software`, `tpm`, `yubikey`).
mod kind_name {
    use holdfast_hw::KeyKind;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(kind: &KeyKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<KeyKind, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn agent_dir_prefers_flag_then_env_then_xdg_then_home() {
        let all = [
            ("HOLDFAST_AGENT_DIR", "/agent"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/a"),
        ];
        let flag = Path::new("/flag");
        assert_eq!(agent_dir(Some(flag), env(&all)).unwrap(), flag);
        assert_eq!(agent_dir(None, env(&all)).unwrap(), Path::new("/agent"));
        assert_eq!(
            agent_dir(None, env(&all[1..])).unwrap(),
            Path::new("/xdg/holdfast")
        );
        assert_eq!(
            agent_dir(None, env(&all[2..])).unwrap(),
            Path::new("/home/a/.config/holdfast")
        );
    }

    #[test]
    fn agent_dir_ignores_empty_and_relative_variables() {
        let vars = [
            ("HOLDFAST_AGENT_DIR", ""),
            ("XDG_CONFIG_HOME", "relative/config"),
            ("HOME", "/home/a"),
        ];
        assert_eq!(
            agent_dir(None, env(&vars)).unwrap(),
            Path::new("/home/a/.config/holdfast")
        );
        assert!(matches!(
            agent_dir(None, env(&[])),
            Err(AgentStateError::NoDirectory)
        ));
    }

    fn state(key_file: PathBuf) -> AgentState {
        AgentState {
            server: "http://127.0.0.1:8080".into(),
            client_id: "d-3qYw0Jc1vZk2TfG8bQ9r5A".into(),
            principal: "alice".into(),
            principal_id: "p-Xb2m9Qe0Rk1Lc3Tz8Wq4Nv".into(),
            kind: KeyKind::Software,
            key_file,
            tpm: None,
            yubikey: None,
            jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
                .parse()
                .unwrap(),
        }
    }

    #[cfg(unix)]
    #[test]
    fn saves_privately_and_loads_back() {
        use std::os::unix::fs::PermissionsExt as _;

        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("new").join("holdfast");
        let saved = state(dir.join(DEFAULT_KEY_FILE));
        let path = saved.save(&dir).unwrap();
        assert_eq!(path, dir.join(STATE_FILE));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(AgentState::load(&dir).unwrap(), saved);

        // Saving again replaces the file and leaves no temporary behind.
        saved.save(&dir).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["kind"], "software");
        assert_eq!(json["jkt"], "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    }

    #[test]
    fn load_refuses_missing_and_damaged_state() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            AgentState::load(dir.path()),
            Err(AgentStateError::NotEnrolled(_))
        ));
        fs::write(dir.path().join(STATE_FILE), r#"{"server": 1}"#).unwrap();
        assert!(matches!(
            AgentState::load(dir.path()),
            Err(AgentStateError::Malformed { .. })
        ));
        let mut json = serde_json::to_value(state(PathBuf::from("k.pem"))).unwrap();
        json["kind"] = "floppy".into();
        fs::write(dir.path().join(STATE_FILE), json.to_string()).unwrap();
        assert!(matches!(
            AgentState::load(dir.path()),
            Err(AgentStateError::Malformed { .. })
        ));
    }
}
