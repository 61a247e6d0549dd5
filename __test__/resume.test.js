'use strict'

// Resumption through the ring with real Node servers and clients on loopback, in both modes
// and both TLS versions.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const https = require('node:https')
const http2 = require('node:http2')
const tls = require('node:tls')
const { once } = require('node:events')
const { TicketKeyRing, attach, generateTicketKeys } = require('..')
const { key, cert, HOST, tlsServer, listen, close, connect, reconnect } = require('../test-support/helpers.js')

const MODES = [
  { mode: 'native', cipher: 'aes-256-cbc' },
  { mode: 'native', cipher: 'aes-128-cbc' },
  { mode: 'callback', cipher: 'aes-128-cbc' },
]
const VERSIONS = ['TLSv1.2', 'TLSv1.3']

function currentName(ring) {
  return ring.keys().find((k) => k.state === 'current').name
}

for (const { mode, cipher } of MODES) {
  describe(`${mode} mode, ${cipher}`, () => {
    for (const version of VERSIONS) {
      test(`${version}: resumes, survives rotate() and renews the ticket`, async () => {
        const ring = new TicketKeyRing({ cipher })
        const server = tlsServer()
        const handle = attach(server, ring, { mode })
        assert.equal(handle.mode, mode)
        try {
          const port = await listen(server)
          const first = await connect(port, { version })
          assert.equal(first.reused, false)
          assert.equal(first.protocol, version)
          const oldName = currentName(ring)
          if (version === 'TLSv1.2') assert.equal(first.ticketKeyName, oldName)
          const second = await connect(port, { version, session: first.session })
          assert.equal(second.reused, true)

          ring.rotate()
          assert.notEqual(currentName(ring), oldName)
          const renewedBefore = ring.stats().renewed
          const third = await connect(port, { version, session: second.session })
          assert.equal(third.reused, true, 'a ticket under the previous key still resumes')
          assert.equal(ring.stats().renewed, renewedBefore + 1, 'and is renewed')
          if (version === 'TLSv1.2') assert.equal(third.ticketKeyName, currentName(ring), 'renewed under the current key')

          const fourth = await connect(port, { version, session: third.session })
          assert.equal(fourth.reused, true)
          assert.equal(ring.stats().renewed, renewedBefore + 1, 'the renewed ticket needs no renewal')
          const stats = ring.stats()
          assert.ok(stats.issued >= 2, JSON.stringify(stats))
          assert.equal(stats.unknownKey, 0)
        } finally {
          await close(server)
          ring.destroy()
        }
      })

      test(`${version}: a ticket from a foreign ring gives a full handshake and the server stays up`, async () => {
        const ours = new TicketKeyRing({ cipher })
        const theirs = new TicketKeyRing({ cipher })
        const a = tlsServer()
        const b = tlsServer()
        attach(a, theirs, { mode })
        attach(b, ours, { mode })
        try {
          const portA = await listen(a)
          const portB = await listen(b)
          const foreign = await connect(portA, { version })
          const refused = await connect(portB, { version, session: foreign.session })
          assert.equal(refused.reused, false)
          assert.equal(ours.stats().unknownKey, 1)
          // Still up, and still resuming its own tickets.
          const own = await connect(portB, { version, session: refused.session })
          assert.equal(own.reused, true)
        } finally {
          await Promise.all([close(a), close(b)])
          ours.destroy()
          theirs.destroy()
        }
      })

      test(`${version}: twenty reconnections across rotations all resume`, async () => {
        const ring = new TicketKeyRing({ cipher })
        const server = tlsServer()
        attach(server, ring, { mode })
        try {
          const port = await listen(server)
          const flags = await reconnect(port, 20, { version }, (i) => { if (i % 3 === 2) ring.rotate() })
          assert.deepEqual(flags, [false, ...Array(19).fill(true)])
        } finally {
          await close(server)
          ring.destroy()
        }
      })
    }

    test('a ticket issued by a plain Node server with ticketKeys K resumes on a ring holding K', async () => {
      const K = generateTicketKeys(48)
      const sessionIdContext = 'shared-context'
      const plain = tlsServer({ ticketKeys: K, sessionIdContext })
      const ring = new TicketKeyRing({ keys: K })
      const ours = tlsServer({ sessionIdContext })
      attach(ours, ring, { mode })
      try {
        const portPlain = await listen(plain)
        const portOurs = await listen(ours)
        for (const version of VERSIONS) {
          const fromPlain = await connect(portPlain, { version })
          const onRing = await connect(portOurs, { version, session: fromPlain.session })
          assert.equal(onRing.reused, true, version)
          // And back: the ring's ticket under K opens on the plain server.
          const back = await connect(portPlain, { version, session: onRing.session })
          assert.equal(back.reused, true, version)
        }
      } finally {
        await Promise.all([close(plain), close(ours)])
        ring.destroy()
      }
    })

    test('https server resumes through https.Agent', async () => {
      const ring = new TicketKeyRing({ cipher })
      const server = https.createServer({ key, cert }, (req, res) => res.end('ok'))
      attach(server, ring, { mode })
      const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 })
      try {
        const port = await listen(server)
        const reused = []
        for (let i = 0; i < 4; i++) {
          if (i === 2) ring.rotate()
          reused.push(await new Promise((resolve, reject) => {
            https.get({ host: HOST, port, ca: cert, servername: 'localhost', agent, maxVersion: 'TLSv1.2' }, (res) => {
              const r = res.socket.isSessionReused()
              res.resume()
              res.on('end', () => resolve(r))
            }).on('error', reject)
          }))
        }
        assert.deepEqual(reused, [false, true, true, true])
        assert.ok(ring.stats().renewed >= 1)
      } finally {
        agent.destroy()
        await close(server)
        ring.destroy()
      }
    })

    test('http2 secure server resumes', async () => {
      const ring = new TicketKeyRing({ cipher })
      const server = http2.createSecureServer({ key, cert })
      server.on('stream', (stream) => {
        stream.respond({ ':status': 200 })
        stream.end('ok')
      })
      attach(server, ring, { mode })
      try {
        const port = await listen(server)
        let session
        const reused = []
        for (let i = 0; i < 3; i++) {
          if (i === 2) ring.rotate()
          let socket
          let sawTicket
          const ticketSeen = new Promise((resolve) => { sawTicket = resolve })
          const client = http2.connect(`https://localhost:${port}`, {
            createConnection: () => {
              socket = tls.connect({ host: HOST, port, ca: cert, servername: 'localhost', ALPNProtocols: ['h2'], session })
              socket.on('session', (s) => {
                session = s
                sawTicket()
              })
              return socket
            },
          })
          const req = client.request({ ':path': '/' })
          req.resume()
          await once(req, 'end')
          // TLS 1.3 tickets follow the handshake; keep the connection until one came.
          await Promise.race([ticketSeen, new Promise((resolve) => setTimeout(resolve, 1000))])
          reused.push(socket.isSessionReused())
          client.close()
        }
        assert.deepEqual(reused, [false, true, true])
      } finally {
        await close(server)
        ring.destroy()
      }
    })
  })
}

test('a ring destroyed under a live server gives full handshakes, no crash', async () => {
  for (const mode of ['native', 'callback']) {
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    const server = tlsServer()
    attach(server, ring, { mode })
    try {
      const port = await listen(server)
      const first = await connect(port, { version: 'TLSv1.3' })
      ring.destroy()
      const second = await connect(port, { version: 'TLSv1.3', session: first.session })
      assert.equal(second.reused, false, mode)
      const third = await connect(port, { version: 'TLSv1.2' })
      assert.equal(third.reused, false, mode)
    } finally {
      await close(server)
    }
  }
})

test('tickets stop resuming after ticketLifetime, which becomes the session timeout', async () => {
  // Not 1 s: session times are whole seconds, and OpenSSL 3.5 compares them with a finer
  // clock, so a 1 s session can be over at once when the handshake straddles a second.
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc', ticketLifetime: 2 })
  const server = tlsServer()
  attach(server, ring)
  try {
    assert.equal(server.sessionTimeout, 2)
    const port = await listen(server)
    const first = await connect(port, { version: 'TLSv1.2' })
    const soon = await connect(port, { version: 'TLSv1.2', session: first.session })
    assert.equal(soon.reused, true)
    await new Promise((resolve) => setTimeout(resolve, 3100))
    const late = await connect(port, { version: 'TLSv1.2', session: soon.session })
    assert.equal(late.reused, false)
  } finally {
    await close(server)
    ring.destroy()
  }
})
