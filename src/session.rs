//! Reading the DER of an OpenSSL `SSL_SESSION` (what Node's `'session'` event and
//! `getSession()` hand out): protocol, cipher suite, creation time, timeout, the ticket
//! lifetime hint, SNI, ALPN and the ticket. The master key is skipped, never returned.
//!
//! The layout is OpenSSL's `SSL_SESSION_ASN1` (ssl/ssl_asn1.c): a SEQUENCE of version,
//! ssl_version, cipher, session_id, master_key, then optional explicitly tagged fields:
//! [1] time, [2] timeout, [3] peer, [4] sid_ctx, [5] verify_result, [6] hostname,
//! [9] ticket lifetime hint, [10] ticket, ..., [16] ALPN, and more that are skipped.

use der::asn1::{AnyRef, ContextSpecific, OctetStringRef};
use der::{Decode, Reader, SliceReader, TagNumber};

/// What a session says about itself; nothing secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// 0x0303 for TLS 1.2, 0x0304 for TLS 1.3.
    pub protocol_version: u16,
    /// The IANA cipher suite number, e.g. 0x1302 for TLS_AES_256_GCM_SHA384.
    pub cipher_suite: u16,
    /// Unix seconds when the session was made (for a resumed TLS 1.2 session: the original one).
    pub created_at: u64,
    /// Seconds the session is resumable by the server's own reckoning.
    pub timeout: u64,
    /// Seconds the server said its ticket is good for (0: not said).
    pub ticket_lifetime_hint: u64,
    pub server_name: Option<String>,
    pub alpn: Option<String>,
    pub ticket: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionError(String);

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an SSL_SESSION in DER: {}", self.0)
    }
}

impl std::error::Error for SessionError {}

impl From<der::Error> for SessionError {
    fn from(e: der::Error) -> SessionError {
        SessionError(e.to_string())
    }
}

/// The largest session we read; real ones are a few kilobytes (with the peer certificate).
pub const MAX_SESSION_LEN: usize = 64 * 1024;

fn explicit<'a, T: Decode<'a>, R: Reader<'a>>(r: &mut R, tag: u8) -> der::Result<Option<T>> {
    Ok(ContextSpecific::<T>::decode_explicit(r, TagNumber::new(tag))?.map(|f| f.value))
}

fn text(bytes: Option<OctetStringRef<'_>>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b.as_bytes()).into_owned())
}

/// Node 22 and later hand out sessions wrapped as `\0nodejs:tls:session:1\0`, a 16-bit
/// big-endian length and the servername, then the DER. Returns the servername and the DER.
fn unwrap_node_session(bytes: &[u8]) -> Result<(Option<&[u8]>, &[u8]), SessionError> {
    const MAGIC: &[u8] = b"\0nodejs:tls:session:1\0";
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        if bytes.starts_with(b"\0nodejs:tls:session:") {
            return Err(SessionError("a Node session envelope of an unknown version".into()));
        }
        return Ok((None, bytes));
    };
    let [hi, lo, rest @ ..] = rest else { return Err(SessionError("truncated Node session envelope".into())) };
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    if rest.len() < len {
        return Err(SessionError("truncated Node session envelope".into()));
    }
    let (name, der) = rest.split_at(len);
    Ok(((!name.is_empty()).then_some(name), der))
}

pub fn parse_session(bytes: &[u8]) -> Result<SessionInfo, SessionError> {
    if bytes.len() > MAX_SESSION_LEN {
        return Err(SessionError(format!("{} bytes is longer than any session", bytes.len())));
    }
    let (envelope_name, der) = unwrap_node_session(bytes)?;
    let mut reader = SliceReader::new(der)?;
    let info = reader.sequence(|r| {
        let _version = u32::decode(r)?;
        let protocol_version = u16::try_from(i64::decode(r)?).map_err(|_| der::Tag::Integer.value_error())?;
        let cipher = OctetStringRef::decode(r)?;
        let _session_id = OctetStringRef::decode(r)?;
        let _master_key = OctetStringRef::decode(r)?;
        let time = explicit::<u64, _>(r, 1)?;
        let timeout = explicit::<u64, _>(r, 2)?;
        let server_name = explicit::<OctetStringRef<'_>, _>(r, 6)?;
        let ticket_lifetime_hint = explicit::<u64, _>(r, 9)?;
        let ticket = explicit::<OctetStringRef<'_>, _>(r, 10)?;
        let alpn = explicit::<OctetStringRef<'_>, _>(r, 16)?;
        // Whatever later versions add.
        while !r.is_finished() {
            AnyRef::decode(r)?;
        }
        let cipher = cipher.as_bytes();
        // OpenSSL writes the two low bytes of its cipher id.
        let cipher_suite = match cipher {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(der::Tag::OctetString.value_error()),
        };
        Ok(SessionInfo {
            protocol_version,
            cipher_suite,
            created_at: time.unwrap_or(0),
            timeout: timeout.unwrap_or(0),
            ticket_lifetime_hint: ticket_lifetime_hint.unwrap_or(0),
            server_name: text(server_name),
            alpn: text(alpn),
            ticket: ticket.map(|t| t.as_bytes().to_vec()),
        })
    })?;
    if !reader.is_finished() {
        return Err(SessionError("trailing bytes after the session".into()));
    }
    let mut info = info;
    if info.server_name.is_none() {
        info.server_name = envelope_name.map(|n| String::from_utf8_lossy(n).into_owned());
    }
    Ok(info)
}

impl SessionInfo {
    pub fn protocol(&self) -> &'static str {
        match self.protocol_version {
            0x0304 => "TLSv1.3",
            0x0303 => "TLSv1.2",
            0x0302 => "TLSv1.1",
            0x0301 => "TLSv1",
            _ => "unknown",
        }
    }

    /// When a client should stop offering the session: the creation time plus the ticket
    /// lifetime hint (or the timeout when there is none), and never later than 7 days.
    pub fn expires_at(&self) -> u64 {
        const SEVEN_DAYS: u64 = 604_800;
        let lifetime = if self.ticket_lifetime_hint > 0 { self.ticket_lifetime_hint } else { self.timeout };
        self.created_at.saturating_add(lifetime.min(SEVEN_DAYS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A TLS 1.3 session as Node 20 / OpenSSL 3.0 writes it, made by `__test__`'s servers
    // against 127.0.0.1 with SNI "localhost", ALPN "h2" and a 7200 s ticket lifetime; the
    // master key, ticket and certificate are replaced by short dummies of the same types.
    fn sample() -> Vec<u8> {
        let mut body = Vec::new();
        let tlv = |tag: u8, content: &[u8]| {
            let mut v = vec![tag, content.len() as u8];
            v.extend_from_slice(content);
            v
        };
        let explicit = |n: u8, inner: Vec<u8>| tlv(0xa0 | n, &inner);
        body.extend(tlv(0x02, &[0x01])); // version
        body.extend(tlv(0x02, &[0x03, 0x04])); // TLS 1.3
        body.extend(tlv(0x04, &[0x13, 0x02])); // TLS_AES_256_GCM_SHA384
        body.extend(tlv(0x04, &[0xaa; 4])); // session id
        body.extend(tlv(0x04, &[0x5e; 8])); // master key
        body.extend(explicit(1, tlv(0x02, &[0x69, 0x2a, 0x1b, 0x00]))); // time
        body.extend(explicit(2, tlv(0x02, &[0x1c, 0x20]))); // timeout 7200
        body.extend(explicit(3, tlv(0x30, &[0x05, 0x00]))); // "certificate"
        body.extend(explicit(4, tlv(0x04, b"ctx"))); // sid_ctx
        body.extend(explicit(5, tlv(0x02, &[0x00]))); // verify result
        body.extend(explicit(6, tlv(0x04, b"localhost")));
        body.extend(explicit(9, tlv(0x02, &[0x1c, 0x20]))); // lifetime hint 7200
        body.extend(explicit(10, tlv(0x04, &[0x77; 12]))); // ticket
        body.extend(explicit(14, tlv(0x02, &[0x01, 0x02]))); // age add
        body.extend(explicit(16, tlv(0x04, b"h2")));
        body.extend(explicit(19, tlv(0x02, &[0x1d]))); // kex group
        tlv(0x30, &body)
    }

    #[test]
    fn reads_what_a_client_needs() {
        let info = parse_session(&sample()).unwrap();
        assert_eq!(info.protocol(), "TLSv1.3");
        assert_eq!(info.cipher_suite, 0x1302);
        assert_eq!(info.created_at, 0x692a_1b00);
        assert_eq!(info.timeout, 7200);
        assert_eq!(info.ticket_lifetime_hint, 7200);
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        assert_eq!(info.alpn.as_deref(), Some("h2"));
        assert_eq!(info.ticket.as_deref(), Some(&[0x77; 12][..]));
        assert_eq!(info.expires_at(), 0x692a_1b00 + 7200);
    }

    #[test]
    fn reads_node_22_session_envelopes() {
        let mut wrapped = b"\0nodejs:tls:session:1\0\0\x0bexample.org".to_vec();
        let mut der = sample();
        // A session without SNI in the DER takes the envelope's servername.
        let plain = parse_session(&der).unwrap();
        wrapped.append(&mut der);
        let info = parse_session(&wrapped).unwrap();
        assert_eq!(info.cipher_suite, plain.cipher_suite);
        assert_eq!(info.server_name.as_deref(), Some("localhost"), "the DER's own SNI wins");
        for len in 0..wrapped.len() {
            assert!(parse_session(&wrapped[..len]).is_err(), "truncated to {len}");
        }
        let mut future = wrapped.clone();
        future[20] = b'9';
        assert!(parse_session(&future).is_err(), "an unknown envelope version is refused");
    }

    #[test]
    fn lifetimes_are_capped_at_seven_days() {
        let mut info = parse_session(&sample()).unwrap();
        info.ticket_lifetime_hint = 30 * 86_400;
        assert_eq!(info.expires_at(), info.created_at + 604_800);
        info.ticket_lifetime_hint = 0;
        assert_eq!(info.expires_at(), info.created_at + info.timeout);
    }

    #[test]
    fn the_master_key_is_not_in_the_result() {
        let info = parse_session(&sample()).unwrap();
        assert!(!format!("{info:?}").contains("94, 94, 94"));
    }

    #[test]
    fn garbage_truncation_and_trailing_bytes_are_errors_not_panics() {
        let good = sample();
        for len in 0..good.len() {
            assert!(parse_session(&good[..len]).is_err(), "truncated to {len}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_session(&trailing).is_err());
        for i in 0..good.len() {
            for bit in [0x01, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                let _ = parse_session(&bad); // any result but a panic
            }
        }
        assert!(parse_session(&vec![0x30; MAX_SESSION_LEN + 1]).is_err());
    }
}
