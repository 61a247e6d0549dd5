'use strict'

// The file of `new TicketKeyRing({ secretFile })`: reading, parsing and watching it. The Rust
// side (src/secrets.rs) derives the keys, picks the sealing secret and drops old ones; this
// side hands it (line, activation, secret bytes) triples and wipes its copies right after.
//
// The format, one secret per line; blank lines and `#` comments are ignored:
//
//   # activates at (RFC 3339)   secret (standard base64, at least 32 bytes)
//   2026-12-01T00:00:00Z        q8Hc…=
//   Zm9v…=                      (a secret alone: active since the beginning of time)
//
// Secret text never becomes a JavaScript string (strings cannot be wiped): it is decoded from
// the file's bytes into a Buffer, and both are zeroed once Rust has them. Messages name line
// numbers and never quote a secret.

const fs = require('node:fs')
const path = require('node:path')
const { createHash } = require('node:crypto')
const { invalidArgValue } = require('./errors.js')

const MAX_SECRETS = 8
// A file of 8 secrets with comments is a few kilobytes; anything much bigger is not ours.
const MAX_FILE_BYTES = 64 * 1024
const MIN_SECRET_BYTES = 32

const SPACE = new Set([0x20, 0x09, 0x0d])
const HASH = 0x23
const NEWLINE = 0x0a

// Standard base64 (RFC 4648 §4), as `openssl rand -base64 32` writes it.
const BASE64 = new Int16Array(256).fill(-1)
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => { BASE64[c.charCodeAt(0)] = i })
const PAD = 0x3d

/** A parse error: `line` (1-based) and a reason that quotes nothing from the line. */
class LineError extends Error {
  constructor(line, reason) {
    super(line === 0 ? reason : `line ${line}: ${reason}`)
    this.line = line
  }
}

/**
 * Standard base64 in bytes[start, end), strictly (padding required, no other characters,
 * no stray bits): a Buffer, or null. A truncated line fails here.
 */
function decodeBase64(bytes, start, end) {
  const length = end - start
  if (length === 0 || length % 4 !== 0) return null
  let pad = 0
  if (bytes[end - 1] === PAD) pad++
  if (bytes[end - 2] === PAD) pad++
  // Off V8's heap: a typed array of up to 64 bytes made with a length lives on the heap,
  // where the garbage collector copies it (and N-API moves it out), leaving copies that
  // fill(0) cannot reach. An ArrayBuffer's own store stays put.
  const out = Buffer.from(new ArrayBuffer((length / 4) * 3 - pad))
  let bits = 0
  let value = 0
  let o = 0
  for (let i = start; i < end - pad; i++) {
    const v = BASE64[bytes[i]]
    if (v < 0) {
      out.fill(0)
      return null
    }
    value = ((value << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (value >> bits) & 0xff
    }
  }
  // The bits left over must be zero (one encoding per secret: the same secret, the same text).
  if ((value & ((1 << bits) - 1)) !== 0 || o !== out.length) {
    out.fill(0)
    return null
  }
  value = 0
  return out
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/

/** Unix seconds of an RFC 3339 date-time (fractions round up), or null. */
function parseTime(text) {
  const m = RFC3339.exec(text)
  if (!m) return null
  const [, y, mo, d, h, mi, s, fraction, zone] = m
  const ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s)
  const date = new Date(ms)
  // Date.UTC rolls 2026-02-30 over into March: refuse what does not exist.
  if (date.getUTCFullYear() !== +y || date.getUTCMonth() !== +mo - 1 || date.getUTCDate() !== +d ||
      +h > 23 || +mi > 59 || +s > 59) return null
  let seconds = ms / 1000
  if (fraction !== undefined && Number(fraction) > 0) seconds += 1
  if (!/^[Zz]$/.test(zone)) {
    const sign = zone[0] === '-' ? -1 : 1
    const [zh, zm] = zone.slice(1).split(':').map(Number)
    if (zh > 23 || zm > 59) return null
    seconds -= sign * (zh * 3600 + zm * 60)
  }
  return seconds >= 1 && seconds <= 2 ** 40 ? seconds : null
}

/**
 * The secrets of a file's bytes: { lines, activations, secrets } (activations in Unix
 * seconds, 0 for a line without a time), or a LineError. The caller zeroes the secrets.
 */
function parseSecretFile(bytes) {
  const lines = []
  const activations = []
  const secrets = []
  try {
    let lineNo = 0
    for (let start = 0; start < bytes.length;) {
      let end = bytes.indexOf(NEWLINE, start)
      if (end === -1) end = bytes.length
      lineNo++
      // The line's words: [start, end) pairs, up to a `#` that starts a word.
      const words = []
      for (let i = start; i < end;) {
        while (i < end && SPACE.has(bytes[i])) i++
        if (i >= end) break
        if (bytes[i] === HASH) break
        const w = i
        while (i < end && !SPACE.has(bytes[i])) i++
        words.push([w, i])
      }
      start = end + 1
      if (words.length === 0) continue
      if (words.length > 2) throw new LineError(lineNo, 'has more than a time and a secret')
      let activation = 0
      if (words.length === 2) {
        const [ts, te] = words[0]
        const text = bytes.toString('latin1', ts, Math.min(te, ts + 40))
        activation = te - ts > 40 ? null : parseTime(text)
        if (activation === null) throw new LineError(lineNo, 'has a time that is not an RFC 3339 date-time (2026-12-01T00:00:00Z)')
      }
      const [ss, se] = words[words.length - 1]
      const secret = decodeBase64(bytes, ss, se)
      if (secret === null) throw new LineError(lineNo, 'has a secret that is not standard base64 (padded, as openssl rand -base64 32 writes it)')
      if (secret.length < MIN_SECRET_BYTES) {
        const got = secret.length
        secret.fill(0)
        throw new LineError(lineNo, `has a secret of ${got} bytes; at least ${MIN_SECRET_BYTES} are needed`)
      }
      if (!secret.some((b) => b !== 0)) throw new LineError(lineNo, 'has a secret of zeros only')
      const sameTime = activations.indexOf(activation)
      if (sameTime !== -1) throw new LineError(lineNo, `repeats the activation time of line ${lines[sameTime]}`)
      const same = secrets.findIndex((s) => s.equals(secret))
      if (same !== -1) {
        secret.fill(0)
        throw new LineError(lineNo, `repeats the secret of line ${lines[same]}`)
      }
      lines.push(lineNo)
      activations.push(activation)
      secrets.push(secret)
      if (secrets.length > MAX_SECRETS) throw new LineError(lineNo, `is secret number ${secrets.length}; at most ${MAX_SECRETS} are taken`)
    }
    if (secrets.length === 0) throw new LineError(0, 'lists no secret')
  } catch (err) {
    for (const s of secrets) s.fill(0)
    throw err
  }
  return { lines, activations, secrets }
}

/**
 * Reads a file whole; returns { bytes, digest }. The caller zeroes `bytes`. Throws the
 * file system's error, or a LineError for a file too big to be a secret file.
 */
function readSecretFile(file) {
  // Non-blocking, so that a FIFO at the path cannot hold the event loop at open; then only a
  // regular file, and at most one byte past the limit (a sparse file or /dev/zero is not read).
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0))
  let bytes
  try {
    if (!fs.fstatSync(fd).isFile()) throw new LineError(0, 'is not a regular file')
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1)
    let length = 0
    for (let n; length < buffer.length && (n = fs.readSync(fd, buffer, length, buffer.length - length, null)) > 0;) length += n
    if (length > MAX_FILE_BYTES) {
      buffer.fill(0)
      throw new LineError(0, `is more than ${MAX_FILE_BYTES} bytes; a secret file is at most that`)
    }
    bytes = Buffer.from(buffer.subarray(0, length))
    buffer.fill(0)
  } finally {
    fs.closeSync(fd)
  }
  const digest = createHash('sha256').update(bytes).digest('hex')
  return { bytes, digest }
}

/** Reads and parses `file`, hands the secrets to `take(lines, activations, secrets)`, then zeroes every copy. */
function loadSecretFile(file, take) {
  const { bytes, digest } = readSecretFile(file)
  let parsed
  try {
    parsed = parseSecretFile(bytes)
  } finally {
    bytes.fill(0)
  }
  try {
    return { digest, result: take(parsed.lines, parsed.activations, parsed.secrets) }
  } finally {
    for (const s of parsed.secrets) s.fill(0)
  }
}

/** The error a constructor throws for a file it cannot take. */
function secretFileError(file, err) {
  const reason = err instanceof LineError
    ? err.message
    : typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code)
      ? `cannot be read (${err.code})`
      : err?.message ?? 'cannot be read'
  const out = invalidArgValue('options.secretFile', `(${file}) ${reason}`)
  if (err?.code && /^E[A-Z]+$/.test(err.code)) out.cause = { code: err.code }
  if (err instanceof LineError && err.line > 0) out.line = err.line
  return out
}

/**
 * Watches the directory of `file` (Kubernetes replaces a `..data` symlink there and never
 * writes the file) and re-checks every `intervalMs`; calls `onChange()` at most once per
 * burst of events. Neither the watcher nor the timer keeps the process alive. `close()` stops both.
 */
function watchSecretFile(file, intervalMs, onChange) {
  let debounce = null
  const fire = () => {
    if (debounce !== null) return
    debounce = setTimeout(() => {
      debounce = null
      onChange()
    }, 25)
    debounce.unref()
  }
  let watcher = null
  try {
    watcher = fs.watch(path.dirname(path.resolve(file)), { persistent: false }, fire)
    // A watch that fails later (the directory removed) leaves the timer to notice changes.
    watcher.on('error', () => {
      watcher?.close()
      watcher = null
    })
  } catch {
    watcher = null // inotify limits, a file system without events: the timer alone
  }
  const timer = setInterval(onChange, intervalMs)
  timer.unref()
  return {
    close() {
      clearInterval(timer)
      if (debounce !== null) clearTimeout(debounce)
      watcher?.close()
      watcher = null
    },
  }
}

module.exports = {
  parseSecretFile, readSecretFile, loadSecretFile, secretFileError, watchSecretFile, decodeBase64, parseTime,
  LineError, MAX_SECRETS,
}
