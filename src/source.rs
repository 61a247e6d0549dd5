//! Where the keys of a scheduled ring come from: the operating system's CSPRNG, or a fleet
//! secret. (A fed ring takes its keys from outside through `Ring::offer`, and falls back to
//! a source of its own when they are late: random keys, or a store fleet's derived keys, see
//! `fallback`.)

use crate::derive::DerivedKeys;
use crate::key::{Cipher, KeyError, TicketKey};

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
