//! The ticket format OpenSSL writes (RFC 5077 §4's recommended layout):
//! `key_name(16) | IV(16) | AES-CBC ciphertext of the SSL_SESSION DER | HMAC-SHA256(32)`,
//! the MAC over name, IV and ciphertext. AES-128 with a 16-byte HMAC key (Node's 48-byte
//! keys), AES-256 with a 32-byte one (80-byte keys).
//!
//! Opening checks the length, then the MAC in constant time, and only then decrypts.

use aes::{Aes128, Aes256};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::key::{Cipher, TicketKey, NAME_LEN};

const IV_LEN: usize = 16;
const MAC_LEN: usize = 32;
const BLOCK: usize = 16;
/// A ticket travels in a 16-bit length field; nothing longer can be one.
pub const MAX_TICKET_LEN: usize = 65_535;
/// The shortest ticket: name, IV, one block, MAC.
pub const MIN_TICKET_LEN: usize = NAME_LEN + IV_LEN + BLOCK + MAC_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// Shorter than the shortest ticket, longer than any, or not whole blocks.
    Length,
    /// Sealed under another key name than the one given.
    WrongKey,
    /// The MAC does not verify: altered, forged, or another key with the same name.
    Mac,
    /// The MAC verified but the padding did not: should never happen with a real ticket.
    Padding,
}

impl std::fmt::Display for TicketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TicketError::Length => "not a ticket: its length is impossible",
            TicketError::WrongKey => "the ticket was sealed under another key",
            TicketError::Mac => "the ticket's MAC does not verify",
            TicketError::Padding => "the ticket's padding is wrong",
        })
    }
}

impl std::error::Error for TicketError {}

/// The key name a ticket claims, if it is long enough to be a ticket at all.
pub fn ticket_key_name(ticket: &[u8]) -> Option<[u8; NAME_LEN]> {
    if ticket.len() < MIN_TICKET_LEN {
        return None;
    }
    ticket[..NAME_LEN].try_into().ok()
}

fn mac(key: &TicketKey, sealed: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.hmac_key()).expect("HMAC takes keys of any length");
    mac.update(sealed);
    mac
}

/// Seals `plaintext` as OpenSSL would: `name | iv | AES-CBC(plaintext) | HMAC`. Only tests
/// seal here: OpenSSL (native mode) or Node (callback mode) seals real tickets.
#[cfg(any(test, feature = "testing"))]
pub fn seal(key: &TicketKey, iv: &[u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    use cbc::cipher::BlockEncryptMut;

    let ciphertext = match key.cipher() {
        Cipher::Aes128Cbc => cbc::Encryptor::<Aes128>::new_from_slices(key.aes_key(), iv)
            .expect("a 16-byte key and IV")
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
        Cipher::Aes256Cbc => cbc::Encryptor::<Aes256>::new_from_slices(key.aes_key(), iv)
            .expect("a 32-byte key and 16-byte IV")
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
    };
    let mut ticket = Vec::with_capacity(NAME_LEN + IV_LEN + ciphertext.len() + MAC_LEN);
    ticket.extend_from_slice(key.name());
    ticket.extend_from_slice(iv);
    ticket.extend_from_slice(&ciphertext);
    let tag = mac(key, &ticket).finalize().into_bytes();
    ticket.extend_from_slice(&tag);
    ticket
}

/// Opens a ticket sealed under `key`: the plaintext (an SSL_SESSION's DER), wiped on drop.
pub fn open(key: &TicketKey, ticket: &[u8]) -> Result<Zeroizing<Vec<u8>>, TicketError> {
    let len = ticket.len();
    if !(MIN_TICKET_LEN..=MAX_TICKET_LEN).contains(&len) || !(len - NAME_LEN - IV_LEN - MAC_LEN).is_multiple_of(BLOCK) {
        return Err(TicketError::Length);
    }
    let name: &[u8; NAME_LEN] = ticket[..NAME_LEN].try_into().expect("length checked");
    if !bool::from(key.name_matches(name)) {
        return Err(TicketError::WrongKey);
    }
    let (sealed, tag) = ticket.split_at(len - MAC_LEN);
    let expected = mac(key, sealed).finalize().into_bytes();
    if !bool::from(expected.as_slice().ct_eq(tag)) {
        return Err(TicketError::Mac);
    }
    let iv = &ticket[NAME_LEN..NAME_LEN + IV_LEN];
    let ciphertext = &ticket[NAME_LEN + IV_LEN..len - MAC_LEN];
    let plaintext = match key.cipher() {
        Cipher::Aes128Cbc => cbc::Decryptor::<Aes128>::new_from_slices(key.aes_key(), iv)
            .expect("a 16-byte key and IV")
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
        Cipher::Aes256Cbc => cbc::Decryptor::<Aes256>::new_from_slices(key.aes_key(), iv)
            .expect("a 32-byte key and 16-byte IV")
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext),
    };
    plaintext.map(Zeroizing::new).map_err(|_| TicketError::Padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cipher: Cipher) -> TicketKey {
        TicketKey::generate(cipher).unwrap()
    }

    #[test]
    fn round_trip_in_both_sizes() {
        for cipher in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            let k = key(cipher);
            for len in [0, 1, 15, 16, 17, 300] {
                let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ticket = seal(&k, &[7; 16], &plain);
                assert_eq!((ticket.len() - 64) % 16, 0);
                assert_eq!(ticket_key_name(&ticket), Some(*k.name()));
                assert_eq!(&open(&k, &ticket).unwrap()[..], &plain[..]);
            }
        }
    }

    /// RFC 4231 test case 2 and the NIST SP 800-38A CBC-AES128 vector: the crates are the
    /// real primitives, wired the way OpenSSL does.
    #[test]
    fn primitives_match_published_vectors() {
        use cbc::cipher::BlockEncryptMut;

        let mut h = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        h.update(b"what do ya want for nothing?");
        let tag: Vec<u8> = h.finalize().into_bytes().to_vec();
        assert_eq!(crate::key::hex(&tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let unhex = |s: &str| {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>()
        };
        let k = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = unhex("000102030405060708090a0b0c0d0e0f");
        let mut block = unhex("6bc1bee22e409f96e93d7e117393172a");
        cbc::Encryptor::<Aes128>::new_from_slices(&k, &iv)
            .unwrap()
            .encrypt_padded_mut::<cbc::cipher::block_padding::NoPadding>(&mut block, 16)
            .unwrap();
        assert_eq!(block, unhex("7649abac8119b246cee98e9b12e9197d"));
    }

    #[test]
    fn every_altered_byte_fails_the_mac_or_the_name() {
        let k = key(Cipher::Aes256Cbc);
        let ticket = seal(&k, &[1; 16], b"an SSL_SESSION would be here");
        for i in 0..ticket.len() {
            let mut bad = ticket.clone();
            bad[i] ^= 0x01;
            let err = open(&k, &bad).unwrap_err();
            assert!(matches!(err, TicketError::Mac | TicketError::WrongKey), "byte {i}: {err:?}");
        }
    }

    #[test]
    fn impossible_lengths_are_refused_without_a_panic() {
        let k = key(Cipher::Aes128Cbc);
        let ticket = seal(&k, &[1; 16], &[9; 40]);
        for len in 0..ticket.len() {
            assert!(open(&k, &ticket[..len]).is_err(), "length {len}");
        }
        let mut long = ticket.clone();
        long.extend(vec![0; MAX_TICKET_LEN]);
        assert_eq!(open(&k, &long).unwrap_err(), TicketError::Length);
        assert_eq!(ticket_key_name(&ticket[..MIN_TICKET_LEN - 1]), None);
    }

    #[test]
    fn another_key_with_the_same_name_fails_the_mac() {
        let k = key(Cipher::Aes128Cbc);
        let mut layout = k.to_layout().to_vec();
        layout[20] ^= 0xff; // same name, other HMAC key
        let twin = TicketKey::from_layout(Cipher::Aes128Cbc, &layout).unwrap();
        let ticket = seal(&k, &[1; 16], b"x");
        assert_eq!(open(&twin, &ticket).unwrap_err(), TicketError::Mac);
        assert_eq!(open(&key(Cipher::Aes128Cbc), &ticket).unwrap_err(), TicketError::WrongKey);
    }
}
