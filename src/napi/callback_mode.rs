//! Callback mode: the two calls Node's `onticketkeycallback` makes through
//! `lib/modes/callback.js`, one per ticket, and the scratch buffer they fill.

use napi::bindgen_prelude::BufferSlice;
use napi_derive::napi;

use super::key_name;
use super::ring::NativeRing;
use crate::clock::now;
use crate::key::{fill_random, scrubbed, Cipher};
use crate::ring::{Decision, Miss};

/// What the ring tells Node's ticket callback about a ticket in callback mode, by name on both
/// sides (`lib/` reads `TicketOutcome.Resume` and so on).
#[napi]
pub enum TicketOutcome {
    /// The ring holds no key of that name: a full handshake.
    UnknownKey = 0,
    /// Use the key.
    Resume = 1,
    /// Use the key, and renew the ticket under the current one.
    Renew = 2,
    /// The ring held the key and wiped it: a full handshake.
    ExpiredKey = 3,
    /// The key cannot be used here (an AES-256 key in callback mode, a destroyed ring).
    Unusable = 4,
}

// Callback mode's scratch buffer (`fillEncrypt`/`fillDecrypt`, `lib/modes/callback.js`):
// `name | hmac | aes | iv`, one 16-byte slot each, Node's slot size.

/// Bytes per slot of the callback-mode scratch buffer.
#[napi]
pub const CALLBACK_SLOT_BYTES: u32 = scratch_layout::SLOT as u32;
/// Bytes of the whole callback-mode scratch buffer.
#[napi]
pub const CALLBACK_SCRATCH_BYTES: u32 = scratch_layout::LEN as u32;
/// Where the key name starts in the scratch buffer.
#[napi]
pub const CALLBACK_SCRATCH_NAME_OFFSET: u32 = scratch_layout::NAME.start as u32;
/// Where the HMAC key starts in the scratch buffer.
#[napi]
pub const CALLBACK_SCRATCH_HMAC_OFFSET: u32 = scratch_layout::HMAC.start as u32;
/// Where the AES key starts in the scratch buffer.
#[napi]
pub const CALLBACK_SCRATCH_AES_OFFSET: u32 = scratch_layout::AES.start as u32;
/// Where the IV starts in the scratch buffer.
#[napi]
pub const CALLBACK_SCRATCH_IV_OFFSET: u32 = scratch_layout::IV.start as u32;

/// The callback-mode scratch layout, defined here once; `lib/modes/callback.js` reads the
/// constants above.
pub(crate) mod scratch_layout {
    use std::ops::Range;

    use crate::key::NAME_LEN;

    /// Node's callback array has 16-byte slots: the name's length.
    pub const SLOT: usize = NAME_LEN;
    pub const NAME: Range<usize> = 0..SLOT;
    pub const HMAC: Range<usize> = SLOT..2 * SLOT;
    pub const AES: Range<usize> = 2 * SLOT..3 * SLOT;
    pub const IV: Range<usize> = 3 * SLOT..4 * SLOT;
    pub const LEN: usize = 4 * SLOT;
}

#[napi]
impl NativeRing {
    /// For Node's `onticketkeycallback` when sealing: writes `name | hmac | aes | iv` (16
    /// bytes each) into `scratch`, or says why there is no key to seal with. Only AES-128
    /// keys fit Node's callback.
    #[napi]
    pub fn fill_encrypt(&self, mut scratch: BufferSlice) -> TicketOutcome {
        scrubbed(|| {
            if scratch.len() != scratch_layout::LEN {
                return TicketOutcome::Unusable;
            }
            self.ring
                .encrypt_with(now(), |key| {
                    if key.cipher() != Cipher::Aes128Cbc {
                        return None;
                    }
                    scratch[scratch_layout::NAME].copy_from_slice(key.name());
                    scratch[scratch_layout::HMAC].copy_from_slice(key.hmac_key());
                    scratch[scratch_layout::AES].copy_from_slice(key.aes_key());
                    fill_random(&mut scratch[scratch_layout::IV]).ok()?;
                    Some(TicketOutcome::Resume)
                })
                .unwrap_or(TicketOutcome::Unusable)
        })
    }

    /// For Node's `onticketkeycallback` when opening: for the known key named by
    /// `scratch[0..16]` writes `hmac | aes` into `scratch[16..48]`. One buffer, so the name
    /// and the keys cannot overlap.
    #[napi]
    pub fn fill_decrypt(&self, mut scratch: BufferSlice) -> TicketOutcome {
        scrubbed(|| {
            if scratch.len() != scratch_layout::LEN {
                return TicketOutcome::Unusable;
            }
            let Ok(name) = key_name(&scratch[scratch_layout::NAME]) else { return TicketOutcome::Unusable };
            let opened = self.ring.decrypt_with(&name, now(), |key, decision| {
                if key.cipher() != Cipher::Aes128Cbc {
                    return None;
                }
                scratch[scratch_layout::HMAC].copy_from_slice(key.hmac_key());
                scratch[scratch_layout::AES].copy_from_slice(key.aes_key());
                Some(match decision {
                    Decision::Resume => TicketOutcome::Resume,
                    Decision::Renew => TicketOutcome::Renew,
                })
            });
            match opened {
                Ok(outcome) => outcome,
                Err(Miss::UnknownKey) => TicketOutcome::UnknownKey,
                Err(Miss::ExpiredKey) => TicketOutcome::ExpiredKey,
                Err(Miss::Unusable) => TicketOutcome::Unusable,
            }
        })
    }
}
