'use strict'

// Tampered tickets over real TLS: real sessions with one byte of their ticket flipped (the
// session's encoding stays valid), offered to the server thousands of times. Each gives a
// full handshake; the server stays up and keeps resuming good tickets.

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const tls = require('node:tls')
const { TicketKeyRing, attach } = require('..')
const { cert, HOST, tlsServer, listen, close } = require('../test-support/helpers.js')

const ROUNDS = 400

function handshake(port, version, session) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: HOST, port, ca: cert, servername: 'localhost', session, minVersion: version, maxVersion: version })
    let result = { reused: null, session: null, ticket: null }
    socket.on('session', (s) => { result.session = s })
    socket.on('secureConnect', () => {
      result.reused = socket.isSessionReused()
      result.ticket = socket.getTLSTicket()
    })
    socket.on('data', () => {})
    socket.on('error', (err) => { result.error = err })
    socket.on('close', () => resolve(result))
  })
}

for (const [mode, cipher] of [['native', 'aes-256-cbc'], ['callback', 'aes-128-cbc']]) {
  for (const version of ['TLSv1.2', 'TLSv1.3']) {
    test(`${mode}, ${version}: ${ROUNDS} tickets with a flipped byte give full handshakes, good ones still resume`, async () => {
      const ring = new TicketKeyRing({ cipher })
      const server = tlsServer()
      attach(server, ring, { mode })
      try {
        const port = await listen(server)
        const good = await handshake(port, version)
        const ticket = good.ticket ?? (await handshake(port, version, good.session)).ticket
        const session = good.session
        const at = session.indexOf(ticket)
        assert.ok(at > 0, 'the ticket is inside the session')
        let full = 0
        for (let i = 0; i < ROUNDS; i++) {
          const bad = Buffer.from(session)
          bad[at + crypto.randomInt(ticket.length)] ^= 1 + crypto.randomInt(255)
          const r = await handshake(port, version, bad)
          if (r.reused === false) full++
          else assert.fail(`round ${i}: ${r.reused === true ? 'a tampered ticket resumed' : `no handshake: ${r.error}`}`)
        }
        assert.equal(full, ROUNDS)
        assert.equal((await handshake(port, version, session)).reused, true, 'the good ticket still resumes')
        const stats = ring.stats()
        assert.ok(stats.unknownKey > 0, 'flips in the key name were unknown keys')
      } finally {
        await close(server)
        ring.destroy()
      }
    })
  }
}
