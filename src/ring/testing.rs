//! What the ring's tests share: a schedule, a clock, and short ways to ask the ring.

#![cfg(test)]

use super::*;

pub const I: u64 = 100; // rotation interval
pub const L: u64 = 250; // ticket lifetime
pub const T0: u64 = 1_000_000; // an epoch boundary: 10_000 * I

pub fn schedule() -> Schedule {
    Schedule::new(I, L).unwrap()
}

pub fn ring_at(now: u64) -> Ring {
    Ring::random(Cipher::Aes256Cbc, schedule(), now).unwrap()
}

pub fn current_name(ring: &Ring, now: u64) -> [u8; 16] {
    ring.encrypt_with(now, |k| Some(*k.name())).unwrap()
}

pub fn decision(ring: &Ring, name: &[u8; 16], now: u64) -> Option<Decision> {
    ring.decrypt_with(name, now, |_, d| Some(d)).ok()
}

pub fn states(ring: &Ring, now: u64) -> Vec<&'static str> {
    ring.keys(now).unwrap().iter().map(|k| k.state.as_str()).collect()
}

pub fn names(ring: &Ring, now: u64) -> Vec<[u8; 16]> {
    ring.keys(now).unwrap().iter().map(|k| k.name).collect()
}

/// Seen at `now`, every key in `before` is wiped by `now + ticket_lifetime`.
pub fn assert_all_gone_within_a_lifetime(ring: &Ring, before: &[[u8; 16]], now: u64) {
    ring.tick(now).unwrap();
    let later = now + schedule().ticket_lifetime;
    let held = names(ring, later);
    assert!(before.iter().all(|n| !held.contains(n)), "a key outlived its lifetime");
    for name in before {
        assert_eq!(decision(ring, name, later), None);
    }
}

pub fn derived(secret: u8, now: u64) -> Ring {
    let source = crate::derive::DerivedKeys::new(&[secret; 32]).unwrap();
    Ring::with_source(Cipher::Aes256Cbc, schedule(), Box::new(source), now).unwrap()
}
