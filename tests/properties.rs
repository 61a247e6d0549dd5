//! Property tests over everything that parses outside input: ticket opening, session DER,
//! key material layouts and the wrapped-key format of a shared store. No input may panic.
//!
//! The case count comes from PROPTEST_CASES: a short run by default (CI), and for the long
//! run `PROPTEST_CASES=200000 cargo test --release --test properties` (5 targets, 1,000,000
//! cases).

use proptest::prelude::*;
use tls_ticket_keys::testing::parse_session;
use tls_ticket_keys::testing::Wrapper;
use tls_ticket_keys::testing::{open, seal, TicketError, MIN_TICKET_LEN};
use tls_ticket_keys::testing::{Cipher, TicketKey};

fn cipher() -> impl Strategy<Value = Cipher> {
    prop_oneof![Just(Cipher::Aes128Cbc), Just(Cipher::Aes256Cbc)]
}

fn key(cipher: Cipher, seed: u8) -> TicketKey {
    let bytes: Vec<u8> = (0..cipher.layout_len()).map(|i| seed.wrapping_add(i as u8).wrapping_mul(31) | 1).collect();
    TicketKey::from_layout(cipher, &bytes).unwrap()
}

proptest! {
    /// Random bytes, with our key's name in front or not, never open and never panic.
    #[test]
    fn ticket_open_refuses_garbage(c in cipher(), seed: u8, body in proptest::collection::vec(any::<u8>(), 0..400), named: bool) {
        let k = key(c, seed);
        let mut ticket = if named { k.name().to_vec() } else { Vec::new() };
        ticket.extend_from_slice(&body);
        prop_assert!(open(&k, &ticket).is_err());
    }

    /// A sealed ticket opens to what was sealed; any change to it is caught by the MAC (or
    /// the name), before decryption.
    #[test]
    fn ticket_round_trip_and_tamper(c in cipher(), seed: u8, iv: [u8; 16], plain in proptest::collection::vec(any::<u8>(), 0..300),
                                    at: usize, flip in 1u8..=255) {
        let k = key(c, seed);
        let ticket = seal(&k, &iv, &plain);
        prop_assert!(ticket.len() >= MIN_TICKET_LEN);
        prop_assert_eq!(&open(&k, &ticket).unwrap()[..], &plain[..]);
        let mut bad = ticket.clone();
        let i = at % bad.len();
        bad[i] ^= flip;
        let err = open(&k, &bad).unwrap_err();
        prop_assert!(matches!(err, TicketError::Mac | TicketError::WrongKey));
        let cut = at % ticket.len();
        prop_assert!(open(&k, &ticket[..cut]).is_err());
    }

    /// Session DER: any bytes give a result or an error, never a panic; the same for a valid
    /// prefix followed by anything.
    #[test]
    fn session_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), wrap: bool) {
        let mut input = if wrap { b"\0nodejs:tls:session:1\0\0\x03abc0\x82\x01\x00\x02\x01\x01".to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let _ = parse_session(&input);
    }

    /// Key material of any length: accepted exactly when it is whole keys with nonzero
    /// secrets and distinct names.
    #[test]
    fn key_layouts(c in cipher(), bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
        if let Ok(keys) = TicketKey::parse_many(c, &bytes) {
            prop_assert_eq!(keys.len() * c.layout_len(), bytes.len());
            for (k, chunk) in keys.iter().zip(bytes.chunks(c.layout_len())) {
                prop_assert_eq!(&k.to_layout()[..], chunk);
            }
        }
    }

    /// The wrapped-key format: garbage and tampering never open; the real thing does.
    #[test]
    fn wrapped_keys(c in cipher(), seed: u8, epoch: u64, garbage in proptest::collection::vec(any::<u8>(), 0..200), at: usize) {
        let w = Wrapper::new(&[seed; 32]).unwrap();
        prop_assert!(w.open(&garbage, "p:", epoch, c, 3600).is_err());
        let k = key(c, seed);
        let sealed = w.seal(&k, "p:", epoch, 3600).unwrap();
        prop_assert_eq!(w.open(&sealed, "p:", epoch, c, 3600).unwrap().to_layout(), k.to_layout());
        let mut bad = sealed.clone();
        let i = at % bad.len();
        bad[i] ^= 0x20;
        prop_assert!(w.open(&bad, "p:", epoch, c, 3600).is_err());
    }
}
