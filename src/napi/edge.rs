//! Keys for edge servers that follow the ring (nginx key files, HAProxy's runtime API).

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::ring::NativeRing;
use super::{ring_error, Error, Result, INVALID_ARG_VALUE, OUT_OF_RANGE};
use crate::clock::now;
use crate::edge::{edge_keys, EdgeFormat};
use crate::key::{hex, scrubbed};
use crate::ring::MAX_SCHEDULED_KEYS;

/// Keys for another server that follows the ring, in its format (`crate::edge`).
#[napi(object)]
pub struct EdgeKeyExport {
    /// The keys in the server's format; the caller wipes it once written or sent.
    pub keys: Buffer,
    /// The public name (hex) of each slot's key in order, null for a random filler.
    pub names: Vec<Option<String>>,
    /// Previous keys the ring holds that did not fit.
    pub left_out: u32,
}

#[napi]
impl NativeRing {
    /// The ring's keys for nginx key files or HAProxy's runtime API (`format`: 'nginx' or
    /// 'haproxy'), with `previous` previous slots for nginx: the one way key bytes reach
    /// JavaScript for `exportKeys()`, which writes or sends them and wipes the buffer.
    #[napi]
    pub fn export_edge_keys(&self, format: String, previous: u32) -> Result<EdgeKeyExport> {
        scrubbed(|| {
            let format = EdgeFormat::from_name(&format)
                .ok_or_else(|| Error::new(INVALID_ARG_VALUE, "the format must be nginx or haproxy".to_owned()))?;
            // A ring never holds more previous keys than it schedules: more slots would only be
            // random fillers, and a count near u32::MAX asks for an allocation that aborts.
            if u64::from(previous) > MAX_SCHEDULED_KEYS {
                let message = format!("at most {MAX_SCHEDULED_KEYS} previous slots, got {previous}");
                return Err(Error::new(OUT_OF_RANGE, message));
            }
            let out = edge_keys(&self.ring, format, previous as usize, now()).map_err(ring_error)?;
            Ok(EdgeKeyExport {
                keys: Buffer::from(&out.bytes[..]),
                names: out.names.iter().map(|n| n.map(|n| hex(&n))).collect(),
                left_out: out.left_out as u32,
            })
        })
    }
}
