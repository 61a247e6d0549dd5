//! tls-ticket-keys: session-ticket key rings for Node.js TLS servers.
//!
//! The Rust core (`key`, `ring`, `derive`, `ticket`, `wrap`, `mirror`, `fallback`, ...) is plain
//! Rust, tested with `cargo test`; `native` is the OpenSSL fast path; `napi` is the N-API layer,
//! which converts types and maps the core's typed errors to Node-style error codes
//! (`napi/mod.rs`). The JavaScript layer in `lib/` validates options and writes the messages
//! that name them. Only `napi` is public; the integration tests reach the core through the
//! `testing` module, built with the `testing` feature.

mod clock;
mod derive;
mod edge;
mod fallback;
mod inspect;
mod key;
mod mirror;
// The addon's surface: napi-derive registers its items with Node, except in `cargo test`
// builds, where only being public keeps them from reading as dead code.
pub mod napi;
mod native;
mod ring;
mod secrets;
mod session;
mod source;
mod ticket;
mod wrap;

/// What the integration tests reach (`tests/zeroize.rs`, `tests/properties.rs`), with the
/// `testing` feature only: the modules themselves stay private to the crate.
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::derive::DerivedKeys;
    pub use crate::fallback::FallbackRoot;
    pub use crate::key::{Cipher, TicketKey};
    pub use crate::ring::{Ring, Schedule};
    pub use crate::session::parse_session;
    pub use crate::ticket::{open, seal, TicketError, MIN_TICKET_LEN};
    pub use crate::wrap::Wrapper;
}
