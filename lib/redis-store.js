'use strict'

// Random epoch keys agreed through Redis: forward secrecy for a fleet, unlike a shared secret.
//
// For every epoch the first process to `SET key value NX EX ttl` wins, two epochs before the
// key starts to encrypt (so at least a full interval before, whatever the round's jitter),
// and every process loads the winner as a *next* key. Each round also writes back, with the
// same SET NX, the keys a process holds for the running and the next epoch: a Redis that
// restarted empty gets the fleet's keys again instead of new ones mid-epoch; after an outage
// it also writes back the keys of past epochs that are still live. Values are sealed with
// AES-256-GCM in Rust under the wrapping secret, with the cipher, the epoch, the interval and
// the prefix as associated data: a Redis dump holds no usable key, and a value moved to
// another epoch, schedule or store does not open. Redis expires each value once the tickets
// of its key have expired.
//
// When Redis is unreachable the ring keeps rotating: at a boundary with no agreed key it
// falls back (counted in ring.stats().fallbackKeys once the key seals a ticket, and the
// outage in store.stats().redisErrors) and takes the shared keys again once Redis answers.
// With `fallback: 'derived'` (the default) the fallback key of an epoch is derived in Rust
// from the wrapping secret, the prefix, the interval, the cipher and the epoch, so every
// member that falls back for it, also one started during the outage, makes the same key and
// the fleet keeps resuming; once Redis answers, those keys are written back with the same
// SET NX as any held key. With `fallback: 'local'` each member makes a random key of its own,
// so the fleet splits for as long as Redis is away. A member never derives a key for an epoch
// whose agreed key it holds: an outage covered by the keys held ahead costs nothing.
//
// No Redis error ever reaches a handshake, and no call waits on Redis for longer than the
// store's `timeout`: a Redis that stops answering (SIGSTOP, a blackholed network, a client's
// offline queue) counts as an error, like one that refuses.

const { inspect } = require('node:util')
const { TicketKeyRing } = require('./ring.js')
const {
  kFed, kSealHeld, kSealFallback, kOfferWrapped, kLivePreviousEpochs, kFallBackNow, kFeedRoundDone, kNewWrapper, msUntilNextEpoch,
} = require('./internal.js')
const { publishStoreError } = require('./diagnostics.js')
const { wrapRedisClient, OwnRedisClient } = require('./redis-client.js')
const { OutageWarnings, redisWords } = require('./outage-warnings.js')
const {
  callNative, invalidArgValue, invalidState, validateObject, validateKeyBytes, invalidArgType, validateInteger,
  validateOneOf, validateOptionNames,
} = require('./errors.js')

// The longest our own client waits for a connection.
const MAX_CONNECT_MS = 2000
// A failed round is tried again this soon (or at a quarter of the interval, if sooner): a
// Redis that answers again is used at once, well before the next boundary.
const ROUND_RETRY_MS = 500
// Rounds start after each boundary, spread over this much of the fleet (or a tenth of the interval).
const MAX_ROUND_JITTER_MS = 500
// At the start of epoch e, the keys of e .. e + EPOCHS_AHEAD are agreed.
const EPOCHS_AHEAD = 2
const DEFAULT_TIMEOUT_MS = 3000
const MAX_TIMEOUT_MS = 60_000
const STORE_OPTIONS = ['url', 'client', 'wrapSecret', 'prefix', 'timeout', 'warnings', 'fallback']
// What a ring does at a boundary whose key Redis has not agreed: see the top of this file.
const FALLBACKS = ['derived', 'local']
const URL_SCHEMES = ['redis:', 'rediss:']

function untilDeadline(deadline) {
  return Math.max(1, deadline - Date.now())
}

/** A Redis call that took longer than the store's timeout. */
class RedisTimeout extends Error {
  constructor(ms) {
    super(`Redis did not answer within ${ms} ms`)
    this.name = 'RedisTimeout'
    this.code = 'ETIMEDOUT'
  }
}

/** `promise`, or a RedisTimeout after `ms`. */
function within(ms, promise) {
  let timer
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new RedisTimeout(ms)), ms)
    timer.unref()
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

// The URL is checked here, so that no error quotes it: it may hold a password.
function validateRedisUrl(url) {
  if (typeof url !== 'string') throw invalidArgType('options.url', 'of type string', url)
  let parsed
  try {
    parsed = new URL(url)
  } catch {
    throw invalidArgValue('options.url', 'is not a valid URL')
  }
  if (!URL_SCHEMES.includes(parsed.protocol)) {
    const shown = /^[a-z][a-z0-9+.-]{0,15}:$/.test(parsed.protocol) ? ` Received ${parsed.protocol}//…` : ''
    throw invalidArgValue('options.url', `must be a redis:// or rediss:// URL.${shown}`)
  }
  return url
}

/** The password in a Redis URL, as written and decoded as the client sends it. */
function urlSecrets(url) {
  const { password } = new URL(url)
  if (password === '') return []
  try {
    return [password, decodeURIComponent(password)]
  } catch {
    return [password]
  }
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000)
}

class RedisKeyStore {
  #client
  #ownClient
  #wrapper
  #prefix
  #fallback
  #feeds = new Set()
  #closed = false
  #connecting = null
  #timeout
  #stats = { agreed: 0, won: 0, writtenBack: 0, redisErrors: 0, unopenable: 0 }
  // The password of our own client's URL, kept out of store-error messages.
  #urlSecrets = []
  // One process warning when Redis stops answering and one when it is back (outage-warnings.js).
  #outage
  #onClientError = (err) => this.#failed(err, 'client', this.#ringNames())
  // What a Feed may call: the store's Redis work, kept off its public surface.
  #access = {
    fetch: (ring, epoch, deadline) => this.#fetch(ring, epoch, deadline),
    agree: (ring, epoch, deadline, options) => this.#agree(ring, epoch, deadline, options),
    writeBack: (ring, epoch, deadline) => this.#agree(ring, epoch, deadline, { heldOnly: true }),
    noteError: (err, operation, ring) => this.#failed(err, operation, [ring.name]),
    deadline: () => Date.now() + this.#timeout,
  }

  /**
   * @param {{ url?: string, wrapSecret: Buffer, prefix?: string, client?: object, timeout?: number,
   *   fallback?: 'derived' | 'local' }} options
   *   `client`: a node-redis or ioredis client to use instead of one made from `url` (see
   *   redis-client.js for which); it is not closed.
   *   `timeout`: milliseconds any Redis call may take before it counts as failed.
   *   `fallback`: the key of an epoch Redis did not agree in time: 'derived' (the default),
   *   alike in every member; 'local', random and the member's own.
   */
  constructor(options = {}) {
    validateObject(options, 'options')
    validateOptionNames(options, 'options', STORE_OPTIONS)
    this.#timeout = options.timeout === undefined ? DEFAULT_TIMEOUT_MS
      : validateInteger(options.timeout, 'options.timeout', 1, MAX_TIMEOUT_MS)
    this.#fallback = options.fallback === undefined ? FALLBACKS[0] : validateOneOf(options.fallback, 'options.fallback', FALLBACKS)
    const secret = validateKeyBytes(options.wrapSecret, 'options.wrapSecret')
    const wrapper = TicketKeyRing[kNewWrapper](secret, 'options.wrapSecret')
    const prefix = options.prefix === undefined ? 'tls-ticket-keys:' : options.prefix
    if (typeof prefix !== 'string') throw invalidArgType('options.prefix', 'of type string', prefix)
    this.#prefix = prefix
    if (options.warnings !== undefined && typeof options.warnings !== 'boolean') {
      throw invalidArgType('options.warnings', 'of type boolean', options.warnings)
    }
    this.#outage = new OutageWarnings(options.warnings !== false, redisWords(this.#fallback))
    this.#wrapper = wrapper
    if (options.client !== undefined && options.url !== undefined) {
      throw invalidArgValue('options', 'cannot have both url and client')
    }
    if (options.client !== undefined) {
      this.#client = wrapRedisClient(options.client)
      this.#ownClient = false
    } else {
      const url = options.url === undefined ? 'redis://127.0.0.1:6379' : validateRedisUrl(options.url)
      this.#urlSecrets = urlSecrets(url)
      this.#client = new OwnRedisClient({
        url,
        // Fail fast while Redis is away instead of queueing: the ring has local keys meanwhile.
        disableOfflineQueue: true,
        socket: {
          connectTimeout: Math.min(this.#timeout, MAX_CONNECT_MS),
          // A Redis that restarts is used again within a round's retry: local keys that the
          // fleet does not share pile up while it is away.
          reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, ROUND_RETRY_MS),
        },
      })
      this.#ownClient = true
    }
    // node-redis emits 'error' on every failed reconnect; without a listener that would crash.
    this.#client.onError(this.#onClientError)
  }

  // Every Redis error counts in stats().redisErrors and goes to `tls-ticket-keys:store-error`,
  // except the echoes of close() ending a client that was still connecting.
  #failed(err, operation, rings) {
    this.#stats.redisErrors++
    if (this.#closed && operation !== 'close') return
    publishStoreError(rings, operation, err, this.#urlSecrets)
    if (!this.#closed) this.#outage.failed(err, operation, rings)
  }

  #ringNames() {
    return [...this.#feeds].map((feed) => feed.ring.name)
  }

  /**
   * A ring fed from Redis; it works (on local keys) even while Redis is unreachable. Settles
   * within the store's timeout: whatever Redis has not answered by then, the ring makes
   * locally (counted in its fallbackKeys), and the feed keeps trying.
   */
  async ring(options = {}) {
    if (this.#closed) throw invalidState('the RedisKeyStore is closed')
    validateObject(options, 'options')
    if (options.keys !== undefined || options.secret !== undefined) {
      throw invalidArgValue('options', 'of a store ring cannot have keys or secret: the store provides the keys')
    }
    const fed = { fallback: this.#fallback, wrapper: this.#wrapper, prefix: this.#prefix }
    const ring = new TicketKeyRing(options, { [kFed]: fed })
    const feed = new Feed(this.#access, ring)
    this.#feeds.add(feed)
    const deadline = this.#access.deadline()
    await this.#connect(deadline)
    // Its first round makes the ring ready (ring[kFeedRoundDone]).
    await feed.sync(deadline)
    return ring
  }

  // Our own client connects once; a Redis that is down does not hold the ring back.
  async #connect(deadline) {
    if (!this.#ownClient || this.#client.isOpen) return
    this.#connecting ??= this.#client.connect().catch((err) => this.#failed(err, 'connect', this.#ringNames()))
    // A refused connection is known at its first error: no need to wait for the deadline, the
    // feed keeps trying while the client reconnects.
    let onError
    const refused = new Promise((resolve) => { onError = resolve })
    this.#client.onError(onError)
    try {
      await within(untilDeadline(deadline), Promise.race([this.#connecting, refused])).catch(() => {})
    } finally {
      this.#client.offError(onError)
    }
  }

  /**
   * Counters: shared keys taken into rings, races this process won with a new key, keys it
   * held that Redis had lost and got back, Redis errors, values that did not open.
   */
  stats() {
    return { ...this.#stats }
  }

  /**
   * Stops feeding the rings and closes the Redis client it made; the rings keep their keys.
   * Settles within the store's timeout: a Redis that does not answer the goodbye is dropped.
   */
  async close() {
    this.#closed = true
    for (const feed of this.#feeds) feed.stop()
    this.#feeds.clear()
    if (!this.#ownClient) {
      // The user's client outlives the store: leave it as it came, without our listener.
      this.#client.offError(this.#onClientError)
      return
    }
    const client = this.#client
    if (client.isReady) {
      try {
        await within(this.#timeout, client.close())
      } catch (err) {
        this.#failed(err, 'close', [])
        client.destroy()
      }
    } else {
      // Still trying to reach Redis: stop trying, there is nothing to flush.
      client.destroy()
    }
  }

  /** Milliseconds any Redis call may take before it counts as failed. */
  get timeout() {
    return this.#timeout
  }

  /** 'derived' or 'local': what a ring makes for an epoch that Redis did not agree in time. */
  get fallback() {
    return this.#fallback
  }

  get closed() {
    return this.#closed
  }

  #redisKey(ring, epoch) {
    return `${this.#prefix}${ring.cipher}:${ring.rotationInterval}:${epoch}`
  }

  #redis(deadline, command, ...args) {
    return within(untilDeadline(deadline), this.#client[command](...args)).then((reply) => {
      if (!this.#closed) this.#outage.ok(this.#ringNames())
      return reply
    })
  }

  /** The key of an epoch that has begun already, if the fleet agreed one: never a new one. */
  async #fetch(ring, epoch, deadline) {
    const stored = await this.#redis(deadline, 'get', this.#redisKey(ring, epoch))
    if (stored !== null) this.#offer(ring, epoch, Buffer.from(stored, 'base64'))
  }

  /**
   * The key of `epoch` for `ring`, the same in Redis and in the ring: the one Redis has; else
   * the one the ring holds (written back, so that a Redis that lost it never changes the key
   * of an epoch under way); else a new one. SET NX decides between processes. A lost SET NX
   * is always followed by a GET, also for a key the ring took from Redis before: a process
   * that joined after Redis was emptied may have set another one meanwhile. `heldOnly`: for
   * a past epoch, write back the key the ring holds, and never make one. `proposeFallback`:
   * propose the fleet's fallback key rather than a random one (see Feed).
   */
  async #agree(ring, epoch, deadline, { heldOnly = false, proposeFallback = false } = {}) {
    const { cipher, rotationInterval, ticketLifetime } = ring
    const redisKey = this.#redisKey(ring, epoch)
    // Kept until every ticket of this key has expired, with one interval to spare.
    const ttl = (epoch + 1) * rotationInterval + ticketLifetime + rotationInterval - nowSeconds()
    if (ttl <= 0) return
    const held = ring[kSealHeld](this.#wrapper, this.#prefix, epoch)
    if (held === null && heldOnly) return
    let candidate = held
    if (candidate === null && proposeFallback) {
      candidate = ring[kSealFallback](this.#wrapper, this.#prefix, epoch)
    }
    candidate ??= callNative(() => this.#wrapper.sealFresh(cipher, this.#prefix, epoch, rotationInterval))
    const won = await this.#redis(deadline, 'setNX', redisKey, candidate.toString('base64'), ttl)
    let value = candidate
    if (!won) {
      const stored = await this.#redis(deadline, 'get', redisKey)
      if (stored === null) throw new Error('the agreed key vanished') // expired between SET and GET: retry
      value = Buffer.from(stored, 'base64')
    } else if (held !== null) {
      this.#stats.writtenBack++
    } else {
      this.#stats.won++
    }
    this.#offer(ring, epoch, value)
  }

  #offer(ring, epoch, value) {
    try {
      if (ring[kOfferWrapped](this.#wrapper, this.#prefix, epoch, value)) this.#stats.agreed++
    } catch (err) {
      if (err.code !== 'ERR_TLS_TICKET_KEY_UNOPENABLE') throw err
      // Another wrapping secret, or tampering: never use it, keep the local key.
      this.#stats.unopenable++
    }
  }

  [inspect.custom]() {
    return `RedisKeyStore { closed: ${this.#closed}, timeout: ${this.#timeout} }`
  }
}

/**
 * Keeps one ring fed: a round just after each boundary agrees the keys of the running epoch
 * and the two after it; a round that fails is tried again within ROUND_RETRY_MS.
 */
class Feed {
  #store
  #ring
  #timer = null
  #stopped = false
  #caughtUp = false
  // A round failed since the last one that wrote back the keys of past epochs: the keys the
  // ring sealed with meanwhile (fallbacks) go to Redis once it answers, for members that
  // start later.
  #writeBackPast = false

  /** `store`: the store's fetch, agree, noteError and deadline. */
  constructor(store, ring) {
    this.#store = store
    this.#ring = ring
  }

  get ring() {
    return this.#ring
  }

  /** One round with Redis, all of it within the store's timeout. */
  async sync(deadline = this.#store.deadline()) {
    const ring = this.#ring
    if (this.#stopped || ring.destroyed) {
      // A ring whose store closed before its first round is handed out as it is, and ready.
      ring[kFeedRoundDone]()
      if (ring.destroyed) this.stop()
      return
    }
    let ok = true
    const epoch = Math.floor(nowSeconds() / ring.rotationInterval)
    // The first round that reaches Redis after an outage proposes the fleet's fallback key for
    // the epoch that begins next instead of a random one: members that hear from Redis a little
    // later (their retry, their reconnection) derive that same key at its boundary. The epoch
    // after it is agreed a full interval ahead, as random as ever.
    const afterOutage = this.#writeBackPast
    if (!this.#caughtUp) {
      // Tickets that other processes (or this one before a restart) sealed in recent epochs
      // are still live: fetch those keys once, without ever making new past keys.
      const live = ring[kLivePreviousEpochs]
      try {
        for (let e = epoch - live; e < epoch; e++) await this.#store.fetch(ring, e, deadline)
        this.#caughtUp = true
      } catch (err) {
        this.#store.noteError(err, 'fetch', ring)
        ok = false
      }
    }
    if (ok && this.#writeBackPast) {
      try {
        for (let e = epoch - ring[kLivePreviousEpochs]; e < epoch; e++) await this.#store.writeBack(ring, e, deadline)
        this.#writeBackPast = false
      } catch (err) {
        this.#store.noteError(err, 'agree', ring)
        ok = false
      }
    }
    for (let e = epoch; e <= epoch + EPOCHS_AHEAD; e++) {
      // A Redis that did not answer in time will not answer the next call either.
      if (!ok) break
      try {
        await this.#store.agree(ring, e, deadline, { proposeFallback: afterOutage && e === epoch + 1 })
      } catch (err) {
        this.#store.noteError(err, 'agree', ring)
        ok = false
      }
    }
    if (!ok) {
      this.#writeBackPast = true
      // Without Redis (derived fallbacks only): the fleet's key of the running epoch in place of
      // a random start-up key, and if the keys of recent epochs could not be fetched, theirs,
      // so that tickets peers sealed while Redis was away open here too.
      try {
        ring[kFallBackNow](!this.#caughtUp)
      } catch {
        // Destroyed meanwhile: nothing to open any more.
      }
    }
    ring[kFeedRoundDone]()
    if (this.#stopped) return
    const interval = ring.rotationInterval * 1000
    const delay = ok
      ? msUntilNextEpoch(ring.rotationInterval) + Math.floor(Math.random() * Math.min(MAX_ROUND_JITTER_MS, interval / 10))
      : Math.min(ROUND_RETRY_MS, interval / 4) + Math.floor(Math.random() * 50)
    this.#timer = setTimeout(() => { this.sync() }, delay)
    this.#timer.unref()
  }

  stop() {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}

module.exports = { RedisKeyStore }
