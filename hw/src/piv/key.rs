//! `PivKey`: a P-256 key in a YubiKey's PIV slot, as a [`Signer`].

use core::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use holdfast_proto::{Alg, Jwk, Signer, SignerError, VerifyingKey};
use sha2::{Digest as _, Sha256};
use yubikey::YubiKey;
use yubikey::piv::{self, AlgorithmId};
use zeroize::Zeroizing;

use super::card::{self, KeyOrigin, SlotKey};
use super::cert::{self, CertificateObject};
use super::config::{PinSource, PivConfig, PivKeyRecord, PivSlot};
use super::error::{AttestationGap, PivError, device_error, is_reset};
use crate::attestation::evidence::{Bytes, PivEvidence};
use crate::attestation::piv::{Firmware, PinPolicy, TouchPolicy};
use crate::kind::KeyKind;
use crate::signature::p256_jws_from_der;

/// A P-256 key in a YubiKey's PIV slot. The private key never leaves the
/// YubiKey; signing sends the SHA-256 digest to the card.
///
/// The PC/SC session stays open while the `PivKey` lives (behind a mutex:
/// the card does one thing at a time) and is reset when it is dropped, so
/// the card forgets the verified PIN.
///
/// # After a restart
///
/// A device stores the [`PivKeyRecord`] of [`PivKey::record`] (serial,
/// slot, public JWK: no secret) and calls [`PivKey::open_record`], which
/// refuses a card whose slot now holds another key. Each signature is also
/// checked against the public key, so a key replaced while the agent runs
/// is reported as [`PivError::KeyChanged`] rather than as a bad proof.
///
/// # PIN
///
/// With PIN policy `once` the PIN is verified before the first signature
/// and again if the card was reset meanwhile (another program can do that);
/// with `always`, before every signature. A refused PIN is never sent
/// again: this key reports [`PivError::WrongPin`] without asking the card
/// until its PIN source yields another PIN, so a stale PIN file cannot block
/// the PIN by itself. The
/// `yubikey` crate keeps its own copy of a verified PIN (to re-verify after
/// a reconnect) for as long as the session lives.
pub struct PivKey {
    serial: u32,
    slot: PivSlot,
    firmware: Firmware,
    jwk: Jwk,
    verifier: VerifyingKey,
    pin_policy: Option<PinPolicy>,
    touch_policy: Option<TouchPolicy>,
    origin: Option<KeyOrigin>,
    session: Mutex<Session>,
}

/// The card session and what it has been told.
struct Session {
    yubikey: YubiKey,
    pin: PinSource,
    /// The card has accepted the PIN since the last reset.
    pin_verified: bool,
    /// The PIN the card refused, and the tries it said were left: that PIN
    /// is not sent again (a changed PIN file or variable is).
    pin_refused: Option<(Zeroizing<Vec<u8>>, u8)>,
}

impl PivKey {
    /// Generates a P-256 key in `config.slot` with the configured PIN and
    /// touch policies, after authenticating with the management key.
    ///
    /// Refuses an occupied slot unless `config.overwrite` is set, and
    /// firmware older than 4.3 (which cannot attest the key).
    ///
    /// # Errors
    /// [`PivError`]: a PIN policy the card cannot be given
    /// ([`PivError::PinPolicyUnsupported`]), the card could not be opened,
    /// the slot is occupied, the management key is not known, or the card
    /// refused.
    pub fn generate(config: PivConfig) -> Result<Self, PivError> {
        // A policy the card cannot be given is refused before the card is
        // touched.
        let pin_policy = card::pin_policy_to_yubikey(config.pin_policy)?;
        let touch_policy = card::touch_policy_to_yubikey(config.touch_policy);
        let mut yubikey = card::open(config.serial)?;
        let serial = yubikey.serial().0;
        let firmware = card::firmware(&yubikey);
        if firmware < card::ATTESTATION_FIRMWARE {
            return Err(PivError::UnsupportedFirmware {
                version: firmware,
                needed: "PIV attestation (firmware 4.3 or later)",
            });
        }
        if !config.overwrite && card::slot_in_use(&mut yubikey, config.slot)? {
            return Err(PivError::SlotOccupied {
                serial,
                slot: config.slot,
            });
        }
        card::authenticate(&mut yubikey, config.management_key.as_ref(), &config.pin)?;
        let spki = piv::generate(
            &mut yubikey,
            card::slot_id(config.slot)?,
            AlgorithmId::EccP256,
            pin_policy,
            touch_policy,
        )
        .map_err(|e| device_error("key generation", e))?;
        // Drop the management key authentication (and any verified PIN): a
        // reset is the only way the PIV applet offers.
        yubikey
            .reconnect()
            .map_err(|e| device_error("reconnecting after key generation", e))?;
        let jwk = cert::p256_jwk_from_spki(&spki).ok_or_else(|| PivError::NotP256 {
            slot: config.slot,
            key: cert::describe_spki(&spki),
        })?;
        let key = SlotKey {
            jwk,
            pin_policy: Some(config.pin_policy),
            touch_policy: Some(config.touch_policy),
            origin: Some(KeyOrigin::Generated),
        };
        Self::new(yubikey, config.slot, key, config.pin)
    }

    /// Opens the key already in `config.slot` (the policy and management
    /// key fields of `config` are not used).
    ///
    /// # Errors
    /// [`PivError`]: the card could not be opened, the slot is empty or
    /// holds a key that is not P-256.
    pub fn open(config: PivConfig) -> Result<Self, PivError> {
        let mut yubikey = card::open(config.serial)?;
        let key = card::slot_key(&mut yubikey, config.slot)?;
        Self::new(yubikey, config.slot, key, config.pin)
    }

    /// Opens the key a device recorded at enrollment, on the YubiKey with
    /// the recorded serial, and checks that the slot still holds it.
    ///
    /// # Errors
    /// [`PivError::KeyChanged`] if the slot now holds another key; as
    /// [`PivKey::open`] otherwise.
    pub fn open_record(record: &PivKeyRecord, pin: PinSource) -> Result<Self, PivError> {
        let mut config = PivConfig::new(pin);
        config.serial = Some(record.serial);
        config.slot = record.slot;
        let key = Self::open(config)?;
        if key.jwk != record.jwk {
            return Err(PivError::KeyChanged {
                serial: record.serial,
                slot: record.slot,
            });
        }
        Ok(key)
    }

    fn new(
        yubikey: YubiKey,
        slot: PivSlot,
        key: SlotKey,
        pin: PinSource,
    ) -> Result<Self, PivError> {
        let verifier = VerifyingKey::new(&key.jwk, Alg::Es256).map_err(|_| PivError::NotP256 {
            slot,
            key: "invalid P-256".to_owned(),
        })?;
        Ok(Self {
            serial: yubikey.serial().0,
            firmware: card::firmware(&yubikey),
            slot,
            jwk: key.jwk,
            verifier,
            pin_policy: key.pin_policy,
            touch_policy: key.touch_policy,
            origin: key.origin,
            session: Mutex::new(Session {
                yubikey,
                pin,
                pin_verified: false,
                pin_refused: None,
            }),
        })
    }

    /// What to store to open this key again after a restart.
    pub fn record(&self) -> PivKeyRecord {
        PivKeyRecord {
            serial: self.serial,
            slot: self.slot,
            jwk: self.jwk.clone(),
        }
    }

    /// The YubiKey's serial number.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The slot.
    pub fn slot(&self) -> PivSlot {
        self.slot
    }

    /// The YubiKey's firmware version.
    pub fn firmware(&self) -> Firmware {
        self.firmware
    }

    /// The key's PIN policy, when the card told it (metadata, 5.3+) or its
    /// attestation certificate did.
    pub fn pin_policy(&self) -> Option<PinPolicy> {
        self.pin_policy
    }

    /// The key's touch policy, when known (as [`PivKey::pin_policy`]).
    pub fn touch_policy(&self) -> Option<TouchPolicy> {
        self.touch_policy
    }

    /// Always [`KeyKind::Yubikey`].
    pub fn kind(&self) -> KeyKind {
        KeyKind::Yubikey
    }

    /// Signs `message`: SHA-256 on the host, ECDSA on the card, the result
    /// in JWS form (`r ‖ s`, low-S). Verifies the PIN first when the PIN
    /// policy asks for it; waits for a touch when the touch policy does.
    ///
    /// # Errors
    /// [`PivError`]: wrong or blocked PIN, touch timeout, the card went
    /// away, or the slot no longer holds this key.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], PivError> {
        let digest: [u8; 32] = Sha256::digest(message).into();
        let der = {
            let mut session = self.lock();
            self.sign_digest(&mut session, &digest)?
        };
        let signature = p256_jws_from_der(&der).map_err(PivError::BadSignature)?;
        // A valid signature by another key means the slot was regenerated
        // behind this session's back.
        self.verifier
            .verify(message, &signature)
            .map_err(|_| PivError::KeyChanged {
                serial: self.serial,
                slot: self.slot,
            })?;
        Ok(signature)
    }

    /// The slot's attestation (`ATTEST`) and the YubiKey's f9 certificate,
    /// for enrollment. Needs neither PIN nor touch.
    ///
    /// # Errors
    /// [`PivError::AttestationUnavailable`] for an imported key, a missing
    /// f9 certificate or firmware older than 4.3;
    /// [`PivError::KeyChanged`] if the attested key is not this key.
    pub fn attestation(&self) -> Result<PivEvidence, PivError> {
        let unavailable = |reason| PivError::AttestationUnavailable {
            slot: self.slot,
            reason,
        };
        if self.firmware < card::ATTESTATION_FIRMWARE {
            return Err(unavailable(AttestationGap::Firmware(self.firmware)));
        }
        if self.origin == Some(KeyOrigin::Imported) {
            return Err(unavailable(AttestationGap::ImportedKey));
        }
        let slot_id = card::slot_id(self.slot)?;
        let mut session = self.lock();
        let slot_certificate = match with_reconnect(&mut session, |yk| piv::attest(yk, slot_id)) {
            Ok(der) => der.to_vec(),
            Err(e @ yubikey::Error::PcscError { .. }) => return Err(device_error("ATTEST", e)),
            Err(_) => return Err(unavailable(AttestationGap::Refused)),
        };
        // Not verification (the issuer does that): a check that the card
        // attested the key this PivKey signs with.
        let attested = cert::read_certificate(&slot_certificate)
            .ok_or_else(|| device_error("ATTEST", yubikey::Error::InvalidObject))?;
        if attested.jwk.as_ref() != Some(&self.jwk) {
            return Err(PivError::KeyChanged {
                serial: self.serial,
                slot: self.slot,
            });
        }
        let object = match with_reconnect(&mut session, |yk| {
            yk.fetch_object(card::F9_CERTIFICATE_OBJECT)
        }) {
            Ok(object) => object,
            Err(yubikey::Error::NotFound) => {
                return Err(unavailable(AttestationGap::NoF9Certificate));
            }
            Err(e) => return Err(device_error("reading the f9 certificate", e)),
        };
        let intermediate_certificate = match cert::certificate_object(&object) {
            Ok(CertificateObject::Der(der)) => der.to_vec(),
            Ok(CertificateObject::Empty) => {
                return Err(unavailable(AttestationGap::NoF9Certificate));
            }
            Ok(CertificateObject::Compressed) | Err(_) => {
                return Err(unavailable(AttestationGap::UnreadableF9Certificate));
            }
        };
        Ok(PivEvidence {
            slot_certificate: Bytes(slot_certificate),
            intermediate_certificate: Bytes(intermediate_certificate),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic inside the yubikey crate while signing poisons the lock;
        // the card itself is transactional, so the session is still usable.
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sign_digest(
        &self,
        session: &mut Session,
        digest: &[u8; 32],
    ) -> Result<yubikey::Buffer, PivError> {
        let fresh_pin = self.verify_pin_if_needed(session)?;
        let slot_id = card::slot_id(self.slot)?;
        let sign = |session: &mut Session| {
            with_reconnect(session, |yk| {
                piv::sign_data(yk, digest, AlgorithmId::EccP256, slot_id)
            })
        };
        match sign(session) {
            Ok(der) => Ok(der),
            // 6982, "security status not satisfied": the PIN is not
            // verified, or the touch timed out. A PIN verified in this call
            // rules out the first; otherwise ask the card.
            Err(yubikey::Error::AuthenticationError) => {
                if !fresh_pin
                    && self.pin_policy != Some(PinPolicy::Never)
                    && !pin_still_verified(session)
                {
                    // The card was reset since the PIN was verified.
                    session.pin_verified = false;
                    if self.verify_pin_if_needed(session)? {
                        return sign(session).map_err(|e| self.refusal(e));
                    }
                    return Err(PivError::PinRequired { slot: self.slot });
                }
                Err(self.refusal(yubikey::Error::AuthenticationError))
            }
            Err(e) => Err(device_error("signing", e)),
        }
    }

    /// A signing refusal once the PIN is known to be verified (or not
    /// needed): a touch that did not come, unless the key needs no touch.
    fn refusal(&self, err: yubikey::Error) -> PivError {
        match err {
            yubikey::Error::AuthenticationError
                if self.touch_policy != Some(TouchPolicy::Never) =>
            {
                PivError::TouchTimeout { slot: self.slot }
            }
            e => device_error("signing", e),
        }
    }

    /// Sends the PIN if the policy needs it now; true if it was sent.
    fn verify_pin_if_needed(&self, session: &mut Session) -> Result<bool, PivError> {
        let needed = match self.pin_policy {
            Some(PinPolicy::Never) => false,
            // A YubiKey Bio's fingerprint policies (as an attestation
            // certificate states them): this key can only send the PIN, and
            // the card decides whether it stands in for the fingerprint.
            Some(PinPolicy::Always | PinPolicy::MatchAlways) => true,
            // Unknown (old firmware, imported key): treat as `once`; a
            // refusal makes `sign_digest` verify and retry.
            Some(PinPolicy::Once | PinPolicy::MatchOnce) | None => !session.pin_verified,
        };
        if !needed {
            return Ok(false);
        }
        let Some(pin) = session.pin.read()? else {
            // With an unknown policy the key may need no PIN: try without.
            if self.pin_policy.is_none() {
                return Ok(false);
            }
            return Err(PivError::PinRequired { slot: self.slot });
        };
        match &session.pin_refused {
            Some((refused, 0)) if *refused == pin => return Err(PivError::PinBlocked),
            Some((refused, retries)) if *refused == pin => {
                return Err(PivError::WrongPin { retries: *retries });
            }
            _ => {}
        }
        match with_reconnect(session, |yk| yk.verify_pin(&pin)) {
            Ok(()) => {
                session.pin_verified = true;
                session.pin_refused = None;
                Ok(true)
            }
            Err(e) => {
                if let yubikey::Error::WrongPin { tries } = e {
                    session.pin_refused = Some((pin, tries));
                } else if e == yubikey::Error::PinLocked {
                    session.pin_refused = Some((pin, 0));
                }
                Err(device_error("PIN verification", e))
            }
        }
    }
}

/// Asks the card whether the PIN is still verified (VERIFY without data:
/// 9000 if so, 63Cx if not); no retry is spent.
fn pin_still_verified(session: &mut Session) -> bool {
    with_reconnect(session, |yk| yk.verify_pin(&[])).is_ok()
}

/// Runs `op`; if another program reset the card meanwhile, reconnects (the
/// crate re-selects PIV and re-verifies the PIN it verified) and runs it
/// once more.
fn with_reconnect<T>(
    session: &mut Session,
    mut op: impl FnMut(&mut YubiKey) -> Result<T, yubikey::Error>,
) -> Result<T, yubikey::Error> {
    match op(&mut session.yubikey) {
        Err(e) if is_reset(&e) => {
            session.yubikey.reconnect()?;
            op(&mut session.yubikey)
        }
        other => other,
    }
}

impl Signer for PivKey {
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.sign(message).map(|sig| sig.to_vec()).map_err(|e| {
            SignerError::with_source(
                format!("YubiKey {} slot {}: {e}", self.serial, self.slot),
                e,
            )
        })
    }
}

impl fmt::Debug for PivKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PivKey(YubiKey {} slot {}, {})",
            self.serial,
            self.slot,
            self.jwk.thumbprint()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piv_key_is_a_shareable_signer() {
        fn assert_signer<T: Signer + Send + Sync + 'static>() {}
        assert_signer::<PivKey>();
    }
}
