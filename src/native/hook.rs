//! A ring on an `SSL_CTX`: installed as OpenSSL ex_data, whose free callback drops the ring's
//! reference when Node frees the context, so no table keyed by addresses can go stale; and the
//! note, taken just before a ticket is sealed, of which ring the connection belongs to.

use std::cell::RefCell;
use std::ffi::{c_int, c_long, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Weak};

use super::callback::check_client_auth;
use super::symbols::{set_ticket_callback, symbols, SessionIdContext, Symbols};
use super::{RingOnContext, TicketOutcomes};
use crate::ring::Ring;

/// Installs the ring's ticket callback on `ctx`, replacing a ring installed before. With a
/// `session_id_context`, the callbacks put it on every connection before a ticket is checked
/// against it, and on every session before it is sealed.
///
/// # Safety
/// `ctx` must be a live `SSL_CTX*`, checked with [`session_timeout`], used on this thread.
pub unsafe fn install(
    ctx: *mut c_void,
    ring: Arc<Ring>,
    outcomes: Arc<TicketOutcomes>,
    session_id_context: Option<SessionIdContext>,
    client_auth: bool,
) -> Result<(), &'static str> {
    let s = symbols()?;
    if let Some(context) = session_id_context {
        let Some(set) = &s.session_id else {
            return Err("this process's OpenSSL does not export the session id context setters");
        };
        let (bytes, len) = context.as_parts();
        // SAFETY: ctx is live; OpenSSL copies the bytes. Also for sessions that never see
        // our callbacks (a session id cache).
        if unsafe { (set.ctx_set)(ctx, bytes, len) } != 1 {
            return Err("OpenSSL refused the session id context");
        }
    }
    let hook = Box::into_raw(Box::new(RingOnContext { ring, outcomes, session_id_context, client_auth }));
    // SAFETY: ctx is live; the old hook, if any, is ours and is freed once replaced, after
    // every callback points at the new one.
    unsafe {
        let old = (s.ctx_get_ex_data)(ctx, s.ex_index) as *mut RingOnContext;
        if (s.ctx_set_ex_data)(ctx, s.ex_index, hook.cast()) != 1 {
            drop(Box::from_raw(hook));
            return Err("OpenSSL refused to store the ring on the SSL_CTX");
        }
        let hooked =
            (s.set_session_ticket_cb)(ctx, Some(note_ring_before_sealing), Some(check_client_auth), hook.cast()) == 1
                && set_ticket_callback(s, ctx, true);
        if !old.is_null() {
            drop(Box::from_raw(old));
        }
        if !hooked {
            // Leave the context as Node made it; `uninstall` frees the new hook.
            let _ = uninstall(ctx);
            return Err("OpenSSL refused the ticket callbacks");
        }
    }
    Ok(())
}

/// Removes the ring from `ctx` and puts Node's own ticket callback back. Returns whether a
/// ring was installed.
///
/// # Safety
/// As for [`install`].
pub unsafe fn uninstall(ctx: *mut c_void) -> Result<bool, &'static str> {
    let s = symbols()?;
    // SAFETY: ctx is live; the callbacks are cleared before the hook they point at is freed.
    unsafe {
        let old = (s.ctx_get_ex_data)(ctx, s.ex_index) as *mut RingOnContext;
        if old.is_null() {
            return Ok(false);
        }
        let restored = set_ticket_callback(s, ctx, false);
        let cleared = (s.set_session_ticket_cb)(ctx, None, None, ptr::null_mut()) == 1;
        (s.ctx_set_ex_data)(ctx, s.ex_index, ptr::null_mut());
        drop(Box::from_raw(old));
        SEALING.with(|noted| noted.borrow_mut().take());
        if !(restored && cleared) {
            return Err("OpenSSL refused to put Node's ticket callback back");
        }
    }
    Ok(true)
}

/// OpenSSL's ex_data free callback: the context is being freed, so is our reference.
pub(super) unsafe extern "C" fn free_hook(
    _parent: *mut c_void,
    ptr: *mut c_void,
    _ad: *mut c_void,
    _idx: c_int,
    _argl: c_long,
    _argp: *mut c_void,
) {
    if !ptr.is_null() {
        // SAFETY: only `install` stores values under our index, always a Box<RingOnContext>.
        drop(unsafe { Box::from_raw(ptr as *mut RingOnContext) });
    }
}

thread_local! {
    /// The connection about to be sealed and its ring, from the generation callback. A weak
    /// reference: a stale entry can never point at freed memory, and (when no ticket follows,
    /// as with `SSL_OP_NO_TICKET` on TLS 1.3) never keeps a destroyed ring's keys alive.
    pub(super) static SEALING: RefCell<Option<(usize, Weak<Ring>)>> = const { RefCell::new(None) };
}

pub(super) unsafe extern "C" fn note_ring_before_sealing(ssl: *mut c_void, arg: *mut c_void) -> c_int {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the hook of the context this connection started on, which is alive
        // while OpenSSL works on the connection.
        let hook = unsafe { &*(arg as *const RingOnContext) };
        SEALING.with(|s| *s.borrow_mut() = Some((ssl as usize, Arc::downgrade(&hook.ring))));
        if let (Some(context), Some(set)) =
            (hook.session_id_context, symbols().ok().and_then(|s| s.session_id.as_ref()))
        {
            let (bytes, len) = context.as_parts();
            // SAFETY: OpenSSL calls this with the live connection whose session it is about
            // to seal; the setter copies the bytes.
            unsafe {
                let session = (set.get_session)(ssl);
                if !session.is_null() {
                    (set.session_set1)(session, bytes, len);
                }
            }
        }
    }));
    1 // 0 would abort the handshake
}

/// The hook of the context `ssl` is on now: the one it started on, until SNI moves it.
///
/// # Safety
/// Called from inside OpenSSL's ticket callback for `ssl`, on its thread.
pub(super) unsafe fn hook_of<'a>(s: &Symbols, ssl: *mut c_void) -> Option<&'a RingOnContext> {
    // SAFETY: ssl is live; the hook lives as long as the context's ex_data holds it.
    unsafe {
        let ctx = (s.get_ssl_ctx)(ssl);
        let hook = (s.ctx_get_ex_data)(ctx, s.ex_index) as *const RingOnContext;
        hook.as_ref()
    }
}

/// The ring that seals for `ssl`: the one noted just before sealing, else its context's.
///
/// # Safety
/// As for [`hook_of`].
pub(super) unsafe fn sealing_ring(s: &Symbols, ssl: *mut c_void) -> Option<Arc<Ring>> {
    if let Some((noted, ring)) = SEALING.with(|c| c.borrow_mut().take()) {
        if noted == ssl as usize {
            return ring.upgrade();
        }
    }
    // SAFETY: per the caller's contract.
    unsafe { hook_of(s, ssl) }.map(|h| h.ring.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sealing_note_does_not_keep_a_ring_alive() {
        use crate::key::Cipher;
        use crate::ring::Schedule;
        let ring = Arc::new(Ring::random(Cipher::Aes256Cbc, Schedule::new(60, 120).unwrap(), 1_000_000).unwrap());
        let hook = RingOnContext {
            ring: ring.clone(),
            outcomes: Arc::default(),
            session_id_context: None,
            client_auth: false,
        };
        // SAFETY: the hook outlives the call; the SSL pointer is only noted, never read.
        unsafe {
            note_ring_before_sealing(
                std::ptr::NonNull::<u8>::dangling().as_ptr().cast(),
                &hook as *const RingOnContext as *mut c_void,
            )
        };
        drop(hook);
        assert_eq!(Arc::strong_count(&ring), 1, "a connection that seals no ticket must not hold its ring");
    }
}
