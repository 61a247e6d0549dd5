'use strict'

// RedisKeyStore over the Redis clients and topologies users run, against real servers: node-redis
// (createClient, createSentinel, createCluster) and ioredis (Redis, Redis with sentinels, Cluster)
// on a plain redis-server, a Sentinel set whose master crashes under traffic, and a 3-master
// Redis Cluster. Stores on different libraries share keys (the values are sealed base64 text),
// and anything that is not one of these clients is refused with a code.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { createClient, createSentinel, createCluster, createClientPool, RESP_TYPES } = require('redis')
const { Redis, Cluster } = require('ioredis')
const { RedisKeyStore, attach } = require('..')
const { tlsServer, listen, close, connect } = require('../test-support/helpers.js')
const { startRedis } = require('../test-support/fleet.js')
const { startSentinel, startCluster, redisCli, until } = require('../test-support/redis-topologies.js')

const wrapSecret = Buffer.alloc(32, 0x3c)
const ROTATION = 2 // seconds: epochs pass quickly
const TIMEOUT_MS = 500
// Not a timing threshold: a bound on "settles at all", far above the timeout, so a hang fails
// here instead of at the test runner's limit.
const SETTLES_WITHIN_MS = 20 * TIMEOUT_MS

/** Seals one ticket with the ring (a fallback key counts once it seals); returns its fallbackKeys. */
async function fallbacksAfterSealing(ring) {
  const server = tlsServer()
  attach(server, ring)
  try {
    await connect(await listen(server), { version: 'TLSv1.2' })
    return ring.stats().fallbackKeys
  } finally {
    await close(server)
  }
}

async function settles(promise) {
  const started = performance.now()
  const value = await promise
  const took = performance.now() - started
  assert.ok(took < SETTLES_WITHIN_MS, `settled after ${Math.round(took)} ms`)
  return value
}

/**
 * epoch start (ms) -> name of the key that encrypts in that epoch, for the current and next keys.
 * (A ring that made a key of its own before the shared one came keeps it as a previous key,
 * with the same start: it still opens the tickets it sealed.)
 */
const namesByEpoch = (ring) => new Map(ring.keys().filter((k) => k.state !== 'previous').map((k) => [k.activatesAt.getTime(), k.name]))

/** When the current key of the later of two rings started to encrypt. */
const currentSince = (...rings) => Math.max(...rings.map((r) => r.keys().find((k) => k.state === 'current').activatesAt.getTime()))

/** The epochs starting at or after `fromMs` whose keys both rings hold, with whether they agree. */
function commonEpochs(a, b, fromMs = currentSince(a, b)) {
  const theirs = namesByEpoch(b)
  return [...namesByEpoch(a)].filter(([at]) => at >= fromMs && theirs.has(at))
    .map(([at, name]) => ({ at, agree: name === theirs.get(at) }))
}

/** A TLS server for each ring; `resumesAcross()` carries a session from each to the other. */
async function serve(rings) {
  const servers = []
  try {
    for (const ring of rings) {
      const server = tlsServer()
      attach(server, ring)
      servers.push({ server, port: await listen(server) })
    }
  } catch (err) {
    await Promise.all(servers.map(({ server }) => close(server)))
    throw err
  }
  const [a, b] = servers.map((s) => s.port)
  return {
    /** Full handshake on one server, then the ticket offered to the other, both ways. */
    async resumesAcross(version = 'TLSv1.3') {
      const results = []
      for (const [from, to] of [[a, b], [b, a]]) {
        const first = await connect(from, { version })
        results.push((await connect(to, { version, session: first.session })).reused)
      }
      return results
    },
    close: () => Promise.all(servers.map(({ server }) => close(server))),
  }
}

/** Connections across two servers until stopped: how many resumed, were full, failed. */
function traffic(pair) {
  const counts = { resumed: 0, full: 0, failed: 0 }
  let running = true
  const done = (async () => {
    while (running) {
      try {
        for (const reused of await pair.resumesAcross()) counts[reused ? 'resumed' : 'full']++
      } catch {
        counts.failed++
      }
    }
  })()
  return { counts, stop: async () => { running = false; await done; return counts } }
}

test('anything but a node-redis or ioredis client is refused with ERR_INVALID_ARG_TYPE', async () => {
  const client = createClient({ url: 'redis://127.0.0.1:1' })
  const pool = createClientPool({ url: 'redis://127.0.0.1:1' })
  const lazy = new Redis({ lazyConnect: true, port: 1 })
  const refused = [
    {},
    new Map(),
    { get: async () => null, set: async () => 'OK', on() {} }, // what the store once accepted
    { get() {}, set() {}, on() {}, off() {}, isCluster: false, status: 'ready' },
    client.legacy(), // node-redis' callback interface
    pool,
    Object.create(null),
    'redis://127.0.0.1:6379',
    () => client,
    Redis,
    lazy.pipeline(), // batches of commands, not clients
    lazy.multi(),
    client.multi(),
    new Proxy({}, { get() { throw new Error('a hostile getter') } }),
  ]
  for (const value of refused) {
    assert.throws(() => new RedisKeyStore({ client: value, wrapSecret }), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARG_TYPE')
      assert.ok(err instanceof TypeError)
      assert.match(err.message, /node-redis client .*createClient\(\), createSentinel\(\) or createCluster\(\).* or an ioredis client/)
      return true
    })
  }
  // Accepted without connecting anything: each library's client objects, not yet connected.
  const accepted = [
    client,
    client.withTypeMapping({}),
    createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 1 }] }),
    createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:1' }] }),
    new Redis({ lazyConnect: true, port: 1 }),
    new Redis({ lazyConnect: true, sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'mymaster' }),
    new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true }),
  ]
  // A closed store leaves a client's listeners as they were (the client is the user's).
  const events = ['error', 'node-error', 'node error']
  for (const value of accepted) {
    const listeners = events.map((e) => value.listenerCount(e))
    const store = new RedisKeyStore({ client: value, wrapSecret })
    assert.ok(value.listenerCount('error') > listeners[0])
    await store.close()
    assert.deepEqual(events.map((e) => value.listenerCount(e)), listeners)
  }
  for (const io of [lazy, ...accepted.slice(4)]) io.disconnect()
})

describe('node-redis and ioredis clients on a plain redis-server', () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(async () => { await redis.stop() })

  test('shares keys with node-redis, both ways, and TLS servers on either resume each other', async () => {
    const io = new Redis({ port: redis.port, host: '127.0.0.1' })
    const node = await createClient({ url: redis.url }).connect()
    const stores = []
    const rings = []
    let pair
    try {
      // Each library writes first once (wins the SET NX), and reads the other's once.
      for (const [first, second, prefix] of [[io, node, 'plain-a:'], [node, io, 'plain-b:']]) {
        const a = new RedisKeyStore({ client: first, wrapSecret, prefix })
        const b = new RedisKeyStore({ client: second, wrapSecret, prefix })
        stores.push(a, b)
        rings.push(await a.ring({ rotationInterval: 60 }), await b.ring({ rotationInterval: 60 }))
        assert.deepEqual([a.stats().won + a.stats().writtenBack, b.stats().won + b.stats().writtenBack], [3, 0],
        `${prefix} the first store set the keys of this epoch and the next two`)
        assert.deepEqual([a.stats().agreed, b.stats().agreed], [2, 3], 'the first store already held its own key for this epoch')
        const [ra, rb] = rings.slice(-2)
        const common = commonEpochs(ra, rb)
        assert.equal(common.length, 3)
        assert.ok(common.every((e) => e.agree), `${prefix} the same key for the same epoch`)
      }
      // node-redis told to answer Buffers (a type mapping) reads the same keys.
      const mapped = new RedisKeyStore({ wrapSecret, prefix: 'plain-a:',
        client: node.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer }) })
      stores.push(mapped)
      rings.push(await mapped.ring({ rotationInterval: 60 }))
      assert.deepEqual([mapped.stats().agreed, mapped.stats().won], [3, 0])
      const withBuffers = commonEpochs(rings[0], rings.at(-1))
      assert.equal(withBuffers.length, 3)
      assert.ok(withBuffers.every((e) => e.agree))
      pair = await serve(rings.slice(0, 2))
      assert.deepEqual(await pair.resumesAcross('TLSv1.3'), [true, true])
      assert.deepEqual(await pair.resumesAcross('TLSv1.2'), [true, true])
      // The values are text that both libraries read the same way.
      const stored = await io.keys('plain-*')
      assert.equal(stored.length, 6)
      for (const key of stored) assert.equal(await io.get(key), await node.get(key))
    } finally {
      await pair?.close()
      await Promise.all(stores.map((s) => s.close()))
      rings.forEach((r) => r.destroy())
      io.disconnect()
      node.destroy()
    }
  })

  test("a user's client closed under the store: its rings go on with local keys, and it counts", async () => {
    const io = new Redis({ port: redis.port, host: '127.0.0.1' })
    const node = await createClient({ url: redis.url }).connect()
    const stores = [io, node].map((client) => new RedisKeyStore({ client, wrapSecret, prefix: 'closed:', timeout: TIMEOUT_MS }))
    const rings = []
    try {
      for (const store of stores) rings.push(await store.ring({ rotationInterval: 60 }))
      io.disconnect()
      node.destroy()
      for (const store of stores) {
        const ring = await settles(store.ring({ rotationInterval: 60 }))
        rings.push(ring)
        assert.ok(ring.keys().some((k) => k.state === 'current'), 'the ring encrypts with a local key')
        assert.ok(await fallbacksAfterSealing(ring) >= 1)
        assert.ok(store.stats().redisErrors >= 1)
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()))
      rings.forEach((r) => r.destroy())
      io.disconnect()
      if (node.isOpen) node.destroy()
    }
  })

  test('a stopped Redis: calls through its offline queue settle within the timeout, and count', async () => {
    const own = await startRedis()
    const io = new Redis({ port: own.port, host: '127.0.0.1' })
    io.on('error', () => {})
    const store = new RedisKeyStore({ client: io, wrapSecret, timeout: TIMEOUT_MS })
    let ring
    try {
      const warm = await store.ring({ rotationInterval: 60 })
      assert.equal(store.stats().redisErrors, 0)
      warm.destroy()
      own.signal('SIGSTOP')
      ring = await settles(store.ring({ rotationInterval: 60 }))
      assert.ok(ring.keys().some((k) => k.state === 'current'), 'the ring encrypts with a local key')
      assert.ok(await fallbacksAfterSealing(ring) >= 1)
      assert.ok(store.stats().redisErrors >= 1, 'the timeout counts as a Redis error')
      // And killed: the connection drops and ioredis queues while it reconnects.
      own.signal('SIGCONT')
      await own.stop('SIGKILL')
      const errors = store.stats().redisErrors
      ring.destroy()
      ring = await settles(store.ring({ rotationInterval: 60 }))
      assert.ok(store.stats().redisErrors > errors)
      await settles(store.close())
    } finally {
      ring?.destroy()
      own.signal('SIGCONT')
      io.disconnect()
      await own.stop()
    }
  })
})

test('Sentinel: node-redis and ioredis stores agree, keep serving through a master crash, and agree again', async (t) => {
  const sentinel = await startSentinel()
  const clients = []
  const stores = []
  const rings = []
  const pairs = []
  const loads = []
  try {
    const nodeClient = async () => {
      const client = createSentinel({ name: sentinel.name, sentinelRootNodes: sentinel.sentinels })
      client.on('error', () => {}) // the store counts them too
      clients.push({ close: () => client.destroy() })
      return client.connect()
    }
    // One with the failover detector README recommends (it follows a planned switchover at
    // once), one without: a crash moves both.
    let ioClients = 0
    const ioClient = () => {
      const client = new Redis({ sentinels: sentinel.sentinels, name: sentinel.name, failoverDetector: ioClients++ === 0 })
      client.on('error', () => {})
      clients.push({ close: () => client.disconnect() })
      return client
    }
    const libraries = [['node-redis', 'sentinel-node:', nodeClient], ['ioredis', 'sentinel-io:', ioClient]]
    for (const [library, prefix, make] of libraries) {
      const pairStores = [new RedisKeyStore({ client: await make(), wrapSecret, prefix, timeout: TIMEOUT_MS }),
        new RedisKeyStore({ client: await make(), wrapSecret, prefix, timeout: TIMEOUT_MS })]
      stores.push(...pairStores)
      const pairRings = [await pairStores[0].ring({ rotationInterval: ROTATION, ticketLifetime: 10 }),
        await pairStores[1].ring({ rotationInterval: ROTATION, ticketLifetime: 10 })]
      rings.push(pairRings)
      const pair = await serve(pairRings)
      pairs.push(pair)
      assert.deepEqual(await pair.resumesAcross(), [true, true], `${library}: resumption across the two servers`)
      assert.ok(commonEpochs(...pairRings).every((e) => e.agree), `${library}: one key per epoch`)
    }

    for (const pair of pairs) loads.push(traffic(pair))
    const newMaster = await sentinel.failover()
    assert.equal(newMaster, sentinel.replicaPort)
    const failedOver = Date.now()
    // Keys of epochs that start three intervals later were agreed through the new master.
    const from = failedOver + 3 * ROTATION * 1000
    for (const [i, [library]] of libraries.entries()) {
      const agreed = await until(`${library} rings to hold an epoch agreed after the failover`, async () => {
        const common = commonEpochs(...rings[i], from)
        return common.length > 0 ? common : null
      }, 30 * ROTATION * 1000)
      assert.ok(agreed.every((e) => e.agree), `${library}: the same key for the same epoch in both stores`)
    }
    const counts = await Promise.all(loads.map((l) => l.stop()))
    loads.length = 0
    t.diagnostic(`connections during the failover: ${libraries.map(([library], i) => `${library} ${JSON.stringify(counts[i])}`).join(', ')}`)
    for (const [i, [library, prefix]] of libraries.entries()) {
      assert.equal(counts[i].failed, 0, `${library}: no handshake failed during the failover`)
      assert.ok(counts[i].resumed > 0, `${library}: resumption went on during the failover`)
      assert.deepEqual(await pairs[i].resumesAcross(), [true, true], `${library}: resumption across the two servers after the failover`)
      assert.ok(Number(await redisCli(newMaster, ['eval', `return #redis.call('keys', '${prefix}*')`, '0'])) > 0,
        `${library}: the new master holds the keys`)
    }
  } finally {
    await Promise.all(loads.map((l) => l.stop()))
    await Promise.all(pairs.map((p) => p.close()))
    await Promise.all(stores.map((s) => s.close()))
    rings.flat().forEach((r) => r.destroy())
    clients.forEach((c) => c.close())
    await sentinel.stop()
  }
})

test('Cluster of 3 masters: node-redis createCluster and ioredis Cluster share the same keys', async () => {
  const cluster = await startCluster(3)
  const node = createCluster({ rootNodes: cluster.nodes.map((socket) => ({ socket })) })
  node.on('error', () => {})
  const io = new Cluster(cluster.nodes)
  io.on('error', () => {})
  const stores = []
  const rings = []
  let pair
  try {
    await node.connect()
    for (const [first, second, prefix] of [[node, io, 'cluster-a:'], [io, node, 'cluster-b:']]) {
      const a = new RedisKeyStore({ client: first, wrapSecret, prefix })
      const b = new RedisKeyStore({ client: second, wrapSecret, prefix })
      stores.push(a, b)
      rings.push(await a.ring({ rotationInterval: 60 }), await b.ring({ rotationInterval: 60 }))
      assert.deepEqual([a.stats().won + a.stats().writtenBack, b.stats().won + b.stats().writtenBack], [3, 0],
        `${prefix} the first store set the keys of this epoch and the next two`)
      assert.deepEqual([a.stats().agreed, b.stats().agreed, a.stats().redisErrors, b.stats().redisErrors], [2, 3, 0, 0])
      const common = commonEpochs(...rings.slice(-2))
      assert.equal(common.length, 3)
      assert.ok(common.every((e) => e.agree), `${prefix} the same key for the same epoch`)
    }
    pair = await serve(rings.slice(2))
    assert.deepEqual(await pair.resumesAcross('TLSv1.3'), [true, true])
    assert.deepEqual(await pair.resumesAcross('TLSv1.2'), [true, true])
    // Each key lives on the master of its hash slot, wherever that is: the clients followed the
    // cluster's routing (a key on the wrong master would have been refused with MOVED).
    const perMaster = await Promise.all(cluster.ports.map(async (port) => Number(await redisCli(port, ['dbsize']))))
    assert.equal(perMaster.reduce((a, b) => a + b, 0), 6)
  } finally {
    await pair?.close()
    await Promise.all(stores.map((s) => s.close()))
    rings.forEach((r) => r.destroy())
    io.disconnect()
    node.destroy()
    await cluster.stop()
  }
})
