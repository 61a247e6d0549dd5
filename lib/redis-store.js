'use strict'

// Random epoch keys agreed through Redis: forward secrecy for a fleet, unlike a shared secret.
//
// For every epoch the first process to `SET key value NX EX ttl` wins, one epoch before the
// key starts to encrypt, and every process loads the winner as its *next* key. Values are
// sealed with AES-256-GCM in Rust under the wrapping secret, with the epoch and the prefix as
// associated data: a Redis dump holds no usable key, and a value moved to another epoch does
// not open. Redis expires each value once the tickets of its key have expired.
//
// When Redis is unreachable the ring keeps rotating with keys of its own (counted in
// ring.stats().fallbackKeys and store.stats().redisErrors) and takes the shared ones again
// once Redis answers. No Redis error ever reaches a handshake.

const binding = require('../binding.js')
const { TicketKeyRing, kFed, nativeOf, msUntilMidEpoch } = require('./ring.js')
const { callNative, invalidArgValue, invalidState, validateObject, validateKeyBytes, invalidArgType } = require('./errors.js')

const MIN_WRAP_SECRET_BYTES = 32
// How soon to try again after Redis failed, at most.
const MAX_RETRY_MS = 2000

function nowSeconds() {
  return Math.floor(Date.now() / 1000)
}

class RedisKeyStore {
  #client
  #ownClient
  #wrapper
  #prefix
  #feeds = new Set()
  #closed = false
  #connecting = null
  #stats = { agreed: 0, won: 0, redisErrors: 0, unopenable: 0 }

  /**
   * @param {{ url?: string, wrapSecret: Buffer, prefix?: string, client?: object }} options
   *   `client`: a node-redis client to use instead of one made from `url`; it is not closed.
   */
  constructor(options = {}) {
    validateObject(options, 'options')
    const secret = validateKeyBytes(options.wrapSecret, 'options.wrapSecret')
    if (secret.length < MIN_WRAP_SECRET_BYTES) {
      throw invalidArgValue('options.wrapSecret', `must be at least ${MIN_WRAP_SECRET_BYTES} bytes. Received ${secret.length} bytes`)
    }
    const prefix = options.prefix === undefined ? 'tls-ticket-keys:' : options.prefix
    if (typeof prefix !== 'string') throw invalidArgType('options.prefix', 'of type string', prefix)
    this.#prefix = prefix
    this.#wrapper = callNative(() => new binding.NativeWrapper(secret))
    if (options.client !== undefined) {
      this.#client = options.client
      this.#ownClient = false
    } else {
      const url = options.url === undefined ? 'redis://127.0.0.1:6379' : options.url
      if (typeof url !== 'string') throw invalidArgType('options.url', 'of type string', url)
      const { createClient } = require('redis')
      this.#client = createClient({
        url,
        // Fail fast while Redis is away instead of queueing: the ring has local keys meanwhile.
        disableOfflineQueue: true,
        socket: { connectTimeout: 2000, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, MAX_RETRY_MS) },
      })
      this.#ownClient = true
    }
    // node-redis emits 'error' on every failed reconnect; without a listener that would crash.
    this.#client.on('error', () => { this.#stats.redisErrors++ })
  }

  /** A ring fed from Redis; it works (on local keys) even while Redis is unreachable. */
  async ring(options = {}) {
    if (this.#closed) throw invalidState('the RedisKeyStore is closed')
    validateObject(options, 'options')
    if (options.keys !== undefined || options.secret !== undefined) {
      throw invalidArgValue('options', 'of a store ring cannot have keys or secret: the store provides the keys')
    }
    await this.#connect()
    const ring = new TicketKeyRing(options, kFed)
    const feed = new Feed(this, ring)
    this.#feeds.add(feed)
    await feed.sync()
    return ring
  }

  // Our own client connects once; a Redis that is down does not hold the ring back.
  async #connect() {
    if (!this.#ownClient || this.#client.isOpen) return
    this.#connecting ??= this.#client.connect().catch(() => { this.#stats.redisErrors++ })
    let timer
    await Promise.race([this.#connecting, new Promise((resolve) => { timer = setTimeout(resolve, MAX_RETRY_MS) })])
    clearTimeout(timer)
  }

  /** Counters: shared keys taken into rings, races this process won, Redis errors, values that did not open. */
  stats() {
    return { ...this.#stats }
  }

  /** Stops feeding the rings and closes the Redis client it made; the rings keep their keys. */
  async close() {
    this.#closed = true
    for (const feed of this.#feeds) feed.stop()
    this.#feeds.clear()
    if (!this.#ownClient) return
    const client = this.#client
    if (client.isReady) {
      await (client.close ? client.close() : client.quit()).catch(() => {})
    } else if (client.isOpen) {
      // Still trying to reach Redis: stop trying, there is nothing to flush.
      client.destroy ? client.destroy() : client.disconnect()
    }
  }

  get closed() {
    return this.#closed
  }

  #redisKey(ring, epoch) {
    return `${this.#prefix}${ring.cipher}:${ring.rotationInterval}:${epoch}`
  }

  /** The key of an epoch that has begun already, if the fleet agreed one: never a new one. */
  async fetch(ring, epoch) {
    const stored = await this.#client.get(this.#redisKey(ring, epoch))
    if (stored !== null) this.#offer(ring, epoch, Buffer.from(stored, 'base64'))
  }

  /** The key of `epoch` for `ring`: ours if we win the SET NX race, else the winner's. */
  async agree(ring, epoch) {
    const { cipher, rotationInterval, ticketLifetime } = ring
    const redisKey = this.#redisKey(ring, epoch)
    // Kept until every ticket of this key has expired, with one interval to spare.
    const ttl = (epoch + 1) * rotationInterval + ticketLifetime + rotationInterval - nowSeconds()
    if (ttl <= 0) return
    const candidate = callNative(() => this.#wrapper.sealFresh(cipher, this.#prefix, epoch))
    const won = await this.#client.set(redisKey, candidate.toString('base64'), { NX: true, EX: ttl })
    let value = candidate
    if (won !== 'OK') {
      const stored = await this.#client.get(redisKey)
      if (stored === null) throw new Error('the agreed key vanished') // expired between SET and GET: retry
      value = Buffer.from(stored, 'base64')
    } else {
      this.#stats.won++
    }
    this.#offer(ring, epoch, value)
  }

  #offer(ring, epoch, value) {
    const native = nativeOf(ring)
    try {
      if (callNative(() => native.offerWrapped(this.#wrapper, this.#prefix, epoch, value))) this.#stats.agreed++
    } catch (err) {
      if (err.code !== 'ERR_TLS_TICKET_KEY_UNOPENABLE') throw err
      // Another wrapping secret, or tampering: never use it, keep the local key.
      this.#stats.unopenable++
    }
  }

  noteError() {
    this.#stats.redisErrors++
  }
}

/** Keeps one ring fed: the keys of the current and the next epoch, agreed every epoch. */
class Feed {
  #store
  #ring
  #timer = null
  #stopped = false
  #caughtUp = false

  constructor(store, ring) {
    this.#store = store
    this.#ring = ring
  }

  async sync() {
    if (this.#stopped) return
    const ring = this.#ring
    let ok = true
    if (ring.destroyed) return this.stop()
    const epoch = Math.floor(nowSeconds() / ring.rotationInterval)
    if (!this.#caughtUp) {
      // Tickets that other processes (or this one before a restart) sealed in recent epochs
      // are still live: fetch those keys once, without ever making new past keys.
      const live = Math.min(Math.floor(ring.ticketLifetime / ring.rotationInterval) + 1, 64)
      try {
        for (let e = epoch - live; e < epoch; e++) await this.#store.fetch(ring, e)
        this.#caughtUp = true
      } catch {
        this.#store.noteError()
        ok = false
      }
    }
    for (const e of [epoch, epoch + 1]) {
      try {
        await this.#store.agree(ring, e)
      } catch {
        this.#store.noteError()
        ok = false
      }
    }
    if (this.#stopped) return
    // Next in the middle of the epoch, so the next key is agreed well before it is due; soon
    // again if Redis failed.
    const untilMiddle = msUntilMidEpoch(ring.rotationInterval)
    const delay = (ok ? untilMiddle : Math.min(untilMiddle, MAX_RETRY_MS)) + Math.floor(Math.random() * 100)
    this.#timer = setTimeout(() => { this.sync() }, delay)
    this.#timer.unref()
  }

  stop() {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}

module.exports = { RedisKeyStore }
