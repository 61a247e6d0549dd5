'use strict'

// One small interface over the Redis clients users run, so that RedisKeyStore says the same
// two commands to all of them: node-redis 5+ (createClient, createSentinel, createCluster) and
// ioredis (Redis, Redis with sentinels, Cluster). Their SET options differ (node-redis takes an
// object, ioredis positional tokens), so a client of one library driven with the other's syntax
// would silently write without NX or expiry: anything that is not recognised is refused.
//
// Recognised by properties the libraries themselves define (read from their sources), never by
// instanceof: the user's copy of the library is not ours, and we may not have one at all.
//   node-redis 5 and 6: every client object carries `_self` and `withTypeMapping` (node-redis 4
//     has neither, and its legacy/callback clients have no promise API to drive). A cluster
//     also has `getSlotMaster` and `nodeClient`, a sentinel `getMasterNode` and `getSentinelNode`,
//     a plain client `legacy` and `duplicate` (a client pool has none of these and is refused).
//   ioredis: `isCluster` (a boolean), `call`, `getBuffer`, and `status` (a string); with
//     `options.sentinels` a Redis finds its master through Sentinel.
//
// The adapter never connects, waits for or closes a client it was given: that is the user's.
// It adds no timeout either: the store bounds every call with its own.

const { invalidArgType, invalidArgValue } = require('./errors.js')
const { loadPeer } = require('./peers.js')

const ACCEPTED = 'a node-redis client (createClient(), createSentinel() or createCluster(), node-redis 5 or later) ' +
  'or an ioredis client (new Redis() or new Cluster())'

const isFunction = (value, name) => typeof value[name] === 'function'
const hasMethods = (value, names) => names.every((name) => isFunction(value, name))

function nodeRedisKind(client) {
  if (client._self === null || typeof client._self !== 'object') return null
  if (!hasMethods(client, ['withTypeMapping', 'get', 'set', 'on', 'off'])) return null
  if (hasMethods(client, ['getSlotMaster', 'nodeClient'])) return 'node-redis-cluster'
  if (hasMethods(client, ['getMasterNode', 'getSentinelNode'])) return 'node-redis-sentinel'
  if (hasMethods(client, ['legacy', 'duplicate'])) return 'node-redis'
  return null
}

function ioredisKind(client) {
  if (typeof client.isCluster !== 'boolean' || typeof client.status !== 'string') return null
  if (!hasMethods(client, ['call', 'getBuffer', 'get', 'set', 'on', 'off'])) return null
  if (client.isCluster) return 'ioredis-cluster'
  const sentinels = client.options && client.options.sentinels
  return Array.isArray(sentinels) && sentinels.length > 0 ? 'ioredis-sentinel' : 'ioredis'
}

// Each library's event for one node of a cluster failing; counted like the client's own errors.
const NODE_ERROR_EVENTS = { 'node-redis-cluster': 'node-error', 'ioredis-cluster': 'node error' }

// node-redis with a type mapping (RESP3, `withTypeMapping`) may answer a Buffer.
function asText(reply) {
  if (reply === null || reply === undefined) return null
  return Buffer.isBuffer(reply) ? reply.toString('latin1') : String(reply)
}

/** The store's view of a Redis client: two commands and its error events. */
class RedisClientAdapter {
  #client
  #kind
  #nodeErrorEvent

  constructor(client, kind) {
    this.#client = client
    this.#kind = kind
    this.#nodeErrorEvent = NODE_ERROR_EVENTS[kind]
  }

  /** Which library and topology: 'node-redis', 'node-redis-sentinel', 'node-redis-cluster', 'ioredis', 'ioredis-sentinel' or 'ioredis-cluster'. */
  get kind() {
    return this.#kind
  }

  /** The value of `key` as text, or null. */
  async get(key) {
    return asText(await this.#client.get(key))
  }

  /** `SET key value EX ttl NX`: whether this call set it. */
  async setNX(key, value, ttlSeconds) {
    const reply = this.#kind.startsWith('ioredis')
      ? await this.#client.set(key, value, 'EX', ttlSeconds, 'NX')
      : await this.#client.set(key, value, { expiration: { type: 'EX', value: ttlSeconds }, condition: 'NX' })
    // 'OK' when set, null when the key exists (a type mapping may turn 'OK' into a Buffer).
    return reply !== null && reply !== undefined
  }

  /** Calls `listener(err)` for each error the client reports, of any of its nodes too. */
  onError(listener) {
    this.#client.on('error', listener)
    if (this.#nodeErrorEvent) this.#client.on(this.#nodeErrorEvent, listener)
  }

  offError(listener) {
    this.#client.off('error', listener)
    if (this.#nodeErrorEvent) this.#client.off(this.#nodeErrorEvent, listener)
  }
}

/**
 * The adapter for a client a user passed as `name`.
 * @throws {TypeError} ERR_INVALID_ARG_TYPE for anything else, naming what is accepted
 */
function wrapRedisClient(client, name = 'options.client') {
  let kind = null
  try {
    if (client !== null && typeof client === 'object') kind = nodeRedisKind(client) ?? ioredisKind(client)
    if (kind === null) throw invalidArgType(name, ACCEPTED, client)
  } catch (err) {
    if (kind === null && err?.code === 'ERR_INVALID_ARG_TYPE') throw err
    // A getter that throws (a Proxy, say) is no client either; say so without touching it again.
    throw invalidArgType(name, ACCEPTED, Object.create(null))
  }
  return new RedisClientAdapter(client, kind)
}

/** A node-redis client the store makes from a URL, and so also connects and closes. */
class OwnRedisClient extends RedisClientAdapter {
  #client

  /** `options`: node-redis createClient options, with the URL in `url`. */
  constructor(options) {
    const { createClient } = loadPeer('redis')
    let client
    try {
      client = createClient(options)
    } catch {
      // Without the cause: node-redis quotes the URL, password and all.
      throw invalidArgValue('options.url', 'was refused by the redis client')
    }
    super(client, 'node-redis')
    this.#client = client
  }

  get isOpen() {
    return this.#client.isOpen
  }

  get isReady() {
    return this.#client.isReady
  }

  connect() {
    return this.#client.connect()
  }

  /** Waits for pending replies, then closes. */
  close() {
    return this.#client.close ? this.#client.close() : this.#client.quit()
  }

  /** Closes now, failing pending commands. */
  destroy() {
    if (this.#client.isOpen) (this.#client.destroy ? this.#client.destroy() : this.#client.disconnect())
  }
}

module.exports = { wrapRedisClient, OwnRedisClient, RedisClientAdapter }
