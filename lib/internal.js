'use strict'

// What the modules of lib/ share and users never see: the Rust ring behind each
// TicketKeyRing, the attachments serving it, the mark of a fed ring, and epoch timing.

const { invalidState } = require('./errors.js')

const CIPHERS = ['aes-128-cbc', 'aes-256-cbc']
/** Key material per key, by cipher: Node's 48-byte layout, or the 80-byte extended one. */
const LAYOUT = { 'aes-128-cbc': 48, 'aes-256-cbc': 80 }
const RING_OPTIONS = ['rotationInterval', 'ticketLifetime', 'secret', 'keys', 'cipher', 'name', 'scope', 'previousSecrets',
  'secretFile', 'secretFileCheckInterval']

// Passed by the store and the cluster code to make a ring that is fed keys from outside:
// new TicketKeyRing(options, { [kFed]: { fallback, makeNative? } }), where `fallback` says what
// the ring does when its feed is late ('derived' or 'local', for the diagnostics) and
// `makeNative(cipher, rotationInterval, ticketLifetime)` makes the Rust ring (by default one
// that falls back to random keys).
const kFed = Symbol('fed ring')
// The second argument of TicketKeyRing's constructor for a ring of explicit keys that also
// holds announced next keys (a HAProxy file's last line): { [kNextKeys]: Buffer }.
const kNextKeys = Symbol('next keys')

const natives = new WeakMap()
// ring -> its KeyWatcher's hooks for the feeds: { offered(), roundDone(), ready() } (diagnostics.js).
const keyWatchers = new WeakMap()
// ring -> the attachments serving its tickets ({ server, stats() }), for metrics.
const attachmentsByRing = new WeakMap()

// ring -> what its feed must stop and wipe when the ring is destroyed (cluster.js).
const destroyHooks = new WeakMap()

// ring -> the watch of its options.secretFile (secret-file-watch.js), for metrics.
const secretFiles = new WeakMap()

function bindNative(ring, native, watcher, secretFile) {
  natives.set(ring, native)
  keyWatchers.set(ring, watcher)
  if (secretFile) secretFiles.set(ring, secretFile)
}

/** The watch of a ring's options.secretFile, if it has one. */
function secretFileOf(ring) {
  return secretFiles.get(ring)
}

/** Runs `hook` once, when `ring.destroy()` is called. */
function whenDestroyed(ring, hook) {
  if (!destroyHooks.has(ring)) destroyHooks.set(ring, [])
  destroyHooks.get(ring).push(hook)
}

/** Called by TicketKeyRing#destroy(). A hook that throws does not keep the others from running. */
function runDestroyHooks(ring) {
  const hooks = destroyHooks.get(ring) ?? []
  destroyHooks.delete(ring)
  for (const hook of hooks) {
    try {
      hook()
    } catch {
      // Stopping a feed that is already gone.
    }
  }
}

/** Tells the ring that a feed changed its keys, for the rotate and fallback diagnostics. */
function keysOffered(ring) {
  keyWatchers.get(ring)?.offered()
}

/** Tells the ring that its feed finished a round: fallbacks counted meanwhile are published. */
function feedRoundDone(ring) {
  keyWatchers.get(ring)?.roundDone()
}

/**
 * Tells a fed ring that its first keys have arrived: it is handed to the user now, and only
 * later changes are published.
 */
function fedRingReady(ring) {
  keyWatchers.get(ring)?.ready()
}

/** The Rust ring behind a TicketKeyRing. */
function nativeOf(ring) {
  const native = natives.get(ring)
  if (native === undefined) throw invalidState('not a TicketKeyRing')
  return native
}

function registerAttachment(ring, attachment) {
  if (!attachmentsByRing.has(ring)) attachmentsByRing.set(ring, new Set())
  attachmentsByRing.get(ring).add(attachment)
}

function unregisterAttachment(ring, attachment) {
  attachmentsByRing.get(ring)?.delete(attachment)
}

function attachmentsOf(ring) {
  return [...(attachmentsByRing.get(ring) ?? [])]
}

/** Milliseconds until the next epoch begins (1 at least, so a timer lands inside it). */
function msUntilNextEpoch(rotationIntervalSeconds) {
  const interval = rotationIntervalSeconds * 1000
  return interval - (Date.now() % interval) + 1
}

/**
 * Milliseconds until the middle of the current epoch, or of the next one once past it: when
 * a feed hands out the next key, well before it is due and away from the rotation instant.
 */
function msUntilMidEpoch(rotationIntervalSeconds) {
  const interval = rotationIntervalSeconds * 1000
  const intoEpoch = Date.now() % interval
  return (intoEpoch < interval / 2 ? interval / 2 : 1.5 * interval) - intoEpoch
}

module.exports = {
  CIPHERS, LAYOUT, RING_OPTIONS, kFed, kNextKeys, bindNative, secretFileOf, whenDestroyed, runDestroyHooks, nativeOf, keysOffered, feedRoundDone, fedRingReady,
  registerAttachment, unregisterAttachment, attachmentsOf,
  msUntilMidEpoch, msUntilNextEpoch,
}
