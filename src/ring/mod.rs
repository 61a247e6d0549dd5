//! The key schedule of a ticket-key ring.
//!
//! With automatic rotation, time is cut into epochs of `rotation_interval` seconds, aligned to
//! multiples of it since the Unix epoch. The key of epoch `e` is
//! - *next* during epoch `e - 1`: it already decrypts, so a peer whose clock runs ahead can use it;
//! - *current* during epoch `e`: it encrypts every new ticket;
//! - *previous* from the end of epoch `e` until `ticket_lifetime` later: it still decrypts, and a
//!   ticket it opens is renewed under the current key;
//! - then it is dropped, and its secrets are wiped.
//!
//! So a ticket stays resumable for its whole lifetime whichever key sealed it, and a key is held
//! for at most `2 * rotation_interval + ticket_lifetime` seconds.
//!
//! Rotation is lazy: every lookup takes `now` and first brings the schedule up to date, so no
//! timer is needed and tests control the clock. Until the next scheduled change a lookup takes
//! only the read lock.
//!
//! A clock that steps back by up to one interval changes nothing (the current key encrypts a
//! little longer); one that steps back further restarts the schedule from the new time
//! without extending any key's life (see `step_back`). A clock that jumps ahead rotates at once
//! and wipes every key whose tickets have expired by the new time.
//!
//! If making a new key fails, the current key keeps encrypting (its tickets stay valid for a
//! full lifetime after it finally stops) and the ring retries on a later lookup.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use subtle::ConditionallySelectable;
use zeroize::Zeroizing;

use crate::key::{Cipher, KeyError, TicketKey, NAME_LEN};
use crate::source::{KeySource, RandomKeys};

mod feed;
mod lookup;
mod manual;
mod roll;
mod schedule;
mod testing;

pub use feed::EdgeWindow;
use schedule::KEYS_BESIDES_PREVIOUS;
pub use schedule::{Schedule, MAX_ROTATION_INTERVAL, MAX_SCHEDULED_KEYS, MAX_TICKET_LIFETIME};

/// The keys of several epochs in a ring's layout, each with its epoch: what a ring hands to a
/// mirror (a cluster worker) or a store.
pub type EpochKeys = Vec<(u64, Zeroizing<Vec<u8>>)>;

/// Bound on the keys held at once, so a `rotate()` loop cannot grow memory without end. The
/// ring never drops a key early to stay under it: a schedule that would need more is refused
/// when the ring is made, and a `rotate()` or `set_keys()` that would pass it is refused.
pub const MAX_HELD_KEYS: usize = 256;
/// Names of recently dropped keys, kept to tell an expired ticket from a foreign one.
/// A name is public (it starts every ticket), so remembering it holds no secret.
const REMEMBERED_RETIRED_NAMES: usize = 64;
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    Destroyed,
    Key(KeyError),
    /// A schedule setting outside its bounds, in seconds.
    OutOfRange {
        what: Setting,
        min: u64,
        max: u64,
        got: u64,
    },
    /// A lifetime that would need more keys at once than a ring holds.
    LifetimeTooLong {
        rotation_interval: u64,
        max: u64,
        got: u64,
    },
    /// Another key would pass `MAX_HELD_KEYS`, and every key held may still open live tickets.
    Full {
        held: usize,
    },
    /// The ring holds no key that could encrypt (only when making the first one failed).
    NoCurrentKey,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Destroyed => write!(f, "the ticket key ring has been destroyed"),
            RingError::Key(e) => e.fmt(f),
            RingError::OutOfRange { what, min, max, got } => {
                write!(f, "the {} must be >= {min} && <= {max} seconds, got {got}", what.as_str())
            }
            RingError::LifetimeTooLong { rotation_interval, max, got } => write!(
                f,
                "a ticket lifetime of {got} s needs more keys than a ring holds at once with a rotation interval of \
                 {rotation_interval} s: it must be <= {max} ({} intervals; a ring holds at most {MAX_SCHEDULED_KEYS} \
                 scheduled keys)",
                MAX_SCHEDULED_KEYS - KEYS_BESIDES_PREVIOUS
            ),
            RingError::Full { held } => write!(
                f,
                "the ticket key ring holds {held} keys and takes no more past {MAX_HELD_KEYS}: it drops no key before its \
                 tickets expire (after a clock step back it holds the keys of both timelines for a lifetime); wait for \
                 older keys to expire"
            ),
            RingError::NoCurrentKey => write!(f, "the ticket key ring has no key to encrypt with"),
        }
    }
}

impl std::error::Error for RingError {}

/// The schedule settings a ring checks, named for messages in words, not by any API's option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    RotationInterval,
    TicketLifetime,
}

impl Setting {
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::RotationInterval => "rotation interval",
            Setting::TicketLifetime => "ticket lifetime",
        }
    }
}

impl From<KeyError> for RingError {
    fn from(e: KeyError) -> RingError {
        RingError::Key(e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Current,
    Previous,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Previous => "previous",
        }
    }
}

/// Why a ticket's key was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// The ring never held the key (or has forgotten even its name): foreign, forged, old.
    UnknownKey,
    /// The ring held the key but wiped it: the ticket outlived its lifetime.
    ExpiredKey,
    /// The ring is destroyed, or the key could not be used.
    Unusable,
}

/// What to do with a ticket whose key was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Resume; the ticket was sealed by the current or the next key.
    Resume,
    /// Resume and issue a fresh ticket under the current key (OpenSSL's return value 2).
    Renew,
}

/// A key as `keys()` shows it: the public name and the schedule, never the secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: [u8; NAME_LEN],
    pub state: KeyState,
    pub activates_at: u64,
    /// When it will be dropped, if that is scheduled; `None` for explicit keys held until replaced.
    pub expires_at: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tickets sealed.
    pub issued: u64,
    /// Tickets opened with a current or next key and used as they are ([`Decision::Resume`]);
    /// `resumed` in `ring.stats()`, where a resumed handshake, renewed or not, is not meant.
    pub resumed_unrenewed: u64,
    /// Tickets opened with a previous key (or another secret's), renewed under the current one.
    pub renewed: u64,
    /// Tickets whose key the ring never held, or has forgotten even the name of.
    pub unknown_key: u64,
    /// Tickets whose key the ring held and wiped ([`Miss::ExpiredKey`]); `expired` in
    /// `ring.stats()`, `expiredKey` in a native attachment's outcome counts.
    pub expired_key: u64,
    /// Keys a fed ring had to make itself because its feed had not delivered in time, counted
    /// when such a key seals its first ticket.
    pub fallback_keys: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Next,
    Current,
    Previous { expires_at: Option<u64> },
}

struct Slot {
    /// Boxed, so that moving a slot (the list growing, a slot removed) moves a pointer and
    /// leaves no copy of the secrets behind in freed memory; the box wipes them when dropped.
    key: Box<TicketKey>,
    /// The epoch of a scheduled key.
    epoch: Option<u64>,
    activates_at: u64,
    /// When it stops encrypting, if that is scheduled.
    ends_at: Option<u64>,
    role: Role,
    origin: Origin,
    /// A fallback key that has sealed no ticket yet: it counts as a fallback (in
    /// `Stats::fallback_keys`) when it first does, so that a start-up key the feed replaced in
    /// time, or one made for an epoch whose shared key arrived before any handshake, is none.
    fallback_unsealed: AtomicBool,
}

/// Where a slot's key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Offered by the feed, or any key of a ring that is not fed.
    Given,
    /// The random key a fed ring starts on, before its feed has answered: replaced by the
    /// feed's key (or by the fallback source's, see `fall_back_now`) before the ring is used.
    StartUp,
    /// Made by a fed ring from its fallback source for an epoch its feed had not delivered.
    Fallback,
    /// Made by a fed ring for a past epoch that its feed could not deliver at start (see
    /// `fall_back_now`): opens tickets, never seals one, and is never written back.
    PastFallback,
}

impl Slot {
    fn new(key: TicketKey, epoch: Option<u64>, activates_at: u64, ends_at: Option<u64>, role: Role) -> Slot {
        Slot::with_origin(key, epoch, activates_at, ends_at, role, Origin::Given)
    }

    fn with_origin(
        key: TicketKey,
        epoch: Option<u64>,
        activates_at: u64,
        ends_at: Option<u64>,
        role: Role,
        origin: Origin,
    ) -> Slot {
        let fallback_unsealed = AtomicBool::new(matches!(origin, Origin::StartUp | Origin::Fallback));
        Slot { key: Box::new(key), epoch, activates_at, ends_at, role, origin, fallback_unsealed }
    }

    fn state(&self) -> KeyState {
        match self.role {
            Role::Next => KeyState::Next,
            Role::Current => KeyState::Current,
            Role::Previous { .. } => KeyState::Previous,
        }
    }

    /// Stop encrypting at `now` (or at its scheduled end, if that came first: every ticket
    /// goes through a roll first, so none was issued after it).
    fn retire(&mut self, now: u64, lifetime: u64) {
        let stopped = self.ends_at.map_or(now, |end| end.min(now));
        self.ends_at = Some(stopped);
        self.role = Role::Previous { expires_at: Some(stopped.saturating_add(lifetime)) };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Keys per epoch from the source; `shift` counts epochs skipped ahead by `rotate()`.
    Scheduled { shift: u64 },
    /// Explicit keys: the first encrypts until replaced; no automatic rotation.
    Explicit,
}

struct Inner {
    mode: Mode,
    slots: Vec<Slot>,
    retired_names: VecDeque<[u8; NAME_LEN]>,
    /// Why the last attempt to make a key failed, if it did.
    last_error: Option<KeyError>,
    /// The clock at the last roll.
    rolled_at: u64,
    destroyed: bool,
}

#[derive(Default)]
struct Counters {
    issued: AtomicU64,
    resumed_unrenewed: AtomicU64,
    renewed: AtomicU64,
    unknown_key: AtomicU64,
    expired_key: AtomicU64,
    fallback_keys: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub struct Ring {
    cipher: Cipher,
    schedule: Schedule,
    source: Box<dyn KeySource>,
    /// Keys normally arrive through `offer` (from a shared store, or a cluster's primary);
    /// the source only stands in when they are late.
    fed: bool,
    inner: RwLock<Inner>,
    /// Before this time (Unix seconds) the schedule has nothing to do: lookups stay read-only.
    next_change: AtomicU64,
    /// A clock earlier than this has stepped back by more than an interval since the last roll.
    stepped_back_below: AtomicU64,
    counters: Counters,
    /// Rings of the secrets a fleet is moving away from (or to): they open tickets, renewed
    /// under this ring's keys, and never seal one.
    also_open: Vec<Ring>,
    /// The name (public) of the fallback key counted last, for the fallback diagnostics.
    last_fallback: Mutex<Option<[u8; NAME_LEN]>>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.read();
        f.debug_struct("Ring")
            .field("cipher", &self.cipher.name())
            .field("schedule", &self.schedule)
            .field("keys", &inner.slots.len())
            .field("destroyed", &inner.destroyed)
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// A ring of random keys that rotates on the schedule.
    pub fn random(cipher: Cipher, schedule: Schedule, now: u64) -> Result<Ring, RingError> {
        Ring::with_source(cipher, schedule, Box::new(RandomKeys), now)
    }

    /// A ring whose scheduled keys come from `source`.
    pub fn with_source(
        cipher: Cipher,
        schedule: Schedule,
        source: Box<dyn KeySource>,
        now: u64,
    ) -> Result<Ring, RingError> {
        Ring::empty(cipher, schedule, source, Mode::Scheduled { shift: 0 }).started(now)
    }

    /// Makes the first keys; fails only when not even the current one could be made.
    fn started(self, now: u64) -> Result<Ring, RingError> {
        {
            let mut inner = self.write();
            self.roll(&mut inner, now);
            if !inner.slots.iter().any(|s| s.role == Role::Current) {
                return Err(inner.last_error.take().map_or(RingError::NoCurrentKey, RingError::Key));
            }
        }
        Ok(self)
    }

    /// A scheduled ring whose keys come from outside through [`Ring::offer`]. Until they do,
    /// and whenever they are late, it takes the key of the running epoch from `fallback`
    /// (random keys, or keys every member of a fleet derives alike), so rotation never stalls.
    /// Such a key counts as a fallback once it seals a ticket.
    pub fn fed(cipher: Cipher, schedule: Schedule, fallback: Box<dyn KeySource>, now: u64) -> Result<Ring, RingError> {
        let mut ring = Ring::empty(cipher, schedule, fallback, Mode::Scheduled { shift: 0 });
        ring.fed = true;
        // A random start-up key, not one from the fallback source: a fleet whose store answers
        // in time agrees it (or another) for the running epoch, and an agreed key is random.
        let interval = schedule.rotation_interval;
        let (epoch, start) = (now / interval, now / interval * interval);
        let key = TicketKey::generate(cipher)?;
        let slot = Slot::with_origin(
            key,
            Some(epoch),
            start,
            Some(start.saturating_add(interval)),
            Role::Next,
            Origin::StartUp,
        );
        ring.write().slots.push(slot);
        ring.started(now)
    }

    /// A ring of explicit keys: the first encrypts, all decrypt, nothing rotates on its own.
    #[cfg(any(test, feature = "testing"))]
    pub fn explicit(cipher: Cipher, schedule: Schedule, keys: Vec<TicketKey>, now: u64) -> Result<Ring, RingError> {
        Ring::explicit_with_next(cipher, schedule, keys, Vec::new(), now)
    }

    /// A ring of explicit keys that also holds keys announced to encrypt later (a HAProxy key
    /// file's last line): they open tickets now, and [`Ring::rotate`] makes the first of them
    /// current.
    pub fn explicit_with_next(
        cipher: Cipher,
        schedule: Schedule,
        keys: Vec<TicketKey>,
        next: Vec<TicketKey>,
        now: u64,
    ) -> Result<Ring, RingError> {
        let ring = Ring::empty(cipher, schedule, Box::new(RandomKeys), Mode::Explicit);
        ring.put_explicit_keys(&mut ring.write(), keys, next, now)?;
        Ok(ring)
    }

    fn empty(cipher: Cipher, schedule: Schedule, source: Box<dyn KeySource>, mode: Mode) -> Ring {
        Ring {
            cipher,
            schedule,
            source,
            fed: false,
            inner: RwLock::new(Inner {
                mode,
                slots: Vec::new(),
                retired_names: VecDeque::new(),
                last_error: None,
                rolled_at: 0,
                destroyed: false,
            }),
            next_change: AtomicU64::new(0),
            stepped_back_below: AtomicU64::new(0),
            counters: Counters::default(),
            also_open: Vec::new(),
            last_fallback: Mutex::new(None),
        }
    }

    /// This ring, also opening the tickets of `rings` (same cipher and schedule) for as long
    /// as those rings hold their keys; such tickets are renewed under this ring's keys.
    pub fn also_opening(mut self, rings: Vec<Ring>) -> Ring {
        debug_assert!(rings.iter().all(|r| r.cipher == self.cipher && r.schedule == self.schedule));
        self.also_open = rings;
        self
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    // A poisoned lock only means a panic elsewhere; the key list itself is always consistent.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every key held at `now`, newest first, without secrets.
    pub fn keys(&self, now: u64) -> Result<Vec<KeyInfo>, RingError> {
        let inner = self.read_at(now)?;
        let lifetime = self.schedule.ticket_lifetime;
        let mut out: Vec<KeyInfo> = inner
            .slots
            .iter()
            .map(|s| KeyInfo {
                name: *s.key.name(),
                state: s.state(),
                activates_at: s.activates_at,
                expires_at: match s.role {
                    Role::Previous { expires_at } => expires_at,
                    _ => s.ends_at.map(|end| end.saturating_add(lifetime)),
                },
            })
            .collect();
        out.sort_by(|a, b| b.activates_at.cmp(&a.activates_at).then(rank(a.state).cmp(&rank(b.state))));
        Ok(out)
    }

    /// Brings the schedule up to `now`: rotates and wipes expired keys even when no
    /// handshake asks for a key.
    pub fn tick(&self, now: u64) -> Result<(), RingError> {
        self.read_at(now).map(drop)
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            issued: c.issued.load(Ordering::Relaxed),
            resumed_unrenewed: c.resumed_unrenewed.load(Ordering::Relaxed),
            renewed: c.renewed.load(Ordering::Relaxed),
            unknown_key: c.unknown_key.load(Ordering::Relaxed),
            expired_key: c.expired_key.load(Ordering::Relaxed),
            fallback_keys: c.fallback_keys.load(Ordering::Relaxed),
        }
    }

    /// The name of the fallback key counted last in `Stats::fallback_keys`, if any.
    pub fn last_fallback_name(&self) -> Option<[u8; NAME_LEN]> {
        *self.last_fallback.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_destroyed(&self) -> bool {
        self.read().destroyed
    }

    /// Wipes every key. Later lookups find nothing, so handshakes fall back to full ones.
    pub fn destroy(&self) {
        for ring in &self.also_open {
            ring.destroy();
        }
        self.source.wipe();
        let mut inner = self.write();
        inner.slots.clear();
        inner.retired_names.clear();
        inner.destroyed = true;
        self.next_change.store(u64::MAX, Ordering::Release);
        self.stepped_back_below.store(0, Ordering::Release);
    }
}

fn rank(state: KeyState) -> u8 {
    match state {
        KeyState::Next => 0,
        KeyState::Current => 1,
        KeyState::Previous => 2,
    }
}

/// Drops a slot outside the epoch numbering that holds `key` itself (after the clock stepped
/// back), so that `key` goes back onto the schedule instead of being held twice. Not wiped into
/// `retired_names`: the key lives on.
fn forget_unscheduled_copy(slots: &mut Vec<Slot>, key: &TicketKey) {
    if let Some(i) = slots.iter().position(|s| s.epoch.is_none() && bool::from(s.key.name_matches(key.name()))) {
        slots.remove(i);
    }
}

/// The slot named `name`, compared against every slot in constant time.
fn find<'a>(slots: &'a [Slot], name: &[u8; NAME_LEN]) -> Option<&'a Slot> {
    let mut found = 0u32;
    let mut index = 0u32;
    for (i, slot) in slots.iter().enumerate() {
        let hit = slot.key.name_matches(name);
        index.conditional_assign(&(i as u32), hit);
        found.conditional_assign(&1, hit);
    }
    (found == 1).then(|| &slots[index as usize])
}

#[cfg(test)]
mod tests {
    use super::schedule::RETRY_AFTER_FAILURE;
    use super::testing::*;
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_new_ring_has_a_current_and_a_next_key() {
        let ring = ring_at(T0 + 10);
        let keys = ring.keys(T0 + 10).unwrap();
        assert_eq!(states(&ring, T0 + 10), ["next", "current"]);
        assert_eq!(keys[1].activates_at, T0);
        assert_eq!(keys[1].expires_at, Some(T0 + I + L));
        assert_eq!(keys[0].activates_at, T0 + I);
        assert_eq!(keys[0].expires_at, Some(T0 + 2 * I + L));
    }

    #[test]
    fn a_ticket_stays_resumable_for_its_whole_lifetime() {
        let ring = ring_at(T0);
        // Tickets issued at every second of several epochs open until their own lifetime ends.
        for issued_at in (T0..T0 + 3 * I).step_by(7) {
            let name = current_name(&ring, issued_at);
            for t in [issued_at, issued_at + L / 2, issued_at + L - 1] {
                assert!(decision(&ring, &name, t).is_some(), "issued {issued_at}, used {t}");
            }
        }
    }

    #[test]
    fn rotate_promotes_the_next_key_and_keeps_the_old_one_decrypting() {
        let ring = ring_at(T0 + 10);
        let old = current_name(&ring, T0 + 10);
        let next = ring.keys(T0 + 10).unwrap()[0].name;
        ring.rotate(T0 + 20).unwrap();
        assert_eq!(current_name(&ring, T0 + 20), next);
        assert_eq!(decision(&ring, &old, T0 + 20), Some(Decision::Renew));
        // A fresh next key exists and takes over at the next aligned boundary.
        let keys = ring.keys(T0 + 21).unwrap();
        assert_eq!(keys[0].state, KeyState::Next);
        assert_eq!(keys[0].activates_at, T0 + I);
        let fresh = keys[0].name;
        assert_eq!(current_name(&ring, T0 + I), fresh);
        assert_eq!(decision(&ring, &next, T0 + I), Some(Decision::Renew));
        // The old key decrypts for a lifetime after rotate(), not after its scheduled end.
        assert_eq!(decision(&ring, &old, T0 + 20 + L - 1), Some(Decision::Renew));
        assert_eq!(decision(&ring, &old, T0 + 20 + L), None);
    }

    #[test]
    fn many_rotations_stay_bounded_and_drop_no_live_key() {
        let ring = ring_at(T0);
        let mut names = Vec::new();
        let mut refused = 0;
        for _ in 0..(MAX_HELD_KEYS + 50) {
            let name = current_name(&ring, T0 + 1);
            match ring.rotate(T0 + 1) {
                Ok(()) => names.push(name),
                Err(e) => {
                    assert_eq!(e, RingError::Full { held: MAX_HELD_KEYS });
                    refused += 1;
                }
            }
        }
        assert_eq!(ring.keys(T0 + 1).unwrap().len(), MAX_HELD_KEYS);
        assert_eq!(refused, 50 + 2, "refused once full: next and current took two places");
        for name in &names {
            assert_eq!(decision(&ring, name, T0 + 1), Some(Decision::Renew), "no key dropped while its tickets live");
        }
        // Once the first ones expire, rotating works again.
        assert!(ring.rotate(T0 + 1 + L).is_ok());
    }

    #[test]
    fn set_keys_past_the_bound_is_refused_and_changes_nothing() {
        let ring = ring_at(T0);
        let before = ring.keys(T0).unwrap().len();
        let keys: Vec<TicketKey> =
            (0..MAX_HELD_KEYS).map(|_| TicketKey::generate(Cipher::Aes256Cbc).unwrap()).collect();
        assert!(matches!(ring.set_keys(keys, T0), Err(RingError::Full { .. })));
        assert_eq!(ring.keys(T0).unwrap().len(), before);
    }

    #[test]
    fn explicit_keys_first_encrypts_all_decrypt_no_rotation() {
        let a = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let b = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let (na, nb) = (*a.name(), *b.name());
        let ring = Ring::explicit(Cipher::Aes128Cbc, schedule(), vec![a, b], T0).unwrap();
        let far = T0 + 100 * I;
        assert_eq!(current_name(&ring, far), na);
        assert_eq!(decision(&ring, &na, far), Some(Decision::Resume));
        assert_eq!(decision(&ring, &nb, far), Some(Decision::Renew));
        let keys = ring.keys(far).unwrap();
        assert!(keys.iter().all(|k| k.expires_at.is_none()));
    }

    #[test]
    fn set_keys_keeps_the_old_current_key_until_its_tickets_expire() {
        let ring = ring_at(T0);
        let old = current_name(&ring, T0);
        let next = ring.keys(T0).unwrap()[0].name;
        let k = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        let new = *k.name();
        ring.set_keys(vec![k], T0 + 10).unwrap();
        assert_eq!(current_name(&ring, T0 + 10), new);
        assert_eq!(decision(&ring, &old, T0 + 10), Some(Decision::Renew));
        assert_eq!(decision(&ring, &next, T0 + 10), None, "a key that never encrypted goes");
        // The old key goes a lifetime after the switch, and nothing rotates any more.
        assert_eq!(decision(&ring, &old, T0 + 10 + L - 1), Some(Decision::Renew));
        assert_eq!(decision(&ring, &old, T0 + 10 + L), None);
        assert_eq!(current_name(&ring, T0 + 10 * I), new);
        assert_eq!(states(&ring, T0 + 10 * I), ["current"]);
    }

    #[test]
    fn setting_the_same_key_again_changes_nothing_visible() {
        let k = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let name = *k.name();
        let ring = Ring::explicit(Cipher::Aes128Cbc, schedule(), vec![k.clone()], T0).unwrap();
        ring.set_keys(vec![k], T0 + 5).unwrap();
        assert_eq!(states(&ring, T0 + 5), ["current"]);
        assert_eq!(current_name(&ring, T0 + 5), name);
    }

    #[test]
    fn rotate_on_explicit_keys_makes_a_fresh_key() {
        let k = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let name = *k.name();
        let ring = Ring::explicit(Cipher::Aes128Cbc, schedule(), vec![k], T0).unwrap();
        ring.rotate(T0 + 1).unwrap();
        let fresh = current_name(&ring, T0 + 1);
        assert_ne!(fresh, name);
        assert_eq!(decision(&ring, &name, T0 + 1), Some(Decision::Renew));
        assert_eq!(decision(&ring, &name, T0 + 1 + L), None);
    }

    #[test]
    fn an_announced_next_key_opens_tickets_and_takes_over_on_rotate() {
        let [current, next, previous] = [(); 3].map(|_| TicketKey::generate(Cipher::Aes256Cbc).unwrap());
        let names = [*current.name(), *next.name(), *previous.name()];
        let ring =
            Ring::explicit_with_next(Cipher::Aes256Cbc, schedule(), vec![current, previous], vec![next], T0).unwrap();
        assert_eq!(current_name(&ring, T0), names[0]);
        let mut held = states(&ring, T0);
        held.sort();
        assert_eq!(held, ["current", "next", "previous"]);
        assert_eq!(decision(&ring, &names[1], T0), Some(Decision::Resume));
        ring.rotate(T0 + 1).unwrap();
        assert_eq!(current_name(&ring, T0 + 1), names[1], "the announced key, not a fresh one");
        assert_eq!(decision(&ring, &names[0], T0 + 1), Some(Decision::Renew));
    }

    #[test]
    fn a_previous_secret_opens_its_tickets_renewed_and_never_seals() {
        use crate::derive::DerivedKeys;
        let ring_of = |secret: u8| {
            Ring::with_source(Cipher::Aes256Cbc, schedule(), Box::new(DerivedKeys::new(&[secret; 32]).unwrap()), T0)
                .unwrap()
        };
        let (old, new) = (ring_of(1), ring_of(2));
        let moving = ring_of(2).also_opening(vec![ring_of(1)]);
        let old_name = current_name(&old, T0);
        assert_eq!(current_name(&moving, T0), current_name(&new, T0), "seals with the new secret");
        assert_eq!(decision(&moving, &old_name, T0), Some(Decision::Renew));
        assert_eq!(moving.stats().renewed, 1);
        assert_eq!(moving.stats().unknown_key, 0);
        // Another secret altogether is still unknown.
        assert_eq!(decision(&moving, &current_name(&ring_of(3), T0), T0), None);
        assert_eq!(moving.stats().unknown_key, 1);
        moving.destroy();
        assert_eq!(decision(&moving, &old_name, T0), None);
    }

    #[test]
    fn unknown_names_count_as_unknown() {
        let ring = ring_at(T0);
        assert_eq!(decision(&ring, &[7; 16], T0), None);
        assert_eq!(ring.stats().unknown_key, 1);
        assert_eq!(ring.stats().expired_key, 0);
    }

    #[test]
    fn destroy_wipes_and_refuses() {
        let ring = ring_at(T0);
        let name = current_name(&ring, T0);
        ring.destroy();
        assert!(ring.encrypt_with(T0, |k| Some(*k.name())).is_none());
        assert_eq!(decision(&ring, &name, T0), None);
        assert_eq!(ring.keys(T0).unwrap_err(), RingError::Destroyed);
        assert_eq!(ring.rotate(T0).unwrap_err(), RingError::Destroyed);
        assert_eq!(ring.current_layout(T0).unwrap_err(), RingError::Destroyed);
        let k = TicketKey::generate(Cipher::Aes256Cbc).unwrap();
        assert_eq!(ring.set_keys(vec![k], T0).unwrap_err(), RingError::Destroyed);
    }

    #[test]
    fn a_failed_seal_is_not_counted() {
        let ring = ring_at(T0);
        assert_eq!(ring.encrypt_with(T0, |_| None::<()>), None);
        assert_eq!(ring.stats().issued, 0);
        ring.encrypt_with(T0, |_| Some(())).unwrap();
        assert_eq!(ring.stats().issued, 1);
    }

    /// Random keys that fail while `failing` is set.
    struct Flaky(Arc<AtomicBool>);

    impl KeySource for Flaky {
        fn key_for_epoch(&self, _: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
            if self.0.load(Ordering::SeqCst) {
                Err(KeyError::Random("injected".into()))
            } else {
                TicketKey::generate(cipher)
            }
        }
    }

    #[test]
    fn stays_usable_when_making_a_new_key_fails() {
        let failing = Arc::new(AtomicBool::new(false));
        let ring = Ring::with_source(Cipher::Aes256Cbc, schedule(), Box::new(Flaky(failing.clone())), T0).unwrap();
        let first = current_name(&ring, T0);
        let second = ring.keys(T0).unwrap()[0].name;
        failing.store(true, Ordering::SeqCst);
        // The already made next key still takes over on time.
        assert_eq!(current_name(&ring, T0 + I), second);
        // The one after cannot be made: the current key keeps encrypting, and keeps decrypting
        // for a whole lifetime after it finally stops.
        let late = T0 + 4 * I + 30;
        assert_eq!(current_name(&ring, late), second);
        assert_eq!(decision(&ring, &second, late), Some(Decision::Resume));
        assert!(decision(&ring, &first, late).is_none(), "first expired on schedule");
        failing.store(false, Ordering::SeqCst);
        let healed = late + RETRY_AFTER_FAILURE;
        let third = current_name(&ring, healed);
        assert_ne!(third, second);
        assert_eq!(decision(&ring, &second, healed + L - 1), Some(Decision::Renew));
    }

    #[test]
    fn the_first_key_failing_is_an_error() {
        let failing = Arc::new(AtomicBool::new(true));
        let err = Ring::with_source(Cipher::Aes256Cbc, schedule(), Box::new(Flaky(failing)), T0).unwrap_err();
        assert!(matches!(err, RingError::Key(KeyError::Random(_))), "{err:?}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let k = TicketKey::from_layout(Cipher::Aes128Cbc, &[0xab; 48]).unwrap();
        let ring = Ring::explicit(Cipher::Aes128Cbc, schedule(), vec![k], T0).unwrap();
        let shown = format!("{ring:?}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171, 171"), "{shown}");
    }

    #[test]
    fn find_matches_only_whole_names() {
        let ring = ring_at(T0);
        let mut name = current_name(&ring, T0);
        assert!(ring.state_of(&name, T0).unwrap().is_some());
        name[15] ^= 1;
        assert_eq!(ring.state_of(&name, T0).unwrap(), None);
    }

    #[test]
    fn rings_from_one_secret_agree_on_every_key() {
        let a = derived(1, T0 + 3);
        let b = derived(1, T0 + 77);
        assert_eq!(a.keys(T0 + 80).unwrap(), b.keys(T0 + 80).unwrap());
        assert_ne!(current_name(&a, T0 + 80), current_name(&derived(2, T0), T0 + 80));
    }

    #[test]
    fn derived_rings_tolerate_a_clock_skew_of_up_to_one_interval() {
        let ahead = derived(1, T0);
        let behind = derived(1, T0);
        let skew = I - 1;
        for t in (T0 + 10..T0 + 5 * I).step_by(13) {
            let from_ahead = current_name(&ahead, t + skew);
            assert!(decision(&behind, &from_ahead, t).is_some(), "behind opens ahead's ticket at {t}");
            let from_behind = current_name(&behind, t);
            assert!(decision(&ahead, &from_behind, t + skew).is_some(), "ahead opens behind's ticket at {t}");
        }
    }

    fn fed_at(now: u64) -> Ring {
        Ring::fed(Cipher::Aes128Cbc, schedule(), Box::new(RandomKeys), now).unwrap()
    }

    #[test]
    fn a_fed_ring_uses_offered_keys_and_counts_what_it_made_itself() {
        let ring = fed_at(T0 + 1);
        assert_eq!(states(&ring, T0 + 1), ["current"], "the next key is the feed's to deliver");
        assert_eq!(ring.stats().fallback_keys, 0, "a start-up key that sealed nothing is no fallback");
        let e = T0 / I;
        let shared_next = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let name = *shared_next.name();
        assert!(ring.offer(e + 1, shared_next.clone(), T0 + 2).unwrap());
        assert!(!ring.offer(e + 1, shared_next, T0 + 2).unwrap(), "the same key twice is taken once");
        assert_eq!(ring.state_of(&name, T0 + 2).unwrap(), Some(KeyState::Next));
        // Sealing with the start-up key makes it a fallback, counted once.
        assert_eq!(ring.last_fallback_name(), None);
        let local = current_name(&ring, T0 + 3);
        current_name(&ring, T0 + 4);
        assert_eq!(ring.stats().fallback_keys, 1);
        assert_eq!(ring.last_fallback_name(), Some(local));
        // The boundary passes without a fallback: the offered key takes over.
        assert_eq!(current_name(&ring, T0 + I), name);
        assert_eq!(ring.stats().fallback_keys, 1);
        // A feed that stays away: the ring makes the current key itself, and counts it when
        // it seals.
        assert_ne!(current_name(&ring, T0 + 2 * I), name);
        assert_eq!(ring.stats().fallback_keys, 2);
    }

    #[test]
    fn a_start_up_key_the_feed_replaced_in_time_is_no_fallback_and_is_gone() {
        let ring = fed_at(T0 + 1);
        let local = ring.keys(T0 + 1).unwrap()[0].name;
        let shared = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        assert!(ring.offer(T0 / I, shared.clone(), T0 + 1).unwrap());
        assert_eq!(current_name(&ring, T0 + 2), *shared.name());
        assert_eq!(ring.stats().fallback_keys, 0);
        assert_eq!(ring.state_of(&local, T0 + 2).unwrap(), None, "a random key that sealed nothing opens nothing");
        // A start-up key that the store agreed (written back, then offered) is the fleet's.
        let ring = derived_fed_at(1, T0 + 1);
        let own = TicketKey::from_layout(Cipher::Aes128Cbc, &ring.current_layout(T0 + 1).unwrap()).unwrap();
        assert!(!ring.offer(T0 / I, own, T0 + 1).unwrap());
        current_name(&ring, T0 + 2);
        assert_eq!(ring.stats().fallback_keys, 0);
        assert_eq!(ring.fall_back_now(false, T0 + 3).unwrap(), 0, "a ring holding the agreed key derives none");
    }

    fn derived_fed_at(secret: u8, now: u64) -> Ring {
        let fallback = crate::fallback::FallbackRoot::new(&[secret; 32]).unwrap().keys("p:", I);
        Ring::fed(Cipher::Aes128Cbc, schedule(), Box::new(fallback), now).unwrap()
    }

    #[test]
    fn fed_rings_that_fall_back_alike_agree_and_one_holding_the_shared_key_keeps_it() {
        let e = T0 / I;
        let (a, b) = (derived_fed_at(1, T0 + 1), derived_fed_at(1, T0 + 2 * I + 7));
        current_name(&a, T0 + 1);
        // b starts without its feed: it takes the fleet's fallback key instead of its random one.
        assert_eq!(b.fall_back_now(false, T0 + 2 * I + 8).unwrap(), 1);
        // Both without their feed in epoch e + 2: the same key, one of their own.
        assert_eq!(current_name(&a, T0 + 2 * I + 9), current_name(&b, T0 + 2 * I + 9));
        assert_ne!(current_name(&a, T0 + 2 * I + 9), current_name(&derived_fed_at(2, T0 + 2 * I), T0 + 2 * I + 9));
        assert_eq!(a.stats().fallback_keys, 2, "the start-up key and epoch e + 2's sealed");
        // A ring that holds the shared key of an epoch never derives one for it.
        let c = derived_fed_at(1, T0 + 1);
        let shared = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        assert!(c.offer(e + 3, shared.clone(), T0 + 1).unwrap());
        assert_eq!(current_name(&c, T0 + 3 * I + 1), *shared.name());
        assert_ne!(current_name(&a, T0 + 3 * I + 1), *shared.name());
        // A derived fallback that sealed stays decrypt-only once the shared key arrives:
        // peers that fell back alike sealed with it too.
        let derived = current_name(&a, T0 + 4 * I + 1);
        assert!(a.offer(e + 4, TicketKey::generate(Cipher::Aes128Cbc).unwrap(), T0 + 4 * I + 2).unwrap());
        assert_eq!(decision(&a, &derived, T0 + 4 * I + 3), Some(Decision::Renew));
    }

    #[test]
    fn a_fed_ring_that_falls_back_holds_the_next_derived_key_for_peers_whose_clocks_run_ahead() {
        let e = T0 / I;
        let (slow, fast) = (derived_fed_at(1, T0 + 1), derived_fed_at(1, T0 + 1));
        assert_eq!(slow.fall_back_now(false, T0 + 2).unwrap(), 1);
        assert_eq!(fast.fall_back_now(false, T0 + 2).unwrap(), 1);
        // No feed in epoch e + 1: the fast ring is in e + 2 already and seals with its key,
        // which the slow one, still in e + 1, opens.
        current_name(&slow, T0 + I + 1);
        let sealed = current_name(&fast, T0 + 2 * I + 1);
        assert_eq!(decision(&slow, &sealed, T0 + 2 * I - 1), Some(Decision::Resume), "next, derived alike");
        // The feed's key for e + 3 arrives: it takes the place of the derived next key, which
        // still opens what a peer ahead sealed with it.
        let derived_next = current_name(&derived_fed_at(1, T0 + 1), T0 + 3 * I + 1);
        let shared = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        current_name(&slow, T0 + 2 * I + 1);
        assert_eq!(decision(&slow, &derived_next, T0 + 2 * I + 2), Some(Decision::Resume));
        assert!(slow.offer(e + 3, shared.clone(), T0 + 2 * I + 2).unwrap());
        assert_eq!(current_name(&slow, T0 + 3 * I + 1), *shared.name());
        assert_eq!(decision(&slow, &derived_next, T0 + 3 * I + 2), Some(Decision::Renew));
        // A healthy ring, or one that has just started, derives no next key.
        let healthy = derived_fed_at(1, T0 + 1);
        assert!(healthy.offer(e, TicketKey::generate(Cipher::Aes128Cbc).unwrap(), T0 + 1).unwrap());
        assert!(healthy.offer(e + 1, TicketKey::generate(Cipher::Aes128Cbc).unwrap(), T0 + 1).unwrap());
        assert_eq!(decision(&healthy, &sealed, T0 + 2), None);
        assert_eq!(healthy.keys(T0 + 2).unwrap().len(), 2);
        // The agreed key of this epoch, and half of it gone without the next one: the feed is
        // late for it, and the derived next key opens a faster peer's tickets.
        let transition = derived_fed_at(1, T0 + 1);
        assert!(transition.offer(e, TicketKey::generate(Cipher::Aes128Cbc).unwrap(), T0 + 1).unwrap());
        assert_eq!(transition.keys(T0 + 2).unwrap().len(), 1);
        let ahead = current_name(&derived_fed_at(1, T0 + 1), T0 + I + 1);
        assert_eq!(decision(&transition, &ahead, T0 + I / 2 - 1), None);
        assert_eq!(decision(&transition, &ahead, T0 + I / 2), Some(Decision::Resume));
    }

    #[test]
    fn a_fed_ring_started_without_its_feed_opens_the_past_fallback_keys_of_its_peers() {
        let early = derived_fed_at(1, T0 + 1);
        let ticket = current_name(&early, T0 + I + 1);
        let late = derived_fed_at(1, T0 + 2 * I + 1);
        assert_eq!(decision(&late, &ticket, T0 + 2 * I + 1), None, "nothing past is derived on its own");
        assert_eq!(late.fall_back_now(true, T0 + 2 * I + 1).unwrap(), 4, "the running epoch's, and e - 1, e and e + 1");
        assert_eq!(late.fall_back_now(true, T0 + 2 * I + 1).unwrap(), 0, "once");
        // What it proposes for the next epoch once its store answers: what the others derive.
        let proposed = late.with_fallback_key(T0 / I + 3, |k| *k.name()).unwrap();
        assert_eq!(proposed, Some(current_name(&early, T0 + 3 * I + 1)));
        assert_eq!(
            fed_at(T0).with_fallback_key(T0 / I + 1, |k| *k.name()).unwrap(),
            None,
            "random fallbacks propose nothing"
        );
        assert_eq!(decision(&late, &ticket, T0 + 2 * I + 2), Some(Decision::Renew));
        // Opens only, counts nothing, and is never written back.
        assert_eq!(late.stats().fallback_keys, 0);
        assert!(late.with_epoch_key(T0 / I + 1, T0 + 2 * I + 2, |_| ()).unwrap().is_none());
        // A random fallback has no past to derive.
        assert_eq!(fed_at(T0 + 2 * I).fall_back_now(true, T0 + 2 * I).unwrap(), 0);
    }

    #[test]
    fn a_late_shared_key_replaces_the_local_current_one() {
        let ring = fed_at(T0 + 1);
        let local = current_name(&ring, T0 + 1);
        let shared = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let name = *shared.name();
        assert!(ring.offer(T0 / I, shared, T0 + 30).unwrap());
        assert_eq!(current_name(&ring, T0 + 30), name);
        // Tickets the local key issued meanwhile still resume, renewed, for a lifetime.
        assert_eq!(decision(&ring, &local, T0 + 30 + L - 1), Some(Decision::Renew));
        assert_eq!(decision(&ring, &local, T0 + 30 + L), None);
    }

    #[test]
    fn after_the_clock_steps_back_a_fed_ring_takes_the_feeds_keys_again() {
        let e = T0 / I;
        let shared: Vec<TicketKey> = (0..4).map(|_| TicketKey::generate(Cipher::Aes128Cbc).unwrap()).collect();
        let ring = fed_at(T0 + 1);
        for (i, key) in shared.iter().enumerate() {
            let now = T0 + i as u64 * I + 1;
            ring.offer(e + i as u64, key.clone(), now).unwrap();
            assert_eq!(current_name(&ring, now), *key.name());
        }
        // Three intervals back: the feed offers epoch e's key again, which the ring still holds
        // from the other timeline. It becomes current, not the ring's own fallback.
        let back = T0 + 1;
        assert!(ring.offer(e, shared[0].clone(), back).unwrap());
        assert_eq!(current_name(&ring, back), *shared[0].name());
        let held = names(&ring, back);
        assert_eq!(held.iter().filter(|n| *n == shared[0].name()).count(), 1, "a key is held twice");
    }

    #[test]
    fn offers_of_expired_epochs_or_to_explicit_rings_are_ignored() {
        let ring = fed_at(T0 + 10 * I);
        let old = T0 / I; // its tickets expired long ago
        assert!(!ring.offer(old, TicketKey::generate(Cipher::Aes128Cbc).unwrap(), T0 + 10 * I).unwrap());
        // A recent past epoch comes in as previous, so its tickets still resume.
        let recent = TicketKey::generate(Cipher::Aes128Cbc).unwrap();
        let name = *recent.name();
        assert!(ring.offer(old + 9, recent, T0 + 10 * I).unwrap());
        assert_eq!(ring.state_of(&name, T0 + 10 * I).unwrap(), Some(KeyState::Previous));
        let explicit =
            Ring::explicit(Cipher::Aes128Cbc, schedule(), vec![TicketKey::generate(Cipher::Aes128Cbc).unwrap()], T0)
                .unwrap();
        assert!(!explicit.offer(old, TicketKey::generate(Cipher::Aes128Cbc).unwrap(), T0).unwrap());
        assert!(ring.offer(old + 10, TicketKey::generate(Cipher::Aes256Cbc).unwrap(), T0 + 10 * I).is_err());
    }

    #[test]
    fn epoch_keys_mirror_a_ring_into_a_fed_one() {
        let primary = ring_at(T0 + 5);
        let worker = Ring::fed(Cipher::Aes256Cbc, schedule(), Box::new(RandomKeys), T0 + 5).unwrap();
        for (epoch, material) in primary.epoch_keys(T0 + 5).unwrap() {
            worker.offer(epoch, TicketKey::from_layout(Cipher::Aes256Cbc, &material).unwrap(), T0 + 5).unwrap();
        }
        assert_eq!(current_name(&worker, T0 + 5), current_name(&primary, T0 + 5));
        assert_eq!(current_name(&worker, T0 + I), current_name(&primary, T0 + I));
    }

    #[test]
    fn a_derived_ring_started_late_still_opens_tickets_of_recent_epochs() {
        let early = derived(1, T0 + 5);
        let ticket = current_name(&early, T0 + 5);
        // A process started two epochs later (a restart, a new fleet member).
        let late = derived(1, T0 + 2 * I + 5);
        assert_eq!(decision(&late, &ticket, T0 + 2 * I + 5), Some(Decision::Renew));
        assert_eq!(late.state_of(&ticket, T0 + 2 * I + 5).unwrap(), Some(KeyState::Previous));
        // But not beyond the ticket lifetime.
        let much_later = derived(1, T0 + I + L + 1);
        assert_eq!(decision(&much_later, &ticket, T0 + I + L + 1), None);
    }
}
