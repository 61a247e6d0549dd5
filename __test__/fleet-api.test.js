'use strict'

// The three ways a fleet shares a ring, one by one: a secret, Redis, node:cluster.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { fork } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')
const util = require('node:util')
const { createClient } = require('redis')
const { TicketKeyRing, RedisKeyStore, attach, generateTicketKeys } = require('..')
const { tlsServer, listen, close, connect } = require('./helpers.js')
const { startRedis, freePort } = require('./fleet-helpers.js')

const SECRET = Buffer.alloc(32, 0x42)
const currentName = (ring) => ring.keys().find((k) => k.state === 'current').name

describe('secret-derived rings', () => {
  test('every ring with the secret has the same keys and session id context', () => {
    const a = new TicketKeyRing({ secret: SECRET, rotationInterval: 60, ticketLifetime: 300 })
    const b = new TicketKeyRing({ secret: new Uint8Array(SECRET), rotationInterval: 60, ticketLifetime: 300 })
    const other = new TicketKeyRing({ secret: Buffer.alloc(32, 0x43), rotationInterval: 60, ticketLifetime: 300 })
    try {
      assert.deepEqual(a.keys(), b.keys())
      assert.deepEqual(a.getTicketKeys(), b.getTicketKeys())
      assert.equal(a.sessionIdContext, b.sessionIdContext)
      assert.match(a.sessionIdContext, /^[0-9a-f]{32}$/)
      assert.notEqual(currentName(a), currentName(other))
      assert.notEqual(a.sessionIdContext, other.sessionIdContext)
      assert.notEqual(a.sessionIdContext, new TicketKeyRing().sessionIdContext)
      // Tickets of recent epochs stay resumable after a restart: their keys are there too.
      assert.ok(a.keys().some((k) => k.state === 'previous'))
    } finally {
      for (const r of [a, b, other]) r.destroy()
    }
  })

  test('servers on separate rings from one secret resume each other, in both modes', async () => {
    for (const [mode, cipher] of [['native', 'aes-256-cbc'], ['callback', 'aes-128-cbc']]) {
      const rings = [0, 1].map(() => new TicketKeyRing({ secret: SECRET, cipher }))
      const servers = [tlsServer(), tlsServer()]
      try {
        servers.forEach((s, i) => attach(s, rings[i], { mode }))
        const [p0, p1] = [await listen(servers[0]), await listen(servers[1])]
        for (const version of ['TLSv1.2', 'TLSv1.3']) {
          const first = await connect(p0, { version })
          const there = await connect(p1, { version, session: first.session })
          assert.equal(there.reused, true, `${mode} ${version}`)
        }
      } finally {
        await Promise.all(servers.map(close))
        rings.forEach((r) => r.destroy())
      }
    }
  })

  test('bad secrets are refused, and the secret never shows', () => {
    assert.throws(() => new TicketKeyRing({ secret: Buffer.alloc(31, 1) }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => new TicketKeyRing({ secret: 'a string secret of more than 32 characters' }),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => new TicketKeyRing({ secret: SECRET, keys: generateTicketKeys() }), { code: 'ERR_INVALID_ARG_VALUE' })
    const ring = new TicketKeyRing({ secret: SECRET })
    const hex = SECRET.toString('hex').slice(0, 16)
    for (const text of [util.inspect(ring, { showHidden: true }), JSON.stringify(ring), JSON.stringify(ring.keys())]) {
      assert.ok(!text.includes(hex), text)
    }
    ring.destroy()
  })
})

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
      assert.equal(new Set(rings.map((r) => r.keys().find((k) => k.state === 'next')?.name)).size, 1, 'one next key')
      const totals = stores.map((s) => s.stats())
      assert.equal(totals.reduce((n, s) => n + s.won, 0), 2, 'one SET NX won per epoch (current and next)')
      // What Redis holds: sealed values, with no 8-byte window of any key in them.
      const client = createClient({ url: redis.url })
      await client.connect()
      try {
        const keys = await client.keys('agree:*')
        assert.equal(keys.length, 2)
        const stored = await Promise.all(keys.map((k) => client.get(k)))
        const material = Buffer.concat(rings.map((r) => r.getTicketKeys()))
        const secrets = []
        for (let i = 16; i + 8 <= 80; i += 8) secrets.push(material.subarray(i, i + 8).toString('base64').slice(0, 8))
        for (const value of stored) {
          const raw = Buffer.from(value, 'base64')
          for (let i = 16; i + 8 <= 80; i += 8) assert.ok(!raw.includes(material.subarray(i, i + 8)))
        }
        const ttls = await Promise.all(keys.map((k) => client.ttl(k)))
        for (const ttl of ttls) assert.ok(ttl > 300 && ttl <= 60 * 2 + 300 + 60, `ttl ${ttl}`)
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
      assert.equal(theirs.stats().unopenable, 2)
      assert.equal(b.stats().fallbackKeys, 1, 'it rotates on a local key instead')
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
      assert.equal(ring.stats().fallbackKeys, 1)
      const server = tlsServer()
      attach(server, ring)
      try {
        const port = await listen(server)
        const first = await connect(port)
        assert.equal((await connect(port, { session: first.session })).reused, true)
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
  })
})

describe('TicketKeyRing.forCluster', () => {
  test('workers, also one started later, hold the primary\'s keys and rotate with it', async () => {
    const primary = fork(path.join(__dirname, 'fixtures', 'cluster-primary.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    try {
      const [report] = await Promise.race([
        once(primary, 'message'),
        new Promise((resolve, reject) => setTimeout(() => reject(new Error('the cluster sent no report in 30 s')), 30_000).unref()),
      ])
      assert.equal(report.error, undefined, report.error)
      const { early, late } = report
      // Each snapshot: the primary's current key and every worker's, taken at one moment.
      for (const snapshot of [...early, ...late]) {
        assert.equal(new Set(snapshot).size, 1, JSON.stringify(snapshot))
      }
      assert.notEqual(early[0][0], late[late.length - 1][0], 'the keys rotated in between')
    } finally {
      primary.kill()
      await once(primary, 'exit')
    }
  })

  test('outside a cluster worker it needs the primary', async () => {
    const ring = await TicketKeyRing.forCluster({ rotationInterval: 60 })
    assert.equal(ring.rotationInterval, 60, 'in a primary (or a plain process) it is an ordinary ring')
    ring.destroy()
    await assert.rejects(TicketKeyRing.forCluster('x'), { code: 'ERR_INVALID_ARG_TYPE' })
  })
})
