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

mod callback;
mod hook;
mod symbols;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::ring::Ring;

pub use hook::{install, uninstall};
pub use symbols::{availability, external_pointer, session_timeout, SessionIdContext, MAX_SESSION_ID_CONTEXT};

/// What became of the tickets clients offered to one attached server.
#[derive(Default, Debug)]
pub struct TicketOutcomes {
    /// Opened with one of the ring's keys (OpenSSL may still refuse the session inside).
    pub opened: AtomicU64,
    pub unknown_key: AtomicU64,
    pub expired_key: AtomicU64,
}

/// What hangs off a hooked `SSL_CTX` as ex_data.
pub(crate) struct RingOnContext {
    pub(crate) ring: Arc<Ring>,
    pub(crate) outcomes: Arc<TicketOutcomes>,
    /// The context of the servers this one shares sessions with (`shareWith`), if any.
    pub(crate) session_id_context: Option<SessionIdContext>,
    /// Whether the server asked for client certificates when its session id context was set
    /// (that context then carries its policy). A connection that asks for one on a context
    /// set without (`server.requestCert` turned on later) resumes nothing.
    pub(crate) client_auth: bool,
}
