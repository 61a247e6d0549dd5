'use strict'

// The ticket cipher in Rust against real tickets, inspectTicket in every key state, and the
// importers of nginx and HAProxy key files, whose layout the tests write out byte by byte.

const test = require('node:test')
const assert = require('node:assert/strict')
const tls = require('node:tls')
const { TicketKeyRing, attach, inspectTicket, generateTicketKeys } = require('..')
const { cert, HOST, tlsServer, listen, close } = require('./helpers.js')

function ticketFrom(port, version) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: HOST, port, ca: cert, servername: 'localhost', minVersion: version, maxVersion: version })
    socket.on('session', () => {
      resolve(socket.getTLSTicket())
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

for (const [mode, cipher] of [['native', 'aes-256-cbc'], ['native', 'aes-128-cbc'], ['callback', 'aes-128-cbc']]) {
  test(`${mode}, ${cipher}: the Rust cipher opens the tickets Node issued, TLS 1.2 and 1.3`, async () => {
    const ring = new TicketKeyRing({ cipher })
    const server = tlsServer()
    attach(server, ring, { mode })
    try {
      const port = await listen(server)
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        const ticket = await ticketFrom(port, version)
        const report = inspectTicket(ticket, ring)
        assert.equal(report.keyState, 'current', version)
        assert.equal(report.error, null)
        assert.equal(report.keyName, ring.getTicketKeys().subarray(0, 16).toString('hex'))
        assert.equal(report.session.protocol, version)
        assert.ok(Math.abs(report.session.createdAt - Date.now()) < 5000)
        assert.equal(report.session.timeout, ring.ticketLifetime)
        ring.rotate()
        assert.equal(inspectTicket(ticket, ring).keyState, 'previous')
        assert.equal(inspectTicket(ticket, new TicketKeyRing({ cipher })).keyState, 'unknown')
        const forged = Buffer.from(ticket)
        forged[forged.length - 40] ^= 1
        const bad = inspectTicket(forged, ring)
        assert.deepEqual([bad.keyState, bad.session, bad.error], ['previous', null, "the ticket's MAC does not verify"])
      }
    } finally {
      await close(server)
      ring.destroy()
    }
  })
}

test("inspectTicket: a ticket under the ring's next key says 'next'", async () => {
  // Two rings from one secret; the one that rotated ahead seals with what the other calls next.
  const secret = Buffer.alloc(32, 9)
  const ahead = new TicketKeyRing({ secret })
  const behind = new TicketKeyRing({ secret })
  ahead.rotate()
  const server = tlsServer()
  attach(server, ahead)
  try {
    const port = await listen(server)
    const ticket = await ticketFrom(port, 'TLSv1.2')
    assert.equal(inspectTicket(ticket, ahead).keyState, 'current')
    const report = inspectTicket(ticket, behind)
    assert.equal(report.keyState, 'next')
    assert.equal(report.session.protocol, 'TLSv1.2')
  } finally {
    await close(server)
    ahead.destroy()
    behind.destroy()
  }
})

test('inspectTicket: garbage is an unknown key, wrong types are Node-style errors, no secret shows', () => {
  const material = generateTicketKeys(80)
  const ring = new TicketKeyRing({ keys: material })
  for (const garbage of [Buffer.alloc(0), Buffer.alloc(10), Buffer.alloc(70000, 1), generateTicketKeys(96)]) {
    const report = inspectTicket(garbage, ring)
    assert.equal(report.keyState, 'unknown')
    assert.equal(report.session, null)
  }
  const truncated = inspectTicket(Buffer.concat([material.subarray(0, 16), Buffer.alloc(70)]), ring) // not whole blocks
  assert.deepEqual([truncated.keyState, truncated.error], ['current', 'not a ticket: its length is impossible'])
  const shown = JSON.stringify(truncated)
  assert.ok(!shown.includes(material.subarray(16, 48).toString('hex').slice(0, 16)))
  assert.throws(() => inspectTicket('ticket', ring), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => inspectTicket(Buffer.alloc(80), {}), { code: 'ERR_INVALID_ARG_TYPE' })
  ring.destroy()
  assert.throws(() => inspectTicket(Buffer.alloc(80), ring), { code: 'ERR_INVALID_STATE' })
})

// Byte patterns that say where each part of a key went.
const part = (fill, n) => Buffer.alloc(n, fill)

test('fromNginx: 48-byte files are name|aes|hmac, 80-byte files name|hmac|aes; the first file encrypts', () => {
  const file48 = (i) => Buffer.concat([part(0x10 + i, 16), part(0xa0 + i, 16), part(0xb0 + i, 16)]) // name, aes, hmac
  const ring = TicketKeyRing.fromNginx([file48(1), file48(2)])
  assert.equal(ring.cipher, 'aes-128-cbc')
  assert.deepEqual(ring.getTicketKeys(), Buffer.concat([part(0x11, 16), part(0xb1, 16), part(0xa1, 16)]))
  assert.deepEqual(ring.keys().map((k) => [k.name.slice(0, 2), k.state]), [['11', 'current'], ['12', 'previous']])

  const file80 = Buffer.concat([part(0x21, 16), part(0xc1, 32), part(0xd1, 32)]) // name, hmac, aes
  const ring80 = TicketKeyRing.fromNginx(file80)
  assert.equal(ring80.cipher, 'aes-256-cbc')
  assert.deepEqual(ring80.getTicketKeys(), file80)

  assert.throws(() => TicketKeyRing.fromNginx([]), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => TicketKeyRing.fromNginx([file48(1), file80]), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => TicketKeyRing.fromNginx(Buffer.alloc(64, 1)), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => TicketKeyRing.fromNginx('keyfile'), { code: 'ERR_INVALID_ARG_TYPE' })
})

test("fromHaproxy: base64 lines of name|aes|hmac; of the last three, the second-to-last encrypts", () => {
  const line = (i, n) => Buffer.concat([part(0x30 + i, 16), part(0xe0 + i, n), part(0xf0 + i, n)]).toString('base64')
  const text = `# rotated daily\n${[1, 2, 3, 4].map((i) => line(i, 16)).join('\n')}\n`
  const ring = TicketKeyRing.fromHaproxy(text)
  // Lines 2, 3, 4 are the window; line 3 encrypts.
  assert.deepEqual(ring.getTicketKeys(), Buffer.concat([part(0x33, 16), part(0xf3, 16), part(0xe3, 16)]))
  assert.deepEqual(ring.keys().map((k) => k.name.slice(0, 2)).sort(), ['32', '33', '34'])
  const ring80 = TicketKeyRing.fromHaproxy(Buffer.from([line(1, 32), line(2, 32)].join('\r\n')))
  assert.equal(ring80.cipher, 'aes-256-cbc')
  assert.deepEqual(ring80.getTicketKeys(), Buffer.concat([part(0x31, 16), part(0xf1, 32), part(0xe1, 32)]))
  assert.throws(() => TicketKeyRing.fromHaproxy(''), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => TicketKeyRing.fromHaproxy(`${line(1, 16)}\n${line(2, 32)}`), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => TicketKeyRing.fromHaproxy(42), { code: 'ERR_INVALID_ARG_TYPE' })
})
