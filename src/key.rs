//! One session-ticket key: a 16-byte name that travels in clear at the front of every
//! ticket, an HMAC-SHA256 key and an AES-CBC key.
//!
//! Two byte layouts exist in the wild and both are `name | hmac | aes`:
//! - 48 bytes, 16 each: what Node's `getTicketKeys()`/`setTicketKeys()` use (AES-128-CBC);
//! - 80 bytes, `name(16) | hmac(32) | aes(32)`: what OpenSSL's `SSL_CTX_set_tlsext_ticket_keys`
//!   and nginx's 80-byte key files use (AES-256-CBC).

use std::fmt;

use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const NAME_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 32;

/// The ticket cipher a key is for. The HMAC key has the AES key's length in both layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    Aes128Cbc,
    Aes256Cbc,
}

impl Cipher {
    /// Length in bytes of the AES key, and of the HMAC key.
    pub const fn secret_len(self) -> usize {
        match self {
            Cipher::Aes128Cbc => 16,
            Cipher::Aes256Cbc => 32,
        }
    }

    /// Length in bytes of one key in its serialized layout (48 or 80).
    pub const fn layout_len(self) -> usize {
        NAME_LEN + 2 * self.secret_len()
    }

    /// OpenSSL's name for the cipher, which is also the name the JavaScript API uses.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Cbc => "aes-128-cbc",
            Cipher::Aes256Cbc => "aes-256-cbc",
        }
    }

    pub fn from_name(name: &str) -> Option<Cipher> {
        match name {
            "aes-128-cbc" => Some(Cipher::Aes128Cbc),
            "aes-256-cbc" => Some(Cipher::Aes256Cbc),
            _ => None,
        }
    }
}

/// Why key material was refused. Never carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The buffer is empty or not a whole number of keys of the layout.
    Length { layout: usize, got: usize },
    /// The HMAC or AES key is all zeros: almost surely an uninitialised buffer.
    AllZero { index: usize },
    /// Two keys in one set share a name, so tickets could not say which one sealed them.
    DuplicateName { index: usize },
    /// The operating system's random source failed.
    Random(String),
    /// A fleet or wrapping secret shorter than the minimum.
    ShortSecret { min: usize, got: usize },
    /// The secret the keys came from has been wiped (the ring was destroyed).
    Wiped,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Length { layout, got } => {
                write!(f, "key material must be a non-zero multiple of {layout} bytes, got {got} bytes")
            }
            KeyError::AllZero { index } => {
                write!(f, "key {index} has an all-zero HMAC or AES key")
            }
            KeyError::DuplicateName { index } => {
                write!(f, "key {index} repeats the name of an earlier key")
            }
            KeyError::Random(why) => write!(f, "the system random source failed: {why}"),
            KeyError::ShortSecret { min, got } => {
                write!(f, "a secret must be at least {min} bytes, got {got} bytes")
            }
            KeyError::Wiped => write!(f, "the secret has been wiped"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A ticket key. Its secrets are wiped when it is dropped; `Debug` shows only the name,
/// which is public anyway: it is the first 16 bytes of every ticket.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TicketKey {
    #[zeroize(skip)]
    cipher: Cipher,
    name: [u8; NAME_LEN],
    hmac: [u8; MAX_SECRET_LEN],
    aes: [u8; MAX_SECRET_LEN],
}

impl TicketKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(cipher: Cipher) -> Result<TicketKey, KeyError> {
        let mut material = Zeroizing::new(vec![0u8; cipher.layout_len()]);
        fill_random(&mut material)?;
        TicketKey::from_layout(cipher, &material)
    }

    /// One key in the `name | hmac | aes` layout of `cipher` (48 or 80 bytes).
    pub fn from_layout(cipher: Cipher, bytes: &[u8]) -> Result<TicketKey, KeyError> {
        let n = cipher.secret_len();
        if bytes.len() != cipher.layout_len() {
            return Err(KeyError::Length { layout: cipher.layout_len(), got: bytes.len() });
        }
        let mut key = TicketKey { cipher, name: [0; NAME_LEN], hmac: [0; MAX_SECRET_LEN], aes: [0; MAX_SECRET_LEN] };
        key.name.copy_from_slice(&bytes[..NAME_LEN]);
        key.hmac[..n].copy_from_slice(&bytes[NAME_LEN..NAME_LEN + n]);
        key.aes[..n].copy_from_slice(&bytes[NAME_LEN + n..]);
        if is_all_zero(key.hmac_key()) || is_all_zero(key.aes_key()) {
            return Err(KeyError::AllZero { index: 0 });
        }
        Ok(key)
    }

    /// Several keys concatenated, as nginx and Go take them: the first one encrypts.
    pub fn parse_many(cipher: Cipher, bytes: &[u8]) -> Result<Vec<TicketKey>, KeyError> {
        let layout = cipher.layout_len();
        if bytes.is_empty() || !bytes.len().is_multiple_of(layout) {
            return Err(KeyError::Length { layout, got: bytes.len() });
        }
        let mut keys: Vec<TicketKey> = Vec::with_capacity(bytes.len() / layout);
        for (index, chunk) in bytes.chunks_exact(layout).enumerate() {
            let key = TicketKey::from_layout(cipher, chunk).map_err(|e| match e {
                KeyError::AllZero { .. } => KeyError::AllZero { index },
                other => other,
            })?;
            if keys.iter().any(|k| bool::from(k.name_matches(key.name()))) {
                return Err(KeyError::DuplicateName { index });
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// The key in its layout; the buffer is wiped when dropped.
    pub fn to_layout(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.cipher.layout_len()));
        out.extend_from_slice(&self.name);
        out.extend_from_slice(self.hmac_key());
        out.extend_from_slice(self.aes_key());
        out
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    pub fn name(&self) -> &[u8; NAME_LEN] {
        &self.name
    }

    pub fn name_hex(&self) -> String {
        hex(&self.name)
    }

    pub fn hmac_key(&self) -> &[u8] {
        &self.hmac[..self.cipher.secret_len()]
    }

    pub fn aes_key(&self) -> &[u8] {
        &self.aes[..self.cipher.secret_len()]
    }

    /// Compares names in constant time, so a lookup does not reveal how much of a forged
    /// name matched one of ours.
    pub fn name_matches(&self, name: &[u8; NAME_LEN]) -> Choice {
        self.name.ct_eq(name)
    }
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketKey")
            .field("name", &self.name_hex())
            .field("cipher", &self.cipher.name())
            .finish_non_exhaustive()
    }
}

/// Lowercase hex, for key names and other public bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far below its caller's frame [`scrubbed`] overwrites the stack: more than the deepest
/// chain of calls that makes or moves a key (generation, a schedule roll, an offer).
const SCRUBBED_STACK_BYTES: usize = 16 * 1024;

/// Runs an entry point's body, then overwrites the stack below it, also when the body returns
/// an error or unwinds. A `TicketKey` returned or passed by value is moved, and a move leaves
/// the old bytes in a frame that has returned, where no destructor wipes them; every entry
/// point that makes or moves keys (each N-API call, OpenSSL's ticket callback) runs its body
/// through this, so that those frames are overwritten before it returns.
pub(crate) fn scrubbed<R>(body: impl FnOnce() -> R) -> R {
    let _scrub = StackScrub;
    body()
}

/// Overwrites the stack below the frame that holds it when dropped: on return and on unwind.
struct StackScrub;

impl Drop for StackScrub {
    fn drop(&mut self) {
        scrub_stack();
    }
}

#[cfg(test)]
thread_local! {
    /// How many scrubs ran on this thread, so that a test can see `scrubbed` scrub on every exit.
    static SCRUBS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[inline(never)]
fn scrub_stack() {
    #[cfg(test)]
    SCRUBS.with(|n| n.set(n.get() + 1));
    let mut area = std::mem::MaybeUninit::<[u8; SCRUBBED_STACK_BYTES]>::uninit();
    // SAFETY: a volatile write of the whole array to memory this frame owns: one memset, which
    // the compiler may not drop (zeroize's byte-by-byte volatile stores cost about 4 µs here).
    unsafe { std::ptr::write_volatile(area.as_mut_ptr(), [0u8; SCRUBBED_STACK_BYTES]) };
    std::hint::black_box(&area);
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|e| KeyError::Random(e.to_string()))
}

/// Whether every byte is zero, of any length, in time that depends on the length only.
pub(crate) fn is_all_zero(bytes: &[u8]) -> bool {
    let mut any = 0u8;
    for &b in bytes {
        any |= b;
    }
    bool::from(any.ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbed_scrubs_on_return_on_error_and_on_unwind() {
        let scrubs = || SCRUBS.with(std::cell::Cell::get);
        let before = scrubs();
        assert_eq!(scrubbed(|| 7), 7);
        assert_eq!(scrubbed(|| Err::<(), _>("refused")), Err("refused"));
        assert!(std::panic::catch_unwind(|| scrubbed(|| panic!("unwinding"))).is_err());
        assert_eq!(scrubs() - before, 3);
    }

    fn layout(cipher: Cipher, fill: u8) -> Vec<u8> {
        (0..cipher.layout_len()).map(|i| fill.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn all_zero_of_any_length() {
        for len in [0, 1, 16, 32, 33, 48, 64, 1000] {
            assert!(is_all_zero(&vec![0u8; len]), "{len}");
            if len > 0 {
                let mut bytes = vec![0u8; len];
                bytes[len - 1] = 1;
                assert!(!is_all_zero(&bytes), "{len}");
            }
        }
    }

    #[test]
    fn node_layout_is_name_hmac_aes_of_16_bytes() {
        let bytes = layout(Cipher::Aes128Cbc, 1);
        let key = TicketKey::from_layout(Cipher::Aes128Cbc, &bytes).unwrap();
        assert_eq!(key.name(), &bytes[..16]);
        assert_eq!(key.hmac_key(), &bytes[16..32]);
        assert_eq!(key.aes_key(), &bytes[32..48]);
        assert_eq!(&key.to_layout()[..], &bytes[..]);
    }

    #[test]
    fn extended_layout_is_name_hmac32_aes32() {
        let bytes = layout(Cipher::Aes256Cbc, 7);
        let key = TicketKey::from_layout(Cipher::Aes256Cbc, &bytes).unwrap();
        assert_eq!(key.name(), &bytes[..16]);
        assert_eq!(key.hmac_key(), &bytes[16..48]);
        assert_eq!(key.aes_key(), &bytes[48..80]);
        assert_eq!(&key.to_layout()[..], &bytes[..]);
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for len in [0usize, 47, 49, 80] {
            let err = TicketKey::from_layout(Cipher::Aes128Cbc, &vec![1; len]).unwrap_err();
            assert_eq!(err, KeyError::Length { layout: 48, got: len });
        }
        assert!(TicketKey::parse_many(Cipher::Aes256Cbc, &[1; 96]).is_err());
        assert!(TicketKey::parse_many(Cipher::Aes128Cbc, &[]).is_err());
    }

    #[test]
    fn all_zero_keys_are_refused() {
        assert_eq!(TicketKey::from_layout(Cipher::Aes128Cbc, &[0; 48]).unwrap_err(), KeyError::AllZero { index: 0 });
        let mut bytes = layout(Cipher::Aes128Cbc, 1);
        bytes[32..48].fill(0); // AES key only
        assert!(TicketKey::from_layout(Cipher::Aes128Cbc, &bytes).is_err());
        let mut two = layout(Cipher::Aes128Cbc, 1);
        two.extend_from_slice(&[0; 48]);
        assert_eq!(TicketKey::parse_many(Cipher::Aes128Cbc, &two).unwrap_err(), KeyError::AllZero { index: 1 });
    }

    #[test]
    fn repeated_names_are_refused() {
        let mut two = layout(Cipher::Aes128Cbc, 1);
        let mut second = layout(Cipher::Aes128Cbc, 1);
        second[20] ^= 0xff; // same name, other secrets
        two.extend_from_slice(&second);
        assert_eq!(TicketKey::parse_many(Cipher::Aes128Cbc, &two).unwrap_err(), KeyError::DuplicateName { index: 1 });
    }

    #[test]
    fn parse_many_keeps_order() {
        let mut bytes = layout(Cipher::Aes256Cbc, 1);
        bytes.extend(layout(Cipher::Aes256Cbc, 100));
        let keys = TicketKey::parse_many(Cipher::Aes256Cbc, &bytes).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name()[0], 1);
        assert_eq!(keys[1].name()[0], 100);
    }

    #[test]
    fn generated_keys_differ_and_are_full_length() {
        let a = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        let b = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        assert_ne!(a.name(), b.name());
        assert_ne!(a.aes_key(), b.aes_key());
        assert_eq!(a.to_layout().len(), 80);
        assert_eq!(TicketKey::generate(Cipher::Aes128Cbc).unwrap().to_layout().len(), 48);
    }

    #[test]
    fn debug_shows_the_name_and_no_secret() {
        let bytes: Vec<u8> = (0..48).map(|i| 0xa0 + (i as u8 % 16)).collect();
        let key = TicketKey::from_layout(Cipher::Aes128Cbc, &bytes).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("a0a1a2a3"), "{shown}");
        // The secrets are the same byte pattern as the name; make sure only one copy shows.
        assert_eq!(shown.matches("a0a1a2a3").count(), 1, "{shown}");
    }

    #[test]
    fn zeroize_wipes_the_secrets() {
        let mut key = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        key.zeroize();
        assert!(key.hmac.iter().all(|&b| b == 0));
        assert!(key.aes.iter().all(|&b| b == 0));
        assert!(key.name.iter().all(|&b| b == 0));
    }

    #[test]
    fn cipher_names_round_trip() {
        for c in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            assert_eq!(Cipher::from_name(c.name()), Some(c));
        }
        assert_eq!(Cipher::from_name("aes-256-gcm"), None);
    }
}
