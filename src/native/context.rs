//! What the native path reads off a Node secure context: the `SSL_CTX*` inside its V8 External,
//! the session timeout that proves the pointer, and the session id context type it sets.

use std::ffi::{c_uint, c_void};

use super::symbols::{symbols, ExternalValue};

/// The `SSL_CTX*` inside a V8 External, given the address of a local handle to it (which is
/// what a `napi_value` is). Node-API's own `napi_get_value_external` must not be used here:
/// it expects its own wrapper and returns a wrong pointer for Node's externals.
///
/// # Safety
/// `handle` must be a live handle to a V8 External in the current handle scope.
pub unsafe fn external_pointer(handle: *const c_void) -> Result<*mut c_void, &'static str> {
    let s = symbols()?;
    // SAFETY: per the caller's contract, `handle` is what V8 takes as `this`.
    let p = unsafe {
        match s.external_value {
            ExternalValue::Untagged(f) => f(handle),
            ExternalValue::Tagged(f) => f(handle, 0),
        }
    };
    if p.is_null() {
        return Err("the secure context has no SSL_CTX (was it closed?)");
    }
    Ok(p)
}

/// The session timeout of `ctx`, used to prove that a pointer really is the SSL_CTX whose
/// timeout JavaScript has just set.
///
/// # Safety
/// `ctx` must come from [`external_pointer`] on a Node SecureContext.
pub unsafe fn session_timeout(ctx: *const c_void) -> Result<i64, &'static str> {
    let s = symbols()?;
    // c_long is 64 bits on Linux and macOS, 32 on Windows, where the conversion is needed.
    #[allow(clippy::useless_conversion)]
    // SAFETY: per the caller's contract.
    let timeout = i64::from(unsafe { (s.ctx_get_timeout)(ctx) });
    Ok(timeout)
}

/// OpenSSL's `SSL_MAX_SID_CTX_LENGTH`.
pub const MAX_SESSION_ID_CONTEXT: usize = 32;

/// A session id context of raw bytes that the ring's callbacks give every connection and
/// every ticket they seal, whatever Node set: Node's setter takes a string and passes its
/// UTF-8 on, and Node 22 and 24 replace it per connection with a digest, neither of which
/// can equal nginx's binary context or HAProxy's plain `haproxy`.
#[derive(Clone, Copy)]
pub struct SessionIdContext {
    bytes: [u8; MAX_SESSION_ID_CONTEXT],
    len: u8,
}

impl SessionIdContext {
    pub fn new(context: &[u8]) -> Option<SessionIdContext> {
        let mut bytes = [0; MAX_SESSION_ID_CONTEXT];
        bytes.get_mut(..context.len())?.copy_from_slice(context);
        Some(SessionIdContext { bytes, len: context.len() as u8 })
    }

    pub(super) fn as_parts(&self) -> (*const u8, c_uint) {
        (self.bytes.as_ptr(), c_uint::from(self.len))
    }
}
