//! A cluster's part: the primary seals its ring's keys to each worker's inbox, and a worker's
//! ring takes them; key bytes never reach JavaScript.

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::ring::NativeRing;
use super::{key_error, mirror_error, ring_error, Result};
use crate::clock::now;
use crate::key::scrubbed;
use crate::mirror::{self, Inbox};

/// A cluster worker's X25519 key pair: the primary seals the ring's keys to its public key.
#[napi]
pub struct NativeClusterInbox {
    pub(super) inbox: Inbox,
}

#[napi]
impl NativeClusterInbox {
    #[napi(constructor)]
    pub fn new() -> Result<NativeClusterInbox> {
        scrubbed(|| Ok(NativeClusterInbox { inbox: Inbox::new().map_err(key_error)? }))
    }

    #[napi]
    pub fn public_key(&self) -> Buffer {
        Buffer::from(&self.inbox.public_key()[..])
    }

    /// Wipes the private key where it lies; no message opens after it.
    #[napi]
    pub fn wipe(&mut self) {
        scrubbed(|| self.inbox.wipe())
    }
}

#[napi]
impl NativeRing {
    /// The key of every epoch held, sealed to one cluster worker's public key for its ring
    /// named `channel`.
    #[napi]
    pub fn seal_epoch_keys_to(&self, worker_public_key: BufferSlice, channel: String) -> Result<Buffer> {
        scrubbed(|| {
            let keys = self.ring.epoch_keys(now()).map_err(ring_error)?;
            let sealed = mirror::seal_to(&worker_public_key, &channel, self.ring.cipher(), self.ring.schedule(), &keys);
            Ok(sealed.map_err(mirror_error)?.into())
        })
    }

    /// Opens a message that the cluster's primary sealed to `inbox` for the ring named
    /// `channel` with this ring's cipher and schedule, and takes its keys, which never reach
    /// JavaScript. Returns how many it took.
    #[napi]
    pub fn offer_sealed(&self, inbox: &NativeClusterInbox, message: BufferSlice, channel: String) -> Result<u32> {
        scrubbed(|| {
            let keys =
                inbox.inbox.open(&message, &channel, self.ring.cipher(), self.ring.schedule()).map_err(mirror_error)?;
            let mut taken = 0;
            // Copies go to the ring; the list wipes its own keys where they lie when it drops.
            for (epoch, key) in &keys {
                if self.ring.offer(*epoch, key.clone(), now()).map_err(ring_error)? {
                    taken += 1;
                }
            }
            Ok(taken)
        })
    }
}
