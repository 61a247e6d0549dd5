//! Native mode's hold on a server's `SSL_CTX`: found through Node's External, proven, hooked.

use std::ffi::c_void;
use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, Unknown};
use napi::{JsValue, ValueType};
use napi_derive::napi;

use super::ring::NativeRing;
use super::{Error, Result, NATIVE_UNAVAILABLE};
use crate::native;

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

impl Default for NativeTicketOutcomes {
    fn default() -> NativeTicketOutcomes {
        NativeTicketOutcomes::new()
    }
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

/// Installs `ring`'s ticket callback on the context whose `_external` is given; with
/// `session_id_context` (at most 32 bytes), every connection and ticket gets that context.
/// `client_auth`: whether the server asks for client certificates now, so that its session
/// id context carries its policy.
#[napi]
pub fn native_attach(
    external: Unknown,
    expected_timeout: i64,
    ring: &NativeRing,
    outcomes: &NativeTicketOutcomes,
    session_id_context: Option<BufferSlice>,
    client_auth: bool,
) -> Result<()> {
    let session_id_context = match session_id_context {
        None => None,
        Some(bytes) => Some(native::SessionIdContext::new(&bytes).ok_or_else(|| {
            let max = native::MAX_SESSION_ID_CONTEXT;
            Error::new(super::OUT_OF_RANGE, format!("a session id context is at most {max} bytes, got {}", bytes.len()))
        })?),
    };
    let ctx = ssl_ctx(external, expected_timeout)?;
    // SAFETY: checked above; Node runs TLS on this thread.
    unsafe { native::install(ctx, ring.ring.clone(), outcomes.inner.clone(), session_id_context, client_auth) }
        .map_err(|e| Error::new(NATIVE_UNAVAILABLE, e.to_owned()))
}

/// Removes the ring's callback from the context; returns whether one was installed.
#[napi]
pub fn native_detach(external: Unknown, expected_timeout: i64) -> Result<bool> {
    let ctx = ssl_ctx(external, expected_timeout)?;
    // SAFETY: as in native_attach.
    unsafe { native::uninstall(ctx) }.map_err(|e| Error::new(NATIVE_UNAVAILABLE, e.to_owned()))
}
