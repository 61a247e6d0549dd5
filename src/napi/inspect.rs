//! What a session or a ticket says about itself, for `inspectSession()` and `inspectTicket()`.

use napi::bindgen_prelude::BufferSlice;
use napi_derive::napi;

use super::{Error, Result, INVALID_ARG_VALUE};
use crate::key::hex;
use crate::session::parse_session;

#[napi(object)]
pub struct SessionSummary {
    pub protocol: String,
    /// IANA number of the cipher suite.
    pub cipher_suite: u32,
    /// Unix seconds.
    pub created_at: f64,
    pub timeout: f64,
    pub ticket_lifetime_hint: f64,
    /// Unix seconds after which a client should not offer the session (at most 7 days).
    pub expires_at: f64,
    pub server_name: Option<String>,
    pub alpn: Option<String>,
    /// The ticket's first 16 bytes (the key name) in hex, as it travels in clear.
    pub ticket_key_name: Option<String>,
    /// The ticket's IV in hex (bytes 16 to 32), also in clear on the wire; unique per ticket.
    pub ticket_iv: Option<String>,
    /// The ticket's length in bytes. A TLS 1.3 server that keeps sessions in its own cache
    /// instead of in tickets (OpenSSL with SSL_OP_NO_TICKET) sends just a session id.
    pub ticket_length: Option<u32>,
}

#[napi(object)]
pub struct TicketReport {
    /// The key name the ticket claims, in hex; null when it is too short to be a ticket.
    pub key_name: Option<String>,
    /// 'current', 'next', 'previous', or 'unknown' (retired, or never this ring's).
    pub key_state: String,
    /// A secret file's ring: the fingerprint of the secret whose key sealed it.
    pub secret: Option<String>,
    /// The session inside, when the ticket opened.
    pub session: Option<SessionSummary>,
    /// Why it did not open.
    pub error: Option<String>,
}

/// What a session (the DER from Node's 'session' event or getSession()) says about itself.
#[napi]
pub fn inspect_session(der: BufferSlice) -> Result<SessionSummary> {
    summarize_session(&der)
}

pub(super) fn summarize_session(der: &[u8]) -> Result<SessionSummary> {
    let info = parse_session(der).map_err(|e| Error::new(INVALID_ARG_VALUE, e.to_string()))?;
    let part = |range: std::ops::Range<usize>| info.ticket.as_ref().and_then(|t| t.get(range)).map(hex);
    Ok(SessionSummary {
        protocol: info.protocol().to_owned(),
        cipher_suite: info.cipher_suite as u32,
        created_at: info.created_at as f64,
        timeout: info.timeout as f64,
        ticket_lifetime_hint: info.ticket_lifetime_hint as f64,
        expires_at: info.expires_at() as f64,
        ticket_key_name: part(0..16),
        ticket_iv: part(16..32),
        ticket_length: info.ticket.as_ref().map(|t| t.len() as u32),
        server_name: info.server_name,
        alpn: info.alpn,
    })
}
