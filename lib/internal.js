'use strict'

// What the modules of lib/ share and users never see: the symbol-keyed methods by which they
// reach the Rust ring behind a TicketKeyRing (as undici's `this[kDispatch]`), the attachments
// serving a ring, the mark of a fed ring, and epoch timing.

const CIPHERS = ['aes-128-cbc', 'aes-256-cbc']
const RING_OPTIONS = ['rotationInterval', 'ticketLifetime', 'secret', 'keys', 'cipher', 'name', 'scope', 'previousSecrets',
  'secretFile', 'secretFileCheckInterval']

// Passed by the store and the cluster code to make a ring that is fed keys from outside:
// new TicketKeyRing(options, { [kFed]: { fallback, wrapper?, prefix? } }), where `fallback`
// says what the ring does when its feed is late: 'local' (random keys of its own) or 'derived'
// (the keys a RedisKeyStore's `wrapper` derives under `prefix`, alike in every member).
const kFed = Symbol('fed ring')
// The second argument of TicketKeyRing's constructor for a ring of explicit keys that also
// holds announced next keys (a HAProxy file's last line): { [kNextKeys]: Buffer }.
const kNextKeys = Symbol('next keys')

// The ring's internal methods. Each calls the Rust ring, and where that can change the keys,
// tells the ring's KeyWatcher (diagnostics.js) in the same call.
//   ring[kNative]()                          the Rust ring, for the attach modes (modes/) only
//   ring[kInspectTicket](bytes)              { report, secretFile }: which key sealed a ticket
//   ring[kExportEdgeKeys](kind, slots)       keys in nginx's or HAProxy's layout (export-keys.js)
//   ring[kSealEpochKeysTo](publicKey, channel)   a cluster primary's keys, sealed to a worker
//   ring[kOfferSealed](inbox, sealed, channel)   a cluster worker takes them: a whole round
//   ring[kSealHeld](wrapper, prefix, epoch)      a store ring's key of `epoch`, wrapped, or null
//   ring[kSealFallback](wrapper, prefix, epoch)  the fleet's derived key of `epoch`, wrapped
//   ring[kOfferWrapped](wrapper, prefix, epoch, value)   a key agreed in Redis; true if taken
//   ring[kLivePreviousEpochs]                    past epochs whose tickets are still live
//   ring[kFallBackNow](pastToo)                  derived keys now, the store being away
//   ring[kFeedRoundDone]()                       a feed's round ended (the first makes it ready)
//   TicketKeyRing[kNewWrapper](secret, name)     a RedisKeyStore's wrapping key (checked)
//   TicketKeyRing[kNewClusterInbox]()            a cluster worker's key pair
const kNative = Symbol('native ring')
const kInspectTicket = Symbol('inspect ticket')
const kExportEdgeKeys = Symbol('export edge keys')
const kSealEpochKeysTo = Symbol('seal epoch keys to')
const kOfferSealed = Symbol('offer sealed')
const kSealHeld = Symbol('seal held')
const kSealFallback = Symbol('seal fallback')
const kOfferWrapped = Symbol('offer wrapped')
const kLivePreviousEpochs = Symbol('live previous epochs')
const kFallBackNow = Symbol('fall back now')
const kFeedRoundDone = Symbol('feed round done')
const kNewWrapper = Symbol('new wrapper')
const kNewClusterInbox = Symbol('new cluster inbox')

// ring -> the attachments serving its tickets ({ server, stats() }), for metrics.
const attachmentsByRing = new WeakMap()

// ring -> what its feed must stop and wipe when the ring is destroyed (cluster.js).
const destroyHooks = new WeakMap()

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
  CIPHERS, RING_OPTIONS, kFed, kNextKeys,
  kNative, kInspectTicket, kExportEdgeKeys, kSealEpochKeysTo, kOfferSealed, kSealHeld, kSealFallback, kOfferWrapped,
  kLivePreviousEpochs, kFallBackNow, kFeedRoundDone, kNewWrapper, kNewClusterInbox,
  whenDestroyed, runDestroyHooks, registerAttachment, unregisterAttachment, attachmentsOf,
  msUntilMidEpoch, msUntilNextEpoch,
}
