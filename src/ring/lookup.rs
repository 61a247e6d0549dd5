//! The handshake path: the key that seals a ticket, the key that opens one and whether to
//! renew it, each counted; and the same lookups without counting, for inspection.

use std::sync::atomic::Ordering;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{bump, find, Decision, KeyState, Miss, Ring, RingError, Role, Slot};
use crate::key::{TicketKey, NAME_LEN};

impl Ring {
    /// Runs `seal` with the key that encrypts at `now`, and counts the ticket if it returns
    /// `Some`. `None` when there is no such key (a destroyed ring): issue no ticket.
    pub fn encrypt_with<R>(&self, now: u64, seal: impl FnOnce(&TicketKey) -> Option<R>) -> Option<R> {
        let inner = self.read_at(now).ok()?;
        let slot = inner.slots.iter().find(|s| s.role == Role::Current)?;
        let out = seal(&slot.key)?;
        bump(&self.counters.issued);
        // A plain load first: the swap, a write, happens once per fallback key.
        if slot.fallback_unsealed.load(Ordering::Relaxed) && slot.fallback_unsealed.swap(false, Ordering::Relaxed) {
            *self.last_fallback.lock().unwrap_or_else(|e| e.into_inner()) = Some(*slot.key.name());
            bump(&self.counters.fallback_keys);
        }
        Some(out)
    }

    /// Runs `open` with the key named `name`, if the ring holds it at `now`, and with whether
    /// the ticket should be renewed. A miss says why, and is counted.
    pub fn decrypt_with<R>(
        &self,
        name: &[u8; NAME_LEN],
        now: u64,
        open: impl FnOnce(&TicketKey, Decision) -> Option<R>,
    ) -> Result<R, Miss> {
        let inner = self.read_at(now).map_err(|_| Miss::Unusable)?;
        let Some(slot) = find(&inner.slots, name) else {
            drop(inner);
            if let Some(other) = self.also_open.iter().find(|r| matches!(r.state_of(name, now), Ok(Some(_)))) {
                let out = other.with_key(name, now, |key, _| open(key, Decision::Renew));
                let out = out.ok().flatten().flatten().ok_or(Miss::Unusable)?;
                bump(&self.counters.renewed);
                return Ok(out);
            }
            // Another secret of the source (a secret file): opened, renewed under this ring's key.
            let mut open = Some(open);
            let mut out = None;
            if self
                .source
                .open_other(name, now, &mut |key| out = open.take().and_then(|open| open(key, Decision::Renew)))
            {
                let out = out.ok_or(Miss::Unusable)?;
                bump(&self.counters.renewed);
                return Ok(out);
            }
            let inner = self.read();
            let expired = inner.retired_names.iter().any(|n| bool::from(n.ct_eq(name)));
            bump(if expired { &self.counters.expired_key } else { &self.counters.unknown_key });
            return Err(if expired { Miss::ExpiredKey } else { Miss::UnknownKey });
        };
        let decision = match slot.role {
            Role::Previous { .. } => Decision::Renew,
            Role::Current | Role::Next => Decision::Resume,
        };
        let out = open(&slot.key, decision).ok_or(Miss::Unusable)?;
        bump(match decision {
            Decision::Resume => &self.counters.resumed_unrenewed,
            Decision::Renew => &self.counters.renewed,
        });
        Ok(out)
    }

    /// The state at `now` of the key named `name`, if the ring holds it.
    pub fn state_of(&self, name: &[u8; NAME_LEN], now: u64) -> Result<Option<KeyState>, RingError> {
        let inner = self.read_at(now)?;
        Ok(find(&inner.slots, name).map(Slot::state))
    }

    /// Runs `read` with the key named `name` and its state at `now`, if the ring holds it.
    /// Counts nothing: for inspection.
    pub fn with_key<R>(
        &self,
        name: &[u8; NAME_LEN],
        now: u64,
        read: impl FnOnce(&TicketKey, KeyState) -> R,
    ) -> Result<Option<R>, RingError> {
        let inner = self.read_at(now)?;
        Ok(find(&inner.slots, name).map(|slot| read(&slot.key, slot.state())))
    }

    /// The key that encrypts at `now`, in the ring's layout.
    pub fn current_layout(&self, now: u64) -> Result<Zeroizing<Vec<u8>>, RingError> {
        let inner = self.read_at(now)?;
        let slot = inner.slots.iter().find(|s| s.role == Role::Current).ok_or(RingError::NoCurrentKey)?;
        Ok(slot.key.to_layout())
    }
}
