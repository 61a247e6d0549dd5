//! A ring's epoch keys sealed to one `node:cluster` worker, so that the IPC channel, its read
//! buffers and the JavaScript heaps on both ends only ever hold ciphertext.
//!
//! Each worker makes an X25519 key pair in Rust and sends its public key to the primary. The
//! primary seals the epoch keys to that key: a fresh ephemeral X25519 key per message, HKDF-SHA256
//! over the shared secret and both public keys, AES-256-GCM with the version, the ring's
//! cluster name, cipher and schedule as associated data, so that keys cannot be mixed across
//! schedules, nor across two named rings of one cluster (a message for ring `a` does not open
//! in ring `b`, even sealed to its key). Only the worker's `Inbox` opens them, straight into its
//! ring.
//!
//! Sealed message: `version(1) = 1 | ephemeral public key(32) | nonce(12) | ciphertext | tag(16)`;
//! the plaintext is `(epoch u64 big-endian | key in the ring's layout)*`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::key::{fill_random, Cipher, KeyError, TicketKey};
use crate::ring::Schedule;

pub const PUBLIC_KEY_LEN: usize = 32;
// 2: the ring's cluster name is bound into the associated data.
const VERSION: u8 = 2;
/// The longest cluster ring name (a ring name: lib/ring-name.js).
pub const MAX_CHANNEL_LEN: usize = 255;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const EPOCH_LEN: usize = 8;
const HEADER_LEN: usize = 1 + PUBLIC_KEY_LEN + NONCE_LEN;
const KEY_LABEL: &[u8] = b"tls-ticket-keys/v1 cluster mirror key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorError {
    /// Not a message sealed to this inbox for this cipher by this version, or altered.
    Unopenable,
    /// Not an X25519 public key, or one whose shared secret is degenerate.
    BadPublicKey,
    /// A cluster ring name longer than [`MAX_CHANNEL_LEN`] bytes.
    BadChannel,
    /// The inbox was wiped: its ring is destroyed.
    Wiped,
    Key(KeyError),
}

impl std::fmt::Display for MirrorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MirrorError::Unopenable => write!(f, "the cluster key message does not open in this worker"),
            MirrorError::BadPublicKey => write!(f, "a cluster worker's public key must be 32 bytes of X25519"),
            MirrorError::BadChannel => write!(f, "a cluster ring name is at most {MAX_CHANNEL_LEN} bytes"),
            MirrorError::Wiped => write!(f, "the cluster inbox was wiped"),
            MirrorError::Key(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MirrorError {}

impl From<KeyError> for MirrorError {
    fn from(e: KeyError) -> MirrorError {
        MirrorError::Key(e)
    }
}

fn message_cipher(shared: &[u8; 32], ephemeral: &[u8; PUBLIC_KEY_LEN], recipient: &[u8; PUBLIC_KEY_LEN]) -> Aes256Gcm {
    let mut salt = [0u8; 2 * PUBLIC_KEY_LEN];
    salt[..PUBLIC_KEY_LEN].copy_from_slice(ephemeral);
    salt[PUBLIC_KEY_LEN..].copy_from_slice(recipient);
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(KEY_LABEL, &mut key[..])
        .expect("32 bytes is a valid HKDF output length");
    Aes256Gcm::new_from_slice(&key[..]).expect("a 32-byte key")
}

/// The cluster ring's name (empty for the unnamed ring), cipher and schedule: what a message is for.
fn associated_data(channel: &str, cipher: Cipher, schedule: Schedule) -> Result<Vec<u8>, MirrorError> {
    let channel_len = u8::try_from(channel.len()).map_err(|_| MirrorError::BadChannel)?;
    let mut aad = vec![VERSION, channel_len];
    aad.extend_from_slice(channel.as_bytes());
    aad.extend_from_slice(&schedule.rotation_interval.to_be_bytes());
    aad.extend_from_slice(&schedule.ticket_lifetime.to_be_bytes());
    aad.extend_from_slice(cipher.name().as_bytes());
    Ok(aad)
}

fn random_secret() -> Result<StaticSecret, KeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(&mut bytes[..])?;
    Ok(StaticSecret::from(*bytes))
}

/// Seals `keys` (epoch, key in `cipher`'s layout) to the worker whose public key is `recipient`,
/// for its ring named `channel`.
pub fn seal_to(
    recipient: &[u8],
    channel: &str,
    cipher: Cipher,
    schedule: Schedule,
    keys: &[(u64, Zeroizing<Vec<u8>>)],
) -> Result<Vec<u8>, MirrorError> {
    let recipient: [u8; PUBLIC_KEY_LEN] = recipient.try_into().map_err(|_| MirrorError::BadPublicKey)?;
    let aad = associated_data(channel, cipher, schedule)?;
    let ephemeral = random_secret()?;
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient));
    if !shared.was_contributory() {
        return Err(MirrorError::BadPublicKey);
    }
    // Sized once, so that no reallocation leaves key bytes in freed memory.
    let mut plain = Zeroizing::new(Vec::with_capacity(keys.len() * (EPOCH_LEN + cipher.layout_len())));
    for (epoch, material) in keys {
        if material.len() != cipher.layout_len() {
            return Err(KeyError::Length { layout: cipher.layout_len(), got: material.len() }.into());
        }
        plain.extend_from_slice(&epoch.to_be_bytes());
        plain.extend_from_slice(material);
    }
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let sealed = message_cipher(shared.as_bytes(), &ephemeral_public, &recipient)
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
        .expect("AES-GCM sealing of a short message cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// A worker's end: its X25519 key pair. The secret never leaves it, and is wiped where it lies
/// by [`Inbox::wipe`] or on drop.
pub struct Inbox {
    secret: Option<StaticSecret>,
    public: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("wiped", &self.secret.is_none()).finish_non_exhaustive()
    }
}

impl Inbox {
    pub fn new() -> Result<Inbox, KeyError> {
        let secret = random_secret()?;
        let public = PublicKey::from(&secret).to_bytes();
        Ok(Inbox { secret: Some(secret), public })
    }

    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public
    }

    /// Wipes the private key in place: no later message opens. For a worker whose ring is
    /// destroyed, without waiting for a garbage collection to drop the inbox.
    pub fn wipe(&mut self) {
        if let Some(secret) = self.secret.as_mut() {
            secret.zeroize();
        }
        self.secret = None;
    }

    /// The epoch keys of a message sealed to this inbox for the ring named `channel` of
    /// `cipher` and `schedule`. The list is sized once, so no key is left behind in memory it
    /// grew out of; dropping it wipes the keys in place.
    pub fn open(
        &self,
        message: &[u8],
        channel: &str,
        cipher: Cipher,
        schedule: Schedule,
    ) -> Result<Vec<(u64, TicketKey)>, MirrorError> {
        let secret = self.secret.as_ref().ok_or(MirrorError::Wiped)?;
        let aad = associated_data(channel, cipher, schedule)?;
        if message.len() < HEADER_LEN + TAG_LEN || message[0] != VERSION {
            return Err(MirrorError::Unopenable);
        }
        let ephemeral: [u8; PUBLIC_KEY_LEN] = message[1..1 + PUBLIC_KEY_LEN].try_into().expect("length checked");
        let nonce = &message[1 + PUBLIC_KEY_LEN..HEADER_LEN];
        let shared = secret.diffie_hellman(&PublicKey::from(ephemeral));
        if !shared.was_contributory() {
            return Err(MirrorError::Unopenable);
        }
        let plain = Zeroizing::new(
            message_cipher(shared.as_bytes(), &ephemeral, &self.public)
                .decrypt(Nonce::from_slice(nonce), Payload { msg: &message[HEADER_LEN..], aad: &aad })
                .map_err(|_| MirrorError::Unopenable)?,
        );
        let record = EPOCH_LEN + cipher.layout_len();
        if plain.len() % record != 0 {
            return Err(MirrorError::Unopenable);
        }
        let mut keys = Vec::with_capacity(plain.len() / record);
        for r in plain.chunks_exact(record) {
            let epoch = u64::from_be_bytes(r[..EPOCH_LEN].try_into().expect("8 bytes"));
            keys.push((epoch, TicketKey::from_layout(cipher, &r[EPOCH_LEN..])?));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule { rotation_interval: 60, ticket_lifetime: 120 };

    fn keys(cipher: Cipher, n: u64) -> (Vec<TicketKey>, crate::ring::EpochKeys) {
        let keys: Vec<TicketKey> = (0..n).map(|_| TicketKey::generate(cipher).unwrap()).collect();
        let layouts = keys.iter().enumerate().map(|(i, k)| (100 + i as u64, k.to_layout())).collect();
        (keys, layouts)
    }

    #[test]
    fn round_trip_to_the_worker_it_was_sealed_to() {
        for cipher in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            let inbox = Inbox::new().unwrap();
            let (originals, layouts) = keys(cipher, 3);
            let sealed = seal_to(&inbox.public_key(), "a", cipher, SCHEDULE, &layouts).unwrap();
            let opened = inbox.open(&sealed, "a", cipher, SCHEDULE).unwrap();
            assert_eq!(opened.len(), 3);
            for (i, (epoch, key)) in opened.iter().enumerate() {
                assert_eq!(*epoch, 100 + i as u64);
                assert_eq!(key.to_layout(), originals[i].to_layout());
            }
        }
    }

    #[test]
    fn the_message_holds_no_key_bytes_and_opens_nowhere_else() {
        let inbox = Inbox::new().unwrap();
        let (originals, layouts) = keys(Cipher::Aes256Cbc, 2);
        let sealed = seal_to(&inbox.public_key(), "a", Cipher::Aes256Cbc, SCHEDULE, &layouts).unwrap();
        for key in &originals {
            for secret in [key.aes_key(), key.hmac_key()] {
                assert!(!sealed.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
            }
        }
        assert_eq!(
            Inbox::new().unwrap().open(&sealed, "a", Cipher::Aes256Cbc, SCHEDULE).err(),
            Some(MirrorError::Unopenable)
        );
        assert_eq!(inbox.open(&sealed, "a", Cipher::Aes128Cbc, SCHEDULE).err(), Some(MirrorError::Unopenable));
        let other = Schedule { rotation_interval: 60, ticket_lifetime: 121 };
        assert_eq!(
            inbox.open(&sealed, "a", Cipher::Aes256Cbc, other).err(),
            Some(MirrorError::Unopenable),
            "a schedule it was not sealed for"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x20;
            assert!(inbox.open(&bad, "a", Cipher::Aes256Cbc, SCHEDULE).is_err(), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(inbox.open(&sealed[..len], "a", Cipher::Aes256Cbc, SCHEDULE).is_err());
        }
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let (_, layouts) = keys(Cipher::Aes128Cbc, 1);
        assert_eq!(
            seal_to(&[0; 32], "a", Cipher::Aes128Cbc, SCHEDULE, &layouts).err(),
            Some(MirrorError::BadPublicKey)
        );
        assert_eq!(
            seal_to(&[1; 31], "a", Cipher::Aes128Cbc, SCHEDULE, &layouts).err(),
            Some(MirrorError::BadPublicKey)
        );
    }

    #[test]
    fn a_message_for_one_named_ring_does_not_open_in_another() {
        let inbox = Inbox::new().unwrap();
        let (_, layouts) = keys(Cipher::Aes256Cbc, 2);
        let sealed = seal_to(&inbox.public_key(), "a", Cipher::Aes256Cbc, SCHEDULE, &layouts).unwrap();
        for other in ["b", "", "a ", "A"] {
            assert_eq!(
                inbox.open(&sealed, other, Cipher::Aes256Cbc, SCHEDULE).err(),
                Some(MirrorError::Unopenable),
                "{other:?}"
            );
        }
        assert!(inbox.open(&sealed, "a", Cipher::Aes256Cbc, SCHEDULE).is_ok());
        let long = "x".repeat(MAX_CHANNEL_LEN + 1);
        assert_eq!(
            seal_to(&inbox.public_key(), &long, Cipher::Aes256Cbc, SCHEDULE, &layouts).err(),
            Some(MirrorError::BadChannel)
        );
    }

    #[test]
    fn a_wiped_inbox_opens_nothing() {
        let mut inbox = Inbox::new().unwrap();
        let (_, layouts) = keys(Cipher::Aes128Cbc, 1);
        let sealed = seal_to(&inbox.public_key(), "", Cipher::Aes128Cbc, SCHEDULE, &layouts).unwrap();
        inbox.wipe();
        assert_eq!(inbox.open(&sealed, "", Cipher::Aes128Cbc, SCHEDULE).err(), Some(MirrorError::Wiped));
        assert_eq!(format!("{inbox:?}"), "Inbox { wiped: true, .. }");
    }

    #[test]
    fn debug_shows_no_secret() {
        assert_eq!(format!("{:?}", Inbox::new().unwrap()), "Inbox { wiped: false, .. }");
    }
}
