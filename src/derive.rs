//! Epoch keys derived from a fleet secret with HKDF-SHA256 (RFC 5869): every process that
//! holds the secret computes the same key for the same epoch, with no coordination.
//!
//! The price: whoever learns the secret can compute the key of every epoch, past and future,
//! and decrypt every recorded TLS 1.2 session. Random keys shared through a store avoid that.

use std::sync::{PoisonError, RwLock};

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::key::{Cipher, KeyError, TicketKey, NAME_LEN};

/// The shortest secret accepted: 256 bits.
pub const MIN_SECRET_LEN: usize = 32;
const SALT: &[u8] = b"tls-ticket-keys/v1";
const NAME_LABEL: &[u8] = b"tls-ticket-keys/v1 key name";
const SECRETS_LABEL: &[u8] = b"tls-ticket-keys/v1 key secrets";
const SCOPE_LABEL: &[u8] = b"tls-ticket-keys/v1 scope";
const FINGERPRINT_LABEL: &[u8] = b"tls-ticket-keys/v1 secret fingerprint";
/// The bytes of a secret's public fingerprint.
pub const FINGERPRINT_LEN: usize = 8;
/// The longest scope accepted, in bytes.
pub const MAX_SCOPE_LEN: usize = 255;

/// A key source that derives each epoch's key from the secret and a scope.
pub struct DerivedKeys {
    /// HKDF's pseudorandom key, which makes every key past and future (the secret itself is
    /// not kept); `None` once wiped.
    prk: RwLock<Option<Zeroizing<[u8; 32]>>>,
    /// Mixed into every key's HKDF info, so that each scope (a region, a data centre) of one
    /// secret has keys of its own: a leaked key exposes one scope. Empty: the keys of a ring
    /// without a scope, as before scopes existed.
    scope_info: Vec<u8>,
}

impl DerivedKeys {
    /// The keys of a ring without a scope: for the tests (rings are made with `scoped`).
    #[cfg(any(test, feature = "testing"))]
    pub fn new(secret: &[u8]) -> Result<DerivedKeys, KeyError> {
        DerivedKeys::scoped(secret, b"")
    }

    pub fn scoped(secret: &[u8], scope: &[u8]) -> Result<DerivedKeys, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::ShortSecret { min: MIN_SECRET_LEN, got: secret.len() });
        }
        let (mut prk, _) = Hkdf::<Sha256>::extract(Some(SALT), secret);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&prk);
        prk.as_mut_slice().zeroize();
        Ok(DerivedKeys { prk: RwLock::new(Some(out)), scope_info: scope_info(scope) })
    }

    /// Wipes the PRK: no key can be derived any more.
    pub fn wipe(&self) {
        let mut prk = self.prk.write().unwrap_or_else(PoisonError::into_inner);
        // In place: taking it out would leave its bytes where it lay.
        if let Some(bytes) = prk.as_mut() {
            bytes.zeroize();
        }
        *prk = None;
    }

    /// A short public name for the secret, the same in every scope: 8 bytes of an HKDF
    /// expansion with a label of its own, so it tells nothing about any key. Shown in hex by
    /// `keys()` and by the CLI (`HKDF-SHA256(salt, secret, label, 8)`).
    pub fn fingerprint(&self) -> Result<[u8; FINGERPRINT_LEN], KeyError> {
        let prk = self.prk.read().unwrap_or_else(PoisonError::into_inner);
        let prk = prk.as_ref().ok_or(KeyError::Wiped)?;
        let hkdf = Hkdf::<Sha256>::from_prk(&prk[..]).expect("a 32-byte PRK is valid");
        let mut out = [0u8; FINGERPRINT_LEN];
        hkdf.expand(FINGERPRINT_LABEL, &mut out).expect("8 bytes are valid");
        Ok(out)
    }

    fn expand(&self, label: &[u8], context: &[&[u8]], out: &mut [u8]) -> Result<(), KeyError> {
        let prk = self.prk.read().unwrap_or_else(PoisonError::into_inner);
        let prk = prk.as_ref().ok_or(KeyError::Wiped)?;
        let hkdf = Hkdf::<Sha256>::from_prk(&prk[..]).expect("a 32-byte PRK is valid");
        let mut info = label.to_vec();
        for part in context {
            info.extend_from_slice(part);
        }
        info.extend_from_slice(&self.scope_info);
        hkdf.expand(&info, out).expect("at most 255 blocks are requested");
        Ok(())
    }
}

/// The scope as HKDF info: labelled and length-prefixed, so that no scope's info is a prefix
/// or suffix of another's; nothing at all for no scope.
fn scope_info(scope: &[u8]) -> Vec<u8> {
    if scope.is_empty() {
        return Vec::new();
    }
    let len = u8::try_from(scope.len().min(MAX_SCOPE_LEN)).unwrap_or(u8::MAX);
    [SCOPE_LABEL, &[len], &scope[..usize::from(len)]].concat()
}

impl DerivedKeys {
    /// The key of `epoch`: the same in every process holding the secret.
    pub fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        let epoch = epoch.to_be_bytes();
        let cipher_name = cipher.name().as_bytes();
        let mut material = Zeroizing::new(vec![0u8; cipher.layout_len()]);
        self.expand(NAME_LABEL, &[cipher_name, &epoch], &mut material[..NAME_LEN])?;
        self.expand(SECRETS_LABEL, &[cipher_name, &epoch], &mut material[NAME_LEN..])?;
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
    }

    #[test]
    fn each_scope_has_keys_of_its_own_and_its_own_context() {
        let eu = DerivedKeys::scoped(SECRET, b"eu-west").unwrap();
        let us = DerivedKeys::scoped(SECRET, b"us-east").unwrap();
        let none = DerivedKeys::new(SECRET).unwrap();
        let k = |d: &DerivedKeys| d.key_for_epoch(9, Cipher::Aes256Cbc).unwrap();
        assert_eq!(k(&eu).to_layout(), k(&DerivedKeys::scoped(SECRET, b"eu-west").unwrap()).to_layout());
        for (a, b) in [(&eu, &us), (&eu, &none), (&us, &none)] {
            assert_ne!(k(a).name(), k(b).name());
            assert_ne!(k(a).aes_key(), k(b).aes_key());
            assert_ne!(k(a).hmac_key(), k(b).hmac_key());
        }
        // A scope that is a prefix of another, or that ends like a label, is another scope.
        assert_ne!(k(&DerivedKeys::scoped(SECRET, b"eu").unwrap()).name(), k(&eu).name());
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
    }

    #[test]
    fn names_are_not_the_secrets() {
        let a = DerivedKeys::new(SECRET).unwrap();
        let key = a.key_for_epoch(1, Cipher::Aes128Cbc).unwrap();
        assert_ne!(&key.name()[..], key.hmac_key());
        assert_ne!(&key.name()[..], key.aes_key());
        assert!(!SECRET.windows(8).any(|w| key.name().windows(8).any(|n| n == w)));
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
    fn a_wiped_source_derives_nothing() {
        let a = DerivedKeys::new(SECRET).unwrap();
        a.wipe();
        assert_eq!(a.key_for_epoch(1, Cipher::Aes256Cbc).err(), Some(KeyError::Wiped));
    }

    #[test]
    fn a_fingerprint_names_the_secret_in_every_scope_and_is_no_key() {
        let a = DerivedKeys::scoped(SECRET, b"eu").unwrap();
        let b = DerivedKeys::new(SECRET).unwrap();
        assert_eq!(a.fingerprint().unwrap(), b.fingerprint().unwrap());
        assert_ne!(a.fingerprint().unwrap(), DerivedKeys::new(&[9; 32]).unwrap().fingerprint().unwrap());
        let key = b.key_for_epoch(1, Cipher::Aes256Cbc).unwrap();
        assert!(!key.name().windows(8).any(|w| w == a.fingerprint().unwrap()));
        // What `openssl kdf`, or node's hkdfSync('sha256', secret, salt, label, 8), computes.
        let mut expected = [0u8; 8];
        Hkdf::<Sha256>::new(Some(SALT), SECRET).expand(FINGERPRINT_LABEL, &mut expected).unwrap();
        assert_eq!(b.fingerprint().unwrap(), expected);
        b.wipe();
        assert_eq!(b.fingerprint().err(), Some(KeyError::Wiped));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(DerivedKeys::new(&[1; 31]).err(), Some(KeyError::ShortSecret { min: 32, got: 31 }));
    }
}
