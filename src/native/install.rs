//! Puts a ring on an `SSL_CTX` and takes it off again: the hook stored as ex_data, the
//! ticket callbacks set the way Node sets its own, so that `uninstall` puts Node's back
//! exactly and OpenSSL takes the same path for both.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use super::callbacks::{check_client_auth, forget_sealing_note, note_ring_before_sealing, ticket_key_callback};
use super::context::SessionIdContext;
use super::hook::{ex_index, Hook, TicketOutcomes};
use super::symbols::{symbols, CallbackPath, Symbols, SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB};
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
    let index = ex_index()?;
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
    let hook = Box::into_raw(Box::new(Hook { ring, outcomes, session_id_context, client_auth }));
    // SAFETY: ctx is live; the old hook, if any, is ours and is freed once replaced, after
    // every callback points at the new one.
    unsafe {
        let old = (s.ctx_get_ex_data)(ctx, index) as *mut Hook;
        if (s.ctx_set_ex_data)(ctx, index, hook.cast()) != 1 {
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
    let index = ex_index()?;
    // SAFETY: ctx is live; the callbacks are cleared before the hook they point at is freed.
    unsafe {
        let old = (s.ctx_get_ex_data)(ctx, index) as *mut Hook;
        if old.is_null() {
            return Ok(false);
        }
        let restored = set_ticket_callback(s, ctx, false);
        let cleared = (s.set_session_ticket_cb)(ctx, None, None, ptr::null_mut()) == 1;
        (s.ctx_set_ex_data)(ctx, index, ptr::null_mut());
        drop(Box::from_raw(old));
        forget_sealing_note();
        if !(restored && cleared) {
            return Err("OpenSSL refused to put Node's ticket callback back");
        }
    }
    Ok(true)
}

/// Sets the ring's ticket callback on `ctx`, or (`ours` false) puts Node's back. False when
/// OpenSSL refused.
unsafe fn set_ticket_callback(s: &Symbols, ctx: *mut c_void, ours: bool) -> bool {
    // SAFETY: ctx is a live SSL_CTX; the callbacks have the signature OpenSSL expects.
    unsafe {
        match s.callback_path {
            CallbackPath::Evp { set_callback, node_callback, .. } => {
                set_callback(ctx, if ours { Some(ticket_key_callback) } else { node_callback }) == 1
            }
            CallbackPath::Legacy { callback_ctrl, node_callback, clear_evp_callback, .. } => {
                // OpenSSL prefers an EVP callback; make sure none hides ours.
                clear_evp_callback(ctx, None) == 1
                    && callback_ctrl(
                        ctx,
                        SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB,
                        Some(if ours { ticket_key_callback } else { node_callback }),
                    ) == 1
            }
        }
    }
}
