//! A fleet's secrets from a file (`new TicketKeyRing({ secretFile })`): up to eight secrets,
//! each with the time it starts to seal. Pure: every call takes the time as a parameter.
//!
//! - **Sealing.** The key of epoch `e` is derived, exactly as a `secret` ring derives it, from
//!   the secret with the latest activation at or before the epoch's start (the earliest secret
//!   seals every epoch before the first activation). Every process holding the same lines
//!   makes the same choice, whenever it read them.
//! - **Opening.** Every secret held opens the tickets of its own keys, of every live epoch
//!   (one derived ring per secret, like `previousSecrets`), including a secret whose time has
//!   not come.
//! - **Dropping.** A secret stops opening `ticket_lifetime` after a newer secret took over
//!   sealing (at the first epoch boundary at or after the newer one's activation), and is then
//!   wiped, even if the file still lists it: `drop_expired` says which lines can go, and such a
//!   line is ignored when read again.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::derive::{DerivedKeys, FINGERPRINT_LEN};
use crate::key::{is_all_zero, Cipher, KeyError, TicketKey, NAME_LEN};
use crate::ring::{Ring, RingError, Schedule};
use crate::source::KeySource;

/// The most secrets a file may list: each keeps a schedule of keys to open tickets with.
pub const MAX_SECRETS: usize = 8;

pub type Fingerprint = [u8; FINGERPRINT_LEN];

/// One line of a secret file, as the JavaScript layer parsed it.
pub struct SecretLine<'a> {
    /// The line number, for messages (which never quote a secret).
    pub line: u32,
    /// Unix seconds; 0 for a line with a secret only (active since the beginning of time).
    pub activates_at: u64,
    pub secret: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    Empty,
    TooMany {
        got: usize,
    },
    Short {
        line: u32,
        got: usize,
    },
    AllZero {
        line: u32,
    },
    SameSecret {
        line: u32,
        first: u32,
    },
    SameTime {
        line: u32,
        first: u32,
    },
    /// Every line lists a secret that was already dropped.
    AllDropped,
    Key(KeyError),
    Ring(RingError),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let min = crate::derive::MIN_SECRET_LEN;
        match self {
            SecretError::Empty => write!(f, "lists no secret"),
            SecretError::TooMany { got } => write!(f, "lists {got} secrets; at most {MAX_SECRETS} are taken"),
            SecretError::Short { line, got } => {
                write!(f, "line {line}: the secret must be at least {min} bytes, got {got} bytes")
            }
            SecretError::AllZero { line } => write!(f, "line {line}: the secret must not be all zeros"),
            SecretError::SameSecret { line, first } => write!(f, "line {line} repeats the secret of line {first}"),
            SecretError::SameTime { line, first } => {
                write!(f, "line {line} repeats the activation time of line {first}")
            }
            SecretError::AllDropped => write!(
                f,
                "lists only secrets that were dropped (a newer secret took over sealing more than a ticket lifetime ago)"
            ),
            SecretError::Key(e) => e.fmt(f),
            SecretError::Ring(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<KeyError> for SecretError {
    fn from(e: KeyError) -> SecretError {
        SecretError::Key(e)
    }
}

impl From<RingError> for SecretError {
    fn from(e: RingError) -> SecretError {
        SecretError::Ring(e)
    }
}

struct Entry {
    line: u32,
    activates_at: u64,
    fingerprint: Fingerprint,
    keys: Arc<DerivedKeys>,
    /// Every live key of this secret, to open tickets sealed with it by any process.
    opener: Ring,
}

/// What a secret does at a time, as `describe` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    pub fingerprint: Fingerprint,
    pub line: u32,
    pub activates_at: u64,
    /// The first epoch start at which it seals (0: from the beginning).
    pub seals_from: u64,
    /// When it stops opening and is wiped, once a newer secret is listed.
    pub drops_at: Option<u64>,
    /// "pending" (opens, seals later), "sealing", or "retired" (opens until `drops_at`).
    pub state: &'static str,
}

/// What reading a new version of the file changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub added: Vec<Fingerprint>,
    pub removed: Vec<Fingerprint>,
    /// Lines of secrets already dropped: ignored, they can go.
    pub stale_lines: Vec<u32>,
}

/// A secret that was dropped: its line can go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub fingerprint: Fingerprint,
    pub line: u32,
}

/// The secrets of a file and the keys they make; a ring's key source.
pub struct SecretSet {
    cipher: Cipher,
    schedule: Schedule,
    scope: Vec<u8>,
    /// By activation time, earliest first.
    entries: RwLock<Vec<Entry>>,
    /// Fingerprints (public) of the secrets dropped, never taken again.
    dropped: Mutex<Vec<Fingerprint>>,
    /// Which secret each key held was derived from, by key name (both public).
    origins: Mutex<HashMap<[u8; NAME_LEN], Fingerprint>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SecretSet {
    /// The secrets of `lines` at `now`; the ring that seals with them comes from [`SecretSet::ring`].
    pub fn new(
        cipher: Cipher,
        schedule: Schedule,
        scope: &[u8],
        lines: &[SecretLine<'_>],
        now: u64,
    ) -> Result<(Arc<SecretSet>, Update), SecretError> {
        let set = Arc::new(SecretSet {
            cipher,
            schedule,
            scope: scope.to_vec(),
            entries: RwLock::new(Vec::new()),
            dropped: Mutex::new(Vec::new()),
            origins: Mutex::new(HashMap::new()),
        });
        let update = set.replace(lines, now)?;
        Ok((set, update))
    }

    /// A ring that seals with these secrets and opens with every one of them.
    pub fn ring(self: &Arc<SecretSet>, now: u64) -> Result<Ring, RingError> {
        Ring::with_source(self.cipher, self.schedule, Box::new(SecretSource(self.clone())), now)
    }

    fn check(lines: &[SecretLine<'_>]) -> Result<(), SecretError> {
        if lines.is_empty() {
            return Err(SecretError::Empty);
        }
        if lines.len() > MAX_SECRETS {
            return Err(SecretError::TooMany { got: lines.len() });
        }
        for (i, l) in lines.iter().enumerate() {
            if l.secret.len() < crate::derive::MIN_SECRET_LEN {
                return Err(SecretError::Short { line: l.line, got: l.secret.len() });
            }
            if is_all_zero(l.secret) {
                return Err(SecretError::AllZero { line: l.line });
            }
            if let Some(first) = lines[..i].iter().find(|o| o.activates_at == l.activates_at) {
                return Err(SecretError::SameTime { line: l.line, first: first.line });
            }
        }
        Ok(())
    }

    /// Takes a new version of the file, refused whole (changing nothing) when a line is. Keeps
    /// the keys of secrets still listed; wipes those no longer listed; ignores lines whose
    /// secret was dropped. The ring's next key must then be made again
    /// ([`Ring::reschedule_next`]).
    pub fn replace(&self, lines: &[SecretLine<'_>], now: u64) -> Result<Update, SecretError> {
        SecretSet::check(lines)?;
        let mut fresh: Vec<(u32, u64, Fingerprint, Arc<DerivedKeys>)> = Vec::with_capacity(lines.len());
        for l in lines {
            let keys = DerivedKeys::scoped(l.secret, &self.scope)?;
            let fingerprint = keys.fingerprint()?;
            if let Some(first) = fresh.iter().find(|f| f.2 == fingerprint) {
                keys.wipe();
                return Err(SecretError::SameSecret { line: l.line, first: first.0 });
            }
            fresh.push((l.line, l.activates_at, fingerprint, Arc::new(keys)));
        }
        let mut update = Update::default();
        {
            let dropped = lock(&self.dropped);
            fresh.retain(|f| {
                let gone = dropped.contains(&f.2);
                if gone {
                    update.stale_lines.push(f.0);
                    f.3.wipe();
                }
                !gone
            });
        }
        if fresh.is_empty() {
            return Err(SecretError::AllDropped);
        }
        fresh.sort_by_key(|f| f.1);
        // Secrets past their drop time already (a file read long after its last change).
        let activations: Vec<u64> = fresh.iter().map(|f| f.1).collect();
        let mut kept = Vec::with_capacity(fresh.len());
        for (i, f) in fresh.into_iter().enumerate() {
            if self.drop_time(&activations, i).is_some_and(|t| t <= now) {
                update.stale_lines.push(f.0);
                f.3.wipe();
                lock(&self.dropped).push(f.2);
                continue;
            }
            kept.push(f);
        }
        update.stale_lines.sort_unstable();
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let mut old: Vec<Entry> = std::mem::take(&mut *entries);
        for (line, activates_at, fingerprint, keys) in kept {
            if let Some(i) = old.iter().position(|e| e.fingerprint == fingerprint) {
                let mut entry = old.swap_remove(i);
                keys.wipe();
                entry.line = line;
                entry.activates_at = activates_at;
                entries.push(entry);
            } else {
                let opener = Ring::with_source(self.cipher, self.schedule, Box::new(keys.clone()), now)?;
                entries.push(Entry { line, activates_at, fingerprint, keys, opener });
                update.added.push(fingerprint);
            }
        }
        entries.sort_by_key(|e| e.activates_at);
        for entry in old {
            update.removed.push(entry.fingerprint);
            entry.keys.wipe();
            entry.opener.destroy();
        }
        Ok(update)
    }

    /// The first epoch start at which the secret at `index` (of `activations`, sorted) seals.
    fn seals_from(&self, activations: &[u64], index: usize) -> u64 {
        if index == 0 {
            return 0;
        }
        activations[index].div_ceil(self.schedule.rotation_interval).saturating_mul(self.schedule.rotation_interval)
    }

    /// When the secret at `index` stops opening: a ticket lifetime after a newer one took over.
    fn drop_time(&self, activations: &[u64], index: usize) -> Option<u64> {
        (index + 1 < activations.len())
            .then(|| self.seals_from(activations, index + 1).saturating_add(self.schedule.ticket_lifetime))
    }

    /// The index of the secret that seals the epoch starting at `start`.
    fn sealing(entries: &[Entry], start: u64) -> usize {
        entries.iter().rposition(|e| e.activates_at <= start).unwrap_or(0)
    }

    /// Wipes the secrets whose time to go has come, and says which.
    pub fn drop_expired(&self, now: u64) -> Vec<Dropped> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let activations: Vec<u64> = entries.iter().map(|e| e.activates_at).collect();
        let expired: Vec<bool> =
            (0..entries.len()).map(|i| self.drop_time(&activations, i).is_some_and(|t| t <= now)).collect();
        let mut out = Vec::new();
        let mut i = 0;
        entries.retain(|e| {
            let gone = expired[i];
            i += 1;
            if gone {
                e.keys.wipe();
                e.opener.destroy();
                out.push(Dropped { fingerprint: e.fingerprint, line: e.line });
            }
            !gone
        });
        drop(entries);
        if !out.is_empty() {
            lock(&self.dropped).extend(out.iter().map(|d| d.fingerprint));
            let mut origins = lock(&self.origins);
            origins.retain(|_, fp| !out.iter().any(|d| d.fingerprint == *fp));
        }
        out
    }

    /// Runs `read` with a key named `name` of a listed secret other than the ring's own keys
    /// (`inspectTicket()`), if one opens at `now`; with that secret's fingerprint.
    pub fn with_other_key<R>(
        &self,
        name: &[u8; NAME_LEN],
        now: u64,
        read: impl FnOnce(&TicketKey) -> R,
    ) -> Option<(Fingerprint, R)> {
        let mut read = Some(read);
        let mut out = None;
        let fingerprint = self.open_with(name, now, &mut |key| out = read.take().map(|read| read(key)))?;
        out.map(|r| (fingerprint, r))
    }

    /// Runs `open` with the key named `name` of a listed secret that still opens at `now`;
    /// returns that secret's fingerprint.
    fn open_with(&self, name: &[u8; NAME_LEN], now: u64, open: &mut dyn FnMut(&TicketKey)) -> Option<Fingerprint> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let activations: Vec<u64> = entries.iter().map(|e| e.activates_at).collect();
        for (i, entry) in entries.iter().enumerate() {
            // Stops opening on time, even before `drop_expired` wipes it.
            if self.drop_time(&activations, i).is_some_and(|t| t <= now) {
                continue;
            }
            if let Ok(Some(())) = entry.opener.with_key(name, now, |key, _| open(key)) {
                return Some(entry.fingerprint);
            }
        }
        None
    }

    /// The secret each held key came from; forgets the keys no longer held.
    pub fn origin_of(&self, name: &[u8; NAME_LEN]) -> Option<Fingerprint> {
        lock(&self.origins).get(name).copied()
    }

    /// Forgets the origins of keys that are not in `held`.
    pub fn forget_origins_except(&self, held: &[[u8; NAME_LEN]]) {
        lock(&self.origins).retain(|name, _| held.contains(name));
    }

    /// The secret that seals the epoch running at `now`: for the tests, which check which
    /// secret the schedule picks.
    #[cfg(test)]
    pub fn sealing_at(&self, now: u64) -> Option<Fingerprint> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let interval = self.schedule.rotation_interval;
        let start = now / interval * interval;
        entries.get(SecretSet::sealing(&entries, start)).map(|e| e.fingerprint)
    }

    /// Every secret held, earliest first, without the secrets.
    pub fn describe(&self, now: u64) -> Vec<SecretInfo> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let activations: Vec<u64> = entries.iter().map(|e| e.activates_at).collect();
        let interval = self.schedule.rotation_interval;
        let sealing = SecretSet::sealing(&entries, now / interval * interval);
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| SecretInfo {
                fingerprint: e.fingerprint,
                line: e.line,
                activates_at: e.activates_at,
                seals_from: self.seals_from(&activations, i),
                drops_at: self.drop_time(&activations, i),
                state: match i.cmp(&sealing) {
                    std::cmp::Ordering::Less => "retired",
                    std::cmp::Ordering::Equal => "sealing",
                    std::cmp::Ordering::Greater => "pending",
                },
            })
            .collect()
    }

    fn wipe(&self) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        for e in entries.drain(..) {
            e.keys.wipe();
            e.opener.destroy();
        }
        lock(&self.origins).clear();
    }
}

/// The `KeySource` of a secret file's ring.
struct SecretSource(Arc<SecretSet>);

impl KeySource for SecretSource {
    fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        let set = &self.0;
        let entries = set.entries.read().unwrap_or_else(PoisonError::into_inner);
        let start = epoch.saturating_mul(set.schedule.rotation_interval);
        let entry = entries.get(SecretSet::sealing(&entries, start)).ok_or(KeyError::Wiped)?;
        let key = entry.keys.key_for_epoch(epoch, cipher)?;
        lock(&set.origins).insert(*key.name(), entry.fingerprint);
        Ok(key)
    }

    fn reproducible(&self) -> bool {
        true
    }

    fn wipe(&self) {
        self.0.wipe()
    }

    fn open_other(&self, name: &[u8; NAME_LEN], now: u64, open: &mut dyn FnMut(&TicketKey)) -> bool {
        self.0.open_with(name, now, open).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Decision, KeyState};

    const I: u64 = 100;
    const L: u64 = 250;
    const T0: u64 = 1_000_000;

    fn schedule() -> Schedule {
        Schedule::new(I, L).unwrap()
    }

    fn line(n: u32, activates_at: u64, secret: &[u8; 32]) -> SecretLine<'_> {
        SecretLine { line: n, activates_at, secret }
    }

    fn file_ring(lines: &[SecretLine<'_>], now: u64) -> (Arc<SecretSet>, Ring) {
        let (set, _) = SecretSet::new(Cipher::Aes256Cbc, schedule(), b"", lines, now).unwrap();
        let ring = set.ring(now).unwrap();
        (set, ring)
    }

    fn code_ring(secret: &[u8; 32], now: u64) -> Ring {
        let source = DerivedKeys::new(secret).unwrap();
        Ring::with_source(Cipher::Aes256Cbc, schedule(), Box::new(source), now).unwrap()
    }

    fn current(ring: &Ring, now: u64) -> [u8; 16] {
        ring.encrypt_with(now, |k| Some(*k.name())).unwrap()
    }

    fn opens(ring: &Ring, name: &[u8; 16], now: u64) -> Option<Decision> {
        ring.decrypt_with(name, now, |_, d| Some(d)).ok()
    }

    const A: &[u8; 32] = &[0xa1; 32];
    const B: &[u8; 32] = &[0xb2; 32];
    const C: &[u8; 32] = &[0xc3; 32];

    fn fp(secret: &[u8; 32]) -> Fingerprint {
        DerivedKeys::new(secret).unwrap().fingerprint().unwrap()
    }

    #[test]
    fn a_bare_secret_derives_exactly_the_keys_of_a_secret_ring() {
        let (set, ring) = file_ring(&[line(1, 0, A)], T0 + 5);
        let code = code_ring(A, T0 + 5);
        assert_eq!(ring.keys(T0 + 5).unwrap(), code.keys(T0 + 5).unwrap());
        assert_eq!(set.origin_of(&current(&ring, T0 + 5)), Some(fp(A)));
        // Scoped alike.
        let (_, scoped) = {
            let (set, _) = SecretSet::new(Cipher::Aes256Cbc, schedule(), b"eu", &[line(1, 0, A)], T0).unwrap();
            let r = set.ring(T0).unwrap();
            (set, r)
        };
        let code_eu =
            Ring::with_source(Cipher::Aes256Cbc, schedule(), Box::new(DerivedKeys::scoped(A, b"eu").unwrap()), T0)
                .unwrap();
        assert_eq!(current(&scoped, T0), current(&code_eu, T0));
    }

    #[test]
    fn an_epoch_is_sealed_by_the_latest_secret_active_at_its_start() {
        // B activates in the middle of epoch T0/I + 3: it seals from T0 + 4I.
        let at = T0 + 3 * I + 40;
        let (set, ring) = file_ring(&[line(1, 0, A), line(2, at, B)], T0);
        let (a, b) = (code_ring(A, T0), code_ring(B, T0));
        for t in [T0, T0 + 3 * I, at, T0 + 4 * I - 1] {
            assert_eq!(current(&ring, t), current(&a, t), "A seals at {t}");
            assert_eq!(set.sealing_at(t), Some(fp(A)));
        }
        for t in [T0 + 4 * I, T0 + 5 * I + 7] {
            assert_eq!(current(&ring, t), current(&b, t), "B seals at {t}");
            assert_eq!(set.origin_of(&current(&ring, t)), Some(fp(B)));
        }
        // A file whose only secret has a time to come: it seals already.
        let (_, early) = file_ring(&[line(1, T0 + 10 * I, C)], T0);
        assert_eq!(current(&early, T0), current(&code_ring(C, T0), T0));
    }

    #[test]
    fn every_listed_secret_opens_its_tickets_even_before_its_time() {
        let (_, ring) = file_ring(&[line(1, 0, A), line(2, T0 + 50 * I, B)], T0);
        let (a, b, c) = (code_ring(A, T0), code_ring(B, T0), code_ring(C, T0));
        assert_eq!(opens(&ring, &current(&b, T0), T0), Some(Decision::Renew), "not-yet-active B opens");
        assert_eq!(opens(&ring, &current(&a, T0), T0), Some(Decision::Resume));
        assert_eq!(opens(&ring, &current(&c, T0), T0), None, "an unlisted secret does not");
        // A process that has not read the change yet seals with A after B's time: still opened.
        let late = T0 + 50 * I + 5;
        assert_eq!(opens(&ring, &current(&a, late), late), Some(Decision::Renew));
    }

    #[test]
    fn a_change_re_derives_the_next_key_and_never_the_current_or_previous() {
        let (set, ring) = file_ring(&[line(1, 0, A)], T0 + 10);
        let before = ring.keys(T0 + 10).unwrap();
        let (current_a, next_a) = (before[1].name, before[0].name);
        // B activates at the start of the next epoch.
        let update = set.replace(&[line(1, 0, A), line(2, T0 + I - 30, B)], T0 + 20).unwrap();
        assert_eq!(update.added, vec![fp(B)]);
        ring.reschedule_next(T0 + 20).unwrap();
        let after = ring.keys(T0 + 20).unwrap();
        assert_eq!(after[1].name, current_a, "the current key stays");
        assert_eq!(after[1].state, KeyState::Current);
        let b = code_ring(B, T0);
        assert_eq!(after[0].name, current(&b, T0 + I), "the next key is B's");
        assert_eq!(set.origin_of(&after[0].name), Some(fp(B)));
        // A peer that sealed with A's old next key (clock ahead, file not read yet) still resumes.
        assert_eq!(opens(&ring, &next_a, T0 + I + 1), Some(Decision::Renew));
        assert_eq!(current(&ring, T0 + I), current(&b, T0 + I));
    }

    #[test]
    fn a_secret_is_dropped_and_wiped_a_lifetime_after_a_newer_one_took_over() {
        let at = T0 + 2 * I; // on a boundary
        let (set, ring) = file_ring(&[line(1, 0, A), line(3, at, B)], T0);
        let old_ticket = current(&ring, at - 1);
        let a = code_ring(A, T0);
        let drops = set.describe(T0);
        assert_eq!(drops[0].drops_at, Some(at + L));
        assert_eq!((drops[0].state, drops[1].state), ("sealing", "pending"));
        assert!(set.drop_expired(at + L - 1).is_empty());
        assert_eq!(opens(&ring, &current(&a, at + L - 2), at + L - 2), Some(Decision::Renew));
        assert_eq!(opens(&ring, &old_ticket, at + L - 2), Some(Decision::Renew));
        // Stops opening on time, before anything wipes it.
        assert_eq!(opens(&ring, &current(&a, at + L), at + L), None);
        assert_eq!(set.drop_expired(at + L), vec![Dropped { fingerprint: fp(A), line: 1 }]);
        assert_eq!(set.describe(at + L).len(), 1);
        // Still listed: ignored, and said so.
        let update = set.replace(&[line(1, 0, A), line(3, at, B)], at + L + 1).unwrap();
        assert_eq!(update.stale_lines, vec![1]);
        assert!(update.added.is_empty() && update.removed.is_empty());
        assert_eq!(set.describe(at + L + 1).len(), 1);
        assert_eq!(opens(&ring, &old_ticket, at + L + 1), None);
        // A file read long after: the old line is stale from the start.
        let (late, _) =
            SecretSet::new(Cipher::Aes256Cbc, schedule(), b"", &[line(1, 0, A), line(2, at, B)], at + L).unwrap();
        assert_eq!(late.describe(at + L).len(), 1);
    }

    #[test]
    fn the_wiped_secret_derives_nothing() {
        let (set, ring) = file_ring(&[line(1, 0, A), line(2, T0 + I, B)], T0);
        set.drop_expired(T0 + I + L);
        // The ring rotates on with B only.
        assert_eq!(current(&ring, T0 + I + L), current(&code_ring(B, T0), T0 + I + L));
        assert_eq!(set.sealing_at(T0 + I + L), Some(fp(B)));
        ring.destroy();
        assert!(set.describe(T0).is_empty());
    }

    #[test]
    fn refused_files_change_nothing() {
        let (set, _ring) = file_ring(&[line(1, 0, A)], T0);
        let short = [1u8; 31];
        let zero = [0u8; 32];
        let cases: Vec<(Vec<SecretLine<'_>>, SecretError)> = vec![
            (vec![], SecretError::Empty),
            (vec![SecretLine { line: 4, activates_at: 0, secret: &short }], SecretError::Short { line: 4, got: 31 }),
            (vec![SecretLine { line: 2, activates_at: 0, secret: &zero }], SecretError::AllZero { line: 2 }),
            (vec![line(1, 0, A), line(3, 5, A)], SecretError::SameSecret { line: 3, first: 1 }),
            (vec![line(1, 5, A), line(2, 5, B)], SecretError::SameTime { line: 2, first: 1 }),
            ((1..=9).map(|n| line(n, n as u64, A)).collect(), SecretError::TooMany { got: 9 }),
        ];
        for (lines, error) in cases {
            assert_eq!(set.replace(&lines, T0).unwrap_err(), error);
            assert!(!error.to_string().contains("a1a1"), "{error}");
        }
        assert_eq!(set.describe(T0).len(), 1);
        assert_eq!(set.sealing_at(T0), Some(fp(A)));
    }

    #[test]
    fn another_secrets_key_is_found_with_its_fingerprint() {
        let (set, ring) = file_ring(&[line(1, 0, A), line(2, T0 + 50 * I, B)], T0);
        let b_name = current(&code_ring(B, T0), T0);
        assert_eq!(set.with_other_key(&b_name, T0, |k| *k.name()), Some((fp(B), b_name)));
        assert_eq!(set.with_other_key(&current(&code_ring(C, T0), T0), T0, |_| ()), None);
        assert_eq!(ring.stats().renewed, 0, "counts nothing");
    }

    #[test]
    fn a_removed_secret_is_wiped_and_its_keys_held_stay() {
        let (set, ring) = file_ring(&[line(1, 0, A), line(2, T0 + 5 * I, B)], T0);
        let sealed = current(&ring, T0);
        let update = set.replace(&[line(1, 0, A)], T0 + 1).unwrap();
        assert_eq!(update.removed, vec![fp(B)]);
        ring.reschedule_next(T0 + 1).unwrap();
        assert_eq!(opens(&ring, &current(&code_ring(B, T0), T0), T0 + 1), None);
        assert_eq!(opens(&ring, &sealed, T0 + 1), Some(Decision::Resume));
    }
}
