//! The control file: faults a test injects into the running card. One
//! directive per line; `#` starts a comment. The card reads the file again
//! before every command, so a test changes the card's behaviour by rewriting
//! it, without restarting anything.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use crate::firmware::Firmware;

/// The directives, documented in `--help` and README.md.
pub(crate) const DIRECTIVES: &str = "\
pin-blocked        the PIN is blocked (VERIFY answers 6983, metadata 0 retries)
puk-blocked        the PUK is blocked
no-f9              the attestation certificate object 5FFF01 is absent (GET DATA 6A82)
imported <slot>    the key in <slot> (hex, e.g. 9a) reports as imported: metadata
                   origin 2, and ATTEST answers 6A80 as a YubiKey does for such keys
touch-timeout      nobody touches the card: private-key operations in slots with
                   touch policy always or cached answer 6982 (as a YubiKey does
                   after its 15 s touch timeout; this card answers at once)
firmware X.Y.Z     report this firmware version (GET VERSION, attestation .3)";

/// The faults in force.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) pin_blocked: bool,
    pub(crate) puk_blocked: bool,
    pub(crate) no_f9: bool,
    pub(crate) imported: BTreeSet<u8>,
    pub(crate) touch_timeout: bool,
    pub(crate) firmware: Option<Firmware>,
}

/// A line the card did not understand (reported on stderr, then ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLine {
    pub(crate) number: usize,
    pub(crate) line: String,
    pub(crate) reason: &'static str,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {:?}: {}", self.number, self.line, self.reason)
    }
}

impl Control {
    /// Reads the file; a missing file means no faults.
    pub(crate) fn load(path: &Path) -> (Self, Vec<BadLine>) {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(_) => (Self::default(), Vec::new()),
        }
    }

    pub(crate) fn parse(text: &str) -> (Self, Vec<BadLine>) {
        let mut control = Self::default();
        let mut bad = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            if let Err(reason) = control.apply(line) {
                bad.push(BadLine {
                    number: index + 1,
                    line: line.chars().take(80).collect(),
                    reason,
                });
            }
        }
        (control, bad)
    }

    fn apply(&mut self, line: &str) -> Result<(), &'static str> {
        let mut words = line.split_whitespace();
        let directive = words.next().unwrap_or_default();
        let argument = words.next();
        if words.next().is_some() {
            return Err("too many words");
        }
        match (directive, argument) {
            ("pin-blocked", None) => self.pin_blocked = true,
            ("puk-blocked", None) => self.puk_blocked = true,
            ("no-f9", None) => self.no_f9 = true,
            ("touch-timeout", None) => self.touch_timeout = true,
            ("imported", Some(slot)) => {
                let slot = u8::from_str_radix(slot.trim_start_matches("0x"), 16)
                    .map_err(|_| "slot is not a hex byte")?;
                self.imported.insert(slot);
            }
            ("firmware", Some(version)) => {
                self.firmware = Some(version.parse().map_err(|_| "firmware is not X.Y.Z")?);
            }
            ("pin-blocked" | "puk-blocked" | "no-f9" | "touch-timeout", Some(_)) => {
                return Err("takes no argument");
            }
            ("imported" | "firmware", None) => return Err("needs an argument"),
            _ => return Err("unknown directive"),
        }
        Ok(())
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        for (on, word) in [
            (self.pin_blocked, "pin-blocked"),
            (self.puk_blocked, "puk-blocked"),
            (self.no_f9, "no-f9"),
            (self.touch_timeout, "touch-timeout"),
        ] {
            if on {
                words.push(word.to_owned());
            }
        }
        words.extend(
            self.imported
                .iter()
                .map(|slot| format!("imported {slot:02x}")),
        );
        if let Some(firmware) = self.firmware {
            words.push(format!("firmware {firmware}"));
        }
        if words.is_empty() {
            f.write_str("(no faults)")
        } else {
            f.write_str(&words.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_directive() {
        let text = "# faults\npin-blocked\npuk-blocked\n  no-f9  \nimported 9a\nimported 0x82 # why\n\
                    touch-timeout\nfirmware 5.4.3\n";
        let (control, bad) = Control::parse(text);
        assert!(bad.is_empty(), "{bad:?}");
        assert!(
            control.pin_blocked && control.puk_blocked && control.no_f9 && control.touch_timeout
        );
        assert_eq!(
            control.imported.iter().copied().collect::<Vec<_>>(),
            [0x82, 0x9A]
        );
        assert_eq!(control.firmware, Some(Firmware::new(5, 4, 3)));
        assert_eq!(
            control.to_string(),
            "pin-blocked, puk-blocked, no-f9, touch-timeout, imported 82, imported 9a, firmware 5.4.3"
        );
    }

    #[test]
    fn an_empty_or_missing_file_means_no_faults() {
        assert_eq!(Control::parse("\n# nothing\n").0, Control::default());
        let (control, bad) = Control::load(Path::new("/nonexistent/holdfast/control"));
        assert_eq!((control, bad.len()), (Control::default(), 0));
    }

    #[test]
    fn reports_lines_it_does_not_understand() {
        let (control, bad) =
            Control::parse("pin-blocked\nfly away\nimported zz\nfirmware\nno-f9 now\nfirmware 5.x");
        assert!(control.pin_blocked);
        let reasons: Vec<_> = bad.iter().map(|b| (b.number, b.reason)).collect();
        assert_eq!(
            reasons,
            [
                (2, "unknown directive"),
                (3, "slot is not a hex byte"),
                (4, "needs an argument"),
                (5, "takes no argument"),
                (6, "firmware is not X.Y.Z"),
            ]
        );
    }
}
