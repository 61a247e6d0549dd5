'use strict'

// The ticket cipher in Rust against real tickets, and inspectTicket in every key state.

const test = require('node:test')
const assert = require('node:assert/strict')
const tls = require('node:tls')
const { TicketKeyRing, attach, inspectTicket, generateTicketKeys } = require('..')
const { cert, HOST, tlsServer, listen, close } = require('../test-support/helpers.js')

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
  // Two rings from one HAProxy file; the one that rotated ahead seals with what the other calls next.
  const file = [0, 1, 2].map(() => `${generateTicketKeys(48).toString('base64')}\n`).join('')
  const ahead = TicketKeyRing.fromHaproxy(file)
  const behind = TicketKeyRing.fromHaproxy(file)
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

