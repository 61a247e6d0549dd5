//! The keys an nginx or HAProxy server needs to follow a ring, in their own formats: what
//! `exportKeys()` writes to nginx's key files and pushes to HAProxy's runtime API. The bytes
//! leave Rust only here, in buffers the caller wipes once written or sent.

use zeroize::Zeroizing;

use crate::key::{Cipher, KeyError, TicketKey, NAME_LEN};
use crate::ring::{EdgeWindow, Ring, RingError};

/// Which server's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeFormat {
    /// One raw key per file, in nginx's layout: 48-byte keys are `name | aes | hmac`, 80-byte
    /// ones `name | hmac | aes` (ngx_ssl_session_ticket_keys). Order: current (nginx encrypts
    /// with its first `ssl_session_ticket_key`), next, then previous keys, newest first; a
    /// slot with no key gets a fresh random key that no ticket uses, so the set of files (and
    /// nginx's configuration) never changes.
    Nginx,
    /// HAProxy's runtime API: three base64 lines of `name | aes | hmac`, previous, current and
    /// next (`set ssl tls-key` writes the oldest slot and makes the next key encrypt, so the
    /// three in that order leave HAProxy encrypting with the current key). A missing previous
    /// or next key is the current key again: HAProxy holds the same key twice, and no filler
    /// changes between two calls, so a read-back compares equal.
    Haproxy,
}

impl EdgeFormat {
    pub fn from_name(name: &str) -> Option<EdgeFormat> {
        match name {
            "nginx" => Some(EdgeFormat::Nginx),
            "haproxy" => Some(EdgeFormat::Haproxy),
            _ => None,
        }
    }
}

/// The keys in a server's format, and the public name of each slot's key (None for a random
/// filler), in the order of the bytes.
pub struct EdgeKeys {
    pub bytes: Zeroizing<Vec<u8>>,
    pub names: Vec<Option<[u8; NAME_LEN]>>,
    /// Previous keys the ring still holds that did not fit in `previous` slots.
    pub left_out: usize,
}

/// `name | aes | hmac`: the order of HAProxy's lines and of nginx's 48-byte files.
fn aes_first(key: &TicketKey, out: &mut Vec<u8>) {
    out.extend_from_slice(key.name());
    out.extend_from_slice(key.aes_key());
    out.extend_from_slice(key.hmac_key());
}

fn nginx_layout(key: &TicketKey, out: &mut Vec<u8>) {
    match key.cipher() {
        Cipher::Aes128Cbc => aes_first(key, out),
        Cipher::Aes256Cbc => {
            out.extend_from_slice(key.name());
            out.extend_from_slice(key.hmac_key());
            out.extend_from_slice(key.aes_key());
        }
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, appended to `out` (no intermediate copy of the input).
fn base64_into(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// The ring's keys at `now` for `format`, with `previous` previous slots (nginx; HAProxy
/// always has one).
pub fn edge_keys(ring: &Ring, format: EdgeFormat, previous: usize, now: u64) -> Result<EdgeKeys, RingError> {
    let slots = if format == EdgeFormat::Haproxy { 1 } else { previous };
    let EdgeWindow { current, next, previous: older, left_out } = ring.edge_window(slots, now)?;
    let cipher = ring.cipher();
    let mut bytes = Zeroizing::new(Vec::new());
    let mut names = Vec::new();
    match format {
        EdgeFormat::Haproxy => {
            let mut line = Zeroizing::new(Vec::with_capacity(cipher.layout_len()));
            for key in [older.first().unwrap_or(&current), &current, next.as_ref().unwrap_or(&current)] {
                line.clear();
                aes_first(key, &mut line);
                base64_into(&line, &mut bytes);
                bytes.push(b'\n');
                names.push(Some(*key.name()));
            }
        }
        EdgeFormat::Nginx => {
            bytes.reserve(cipher.layout_len() * (2 + previous));
            nginx_layout(&current, &mut bytes);
            names.push(Some(*current.name()));
            let mut slot = |key: Option<&TicketKey>, bytes: &mut Vec<u8>| -> Result<(), KeyError> {
                match key {
                    Some(key) => {
                        nginx_layout(key, bytes);
                        names.push(Some(*key.name()));
                    }
                    None => {
                        let filler = TicketKey::generate(cipher)?;
                        nginx_layout(&filler, bytes);
                        names.push(None);
                    }
                }
                Ok(())
            };
            slot(next.as_ref(), &mut bytes)?;
            for i in 0..previous {
                slot(older.get(i), &mut bytes)?;
            }
        }
    }
    Ok(EdgeKeys { bytes, names, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::DerivedKeys;
    use crate::ring::Schedule;

    fn derived_ring(cipher: Cipher, interval: u64, lifetime: u64, now: u64) -> Ring {
        let source = DerivedKeys::scoped(&[7u8; 32], b"").unwrap();
        Ring::with_source(cipher, Schedule::new(interval, lifetime).unwrap(), Box::new(source), now).unwrap()
    }

    fn decode_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        // A test-only decoder: the inverse of base64_into.
        let value = |c: u8| BASE64.iter().position(|&b| b == c).map(|v| v as u32);
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| {
                let mut out = Vec::new();
                for quad in line.as_bytes().chunks(4) {
                    let pads = quad.iter().filter(|&&c| c == b'=').count();
                    let n = quad.iter().fold(0u32, |n, &c| (n << 6) | value(c).unwrap_or(0));
                    out.extend_from_slice(&n.to_be_bytes()[1..4 - pads]);
                }
                out
            })
            .collect()
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, expected) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            let mut out = Vec::new();
            base64_into(input.as_bytes(), &mut out);
            assert_eq!(out, expected.as_bytes());
        }
    }

    #[test]
    fn haproxy_lines_are_previous_current_next_with_aes_first() {
        let now = 10_000;
        let ring = derived_ring(Cipher::Aes256Cbc, 100, 100, now);
        let keys = ring.keys(now).unwrap();
        let name = |state: &str| keys.iter().find(|k| k.state.as_str() == state).unwrap().name;
        let out = edge_keys(&ring, EdgeFormat::Haproxy, 5, now).unwrap();
        let lines = decode_lines(&out.bytes);
        assert_eq!(lines.len(), 3);
        let names: Vec<_> = lines.iter().map(|l| <[u8; 16]>::try_from(&l[..16]).unwrap()).collect();
        assert_eq!(names, vec![name("previous"), name("current"), name("next")]);
        let current = ring.current_layout(now).unwrap();
        // name | hmac | aes in the ring, name | aes | hmac on the line.
        assert_eq!(&lines[1][16..48], &current[48..80]);
        assert_eq!(&lines[1][48..80], &current[16..48]);
        assert_eq!(out.left_out, 0);
    }

    #[test]
    fn haproxy_counts_previous_keys_it_cannot_hold() {
        let now = 10_000;
        let ring = derived_ring(Cipher::Aes128Cbc, 100, 300, now);
        let out = edge_keys(&ring, EdgeFormat::Haproxy, 1, now).unwrap();
        assert_eq!(out.left_out, 2);
    }

    #[test]
    fn nginx_files_are_current_next_then_previous_and_fillers() {
        let now = 10_000;
        for cipher in [Cipher::Aes128Cbc, Cipher::Aes256Cbc] {
            let ring = Ring::random(cipher, Schedule::new(100, 250).unwrap(), now).unwrap();
            let out = edge_keys(&ring, EdgeFormat::Nginx, 3, now).unwrap();
            let layout = cipher.layout_len();
            assert_eq!(out.bytes.len(), 5 * layout);
            // A random ring holds no previous key at first: three fillers.
            assert_eq!(out.names.iter().filter(|n| n.is_none()).count(), 3);
            let current = ring.current_layout(now).unwrap();
            let n = cipher.secret_len();
            let first = &out.bytes[..layout];
            assert_eq!(&first[..16], &current[..16]);
            if cipher == Cipher::Aes128Cbc {
                assert_eq!(&first[16..16 + n], &current[16 + n..]);
            } else {
                assert_eq!(first, &current[..]);
            }
            ring.rotate(now + 1).unwrap();
            let after = edge_keys(&ring, EdgeFormat::Nginx, 3, now + 1).unwrap();
            assert_eq!(after.names[2], Some(<[u8; 16]>::try_from(&current[..16]).unwrap()));
        }
    }
}
