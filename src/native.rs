//! The fast path: a ticket-key callback written in Rust, installed on the server's `SSL_CTX`
//! with `SSL_CTX_set_tlsext_ticket_key_evp_cb`. No JavaScript runs per handshake and no key
//! byte enters the JavaScript heap.
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
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::key::{fill_random, Cipher, TicketKey, NAME_LEN};
use crate::ring::{Decision, Ring};

const IV_LEN: usize = 16;
const CRYPTO_EX_INDEX_SSL_CTX: c_int = 1;
const OSSL_PARAM_UTF8_STRING: u32 = 4;
const OSSL_PARAM_OCTET_STRING: u32 = 5;
const OSSL_PARAM_UNMODIFIED: usize = usize::MAX;

type TicketKeyEvpCb =
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

struct Symbols {
    set_ticket_key_evp_cb: unsafe extern "C" fn(*mut c_void, Option<TicketKeyEvpCb>) -> c_int,
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
    mac_set_params: unsafe extern "C" fn(*mut c_void, *const OsslParam) -> c_int,
    external_value: ExternalValue,
    /// Node's own ticket callback where Node installs it as the EVP callback (Node 24 on);
    /// older Node installs the pre-EVP one, which OpenSSL falls back to once ours is unset.
    node_ticket_callback: Option<TicketKeyEvpCb>,
    ex_index: c_int,
}

/// What hangs off a hooked `SSL_CTX` as ex_data.
struct Hook {
    ring: Arc<Ring>,
}

fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only reads the loaded objects' symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
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
        set_ticket_key_evp_cb: symbol!(c"SSL_CTX_set_tlsext_ticket_key_evp_cb"),
        set_session_ticket_cb: symbol!(c"SSL_CTX_set_session_ticket_cb"),
        ctx_get_timeout: symbol!(c"SSL_CTX_get_timeout"),
        get_ssl_ctx: symbol!(c"SSL_get_SSL_CTX"),
        ctx_set_ex_data: symbol!(c"SSL_CTX_set_ex_data"),
        ctx_get_ex_data: symbol!(c"SSL_CTX_get_ex_data"),
        encrypt_init: symbol!(c"EVP_EncryptInit_ex"),
        decrypt_init: symbol!(c"EVP_DecryptInit_ex"),
        aes_128_cbc: symbol!(c"EVP_aes_128_cbc"),
        aes_256_cbc: symbol!(c"EVP_aes_256_cbc"),
        mac_set_params: symbol!(c"EVP_MAC_CTX_set_params"),
        external_value,
        node_ticket_callback: lookup(
            c"_ZN4node6crypto13SecureContext27TicketCompatibilityCallbackEP6ssl_stPhS4_P17evp_cipher_ctx_stP14evp_mac_ctx_sti",
        )
        // SAFETY: Node's `TicketCompatibilityCallback(SSL*, unsigned char*, unsigned char*,
        // EVP_CIPHER_CTX*, EVP_MAC_CTX*, int)`, the signature of an EVP ticket callback.
        .map(|p| unsafe { std::mem::transmute::<*mut c_void, TicketKeyEvpCb>(p) }),
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
pub unsafe fn install(ctx: *mut c_void, ring: Arc<Ring>) -> Result<(), &'static str> {
    let s = symbols()?;
    let hook = Box::into_raw(Box::new(Hook { ring }));
    // SAFETY: ctx is live; the old hook, if any, is ours and is freed once replaced.
    unsafe {
        let old = (s.ctx_get_ex_data)(ctx, s.ex_index) as *mut Hook;
        if (s.ctx_set_ex_data)(ctx, s.ex_index, hook.cast()) != 1 {
            drop(Box::from_raw(hook));
            return Err("OpenSSL refused to store the ring on the SSL_CTX");
        }
        (s.set_session_ticket_cb)(ctx, Some(note_ring_before_sealing), None, hook.cast());
        (s.set_ticket_key_evp_cb)(ctx, Some(ticket_key_callback));
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
        (s.set_ticket_key_evp_cb)(ctx, s.node_ticket_callback);
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

/// The ring of the context that `ssl` started on.
///
/// # Safety
/// Called from inside OpenSSL's ticket callback for `ssl`, on its thread.
unsafe fn ring_of(s: &Symbols, ssl: *mut c_void, enc: bool) -> Option<Arc<Ring>> {
    if enc {
        if let Some((noted, ring)) = SEALING.with(|c| c.borrow_mut().take()) {
            if noted == ssl as usize {
                return Some(ring);
            }
        }
    }
    // SAFETY: ssl is live; the hook lives as long as the context's ex_data holds it.
    unsafe {
        let ctx = (s.get_ssl_ctx)(ssl);
        let hook = (s.ctx_get_ex_data)(ctx, s.ex_index) as *const Hook;
        (!hook.is_null()).then(|| (*hook).ring.clone())
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `int (*cb)(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
///            EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)`
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
    // SAFETY: inside OpenSSL's callback for this ssl.
    let Some(ring) = (unsafe { ring_of(s, ssl, enc) }) else { return 0 };
    if enc {
        ring.encrypt_with(now(), |key| {
            let mut fresh_iv = [0u8; IV_LEN];
            fill_random(&mut fresh_iv).ok()?;
            // SAFETY: key_name and iv point at 16 writable bytes.
            unsafe {
                ptr::copy_nonoverlapping(key.name().as_ptr(), key_name, NAME_LEN);
                ptr::copy_nonoverlapping(fresh_iv.as_ptr(), iv, IV_LEN);
                set_keys(s, s.encrypt_init, key, cipher_ctx, mac_ctx, iv).then_some(1)
            }
        })
        .unwrap_or(0)
    } else {
        let mut name = [0u8; NAME_LEN];
        // SAFETY: key_name points at the 16-byte name of the ticket.
        unsafe { ptr::copy_nonoverlapping(key_name, name.as_mut_ptr(), NAME_LEN) };
        ring.decrypt_with(&name, now(), |key, decision| {
            // SAFETY: live contexts from OpenSSL; iv points at the ticket's 16-byte IV.
            let ok = unsafe { set_keys(s, s.decrypt_init, key, cipher_ctx, mac_ctx, iv) };
            ok.then_some(match decision {
                Decision::Resume => 1,
                Decision::Renew => 2,
            })
        })
        .unwrap_or(0)
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
        (s.mac_set_params)(mac_ctx, params.as_ptr()) == 1
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
