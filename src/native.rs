//! The fast path: a ticket-key callback written in Rust, installed on the server's `SSL_CTX`
//! the way Node installs its own (`SSL_CTX_set_tlsext_ticket_key_evp_cb` from Node 24,
//! the `HMAC_CTX` callback before). No JavaScript runs per handshake and no key byte enters
//! the JavaScript heap.
//!
//! Every OpenSSL and V8 symbol is resolved at run time from the running process (the `node`
//! binary exports them), so the addon links against neither; a missing symbol means the
//! native path is unavailable, never a call through a null pointer.
//!
//! An `SSL_CTX` finds its ring through OpenSSL ex_data, whose free callback drops the ring's
//! reference when Node frees the context, so no table keyed by addresses can go stale.
//! OpenSSL runs the ticket callback of the context the connection started on (the
//! `session_ctx`), but by the time a new ticket is sealed SNI may have switched the
//! connection to another context, which `SSL_get_SSL_CTX` then returns. So the session-ticket
//! generation callback, which OpenSSL calls with our argument just before sealing, notes
//! which ring the connection belongs to.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::key::{Cipher, TicketKey, NAME_LEN};
use crate::ring::{Decision, Miss, Ring};

const IV_LEN: usize = 16;
const CRYPTO_EX_INDEX_SSL_CTX: c_int = 1;
const OSSL_PARAM_UTF8_STRING: u32 = 4;
const OSSL_PARAM_OCTET_STRING: u32 = 5;
const OSSL_PARAM_UNMODIFIED: usize = usize::MAX;
const SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB: c_int = 72;

/// `int cb(SSL*, unsigned char name[16], unsigned char iv[16], EVP_CIPHER_CTX*, EVP_MAC_CTX* or HMAC_CTX*, int enc)`
type TicketKeyCb =
    unsafe extern "C" fn(*mut c_void, *mut u8, *mut u8, *mut c_void, *mut c_void, c_int) -> c_int;
type GenerateTicketCb = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type DecryptTicketCb =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const u8, usize, c_int, *mut c_void) -> c_int;
type ExFree = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, c_int, c_long, *mut c_void);
type CipherInit =
    unsafe extern "C" fn(*mut c_void, *const c_void, *mut c_void, *const u8, *const u8) -> c_int;

#[repr(C)]
struct OsslParam {
    key: *const c_char,
    data_type: u32,
    data: *mut c_void,
    data_size: usize,
    return_size: usize,
}

#[derive(Clone, Copy)]
enum ExternalValue {
    /// `v8::External::Value() const`, V8 up to 13 (Node 20 to 24).
    Untagged(unsafe extern "C" fn(*const c_void) -> *mut c_void),
    /// `v8::External::Value(ExternalPointerTypeTag) const`, V8 14 (Node 26).
    Tagged(unsafe extern "C" fn(*const c_void, u16) -> *mut c_void),
}

/// How the ticket callback goes onto a context: the way Node installs its own, so that
/// `uninstall` puts Node's back exactly and OpenSSL takes the same path for both.
enum Hookup {
    /// `SSL_CTX_set_tlsext_ticket_key_evp_cb` with an `EVP_MAC_CTX` (Node 24 on).
    Evp {
        set_callback: unsafe extern "C" fn(*mut c_void, Option<TicketKeyCb>) -> c_int,
        mac_set_params: unsafe extern "C" fn(*mut c_void, *const OsslParam) -> c_int,
        node_callback: Option<TicketKeyCb>,
    },
    /// The `HMAC_CTX` callback of `SSL_CTX_set_tlsext_ticket_key_cb` (Node 20 and 22). On
    /// OpenSSL 3.0 the EVP path fetches an HMAC implementation for every ticket, which costs
    /// about 4 % of a resumed TLS 1.3 handshake more than Node's own handling.
    Legacy {
        callback_ctrl: unsafe extern "C" fn(*mut c_void, c_int, Option<TicketKeyCb>) -> c_long,
        hmac_init_ex: unsafe extern "C" fn(*mut c_void, *const u8, c_int, *const c_void, *mut c_void) -> c_int,
        sha256: unsafe extern "C" fn() -> *const c_void,
        node_callback: TicketKeyCb,
        clear_evp_callback: unsafe extern "C" fn(*mut c_void, Option<TicketKeyCb>) -> c_int,
    },
}

struct Symbols {
    hookup: Hookup,
    set_session_ticket_cb: unsafe extern "C" fn(
        *mut c_void,
        Option<GenerateTicketCb>,
        Option<DecryptTicketCb>,
        *mut c_void,
    ) -> c_int,
    ctx_get_timeout: unsafe extern "C" fn(*const c_void) -> c_long,
    get_ssl_ctx: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    ctx_set_ex_data: unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> c_int,
    ctx_get_ex_data: unsafe extern "C" fn(*const c_void, c_int) -> *mut c_void,
    encrypt_init: CipherInit,
    decrypt_init: CipherInit,
    aes_128_cbc: unsafe extern "C" fn() -> *const c_void,
    aes_256_cbc: unsafe extern "C" fn() -> *const c_void,
    /// OpenSSL's DRBG for the IVs, as Node's own callback uses: no system call per ticket.
    rand_bytes: unsafe extern "C" fn(*mut u8, c_int) -> c_int,
    external_value: ExternalValue,
    ex_index: c_int,
}

/// What became of the tickets clients offered to one attached server.
#[derive(Default, Debug)]
pub struct TicketOutcomes {
    /// Opened with one of the ring's keys (OpenSSL may still refuse the session inside).
    pub opened: AtomicU64,
    pub unknown_key: AtomicU64,
    pub expired_key: AtomicU64,
}

/// What hangs off a hooked `SSL_CTX` as ex_data.
struct Hook {
    ring: Arc<Ring>,
    outcomes: Arc<TicketOutcomes>,
}

#[cfg(unix)]
fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only reads the loaded objects' symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

// Windows has no dlsym(RTLD_DEFAULT): every symbol is missing, so native mode is unavailable
// and callback mode serves.
#[cfg(not(unix))]
fn lookup(_name: &CStr) -> Option<*mut c_void> {
    None
}

macro_rules! symbol {
    ($name:literal) => {
        match lookup($name) {
            // SAFETY: the symbol has the C signature of the field it is assigned to, as
            // declared in OpenSSL 3's headers.
            Some(p) => unsafe { std::mem::transmute::<*mut c_void, _>(p) },
            None => return Err(format!("symbol {} not found in this process", $name.to_string_lossy())),
        }
    };
}

fn resolve() -> Result<Symbols, String> {
    let external_value = if let Some(p) = lookup(c"_ZNK2v88External5ValueEv") {
        // SAFETY: V8's `External::Value() const`: `this` in the first register, returns void*.
        ExternalValue::Untagged(unsafe { std::mem::transmute::<*mut c_void, _>(p) })
    } else if let Some(p) = lookup(c"_ZNK2v88External5ValueEt") {
        // SAFETY: V8 14's `External::Value(uint16_t tag) const`.
        ExternalValue::Tagged(unsafe { std::mem::transmute::<*mut c_void, _>(p) })
    } else {
        return Err("v8::External::Value is not exported by this process".into());
    };
    let get_ex_new_index: unsafe extern "C" fn(
        c_int,
        c_long,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        Option<ExFree>,
    ) -> c_int = symbol!(c"CRYPTO_get_ex_new_index");
    let mut symbols = Symbols {
        hookup: hookup()?,
        set_session_ticket_cb: symbol!(c"SSL_CTX_set_session_ticket_cb"),
        ctx_get_timeout: symbol!(c"SSL_CTX_get_timeout"),
        get_ssl_ctx: symbol!(c"SSL_get_SSL_CTX"),
        ctx_set_ex_data: symbol!(c"SSL_CTX_set_ex_data"),
        ctx_get_ex_data: symbol!(c"SSL_CTX_get_ex_data"),
        encrypt_init: symbol!(c"EVP_EncryptInit_ex"),
        decrypt_init: symbol!(c"EVP_DecryptInit_ex"),
        aes_128_cbc: symbol!(c"EVP_aes_128_cbc"),
        aes_256_cbc: symbol!(c"EVP_aes_256_cbc"),
        rand_bytes: symbol!(c"RAND_bytes"),
        external_value,
        ex_index: -1,
    };
    // SAFETY: registers a process-wide ex_data index for SSL_CTX with our free callback.
    symbols.ex_index = unsafe {
        get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), Some(free_hook))
    };
    if symbols.ex_index < 0 {
        return Err("OpenSSL refused an SSL_CTX ex_data index".into());
    }
    Ok(symbols)
}

/// Node's own ticket callback, for the two signatures it has had.
const NODE_LEGACY_CALLBACK: &CStr =
    c"_ZN4node6crypto13SecureContext27TicketCompatibilityCallbackEP6ssl_stPhS4_P17evp_cipher_ctx_stP11hmac_ctx_sti";
const NODE_EVP_CALLBACK: &CStr =
    c"_ZN4node6crypto13SecureContext27TicketCompatibilityCallbackEP6ssl_stPhS4_P17evp_cipher_ctx_stP14evp_mac_ctx_sti";

fn hookup() -> Result<Hookup, String> {
    let set_evp: unsafe extern "C" fn(*mut c_void, Option<TicketKeyCb>) -> c_int =
        symbol!(c"SSL_CTX_set_tlsext_ticket_key_evp_cb");
    if let (Some(node), Some(ctrl), Some(init), Some(sha256)) = (
        lookup(NODE_LEGACY_CALLBACK),
        lookup(c"SSL_CTX_callback_ctrl"),
        lookup(c"HMAC_Init_ex"),
        lookup(c"EVP_sha256"),
    ) {
        // SAFETY: each symbol has the C signature of the field it goes to (OpenSSL 3 headers;
        // Node's callback has the signature of a ticket callback).
        return Ok(unsafe {
            Hookup::Legacy {
                callback_ctrl: std::mem::transmute::<*mut c_void, _>(ctrl),
                hmac_init_ex: std::mem::transmute::<*mut c_void, _>(init),
                sha256: std::mem::transmute::<*mut c_void, _>(sha256),
                node_callback: std::mem::transmute::<*mut c_void, TicketKeyCb>(node),
                clear_evp_callback: set_evp,
            }
        });
    }
    Ok(Hookup::Evp {
        set_callback: set_evp,
        mac_set_params: symbol!(c"EVP_MAC_CTX_set_params"),
        // SAFETY: as above. Where Node's callback is not exported, unsetting ours leaves
        // OpenSSL's own ticket keys: tickets keep working, under keys Node does not show.
        node_callback: lookup(NODE_EVP_CALLBACK).map(|p| unsafe { std::mem::transmute::<*mut c_void, TicketKeyCb>(p) }),
    })
}

/// Sets (or with `None`, resets to Node's) the ticket callback of `ctx`.
unsafe fn set_ticket_callback(s: &Symbols, ctx: *mut c_void, ours: bool) {
    // SAFETY: ctx is a live SSL_CTX; the callbacks have the signature OpenSSL expects.
    unsafe {
        match s.hookup {
            Hookup::Evp { set_callback, node_callback, .. } => {
                set_callback(ctx, if ours { Some(ticket_key_callback) } else { node_callback });
            }
            Hookup::Legacy { callback_ctrl, node_callback, clear_evp_callback, .. } => {
                // OpenSSL prefers an EVP callback; make sure none hides ours.
                clear_evp_callback(ctx, None);
                callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB, Some(if ours { ticket_key_callback } else { node_callback }));
            }
        }
    }
}

fn symbols() -> Result<&'static Symbols, &'static str> {
    static SYMBOLS: OnceLock<Result<Symbols, String>> = OnceLock::new();
    SYMBOLS.get_or_init(resolve).as_ref().map_err(String::as_str)
}

/// `Ok` when every symbol the native path needs is present in this process.
pub fn availability() -> Result<(), &'static str> {
    symbols().map(|_| ())
}

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
pub unsafe fn session_timeout(ctx: *mut c_void) -> Result<i64, &'static str> {
    let s = symbols()?;
    // SAFETY: per the caller's contract.
    Ok(unsafe { (s.ctx_get_timeout)(ctx) } as i64)
}

/// Installs the ring's ticket callback on `ctx`, replacing a ring installed before.
///
/// # Safety
/// `ctx` must be a live `SSL_CTX*`, checked with [`session_timeout`], used on this thread.
pub unsafe fn install(ctx: *mut c_void, ring: Arc<Ring>, outcomes: Arc<TicketOutcomes>) -> Result<(), &'static str> {
    let s = symbols()?;
    let hook = Box::into_raw(Box::new(Hook { ring, outcomes }));
    // SAFETY: ctx is live; the old hook, if any, is ours and is freed once replaced.
    unsafe {
        let old = (s.ctx_get_ex_data)(ctx, s.ex_index) as *mut Hook;
        if (s.ctx_set_ex_data)(ctx, s.ex_index, hook.cast()) != 1 {
            drop(Box::from_raw(hook));
            return Err("OpenSSL refused to store the ring on the SSL_CTX");
        }
        (s.set_session_ticket_cb)(ctx, Some(note_ring_before_sealing), None, hook.cast());
        set_ticket_callback(s, ctx, true);
        if !old.is_null() {
            drop(Box::from_raw(old));
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
        let old = (s.ctx_get_ex_data)(ctx, s.ex_index) as *mut Hook;
        if old.is_null() {
            return Ok(false);
        }
        set_ticket_callback(s, ctx, false);
        (s.set_session_ticket_cb)(ctx, None, None, ptr::null_mut());
        (s.ctx_set_ex_data)(ctx, s.ex_index, ptr::null_mut());
        drop(Box::from_raw(old));
    }
    Ok(true)
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

thread_local! {
    /// The connection about to be sealed and its ring, from the generation callback. It holds
    /// a reference, not a pointer, so a stale entry can never point at freed memory.
    static SEALING: RefCell<Option<(usize, Arc<Ring>)>> = const { RefCell::new(None) };
}

unsafe extern "C" fn note_ring_before_sealing(ssl: *mut c_void, arg: *mut c_void) -> c_int {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the hook of the context this connection started on, which is alive
        // while OpenSSL works on the connection.
        let ring = unsafe { (*(arg as *const Hook)).ring.clone() };
        SEALING.with(|s| *s.borrow_mut() = Some((ssl as usize, ring)));
    }));
    1 // 0 would abort the handshake
}

/// The hook of the context `ssl` is on now: the one it started on, until SNI moves it.
///
/// # Safety
/// Called from inside OpenSSL's ticket callback for `ssl`, on its thread.
unsafe fn hook_of<'a>(s: &Symbols, ssl: *mut c_void) -> Option<&'a Hook> {
    // SAFETY: ssl is live; the hook lives as long as the context's ex_data holds it.
    unsafe {
        let ctx = (s.get_ssl_ctx)(ssl);
        let hook = (s.ctx_get_ex_data)(ctx, s.ex_index) as *const Hook;
        hook.as_ref()
    }
}

/// The ring that seals for `ssl`: the one noted just before sealing, else its context's.
///
/// # Safety
/// As for [`hook_of`].
unsafe fn sealing_ring(s: &Symbols, ssl: *mut c_void) -> Option<Arc<Ring>> {
    if let Some((noted, ring)) = SEALING.with(|c| c.borrow_mut().take()) {
        if noted == ssl as usize {
            return Some(ring);
        }
    }
    // SAFETY: per the caller's contract.
    unsafe { hook_of(s, ssl) }.map(|h| h.ring.clone())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `int (*cb)(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
///            EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx (or HMAC_CTX *hctx), int enc)`
///
/// Returns 1 (use the key), 2 (use it and renew the ticket) or 0 (no ticket / unknown key:
/// full handshake). Never a negative value, which would fail the handshake, and never a
/// panic across the FFI boundary.
unsafe extern "C" fn ticket_key_callback(
    ssl: *mut c_void,
    key_name: *mut u8,
    iv: *mut u8,
    cipher_ctx: *mut c_void,
    mac_ctx: *mut c_void,
    enc: c_int,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: OpenSSL passes valid buffers of 16 bytes and live contexts.
        unsafe { ticket_key(ssl, key_name, iv, cipher_ctx, mac_ctx, enc != 0) }
    }))
    .unwrap_or(0)
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
                set_keys(s, s.encrypt_init, key, cipher_ctx, mac_ctx, iv).then_some(1)
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
            let ok = unsafe { set_keys(s, s.decrypt_init, key, cipher_ctx, mac_ctx, iv) };
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
unsafe fn set_keys(
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
        match s.hookup {
            Hookup::Legacy { hmac_init_ex, sha256, .. } => {
                hmac_init_ex(mac_ctx, hmac.as_ptr(), hmac.len() as c_int, sha256(), ptr::null_mut()) == 1
            }
            Hookup::Evp { mac_set_params, .. } => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_test_binary_has_no_openssl_and_says_so() {
        // cargo test links no OpenSSL and no V8: the native path must report, not crash.
        if lookup(c"SSL_CTX_set_tlsext_ticket_key_evp_cb").is_none() {
            assert!(availability().is_err());
        }
    }
}
