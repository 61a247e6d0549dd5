//! Key material in transit: sealed for a shared store, or to one cluster worker.

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::{cipher_named, key_error, whole_seconds, Result};
use crate::fallback::FallbackRoot;
use crate::key::{StackScrub, TicketKey};
use crate::mirror::Inbox;
use crate::wrap::Wrapper;

/// A cluster worker's X25519 key pair: the primary seals the ring's keys to its public key.
#[napi]
pub struct NativeClusterInbox {
    pub(super) inbox: Inbox,
}

#[napi]
impl NativeClusterInbox {
    #[napi(constructor)]
    pub fn new() -> Result<NativeClusterInbox> {
        let _scrub = StackScrub;
        Ok(NativeClusterInbox { inbox: Inbox::new().map_err(key_error)? })
    }

    #[napi]
    pub fn public_key(&self) -> Buffer {
        Buffer::from(&self.inbox.public_key()[..])
    }

    /// Wipes the private key where it lies; no message opens after it.
    #[napi]
    pub fn wipe(&mut self) {
        let _scrub = StackScrub;
        self.inbox.wipe()
    }
}

/// AES-256-GCM sealing of epoch keys for a shared store, under a wrapping secret.
#[napi]
pub struct NativeWrapper {
    pub(super) wrapper: Wrapper,
    /// What the store's rings derive their fallback keys from (`NativeRing.fedDerived`).
    pub(super) fallback: FallbackRoot,
}

#[napi]
impl NativeWrapper {
    #[napi(constructor)]
    pub fn new(wrap_secret: BufferSlice) -> Result<NativeWrapper> {
        let _scrub = StackScrub;
        let wrapper = Wrapper::new(&wrap_secret).map_err(key_error)?;
        Ok(NativeWrapper { wrapper, fallback: FallbackRoot::new(&wrap_secret).map_err(key_error)? })
    }

    /// A fresh random key for `epoch` of a ring rotating every `rotation_interval` seconds,
    /// sealed; only the sealed form leaves Rust.
    #[napi]
    pub fn seal_fresh(&self, cipher: String, prefix: String, epoch: f64, rotation_interval: f64) -> Result<Buffer> {
        let _scrub = StackScrub;
        let key = TicketKey::generate(cipher_named(&cipher)?).map_err(key_error)?;
        let (epoch, interval) = (whole_seconds("epoch", epoch)?, whole_seconds("rotationInterval", rotation_interval)?);
        let sealed = self.wrapper.seal(&key, &prefix, epoch, interval).map_err(key_error)?;
        Ok(sealed.into())
    }
}
