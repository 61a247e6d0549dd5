//! tls-ticket-keys: session-ticket key rings for Node.js TLS servers.
//!
//! The Rust core (`key`, `ring`, `derive`, `ticket`, `wrap`, `mirror`, `fallback`, ...) is plain
//! Rust, tested with `cargo test`; `native` is the OpenSSL fast path; `napi` is the N-API layer,
//! which converts types and maps the core's typed errors to Node-style error codes
//! (`napi/mod.rs`). The JavaScript layer in `lib/` validates options and writes the messages
//! that name them.

pub mod clock;
pub mod derive;
pub mod edge;
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
