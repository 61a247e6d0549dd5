'use strict'

// One ring for a node:cluster: the primary holds it, every worker mirrors it over the
// cluster's IPC channel. Workers get every key of the current schedule before their first
// handshake and the next key one epoch ahead, so they rotate together with the primary.
// (Node already shares one ticket key among cluster workers, but it never rotates it.)
//
// Keys cross the IPC channel sealed to each worker (X25519 and AES-256-GCM, in Rust): the
// channel, its buffers and the JavaScript heaps of both processes only see ciphertext.

const cluster = require('node:cluster')
const binding = require('../binding.js')
const { kFed, nativeOf, keysOffered, fedRingReady, msUntilMidEpoch, RING_OPTIONS, CIPHERS } = require('./internal.js')
const { callNative, invalidState, validateObject, validateOptionNames } = require('./errors.js')
const { validateRingName } = require('./ring-name.js')

const TAG = 'tls-ticket-keys'
const HELLO_TIMEOUT_MS = 10_000
const PUBLIC_KEY_BYTES = 32

function keysMessage(ring, publicKey) {
  const sealed = callNative(() => nativeOf(ring).sealEpochKeysTo(publicKey))
  return {
    [TAG]: 'keys',
    schedule: { cipher: ring.cipher, rotationInterval: ring.rotationInterval, ticketLifetime: ring.ticketLifetime },
    sealed: sealed.toString('base64'),
  }
}

function primaryRing(TicketKeyRing, options) {
  const ring = new TicketKeyRing(options)
  // worker -> its public key, from its hello.
  const publicKeys = new WeakMap()
  const sendTo = (worker) => {
    const publicKey = publicKeys.get(worker)
    if (ring.destroyed || publicKey === undefined || !worker.isConnected()) return
    try {
      worker.send(keysMessage(ring, publicKey))
    } catch {
      // A worker that is going away misses nothing it could use.
    }
  }
  const onMessage = (worker, message) => {
    if (!message || message[TAG] !== 'hello' || typeof message.publicKey !== 'string') return
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

function workerRing(TicketKeyRing, name) {
  if (typeof process.send !== 'function') {
    return Promise.reject(invalidState('TicketKeyRing.forCluster() in a worker needs the cluster IPC channel'))
  }
  const inbox = callNative(() => new binding.NativeClusterInbox())
  return new Promise((resolve, reject) => {
    let ring = null
    // Never throws: a message that is not what the primary sends is ignored, and a ring made
    // from a schedule that its keys were not sealed for is dropped again.
    const onMessage = (message) => {
      if (!message || message[TAG] !== 'keys' || typeof message.sealed !== 'string') return
      if (ring !== null && ring.destroyed) {
        process.off('message', onMessage)
        return
      }
      let fresh = null
      try {
        if (ring === null) {
          const schedule = scheduleOf(message)
          if (schedule === null) return
          // Late keys from the primary: random keys of its own meanwhile.
          fresh = new TicketKeyRing({ ...schedule, name }, { [kFed]: { fallback: 'local' } })
        }
        const target = ring ?? fresh
        callNative(() => nativeOf(target).offerSealed(inbox, Buffer.from(message.sealed, 'base64')))
        if (target === ring) keysOffered(ring)
      } catch {
        // Not sealed to this worker for this schedule, or altered: ignore it.
        fresh?.destroy()
        return
      }
      if (ring === null) {
        ring = fresh
        fedRingReady(ring)
      }
      clearTimeout(timer)
      resolve(ring)
    }
    const timer = setTimeout(() => {
      process.off('message', onMessage)
      reject(invalidState('the cluster primary sent no ticket keys; call TicketKeyRing.forCluster() there too'))
    }, HELLO_TIMEOUT_MS)
    process.on('message', onMessage)
    process.send({ [TAG]: 'hello', publicKey: inbox.publicKey().toString('base64') })
  })
}

/**
 * In the primary: a ring that every worker mirrors. In a worker: the mirror, once the
 * primary has sent its keys. Options apply in the primary; workers take the primary's, except
 * the ring's name, which each process gives its own ring (the same code runs in every one).
 * `TicketKeyRing` is handed in by ring.js, which this module does not import.
 */
async function forCluster(TicketKeyRing, options = {}) {
  validateObject(options, 'options')
  validateOptionNames(options, 'options', RING_OPTIONS)
  if (cluster.isPrimary) return primaryRing(TicketKeyRing, options)
  if (options.name !== undefined) validateRingName(options.name, 'options.name')
  return workerRing(TicketKeyRing, options.name)
}

module.exports = { forCluster }
