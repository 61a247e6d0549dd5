'use strict'

// One ring for a node:cluster: the primary holds it, every worker mirrors it over the
// cluster's IPC channel. Workers get every key of the current schedule before their first
// handshake and the next key one epoch ahead, so they rotate together with the primary.
// (Node already shares one ticket key among cluster workers, but it never rotates it.)
//
// Keys cross the IPC channel between processes of one cluster, in memory only.

const cluster = require('node:cluster')
const { TicketKeyRing, kFed, nativeOf, msUntilMidEpoch } = require('./ring.js')
const { callNative, invalidState, validateObject } = require('./errors.js')

const TAG = 'tls-ticket-keys'
const HELLO_TIMEOUT_MS = 10_000

function keysMessage(ring) {
  const keys = callNative(() => nativeOf(ring).epochKeys())
  return {
    [TAG]: 'keys',
    schedule: { cipher: ring.cipher, rotationInterval: ring.rotationInterval, ticketLifetime: ring.ticketLifetime },
    keys: keys.map(({ epoch, material }) => ({ epoch, material: material.toString('base64') })),
  }
}

function primaryRing(options) {
  const ring = new TicketKeyRing(options)
  const sendTo = (worker) => {
    if (ring.destroyed || !worker.isConnected()) return
    try {
      worker.send(keysMessage(ring))
    } catch {
      // A worker that is going away misses nothing it could use.
    }
  }
  const onMessage = (worker, message) => {
    if (message && message[TAG] === 'hello') sendTo(worker)
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

function workerRing() {
  if (typeof process.send !== 'function') {
    return Promise.reject(invalidState('TicketKeyRing.forCluster() in a worker needs the cluster IPC channel'))
  }
  return new Promise((resolve, reject) => {
    let ring = null
    const onMessage = (message) => {
      if (!message || message[TAG] !== 'keys') return
      if (ring === null) {
        const { cipher, rotationInterval, ticketLifetime } = message.schedule
        ring = new TicketKeyRing({ cipher, rotationInterval, ticketLifetime }, kFed)
      }
      if (ring.destroyed) {
        process.off('message', onMessage)
        return
      }
      const native = nativeOf(ring)
      for (const { epoch, material } of message.keys) {
        callNative(() => native.offer(epoch, Buffer.from(material, 'base64')))
      }
      clearTimeout(timer)
      resolve(ring)
    }
    const timer = setTimeout(() => {
      process.off('message', onMessage)
      reject(invalidState('the cluster primary sent no ticket keys; call TicketKeyRing.forCluster() there too'))
    }, HELLO_TIMEOUT_MS)
    process.on('message', onMessage)
    process.send({ [TAG]: 'hello' })
  })
}

/**
 * In the primary: a ring that every worker mirrors. In a worker: the mirror, once the
 * primary has sent its keys. Options apply in the primary; workers take the primary's.
 */
async function forCluster(options = {}) {
  validateObject(options, 'options')
  return cluster.isPrimary ? primaryRing(options) : workerRing()
}

module.exports = { forCluster }
