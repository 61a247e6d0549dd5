//! `NativeRing`: the ring as `lib/ring.js` sees it, and the two calls of callback mode.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::inspect::{summarize_session, TicketReport};
use super::store::{NativeClusterInbox, NativeWrapper};
use super::{
    cipher_named, key_error, key_name, mirror_error, ring_error, schedule, scratch_layout, whole_seconds, Error,
    Result, TicketOutcome, INVALID_ARG_VALUE, OUT_OF_RANGE, UNOPENABLE,
};
use crate::clock::now;
use crate::derive::{self, DerivedKeys, MAX_SCOPE_LEN};
use crate::edge::{edge_keys, EdgeFormat};
use crate::key::{fill_random, hex, Cipher, StackScrub, TicketKey};
use crate::mirror;
use crate::ring::{Decision, Miss, Ring};
use crate::secrets::{SecretError, SecretLine, SecretSet};
use crate::source::RandomKeys;
use crate::wrap::WrapError;

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

/// Keys for another server that follows the ring, in its format (`crate::edge`).
#[napi(object)]
pub struct EdgeKeyExport {
    /// The keys in the server's format; the caller wipes it once written or sent.
    pub keys: Buffer,
    /// The public name (hex) of each slot's key in order, null for a random filler.
    pub names: Vec<Option<String>>,
    /// Previous keys the ring holds that did not fit.
    pub left_out: u32,
}

#[napi(object)]
pub struct RingStats {
    pub issued: f64,
    pub resumed: f64,
    pub renewed: f64,
    pub unknown_key: f64,
    pub expired: f64,
    pub fallback_keys: f64,
}

/// The ring as the JavaScript layer sees it; `lib/ring.js` wraps it as `TicketKeyRing`.
#[napi]
pub struct NativeRing {
    pub(super) ring: Arc<Ring>,
    /// The session id context of a secret-derived ring, in hex.
    session_id_context: Option<String>,
    /// The secrets of a secret file's ring.
    secrets: Option<Arc<SecretSet>>,
    /// Lines of the file that listed secrets already dropped when the ring was made.
    stale_lines_at_start: Vec<u32>,
}

/// A secret of a secret file's ring as `ring.secrets()` shows it: never the secret.
#[napi(object)]
pub struct SecretDescription {
    /// 8 bytes of an HKDF expansion of the secret, in hex.
    pub fingerprint: String,
    pub line: u32,
    /// Unix seconds; 0 for a line without a time.
    pub activates_at: f64,
    /// The first epoch start at which it seals, Unix seconds.
    pub seals_from: f64,
    /// When it stops opening tickets and is wiped, once a newer secret is listed.
    pub drops_at: Option<f64>,
    /// "pending", "sealing" or "retired".
    pub state: String,
}

/// What a new version of a secret file changed.
#[napi(object)]
pub struct SecretUpdate {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Lines whose secret was dropped already: ignored, they can go.
    pub stale_lines: Vec<u32>,
}

/// A secret dropped: it opens nothing any more and is wiped.
#[napi(object)]
pub struct DroppedSecret {
    pub fingerprint: String,
    pub line: u32,
}

fn secret_lines<'a>(lines: &[u32], activations: &[f64], secrets: &'a [BufferSlice]) -> Result<Vec<SecretLine<'a>>> {
    if lines.len() != secrets.len() || activations.len() != secrets.len() {
        return Err(Error::new(super::INVALID_ARG_VALUE, "lines, activations and secrets differ in length".to_owned()));
    }
    let mut out = Vec::with_capacity(secrets.len());
    for ((line, at), secret) in lines.iter().zip(activations).zip(secrets) {
        out.push(SecretLine { line: *line, activates_at: whole_seconds("activation", *at)?, secret });
    }
    Ok(out)
}

fn secret_error(e: SecretError) -> Error {
    match e {
        SecretError::Ring(r) => ring_error(r),
        SecretError::Key(k) => key_error(k),
        other => Error::new(super::INVALID_ARG_VALUE, other.to_string()),
    }
}

impl NativeRing {
    /// A ring with nothing besides its keys: no session id context of its own, no secret file.
    fn of(ring: Ring) -> NativeRing {
        NativeRing { ring: Arc::new(ring), session_id_context: None, secrets: None, stale_lines_at_start: Vec::new() }
    }
}

#[napi]
impl NativeRing {
    /// A ring of CSPRNG keys on the schedule.
    #[napi(factory)]
    pub fn random(cipher: String, rotation_interval: f64, ticket_lifetime: f64) -> Result<NativeRing> {
        let _scrub = StackScrub;
        let ring = Ring::random(cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?, now())
            .map_err(ring_error)?;
        Ok(NativeRing::of(ring))
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
        let _scrub = StackScrub;
        let cipher = cipher_named(&cipher)?;
        let keys = TicketKey::parse_many(cipher, &keys).map_err(key_error)?;
        let next = match next {
            Some(next) if !next.is_empty() => TicketKey::parse_many(cipher, &next).map_err(key_error)?,
            _ => Vec::new(),
        };
        let ring = Ring::explicit_with_next(cipher, schedule(rotation_interval, ticket_lifetime)?, keys, next, now())
            .map_err(ring_error)?;
        Ok(NativeRing::of(ring))
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
        let _scrub = StackScrub;
        if scope.len() > MAX_SCOPE_LEN {
            return Err(Error::new(OUT_OF_RANGE, format!(
                "The value of \"options.scope\" is out of range. It must be at most {MAX_SCOPE_LEN} bytes. Received {} bytes",
                scope.len()
            )));
        }
        let (cipher, schedule) = (cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?);
        let derived_ring = |secret: &[u8]| -> Result<Ring> {
            let source = DerivedKeys::scoped(secret, scope.as_bytes()).map_err(key_error)?;
            Ring::with_source(cipher, schedule, Box::new(source), now()).map_err(ring_error)
        };
        let previous = previous_secrets.iter().map(|s| derived_ring(s)).collect::<Result<Vec<_>>>()?;
        let ring = derived_ring(&secret)?.also_opening(previous);
        let context = hex(&derive::session_id_context(scope.as_bytes()));
        Ok(NativeRing {
            ring: Arc::new(ring),
            session_id_context: Some(context),
            secrets: None,
            stale_lines_at_start: Vec::new(),
        })
    }

    /// A ring whose keys come from the secrets of a file: line numbers, activations (Unix
    /// seconds, 0 for none) and secrets, one each per line, in `scope` (empty for none).
    #[napi(factory)]
    pub fn from_secret_file(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        scope: String,
        lines: Vec<u32>,
        activations: Vec<f64>,
        secrets: Vec<BufferSlice>,
    ) -> Result<NativeRing> {
        let _scrub = StackScrub;
        if scope.len() > MAX_SCOPE_LEN {
            return Err(Error::new(OUT_OF_RANGE, format!(
                "The value of \"options.scope\" is out of range. It must be at most {MAX_SCOPE_LEN} bytes. Received {} bytes",
                scope.len()
            )));
        }
        let (cipher, schedule) = (cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?);
        let lines = secret_lines(&lines, &activations, &secrets)?;
        let (set, update) = SecretSet::new(cipher, schedule, scope.as_bytes(), &lines, now()).map_err(secret_error)?;
        let ring = set.ring(now()).map_err(ring_error)?;
        let context = hex(&derive::session_id_context(scope.as_bytes()));
        Ok(NativeRing {
            ring: Arc::new(ring),
            session_id_context: Some(context),
            secrets: Some(set),
            stale_lines_at_start: update.stale_lines,
        })
    }

    /// Whether the ring's keys come from a secret file.
    #[napi(getter)]
    pub fn is_secret_file(&self) -> bool {
        self.secrets.is_some()
    }

    /// Lines of the secret file that listed secrets already dropped when the ring was made.
    #[napi(getter)]
    pub fn stale_secret_lines(&self) -> Vec<u32> {
        self.stale_lines_at_start.clone()
    }

    /// Takes a new version of the secret file (refused whole, changing nothing, when a line
    /// is), and makes the next key again from it.
    #[napi]
    pub fn update_secrets(
        &self,
        lines: Vec<u32>,
        activations: Vec<f64>,
        secrets: Vec<BufferSlice>,
    ) -> Result<SecretUpdate> {
        let _scrub = StackScrub;
        let set = self.secret_set()?;
        let lines = secret_lines(&lines, &activations, &secrets)?;
        let update = set.replace(&lines, now()).map_err(secret_error)?;
        self.ring.reschedule_next(now()).map_err(ring_error)?;
        Ok(SecretUpdate {
            added: update.added.iter().map(|f| hex(f)).collect(),
            removed: update.removed.iter().map(|f| hex(f)).collect(),
            stale_lines: update.stale_lines,
        })
    }

    /// Drops and wipes the secrets whose time to go has come; `lib/` calls it after each tick.
    #[napi]
    pub fn drop_secrets(&self) -> Result<Vec<DroppedSecret>> {
        let _scrub = StackScrub;
        let set = self.secret_set()?;
        let dropped = set.drop_expired(now());
        // Called after every epoch boundary: the origins of keys no longer held go too.
        let held: Vec<_> = self.ring.keys(now()).map_err(ring_error)?.into_iter().map(|k| k.name).collect();
        set.forget_origins_except(&held);
        Ok(dropped.into_iter().map(|d| DroppedSecret { fingerprint: hex(&d.fingerprint), line: d.line }).collect())
    }

    /// The secrets of a secret file's ring, earliest first; never a secret.
    #[napi]
    pub fn secrets(&self) -> Result<Vec<SecretDescription>> {
        let set = self.secret_set()?;
        Ok(set
            .describe(now())
            .into_iter()
            .map(|s| SecretDescription {
                fingerprint: hex(&s.fingerprint),
                line: s.line,
                activates_at: s.activates_at as f64,
                seals_from: s.seals_from as f64,
                drops_at: s.drops_at.map(|t| t as f64),
                state: s.state.to_owned(),
            })
            .collect())
    }

    fn secret_set(&self) -> Result<&Arc<SecretSet>> {
        self.secrets.as_ref().ok_or_else(|| {
            Error::new(super::INVALID_STATE, "the ring's keys do not come from a secret file".to_owned())
        })
    }

    /// A ring fed with keys from outside (a store, a cluster's primary) through `offer`; it
    /// makes random keys of its own when they are late.
    #[napi(factory)]
    pub fn fed(cipher: String, rotation_interval: f64, ticket_lifetime: f64) -> Result<NativeRing> {
        let _scrub = StackScrub;
        let ring = Ring::fed(
            cipher_named(&cipher)?,
            schedule(rotation_interval, ticket_lifetime)?,
            Box::new(RandomKeys),
            now(),
        )
        .map_err(ring_error)?;
        Ok(NativeRing::of(ring))
    }

    /// A ring fed from a store whose keys `wrapper` opens: when they are late it derives the
    /// key every member of the fleet derives alike from the wrapping secret, `prefix`, the
    /// interval, the cipher and the epoch.
    #[napi(factory)]
    pub fn fed_derived(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        wrapper: &NativeWrapper,
        prefix: String,
    ) -> Result<NativeRing> {
        let _scrub = StackScrub;
        let schedule = schedule(rotation_interval, ticket_lifetime)?;
        let fallback = wrapper.fallback.keys(&prefix, schedule.rotation_interval);
        let ring = Ring::fed(cipher_named(&cipher)?, schedule, Box::new(fallback), now()).map_err(ring_error)?;
        Ok(NativeRing::of(ring))
    }

    /// For a fed ring whose store did not answer: the fleet's fallback key of the running
    /// epoch in place of a random start-up key, and with `past` those of recent epochs, to
    /// open tickets only. Returns how many keys it made.
    #[napi]
    pub fn fall_back_now(&self, past: bool) -> Result<u32> {
        let _scrub = StackScrub;
        self.ring.fall_back_now(past, now()).map_err(ring_error)
    }

    #[napi(getter)]
    pub fn session_id_context(&self) -> Option<String> {
        self.session_id_context.clone()
    }

    /// Opens a key that `NativeWrapper.sealFresh` sealed and takes it, without the key ever
    /// reaching JavaScript.
    #[napi]
    pub fn offer_wrapped(
        &self,
        wrapper: &NativeWrapper,
        prefix: String,
        epoch: f64,
        wrapped: BufferSlice,
    ) -> Result<bool> {
        let _scrub = StackScrub;
        let epoch = whole_seconds("epoch", epoch)?;
        let (cipher, interval) = (self.ring.cipher(), self.ring.schedule().rotation_interval);
        let key = wrapper.wrapper.open(&wrapped, &prefix, epoch, cipher, interval).map_err(|e| match e {
            WrapError::Unopenable => Error::new(UNOPENABLE, e.to_string()),
            WrapError::Key(k) => key_error(k),
        })?;
        self.ring.offer(epoch, key, now()).map_err(ring_error)
    }

    /// The key this ring holds for `epoch`, sealed as `NativeWrapper.sealFresh` seals a new
    /// one, or null: what a process writes back to a store that lost it.
    #[napi]
    pub fn seal_held(&self, wrapper: &NativeWrapper, prefix: String, epoch: f64) -> Result<Option<Buffer>> {
        let _scrub = StackScrub;
        let epoch = whole_seconds("epoch", epoch)?;
        let interval = self.ring.schedule().rotation_interval;
        let sealed = self
            .ring
            .with_epoch_key(epoch, now(), |key| wrapper.wrapper.seal(key, &prefix, epoch, interval))
            .map_err(ring_error)?;
        Ok(sealed.transpose().map_err(key_error)?.map(Buffer::from))
    }

    /// The fallback key of `epoch`, sealed as `sealHeld` seals, or null when the ring's
    /// fallbacks are random: what a member proposes for the next epoch after an outage.
    #[napi]
    pub fn seal_fallback(&self, wrapper: &NativeWrapper, prefix: String, epoch: f64) -> Result<Option<Buffer>> {
        let _scrub = StackScrub;
        let epoch = whole_seconds("epoch", epoch)?;
        let interval = self.ring.schedule().rotation_interval;
        let sealed = self
            .ring
            .with_fallback_key(epoch, |key| wrapper.wrapper.seal(key, &prefix, epoch, interval))
            .map_err(ring_error)?;
        Ok(sealed.transpose().map_err(key_error)?.map(Buffer::from))
    }

    /// The key of every epoch held, sealed to one cluster worker's public key for its ring
    /// named `channel`.
    #[napi]
    pub fn seal_epoch_keys_to(&self, worker_public_key: BufferSlice, channel: String) -> Result<Buffer> {
        let _scrub = StackScrub;
        let keys = self.ring.epoch_keys(now()).map_err(ring_error)?;
        let sealed = mirror::seal_to(&worker_public_key, &channel, self.ring.cipher(), self.ring.schedule(), &keys);
        Ok(sealed.map_err(mirror_error)?.into())
    }

    /// The ring's keys for nginx key files or HAProxy's runtime API (`format`: 'nginx' or
    /// 'haproxy'), with `previous` previous slots for nginx: the one way key bytes reach
    /// JavaScript for `exportKeys()`, which writes or sends them and wipes the buffer.
    #[napi]
    pub fn export_edge_keys(&self, format: String, previous: u32) -> Result<EdgeKeyExport> {
        let _scrub = StackScrub;
        let format = EdgeFormat::from_name(&format).ok_or_else(|| {
            Error::new(INVALID_ARG_VALUE, format!("format must be 'nginx' or 'haproxy', got '{format}'"))
        })?;
        let out = edge_keys(&self.ring, format, previous as usize, now()).map_err(ring_error)?;
        Ok(EdgeKeyExport {
            keys: Buffer::from(&out.bytes[..]),
            names: out.names.iter().map(|n| n.map(|n| hex(&n))).collect(),
            left_out: out.left_out as u32,
        })
    }

    /// Opens a message that the cluster's primary sealed to `inbox` for the ring named
    /// `channel` with this ring's cipher and schedule, and takes its keys, which never reach
    /// JavaScript. Returns how many it took.
    #[napi]
    pub fn offer_sealed(&self, inbox: &NativeClusterInbox, message: BufferSlice, channel: String) -> Result<u32> {
        let _scrub = StackScrub;
        let keys =
            inbox.inbox.open(&message, &channel, self.ring.cipher(), self.ring.schedule()).map_err(mirror_error)?;
        let mut taken = 0;
        // Copies go to the ring; the list wipes its own keys where they lie when it drops.
        for (epoch, key) in &keys {
            if self.ring.offer(*epoch, key.clone(), now()).map_err(ring_error)? {
                taken += 1;
            }
        }
        Ok(taken)
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
        let _scrub = StackScrub;
        let layout = self.ring.current_layout(now()).map_err(ring_error)?;
        Ok(Buffer::from(&layout[..]))
    }

    #[napi]
    pub fn set_keys(&self, keys: BufferSlice) -> Result<()> {
        let _scrub = StackScrub;
        let keys = TicketKey::parse_many(self.ring.cipher(), &keys).map_err(key_error)?;
        self.ring.set_keys(keys, now()).map_err(ring_error)
    }

    #[napi]
    pub fn rotate(&self) -> Result<()> {
        let _scrub = StackScrub;
        self.ring.rotate(now()).map_err(ring_error)
    }

    #[napi]
    pub fn keys(&self) -> Result<Vec<KeyDescription>> {
        let _scrub = StackScrub;
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
    }

    /// Which key sealed a ticket (from `getTLSTicket()`), its state, and the session inside.
    #[napi]
    pub fn inspect_ticket(&self, ticket: BufferSlice) -> Result<TicketReport> {
        let _scrub = StackScrub;
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
    }

    /// Rotates and wipes on schedule; `lib/ring.js` calls it from a timer.
    #[napi]
    pub fn tick(&self) {
        let _scrub = StackScrub;
        let _ = self.ring.tick(now());
    }

    #[napi]
    pub fn stats(&self) -> RingStats {
        let s = self.ring.stats();
        RingStats {
            issued: s.issued as f64,
            resumed: s.resumed as f64,
            renewed: s.renewed as f64,
            unknown_key: s.unknown_key as f64,
            expired: s.expired as f64,
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
        let _scrub = StackScrub;
        self.ring.destroy()
    }

    /// For Node's `onticketkeycallback` when sealing: writes `name | hmac | aes | iv` (16
    /// bytes each) into `scratch`, or says why there is no key to seal with. Only AES-128
    /// keys fit Node's callback.
    #[napi]
    pub fn fill_encrypt(&self, mut scratch: BufferSlice) -> TicketOutcome {
        let _scrub = StackScrub;
        if scratch.len() != scratch_layout::LEN {
            return TicketOutcome::Unusable;
        }
        self.ring
            .encrypt_with(now(), |key| {
                if key.cipher() != Cipher::Aes128Cbc {
                    return None;
                }
                scratch[scratch_layout::NAME].copy_from_slice(key.name());
                scratch[scratch_layout::HMAC].copy_from_slice(key.hmac_key());
                scratch[scratch_layout::AES].copy_from_slice(key.aes_key());
                fill_random(&mut scratch[scratch_layout::IV]).ok()?;
                Some(TicketOutcome::Resume)
            })
            .unwrap_or(TicketOutcome::Unusable)
    }

    /// For Node's `onticketkeycallback` when opening: for the known key named by
    /// `scratch[0..16]` writes `hmac | aes` into `scratch[16..48]`. One buffer, so the name
    /// and the keys cannot overlap.
    #[napi]
    pub fn fill_decrypt(&self, mut scratch: BufferSlice) -> TicketOutcome {
        let _scrub = StackScrub;
        if scratch.len() != scratch_layout::LEN {
            return TicketOutcome::Unusable;
        }
        let Ok(name) = key_name(&scratch[scratch_layout::NAME]) else { return TicketOutcome::Unusable };
        let opened = self.ring.decrypt_with(&name, now(), |key, decision| {
            if key.cipher() != Cipher::Aes128Cbc {
                return None;
            }
            scratch[scratch_layout::HMAC].copy_from_slice(key.hmac_key());
            scratch[scratch_layout::AES].copy_from_slice(key.aes_key());
            Some(match decision {
                Decision::Resume => TicketOutcome::Resume,
                Decision::Renew => TicketOutcome::Renew,
            })
        });
        match opened {
            Ok(outcome) => outcome,
            Err(Miss::UnknownKey) => TicketOutcome::UnknownKey,
            Err(Miss::ExpiredKey) => TicketOutcome::ExpiredKey,
            Err(Miss::Unusable) => TicketOutcome::Unusable,
        }
    }
}
