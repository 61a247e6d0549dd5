//! A shared store's part: `NativeWrapper` seals epoch keys for the store, and a ring fed from
//! the store takes them, seals back what it holds, and falls back when the store is silent.

use napi::bindgen_prelude::{Buffer, BufferSlice};
use napi_derive::napi;

use super::ring::NativeRing;
use super::{cipher_named, key_error, ring_error, schedule, whole_seconds, wrap_error, Result};
use crate::clock::now;
use crate::fallback::FallbackRoot;
use crate::key::{scrubbed, KeyError, TicketKey};
use crate::ring::{Ring, RingError};
use crate::wrap::Wrapper;

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
        scrubbed(|| {
            let wrapper = Wrapper::new(&wrap_secret).map_err(key_error)?;
            Ok(NativeWrapper { wrapper, fallback: FallbackRoot::new(&wrap_secret).map_err(key_error)? })
        })
    }

    /// A fresh random key for `epoch` of a ring rotating every `rotation_interval` seconds,
    /// sealed; only the sealed form leaves Rust.
    #[napi]
    pub fn seal_fresh(&self, cipher: String, prefix: String, epoch: f64, rotation_interval: f64) -> Result<Buffer> {
        scrubbed(|| {
            let key = TicketKey::generate(cipher_named(&cipher)?).map_err(key_error)?;
            let (epoch, interval) =
                (whole_seconds("epoch", epoch)?, whole_seconds("rotation interval", rotation_interval)?);
            let sealed = self.wrapper.seal(&key, &prefix, epoch, interval).map_err(key_error)?;
            Ok(sealed.into())
        })
    }
}

#[napi]
impl NativeRing {
    /// A ring fed from a store whose keys `wrapper` opens: when they are late it derives the
    /// key every member of the fleet derives alike from the wrapping secret, `prefix`, the
    /// interval, the cipher and the epoch.
    #[napi(factory)]
    pub fn fed_derived(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        wrapper: &NativeWrapper,
        prefix: String,
    ) -> Result<NativeRing> {
        scrubbed(|| {
            let schedule = schedule(rotation_interval, ticket_lifetime)?;
            let fallback = wrapper.fallback.keys(&prefix, schedule.rotation_interval);
            let ring = Ring::fed(cipher_named(&cipher)?, schedule, Box::new(fallback), now()).map_err(ring_error)?;
            Ok(NativeRing::of(ring))
        })
    }

    /// For a fed ring whose store did not answer: the fleet's fallback key of the running
    /// epoch in place of a random start-up key, and with `past` those of recent epochs, to
    /// open tickets only. Returns how many keys it made.
    #[napi]
    pub fn fall_back_now(&self, past: bool) -> Result<u32> {
        scrubbed(|| self.ring.fall_back_now(past, now()).map_err(ring_error))
    }

    /// Opens a key that `NativeWrapper.sealFresh` sealed and takes it, without the key ever
    /// reaching JavaScript.
    #[napi]
    pub fn offer_wrapped(
        &self,
        wrapper: &NativeWrapper,
        prefix: String,
        epoch: f64,
        wrapped: BufferSlice,
    ) -> Result<bool> {
        scrubbed(|| {
            let epoch = whole_seconds("epoch", epoch)?;
            let (cipher, interval) = (self.ring.cipher(), self.ring.schedule().rotation_interval);
            let key = wrapper.wrapper.open(&wrapped, &prefix, epoch, cipher, interval).map_err(wrap_error)?;
            self.ring.offer(epoch, key, now()).map_err(ring_error)
        })
    }

    /// The key this ring holds for `epoch`, sealed as `NativeWrapper.sealFresh` seals a new
    /// one, or null: what a process writes back to a store that lost it.
    #[napi]
    pub fn seal_held(&self, wrapper: &NativeWrapper, prefix: String, epoch: f64) -> Result<Option<Buffer>> {
        scrubbed(|| {
            self.seal_found(wrapper, &prefix, epoch, |ring, epoch, seal| ring.with_epoch_key(epoch, now(), seal))
        })
    }

    /// The fallback key of `epoch`, sealed as `sealHeld` seals, or null when the ring's
    /// fallbacks are random: what a member proposes for the next epoch after an outage.
    #[napi]
    pub fn seal_fallback(&self, wrapper: &NativeWrapper, prefix: String, epoch: f64) -> Result<Option<Buffer>> {
        scrubbed(|| self.seal_found(wrapper, &prefix, epoch, |ring, epoch, seal| ring.with_fallback_key(epoch, seal)))
    }
}

/// A key sealed for a store, or why it could not be.
type Sealed = std::result::Result<Vec<u8>, KeyError>;

impl NativeRing {
    /// The key `find` finds in the ring for `epoch`, sealed as `NativeWrapper.sealFresh` seals
    /// a new one, or null: `sealHeld` and `sealFallback` differ only in where they look.
    fn seal_found(
        &self,
        wrapper: &NativeWrapper,
        prefix: &str,
        epoch: f64,
        find: impl FnOnce(&Ring, u64, &dyn Fn(&TicketKey) -> Sealed) -> std::result::Result<Option<Sealed>, RingError>,
    ) -> Result<Option<Buffer>> {
        let epoch = whole_seconds("epoch", epoch)?;
        let interval = self.ring.schedule().rotation_interval;
        let seal = |key: &TicketKey| wrapper.wrapper.seal(key, prefix, epoch, interval);
        let sealed = find(&self.ring, epoch, &seal).map_err(ring_error)?;
        Ok(sealed.transpose().map_err(key_error)?.map(Buffer::from))
    }
}
