//! The fast path: a ticket-key callback written in Rust, installed on the server's `SSL_CTX`
//! the way Node installs its own (`SSL_CTX_set_tlsext_ticket_key_evp_cb` from Node 24,
//! the `HMAC_CTX` callback before). No JavaScript runs per handshake and no key byte enters
//! the JavaScript heap.
//!
//! Every OpenSSL and V8 symbol is resolved at run time from the running process (the `node`
//! binary exports them), so the addon links against neither; a missing symbol means the
//! native path is unavailable, never a call through a null pointer.
//!
//! An `SSL_CTX` finds its ring through its hook (`hook.rs`). OpenSSL runs the ticket callback of the context the connection started on (the
//! `session_ctx`), but by the time a new ticket is sealed SNI may have switched the
//! connection to another context, which `SSL_get_SSL_CTX` then returns. So the session-ticket
//! generation callback, which OpenSSL calls with our argument just before sealing, notes
//! which ring the connection belongs to.

// One way down: install -> callbacks -> hook -> context -> symbols.
mod callbacks;
mod context;
mod hook;
mod install;
mod symbols;

pub use context::{external_pointer, session_timeout, SessionIdContext, MAX_SESSION_ID_CONTEXT};
pub use hook::TicketOutcomes;
pub use install::{install, uninstall};

/// `Ok` when every symbol the native path needs is present in this process, and OpenSSL gave
/// the hooks an ex_data index.
pub fn availability() -> Result<(), &'static str> {
    symbols::symbols()?;
    hook::ex_index().map(|_| ())
}
