//! Rolling the ring along its schedule: the keys of the epochs due made from the source, every
//! key moved to its role at the time, expired keys dropped, and a clock that stepped back
//! followed. Lookups call `read_at`, which takes only the read lock until the next scheduled
//! change (as rustls's `maybe_roll` does), and the write lock to roll when one is due.

use std::sync::atomic::Ordering;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use super::schedule::RETRY_AFTER_FAILURE;
use super::{forget_unscheduled_copy, Inner, Mode, Origin, Ring, RingError, Role, Slot, REMEMBERED_RETIRED_NAMES};

impl Ring {
    /// Brings the schedule up to `now` when it is due, then hands out the read lock.
    pub(super) fn read_at(&self, now: u64) -> Result<RwLockReadGuard<'_, Inner>, RingError> {
        if now >= self.next_change.load(Ordering::Acquire) || now < self.stepped_back_below.load(Ordering::Acquire) {
            let mut inner = self.write();
            self.roll(&mut inner, now);
        }
        let inner = self.read();
        if inner.destroyed {
            return Err(RingError::Destroyed);
        }
        Ok(inner)
    }

    /// The write lock, with the schedule brought up to `now`.
    pub(super) fn write_at(&self, now: u64) -> Result<RwLockWriteGuard<'_, Inner>, RingError> {
        let mut inner = self.write();
        if inner.destroyed {
            return Err(RingError::Destroyed);
        }
        self.roll(&mut inner, now);
        Ok(inner)
    }

    /// Moves every key to its state at `now`, and publishes until when that state holds.
    pub(super) fn roll(&self, inner: &mut Inner, now: u64) {
        let next = self.schedule_keys(inner, now);
        self.next_change.store(next, Ordering::Release);
        let floor = if inner.destroyed { 0 } else { now.saturating_sub(self.schedule.rotation_interval) };
        self.stepped_back_below.store(floor, Ordering::Release);
    }

    /// The state of every key at `now`; returns the time of the next change.
    fn schedule_keys(&self, inner: &mut Inner, now: u64) -> u64 {
        if inner.destroyed {
            return u64::MAX;
        }
        if now.saturating_add(self.schedule.rotation_interval) < inner.rolled_at {
            self.step_back(inner, now);
        }
        inner.rolled_at = now;
        let mut next_change = u64::MAX;
        if let Mode::Scheduled { shift } = inner.mode {
            let interval = self.schedule.rotation_interval;
            let current_epoch = inner.slots.iter().find(|s| s.role == Role::Current).and_then(|s| s.epoch);
            // A clock that steps back by up to an interval keeps the current key (further, and
            // step_back has taken every key off the epoch numbering).
            let epoch = (now / interval + shift).max(current_epoch.unwrap_or(0));
            next_change = (now / interval + 1).saturating_mul(interval);
            next_change = next_change.min(self.make_epoch_keys(inner, now, epoch, shift));
            self.assign_roles(inner, now, epoch);
        }
        self.drop_expired(inner, now);
        next_change.min(earliest_expiry(inner))
    }

    /// Makes the keys of the epochs the ring should hold at `now` and does not; returns when
    /// it needs to look again (a key that failed, a feed that may be late), or `u64::MAX`.
    fn make_epoch_keys(&self, inner: &mut Inner, now: u64, epoch: u64, shift: u64) -> u64 {
        let (interval, lifetime) = (self.schedule.rotation_interval, self.schedule.ticket_lifetime);
        // A fed ring never makes past keys here: its feed has them (see fall_back_now).
        let first = if self.source.reproducible() && !self.fed {
            epoch.saturating_sub(self.schedule.live_previous_epochs()).max(shift)
        } else {
            epoch
        };
        let (next_is_late, mut look_again) = self.feed_late_for_next(inner, now, epoch, shift);
        let last = if self.fed && !next_is_late { epoch } else { epoch + 1 };
        for e in first..=last {
            let start = (e - shift).saturating_mul(interval);
            let end = start.saturating_add(interval);
            if inner.slots.iter().any(|s| s.epoch == Some(e)) || (e < epoch && end.saturating_add(lifetime) <= now) {
                continue;
            }
            match self.source.key_for_epoch(e, self.cipher) {
                Ok(key) => {
                    // After the clock stepped back, a reproducible source gives again a key
                    // the ring still holds from the other timeline.
                    forget_unscheduled_copy(&mut inner.slots, &key);
                    let origin = if self.fed { Origin::Fallback } else { Origin::Given };
                    let role = if e < epoch {
                        Role::Previous { expires_at: Some(end.saturating_add(lifetime)) }
                    } else {
                        Role::Next
                    };
                    inner.slots.push(Slot::with_origin(key, Some(e), start, Some(end), role, origin));
                }
                Err(e) => {
                    inner.last_error = Some(e);
                    look_again = look_again.min(now + RETRY_AFTER_FAILURE);
                }
            }
        }
        look_again
    }

    /// Whether a fed ring should make the next epoch's key itself, and when to ask again.
    ///
    /// A fed ring makes only the current key when its feed is late; the next one is the feed's
    /// to deliver, an epoch ahead. But a fed ring that falls back to a reproducible source (a
    /// store's derived keys) also holds the next epoch's derived key, to open only, once the
    /// feed is late for it: a peer whose clock runs ahead reaches that epoch first and seals
    /// with it. The feed is late for the next epoch when it was for this one, or when half of
    /// this one has passed without it (a store agrees keys two epochs ahead); never at start,
    /// before the feed could answer.
    fn feed_late_for_next(&self, inner: &Inner, now: u64, epoch: u64, shift: u64) -> (bool, u64) {
        if !(self.fed && self.source.reproducible()) {
            return (false, u64::MAX);
        }
        let interval = self.schedule.rotation_interval;
        let start = (epoch - shift).saturating_mul(interval);
        let half_way = start.saturating_add(interval / 2);
        let this_one = inner.slots.iter().find(|s| s.epoch == Some(epoch)).map(|s| s.origin);
        let next_held = inner.slots.iter().any(|s| s.epoch == Some(epoch + 1));
        let half_gone = now >= half_way;
        let look_again =
            if !next_held && !half_gone && matches!(this_one, Some(Origin::Given)) { half_way } else { u64::MAX };
        let late = !next_held
            && (matches!(this_one, None | Some(Origin::Fallback)) || (half_gone && this_one != Some(Origin::StartUp)));
        (late, look_again)
    }

    /// Moves each scheduled key to its role in `epoch`: next becomes current, the current key
    /// of an earlier epoch retires.
    fn assign_roles(&self, inner: &mut Inner, now: u64, epoch: u64) {
        let lifetime = self.schedule.ticket_lifetime;
        let has_epoch_key = inner.slots.iter().any(|s| s.epoch == Some(epoch));
        for slot in inner.slots.iter_mut() {
            match (slot.role, slot.epoch) {
                (Role::Current, Some(e)) if e < epoch && has_epoch_key => slot.retire(now, lifetime),
                // The key of this epoch could not be made: keep encrypting, and keep this
                // key's tickets valid for a lifetime after it finally stops.
                (Role::Current, _) if !has_epoch_key => slot.ends_at = Some(now + RETRY_AFTER_FAILURE),
                (Role::Next, Some(e)) if e == epoch => slot.role = Role::Current,
                // Skipped while the ring was idle: it never encrypted here, but a peer with
                // the same source may have used it, so it lives out its own schedule.
                (Role::Next, Some(e)) if e < epoch => {
                    let end = slot.ends_at.unwrap_or(now);
                    slot.role = Role::Previous { expires_at: Some(end.saturating_add(lifetime)) };
                }
                _ => {}
            }
        }
    }

    /// The clock went back by more than an interval (an NTP step, a VM restored from a
    /// snapshot). The ring carries on from the new time instead of waiting for the clock to
    /// catch up with its newest key: every time it holds moves back by the same amount, and no
    /// key is held for more than a lifetime from now (no ticket is older). Scheduled keys stop
    /// encrypting now and leave the epoch numbering, and the schedule makes this epoch's keys
    /// afresh. Random keys that were wiped are gone for good; a secret-derived ring derives the
    /// keys of the new time, as every peer with that clock does.
    fn step_back(&self, inner: &mut Inner, now: u64) {
        let back = inner.rolled_at - now;
        let lifetime = self.schedule.ticket_lifetime;
        let scheduled = matches!(inner.mode, Mode::Scheduled { .. });
        for slot in &mut inner.slots {
            slot.activates_at = slot.activates_at.saturating_sub(back);
            slot.ends_at = slot.ends_at.map(|t| t.saturating_sub(back));
            match slot.role {
                // `rolled_at` may lag the latest clock by up to an interval (lookups between
                // changes do not write), so cap at a lifetime from now: no ticket is older.
                Role::Previous { expires_at: Some(t) } => {
                    let expires_at = t.saturating_sub(back).min(now.saturating_add(lifetime));
                    slot.role = Role::Previous { expires_at: Some(expires_at) }
                }
                Role::Current | Role::Next if scheduled => {
                    slot.ends_at = Some(now);
                    slot.role = Role::Previous { expires_at: Some(now.saturating_add(lifetime)) };
                }
                _ => {}
            }
            if scheduled {
                slot.epoch = None;
            }
        }
    }

    fn drop_expired(&self, inner: &mut Inner, now: u64) {
        let expired = |s: &Slot| matches!(s.role, Role::Previous { expires_at: Some(t) } if t <= now);
        while let Some(i) = inner.slots.iter().position(expired) {
            self.drop_slot(inner, i);
        }
    }

    /// Removes a key; dropping it wipes its secrets.
    fn drop_slot(&self, inner: &mut Inner, index: usize) {
        let slot = inner.slots.remove(index);
        if inner.retired_names.len() == REMEMBERED_RETIRED_NAMES {
            inner.retired_names.pop_front();
        }
        inner.retired_names.push_back(*slot.key.name());
    }
}

/// The earliest time a previous key expires, or `u64::MAX`.
fn earliest_expiry(inner: &Inner) -> u64 {
    let expiries = inner.slots.iter().filter_map(|s| match s.role {
        Role::Previous { expires_at } => expires_at,
        _ => None,
    });
    expiries.min().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn keys_move_next_current_previous_then_are_dropped() {
        let ring = ring_at(T0);
        let first = current_name(&ring, T0);
        let second = ring.keys(T0).unwrap()[0].name;
        // The next key already decrypts, without renewal.
        assert_eq!(decision(&ring, &second, T0 + 1), Some(Decision::Resume));

        // One interval later the next key encrypts and the first one is previous.
        assert_eq!(current_name(&ring, T0 + I), second);
        assert_eq!(decision(&ring, &first, T0 + I), Some(Decision::Renew));
        assert_eq!(states(&ring, T0 + I), ["next", "current", "previous"]);

        // The first key decrypts until a ticket lifetime after it stopped encrypting.
        assert_eq!(decision(&ring, &first, T0 + I + L - 1), Some(Decision::Renew));
        assert_eq!(decision(&ring, &first, T0 + I + L), None);
        assert_eq!(ring.state_of(&first, T0 + I + L).unwrap(), None);
        let stats = ring.stats();
        assert_eq!((stats.resumed_unrenewed, stats.renewed, stats.expired_key, stats.unknown_key), (1, 2, 1, 0));
    }

    #[test]
    fn a_key_is_held_at_most_two_intervals_plus_a_lifetime() {
        let ring = ring_at(T0);
        let mut first_seen = std::collections::HashMap::new();
        for t in (T0..T0 + 20 * I).step_by(5) {
            for k in ring.keys(t).unwrap() {
                let since = *first_seen.entry(k.name).or_insert(t);
                assert!(t - since <= 2 * I + L, "key held from {since} to {t}");
            }
            assert!(ring.keys(t).unwrap().len() <= 2 + (L / I + 1) as usize);
        }
    }

    #[test]
    fn epochs_align_to_multiples_of_the_interval() {
        let ring = ring_at(T0 + 37);
        let k = ring.keys(T0 + 37).unwrap();
        assert_eq!(k.iter().find(|k| k.state == KeyState::Current).unwrap().activates_at, T0);
        // A lookup right at the boundary rotates.
        let before = current_name(&ring, T0 + I - 1);
        assert_ne!(current_name(&ring, T0 + I), before);
    }

    #[test]
    fn an_idle_ring_catches_up_in_one_step() {
        let ring = ring_at(T0);
        let old = current_name(&ring, T0);
        let later = T0 + 1000 * I + 5;
        let now_current = current_name(&ring, later);
        assert_ne!(now_current, old);
        assert_eq!(decision(&ring, &old, later), None);
        assert_eq!(states(&ring, later), ["next", "current"]);
    }

    #[test]
    fn a_clock_stepping_back_less_than_an_interval_keeps_the_current_key() {
        let ring = ring_at(T0 + 5 * I);
        let name = current_name(&ring, T0 + 5 * I);
        assert_eq!(current_name(&ring, T0 + 5 * I - I / 2), name);
        assert_eq!(current_name(&ring, T0 + 5 * I + 1), name);
    }

    #[test]
    fn a_clock_jumping_ahead_wipes_expired_keys_and_keeps_rotating() {
        let ring = ring_at(T0);
        let before = names(&ring, T0);
        let year = 365 * 86_400;
        let after = names(&ring, T0 + year);
        assert!(before.iter().all(|n| !after.contains(n)), "a key survived a jump of a year");
        assert_eq!(states(&ring, T0 + year), ["next", "current"]);
        for name in &before {
            assert_eq!(decision(&ring, name, T0 + year), None);
        }
        let current = current_name(&ring, T0 + year);
        assert_ne!(current_name(&ring, T0 + year + I), current, "rotation stalled after the jump");
    }

    #[test]
    fn a_clock_stepping_back_far_neither_stalls_nor_keeps_keys_longer() {
        let year = 365 * 86_400;
        // A clock a year ahead (a wrong RTC at boot), then corrected by NTP.
        let ring = ring_at(T0 + year);
        let ahead = names(&ring, T0 + year);
        let ahead_current = current_name(&ring, T0 + year);
        let now = T0;
        let current = current_name(&ring, now);
        assert_ne!(current, ahead_current, "the key of a year ahead still encrypts");
        // The keys of the other timeline still open their tickets (they are at most a
        // lifetime old), renewing them, and are wiped a lifetime later, not a year later.
        assert_eq!(decision(&ring, &ahead_current, now), Some(Decision::Renew));
        assert_all_gone_within_a_lifetime(&ring, &ahead, now);
        // The schedule runs on from the new time: a new key every interval.
        let mut seen = vec![current];
        for step in 1..=3 {
            let name = current_name(&ring, now + step * I);
            assert!(!seen.contains(&name), "rotation stalled after stepping back");
            seen.push(name);
        }
        // Bounded as ever, plus the other timeline's next and current key for a lifetime.
        assert!(ring.keys(now + 3 * I).unwrap().len() <= 2 + (L / I) as usize + 1 + 2);
    }

    #[test]
    fn a_clock_going_back_and_forth_never_brings_back_a_wiped_key() {
        let year = 365 * 86_400;
        let ring = ring_at(T0);
        let mut wiped = Vec::new();
        let mut now = T0;
        let (year, i) = (year as i64, I as i64);
        for hop in [year, 7 * i - year, year, -year] {
            let held = names(&ring, now);
            now = (now as i64 + hop) as u64;
            // Whatever was held before the hop is wiped within a lifetime of it.
            assert_all_gone_within_a_lifetime(&ring, &held, now);
            now += schedule().ticket_lifetime;
            wiped.extend(held);
            let held_now = names(&ring, now);
            assert!(wiped.iter().all(|n| !held_now.contains(n)), "a wiped key came back");
            assert_eq!(states(&ring, now)[..2], ["next", "current"]);
        }
    }

    #[test]
    fn a_derived_ring_follows_its_clock_back_and_agrees_with_its_peers_again() {
        let year = 365 * 86_400;
        let ring = derived(7, T0 + year);
        let ahead = names(&ring, T0 + year);
        let peer = derived(7, T0);
        assert_eq!(current_name(&ring, T0), current_name(&peer, T0));
        assert_eq!(current_name(&ring, T0 + I), current_name(&peer, T0 + I));
        let held = names(&ring, T0 + I);
        let unique: std::collections::HashSet<_> = held.iter().collect();
        assert_eq!(unique.len(), held.len(), "a key is held twice");
        assert_all_gone_within_a_lifetime(&ring, &ahead, T0 + I);
    }
}
