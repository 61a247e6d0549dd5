//! Key material sealed for a shared store with AES-256-GCM, so that a dump of the store holds
//! no usable key. The cipher, the epoch, the rotation interval and the store's prefix are the
//! associated data: a value copied to another epoch, another schedule or another store does
//! not open (two fleets that share a prefix and a wrapping secret but rotate at different
//! intervals use different store keys, and cannot replay each other's values either).
//!
//! Wrapped value: `version(1) = 2 | nonce(12) | ciphertext | tag(16)`. Version 1, whose
//! associated data lacked the interval, is not opened: such a value could be a copy from
//! another schedule.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::key::{fill_random, Cipher, KeyError, TicketKey};

pub const MIN_WRAP_SECRET_LEN: usize = 32;
const VERSION: u8 = 2;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const SALT: &[u8] = b"tls-ticket-keys/v1";
const WRAP_LABEL: &[u8] = b"tls-ticket-keys/v1 wrapping key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapError {
    /// Not a value this version wrote, or one sealed under another secret, epoch, interval,
    /// cipher or prefix, or altered. Deliberately one case: which of these it was is nobody's business.
    Unopenable,
    Key(KeyError),
}

impl std::fmt::Display for WrapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WrapError::Unopenable => {
                write!(f, "the stored key does not open under this wrapping secret, epoch and prefix")
            }
            WrapError::Key(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WrapError {}

/// Seals and opens epoch keys under a wrapping key derived from the wrapping secret.
pub struct Wrapper {
    cipher: Aes256Gcm,
}

impl Wrapper {
    pub fn new(wrap_secret: &[u8]) -> Result<Wrapper, KeyError> {
        if wrap_secret.len() < MIN_WRAP_SECRET_LEN {
            return Err(KeyError::ShortSecret { min: MIN_WRAP_SECRET_LEN, got: wrap_secret.len() });
        }
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(SALT), wrap_secret)
            .expand(WRAP_LABEL, &mut key[..])
            .expect("32 bytes is a valid HKDF output length");
        Ok(Wrapper { cipher: Aes256Gcm::new_from_slice(&key[..]).expect("a 32-byte key") })
    }

    /// Fixed-length fields before the prefix, which runs to the end: no two inputs share bytes.
    fn associated_data(prefix: &str, epoch: u64, cipher: Cipher, rotation_interval: u64) -> Vec<u8> {
        let mut aad = b"tls-ticket-keys/v2 wrapped key|".to_vec();
        aad.extend_from_slice(cipher.name().as_bytes());
        aad.push(b'|');
        aad.extend_from_slice(&epoch.to_be_bytes());
        aad.extend_from_slice(&rotation_interval.to_be_bytes());
        aad.push(b'|');
        aad.extend_from_slice(prefix.as_bytes());
        aad
    }

    /// `key`, the key of `epoch` of a ring that rotates every `rotation_interval` seconds.
    pub fn seal(&self, key: &TicketKey, prefix: &str, epoch: u64, rotation_interval: u64) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let material = key.to_layout();
        let aad = Wrapper::associated_data(prefix, epoch, key.cipher(), rotation_interval);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &material, aad: &aad })
            .expect("AES-GCM sealing of a short message cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(
        &self,
        wrapped: &[u8],
        prefix: &str,
        epoch: u64,
        cipher: Cipher,
        rotation_interval: u64,
    ) -> Result<TicketKey, WrapError> {
        if wrapped.len() != 1 + NONCE_LEN + cipher.layout_len() + TAG_LEN || wrapped[0] != VERSION {
            return Err(WrapError::Unopenable);
        }
        let (nonce, sealed) = wrapped[1..].split_at(NONCE_LEN);
        let aad = Wrapper::associated_data(prefix, epoch, cipher, rotation_interval);
        let material = Zeroizing::new(
            self.cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
                .map_err(|_| WrapError::Unopenable)?,
        );
        TicketKey::from_layout(cipher, &material).map_err(WrapError::Key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapper(fill: u8) -> Wrapper {
        Wrapper::new(&[fill; 32]).unwrap()
    }

    #[test]
    fn round_trip() {
        for cipher in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            let key = TicketKey::generate(cipher).unwrap();
            let sealed = wrapper(1).seal(&key, "p:", 9, 60).unwrap();
            let opened = wrapper(1).open(&sealed, "p:", 9, cipher, 60).unwrap();
            assert_eq!(opened.to_layout(), key.to_layout());
        }
    }

    #[test]
    fn the_wrapped_value_holds_no_key_bytes() {
        let key = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        let sealed = wrapper(1).seal(&key, "p:", 9, 60).unwrap();
        for secret in [key.aes_key(), key.hmac_key(), &key.name()[..]] {
            assert!(!sealed.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
        }
    }

    #[test]
    fn another_secret_epoch_prefix_cipher_or_interval_does_not_open() {
        let key = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        let sealed = wrapper(1).seal(&key, "p:", 9, 60).unwrap();
        assert_eq!(wrapper(2).open(&sealed, "p:", 9, Cipher::Aes256Cbc, 60).err(), Some(WrapError::Unopenable));
        assert_eq!(wrapper(1).open(&sealed, "p:", 10, Cipher::Aes256Cbc, 60).err(), Some(WrapError::Unopenable));
        assert_eq!(wrapper(1).open(&sealed, "q:", 9, Cipher::Aes256Cbc, 60).err(), Some(WrapError::Unopenable));
        assert_eq!(wrapper(1).open(&sealed, "p:", 9, Cipher::Aes128Cbc, 60).err(), Some(WrapError::Unopenable));
        assert_eq!(wrapper(1).open(&sealed, "p:", 9, Cipher::Aes256Cbc, 120).err(), Some(WrapError::Unopenable));
    }

    #[test]
    fn a_value_of_the_version_without_the_interval_does_not_open() {
        let key = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        let mut sealed = wrapper(1).seal(&key, "p:", 9, 60).unwrap();
        sealed[0] = 1;
        assert_eq!(wrapper(1).open(&sealed, "p:", 9, Cipher::Aes256Cbc, 60).err(), Some(WrapError::Unopenable));
    }

    #[test]
    fn tampered_or_truncated_values_do_not_open() {
        let key = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let sealed = wrapper(1).seal(&key, "p:", 9, 60).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(wrapper(1).open(&bad, "p:", 9, Cipher::Aes128Cbc, 60).is_err(), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(wrapper(1).open(&sealed[..len], "p:", 9, Cipher::Aes128Cbc, 60).is_err());
        }
    }

    #[test]
    fn short_wrapping_secrets_are_refused() {
        assert!(Wrapper::new(&[1; 31]).is_err());
    }
}
