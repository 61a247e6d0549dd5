//! The OpenSSL and V8 symbols of the running `node`, resolved once with `dlsym`: the addon links
//! against neither. A missing symbol, OpenSSL symbols from two libraries, or an OpenSSL other
//! than 3 make the native path unavailable, with the reason; nothing is ever called through a
//! null pointer.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr};
use std::sync::OnceLock;

pub(super) const CRYPTO_EX_INDEX_SSL_CTX: c_int = 1;
pub(super) const OSSL_PARAM_UTF8_STRING: u32 = 4;
pub(super) const OSSL_PARAM_OCTET_STRING: u32 = 5;
pub(super) const OSSL_PARAM_UNMODIFIED: usize = usize::MAX;
pub(super) const SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB: c_int = 72;
/// The OpenSSL major version whose ABI this file is written against.
pub(super) const OPENSSL_MAJOR: u32 = 3;

/// `int cb(SSL*, unsigned char name[16], unsigned char iv[16], EVP_CIPHER_CTX*, EVP_MAC_CTX* or HMAC_CTX*, int enc)`
pub(super) type TicketKeyCb =
    unsafe extern "C" fn(*mut c_void, *mut u8, *mut u8, *mut c_void, *mut c_void, c_int) -> c_int;
pub(super) type GenerateTicketCb = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
pub(super) type DecryptTicketCb =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const u8, usize, c_int, *mut c_void) -> c_int;
pub(super) type ExFree = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void, c_int, c_long, *mut c_void);
pub(super) type CipherInit =
    unsafe extern "C" fn(*mut c_void, *const c_void, *mut c_void, *const u8, *const u8) -> c_int;

#[repr(C)]
pub(super) struct OsslParam {
    pub(super) key: *const c_char,
    pub(super) data_type: u32,
    pub(super) data: *mut c_void,
    pub(super) data_size: usize,
    pub(super) return_size: usize,
}

#[derive(Clone, Copy)]
pub(super) enum ExternalValue {
    /// `v8::External::Value() const`, V8 up to 13 (Node 20 to 24).
    Untagged(unsafe extern "C" fn(*const c_void) -> *mut c_void),
    /// `v8::External::Value(ExternalPointerTypeTag) const`, V8 14 (Node 26).
    Tagged(unsafe extern "C" fn(*const c_void, u16) -> *mut c_void),
}

/// How the ticket callback goes onto a context: the way Node installs its own, so that
/// `uninstall` puts Node's back exactly and OpenSSL takes the same path for both.
pub(super) enum CallbackPath {
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

pub(super) struct Symbols {
    pub(super) callback_path: CallbackPath,
    pub(super) set_session_ticket_cb:
        unsafe extern "C" fn(*mut c_void, Option<GenerateTicketCb>, Option<DecryptTicketCb>, *mut c_void) -> c_int,
    pub(super) ctx_get_timeout: unsafe extern "C" fn(*const c_void) -> c_long,
    /// For `shareWith` only: native mode works without them.
    pub(super) session_id: Option<SessionIdSymbols>,
    pub(super) get_ssl_ctx: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    pub(super) ctx_set_ex_data: unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> c_int,
    pub(super) ctx_get_ex_data: unsafe extern "C" fn(*const c_void, c_int) -> *mut c_void,
    pub(super) encrypt_init: CipherInit,
    pub(super) decrypt_init: CipherInit,
    pub(super) aes_128_cbc: unsafe extern "C" fn() -> *const c_void,
    pub(super) aes_256_cbc: unsafe extern "C" fn() -> *const c_void,
    /// OpenSSL's DRBG for the IVs, as Node's own callback uses: no system call per ticket.
    pub(super) rand_bytes: unsafe extern "C" fn(*mut u8, c_int) -> c_int,
    pub(super) get_verify_mode: unsafe extern "C" fn(*const c_void) -> c_int,
    pub(super) session_get0_peer: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    pub(super) external_value: ExternalValue,
    pub(super) get_ex_new_index: GetExNewIndex,
}

/// `CRYPTO_get_ex_new_index(class_index, argl, argp, new_func, dup_func, free_func)`
pub(super) type GetExNewIndex =
    unsafe extern "C" fn(c_int, c_long, *mut c_void, *mut c_void, *mut c_void, Option<ExFree>) -> c_int;

#[cfg(unix)]
pub(super) fn lookup(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT only reads the loaded objects' symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

// Windows has no dlsym(RTLD_DEFAULT): every symbol is missing, so native mode is unavailable
// and callback mode serves.
#[cfg(not(unix))]
pub(super) fn lookup(_name: &CStr) -> Option<*mut c_void> {
    None
}

/// The base address of the loaded object that defines `p`.
#[cfg(unix)]
fn library_of(p: *mut c_void) -> Option<usize> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    let found = unsafe { libc::dladdr(p as *const c_void, info.as_mut_ptr()) };
    // SAFETY: dladdr filled `info` when it returned non-zero.
    (found != 0).then(|| unsafe { info.assume_init() }.dli_fbase as usize)
}

#[cfg(not(unix))]
fn library_of(_p: *mut c_void) -> Option<usize> {
    None
}

/// An OpenSSL symbol, remembered so that `resolve` can check that all of them come from one
/// library: a process with two OpenSSLs (an addon that links its own) could hand us a cipher
/// of one and contexts of the other.
fn openssl_symbol(name: &'static CStr, seen: &mut Vec<(&'static str, *mut c_void)>) -> Option<*mut c_void> {
    let p = lookup(name)?;
    seen.push((name.to_str().unwrap_or("?"), p));
    Some(p)
}

/// A symbol's address as the function type `F`.
///
/// # Safety
/// `p` must be the address of a function whose C signature is `F` (a function pointer type).
unsafe fn as_fn<F: Copy>(p: *mut c_void) -> F {
    const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut c_void>()) };
    // SAFETY: same size (checked at compile time); the caller vouches for the signature.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

macro_rules! symbol {
    ($seen:ident, $name:literal) => {
        match openssl_symbol($name, $seen) {
            // SAFETY: the symbol has the C signature of the field it is assigned to, as
            // declared in OpenSSL 3's headers.
            Some(p) => unsafe { as_fn(p) },
            None => return Err(format!("symbol {} not found in this process", $name.to_string_lossy())),
        }
    };
}

/// Every OpenSSL symbol comes from one loaded object, and that object is OpenSSL 3.
pub(super) fn check_openssl(seen: &[(&'static str, *mut c_void)]) -> Result<(), String> {
    let mut bases = seen.iter().map(|&(name, p)| (name, library_of(p)));
    let Some((_, Some(first))) = bases.next() else { return Err("cannot tell which library defines OpenSSL".into()) };
    if let Some((name, _)) = bases.find(|&(_, base)| base != Some(first)) {
        return Err(format!("OpenSSL symbols come from more than one library ({name} differs)"));
    }
    let version_major: unsafe extern "C" fn() -> u32 = match lookup(c"OPENSSL_version_major") {
        // SAFETY: `unsigned int OPENSSL_version_major(void)`, OpenSSL 3.0 on.
        Some(p) if library_of(p) == Some(first) => unsafe { as_fn(p) },
        _ => return Err(format!("this process's OpenSSL is not OpenSSL {OPENSSL_MAJOR}")),
    };
    // SAFETY: takes no argument and reads a constant.
    let major = unsafe { version_major() };
    if major != OPENSSL_MAJOR {
        return Err(format!(
            "this process runs OpenSSL {major}, and the native path is written for OpenSSL {OPENSSL_MAJOR}"
        ));
    }
    Ok(())
}

fn resolve() -> Result<Symbols, String> {
    let external_value = if let Some(p) = lookup(c"_ZNK2v88External5ValueEv") {
        // SAFETY: V8's `External::Value() const`: `this` in the first register, returns void*.
        ExternalValue::Untagged(unsafe { as_fn(p) })
    } else if let Some(p) = lookup(c"_ZNK2v88External5ValueEt") {
        // SAFETY: V8 14's `External::Value(uint16_t tag) const`.
        ExternalValue::Tagged(unsafe { as_fn(p) })
    } else {
        return Err("v8::External::Value is not exported by this process".into());
    };
    let mut seen = Vec::new();
    let seen = &mut seen;
    let symbols = Symbols {
        callback_path: callback_path(seen)?,
        set_session_ticket_cb: symbol!(seen, c"SSL_CTX_set_session_ticket_cb"),
        ctx_get_timeout: symbol!(seen, c"SSL_CTX_get_timeout"),
        session_id: session_id_symbols(seen),
        get_ssl_ctx: symbol!(seen, c"SSL_get_SSL_CTX"),
        ctx_set_ex_data: symbol!(seen, c"SSL_CTX_set_ex_data"),
        ctx_get_ex_data: symbol!(seen, c"SSL_CTX_get_ex_data"),
        encrypt_init: symbol!(seen, c"EVP_EncryptInit_ex"),
        decrypt_init: symbol!(seen, c"EVP_DecryptInit_ex"),
        aes_128_cbc: symbol!(seen, c"EVP_aes_128_cbc"),
        aes_256_cbc: symbol!(seen, c"EVP_aes_256_cbc"),
        rand_bytes: symbol!(seen, c"RAND_bytes"),
        get_verify_mode: symbol!(seen, c"SSL_get_verify_mode"),
        session_get0_peer: symbol!(seen, c"SSL_SESSION_get0_peer"),
        external_value,
        get_ex_new_index: symbol!(seen, c"CRYPTO_get_ex_new_index"),
    };
    check_openssl(seen)?;
    Ok(symbols)
}

pub(super) struct SessionIdSymbols {
    pub(super) ctx_set: unsafe extern "C" fn(*mut c_void, *const u8, c_uint) -> c_int,
    pub(super) set: unsafe extern "C" fn(*mut c_void, *const u8, c_uint) -> c_int,
    pub(super) get_session: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    pub(super) session_set1: unsafe extern "C" fn(*mut c_void, *const u8, c_uint) -> c_int,
}

fn session_id_symbols(seen: &mut Vec<(&'static str, *mut c_void)>) -> Option<SessionIdSymbols> {
    let ctx_set = openssl_symbol(c"SSL_CTX_set_session_id_context", seen)?;
    let set = openssl_symbol(c"SSL_set_session_id_context", seen)?;
    let get_session = openssl_symbol(c"SSL_get_session", seen)?;
    let session_set1 = openssl_symbol(c"SSL_SESSION_set1_id_context", seen)?;
    // SAFETY: each has the C signature of its field (OpenSSL 3 headers).
    Some(unsafe {
        SessionIdSymbols {
            ctx_set: as_fn(ctx_set),
            set: as_fn(set),
            get_session: as_fn(get_session),
            session_set1: as_fn(session_set1),
        }
    })
}

/// Node's own ticket callback, for the two signatures it has had.
const NODE_LEGACY_CALLBACK: &CStr =
    c"_ZN4node6crypto13SecureContext27TicketCompatibilityCallbackEP6ssl_stPhS4_P17evp_cipher_ctx_stP11hmac_ctx_sti";
const NODE_EVP_CALLBACK: &CStr =
    c"_ZN4node6crypto13SecureContext27TicketCompatibilityCallbackEP6ssl_stPhS4_P17evp_cipher_ctx_stP14evp_mac_ctx_sti";

fn callback_path(seen: &mut Vec<(&'static str, *mut c_void)>) -> Result<CallbackPath, String> {
    let set_evp: unsafe extern "C" fn(*mut c_void, Option<TicketKeyCb>) -> c_int =
        symbol!(seen, c"SSL_CTX_set_tlsext_ticket_key_evp_cb");
    if let (Some(node), Some(ctrl), Some(init), Some(sha256)) = (
        lookup(NODE_LEGACY_CALLBACK),
        openssl_symbol(c"SSL_CTX_callback_ctrl", seen),
        openssl_symbol(c"HMAC_Init_ex", seen),
        openssl_symbol(c"EVP_sha256", seen),
    ) {
        // SAFETY: each symbol has the C signature of the field it goes to (OpenSSL 3 headers;
        // Node's callback has the signature of a ticket callback).
        return Ok(unsafe {
            CallbackPath::Legacy {
                callback_ctrl: as_fn(ctrl),
                hmac_init_ex: as_fn(init),
                sha256: as_fn(sha256),
                node_callback: as_fn::<TicketKeyCb>(node),
                clear_evp_callback: set_evp,
            }
        });
    }
    Ok(CallbackPath::Evp {
        set_callback: set_evp,
        mac_set_params: symbol!(seen, c"EVP_MAC_CTX_set_params"),
        // SAFETY: as above. Where Node's callback is not exported, unsetting ours leaves
        // OpenSSL's own ticket keys: tickets keep working, under keys Node does not show.
        node_callback: lookup(NODE_EVP_CALLBACK).map(|p| unsafe { as_fn::<TicketKeyCb>(p) }),
    })
}

pub(super) fn symbols() -> Result<&'static Symbols, &'static str> {
    static SYMBOLS: OnceLock<Result<Symbols, String>> = OnceLock::new();
    SYMBOLS.get_or_init(resolve).as_ref().map_err(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_test_binary_has_no_openssl_and_says_so() {
        // cargo test links no OpenSSL and no V8: the native path must report, not crash.
        if lookup(c"SSL_CTX_set_tlsext_ticket_key_evp_cb").is_none() {
            assert!(symbols().is_err());
        }
    }

    #[test]
    fn openssl_from_two_libraries_or_not_openssl_3_is_refused() {
        let here = openssl_from_two_libraries_or_not_openssl_3_is_refused as *mut c_void;
        let libc_malloc = libc::malloc as *mut c_void;
        let err = check_openssl(&[("here", here), ("malloc", libc_malloc)]).unwrap_err();
        assert!(err.contains("more than one library"), "{err}");
        // One library, but no OpenSSL 3 in it (a plain test binary has none).
        if lookup(c"OPENSSL_version_major").is_none() {
            let err = check_openssl(&[("here", here)]).unwrap_err();
            assert!(err.contains("not OpenSSL 3"), "{err}");
        }
    }
}
