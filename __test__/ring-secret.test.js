'use strict'

// Rings derived from a fleet secret: the same keys and session id context in every process.

const { describe, test, after } = require('node:test')
const assert = require('node:assert/strict')
const util = require('node:util')
const { TicketKeyRing, attach, generateTicketKeys } = require('..')
const { tlsServer, listen, close, connect } = require('../test-support/helpers.js')

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
      // Not derived from the secret: a fleet moving to a new secret (previousSecrets) keeps it.
      assert.equal(a.sessionIdContext, other.sessionIdContext)
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
