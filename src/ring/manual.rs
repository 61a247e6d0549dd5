//! Changes the API asks for: explicit keys installed, a rotation now, the next keys made
//! again after the source changed.

use super::{Inner, Mode, Origin, Ring, RingError, Role, Slot, MAX_HELD_KEYS};
use crate::key::{KeyError, TicketKey};

impl Ring {
    /// Installs explicit keys: the first encrypts from now on, the rest only decrypt, and the
    /// ring stops rotating on its own. Keys that encrypted before stay decrypt-only until their
    /// tickets have expired; keys that never encrypted (next) are dropped.
    pub fn set_keys(&self, keys: Vec<TicketKey>, now: u64) -> Result<(), RingError> {
        let mut inner = self.write_at(now)?;
        self.put_explicit_keys(&mut inner, keys, Vec::new(), now)
    }

    pub(super) fn put_explicit_keys(
        &self,
        inner: &mut Inner,
        keys: Vec<TicketKey>,
        next: Vec<TicketKey>,
        now: u64,
    ) -> Result<(), RingError> {
        if keys.is_empty() {
            return Err(KeyError::Length { layout: self.cipher.layout_len(), got: 0 }.into());
        }
        let lifetime = self.schedule.ticket_lifetime;
        let incoming = || keys.iter().chain(next.iter());
        let replaced = |slot: &Slot| incoming().any(|k| bool::from(slot.key.name_matches(k.name())));
        let kept = inner.slots.iter().filter(|s| !replaced(s) && s.role != Role::Next).count();
        if kept + keys.len() + next.len() > MAX_HELD_KEYS {
            return Err(RingError::Full { held: inner.slots.len() });
        }
        let mut i = 0;
        while i < inner.slots.len() {
            let replaced = incoming().any(|k| bool::from(inner.slots[i].key.name_matches(k.name())));
            if replaced || inner.slots[i].role == Role::Next {
                inner.slots.remove(i); // same name comes back below; never-used keys just go
                continue;
            }
            let slot = &mut inner.slots[i];
            match slot.role {
                Role::Current | Role::Previous { expires_at: None } => slot.retire(now, lifetime),
                _ => {}
            }
            i += 1;
        }
        // Copied into boxes, so that `keys` is wiped in place when it drops here; moving the
        // keys out would leave their bytes in the list's freed buffer.
        for (index, key) in keys.iter().enumerate() {
            let role = if index == 0 { Role::Current } else { Role::Previous { expires_at: None } };
            inner.slots.push(Slot::new(key.clone(), None, now, None, role));
        }
        for key in &next {
            inner.slots.push(Slot::new(key.clone(), None, now, None, Role::Next));
        }
        inner.mode = Mode::Explicit;
        self.roll(inner, now);
        Ok(())
    }

    /// Makes the next key current now. The key it replaces stays decrypt-only until its
    /// tickets expire. A ring of explicit keys takes its announced next key, else a fresh
    /// random one.
    pub fn rotate(&self, now: u64) -> Result<(), RingError> {
        let mut inner = self.write_at(now)?;
        let lifetime = self.schedule.ticket_lifetime;
        let interval = self.schedule.rotation_interval;
        let current = inner.slots.iter().position(|s| s.role == Role::Current).ok_or(RingError::NoCurrentKey)?;
        if inner.slots.len() >= MAX_HELD_KEYS {
            return Err(RingError::Full { held: inner.slots.len() });
        }
        let promoted = match (inner.mode, inner.slots[current].epoch) {
            (Mode::Scheduled { .. }, Some(epoch)) => {
                let next = epoch + 1;
                let index = match inner.slots.iter().position(|s| s.epoch == Some(next)) {
                    Some(index) => index,
                    None => {
                        let key = self.source.key_for_epoch(next, self.cipher)?;
                        let origin = if self.fed { Origin::Fallback } else { Origin::Given };
                        inner.slots.push(Slot::with_origin(key, Some(next), now, None, Role::Next, origin));
                        inner.slots.len() - 1
                    }
                };
                // From now on epoch `next` is the one the clock maps to.
                inner.mode = Mode::Scheduled { shift: next - now / interval };
                inner.slots[index].ends_at = Some((now / interval + 1).saturating_mul(interval));
                index
            }
            // An announced next key takes over, else a fresh random one.
            _ => match inner.slots.iter().position(|s| s.role == Role::Next) {
                Some(index) => index,
                None => {
                    let key = TicketKey::generate(self.cipher)?;
                    inner.slots.push(Slot::new(key, None, now, None, Role::Next));
                    inner.slots.len() - 1
                }
            },
        };
        inner.slots[current].ends_at = Some(now);
        inner.slots[current].retire(now, lifetime);
        inner.slots[promoted].activates_at = now;
        inner.slots[promoted].role = Role::Current;
        self.roll(&mut inner, now);
        Ok(())
    }

    /// Drops the scheduled keys that have not encrypted yet (next) and makes them again from
    /// the source: after the source changed (a new secret whose time falls in the next epoch).
    /// The current and previous keys never change. Peers that made the old next key from a
    /// secret the source still holds are opened through `KeySource::open_other`.
    pub fn reschedule_next(&self, now: u64) -> Result<(), RingError> {
        let mut inner = self.write_at(now)?;
        if !matches!(inner.mode, Mode::Scheduled { .. }) {
            return Ok(());
        }
        // Removing a slot drops its boxed key, which wipes it.
        inner.slots.retain(|s| !(s.role == Role::Next && s.epoch.is_some()));
        self.roll(&mut inner, now);
        Ok(())
    }
}
