//! The PIV management key (slot 9B) and its block ciphers: 3DES (the default
//! before firmware 5.7), AES-128/192/256 (AES-192 is the default from 5.7).

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

use crate::firmware::Firmware;

/// The factory management key of every YubiKey, for 3DES and AES-192 alike.
pub(crate) const DEFAULT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// Management key algorithm identifiers (P1 of GENERAL AUTHENTICATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MgmAlg {
    TripleDes,
    Aes128,
    Aes192,
    Aes256,
}

impl MgmAlg {
    pub(crate) fn from_id(id: u8) -> Option<Self> {
        match id {
            0x03 => Some(Self::TripleDes),
            0x08 => Some(Self::Aes128),
            0x0A => Some(Self::Aes192),
            0x0C => Some(Self::Aes256),
            _ => None,
        }
    }

    pub(crate) fn id(self) -> u8 {
        match self {
            Self::TripleDes => 0x03,
            Self::Aes128 => 0x08,
            Self::Aes192 => 0x0A,
            Self::Aes256 => 0x0C,
        }
    }

    pub(crate) fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }

    /// The witness and challenge size: one cipher block.
    pub(crate) fn block_len(self) -> usize {
        match self {
            Self::TripleDes => 8,
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
        }
    }

    /// What a new YubiKey with this firmware ships with.
    pub(crate) fn default_for(firmware: Firmware) -> Self {
        if firmware >= Firmware::new(5, 7, 0) {
            Self::Aes192
        } else {
            Self::TripleDes
        }
    }
}

/// A management key: its algorithm and key bytes.
#[derive(Clone)]
pub(crate) struct MgmKey {
    alg: MgmAlg,
    key: Vec<u8>,
}

/// The key has the wrong length for its algorithm, or a block is not one
/// cipher block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("management key or block has the wrong length")]
pub(crate) struct BadLength;

impl MgmKey {
    pub(crate) fn new(alg: MgmAlg, key: &[u8]) -> Result<Self, BadLength> {
        if key.len() != alg.key_len() {
            return Err(BadLength);
        }
        Ok(Self {
            alg,
            key: key.to_vec(),
        })
    }

    /// The factory key for this firmware.
    pub(crate) fn factory(firmware: Firmware) -> Self {
        Self {
            alg: MgmAlg::default_for(firmware),
            key: DEFAULT_KEY.to_vec(),
        }
    }

    pub(crate) fn alg(&self) -> MgmAlg {
        self.alg
    }

    pub(crate) fn is_factory_default(&self) -> bool {
        self.key == DEFAULT_KEY
    }

    pub(crate) fn encrypt(&self, block: &mut [u8]) -> Result<(), BadLength> {
        self.run(block, true)
    }

    #[cfg(test)]
    pub(crate) fn decrypt(&self, block: &mut [u8]) -> Result<(), BadLength> {
        self.run(block, false)
    }

    fn run(&self, block: &mut [u8], encrypt: bool) -> Result<(), BadLength> {
        if block.len() != self.alg.block_len() {
            return Err(BadLength);
        }
        match self.alg {
            MgmAlg::TripleDes => apply::<des::TdesEde3>(&self.key, block, encrypt),
            MgmAlg::Aes128 => apply::<aes::Aes128>(&self.key, block, encrypt),
            MgmAlg::Aes192 => apply::<aes::Aes192>(&self.key, block, encrypt),
            MgmAlg::Aes256 => apply::<aes::Aes256>(&self.key, block, encrypt),
        }
    }
}

fn apply<C>(key: &[u8], block: &mut [u8], encrypt: bool) -> Result<(), BadLength>
where
    C: KeyInit + BlockCipherEncrypt + BlockCipherDecrypt,
{
    // `new_from_slice` does not refuse weak 3DES keys: the factory key is
    // one (K1 = K2 = K3), and a YubiKey accepts it.
    let cipher = C::new_from_slice(key).map_err(|_| BadLength)?;
    let block = block.try_into().map_err(|_| BadLength)?;
    if encrypt {
        cipher.encrypt_block(block);
    } else {
        cipher.decrypt_block(block);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factory_key_follows_the_firmware() {
        assert_eq!(
            MgmKey::factory(Firmware::new(5, 4, 3)).alg(),
            MgmAlg::TripleDes
        );
        assert_eq!(
            MgmKey::factory(Firmware::new(5, 7, 0)).alg(),
            MgmAlg::Aes192
        );
        assert!(MgmKey::factory(Firmware::new(5, 7, 4)).is_factory_default());
    }

    #[test]
    fn round_trips_a_block_with_each_algorithm() {
        for alg in [
            MgmAlg::TripleDes,
            MgmAlg::Aes128,
            MgmAlg::Aes192,
            MgmAlg::Aes256,
        ] {
            assert_eq!(MgmAlg::from_id(alg.id()), Some(alg));
            let key = MgmKey::new(alg, &vec![0x42; alg.key_len()]).unwrap();
            let plain = vec![7u8; alg.block_len()];
            let mut block = plain.clone();
            key.encrypt(&mut block).unwrap();
            assert_ne!(block, plain);
            key.decrypt(&mut block).unwrap();
            assert_eq!(block, plain);
            assert_eq!(key.encrypt(&mut [0u8; 5]), Err(BadLength));
        }
        assert!(MgmKey::new(MgmAlg::Aes128, &DEFAULT_KEY).is_err());
        assert_eq!(MgmAlg::from_id(0x11), None);
    }

    #[test]
    fn triple_des_with_the_factory_key_is_single_des() {
        // K1 = K2 = K3 makes EDE collapse to DES: FIPS 81 / NBS test vector
        // key 0123456789ABCDEF is not ours, so check the collapse itself.
        let tdes = MgmKey::new(MgmAlg::TripleDes, &DEFAULT_KEY).unwrap();
        let mut a = [0x11u8; 8];
        tdes.encrypt(&mut a).unwrap();
        let des = des::Des::new_from_slice(&DEFAULT_KEY[..8]).unwrap();
        let mut b = [0x11u8; 8];
        des.encrypt_block((&mut b).into());
        assert_eq!(a, b);
    }
}
