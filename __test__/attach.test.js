'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const tls = require('node:tls')
const util = require('node:util')
const { TicketKeyRing, attach, generateTicketKeys } = require('..')
const { key, cert, tlsServer, listen, close, connect } = require('../test-support/helpers.js')

test('auto mode picks native on this Node, and says so', async () => {
  const ring = new TicketKeyRing()
  const server = tlsServer()
  try {
    const handle = attach(server, ring)
    assert.equal(handle.mode, 'native')
    assert.equal(ring.cipher, 'aes-256-cbc', 'the default cipher where native mode is available')
    assert.match(util.inspect(handle), /mode: 'native'/)
    assert.deepEqual(JSON.parse(JSON.stringify(handle)), { mode: 'native', shareWith: null, detached: false })
  } finally {
    ring.destroy()
  }
})

test('bad arguments to attach() give Node-style errors', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
  const server = tlsServer()
  try {
    assert.throws(() => attach(), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => attach(net.createServer(), ring), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => attach({ _sharedCreds: {} }, ring), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => attach(server, {}), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => attach(server, generateTicketKeys()), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => attach(server, ring, 'native'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => attach(server, ring, { mode: 'fast' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => attach(server, ring, { mode: 1 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
  } finally {
    ring.destroy()
  }
})

test('callback mode refuses an AES-256 ring with a clear error', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-256-cbc' })
  const server = tlsServer()
  try {
    assert.throws(() => attach(server, ring, { mode: 'callback' }),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /only does AES-128/ })
    // Nothing was changed on the server: it can still be attached.
    assert.equal(attach(server, ring, { mode: 'native' }).mode, 'native')
  } finally {
    ring.destroy()
  }
})

test('a destroyed ring and a second attach are ERR_INVALID_STATE', () => {
  const dead = new TicketKeyRing()
  dead.destroy()
  assert.throws(() => attach(tlsServer(), dead), { code: 'ERR_INVALID_STATE' })
  const ring = new TicketKeyRing()
  const server = tlsServer()
  try {
    const handle = attach(server, ring)
    assert.throws(() => attach(server, ring), { code: 'ERR_INVALID_STATE', message: /detach/ })
    handle.detach()
    attach(server, ring).detach()
  } finally {
    ring.destroy()
  }
})

for (const mode of ['native', 'callback']) {
  test(`${mode}: survives setSecureContext(), which replaces the hooked context`, async () => {
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    const server = tlsServer()
    attach(server, ring, { mode })
    try {
      const port = await listen(server)
      const before = await connect(port, { version: 'TLSv1.2' })
      const oldContext = server._sharedCreds.context
      server.setSecureContext({ key, cert })
      assert.notEqual(server._sharedCreds.context, oldContext)
      assert.equal(server.sessionIdContext, ring.sessionIdContext)
      const after = await connect(port, { version: 'TLSv1.2', session: before.session })
      assert.equal(after.reused, true)
      const issued = ring.stats().issued
      const fresh = await connect(port, { version: 'TLSv1.3' })
      assert.equal(ring.stats().issued > issued, true, 'the new context seals with the ring')
      assert.equal((await connect(port, { version: 'TLSv1.3', session: fresh.session })).reused, true)
    } finally {
      await close(server)
      ring.destroy()
    }
  })

  test(`${mode}: detach() gives the server back its own ticket handling`, async () => {
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    const server = tlsServer()
    const handle = attach(server, ring, { mode })
    try {
      const port = await listen(server)
      const onRing = await connect(port, { version: 'TLSv1.2' })
      handle.detach()
      handle.detach()
      assert.equal(handle.detached, true)
      assert.equal(server.sessionTimeout, undefined)
      const issued = ring.stats().issued
      const own = await connect(port, { version: 'TLSv1.2' })
      assert.equal(own.ticketKeyName, server.getTicketKeys().subarray(0, 16).toString('hex'), "Node's own key seals")
      assert.equal((await connect(port, { version: 'TLSv1.2', session: own.session })).reused, true)
      assert.equal((await connect(port, { version: 'TLSv1.3', session: (await connect(port)).session })).reused, true)
      assert.equal(ring.stats().issued, issued, 'the ring is no longer used')
      // Node's setTicketKeys() works again.
      server.setTicketKeys(generateTicketKeys(48))
      const rekeyed = await connect(port, { version: 'TLSv1.2', session: own.session })
      assert.equal(rekeyed.reused, false)
      assert.notEqual(onRing.ticketKeyName, own.ticketKeyName)
    } finally {
      await close(server)
      ring.destroy()
    }
  })

  test(`${mode}: SNI contexts need nothing: tickets go through the ring`, async () => {
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    const server = tlsServer()
    server.addContext('sni.example', { key, cert })
    attach(server, ring, { mode })
    try {
      const port = await listen(server)
      const options = { servername: 'sni.example', checkServerIdentity: () => undefined }
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        const issued = ring.stats().issued
        const first = await connect(port, { version, ...options })
        assert.ok(ring.stats().issued > issued, `${version}: sealed by the ring`)
        if (version === 'TLSv1.2') assert.equal(first.ticketKeyName, ring.getTicketKeys().subarray(0, 16).toString('hex'))
        const second = await connect(port, { version, ...options, session: first.session })
        assert.equal(second.reused, true, version)
      }
    } finally {
      await close(server)
      ring.destroy()
    }
  })
}

test("attach() replaces Node's argv-derived sessionIdContext, and keeps one the user chose", () => {
  const ring = new TicketKeyRing()
  try {
    const server = tlsServer()
    const argvDerived = server.sessionIdContext
    const handle = attach(server, ring)
    assert.equal(server.sessionIdContext, ring.sessionIdContext)
    assert.notEqual(ring.sessionIdContext, argvDerived)
    handle.detach()
    assert.equal(server.sessionIdContext, argvDerived)

    const mine = tlsServer({ sessionIdContext: 'mine' })
    attach(mine, ring)
    assert.equal(mine.sessionIdContext, 'mine')
    mine.setSecureContext({ key, cert, sessionIdContext: 'other' })
    assert.equal(mine.sessionIdContext, 'other')
  } finally {
    ring.destroy()
  }
})

test('the session timeout becomes ticketLifetime, including after setSecureContext()', () => {
  const ring = new TicketKeyRing({ ticketLifetime: 1234 })
  try {
    const server = tlsServer({ sessionTimeout: 50 })
    const handle = attach(server, ring)
    assert.equal(server.sessionTimeout, 1234)
    server.setSecureContext({ key, cert })
    assert.equal(server.sessionTimeout, 1234)
    handle.detach()
    assert.equal(server.sessionTimeout, 50)
  } finally {
    ring.destroy()
  }
})

test('one ring serves several servers, which resume each other', async () => {
  const ring = new TicketKeyRing()
  const servers = [tlsServer(), tlsServer(), tlsServer()]
  try {
    servers.forEach((s) => attach(s, ring))
    const ports = []
    for (const s of servers) ports.push(await listen(s))
    let session = (await connect(ports[0])).session
    for (const port of [ports[1], ports[2], ports[0]]) {
      const r = await connect(port, { session })
      assert.equal(r.reused, true)
      session = r.session
    }
  } finally {
    await Promise.all(servers.map(close))
    ring.destroy()
  }
})

test('a plain tls.Server with the same keys but another argv-derived context refuses them: why attach() sets one', async () => {
  // Node's own behaviour, which the ring's session id context fixes.
  const K = generateTicketKeys(48)
  const a = tlsServer({ ticketKeys: K, sessionIdContext: 'process-a' })
  const b = tlsServer({ ticketKeys: K, sessionIdContext: 'process-b' })
  try {
    const portA = await listen(a)
    const portB = await listen(b)
    const first = await connect(portA, { version: 'TLSv1.2' })
    assert.equal((await connect(portB, { version: 'TLSv1.2', session: first.session })).reused, false)
  } finally {
    await Promise.all([close(a), close(b)])
  }
})

test('tls.createServer secure contexts expose what native mode needs', () => {
  const context = tls.createSecureContext({ key, cert }).context
  assert.equal(typeof context.setSessionTimeout, 'function')
  assert.equal(typeof context.enableTicketKeyCallback, 'function')
  assert.equal(typeof context._external, 'object')
})
