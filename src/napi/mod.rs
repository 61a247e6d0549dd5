//! The N-API layer: the only code that knows N-API. It converts arguments to the core's types
//! (refusing, as a backstop, what `lib/` already validates, with a plain code and a neutral
//! message), and maps the core's typed errors to error codes. Every decision is made in the
//! Rust core; `lib/errors.js` turns the codes into Node-style errors and writes the messages
//! that name JavaScript options.

pub mod attach;
pub mod callback_mode;
pub mod edge;
pub mod inspect;
pub mod mirror;
pub mod ring;
pub mod secret_file;
pub mod store;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::derive::MAX_SCOPE_LEN;
use crate::key::{scrubbed, Cipher, KeyError, TicketKey, NAME_LEN};
use crate::mirror::MirrorError;
use crate::ring::{RingError, Schedule};
use crate::wrap::WrapError;

/// An error's `code` is a Node error code, or a reason that `lib/errors.js` words as one.
pub(crate) type Error = napi::Error<&'static str>;
pub(crate) type Result<T> = std::result::Result<T, Error>;

pub(crate) const INVALID_ARG_VALUE: &str = "ERR_INVALID_ARG_VALUE";
const OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
pub(crate) const INVALID_STATE: &str = "ERR_INVALID_STATE";
const NATIVE_UNAVAILABLE: &str = "ERR_TLS_TICKET_NATIVE_UNAVAILABLE";
const UNOPENABLE: &str = "ERR_TLS_TICKET_KEY_UNOPENABLE";

/// Reasons `lib/errors.js` words itself, naming the JavaScript option (its `nativeReasons`):
/// the core's message, neutral, follows the option's name there.
///
/// A `ticketLifetime` longer than the ring holds keys for at its `rotationInterval`: only the
/// core knows the bound, so this is no backstop (`ERR_OUT_OF_RANGE` in JavaScript).
const TICKET_LIFETIME_TOO_LONG: &str = "TICKET_LIFETIME_TOO_LONG";

fn ring_error(e: RingError) -> Error {
    let code = match e {
        RingError::Destroyed | RingError::NoCurrentKey => INVALID_STATE,
        RingError::OutOfRange { .. } => OUT_OF_RANGE,
        RingError::LifetimeTooLong { .. } => TICKET_LIFETIME_TOO_LONG,
        RingError::Full { .. } => INVALID_STATE,
        RingError::Key(KeyError::Random(_)) => INVALID_STATE,
        RingError::Key(_) => INVALID_ARG_VALUE,
    };
    Error::new(code, e.to_string())
}

fn key_error(e: KeyError) -> Error {
    ring_error(RingError::Key(e))
}

fn mirror_error(e: MirrorError) -> Error {
    match e {
        MirrorError::Unopenable => Error::new(UNOPENABLE, e.to_string()),
        MirrorError::BadPublicKey | MirrorError::BadChannel => Error::new(INVALID_ARG_VALUE, e.to_string()),
        MirrorError::Wiped => Error::new(INVALID_STATE, e.to_string()),
        MirrorError::Key(k) => key_error(k),
    }
}

fn wrap_error(e: WrapError) -> Error {
    match e {
        WrapError::Unopenable => Error::new(UNOPENABLE, e.to_string()),
        WrapError::Key(k) => key_error(k),
    }
}

// Argument conversions. `lib/` validates each of these first; the checks here are backstops.

fn cipher_named(name: &str) -> Result<Cipher> {
    Cipher::from_name(name)
        .ok_or_else(|| Error::new(INVALID_ARG_VALUE, "the cipher must be aes-128-cbc or aes-256-cbc".to_owned()))
}

/// `what` in words, for the message: "rotation interval", "epoch".
fn whole_seconds(what: &'static str, value: f64) -> Result<u64> {
    if !value.is_finite() || value.fract() != 0.0 || value < 0.0 || value > (1u64 << 53) as f64 {
        return Err(Error::new(OUT_OF_RANGE, format!("the {what} must be a whole number of seconds, got {value}")));
    }
    Ok(value as u64)
}

fn schedule(rotation_interval: f64, ticket_lifetime: f64) -> Result<Schedule> {
    Schedule::new(
        whole_seconds("rotation interval", rotation_interval)?,
        whole_seconds("ticket lifetime", ticket_lifetime)?,
    )
    .map_err(ring_error)
}

/// The scope of a secret-derived ring, in bytes.
fn scope_bytes(scope: &str) -> Result<&[u8]> {
    if scope.len() > MAX_SCOPE_LEN {
        let message = format!("a scope is at most {MAX_SCOPE_LEN} bytes, got {} bytes", scope.len());
        return Err(Error::new(OUT_OF_RANGE, message));
    }
    Ok(scope.as_bytes())
}

fn key_name(bytes: &[u8]) -> Result<[u8; NAME_LEN]> {
    bytes.try_into().map_err(|_| Error::new(INVALID_ARG_VALUE, format!("a key name is 16 bytes, got {}", bytes.len())))
}

// The limits, defined once in the core and read by `lib/` from here.

/// The longest `ticketLifetime` (RFC 8446 §4.6.1).
#[napi]
pub const MAX_TICKET_LIFETIME: u32 = crate::ring::MAX_TICKET_LIFETIME as u32;
/// The longest `rotationInterval`.
#[napi]
pub const MAX_ROTATION_INTERVAL: u32 = crate::ring::MAX_ROTATION_INTERVAL as u32;
/// The shortest fleet `secret`, in bytes.
#[napi]
pub const MIN_SECRET_BYTES: u32 = crate::derive::MIN_SECRET_LEN as u32;
/// The shortest `wrapSecret` of a store, in bytes.
#[napi]
pub const MIN_WRAP_SECRET_BYTES: u32 = crate::wrap::MIN_WRAP_SECRET_LEN as u32;
/// The longest `scope` of a secret-derived ring, in UTF-8 bytes.
#[napi]
pub const MAX_SCOPE_BYTES: u32 = crate::derive::MAX_SCOPE_LEN as u32;
/// Bytes per key in the 'aes-128-cbc' layout (Node's `getTicketKeys()`: name | hmac | aes, 16 each).
#[napi]
pub const KEY_LAYOUT_BYTES_AES_128_CBC: u32 = Cipher::Aes128Cbc.layout_len() as u32;
/// Bytes per key in the 'aes-256-cbc' layout (OpenSSL's and nginx's: name 16 | hmac 32 | aes 32).
#[napi]
pub const KEY_LAYOUT_BYTES_AES_256_CBC: u32 = Cipher::Aes256Cbc.layout_len() as u32;

/// Fresh key material: `size` must be a positive multiple of 48 or of 80.
#[napi]
pub fn generate_ticket_keys(size: u32) -> Result<Buffer> {
    scrubbed(|| {
        let size = size as usize;
        let cipher = [Cipher::Aes128Cbc, Cipher::Aes256Cbc]
            .into_iter()
            .find(|c| size > 0 && size.is_multiple_of(c.layout_len()))
            .ok_or_else(|| {
                Error::new(
                    INVALID_ARG_VALUE,
                    format!("a size of key material must be a positive multiple of 48 or 80 bytes, got {size}"),
                )
            })?;
        let mut out = Vec::with_capacity(size);
        for _ in 0..size / cipher.layout_len() {
            out.extend_from_slice(&TicketKey::generate(cipher).map_err(key_error)?.to_layout());
        }
        Ok(out.into())
    })
}

/// The longest `ticketLifetime` a ring with this `rotationInterval` holds the keys for.
#[napi]
pub fn max_ticket_lifetime(rotation_interval: f64) -> Result<f64> {
    Ok(Schedule::max_ticket_lifetime(whole_seconds("rotation interval", rotation_interval)?) as f64)
}

/// `null` when the native path can be used in this process, else why not.
#[napi]
pub fn native_unavailable_reason() -> Option<String> {
    crate::native::availability().err().map(str::to_owned)
}
