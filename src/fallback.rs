//! The key a store-fed fleet member makes for an epoch that the store (Redis) did not agree
//! in time: derived with HKDF-SHA256 from what every member already shares (the wrapping
//! secret, the store's prefix, the rotation interval, the cipher and the epoch), so that every
//! member that falls back for that epoch, including one that starts during the outage, makes
//! the same key and the fleet keeps resuming each other's tickets without the store.
//!
//! The price: whoever holds the wrapping secret can compute the keys of the epochs sealed
//! while the store was away (no forward secrecy for those epochs, as for a secret ring). Keys
//! agreed in the store are random and are never replaced by one from here: a fed ring asks for
//! a fallback only for an epoch it holds no key for.
//!
//! The labels are this module's own: a wrapping secret that is also used as a ring `secret`
//! gives unrelated keys, and no fallback key is ever a wrapping key.

use std::sync::{PoisonError, RwLock};

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::key::{Cipher, KeyError, TicketKey, NAME_LEN};
use crate::source::KeySource;
use crate::wrap::MIN_WRAP_SECRET_LEN;

const SALT: &[u8] = b"tls-ticket-keys/v1";
const NAME_LABEL: &[u8] = b"tls-ticket-keys/v1 store fallback key name";
const SECRETS_LABEL: &[u8] = b"tls-ticket-keys/v1 store fallback key secrets";

/// HKDF's pseudorandom key of a wrapping secret, from which each ring's fallback source is
/// made; the secret itself is not kept.
pub struct FallbackRoot {
    prk: Zeroizing<[u8; 32]>,
}

impl FallbackRoot {
    pub fn new(wrap_secret: &[u8]) -> Result<FallbackRoot, KeyError> {
        if wrap_secret.len() < MIN_WRAP_SECRET_LEN {
            return Err(KeyError::ShortSecret { min: MIN_WRAP_SECRET_LEN, got: wrap_secret.len() });
        }
        let (mut prk, _) = Hkdf::<Sha256>::extract(Some(SALT), wrap_secret);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&prk);
        prk.as_mut_slice().zeroize();
        Ok(FallbackRoot { prk: out })
    }

    /// The fallback keys of one ring: a store `prefix` and a `rotation_interval` (seconds).
    pub fn keys(&self, prefix: &str, rotation_interval: u64) -> FallbackKeys {
        FallbackKeys { prk: RwLock::new(Some(self.prk.clone())), context: context(prefix, rotation_interval) }
    }
}

/// The store's prefix and the rotation interval as HKDF info, each length-prefixed or of
/// fixed length, so that no two (prefix, interval) pairs give the same bytes.
fn context(prefix: &str, rotation_interval: u64) -> Vec<u8> {
    let prefix = prefix.as_bytes();
    let len = u64::try_from(prefix.len()).unwrap_or(u64::MAX);
    [&rotation_interval.to_be_bytes()[..], &len.to_be_bytes(), prefix].concat()
}

/// A ring's fallback source: the key of an epoch, the same in every member of the fleet.
pub struct FallbackKeys {
    /// `None` once wiped (the ring's `destroy()`).
    prk: RwLock<Option<Zeroizing<[u8; 32]>>>,
    context: Vec<u8>,
}

impl FallbackKeys {
    fn expand(&self, label: &[u8], cipher: Cipher, epoch: u64, out: &mut [u8]) -> Result<(), KeyError> {
        let prk = self.prk.read().unwrap_or_else(PoisonError::into_inner);
        let prk = prk.as_ref().ok_or(KeyError::Wiped)?;
        let hkdf = Hkdf::<Sha256>::from_prk(&prk[..]).expect("a 32-byte PRK is valid");
        let cipher_name = cipher.name().as_bytes();
        let cipher_len = [u8::try_from(cipher_name.len()).expect("a short cipher name")];
        let info = [label, &cipher_len, cipher_name, &epoch.to_be_bytes(), &self.context].concat();
        hkdf.expand(&info, out).expect("at most 255 blocks are requested");
        Ok(())
    }
}

impl KeySource for FallbackKeys {
    fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        let mut material = Zeroizing::new(vec![0u8; cipher.layout_len()]);
        self.expand(NAME_LABEL, cipher, epoch, &mut material[..NAME_LEN])?;
        self.expand(SECRETS_LABEL, cipher, epoch, &mut material[NAME_LEN..])?;
        TicketKey::from_layout(cipher, &material)
    }

    fn reproducible(&self) -> bool {
        true
    }

    fn wipe(&self) {
        let mut prk = self.prk.write().unwrap_or_else(PoisonError::into_inner);
        // In place: taking it out would leave its bytes where it lay.
        if let Some(bytes) = prk.as_mut() {
            bytes.zeroize();
        }
        *prk = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::DerivedKeys;

    const SECRET: &[u8; 32] = b"an example wrapping secret, 32 B";

    fn key(secret: &[u8], prefix: &str, interval: u64, epoch: u64, cipher: Cipher) -> TicketKey {
        FallbackRoot::new(secret).unwrap().keys(prefix, interval).key_for_epoch(epoch, cipher).unwrap()
    }

    #[test]
    fn every_member_derives_the_same_key() {
        for cipher in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            let a = key(SECRET, "p:", 2, 900, cipher);
            let b = key(SECRET, "p:", 2, 900, cipher);
            assert_eq!(a.to_layout(), b.to_layout());
        }
    }

    #[test]
    fn secret_prefix_interval_cipher_and_epoch_each_change_the_key() {
        let base = key(SECRET, "p:", 2, 900, Cipher::Aes256Cbc);
        let mut other_secret = *SECRET;
        other_secret[31] ^= 1;
        let others = [
            key(&other_secret, "p:", 2, 900, Cipher::Aes256Cbc),
            key(SECRET, "q:", 2, 900, Cipher::Aes256Cbc),
            key(SECRET, "p:", 3, 900, Cipher::Aes256Cbc),
            key(SECRET, "p:", 2, 901, Cipher::Aes256Cbc),
            // A prefix that swallows part of the interval's bytes is another prefix.
            key(SECRET, "", 2, 900, Cipher::Aes256Cbc),
        ];
        for other in &others {
            assert_ne!(base.name(), other.name());
            assert_ne!(base.aes_key(), other.aes_key());
            assert_ne!(base.hmac_key(), other.hmac_key());
        }
        assert_ne!(base.name(), key(SECRET, "p:", 2, 900, Cipher::Aes128Cbc).name());
    }

    #[test]
    fn unrelated_to_a_secret_ring_of_the_same_secret() {
        let fallback = key(SECRET, "", 1, 7, Cipher::Aes256Cbc);
        let derived = DerivedKeys::new(SECRET).unwrap().key_for_epoch(7, Cipher::Aes256Cbc).unwrap();
        assert_ne!(fallback.name(), derived.name());
        assert_ne!(fallback.aes_key(), derived.aes_key());
        assert_ne!(fallback.hmac_key(), derived.hmac_key());
    }

    #[test]
    fn names_are_not_the_secrets() {
        let k = key(SECRET, "p:", 2, 900, Cipher::Aes256Cbc);
        assert_ne!(&k.name()[..], &k.hmac_key()[..NAME_LEN]);
        assert_ne!(&k.name()[..], &k.aes_key()[..NAME_LEN]);
    }

    #[test]
    fn a_wiped_source_derives_nothing_and_short_secrets_are_refused() {
        let keys = FallbackRoot::new(SECRET).unwrap().keys("p:", 2);
        keys.wipe();
        assert_eq!(keys.key_for_epoch(1, Cipher::Aes256Cbc).err(), Some(KeyError::Wiped));
        assert!(matches!(FallbackRoot::new(&[1; 31]), Err(KeyError::ShortSecret { min: 32, got: 31 })));
    }
}
