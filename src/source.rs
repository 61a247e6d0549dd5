//! Where the keys of a scheduled ring come from: the operating system's CSPRNG, or a fleet
//! secret. (A fed ring takes its keys from outside through `Ring::offer`, and falls back to
//! a source of its own when they are late: random keys, or a store fleet's derived keys, see
//! `fallback`.)

use crate::derive::DerivedKeys;
use crate::key::{Cipher, KeyError, TicketKey, NAME_LEN};

/// Where the keys of a scheduled ring come from.
pub trait KeySource: Send + Sync {
    fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError>;

    /// Whether every holder of this source gets the same key for an epoch. Such a ring also
    /// makes the keys of recent epochs, whose tickets its peers (or its own earlier process)
    /// may have issued and which are still live.
    fn reproducible(&self) -> bool {
        false
    }

    /// Wipes whatever the source keeps that makes keys (a ring's `destroy()`).
    fn wipe(&self) {}

    /// Runs `open` with a key named `name` that the source holds besides the ring's own (the
    /// other secrets of a secret file), if it does at `now`; says whether it did.
    fn open_other(&self, _name: &[u8; NAME_LEN], _now: u64, _open: &mut dyn FnMut(&TicketKey)) -> bool {
        false
    }
}

/// Fresh keys from the operating system's CSPRNG.
pub struct RandomKeys;

impl KeySource for RandomKeys {
    fn key_for_epoch(&self, _epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        TicketKey::generate(cipher)
    }
}

impl KeySource for DerivedKeys {
    fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        DerivedKeys::key_for_epoch(self, epoch, cipher)
    }

    fn reproducible(&self) -> bool {
        true
    }

    fn wipe(&self) {
        DerivedKeys::wipe(self)
    }
}

/// A source shared by several rings (a secret file's ring and the ring that opens that
/// secret's tickets): wiping it wipes it for all.
impl<K: KeySource + ?Sized> KeySource for std::sync::Arc<K> {
    fn key_for_epoch(&self, epoch: u64, cipher: Cipher) -> Result<TicketKey, KeyError> {
        (**self).key_for_epoch(epoch, cipher)
    }

    fn reproducible(&self) -> bool {
        (**self).reproducible()
    }

    fn wipe(&self) {
        (**self).wipe()
    }

    fn open_other(&self, name: &[u8; NAME_LEN], now: u64, open: &mut dyn FnMut(&TicketKey)) -> bool {
        (**self).open_other(name, now, open)
    }
}
