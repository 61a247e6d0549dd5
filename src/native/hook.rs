//! The hook: what hangs off a hooked `SSL_CTX` as OpenSSL ex_data (the ring, the outcome
//! counters, the session id context), and the ex_data index it lives under, whose free
//! callback drops the ring's reference when Node frees the context, so no table keyed by
//! addresses can go stale. Below both the callbacks, which read it, and `install`, which puts
//! it on a context.

use std::ffi::{c_int, c_long, c_void};
use std::ptr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use super::context::SessionIdContext;
use super::symbols::{symbols, Symbols, CRYPTO_EX_INDEX_SSL_CTX};
use crate::ring::Ring;

/// What became of the tickets clients offered to one attached server.
#[derive(Default, Debug)]
pub struct TicketOutcomes {
    /// Opened with one of the ring's keys (OpenSSL may still refuse the session inside).
    pub opened: AtomicU64,
    pub unknown_key: AtomicU64,
    pub expired_key: AtomicU64,
}

/// What hangs off a hooked `SSL_CTX` as ex_data.
pub(crate) struct Hook {
    pub(crate) ring: Arc<Ring>,
    pub(crate) outcomes: Arc<TicketOutcomes>,
    /// The context of the servers this one shares sessions with (`shareWith`), if any.
    pub(crate) session_id_context: Option<SessionIdContext>,
    /// Whether the server asked for client certificates when its session id context was set
    /// (that context then carries its policy). A connection that asks for one on a context
    /// set without (`server.requestCert` turned on later) resumes nothing.
    pub(crate) client_auth: bool,
}

/// The process-wide ex_data index of hooks on `SSL_CTX`s, registered once.
pub(super) fn ex_index() -> Result<c_int, &'static str> {
    static INDEX: OnceLock<Result<c_int, &'static str>> = OnceLock::new();
    *INDEX.get_or_init(|| {
        let s = symbols()?;
        // SAFETY: registers an index for SSL_CTX ex_data with our free callback.
        let index = unsafe {
            (s.get_ex_new_index)(
                CRYPTO_EX_INDEX_SSL_CTX,
                0,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                Some(free_hook),
            )
        };
        if index < 0 {
            return Err("OpenSSL refused an SSL_CTX ex_data index");
        }
        Ok(index)
    })
}

/// OpenSSL's ex_data free callback: the context is being freed, so is our reference.
unsafe extern "C" fn free_hook(
    _parent: *mut c_void,
    ptr: *mut c_void,
    _ad: *mut c_void,
    _idx: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) {
    if !ptr.is_null() {
        // SAFETY: only `install` stores values under our index, always a Box<Hook>.
        drop(unsafe { Box::from_raw(ptr as *mut Hook) });
    }
}

/// The hook on `ctx`, if any.
///
/// # Safety
/// `ctx` must be a live `SSL_CTX*`; the reference lives as long as the ex_data holds the hook.
pub(super) unsafe fn hook_on<'a>(s: &Symbols, index: c_int, ctx: *const c_void) -> Option<&'a Hook> {
    // SAFETY: per the caller's contract; only `install` stores under our index.
    unsafe { ((s.ctx_get_ex_data)(ctx, index) as *const Hook).as_ref() }
}
