//! A secret file's ring: made from the file's lines, updated when the file changes, and the
//! secrets it holds as `ring.secrets()` shows them.

use std::sync::Arc;

use napi::bindgen_prelude::BufferSlice;
use napi_derive::napi;

use super::ring::NativeRing;
use super::{cipher_named, key_error, ring_error, schedule, scope_bytes, whole_seconds, Error, Result};
use crate::clock::now;
use crate::key::{hex, scrubbed};
use crate::secrets::{SecretError, SecretLine, SecretSet};

/// A secret of a secret file's ring as `ring.secrets()` shows it: never the secret.
#[napi(object)]
pub struct SecretDescription {
    /// 8 bytes of an HKDF expansion of the secret, in hex.
    pub fingerprint: String,
    pub line: u32,
    /// Unix seconds; 0 for a line without a time.
    pub activates_at: f64,
    /// The first epoch start at which it seals, Unix seconds.
    pub seals_from: f64,
    /// When it stops opening tickets and is wiped, once a newer secret is listed.
    pub drops_at: Option<f64>,
    /// "pending", "sealing" or "retired".
    pub state: String,
}

/// What a new version of a secret file changed.
#[napi(object)]
pub struct SecretUpdate {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Lines whose secret was dropped already: ignored, they can go.
    pub stale_lines: Vec<u32>,
}

/// A secret dropped: it opens nothing any more and is wiped.
#[napi(object)]
pub struct DroppedSecret {
    pub fingerprint: String,
    pub line: u32,
}

fn secret_lines<'a>(lines: &[u32], activations: &[f64], secrets: &'a [BufferSlice]) -> Result<Vec<SecretLine<'a>>> {
    if lines.len() != secrets.len() || activations.len() != secrets.len() {
        return Err(Error::new(super::INVALID_ARG_VALUE, "lines, activations and secrets differ in length".to_owned()));
    }
    let mut out = Vec::with_capacity(secrets.len());
    for ((line, at), secret) in lines.iter().zip(activations).zip(secrets) {
        out.push(SecretLine { line: *line, activates_at: whole_seconds("activation time", *at)?, secret });
    }
    Ok(out)
}

fn secret_error(e: SecretError) -> Error {
    match e {
        SecretError::Ring(r) => ring_error(r),
        SecretError::Key(k) => key_error(k),
        other => Error::new(super::INVALID_ARG_VALUE, other.to_string()),
    }
}

impl NativeRing {
    fn secret_set(&self) -> Result<&Arc<SecretSet>> {
        self.secrets.as_ref().ok_or_else(|| {
            Error::new(super::INVALID_STATE, "the ring's keys do not come from a secret file".to_owned())
        })
    }
}

#[napi]
impl NativeRing {
    /// A ring whose keys come from the secrets of a file: line numbers, activations (Unix
    /// seconds, 0 for none) and secrets, one each per line, in `scope` (empty for none).
    #[napi(factory)]
    pub fn from_secret_file(
        cipher: String,
        rotation_interval: f64,
        ticket_lifetime: f64,
        scope: String,
        lines: Vec<u32>,
        activations: Vec<f64>,
        secrets: Vec<BufferSlice>,
    ) -> Result<NativeRing> {
        scrubbed(|| {
            let scope = scope_bytes(&scope)?;
            let (cipher, schedule) = (cipher_named(&cipher)?, schedule(rotation_interval, ticket_lifetime)?);
            let lines = secret_lines(&lines, &activations, &secrets)?;
            let (set, update) = SecretSet::new(cipher, schedule, scope, &lines, now()).map_err(secret_error)?;
            let ring = set.ring(now()).map_err(ring_error)?;
            Ok(NativeRing { ring: Arc::new(ring), secrets: Some(set), stale_lines_at_start: update.stale_lines })
        })
    }

    /// Whether the ring's keys come from a secret file.
    #[napi(getter)]
    pub fn is_secret_file(&self) -> bool {
        self.secrets.is_some()
    }

    /// Lines of the secret file that listed secrets already dropped when the ring was made.
    #[napi(getter)]
    pub fn stale_secret_lines(&self) -> Vec<u32> {
        self.stale_lines_at_start.clone()
    }

    /// Takes a new version of the secret file (refused whole, changing nothing, when a line
    /// is), and makes the next key again from it.
    #[napi]
    pub fn update_secrets(
        &self,
        lines: Vec<u32>,
        activations: Vec<f64>,
        secrets: Vec<BufferSlice>,
    ) -> Result<SecretUpdate> {
        scrubbed(|| {
            let set = self.secret_set()?;
            let lines = secret_lines(&lines, &activations, &secrets)?;
            let update = set.replace(&lines, now()).map_err(secret_error)?;
            self.ring.reschedule_next(now()).map_err(ring_error)?;
            Ok(SecretUpdate {
                added: update.added.iter().map(|f| hex(f)).collect(),
                removed: update.removed.iter().map(|f| hex(f)).collect(),
                stale_lines: update.stale_lines,
            })
        })
    }

    /// Drops and wipes the secrets whose time to go has come; `lib/` calls it after each tick.
    #[napi]
    pub fn drop_secrets(&self) -> Result<Vec<DroppedSecret>> {
        scrubbed(|| {
            let set = self.secret_set()?;
            let dropped = set.drop_expired(now());
            // Called after every epoch boundary: the origins of keys no longer held go too.
            let held: Vec<_> = self.ring.keys(now()).map_err(ring_error)?.into_iter().map(|k| k.name).collect();
            set.forget_origins_except(&held);
            Ok(dropped.into_iter().map(|d| DroppedSecret { fingerprint: hex(&d.fingerprint), line: d.line }).collect())
        })
    }

    /// The secrets of a secret file's ring, earliest first; never a secret.
    #[napi]
    pub fn secrets(&self) -> Result<Vec<SecretDescription>> {
        let set = self.secret_set()?;
        Ok(set
            .describe(now())
            .into_iter()
            .map(|s| SecretDescription {
                fingerprint: hex(&s.fingerprint),
                line: s.line,
                activates_at: s.activates_at as f64,
                seals_from: s.seals_from as f64,
                drops_at: s.drops_at.map(|t| t as f64),
                state: s.state.to_owned(),
            })
            .collect())
    }
}
