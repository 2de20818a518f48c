//! Stateless server nonces (RFC 9449 §8, §9).
//!
//! A nonce is `base64url(step ‖ tag)`, where `step` is the time step it was
//! minted in and `tag` a truncated HMAC-SHA-256 over the step under a secret.
//! Nothing is stored: any node holding the secret accepts any other node's
//! nonce, several recent steps are accepted so a client is not refused at a
//! step boundary, and older secrets stay accepted for verification while a
//! new one mints, so rotation breaks no client.

use core::fmt;

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

use crate::b64;
use crate::time::UnixTime;

/// Domain separation: a tag for nonces is useless for anything else.
const NONCE_CONTEXT: &[u8] = b"holdfast dpop-nonce v1";
const TAG_LEN: usize = 16;
const NONCE_BYTES: usize = 8 + TAG_LEN;

/// A nonce secret: at least 32 bytes from a CSPRNG.
pub struct NonceSecret(hmac::Key);

impl NonceSecret {
    /// A secret from raw bytes.
    ///
    /// # Errors
    /// [`NonceConfigError::SecretTooShort`] under 32 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, NonceConfigError> {
        if bytes.len() < 32 {
            return Err(NonceConfigError::SecretTooShort);
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    fn tag(&self, step: u64) -> [u8; TAG_LEN] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(NONCE_CONTEXT);
        ctx.update(&step.to_be_bytes());
        let full = ctx.sign();
        let mut tag = [0u8; TAG_LEN];
        for (dst, src) in tag.iter_mut().zip(full.as_ref()) {
            *dst = *src;
        }
        tag
    }
}

impl fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

/// Mints and checks stateless nonces.
#[derive(Debug)]
pub struct NonceIssuer {
    /// `secrets[0]` mints; all verify.
    secrets: Vec<NonceSecret>,
    step_secs: u64,
    accepted_steps: u64,
}

/// Why a nonce configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceConfigError {
    /// A secret under 32 bytes.
    #[error("a nonce secret must be at least 32 bytes")]
    SecretTooShort,
    /// A zero step or zero accepted steps.
    #[error("the nonce step and the number of accepted steps must be at least 1")]
    ZeroStep,
}

/// Why a presented nonce was refused; both map to `use_dpop_nonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not a nonce this issuer could have made.
    #[error("the nonce is not valid")]
    Invalid,
    /// Made by this issuer, but too long ago.
    #[error("the nonce has expired")]
    Expired,
}

impl NonceIssuer {
    /// Default step: with the default 3 accepted steps a nonce stays valid
    /// for 120–180 s, depending on when in its step it was minted.
    pub const DEFAULT_STEP_SECS: u64 = 60;
    /// Default number of accepted steps (the current one and two before it).
    pub const DEFAULT_ACCEPTED_STEPS: u64 = 3;

    /// An issuer minting with `current` and also accepting nonces made with
    /// `previous` secrets (rotation).
    ///
    /// # Errors
    /// [`NonceConfigError::ZeroStep`] for a zero step or step count.
    pub fn new(
        current: NonceSecret,
        previous: impl IntoIterator<Item = NonceSecret>,
        step_secs: u64,
        accepted_steps: u64,
    ) -> Result<Self, NonceConfigError> {
        if step_secs == 0 || accepted_steps == 0 {
            return Err(NonceConfigError::ZeroStep);
        }
        let mut secrets = vec![current];
        secrets.extend(previous);
        Ok(Self {
            secrets,
            step_secs,
            accepted_steps,
        })
    }

    /// The nonce for `now`, to send in `DPoP-Nonce`. Every call in the same
    /// step returns the same value.
    pub fn issue(&self, now: UnixTime) -> String {
        let step = now.as_secs() / self.step_secs;
        let mut bytes = [0u8; NONCE_BYTES];
        let (step_bytes, tag_bytes) = bytes.split_at_mut(8);
        step_bytes.copy_from_slice(&step.to_be_bytes());
        if let Some(secret) = self.secrets.first() {
            tag_bytes.copy_from_slice(&secret.tag(step));
        }
        b64::encode(&bytes)
    }

    /// Checks a nonce presented at `now`.
    ///
    /// # Errors
    /// [`NonceError::Invalid`] for anything not minted with one of our
    /// secrets, [`NonceError::Expired`] for a genuine nonce outside the
    /// accepted steps.
    pub fn check(&self, nonce: &str, now: UnixTime) -> Result<(), NonceError> {
        let bytes: [u8; NONCE_BYTES] = b64::decode_array(nonce).ok_or(NonceError::Invalid)?;
        let (step_bytes, tag) = bytes.split_at(8);
        let step = u64::from_be_bytes(step_bytes.try_into().map_err(|_| NonceError::Invalid)?);
        let genuine = self.secrets.iter().fold(false, |found, secret| {
            found | bool::from(secret.tag(step).ct_eq(tag))
        });
        if !genuine {
            return Err(NonceError::Invalid);
        }
        let current = now.as_secs() / self.step_secs;
        // One step ahead is tolerated: another node's clock may be a little ahead.
        let oldest = current.saturating_sub(self.accepted_steps - 1);
        if step < oldest || step > current.saturating_add(1) {
            return Err(NonceError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(secret: u8, previous: &[u8]) -> NonceIssuer {
        NonceIssuer::new(
            NonceSecret::new(&[secret; 32]).unwrap(),
            previous
                .iter()
                .map(|p| NonceSecret::new(&[*p; 32]).unwrap()),
            60,
            3,
        )
        .unwrap()
    }

    #[test]
    fn accepts_own_and_other_nodes_nonces_within_steps() {
        let a = issuer(1, &[]);
        let b = issuer(1, &[]);
        let nonce = a.issue(UnixTime::from_secs(6000));
        assert_eq!(b.check(&nonce, UnixTime::from_secs(6000)), Ok(()));
        assert_eq!(b.check(&nonce, UnixTime::from_secs(6000 + 179)), Ok(()));
        assert_eq!(b.check(&nonce, UnixTime::from_secs(6000 - 60)), Ok(()));
    }

    #[test]
    fn rejects_expired_nonce() {
        let a = issuer(1, &[]);
        let nonce = a.issue(UnixTime::from_secs(6000));
        assert_eq!(
            a.check(&nonce, UnixTime::from_secs(6000 + 180)),
            Err(NonceError::Expired)
        );
        assert_eq!(
            a.check(&nonce, UnixTime::from_secs(6000 - 120)),
            Err(NonceError::Expired)
        );
    }

    #[test]
    fn rejects_foreign_and_forged_nonce() {
        let a = issuer(1, &[]);
        let other = issuer(2, &[]);
        let now = UnixTime::from_secs(6000);
        assert_eq!(a.check(&other.issue(now), now), Err(NonceError::Invalid));
        assert_eq!(
            a.check("eyJ7S_zG.eyJH0-Z.HX4w-7v", now),
            Err(NonceError::Invalid)
        );
        assert_eq!(a.check("", now), Err(NonceError::Invalid));
    }

    #[test]
    fn rotation_keeps_old_nonces_valid() {
        let old = issuer(1, &[]);
        let rotated = issuer(2, &[1]);
        let now = UnixTime::from_secs(6000);
        assert_eq!(rotated.check(&old.issue(now), now), Ok(()));
        assert_eq!(
            old.check(&rotated.issue(now), now),
            Err(NonceError::Invalid)
        );
    }

    #[test]
    fn refuses_weak_configuration() {
        assert_eq!(
            NonceSecret::new(&[0; 16]).unwrap_err(),
            NonceConfigError::SecretTooShort
        );
        let secret = NonceSecret::new(&[0; 32]).unwrap();
        assert_eq!(
            NonceIssuer::new(secret, [], 0, 3).unwrap_err(),
            NonceConfigError::ZeroStep
        );
    }
}
