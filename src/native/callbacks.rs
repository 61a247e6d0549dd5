//! The callbacks OpenSSL calls per handshake: the key callback, which seals and opens with the
//! ring's keys (the EVP setup of both OpenSSL paths); the generation callback, which notes the
//! ring that is about to seal (SNI may have moved the connection to another context by then)
//! and puts the shared session id context on the session; and the decrypt callback, which puts
//! it on the connection and keeps client authentication from being skipped.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::context::SessionIdContext;
use super::hook::{ex_index, hook_on, Hook};
use super::symbols::{
    symbols, CallbackPath, CipherInit, OsslParam, SessionIdSymbols, Symbols, OSSL_PARAM_OCTET_STRING,
    OSSL_PARAM_UNMODIFIED, OSSL_PARAM_UTF8_STRING,
};
use crate::clock::now;
use crate::key::{scrubbed, Cipher, TicketKey, NAME_LEN};
use crate::ring::{Decision, Miss, Ring};

const IV_LEN: usize = 16;
/// Set on a connection whose server asks for a client certificate (Node's `requestCert`).
const SSL_VERIFY_PEER: c_int = 0x01;

/// `SSL_TICKET_STATUS` values that mean the ticket opened (OpenSSL's ssl.h).
const SSL_TICKET_SUCCESS: c_int = 5;
const SSL_TICKET_SUCCESS_RENEW: c_int = 6;
/// `SSL_TICKET_NONE`: no ticket was offered.
const SSL_TICKET_NONE: c_int = 2;
/// `SSL_TICKET_RETURN` values of the decrypt callback.
const SSL_TICKET_RETURN_ABORT: c_int = 0;
const SSL_TICKET_RETURN_IGNORE: c_int = 1;
const SSL_TICKET_RETURN_IGNORE_RENEW: c_int = 2;
const SSL_TICKET_RETURN_USE: c_int = 3;
const SSL_TICKET_RETURN_USE_RENEW: c_int = 4;
/// `SSL_TICKET_FATAL_ERR_OTHER` and below: OpenSSL failed to process the ticket.
const SSL_TICKET_FATAL_ERR_OTHER: c_int = 1;

/// OpenSSL's decrypt callback, run once a ticket has opened and before the session is used:
/// on a connection that asks for a client certificate, a session without one does not resume.
/// The session id context that `attach()` sets already keeps sessions within one client-auth
/// policy; this holds where that context cannot tell (a policy changed after `attach()`), and
/// keeps Node 20 and 22 from calling a resumed TLS 1.3 session without a certificate
/// `authorized`.
pub(super) unsafe extern "C" fn check_client_auth(
    ssl: *mut c_void,
    session: *mut c_void,
    _key_name: *const u8,
    _key_name_len: usize,
    status: c_int,
    arg: *mut c_void,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // OpenSSL compares the session's context with the connection's after this returns.
        // SAFETY: `arg` is the hook of the context the connection started on, alive while
        // OpenSSL works on the connection.
        let hook = unsafe { &*(arg as *const Hook) };
        with_session_id_context(hook, |set, context| {
            let (bytes, len) = context.as_parts();
            // SAFETY: the live connection; the setter copies the bytes.
            unsafe { (set.set)(ssl, bytes, len) };
        });
        let opened = status == SSL_TICKET_SUCCESS || status == SSL_TICKET_SUCCESS_RENEW;
        if !opened {
            // What OpenSSL does without a callback: a full handshake, with a new ticket
            // unless none was offered, and a failure stays one.
            return match status {
                SSL_TICKET_NONE => SSL_TICKET_RETURN_IGNORE,
                s if s <= SSL_TICKET_FATAL_ERR_OTHER => SSL_TICKET_RETURN_ABORT,
                _ => SSL_TICKET_RETURN_IGNORE_RENEW,
            };
        }
        let Ok(s) = symbols() else { return SSL_TICKET_RETURN_IGNORE_RENEW };
        // SAFETY: OpenSSL passes the live connection and the session it just opened.
        let verifies = unsafe { (s.get_verify_mode)(ssl) } & SSL_VERIFY_PEER != 0;
        // A session without a certificate never skips client authentication; nor does any
        // session on a server whose session id context does not carry its policy.
        let refuse = verifies && (!hook.client_auth || unsafe { (s.session_get0_peer)(session) }.is_null());
        if refuse {
            SSL_TICKET_RETURN_IGNORE_RENEW
        } else if status == SSL_TICKET_SUCCESS_RENEW {
            SSL_TICKET_RETURN_USE_RENEW
        } else {
            SSL_TICKET_RETURN_USE
        }
    }))
    .unwrap_or(SSL_TICKET_RETURN_IGNORE_RENEW)
}

/// `int (*cb)(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
///            EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx (or HMAC_CTX *hctx), int enc)`
///
/// Returns 1 (use the key), 2 (use it and renew the ticket) or 0 (no ticket / unknown key:
/// full handshake). Never a negative value, which would fail the handshake, and never a
/// panic across the FFI boundary.
pub(super) unsafe extern "C" fn ticket_key_callback(
    ssl: *mut c_void,
    key_name: *mut u8,
    iv: *mut u8,
    cipher_ctx: *mut c_void,
    mac_ctx: *mut c_void,
    enc: c_int,
) -> c_int {
    // A roll of the schedule may make keys on the way.
    scrubbed(|| {
        catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: OpenSSL passes valid buffers of 16 bytes and live contexts.
            unsafe { ticket_key(ssl, key_name, iv, cipher_ctx, mac_ctx, enc != 0) }
        }))
        .unwrap_or(0)
    })
}

unsafe fn ticket_key(
    ssl: *mut c_void,
    key_name: *mut u8,
    iv: *mut u8,
    cipher_ctx: *mut c_void,
    mac_ctx: *mut c_void,
    enc: bool,
) -> c_int {
    let Ok(s) = symbols() else { return 0 };
    if enc {
        // SAFETY: inside OpenSSL's callback for this ssl.
        let Some(ring) = (unsafe { sealing_ring(s, ssl) }) else { return 0 };
        ring.encrypt_with(now(), |key| {
            // SAFETY: key_name and iv point at 16 writable bytes.
            unsafe {
                if (s.rand_bytes)(iv, IV_LEN as c_int) != 1 {
                    return None;
                }
                ptr::copy_nonoverlapping(key.name().as_ptr(), key_name, NAME_LEN);
                load_key(s, s.encrypt_init, key, cipher_ctx, mac_ctx, iv).then_some(1)
            }
        })
        .unwrap_or(0)
    } else {
        // SAFETY: inside OpenSSL's callback for this ssl; tickets are opened on the context
        // the connection started on, before SNI can move it.
        let Some(hook) = (unsafe { hook_of(s, ssl) }) else { return 0 };
        let mut name = [0u8; NAME_LEN];
        // SAFETY: key_name points at the 16-byte name of the ticket.
        unsafe { ptr::copy_nonoverlapping(key_name, name.as_mut_ptr(), NAME_LEN) };
        let opened = hook.ring.decrypt_with(&name, now(), |key, decision| {
            // SAFETY: live contexts from OpenSSL; iv points at the ticket's 16-byte IV.
            let ok = unsafe { load_key(s, s.decrypt_init, key, cipher_ctx, mac_ctx, iv) };
            ok.then_some(match decision {
                Decision::Resume => 1,
                Decision::Renew => 2,
            })
        });
        let counter = match opened {
            Ok(_) => &hook.outcomes.opened,
            Err(Miss::UnknownKey) => &hook.outcomes.unknown_key,
            Err(Miss::ExpiredKey) => &hook.outcomes.expired_key,
            Err(Miss::Unusable) => return 0,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        opened.unwrap_or(0)
    }
}

/// Sets the AES-CBC key and IV on the cipher context and the HMAC-SHA256 key on the MAC context.
unsafe fn load_key(
    s: &Symbols,
    init: CipherInit,
    key: &TicketKey,
    cipher_ctx: *mut c_void,
    mac_ctx: *mut c_void,
    iv: *const u8,
) -> bool {
    // SAFETY: OpenSSL copies the key into the contexts before returning.
    unsafe {
        let cipher = match key.cipher() {
            Cipher::Aes128Cbc => (s.aes_128_cbc)(),
            Cipher::Aes256Cbc => (s.aes_256_cbc)(),
        };
        if init(cipher_ctx, cipher, ptr::null_mut(), key.aes_key().as_ptr(), iv) != 1 {
            return false;
        }
        let hmac = key.hmac_key();
        match s.callback_path {
            CallbackPath::Legacy { hmac_init_ex, sha256, .. } => {
                hmac_init_ex(mac_ctx, hmac.as_ptr(), hmac.len() as c_int, sha256(), ptr::null_mut()) == 1
            }
            CallbackPath::Evp { mac_set_params, .. } => {
                let params = [
                    OsslParam {
                        key: c"key".as_ptr(),
                        data_type: OSSL_PARAM_OCTET_STRING,
                        data: hmac.as_ptr() as *mut c_void,
                        data_size: hmac.len(),
                        return_size: OSSL_PARAM_UNMODIFIED,
                    },
                    OsslParam {
                        key: c"digest".as_ptr(),
                        data_type: OSSL_PARAM_UTF8_STRING,
                        data: c"SHA256".as_ptr() as *mut c_void,
                        data_size: c"SHA256".count_bytes(),
                        return_size: OSSL_PARAM_UNMODIFIED,
                    },
                    OsslParam { key: ptr::null(), data_type: 0, data: ptr::null_mut(), data_size: 0, return_size: 0 },
                ];
                mac_set_params(mac_ctx, params.as_ptr()) == 1
            }
        }
    }
}

/// Runs `apply` with the session id context setters when the hook shares sessions with other
/// servers (`shareWith`): the one place both callbacks get the context and its setters.
fn with_session_id_context(hook: &Hook, apply: impl FnOnce(&SessionIdSymbols, &SessionIdContext)) {
    if let (Some(context), Some(set)) = (&hook.session_id_context, symbols().ok().and_then(|s| s.session_id.as_ref())) {
        apply(set, context);
    }
}

thread_local! {
    /// The connection about to be sealed and its ring, from the generation callback. A weak
    /// reference: a stale entry can never point at freed memory, and (when no ticket follows,
    /// as with `SSL_OP_NO_TICKET` on TLS 1.3) never keeps a destroyed ring's keys alive.
    static SEALING: RefCell<Option<(usize, Weak<Ring>)>> = const { RefCell::new(None) };
}

pub(super) unsafe extern "C" fn note_ring_before_sealing(ssl: *mut c_void, arg: *mut c_void) -> c_int {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the hook of the context this connection started on, which is alive
        // while OpenSSL works on the connection.
        let hook = unsafe { &*(arg as *const Hook) };
        SEALING.with(|s| *s.borrow_mut() = Some((ssl as usize, Arc::downgrade(&hook.ring))));
        with_session_id_context(hook, |set, context| {
            let (bytes, len) = context.as_parts();
            // SAFETY: OpenSSL calls this with the live connection whose session it is about
            // to seal; the setter copies the bytes.
            unsafe {
                let session = (set.get_session)(ssl);
                if !session.is_null() {
                    (set.session_set1)(session, bytes, len);
                }
            }
        });
    }));
    1 // 0 would abort the handshake
}

/// The hook of the context `ssl` is on now: the one it started on, until SNI moves it.
///
/// # Safety
/// Called from inside OpenSSL's ticket callback for `ssl`, on its thread.
unsafe fn hook_of<'a>(s: &Symbols, ssl: *mut c_void) -> Option<&'a Hook> {
    let index = ex_index().ok()?;
    // SAFETY: ssl is live; the hook lives as long as the context's ex_data holds it.
    unsafe { hook_on(s, index, (s.get_ssl_ctx)(ssl)) }
}

/// Forgets the note of a ring about to seal (its context is losing its hook).
pub(super) fn forget_sealing_note() {
    SEALING.with(|noted| noted.borrow_mut().take());
}

/// The ring that seals for `ssl`: the one noted just before sealing, else its context's.
///
/// # Safety
/// As for [`hook_of`].
unsafe fn sealing_ring(s: &Symbols, ssl: *mut c_void) -> Option<Arc<Ring>> {
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
        let hook = Hook { ring: ring.clone(), outcomes: Arc::default(), session_id_context: None, client_auth: false };
        // SAFETY: the hook outlives the call; the SSL pointer is only noted, never read.
        unsafe {
            note_ring_before_sealing(
                std::ptr::NonNull::<u8>::dangling().as_ptr().cast(),
                &hook as *const Hook as *mut c_void,
            )
        };
        drop(hook);
        assert_eq!(Arc::strong_count(&ring), 1, "a connection that seals no ticket must not hold its ring");
    }
}
