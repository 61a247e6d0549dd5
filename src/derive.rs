//! Epoch keys derived from a fleet secret with HKDF-SHA256 (RFC 5869): every process that
//! holds the secret computes the same key for the same epoch, with no coordination.
//!
//! The price: whoever learns the secret can compute the key of every epoch, past and future,
//! and decrypt every recorded TLS 1.2 session. Random keys shared through a store avoid that.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::key::{Cipher, KeyError, TicketKey, NAME_LEN};

/// The shortest secret accepted: 256 bits.
pub const MIN_SECRET_LEN: usize = 32;
const SALT: &[u8] = b"tls-ticket-keys/v1";
const NAME_LABEL: &[u8] = b"tls-ticket-keys/v1 key name";
const SECRETS_LABEL: &[u8] = b"tls-ticket-keys/v1 key secrets";
const CONTEXT_LABEL: &[u8] = b"tls-ticket-keys/v1 session id context";

/// A key source that derives each epoch's key from the secret.
pub struct DerivedKeys {
    /// HKDF's pseudorandom key; the secret itself is not kept.
    prk: Zeroizing<[u8; 32]>,
}

impl DerivedKeys {
    pub fn new(secret: &[u8]) -> Result<DerivedKeys, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::ShortSecret { min: MIN_SECRET_LEN, got: secret.len() });
        }
        let (prk, _) = Hkdf::<Sha256>::extract(Some(SALT), secret);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&prk);
        Ok(DerivedKeys { prk: out })
    }

    fn expand(&self, label: &[u8], context: &[&[u8]], out: &mut [u8]) {
        let hkdf = Hkdf::<Sha256>::from_prk(&self.prk[..]).expect("a 32-byte PRK is valid");
        let mut info = label.to_vec();
        for part in context {
            info.extend_from_slice(part);
        }
        hkdf.expand(&info, out).expect("at most 255 blocks are requested");
    }

    /// A session id context that every holder of the secret shares, and that reveals
    /// nothing about it: 16 bytes, shown as 32 hex characters.
    pub fn session_id_context(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        self.expand(CONTEXT_LABEL, &[], &mut out);
        out
    }
}

impl DerivedKeys {
    /// The key of `epoch`: the same in every process holding the secret.
    pub fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        let epoch = epoch.to_be_bytes();
        let cipher_name = cipher.name().as_bytes();
        let mut material = Zeroizing::new(vec![0u8; cipher.layout_len()]);
        self.expand(NAME_LABEL, &[cipher_name, &epoch], &mut material[..NAME_LEN]);
        self.expand(SECRETS_LABEL, &[cipher_name, &epoch], &mut material[NAME_LEN..]);
        TicketKey::from_layout(cipher, &material)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8; 32] = b"an example fleet secret, 32 B!!!";

    #[test]
    fn same_secret_same_epoch_same_key() {
        let a = DerivedKeys::new(SECRET).unwrap();
        let b = DerivedKeys::new(SECRET).unwrap();
        for cipher in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            let ka = a.key_for_epoch(42, cipher).unwrap();
            let kb = b.key_for_epoch(42, cipher).unwrap();
            assert_eq!(ka.to_layout(), kb.to_layout());
        }
        assert_eq!(a.session_id_context(), b.session_id_context());
    }

    #[test]
    fn epochs_secrets_and_ciphers_give_unrelated_keys() {
        let a = DerivedKeys::new(SECRET).unwrap();
        let mut other = *SECRET;
        other[0] ^= 1;
        let b = DerivedKeys::new(&other).unwrap();
        let k = |d: &DerivedKeys, e, c| d.key_for_epoch(e, c).unwrap();
        let base = k(&a, 7, Cipher::Aes256Cbc);
        for different in [k(&a, 8, Cipher::Aes256Cbc), k(&b, 7, Cipher::Aes256Cbc)] {
            assert_ne!(base.name(), different.name());
            assert_ne!(base.aes_key(), different.aes_key());
            assert_ne!(base.hmac_key(), different.hmac_key());
        }
        assert_ne!(base.name(), k(&a, 7, Cipher::Aes128Cbc).name());
        assert_ne!(a.session_id_context(), b.session_id_context());
    }

    #[test]
    fn names_are_not_the_secrets() {
        let a = DerivedKeys::new(SECRET).unwrap();
        let key = a.key_for_epoch(1, Cipher::Aes128Cbc).unwrap();
        assert_ne!(&key.name()[..], key.hmac_key());
        assert_ne!(&key.name()[..], key.aes_key());
        assert!(!SECRET.windows(8).any(|w| key.name().windows(8).any(|n| n == w)));
        assert_ne!(&a.session_id_context()[..], &key.name()[..]);
    }

    /// RFC 5869 test case 1, so the construction is HKDF-SHA256 and nothing home-made.
    #[test]
    fn hkdf_matches_rfc_5869() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm).expand(&info, &mut okm).unwrap();
        assert_eq!(
            crate::key::hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            DerivedKeys::new(&[1; 31]).err(),
            Some(KeyError::ShortSecret { min: 32, got: 31 })
        );
    }
}
