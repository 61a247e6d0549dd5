'use strict'

// One ring for a node:cluster: the primary holds it, every worker mirrors it over the
// cluster's IPC channel. Workers get every key of the current schedule before their first
// handshake and the next key one epoch ahead, so they rotate together with the primary.
// (Node already shares one ticket key among cluster workers, but it never rotates it.)
//
// Keys cross the IPC channel sealed to each worker (X25519 and AES-256-GCM, in Rust): the
// channel, its buffers and the JavaScript heaps of both processes only see ciphertext.
//
// A cluster may run several rings (services with different trust): each is a channel, named
// by the ring's name. A worker ring mirrors only the primary ring of its name: the name is in
// the hello, in the keys message, and in the associated data of the seal, so a message for
// ring `a` does not open in ring `b` even when it is sealed to b's key. One process holds at
// most one live cluster ring per name.

const cluster = require('node:cluster')
const {
  kFed, kSealEpochKeysTo, kOfferSealed, kNewClusterInbox, msUntilMidEpoch, whenDestroyed, RING_OPTIONS, CIPHERS,
} = require('./internal.js')
const { invalidState, validateObject, validateOptionNames } = require('./errors.js')
const { validateRingName } = require('./ring-name.js')

const TAG = 'tls-ticket-keys'
const HELLO_TIMEOUT_MS = 10_000
const PUBLIC_KEY_BYTES = 32

// The live cluster rings of this process by channel, shared by every copy of the package in
// it (a registered symbol): channel -> { ring: WeakRef | null } (null while a worker waits).
const kChannels = Symbol.for('tls-ticket-keys.cluster-channels')

function channels() {
  if (!(globalThis[kChannels] instanceof Map)) {
    Object.defineProperty(globalThis, kChannels, { value: new Map(), configurable: true, enumerable: false })
  }
  return globalThis[kChannels]
}

/** Takes `channel` for a new cluster ring of this process, or throws when a live one has it. */
function claimChannel(channel) {
  const held = channels().get(channel)
  const ring = held?.ring?.deref()
  if (held !== undefined && (held.ring === null || (ring !== undefined && !ring.destroyed))) {
    throw invalidState(`this process already has a cluster ring ${channel === '' ? 'without a name' : `named ${channel}`}; ` +
      'each forCluster() ring needs a name of its own (options.name)')
  }
  const claim = { ring: null }
  channels().set(channel, claim)
  return claim
}

function releaseChannel(channel, claim) {
  if (channels().get(channel) === claim) channels().delete(channel)
}

function keysMessage(ring, channel, publicKey) {
  const sealed = ring[kSealEpochKeysTo](publicKey, channel)
  return {
    [TAG]: 'keys',
    ring: channel,
    schedule: { cipher: ring.cipher, rotationInterval: ring.rotationInterval, ticketLifetime: ring.ticketLifetime },
    sealed: sealed.toString('base64'),
  }
}

function primaryRing(TicketKeyRing, options, channel) {
  const claim = claimChannel(channel)
  let ring
  try {
    ring = new TicketKeyRing(options)
  } catch (err) {
    releaseChannel(channel, claim)
    throw err
  }
  claim.ring = new WeakRef(ring)
  // worker -> its public key, from its hello.
  const publicKeys = new WeakMap()
  const sendTo = (worker) => {
    const publicKey = publicKeys.get(worker)
    if (ring.destroyed || publicKey === undefined || !worker.isConnected()) return
    try {
      worker.send(keysMessage(ring, channel, publicKey))
    } catch {
      // A worker that is going away misses nothing it could use.
    }
  }
  const onMessage = (worker, message) => {
    if (!message || message[TAG] !== 'hello' || message.ring !== channel || typeof message.publicKey !== 'string') return
    const publicKey = Buffer.from(message.publicKey, 'base64')
    if (publicKey.length !== PUBLIC_KEY_BYTES) return
    publicKeys.set(worker, publicKey)
    sendTo(worker)
  }
  cluster.on('message', onMessage)
  // In the middle of every epoch, hand out the next key, well before it is due.
  let timer
  const tick = () => {
    if (ring.destroyed) {
      cluster.off('message', onMessage)
      return
    }
    for (const worker of Object.values(cluster.workers)) sendTo(worker)
    timer = setTimeout(tick, msUntilMidEpoch(ring.rotationInterval) + 10)
    timer.unref()
  }
  timer = setTimeout(tick, msUntilMidEpoch(ring.rotationInterval) + 10)
  timer.unref()
  whenDestroyed(ring, () => {
    clearTimeout(timer)
    cluster.off('message', onMessage)
    releaseChannel(channel, claim)
  })
  return ring
}

// The schedule a keys message claims, if it is one a ring can have; the seal proves it below.
function scheduleOf(message) {
  const schedule = message.schedule
  if (schedule === null || typeof schedule !== 'object') return null
  const { cipher, rotationInterval, ticketLifetime } = schedule
  if (!CIPHERS.includes(cipher) || !Number.isInteger(rotationInterval) || !Number.isInteger(ticketLifetime)) return null
  return { cipher, rotationInterval, ticketLifetime }
}

function workerRing(TicketKeyRing, name, channel) {
  if (typeof process.send !== 'function') {
    return Promise.reject(invalidState('TicketKeyRing.forCluster() in a worker needs the cluster IPC channel'))
  }
  const claim = claimChannel(channel)
  let inbox
  try {
    inbox = TicketKeyRing[kNewClusterInbox]()
  } catch (err) {
    releaseChannel(channel, claim)
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => {
    let ring = null
    // Ends the mirror: no more messages, and the private key wiped where it lies, now rather
    // than at a garbage collection (destroy() promises that no key can be recovered).
    const stop = () => {
      clearTimeout(timer)
      process.off('message', onMessage)
      inbox.wipe()
      releaseChannel(channel, claim)
    }
    // Never throws: a message that is not what the primary sends this ring is ignored, and a
    // ring made from a schedule that its keys were not sealed for is dropped again.
    const onMessage = (message) => {
      if (!message || message[TAG] !== 'keys' || message.ring !== channel || typeof message.sealed !== 'string') return
      let fresh = null
      try {
        if (ring === null) {
          const schedule = scheduleOf(message)
          if (schedule === null) return
          // Late keys from the primary: random keys of its own meanwhile.
          fresh = new TicketKeyRing({ ...schedule, name }, { [kFed]: { fallback: 'local' } })
        }
        const target = ring ?? fresh
        // A fresh ring's first keys make it ready: it is handed out now.
        target[kOfferSealed](inbox, Buffer.from(message.sealed, 'base64'), channel)
      } catch {
        // Not sealed to this worker for this ring and schedule, or altered: ignore it.
        fresh?.destroy()
        return
      }
      if (ring === null) {
        ring = fresh
        claim.ring = new WeakRef(ring)
        whenDestroyed(ring, stop)
      }
      clearTimeout(timer)
      resolve(ring)
    }
    const timer = setTimeout(() => {
      stop()
      reject(invalidState(`the cluster primary sent no ticket keys for this ring; call TicketKeyRing.forCluster() there too, with the same name`))
    }, HELLO_TIMEOUT_MS)
    process.on('message', onMessage)
    process.send({ [TAG]: 'hello', ring: channel, publicKey: inbox.publicKey().toString('base64') })
  })
}

/**
 * In the primary: a ring that every worker mirrors. In a worker: the mirror, once the
 * primary's ring of the same name has sent its keys. Options apply in the primary; workers
 * take the primary's, except the ring's name, which also picks the primary ring to mirror.
 * A second live cluster ring of one name in one process is refused (ERR_INVALID_STATE).
 * `TicketKeyRing` is handed in by ring.js, which this module does not import.
 */
async function forCluster(TicketKeyRing, options = {}) {
  validateObject(options, 'options')
  validateOptionNames(options, 'options', RING_OPTIONS)
  if (options.name !== undefined) validateRingName(options.name, 'options.name')
  // The unnamed ring is a channel too: ''.
  const channel = options.name ?? ''
  if (cluster.isPrimary) return primaryRing(TicketKeyRing, options, channel)
  return workerRing(TicketKeyRing, options.name, channel)
}

module.exports = { forCluster }
