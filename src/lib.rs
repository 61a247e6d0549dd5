//! tls-ticket-keys: session-ticket key rings for Node.js TLS servers.
//!
//! The Rust core (`key`, `ring`, `native`) is plain Rust and tested with `cargo test`; this
//! file is the N-API layer and only converts types and errors. The JavaScript layer in `lib/`
//! validates arguments and turns the error codes below into Node-style errors.

pub mod clock;
pub mod derive;
pub mod inspect;
pub mod key;
pub mod mirror;
pub mod native;
pub mod ring;
pub mod session;
pub mod source;
pub mod ticket;
pub mod wrap;

use std::ffi::c_void;
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, BufferSlice, Unknown};
use napi::{JsValue, ValueType};
use napi_derive::napi;

use crate::clock::now;
use crate::derive::DerivedKeys;
use crate::key::{fill_random, hex, Cipher, KeyError, TicketKey, NAME_LEN};
use crate::ring::{Decision, Miss, Ring, RingError, Schedule};
use crate::session::parse_session;
use crate::mirror::{Inbox, MirrorError};
use crate::wrap::{WrapError, Wrapper};

/// Errors carry a Node-style code; `lib/errors.js` gives them the matching class.
type Error = napi::Error<&'static str>;
type Result<T> = std::result::Result<T, Error>;

const INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";
const OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
const INVALID_STATE: &str = "ERR_INVALID_STATE";
const NATIVE_UNAVAILABLE: &str = "ERR_TLS_TICKET_NATIVE_UNAVAILABLE";
const UNOPENABLE: &str = "ERR_TLS_TICKET_KEY_UNOPENABLE";

fn ring_error(e: RingError) -> Error {
    let code = match e {
        RingError::Destroyed | RingError::NoCurrentKey => INVALID_STATE,
        RingError::OutOfRange { .. } | RingError::LifetimeTooLong { .. } => OUT_OF_RANGE,
        RingError::Full => INVALID_STATE,
        RingError::Key(KeyError::Random(_)) => INVALID_STATE,
        RingError::Key(_) => INVALID_ARG_VALUE,
    };
    Error::new(code, e.to_string())
}

fn key_error(e: KeyError) -> Error {
    ring_error(RingError::Key(e))
}


fn cipher_named(name: &str) -> Result<Cipher> {
    Cipher::from_name(name).ok_or_else(|| {
        Error::new(INVALID_ARG_VALUE, format!("cipher must be 'aes-128-cbc' or 'aes-256-cbc', got '{name}'"))
    })
}

fn whole_seconds(what: &'static str, value: f64) -> Result<u64> {
    if !value.is_finite() || value.fract() != 0.0 || value < 0.0 || value > (1u64 << 53) as f64 {
        return Err(Error::new(OUT_OF_RANGE, format!("{what} must be a whole number of seconds, got {value}")));
    }
    Ok(value as u64)
}

fn schedule(rotation_interval: f64, ticket_lifetime: f64) -> Result<Schedule> {
    Schedule::new(
        whole_seconds("rotationInterval", rotation_interval)?,
        whole_seconds("ticketLifetime", ticket_lifetime)?,
    )
    .map_err(ring_error)
}

/// Fresh key material: `size` must be a positive multiple of 48 or of 80.
#[napi]
pub fn generate_ticket_keys(size: u32) -> Result<Buffer> {
    let size = size as usize;
    let cipher = [Cipher::Aes128Cbc, Cipher::Aes256Cbc]
        .into_iter()
        .find(|c| size > 0 && size % c.layout_len() == 0)
        .ok_or_else(|| Error::new(INVALID_ARG_VALUE, format!("size must be a multiple of 48 or 80, got {size}")))?;
    let mut out = Vec::with_capacity(size);
    for _ in 0..size / cipher.layout_len() {
        out.extend_from_slice(&TicketKey::generate(cipher).map_err(key_error)?.to_layout());
    }
    Ok(out.into())
}

/// The longest `ticketLifetime` a ring with this `rotationInterval` holds the keys for.
#[napi]
pub fn max_ticket_lifetime(rotation_interval: f64) -> Result<f64> {
    Ok(Schedule::max_ticket_lifetime(whole_seconds("rotationInterval", rotation_interval)?) as f64)
}

/// `null` when the native path can be used in this process, else why not.
#[napi]
pub fn native_unavailable_reason() -> Option<String> {
    native::availability().err().map(str::to_owned)
}

#[napi(object)]
pub struct KeyInfo {
    pub name: String,
    pub state: String,
    /// Unix seconds.
    pub activates_at: f64,
    /// Unix seconds, or null while explicit keys are held until replaced.
    pub expires_at: Option<f64>,
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
    ring: Arc<Ring>,
    /// The session id context of a secret-derived ring, in hex.
    session_id_context: Option<String>,
}

#[napi]
impl NativeRing {
    /// A ring of CSPRNG keys on the schedule.
    #[napi(factory)]
    pub fn random(cipher: String, rotation_interval: f64, ticket_lifetime: f64) -> Result<NativeRing> {
        let ring = Ring::random(cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?, now())
            .map_err(ring_error)?;
        Ok(NativeRing { ring: Arc::new(ring), session_id_context: None })
    }

    /// A ring of explicit keys (n keys in the cipher's layout); the first encrypts.
    #[napi(factory)]
    pub fn explicit(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        keys: BufferSlice,
    ) -> Result<NativeRing> {
        let cipher = cipher_named(&cipher)?;
        let keys = TicketKey::parse_many(cipher, &keys).map_err(key_error)?;
        let ring = Ring::explicit(cipher, schedule(rotation_interval, ticket_lifetime)?, keys, now())
            .map_err(ring_error)?;
        Ok(NativeRing { ring: Arc::new(ring), session_id_context: None })
    }

    /// A ring whose epoch keys are derived from a fleet secret of at least 32 bytes.
    #[napi(factory)]
    pub fn derived(cipher: String, rotation_interval: f64, ticket_lifetime: f64, secret: BufferSlice) -> Result<NativeRing> {
        let source = DerivedKeys::new(&secret).map_err(key_error)?;
        let context = hex(&source.session_id_context());
        let ring = Ring::with_source(cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?, Box::new(source), now())
            .map_err(ring_error)?;
        Ok(NativeRing { ring: Arc::new(ring), session_id_context: Some(context) })
    }

    /// A ring fed with keys from outside (a store, a cluster's primary) through `offer`.
    #[napi(factory)]
    pub fn fed(cipher: String, rotation_interval: f64, ticket_lifetime: f64) -> Result<NativeRing> {
        let ring = Ring::fed(cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?, now()).map_err(ring_error)?;
        Ok(NativeRing { ring: Arc::new(ring), session_id_context: None })
    }

    #[napi(getter)]
    pub fn session_id_context(&self) -> Option<String> {
        self.session_id_context.clone()
    }

    /// Takes the key of an epoch in the ring's layout; false when the ring already had it,
    /// or has no use for it.
    #[napi]
    pub fn offer(&self, epoch: f64, material: BufferSlice) -> Result<bool> {
        let key = TicketKey::from_layout(self.ring.cipher(), &material).map_err(key_error)?;
        self.ring.offer(whole_seconds("epoch", epoch)?, key, now()).map_err(ring_error)
    }

    /// Opens a key that `NativeWrapper.sealFresh` sealed and takes it, without the key ever
    /// reaching JavaScript.
    #[napi]
    pub fn offer_wrapped(&self, wrapper: &NativeWrapper, prefix: String, epoch: f64, wrapped: BufferSlice) -> Result<bool> {
        let epoch = whole_seconds("epoch", epoch)?;
        let key = wrapper.wrapper.open(&wrapped, &prefix, epoch, self.ring.cipher()).map_err(|e| match e {
            WrapError::Unopenable => Error::new(UNOPENABLE, e.to_string()),
            WrapError::Key(k) => key_error(k),
        })?;
        self.ring.offer(epoch, key, now()).map_err(ring_error)
    }

    /// The key of every epoch held, sealed to one cluster worker's public key.
    #[napi]
    pub fn seal_epoch_keys_to(&self, worker_public_key: BufferSlice) -> Result<Buffer> {
        let keys = self.ring.epoch_keys(now()).map_err(ring_error)?;
        Ok(mirror::seal_to(&worker_public_key, self.ring.cipher(), &keys).map_err(mirror_error)?.into())
    }

    /// Opens a message that the cluster's primary sealed to `inbox` and takes its keys, which
    /// never reach JavaScript. Returns how many the ring took.
    #[napi]
    pub fn offer_sealed(&self, inbox: &NativeClusterInbox, message: BufferSlice) -> Result<u32> {
        let keys = inbox.inbox.open(&message, self.ring.cipher()).map_err(mirror_error)?;
        let mut taken = 0;
        for (epoch, key) in keys {
            if self.ring.offer(epoch, key, now()).map_err(ring_error)? {
                taken += 1;
            }
        }
        Ok(taken)
    }

    #[napi(getter)]
    pub fn cipher(&self) -> &'static str {
        self.ring.cipher().name()
    }

    #[napi]
    pub fn current_keys(&self) -> Result<Buffer> {
        let layout = self.ring.current_layout(now()).map_err(ring_error)?;
        Ok(Buffer::from(&layout[..]))
    }

    #[napi]
    pub fn set_keys(&self, keys: BufferSlice) -> Result<()> {
        let keys = TicketKey::parse_many(self.ring.cipher(), &keys).map_err(key_error)?;
        self.ring.set_keys(keys, now()).map_err(ring_error)
    }

    #[napi]
    pub fn rotate(&self) -> Result<()> {
        self.ring.rotate(now()).map_err(ring_error)
    }

    #[napi]
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        let keys = self.ring.keys(now()).map_err(ring_error)?;
        Ok(keys
            .into_iter()
            .map(|k| KeyInfo {
                name: hex(&k.name),
                state: k.state.as_str().to_owned(),
                activates_at: k.activates_at as f64,
                expires_at: k.expires_at.map(|t| t as f64),
            })
            .collect())
    }

    /// The state of the key named by a 16-byte buffer, or null when the ring does not hold it.
    #[napi]
    pub fn state_of(&self, name: BufferSlice) -> Result<Option<&'static str>> {
        let name = key_name(&name)?;
        Ok(self.ring.state_of(&name, now()).map_err(ring_error)?.map(|s| s.as_str()))
    }

    /// Which key sealed a ticket (from `getTLSTicket()`), its state, and the session inside.
    #[napi]
    pub fn inspect_ticket(&self, ticket: BufferSlice) -> Result<TicketReport> {
        let seen = inspect::inspect_ticket(&self.ring, &ticket, now()).map_err(ring_error)?;
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
            session,
            error,
        })
    }

    /// Rotates and wipes on schedule; `lib/ring.js` calls it from a timer.
    #[napi]
    pub fn tick(&self) {
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

    #[napi(getter)]
    pub fn destroyed(&self) -> bool {
        self.ring.is_destroyed()
    }

    #[napi]
    pub fn destroy(&self) {
        self.ring.destroy()
    }

    /// For Node's `onticketkeycallback` when sealing: writes `name | hmac | aes | iv` (16
    /// bytes each) into `scratch` and returns 1, or returns 0 when there is no key to seal
    /// with. Only AES-128 keys fit Node's callback.
    #[napi]
    pub fn fill_encrypt(&self, mut scratch: BufferSlice) -> i32 {
        if scratch.len() != 64 {
            return 0;
        }
        self.ring
            .encrypt_with(now(), |key| {
                if key.cipher() != Cipher::Aes128Cbc {
                    return None;
                }
                scratch[..16].copy_from_slice(key.name());
                scratch[16..32].copy_from_slice(key.hmac_key());
                scratch[32..48].copy_from_slice(key.aes_key());
                fill_random(&mut scratch[48..64]).ok()?;
                Some(1)
            })
            .unwrap_or(0)
    }

    /// For Node's `onticketkeycallback` when opening: for the known key named by
    /// `scratch[0..16]` writes `hmac | aes` into `scratch[16..48]` and returns 1, or 2 to
    /// renew; 0 for an unknown key, 3 for a key the ring wiped (both mean a full handshake),
    /// -1 when it cannot be used. One buffer, so the name and the keys cannot overlap.
    #[napi]
    pub fn fill_decrypt(&self, mut scratch: BufferSlice) -> i32 {
        if scratch.len() != 64 {
            return -1;
        }
        let Ok(name) = key_name(&scratch[..NAME_LEN]) else { return -1 };
        let opened = self.ring
            .decrypt_with(&name, now(), |key, decision| {
                if key.cipher() != Cipher::Aes128Cbc {
                    return None;
                }
                scratch[16..32].copy_from_slice(key.hmac_key());
                scratch[32..48].copy_from_slice(key.aes_key());
                Some(match decision {
                    Decision::Resume => 1,
                    Decision::Renew => 2,
                })
            });
        match opened {
            Ok(code) => code,
            Err(Miss::UnknownKey) => 0,
            Err(Miss::ExpiredKey) => 3,
            Err(Miss::Unusable) => -1,
        }
    }
}

fn mirror_error(e: MirrorError) -> Error {
    match e {
        MirrorError::Unopenable => Error::new(UNOPENABLE, e.to_string()),
        MirrorError::BadPublicKey => Error::new(INVALID_ARG_VALUE, e.to_string()),
        MirrorError::Key(k) => key_error(k),
    }
}

/// A cluster worker's X25519 key pair: the primary seals the ring's keys to its public key.
#[napi]
pub struct NativeClusterInbox {
    inbox: Inbox,
}

#[napi]
impl NativeClusterInbox {
    #[napi(constructor)]
    pub fn new() -> Result<NativeClusterInbox> {
        Ok(NativeClusterInbox { inbox: Inbox::new().map_err(key_error)? })
    }

    #[napi]
    pub fn public_key(&self) -> Buffer {
        Buffer::from(&self.inbox.public_key()[..])
    }
}

/// AES-256-GCM sealing of epoch keys for a shared store, under a wrapping secret.
#[napi]
pub struct NativeWrapper {
    wrapper: Wrapper,
}

#[napi]
impl NativeWrapper {
    #[napi(constructor)]
    pub fn new(wrap_secret: BufferSlice) -> Result<NativeWrapper> {
        Ok(NativeWrapper { wrapper: Wrapper::new(&wrap_secret).map_err(key_error)? })
    }

    /// A fresh random key for `epoch`, sealed; only the sealed form leaves Rust.
    #[napi]
    pub fn seal_fresh(&self, cipher: String, prefix: String, epoch: f64) -> Result<Buffer> {
        let key = TicketKey::generate(cipher_named(&cipher)?).map_err(key_error)?;
        let sealed = self.wrapper.seal(&key, &prefix, whole_seconds("epoch", epoch)?).map_err(key_error)?;
        Ok(sealed.into())
    }
}

#[napi(object)]
pub struct SessionSummary {
    pub protocol: String,
    /// IANA number of the cipher suite.
    pub cipher_suite: u32,
    /// Unix seconds.
    pub created_at: f64,
    pub timeout: f64,
    pub ticket_lifetime_hint: f64,
    /// Unix seconds after which a client should not offer the session (at most 7 days).
    pub expires_at: f64,
    pub server_name: Option<String>,
    pub alpn: Option<String>,
    /// The ticket's first 16 bytes (the key name) in hex, as it travels in clear.
    pub ticket_key_name: Option<String>,
    /// The ticket's IV in hex (bytes 16 to 32), also in clear on the wire; unique per ticket.
    pub ticket_iv: Option<String>,
    /// The ticket's length in bytes. A TLS 1.3 server that keeps sessions in its own cache
    /// instead of in tickets (OpenSSL with SSL_OP_NO_TICKET) sends just a session id.
    pub ticket_length: Option<u32>,
}

#[napi(object)]
pub struct TicketReport {
    /// The key name the ticket claims, in hex; null when it is too short to be a ticket.
    pub key_name: Option<String>,
    /// 'current', 'next', 'previous', or 'unknown' (retired, or never this ring's).
    pub key_state: String,
    /// The session inside, when the ticket opened.
    pub session: Option<SessionSummary>,
    /// Why it did not open.
    pub error: Option<String>,
}

/// What a session (the DER from Node's 'session' event or getSession()) says about itself.
#[napi]
pub fn inspect_session(der: BufferSlice) -> Result<SessionSummary> {
    summarize_session(&der)
}

fn summarize_session(der: &[u8]) -> Result<SessionSummary> {
    let info = parse_session(der).map_err(|e| Error::new(INVALID_ARG_VALUE, e.to_string()))?;
    let part = |range: std::ops::Range<usize>| info.ticket.as_ref().and_then(|t| t.get(range)).map(hex);
    Ok(SessionSummary {
        protocol: info.protocol().to_owned(),
        cipher_suite: info.cipher_suite as u32,
        created_at: info.created_at as f64,
        timeout: info.timeout as f64,
        ticket_lifetime_hint: info.ticket_lifetime_hint as f64,
        expires_at: info.expires_at() as f64,
        ticket_key_name: part(0..16),
        ticket_iv: part(16..32),
        ticket_length: info.ticket.as_ref().map(|t| t.len() as u32),
        server_name: info.server_name,
        alpn: info.alpn,
    })
}

fn key_name(bytes: &[u8]) -> Result<[u8; NAME_LEN]> {
    bytes
        .try_into()
        .map_err(|_| Error::new(INVALID_ARG_VALUE, format!("a key name is 16 bytes, got {}", bytes.len())))
}


fn unavailable(why: &str) -> Error {
    Error::new(NATIVE_UNAVAILABLE, why.to_owned())
}

/// The `SSL_CTX*` inside the External that Node's `SecureContext.prototype._external` getter
/// returned (`lib/` takes that getter from the prototype, so no own property can stand in for
/// it); null once the context was closed.
fn external_ctx(external: &Unknown) -> Result<*mut c_void> {
    if external.get_type().map_err(|_| unavailable("cannot read the context's type"))? != ValueType::External {
        return Err(unavailable("the secure context exposes no SSL_CTX external"));
    }
    // SAFETY: a napi_value is the address of a V8 local handle, here to a v8::External that
    // lives for this call.
    unsafe { native::external_pointer(external.value().value as *const c_void) }.map_err(unavailable)
}

/// Whether the secure context still has its SSL_CTX (`SecureContext#close()` frees it, after
/// which Node's own setters crash the process).
#[napi]
pub fn native_context_open(external: Unknown) -> Result<bool> {
    match external_ctx(&external) {
        Ok(_) => Ok(true),
        Err(_) if native::availability().is_ok() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The session timeout of the context, read before `attach()` replaces it so that
/// `detach()` can put it back. Trusted only once `native_attach` has proven the pointer.
#[napi]
pub fn native_session_timeout(external: Unknown) -> Result<i64> {
    let ctx = external_ctx(&external)?;
    // SAFETY: ctx came from the context's own External, through Node's getter.
    unsafe { native::session_timeout(ctx) }.map_err(unavailable)
}

/// The `SSL_CTX*` of a Node SecureContext, proven by the session timeout that JavaScript set
/// on that context just before the call.
fn ssl_ctx(external: Unknown, expected_timeout: i64) -> Result<*mut c_void> {
    let ctx = external_ctx(&external)?;
    // SAFETY: ctx came from the context's own External, through Node's getter.
    let timeout = unsafe { native::session_timeout(ctx) }.map_err(unavailable)?;
    if timeout != expected_timeout {
        return Err(unavailable("the SSL_CTX pointer failed its check (session timeout mismatch)"));
    }
    Ok(ctx)
}

/// What became of the tickets offered to one attached server, in native mode.
#[napi]
pub struct NativeTicketOutcomes {
    inner: Arc<native::TicketOutcomes>,
}

#[napi(object)]
pub struct TicketOutcomeCounts {
    pub opened: f64,
    pub unknown_key: f64,
    pub expired_key: f64,
}

#[napi]
impl NativeTicketOutcomes {
    #[napi(constructor)]
    pub fn new() -> NativeTicketOutcomes {
        NativeTicketOutcomes { inner: Arc::default() }
    }

    #[napi]
    pub fn counts(&self) -> TicketOutcomeCounts {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
        TicketOutcomeCounts {
            opened: load(&self.inner.opened),
            unknown_key: load(&self.inner.unknown_key),
            expired_key: load(&self.inner.expired_key),
        }
    }
}

/// Installs `ring`'s ticket callback on the context whose `_external` is given.
#[napi]
pub fn native_attach(external: Unknown, expected_timeout: i64, ring: &NativeRing, outcomes: &NativeTicketOutcomes) -> Result<()> {
    let ctx = ssl_ctx(external, expected_timeout)?;
    // SAFETY: checked above; Node runs TLS on this thread.
    unsafe { native::install(ctx, ring.ring.clone(), outcomes.inner.clone()) }
        .map_err(|e| Error::new(NATIVE_UNAVAILABLE, e.to_owned()))
}

/// Removes the ring's callback from the context; returns whether one was installed.
#[napi]
pub fn native_detach(external: Unknown, expected_timeout: i64) -> Result<bool> {
    let ctx = ssl_ctx(external, expected_timeout)?;
    // SAFETY: as in native_attach.
    unsafe { native::uninstall(ctx) }.map_err(|e| Error::new(NATIVE_UNAVAILABLE, e.to_owned()))
}
