//! `NativeRing`: the ring as `lib/ring.js` sees it: construction, the ring's own operations
//! and inspection. Its other concerns are `#[napi] impl NativeRing` blocks beside them: a
//! secret file (`secret_file.rs`), a shared store (`store.rs`), a cluster (`mirror.rs`),
//! edge servers (`edge.rs`) and callback mode (`callback_mode.rs`).

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::inspect::{summarize_session, TicketReport};
use super::{cipher_named, key_error, ring_error, schedule, scope_bytes, Result};
use crate::clock::now;
use crate::derive::DerivedKeys;
use crate::key::{hex, scrubbed, TicketKey};
use crate::ring::Ring;
use crate::secrets::SecretSet;
use crate::source::RandomKeys;

/// A key as `ring.keys()` shows it to JavaScript: the public name and the schedule.
#[napi(object)]
pub struct KeyDescription {
    pub name: String,
    pub state: String,
    /// Unix seconds.
    pub activates_at: f64,
    /// Unix seconds, or null while explicit keys are held until replaced.
    pub expires_at: Option<f64>,
    /// The fingerprint of the secret it was derived from, for a secret file's ring.
    pub secret: Option<String>,
}

/// `ring.stats()`: the core's `Stats` under their public names.
#[napi(object)]
pub struct RingStats {
    pub issued: f64,
    /// Tickets opened with a current or next key and not renewed (`Stats::resumed_unrenewed`).
    pub resumed: f64,
    pub renewed: f64,
    pub unknown_key: f64,
    /// Tickets whose key was held and wiped (`Stats::expired_key`).
    pub expired: f64,
    pub fallback_keys: f64,
}

/// The ring as the JavaScript layer sees it; `lib/ring.js` wraps it as `TicketKeyRing`.
#[napi]
pub struct NativeRing {
    pub(super) ring: Arc<Ring>,
    /// The secrets of a secret file's ring.
    pub(super) secrets: Option<Arc<SecretSet>>,
    /// Lines of the file that listed secrets already dropped when the ring was made.
    pub(super) stale_lines_at_start: Vec<u32>,
}

impl NativeRing {
    /// A ring with nothing besides its keys: no secret file.
    pub(super) fn of(ring: Ring) -> NativeRing {
        NativeRing { ring: Arc::new(ring), secrets: None, stale_lines_at_start: Vec::new() }
    }
}

#[napi]
impl NativeRing {
    /// A ring of CSPRNG keys on the schedule.
    #[napi(factory)]
    pub fn random(cipher: String, rotation_interval: f64, ticket_lifetime: f64) -> Result<NativeRing> {
        scrubbed(|| {
            let ring = Ring::random(cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?, now())
                .map_err(ring_error)?;
            Ok(NativeRing::of(ring))
        })
    }

    /// A ring of explicit keys (n keys in the cipher's layout); the first encrypts. `next`
    /// holds keys announced to encrypt after it (a HAProxy file's last line).
    #[napi(factory)]
    pub fn explicit(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        keys: BufferSlice,
        next: Option<BufferSlice>,
    ) -> Result<NativeRing> {
        scrubbed(|| {
            let cipher = cipher_named(&cipher)?;
            let keys = TicketKey::parse_many(cipher, &keys).map_err(key_error)?;
            let next = match next {
                Some(next) if !next.is_empty() => TicketKey::parse_many(cipher, &next).map_err(key_error)?,
                _ => Vec::new(),
            };
            let ring =
                Ring::explicit_with_next(cipher, schedule(rotation_interval, ticket_lifetime)?, keys, next, now())
                    .map_err(ring_error)?;
            Ok(NativeRing::of(ring))
        })
    }

    /// A ring whose epoch keys are derived from a fleet secret of at least 32 bytes, in
    /// `scope` (UTF-8, empty for none); it also opens the tickets of `previous_secrets`.
    #[napi(factory)]
    pub fn derived(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        secret: BufferSlice,
        scope: String,
        previous_secrets: Vec<BufferSlice>,
    ) -> Result<NativeRing> {
        scrubbed(|| {
            let scope = scope_bytes(&scope)?;
            let (cipher, schedule) = (cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?);
            let derived_ring = |secret: &[u8]| -> Result<Ring> {
                let source = DerivedKeys::scoped(secret, scope).map_err(key_error)?;
                Ring::with_source(cipher, schedule, Box::new(source), now()).map_err(ring_error)
            };
            let previous = previous_secrets.iter().map(|s| derived_ring(s)).collect::<Result<Vec<_>>>()?;
            let ring = derived_ring(&secret)?.also_opening(previous);
            Ok(NativeRing::of(ring))
        })
    }

    /// A ring fed with keys from outside (a store, a cluster's primary) through `offer`; it
    /// makes random keys of its own when they are late.
    #[napi(factory)]
    pub fn fed(cipher: String, rotation_interval: f64, ticket_lifetime: f64) -> Result<NativeRing> {
        scrubbed(|| {
            let ring = Ring::fed(
                cipher_named(&cipher)?,
                schedule(rotation_interval, ticket_lifetime)?,
                Box::new(RandomKeys),
                now(),
            )
            .map_err(ring_error)?;
            Ok(NativeRing::of(ring))
        })
    }

    /// How many epochs before the current one can still have live tickets: the keys a ring
    /// that starts late fetches from its store.
    #[napi(getter)]
    pub fn live_previous_epochs(&self) -> f64 {
        self.ring.schedule().live_previous_epochs() as f64
    }

    #[napi(getter)]
    pub fn cipher(&self) -> &'static str {
        self.ring.cipher().name()
    }

    #[napi]
    pub fn current_keys(&self) -> Result<Buffer> {
        scrubbed(|| {
            let layout = self.ring.current_layout(now()).map_err(ring_error)?;
            Ok(Buffer::from(&layout[..]))
        })
    }

    #[napi]
    pub fn set_keys(&self, keys: BufferSlice) -> Result<()> {
        scrubbed(|| {
            let keys = TicketKey::parse_many(self.ring.cipher(), &keys).map_err(key_error)?;
            self.ring.set_keys(keys, now()).map_err(ring_error)
        })
    }

    #[napi]
    pub fn rotate(&self) -> Result<()> {
        scrubbed(|| self.ring.rotate(now()).map_err(ring_error))
    }

    #[napi]
    pub fn keys(&self) -> Result<Vec<KeyDescription>> {
        scrubbed(|| {
            let keys = self.ring.keys(now()).map_err(ring_error)?;
            Ok(keys
                .into_iter()
                .map(|k| KeyDescription {
                    name: hex(&k.name),
                    state: k.state.as_str().to_owned(),
                    activates_at: k.activates_at as f64,
                    expires_at: k.expires_at.map(|t| t as f64),
                    secret: self.secrets.as_ref().and_then(|set| set.origin_of(&k.name)).map(|f| hex(&f)),
                })
                .collect())
        })
    }

    /// Which key sealed a ticket (from `getTLSTicket()`), its state, and the session inside.
    #[napi]
    pub fn inspect_ticket(&self, ticket: BufferSlice) -> Result<TicketReport> {
        scrubbed(|| {
            let mut seen = crate::inspect::inspect_ticket(&self.ring, &ticket, now()).map_err(ring_error)?;
            let mut secret = None;
            if let (Some(set), Some(name)) = (&self.secrets, seen.key_name) {
                if seen.state.is_some() {
                    secret = set.origin_of(&name);
                } else if let Some((fingerprint, opened)) =
                    set.with_other_key(&name, now(), |key| crate::ticket::open(key, &ticket))
                {
                    // Another listed secret's key: it opens the ticket, renewed under the current key.
                    seen.state = Some(crate::ring::KeyState::Previous);
                    seen.opened = opened;
                    secret = Some(fingerprint);
                }
            }
            let secret = secret.map(|f| hex(&f));
            let (session, error) = match seen.opened {
                Ok(der) => match summarize_session(&der) {
                    Ok(summary) => (Some(summary), None),
                    Err(e) => (None, Some(e.to_string())),
                },
                Err(e) => (None, Some(e.to_string())),
            };
            Ok(TicketReport {
                key_name: seen.key_name.map(|n| hex(&n)),
                key_state: seen.state.map_or("unknown", |s| s.as_str()).to_owned(),
                secret,
                session,
                error,
            })
        })
    }

    /// Rotates and wipes on schedule; `lib/ring.js` calls it from a timer.
    #[napi]
    pub fn tick(&self) {
        scrubbed(|| {
            let _ = self.ring.tick(now());
        })
    }

    #[napi]
    pub fn stats(&self) -> RingStats {
        let s = self.ring.stats();
        RingStats {
            issued: s.issued as f64,
            resumed: s.resumed_unrenewed as f64,
            renewed: s.renewed as f64,
            unknown_key: s.unknown_key as f64,
            expired: s.expired_key as f64,
            fallback_keys: s.fallback_keys as f64,
        }
    }

    /// The name (hex) of the fallback key counted last in `stats().fallbackKeys`, if any.
    #[napi(getter)]
    pub fn last_fallback_key(&self) -> Option<String> {
        self.ring.last_fallback_name().map(|n| hex(&n))
    }

    #[napi(getter)]
    pub fn destroyed(&self) -> bool {
        self.ring.is_destroyed()
    }

    #[napi]
    pub fn destroy(&self) {
        scrubbed(|| self.ring.destroy())
    }
}
