'use strict'

// Options: a misspelt name is an error, never a silent default, and a schedule whose keys a
// ring cannot hold is refused when the ring is made, naming the bound.

const test = require('node:test')
const assert = require('node:assert/strict')
const { TicketKeyRing, RedisKeyStore, attach, SessionCache } = require('..')
const { tlsServer, thrown } = require('../test-support/helpers.js')

test('unknown option names are refused with ERR_INVALID_ARG_VALUE, naming the option', async () => {
  const secret = Buffer.alloc(32, 1)
  const cases = {
    'new TicketKeyRing': () => new TicketKeyRing({ secrte: secret }),
    'TicketKeyRing.fromNginx': () => TicketKeyRing.fromNginx(Buffer.alloc(48, 1), { rotationIntervall: 60 }),
    'new RedisKeyStore': () => new RedisKeyStore({ wrapSecret: secret, prefx: 'x:' }),
    attach: () => attach(tlsServer(), new TicketKeyRing(), { mdoe: 'native' }),
    'new SessionCache': () => new SessionCache({ maxOrigin: 10 }),
  }
  for (const [where, fn] of Object.entries(cases)) {
    const err = thrown(fn)
    assert.equal(err.code, 'ERR_INVALID_ARG_VALUE', where)
    assert.match(err.message, /unknown option '\w+'/, where)
  }
  await assert.rejects(TicketKeyRing.forCluster({ secrte: secret }), { code: 'ERR_INVALID_ARG_VALUE' })
  const store = new RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret: secret, timeout: 200 })
  await assert.rejects(store.ring({ ticketLifetme: 60 }), { code: 'ERR_INVALID_ARG_VALUE' })
  await store.close()
})

test('a schedule that needs more keys than a ring holds is refused with ERR_OUT_OF_RANGE', () => {
  // Five-minute keys and seven-day tickets: 2,018 keys at once, of at most 240.
  const err = thrown(() => new TicketKeyRing({ rotationInterval: 300, ticketLifetime: 604800 }))
  assert.equal(err.code, 'ERR_OUT_OF_RANGE')
  assert.equal(err.name, 'RangeError')
  assert.match(err.message, /<= 71400 .*238 intervals/)
  assert.ok(new TicketKeyRing({ rotationInterval: 300, ticketLifetime: 71400 }))
  assert.ok(new TicketKeyRing({ rotationInterval: 2542, ticketLifetime: 604800 }))
  // Without a lifetime, a short interval gets the longest it holds, up to two hours.
  assert.equal(new TicketKeyRing({ rotationInterval: 2 }).ticketLifetime, 476)
  assert.equal(new TicketKeyRing({ rotationInterval: 60 }).ticketLifetime, 7200)
})

test('rotate() past the bound is refused, and drops no key whose tickets live', () => {
  const ring = new TicketKeyRing({ rotationInterval: 3600, ticketLifetime: 7200 })
  const names = []
  let err = null
  for (let i = 0; i < 300 && err === null; i++) {
    names.push(ring.keys().find((k) => k.state === 'current').name)
    try {
      ring.rotate()
    } catch (e) {
      err = e
    }
  }
  assert.equal(err?.code, 'ERR_INVALID_STATE')
  const held = new Set(ring.keys().map((k) => k.name))
  assert.deepEqual(names.filter((n) => !held.has(n)), [], 'every key that encrypted is still held')
  ring.destroy()
})
