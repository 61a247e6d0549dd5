//! What a ticket says, opened with the ring's key that sealed it: for `inspectTicket()`.

use zeroize::Zeroizing;

use crate::key::NAME_LEN;
use crate::ring::{KeyState, Ring, RingError};
use crate::ticket::{open, ticket_key_name, TicketError};

/// What `inspect_ticket` found.
pub struct TicketInspection {
    /// The name the ticket claims, if it is long enough to be a ticket.
    pub key_name: Option<[u8; NAME_LEN]>,
    /// The state of that key in the ring, if the ring holds it.
    pub state: Option<KeyState>,
    /// The SSL_SESSION DER inside, or why the ticket did not open.
    pub opened: Result<Zeroizing<Vec<u8>>, TicketError>,
}

/// Which of `ring`'s keys sealed `ticket`, in which state it is at `now`, and what the ticket
/// holds, opened with it. Counts nothing.
pub fn inspect_ticket(ring: &Ring, ticket: &[u8], now: u64) -> Result<TicketInspection, RingError> {
    let Some(name) = ticket_key_name(ticket) else {
        return Ok(TicketInspection { key_name: None, state: None, opened: Err(TicketError::Length) });
    };
    let found = ring.with_key(&name, now, |key, state| (state, open(key, ticket)))?;
    Ok(match found {
        None => TicketInspection { key_name: Some(name), state: None, opened: Err(TicketError::WrongKey) },
        Some((state, opened)) => TicketInspection { key_name: Some(name), state: Some(state), opened },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Cipher, TicketKey};
    use crate::ring::{Schedule, Stats};
    use crate::ticket::seal;

    const T0: u64 = 1_000_000;

    #[test]
    fn tells_which_key_and_opens_without_counting() {
        let ring = Ring::random(Cipher::Aes256Cbc, Schedule::new(100, 250).unwrap(), T0).unwrap();
        let ticket = ring.encrypt_with(T0, |k| Some(seal(k, &[3; 16], b"session"))).unwrap();
        let seen = inspect_ticket(&ring, &ticket, T0).unwrap();
        assert_eq!(seen.state, Some(KeyState::Current));
        assert_eq!(&seen.opened.unwrap()[..], b"session");
        ring.rotate(T0 + 1).unwrap();
        assert_eq!(inspect_ticket(&ring, &ticket, T0 + 1).unwrap().state, Some(KeyState::Previous));
        let foreign = seal(&TicketKey::generate(Cipher::Aes256Cbc).unwrap(), &[3; 16], b"x");
        let seen = inspect_ticket(&ring, &foreign, T0 + 1).unwrap();
        assert!(seen.key_name.is_some() && seen.state.is_none());
        assert!(inspect_ticket(&ring, b"short", T0 + 1).unwrap().key_name.is_none());
        let mut forged = ticket.clone();
        forged[40] ^= 1;
        assert_eq!(inspect_ticket(&ring, &forged, T0 + 1).unwrap().opened.unwrap_err(), TicketError::Mac);
        assert_eq!(ring.stats(), Stats { issued: 1, ..Stats::default() });
    }
}
