//! The schedule a ring keeps: its rotation interval and ticket lifetime, their bounds, and what
//! follows from them. Pure numbers; `roll.rs` moves a ring's keys along it.

use super::{RingError, Setting};

/// RFC 8446 §4.6.1: servers must not use a ticket lifetime above seven days.
pub const MAX_TICKET_LIFETIME: u64 = 604_800;
/// A key encrypts for at most as long as a TLS 1.3 ticket may live: a longer interval is
/// most likely milliseconds meant as seconds (3600000 would be 41 days).
pub const MAX_ROTATION_INTERVAL: u64 = MAX_TICKET_LIFETIME;
/// The most keys a schedule may hold at once (next, current, and a previous key for every
/// interval of a ticket lifetime), leaving the rest of `MAX_HELD_KEYS` to manual `rotate()`
/// and `set_keys()`. A constant time lookup touches every key, so the bound also bounds the
/// cost of a resumption.
pub const MAX_SCHEDULED_KEYS: u64 = 240;
/// Keys held besides the previous ones: next and current.
pub(super) const KEYS_BESIDES_PREVIOUS: u64 = 2;
/// After a failure to make a key, how long to wait before trying again.
pub(super) const RETRY_AFTER_FAILURE: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Seconds a key encrypts.
    pub rotation_interval: u64,
    /// Seconds a ticket stays resumable.
    pub ticket_lifetime: u64,
}

impl Schedule {
    pub fn new(rotation_interval: u64, ticket_lifetime: u64) -> Result<Schedule, RingError> {
        if !(1..=MAX_ROTATION_INTERVAL).contains(&rotation_interval) {
            return Err(RingError::OutOfRange {
                what: Setting::RotationInterval,
                min: 1,
                max: MAX_ROTATION_INTERVAL,
                got: rotation_interval,
            });
        }
        if !(1..=MAX_TICKET_LIFETIME).contains(&ticket_lifetime) {
            return Err(RingError::OutOfRange {
                what: Setting::TicketLifetime,
                min: 1,
                max: MAX_TICKET_LIFETIME,
                got: ticket_lifetime,
            });
        }
        let max_lifetime = Schedule::max_ticket_lifetime(rotation_interval);
        if ticket_lifetime > max_lifetime {
            return Err(RingError::LifetimeTooLong { rotation_interval, max: max_lifetime, got: ticket_lifetime });
        }
        Ok(Schedule { rotation_interval, ticket_lifetime })
    }

    /// The longest ticket lifetime whose keys a ring holds at once with this interval.
    pub fn max_ticket_lifetime(rotation_interval: u64) -> u64 {
        (MAX_SCHEDULED_KEYS - KEYS_BESIDES_PREVIOUS).saturating_mul(rotation_interval).min(MAX_TICKET_LIFETIME)
    }

    /// The most epochs whose keys are live at once, besides next and current.
    pub fn live_previous_epochs(&self) -> u64 {
        self.ticket_lifetime.div_ceil(self.rotation_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use crate::key::Cipher;

    #[test]
    fn schedule_bounds() {
        assert!(Schedule::new(0, 10).is_err());
        assert!(Schedule::new(1, 0).is_err());
        assert!(Schedule::new(1, MAX_TICKET_LIFETIME + 1).is_err());
        assert!(Schedule::new(MAX_ROTATION_INTERVAL + 1, 10).is_err());
        assert!(Schedule::new(MAX_TICKET_LIFETIME.div_ceil(238), MAX_TICKET_LIFETIME).is_ok());
        let msg = Schedule::new(1, 604_801).unwrap_err().to_string();
        assert!(msg.contains("ticket lifetime") && msg.contains("604800"), "{msg}");
    }

    #[test]
    fn a_schedule_that_needs_more_keys_than_a_ring_holds_is_refused() {
        // The case from the field: five-minute keys, seven-day tickets, 2,018 keys at once.
        let err = Schedule::new(300, MAX_TICKET_LIFETIME).unwrap_err();
        assert_eq!(
            err,
            RingError::LifetimeTooLong { rotation_interval: 300, max: 238 * 300, got: MAX_TICKET_LIFETIME }
        );
        assert!(err.to_string().contains("<= 71400 (238 intervals"), "{err}");
        assert!(Schedule::new(300, 238 * 300).is_ok());
        // Seven-day tickets need keys of at least 42 minutes.
        assert!(Schedule::new(MAX_TICKET_LIFETIME.div_ceil(238), MAX_TICKET_LIFETIME).is_ok());
        // The largest schedule holds no more than the bound through its whole life.
        let schedule = Schedule::new(1, 238).unwrap();
        let ring = Ring::random(Cipher::Aes256Cbc, schedule, T0).unwrap();
        let mut most = 0;
        for t in T0..T0 + 600 {
            most = most.max(ring.keys(t).unwrap().len());
        }
        assert!(most as u64 <= MAX_SCHEDULED_KEYS, "{most}");
    }
}
