'use strict'

// Why handshakes did or did not resume, per attached server, each reason provoked on purpose;
// and the same in Prometheus text.

const test = require('node:test')
const assert = require('node:assert/strict')
const diagnosticsChannel = require('node:diagnostics_channel')
const { TicketKeyRing, attach, generateTicketKeys } = require('..')
const { tlsServer, listen, close, connect } = require('../test-support/helpers.js')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

for (const mode of ['native', 'callback']) {
  test(`${mode}: every reason counted, each provoked on purpose, and published on tls-ticket-keys:refused`, async () => {
    // Not 1 s: session times are whole seconds, and OpenSSL 3.5 compares them with a finer
    // clock, so a 1 s session can be over at once when the handshake straddles a second.
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc', ticketLifetime: 2, name: `reasons-${mode}` })
    const foreign = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    const server = tlsServer({ sessionIdContext: 'server-a' })
    const twin = tlsServer({ sessionIdContext: 'server-b' }) // same ring, another context
    const other = tlsServer()
    const handle = attach(server, ring, { mode })
    attach(twin, ring, { mode })
    attach(other, foreign, { mode })
    const refused = []
    const onRefused = (message) => refused.push(message)
    diagnosticsChannel.subscribe('tls-ticket-keys:refused', onRefused)
    try {
      const [port, portTwin, portOther] = [await listen(server), await listen(twin), await listen(other)]
      const version = 'TLSv1.2'
      const first = await connect(port, { version }) // no ticket offered
      await connect(port, { version, session: first.session }) // resumed
      const fromOther = await connect(portOther, { version })
      await connect(port, { version, session: fromOther.session }) // unknown key
      const fromTwin = await connect(portTwin, { version })
      await connect(port, { version, session: fromTwin.session }) // opened, refused: context
      ring.rotate()
      await sleep(2300) // the old key is wiped a lifetime after the rotation
      await connect(port, { version, session: first.session }) // expired key
      // Five handshakes on this server: one of each outcome.
      assert.deepEqual(handle.stats(), {
        handshakes: 5, resumed: 1, full: 4, noTicket: 1, unknownKey: 1, expiredKey: 1, notResumed: 1,
      })
      // The same three refusals, one message each, in the order they happened. (The twin's
      // server refused nothing; `other` never saw a ticket.)
      assert.deepEqual(refused, ['unknownKey', 'notResumed', 'expiredKey'].map((reason) =>
        ({ ring: `reasons-${mode}`, server: `127.0.0.1:${port}`, reason })))
    } finally {
      diagnosticsChannel.unsubscribe('tls-ticket-keys:refused', onRefused)
      await Promise.all([close(server), close(twin), close(other)])
      ring.destroy()
      foreign.destroy()
    }
  })
}

test('metrics(): Prometheus text with the ring counters, keys by state and per-server outcomes', async () => {
  const material = generateTicketKeys(48)
  const ring = new TicketKeyRing({ keys: material })
  const server = tlsServer()
  attach(server, ring)
  try {
    const port = await listen(server)
    const first = await connect(port)
    await connect(port, { session: first.session })
    const text = ring.metrics()
    const samples = Object.fromEntries(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
      const at = l.lastIndexOf(' ')
      return [l.slice(0, at), Number(l.slice(at + 1))]
    }))
    const r = `ring="${ring.name}"`
    assert.equal(samples[`tls_ticket_keys_tickets_issued_total{${r}}`], ring.stats().issued)
    assert.equal(samples[`tls_ticket_keys_tickets_resumed_total{${r}}`], 1)
    assert.equal(samples[`tls_ticket_keys_keys{${r},state="current"}`], 1)
    assert.equal(samples[`tls_ticket_keys_handshakes_total{${r},server="127.0.0.1:${port}",outcome="resumed"}`], 1)
    assert.equal(samples[`tls_ticket_keys_handshakes_total{${r},server="127.0.0.1:${port}",outcome="no_ticket"}`], 1)
    for (const line of text.split('\n').filter((l) => l.startsWith('# TYPE'))) {
      const [, , name, type] = line.split(' ')
      assert.ok(type === 'gauge' || name.endsWith('_total'), line)
      assert.match(name, /^tls_ticket_keys_[a-z_]+$/)
    }
    assert.ok(!text.includes(material.subarray(16, 24).toString('hex')))
  } finally {
    await close(server)
    ring.destroy()
  }
  // A destroyed ring keeps its counters and holds no key; its server keeps its address.
  const after = ring.metrics()
  assert.match(after, /^tls_ticket_keys_keys\{ring="ring-\d+",state="current"\} 0$/m)
  assert.match(after, /^tls_ticket_keys_tickets_resumed_total\{ring="ring-\d+"\} 1$/m)
  assert.match(after, /server="127\.0\.0\.1:\d+",outcome="resumed"\} 1$/m)
})
