'use strict'

// RedisKeyStore with a real redis-server: processes agree on each epoch's key, and Redis going
// away costs no handshake.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { createClient } = require('redis')
const diagnosticsChannel = require('node:diagnostics_channel')
const { RedisKeyStore, attach, generateTicketKeys } = require('..')
const binding = require('../binding.js')
const { tlsServer, listen, close, connect } = require('../test-support/helpers.js')
const { startRedis, freePort } = require('../test-support/fleet.js')

const currentName = (ring) => ring.keys().find((k) => k.state === 'current').name

describe('RedisKeyStore', () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(async () => { await redis.stop() })

  const wrapSecret = Buffer.alloc(32, 0x11)

  test('stores agree on one random key per epoch, and Redis holds none of its bytes', async () => {
    const stores = [0, 1, 2].map(() => new RedisKeyStore({ url: redis.url, wrapSecret, prefix: 'agree:' }))
    const rings = []
    try {
      for (const store of stores) rings.push(await store.ring({ rotationInterval: 60, ticketLifetime: 300 }))
      const names = rings.map(currentName)
      assert.equal(new Set(names).size, 1, 'one current key')
      const nextKeys = (r) => r.keys().filter((k) => k.state === 'next').map((k) => k.name).join()
      assert.equal(new Set(rings.map(nextKeys)).size, 1, 'the same next keys')
      // The keys of the next two epochs are agreed: the one after next a full interval ahead.
      const epoch = Math.floor(Date.now() / 60_000)
      assert.deepEqual(rings[0].keys().filter((k) => k.state === 'next').map((k) => k.activatesAt.getTime()).sort(),
        [(epoch + 1) * 60_000, (epoch + 2) * 60_000])
      const totals = stores.map((s) => s.stats())
      // One SET NX won per epoch: the first ring's own key for this epoch (written back), then
      // two new ones.
      assert.equal(totals.reduce((n, s) => n + s.won + s.writtenBack, 0), 3)
      // What Redis holds: sealed values, with no 8-byte window of any key in them.
      const client = createClient({ url: redis.url })
      await client.connect()
      try {
        const keys = await client.keys('agree:*')
        assert.equal(keys.length, 3)
        const stored = await Promise.all(keys.map((k) => client.get(k)))
        const material = Buffer.concat(rings.map((r) => r.getTicketKeys()))
        const secrets = []
        for (let i = 16; i + 8 <= 80; i += 8) secrets.push(material.subarray(i, i + 8).toString('base64').slice(0, 8))
        for (const value of stored) {
          const raw = Buffer.from(value, 'base64')
          for (let i = 16; i + 8 <= 80; i += 8) assert.ok(!raw.includes(material.subarray(i, i + 8)))
        }
        const ttls = await Promise.all(keys.map((k) => client.ttl(k)))
        for (const ttl of ttls) assert.ok(ttl > 300 && ttl <= 60 * 3 + 300 + 60, `ttl ${ttl}`)
      } finally {
        await client.quit()
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()))
      rings.forEach((r) => r.destroy())
    }
  })

  test('a value sealed under another wrapping secret is never used', async () => {
    const ours = new RedisKeyStore({ url: redis.url, wrapSecret, prefix: 'wrap:' })
    const theirs = new RedisKeyStore({ url: redis.url, wrapSecret: Buffer.alloc(32, 0x22), prefix: 'wrap:' })
    try {
      const a = await ours.ring({ rotationInterval: 60 })
      const b = await theirs.ring({ rotationInterval: 60 })
      assert.notEqual(currentName(a), currentName(b))
      assert.equal(theirs.stats().unopenable, 3)
      // It encrypts with a key of its own instead (a fallback once it seals a ticket).
      assert.equal(b.stats().fallbackKeys, 0)
      assert.ok(!a.keys().some((k) => k.name === currentName(b)), 'derived from its own wrapping secret')
    } finally {
      await Promise.all([ours.close(), theirs.close()])
    }
  })

  test('with Redis unreachable, ring() still resolves and the ring works on local keys', async () => {
    const store = new RedisKeyStore({ url: `redis://127.0.0.1:${await freePort()}`, wrapSecret })
    try {
      const ring = await store.ring({ rotationInterval: 60 })
      assert.equal(ring.keys().filter((k) => k.state === 'current').length, 1)
      assert.ok(store.stats().redisErrors > 0)
      assert.equal(ring.stats().fallbackKeys, 0, 'counted once it seals a ticket')
      const server = tlsServer()
      attach(server, ring)
      try {
        const port = await listen(server)
        const first = await connect(port)
        assert.equal((await connect(port, { session: first.session })).reused, true)
        // One fallback key, or two if an epoch boundary fell between the handshakes.
        assert.ok(ring.stats().fallbackKeys >= 1)
      } finally {
        await close(server)
      }
    } finally {
      await store.close()
    }
  })

  test('bad options give Node-style errors', async () => {
    assert.throws(() => new RedisKeyStore(), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => new RedisKeyStore({ wrapSecret: Buffer.alloc(16, 1) }), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => new RedisKeyStore({ wrapSecret, prefix: 7 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => new RedisKeyStore({ wrapSecret, url: 7 }), { code: 'ERR_INVALID_ARG_TYPE' })
    const store = new RedisKeyStore({ url: redis.url, wrapSecret })
    await assert.rejects(store.ring({ keys: generateTicketKeys() }), { code: 'ERR_INVALID_ARG_VALUE' })
    await assert.rejects(store.ring({ rotationInterval: 0 }), { code: 'ERR_OUT_OF_RANGE' })
    await store.close()
    await assert.rejects(store.ring(), { code: 'ERR_INVALID_STATE' })
    for (const fallback of ['Derived', 'random', '', null, 1, true, {}]) {
      assert.throws(() => new RedisKeyStore({ url: redis.url, wrapSecret, fallback }), { code: 'ERR_INVALID_ARG_VALUE' })
    }
    assert.equal(new RedisKeyStore({ url: redis.url, wrapSecret }).fallback, 'derived')
    assert.equal(new RedisKeyStore({ url: redis.url, wrapSecret, fallback: 'local' }).fallback, 'local')
  })

  test('a healthy start counts no fallback, also once the ring seals tickets, and publishes none', async () => {
    const fallbacks = []
    const onFallback = (m) => fallbacks.push(m)
    diagnosticsChannel.subscribe('tls-ticket-keys:fallback', onFallback)
    const store = new RedisKeyStore({ url: redis.url, wrapSecret, prefix: 'healthy:' })
    const server = tlsServer()
    try {
      const ring = await store.ring({ rotationInterval: 60 })
      assert.equal(store.stats().redisErrors, 0)
      assert.equal(ring.stats().fallbackKeys, 0)
      attach(server, ring)
      const port = await listen(server)
      const first = await connect(port)
      assert.equal((await connect(port, { session: first.session })).reused, true)
      assert.ok(ring.stats().issued >= 1)
      assert.equal(ring.stats().fallbackKeys, 0)
      await new Promise((resolve) => setTimeout(resolve, 700)) // past a retry round of the feed
      assert.deepEqual(fallbacks, [])
    } finally {
      diagnosticsChannel.unsubscribe('tls-ticket-keys:fallback', onFallback)
      await close(server)
      await store.close()
    }
  })

  test('two fleets sharing a prefix and a wrapping secret but not the interval do not fight, and never open each other\'s values', async () => {
    const prefix = 'interval:'
    const fleet = (rotationInterval) => Promise.all([0, 1].map(async () => {
      const store = new RedisKeyStore({ url: redis.url, wrapSecret, prefix, timeout: 500 })
      return { store, ring: await store.ring({ rotationInterval, ticketLifetime: 4 * rotationInterval }) }
    }))
    const [a, b] = [await fleet(1), await fleet(2)]
    const members = [...a, ...b]
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      // A value sealed for epoch e + 3 of a fleet rotating every 2 s, copied to the key the
      // 1 s fleet agrees epoch e + 3 under (its Redis key names the interval; the seal did not).
      const { cipher } = a[0].ring
      const epoch = Math.floor(Date.now() / 1000) + 3
      const copied = new binding.NativeWrapper(wrapSecret).sealFresh(cipher, prefix, epoch, 2)
      await client.set(`${prefix}${cipher}:1:${epoch}`, copied.toString('base64'), { EX: 30 })
      // Through that epoch and a boundary more.
      await new Promise((resolve) => setTimeout(resolve, (epoch + 1.5) * 1000 - Date.now()))
      assert.ok(a.every((m) => m.store.stats().unopenable >= 1), 'the copy was refused')
      assert.equal(new Set(a.map((m) => currentName(m.ring))).size, 1, 'the 1 s fleet agrees')
      assert.equal(new Set(b.map((m) => currentName(m.ring))).size, 1, 'the 2 s fleet agrees')
      assert.notEqual(currentName(a[0].ring), currentName(b[0].ring))
      // Each fleet only ever touched its own values: no fight over them.
      assert.ok(b.every((m) => m.store.stats().unopenable === 0))
      assert.ok(members.every((m) => m.store.stats().redisErrors === 0))
    } finally {
      await client.quit()
      await Promise.all(members.map((m) => m.store.close()))
      members.forEach((m) => m.ring.destroy())
    }
  })
})
