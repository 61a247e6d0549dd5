//! tls-ticket-keys: session-ticket key rings for Node.js TLS servers.
//!
//! The Rust core (`key`, `ring`, `native`) is plain Rust and tested with `cargo test`; the
//! `napi` module is the N-API layer and only converts types and errors. The JavaScript layer in `lib/`
//! validates arguments and turns the error codes below into Node-style errors.

pub mod clock;
pub mod derive;
pub mod fallback;
pub mod inspect;
pub mod key;
pub mod mirror;
pub mod napi;
pub mod native;
pub mod ring;
pub mod secrets;
pub mod session;
pub mod source;
pub mod ticket;
pub mod wrap;
