//! The wall clock, read in one place. Everything below the N-API layer and the OpenSSL
//! callback takes the time as a parameter, so tests control it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now; 0 for a clock set before 1970.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
