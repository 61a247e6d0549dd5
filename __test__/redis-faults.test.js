'use strict'

// A fleet of RedisKeyStore rings through Redis faults (a real redis-server, stopped, emptied):
// the fleet keeps one key per epoch, counts what went wrong, and agrees again as soon as
// Redis answers. Short intervals, so that epochs pass during the test; no timing thresholds,
// only waits for boundaries.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { setTimeout: sleep } = require('node:timers/promises')
const { createClient } = require('redis')
const diagnosticsChannel = require('node:diagnostics_channel')
const { RedisKeyStore, attach } = require('..')
const { startRedis } = require('../test-support/fleet.js')
const { tlsServer, listen, connect, close } = require('../test-support/helpers.js')

const wrapSecret = Buffer.alloc(32, 0x13)
const INTERVAL = 1
const SCHEDULE = { rotationInterval: INTERVAL, ticketLifetime: 4 }
const MEMBERS = 3

/** Sleeps until `fraction` of the way into an epoch, at least `epochs` boundaries from now. */
async function untilInto(fraction, epochs = 1) {
  const ms = INTERVAL * 1000
  const now = Date.now()
  const target = (Math.floor(now / ms) + epochs) * ms + fraction * ms
  await sleep(target - now)
}

const currentName = (ring) => ring.keys().find((k) => k.state === 'current')?.name
const fallbacks = (rings) => rings.reduce((n, r) => n + r.stats().fallbackKeys, 0)

describe('a fleet through Redis faults', () => {
  let redis, admin
  let prefixes = 0

  before(async () => {
    redis = await startRedis()
    admin = createClient({ url: redis.url })
    await admin.connect()
  })
  after(async () => {
    await admin?.quit()
    await redis?.stop()
  })

  async function fleet(fallback) {
    const prefix = `faults-${++prefixes}:`
    const stores = Array.from({ length: MEMBERS }, () => new RedisKeyStore({ url: redis.url, wrapSecret, prefix, timeout: 300, fallback }))
    const rings = []
    for (const [i, store] of stores.entries()) rings.push(await store.ring({ ...SCHEDULE, name: `member-${i}` }))
    return {
      stores,
      rings,
      agreed: () => new Set(rings.map(currentName)).size === 1,
      async close() {
        await Promise.all(stores.map((s) => s.close()))
        rings.forEach((r) => r.destroy())
      },
    }
  }

  test('the keys of the next two epochs are held before they are due', async () => {
    const f = await fleet()
    try {
      await untilInto(0.5)
      const epoch = Math.floor(Date.now() / 1000 / INTERVAL)
      for (const ring of f.rings) {
        const next = ring.keys().filter((k) => k.state === 'next').map((k) => k.activatesAt.getTime() / 1000).sort()
        assert.deepEqual(next, [(epoch + 1) * INTERVAL, (epoch + 2) * INTERVAL])
      }
      assert.equal(f.agreed(), true)
      // Across the next boundary no ring makes a key of its own: the next one was there.
      const before = fallbacks(f.rings)
      await untilInto(0.5)
      assert.equal(fallbacks(f.rings), before)
      assert.equal(f.agreed(), true)
    } finally {
      await f.close()
    }
  })

  test('an emptied Redis gets the running keys back: no ring changes key mid-epoch', async () => {
    const f = await fleet()
    try {
      await untilInto(0.4)
      const epoch = Math.floor(Date.now() / 1000 / INTERVAL)
      const before = f.rings.map(currentName)
      const fallbacksBefore = fallbacks(f.rings)
      await admin.flushAll()
      // Through the rest of this epoch and the next two, each epoch has one key everywhere.
      const seen = new Map()
      while (Date.now() < (epoch + 3) * INTERVAL * 1000 - 100) {
        const e = Math.floor(Date.now() / 1000 / INTERVAL)
        for (const ring of f.rings) {
          const names = seen.get(e) ?? new Set()
          names.add(currentName(ring))
          seen.set(e, names)
        }
        await sleep(50)
      }
      assert.deepEqual([...seen.get(epoch)], [before[0]], 'the running key stayed')
      for (const [e, names] of seen) assert.equal(names.size, 1, `epoch ${e} had ${names.size} keys`)
      assert.equal(fallbacks(f.rings), fallbacksBefore)
      assert.ok(f.stores.reduce((n, s) => n + s.stats().writtenBack, 0) >= 2, 'the held keys went back to Redis')
    } finally {
      await f.close()
    }
  })

  test('a short outage in the middle of an epoch costs no boundary', async () => {
    const f = await fleet()
    try {
      await untilInto(0.5)
      const fallbacksBefore = fallbacks(f.rings)
      redis.signal('SIGSTOP')
      await sleep(300)
      redis.signal('SIGCONT')
      await untilInto(0.5, 2)
      assert.equal(fallbacks(f.rings), fallbacksBefore)
      assert.equal(f.agreed(), true)
    } finally {
      redis.signal('SIGCONT')
      await f.close()
    }
  })

  test('a Redis that stops for several epochs: errors count, the fleet agrees on derived keys meanwhile, and on shared ones once it answers', async () => {
    const f = await fleet()
    try {
      await untilInto(0.5)
      const held = new Set(f.rings.flatMap((r) => r.keys().map((k) => k.name)))
      redis.signal('SIGSTOP')
      // Longer than the two epochs held ahead: every ring derives the same fallback key.
      await sleep(3200)
      assert.equal(f.agreed(), true, `current keys: ${f.rings.map(currentName).join(' ')}`)
      assert.equal(held.has(currentName(f.rings[0])), false, 'a key none of them held before the outage')
      await sleep(300)
      redis.signal('SIGCONT')
      for (const store of f.stores) assert.ok(store.stats().redisErrors >= 1, 'the stall counted as Redis errors')
      // No ticket was sealed here (no server): a fallback counts only once it seals one.
      assert.equal(fallbacks(f.rings), 0)
      // A round is tried again within half a second of failing: the next epoch is agreed.
      await untilInto(0.5, 2)
      assert.equal(f.agreed(), true, `current keys: ${f.rings.map(currentName).join(' ')}`)
    } finally {
      redis.signal('SIGCONT')
      await f.close()
    }
  })

  for (const kind of ['derived', 'local']) {
    test(`every fallback counted is published, as ${kind}, once it sealed a ticket`, async () => {
      const f = await fleet(kind)
      const messages = []
      const onFallback = (m) => messages.push(m)
      diagnosticsChannel.subscribe('tls-ticket-keys:fallback', onFallback)
      const servers = f.rings.map((ring) => {
        const server = tlsServer()
        attach(server, ring)
        return server
      })
      try {
        const ports = await Promise.all(servers.map(listen))
        await untilInto(0.5)
        redis.signal('SIGSTOP')
        // Handshakes on every member through the outage and past the two epochs held ahead.
        const until = Date.now() + 3500
        while (Date.now() < until) {
          await Promise.all(ports.map((port) => connect(port)))
          await sleep(100)
        }
        redis.signal('SIGCONT')
        await sleep(1000) // a round of every feed, which publishes what was counted
        const counted = f.rings.map((r) => r.stats().fallbackKeys)
        assert.ok(counted.every((n) => n >= 1), `fallbacks: ${counted}`)
        for (const ring of f.rings) {
          const own = messages.filter((m) => m.ring === ring.name)
          assert.deepEqual(own.map((m) => m.fallbackKeys), Array.from({ length: ring.stats().fallbackKeys }, (_, i) => i + 1))
          assert.ok(own.every((m) => m.kind === kind && /^[0-9a-f]{32}$/.test(m.key)))
        }
        // Derived: every member sealed with the same keys; local: each with its own.
        const keysOf = (ring) => messages.filter((m) => m.ring === ring.name).map((m) => m.key).join()
        assert.equal(new Set(f.rings.map(keysOf)).size, kind === 'derived' ? 1 : MEMBERS)
      } finally {
        redis.signal('SIGCONT')
        diagnosticsChannel.unsubscribe('tls-ticket-keys:fallback', onFallback)
        await Promise.all(servers.map(close))
        await f.close()
      }
    })
  }
})
