//! A fed ring: keys that arrive from outside (a shared store, a cluster's primary) take their
//! epoch's place in the schedule, and the ring's keys can be mirrored to another ring.

use std::sync::atomic::Ordering;

use super::{find, forget_unscheduled_copy, EpochKeys, Mode, Origin, Ring, RingError, Role, Slot};
use crate::key::{KeyError, TicketKey};

impl Ring {
    /// Takes the key of `epoch` from the ring's feed. It replaces a key the ring made itself
    /// for that epoch: one that never encrypted is dropped, one that did stays decrypt-only for
    /// a lifetime. Returns whether the ring took the key; it ignores keys it already holds,
    /// keys of epochs whose tickets have all expired, and any key on a ring of explicit keys.
    pub fn offer(&self, epoch: u64, key: TicketKey, now: u64) -> Result<bool, RingError> {
        if key.cipher() != self.cipher {
            return Err(KeyError::Length { layout: self.cipher.layout_len(), got: key.cipher().layout_len() }.into());
        }
        let mut inner = self.write_at(now)?;
        let Mode::Scheduled { shift } = inner.mode else { return Ok(false) };
        let (interval, lifetime) = (self.schedule.rotation_interval, self.schedule.ticket_lifetime);
        let Some(start) = epoch.checked_sub(shift).map(|e| e.saturating_mul(interval)) else { return Ok(false) };
        let end = start.saturating_add(interval);
        if end.saturating_add(lifetime) <= now {
            return Ok(false);
        }
        // A key held from before the clock stepped back: the feed puts it back on the schedule.
        forget_unscheduled_copy(&mut inner.slots, &key);
        // The same key again, or a name clash that would make tickets ambiguous. A key of its
        // own that the store agreed (written back) is the fleet's now, and no fallback.
        if let Some(held) = inner.slots.iter_mut().find(|s| bool::from(s.key.name_matches(key.name()))) {
            if held.epoch == Some(epoch) && matches!(held.origin, Origin::StartUp | Origin::Fallback) {
                held.origin = Origin::Given;
                held.fallback_unsealed.store(false, Ordering::Relaxed);
            }
            return Ok(false);
        }
        let mut slot = Slot::new(key, Some(epoch), start, Some(end), Role::Next);
        if let Some(i) = inner.slots.iter().position(|s| s.epoch == Some(epoch)) {
            // A random key of its own that sealed nothing opens no ticket anywhere: it goes
            // (a start-up key that the feed replaced in time). A reproducible one stays, as
            // below: peers that fell back alike may have sealed with it.
            let local = &inner.slots[i];
            let random = local.origin == Origin::StartUp || !self.source.reproducible();
            let unused = random && local.fallback_unsealed.load(Ordering::Relaxed);
            if unused && inner.slots[i].role != Role::Next {
                let local = inner.slots.remove(i);
                slot.activates_at = local.activates_at;
                slot.ends_at = local.ends_at;
                slot.role = local.role;
                inner.slots.push(slot);
                self.roll(&mut inner, now);
                return Ok(true);
            }
            let local = &mut inner.slots[i];
            slot.activates_at = local.activates_at;
            slot.ends_at = local.ends_at;
            slot.role = local.role;
            match local.role {
                // A derived next key (the feed was late): peers that fell back alike and whose
                // clocks run ahead may seal with it, so it opens their tickets for a lifetime.
                Role::Next if local.origin == Origin::Fallback && self.source.reproducible() => {
                    local.epoch = None;
                    local.role = Role::Previous { expires_at: Some(end.saturating_add(lifetime)) };
                }
                Role::Next => {
                    inner.slots.remove(i);
                }
                Role::Current => {
                    local.epoch = None;
                    local.retire(now, lifetime);
                }
                Role::Previous { .. } => local.epoch = None,
            }
        } else if end <= now {
            slot.role = Role::Previous { expires_at: Some(end.saturating_add(lifetime)) };
        }
        inner.slots.push(slot);
        self.roll(&mut inner, now);
        Ok(true)
    }

    /// Runs `read` with the key the ring holds for `epoch` (from its feed or made locally),
    /// if any: for writing it back to a store that lost it. Keys made for past epochs at
    /// start (`fall_back_now`) are not: the fleet may have agreed others.
    pub fn with_epoch_key<R>(
        &self,
        epoch: u64,
        now: u64,
        read: impl FnOnce(&TicketKey) -> R,
    ) -> Result<Option<R>, RingError> {
        let inner = self.read_at(now)?;
        let held = inner.slots.iter().find(|s| s.epoch == Some(epoch) && s.origin != Origin::PastFallback);
        Ok(held.map(|s| read(&s.key)))
    }

    /// For a fed ring whose feed did not answer: if its fallback source is one every member
    /// derives alike, it replaces the random start-up key (unless that sealed a ticket) with
    /// the running epoch's fallback key, as every member without the store makes; with `past`
    /// (the feed could not deliver the keys of recent epochs either) it also takes the
    /// fallback keys of those epochs, so that tickets that peers sealed with theirs open here.
    /// Past keys open tickets (renewed), never seal one, and are not written back. A ring that
    /// holds an epoch's key from its feed keeps it. Returns how many keys it made.
    pub fn fall_back_now(&self, past: bool, now: u64) -> Result<u32, RingError> {
        if !self.fed || !self.source.reproducible() {
            return Ok(0);
        }
        let mut inner = self.write_at(now)?;
        let Mode::Scheduled { shift } = inner.mode else { return Ok(0) };
        let (interval, lifetime) = (self.schedule.rotation_interval, self.schedule.ticket_lifetime);
        let epoch = now / interval + shift;
        let mut made = 0;
        let start_up = |s: &Slot| {
            s.epoch == Some(epoch) && s.origin == Origin::StartUp && s.fallback_unsealed.load(Ordering::Relaxed)
        };
        if let Some(i) = inner.slots.iter().position(start_up) {
            let key = self.source.key_for_epoch(epoch, self.cipher)?;
            let old = inner.slots.remove(i);
            inner.slots.push(Slot::with_origin(
                key,
                Some(epoch),
                old.activates_at,
                old.ends_at,
                old.role,
                Origin::Fallback,
            ));
            made += 1;
        }
        let first = if past { epoch.saturating_sub(self.schedule.live_previous_epochs()) } else { epoch };
        for e in first..epoch {
            let Some(start) = e.checked_sub(shift).map(|e| e.saturating_mul(interval)) else { continue };
            let end = start.saturating_add(interval);
            if end.saturating_add(lifetime) <= now || inner.slots.iter().any(|s| s.epoch == Some(e)) {
                continue;
            }
            let key = self.source.key_for_epoch(e, self.cipher)?;
            if find(&inner.slots, key.name()).is_some() {
                continue;
            }
            let role = Role::Previous { expires_at: Some(end.saturating_add(lifetime)) };
            inner.slots.push(Slot::with_origin(key, Some(e), start, Some(end), role, Origin::PastFallback));
            made += 1;
        }
        self.roll(&mut inner, now);
        Ok(made)
    }

    /// Runs `read` with the fallback key of `epoch`, if the ring's fallback source is one every
    /// member derives alike: what a member that hears from its store again proposes for the
    /// epoch that begins next, since members that have not heard yet make the same key at its
    /// boundary. The key is wiped when `read` returns.
    pub fn with_fallback_key<R>(&self, epoch: u64, read: impl FnOnce(&TicketKey) -> R) -> Result<Option<R>, RingError> {
        if self.is_destroyed() {
            return Err(RingError::Destroyed);
        }
        if !self.fed || !self.source.reproducible() {
            return Ok(None);
        }
        let key = self.source.key_for_epoch(epoch, self.cipher)?;
        Ok(Some(read(&key)))
    }

    /// The keys of every epoch the ring holds, in its layout, for mirroring it elsewhere.
    pub fn epoch_keys(&self, now: u64) -> Result<EpochKeys, RingError> {
        let inner = self.read_at(now)?;
        Ok(inner.slots.iter().filter_map(|s| s.epoch.map(|e| (e, s.key.to_layout()))).collect())
    }
}

/// The keys a server that follows the ring needs: the current key, the next one if the ring
/// has it, and previous keys newest first.
pub struct EdgeWindow {
    pub current: TicketKey,
    pub next: Option<TicketKey>,
    /// At most the number of slots asked for, newest first.
    pub previous: Vec<TicketKey>,
    /// Previous keys held that did not fit.
    pub left_out: usize,
}

impl Ring {
    /// Copies of the keys at `now` for another server to follow the ring (nginx key files,
    /// HAProxy's runtime API), with at most `slots` previous keys, newest first. The copies
    /// wipe themselves when dropped.
    pub fn edge_window(&self, slots: usize, now: u64) -> Result<EdgeWindow, RingError> {
        let inner = self.read_at(now)?;
        let current = inner.slots.iter().find(|s| s.role == Role::Current).ok_or(RingError::NoCurrentKey)?;
        // The next key due first (a ring of explicit keys may announce several).
        let next = inner.slots.iter().filter(|s| s.role == Role::Next).min_by_key(|s| (s.epoch, s.activates_at));
        let mut previous: Vec<&Slot> = inner.slots.iter().filter(|s| matches!(s.role, Role::Previous { .. })).collect();
        previous.sort_by(|a, b| b.activates_at.cmp(&a.activates_at).then(b.epoch.cmp(&a.epoch)));
        let left_out = previous.len().saturating_sub(slots);
        Ok(EdgeWindow {
            current: (*current.key).clone(),
            next: next.map(|s| (*s.key).clone()),
            previous: previous.iter().take(slots).map(|s| (*s.key).clone()).collect(),
            left_out,
        })
    }
}
