'use strict'

// `tls-ticket-keys secret add FILE`: the text of a secret file with one more secret, from the
// CSPRNG, activating at a time to come; lines whose secrets can no longer open a live ticket
// are pruned. What the ring does with the file: src/secrets.rs and lib/secret-file.js.

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { parseSecretFile, MAX_SECRETS } = require('./secret-file.js')

// Kubernetes' worst usual propagation of a Secret volume change: about a minute of kubelet
// sync plus the cache's TTL. An activation sooner than this is refused without --force.
const MIN_ACTIVATE_IN = 120
const DEFAULT_ACTIVATE_IN = 600
// The longest rotationInterval a ring takes (seven days).
const LONGEST_ROTATION_INTERVAL = 604800
// 9999-12-31T23:59:59Z: the file's times have four-digit years.
const LATEST_ACTIVATION = 253402300799
const DEFAULT_TICKET_LIFETIME = 7200
const SALT = 'tls-ticket-keys/v1'
const FINGERPRINT_LABEL = 'tls-ticket-keys/v1 secret fingerprint'

/** A duration: 90, 90s, 10m, 2h, 1d -> seconds, or null. */
function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(String(text).trim())
  if (!m) return null
  const seconds = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2]]
  return Number.isFinite(seconds) ? Math.ceil(seconds) : null
}

/** The public fingerprint ring.keys() shows for a secret (src/derive.rs). */
function fingerprint(secret) {
  return Buffer.from(crypto.hkdfSync('sha256', secret, SALT, FINGERPRINT_LABEL, 8)).toString('hex')
}

function rfc3339(seconds) {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/**
 * `bytes` (the old file, possibly empty) with a new secret activating at `activatesAt`, minus
 * the lines whose secret can no longer open a live ticket at `now`: a secret stops opening a
 * ticket lifetime after the next newer one took over sealing, at the first epoch boundary at
 * or after its activation (at most a rotation interval later). Returns { text, added, pruned }
 * or throws an Error with a message and `line` for a refused file.
 */
function addSecret(bytes, { activatesAt, now, rotationInterval, ticketLifetime }) {
  let parsed = { lines: [], activations: [], secrets: [] }
  const empty = bytes.every((b) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09)
  // A file of comments only lists no secret: parseSecretFile refuses it, here it is a start.
  const onlyComments = !empty && bytes.toString('utf8').split('\n').every((l) => /^\s*(#.*)?$/.test(l))
  if (!empty && !onlyComments) parsed = parseSecretFile(bytes)
  const fingerprints = parsed.secrets.map(fingerprint)
  for (const s of parsed.secrets) s.fill(0)
  const order = parsed.activations.map((a, i) => i).sort((a, b) => parsed.activations[a] - parsed.activations[b])
  const takeover = (a) => Math.ceil(a / rotationInterval) * rotationInterval
  const pruned = []
  order.forEach((index, rank) => {
    const newer = rank + 1 < order.length ? parsed.activations[order[rank + 1]] : activatesAt
    if (newer > parsed.activations[index] && takeover(newer) + ticketLifetime <= now) pruned.push(index)
  })
  if (parsed.activations.includes(activatesAt)) {
    throw Object.assign(new Error(`line ${parsed.lines[parsed.activations.indexOf(activatesAt)]} already activates at ${rfc3339(activatesAt)}`), { line: 0 })
  }
  if (parsed.secrets.length - pruned.length + 1 > MAX_SECRETS) {
    throw new Error(`the file would list ${parsed.secrets.length - pruned.length + 1} secrets; a ring takes at most ${MAX_SECRETS}. ` +
      'Wait until older ones can be pruned (a ticket lifetime after a newer one took over)')
  }
  const prunedLines = new Set(pruned.map((i) => parsed.lines[i]))
  const kept = bytes.toString('utf8').split('\n').filter((_, i) => !prunedLines.has(i + 1))
  while (kept.length > 0 && kept[kept.length - 1].trim() === '') kept.pop()
  const secret = crypto.randomBytes(32)
  const added = { fingerprint: fingerprint(secret), activatesAt }
  if (kept.length === 0) kept.push('# activates at (RFC 3339)   secret (base64): tls-ticket-keys secret add')
  kept.push(`${rfc3339(activatesAt)} ${secret.toString('base64')}`)
  secret.fill(0)
  return {
    text: `${kept.join('\n')}\n`,
    added,
    pruned: pruned.map((i) => ({ line: parsed.lines[i], fingerprint: fingerprints[i] })),
  }
}

/** Writes `text` to `file` atomically: a temporary file beside it, fsync, rename; mode 0600. */
function writeAtomically(file, text) {
  const dir = path.dirname(path.resolve(file))
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`)
  const fd = fs.openSync(tmp, 'wx', 0o600)
  try {
    fs.writeSync(fd, text)
    fs.fsyncSync(fd)
  } catch (err) {
    fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
    throw err
  }
  fs.closeSync(fd)
  try {
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
  // The rename itself survives a crash once the directory is synced (not everywhere possible).
  try {
    const dfd = fs.openSync(dir, 'r')
    try {
      fs.fsyncSync(dfd)
    } finally {
      fs.closeSync(dfd)
    }
  } catch {}
}

module.exports = {
  addSecret, writeAtomically, parseDuration, fingerprint, rfc3339,
  MIN_ACTIVATE_IN, DEFAULT_ACTIVATE_IN, LONGEST_ROTATION_INTERVAL, LATEST_ACTIVATION, DEFAULT_TICKET_LIFETIME,
}
