'use strict'

// The client cache never lets a session cross an identity boundary: another tenant's client
// certificate (a secureContext of its own), another trust store (a strict CA after a lax one,
// against an impersonating server), another Unix socket. Through cache.connect(),
// httpsAgent() and dispatcher(), on TLS 1.2 and 1.3, against real servers on loopback.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const https = require('node:https')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const { TicketKeyRing, attach, SessionCache } = require('..')
const { HOST, close, listen, thrown } = require('../test-support/helpers.js')
const { originKey } = require('../lib/origin.js')

const VERSIONS = ['TLSv1.2', 'TLSv1.3']

// A real CA (the server's), a lax CA (an impersonator's), a client CA with alice and mallory.
const pki = {}
let dir
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-client-identity-'))
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  const read = (file) => fs.readFileSync(path.join(dir, file))
  for (const ca of ['real', 'lax', 'clients']) {
    openssl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=${ca} CA`)
    pki[ca] = read(`${ca}.crt`)
  }
  const issue = (name, ca, extensions) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), extensions)
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`)
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`)
    return { key: read(`${name}.key`), cert: read(`${name}.crt`) }
  }
  const server = 'subjectAltName = DNS:localhost, IP:127.0.0.1\n'
  pki.server = issue('server', 'real', server)
  pki.impostor = issue('impostor', 'lax', server)
  pki.alice = issue('alice', 'clients', 'extendedKeyUsage = clientAuth\n')
  pki.mallory = issue('mallory', 'clients', 'extendedKeyUsage = clientAuth\n')
})
after(() => fs.rmSync(dir, { recursive: true, force: true }))

const tenant = (name) => tls.createSecureContext({ ca: pki.real, key: pki[name].key, cert: pki[name].cert })

/** An HTTPS server that asks for client certificates and answers who it saw. */
async function clientAuthServer(version, { keepAlive = false } = {}) {
  const ring = new TicketKeyRing({ rotationInterval: 3600 })
  const seen = []
  const server = https.createServer({
    ...pki.server, requestCert: true, rejectUnauthorized: true, ca: pki.clients, minVersion: version, maxVersion: version,
  }, (req, res) => {
    const peer = req.socket.getPeerCertificate().subject?.CN ?? null
    seen.push({ peer, reused: req.socket.isSessionReused() })
    if (!keepAlive) res.setHeader('Connection', 'close')
    res.end(peer ?? '')
  })
  server.on('tlsClientError', () => {})
  attach(server, ring)
  const port = await listen(server)
  return { port, seen, async close() { server.closeAllConnections(); await close(server); ring.destroy() } }
}

/** One TLS connection through the cache; resolves with what the server said and whether it resumed. */
function viaConnect(cache, port, options) {
  return new Promise((resolve, reject) => {
    const socket = cache.connect({ host: HOST, port, servername: 'localhost', ...options })
    let body = ''
    let reused = null
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused()
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', (d) => { body += d })
    socket.on('error', reject)
    socket.on('close', () => resolve({ peer: body.split('\r\n\r\n')[1] ?? null, reused }))
  })
}

function viaAgent(agent, port, options) {
  return new Promise((resolve, reject) => {
    https.get({ host: HOST, port, servername: 'localhost', path: '/', agent, ...options }, (res) => {
      let body = ''
      const reused = res.socket.isSessionReused()
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ peer: body, reused }))
    }).on('error', reject)
  })
}

async function viaDispatcher(dispatcher, port) {
  const { body } = await dispatcher.request({ origin: `https://localhost:${port}`, path: '/', method: 'GET' })
  return { peer: await body.text() }
}

describe('a session is offered only to a connection that presents the same client identity', () => {
  for (const version of VERSIONS) {
    test(`${version}: cache.connect() with one secureContext per tenant`, async () => {
      const server = await clientAuthServer(version)
      try {
        const cache = new SessionCache()
        const alice = tenant('alice')
        const mallory = tenant('mallory')
        assert.deepEqual(await viaConnect(cache, server.port, { secureContext: alice }), { peer: 'alice', reused: false })
        // The cache works: alice resumes her own session.
        assert.deepEqual(await viaConnect(cache, server.port, { secureContext: alice }), { peer: 'alice', reused: true })
        assert.deepEqual(await viaConnect(cache, server.port, { secureContext: mallory }), { peer: 'mallory', reused: false })
        assert.deepEqual(await viaConnect(cache, server.port, { secureContext: mallory }), { peer: 'mallory', reused: true })
        assert.deepEqual(server.seen.map((s) => s.peer), ['alice', 'alice', 'mallory', 'mallory'])
      } finally {
        await server.close()
      }
    })

    test(`${version}: cache.httpsAgent(), with and without keep-alive`, async () => {
      const server = await clientAuthServer(version)
      try {
        for (const keepAlive of [false, true]) {
          const cache = new SessionCache()
          const agent = cache.httpsAgent({ keepAlive })
          try {
            const alice = tenant('alice')
            const mallory = tenant('mallory')
            assert.equal((await viaAgent(agent, server.port, { secureContext: alice })).peer, 'alice')
            assert.deepEqual(await viaAgent(agent, server.port, { secureContext: alice }), { peer: 'alice', reused: true })
            assert.deepEqual(await viaAgent(agent, server.port, { secureContext: mallory }), { peer: 'mallory', reused: false })
          } finally {
            agent.destroy()
          }
        }
      } finally {
        await server.close()
      }
    })

    test(`${version}: cache.dispatcher({ connect: { secureContext } }), one per tenant over one cache`, async () => {
      const server = await clientAuthServer(version)
      const cache = new SessionCache()
      const alice = cache.dispatcher({ connect: { secureContext: tenant('alice') } })
      const mallory = cache.dispatcher({ connect: { secureContext: tenant('mallory') } })
      try {
        assert.equal((await viaDispatcher(alice, server.port)).peer, 'alice')
        assert.equal((await viaDispatcher(alice, server.port)).peer, 'alice')
        assert.equal((await viaDispatcher(mallory, server.port)).peer, 'mallory')
        assert.equal((await viaDispatcher(mallory, server.port)).peer, 'mallory')
        assert.deepEqual(server.seen, [
          { peer: 'alice', reused: false }, { peer: 'alice', reused: true },
          { peer: 'mallory', reused: false }, { peer: 'mallory', reused: true },
        ])
      } finally {
        await alice.close()
        await mallory.close()
        await server.close()
      }
    })
  }
})

describe('httpsAgent(): the forms users write', () => {
  test('https.get(url, { agent }) and a URL object resume (the parts of a URL are no TLS options)', async () => {
    const server = await clientAuthServer('TLSv1.3')
    const cache = new SessionCache()
    const agent = cache.httpsAgent({ secureContext: tenant('alice') })
    try {
      const get = (target) => new Promise((resolve, reject) => {
        https.get(target, { agent, servername: 'localhost' }, (res) => {
          const reused = res.socket.isSessionReused()
          res.resume()
          res.on('end', () => resolve(reused))
        }).on('error', reject)
      })
      const url = `https://127.0.0.1:${server.port}/path?query#hash`
      assert.deepEqual([await get(url), await get(url), await get(new URL(url))], [false, true, true])
      assert.equal(cache.stats().uncached, 0)
    } finally {
      agent.destroy()
      await server.close()
    }
  })

  test('keep-alive: tenants with pfx objects never share a socket, the pool names hold no key, and sockets of options the cache cannot judge are not pooled', async () => {
    const server = await clientAuthServer('TLSv1.3', { keepAlive: true })
    const cache = new SessionCache()
    const agent = cache.httpsAgent({ keepAlive: true })
    const pkcs12 = (name) => {
      execFileSync('openssl', ['pkcs12', '-export', '-inkey', `${name}.key`, '-in', `${name}.crt`, '-out', `${name}.p12`, '-passout', `pass:${name}-pw`], { cwd: dir })
      return fs.readFileSync(path.join(dir, `${name}.p12`))
    }
    try {
      for (const name of ['alice', 'mallory']) {
        const pfx = [{ buf: pkcs12(name), passphrase: `${name}-pw` }]
        assert.equal((await viaAgent(agent, server.port, { pfx, ca: pki.real, href: 'x', pathname: '/' })).peer, name)
      }
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(Object.values(agent.freeSockets).flat().length, 2, 'both sockets were kept alive, apart')
      assert.equal(server.seen.length, 2)
      const names = Object.keys({ ...agent.freeSockets, ...agent.sockets }).join('\n')
      assert.doesNotMatch(names, /PRIVATE KEY|alice-pw|mallory-pw/)
      // A value the cache cannot judge: not offered, not cached, and the socket is not kept.
      const odd = { secureContext: tenant('alice'), someNewTlsOption: Symbol('x') }
      assert.equal((await viaAgent(agent, server.port, odd)).peer, 'alice')
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(agent.freeSockets.uncached, undefined)
      assert.equal((await viaAgent(agent, server.port, odd)).reused, false)
      assert.deepEqual(server.seen.map((s) => s.peer), ['alice', 'mallory', 'alice', 'alice'])
    } finally {
      agent.destroy()
      await server.close()
    }
  })
})

describe('a session made under lax trust is never offered to a connection with strict trust', () => {
  async function impostor(version) {
    const server = tls.createServer({ ...pki.impostor, minVersion: version, maxVersion: version }, (socket) => {
      socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 8\r\n\r\nimpostor'))
    })
    server.on('tlsClientError', () => {})
    return { server, port: await listen(server) }
  }

  const codeOf = (promise) => promise.then(() => null, (err) => err.code)

  for (const version of VERSIONS) {
    test(`${version}: the strict connection fails verification exactly as without a cache`, async () => {
      const { server, port } = await impostor(version)
      const lax = tls.createSecureContext({ ca: pki.lax })
      const strict = tls.createSecureContext({ ca: pki.real })
      try {
        const expected = await codeOf(viaConnect(new SessionCache(), port, { secureContext: strict }))
        assert.equal(expected, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')

        const cache = new SessionCache()
        assert.equal((await viaConnect(cache, port, { secureContext: lax })).peer, 'impostor')
        assert.equal((await viaConnect(cache, port, { secureContext: lax })).reused, true, 'the lax session is cached')
        assert.equal(await codeOf(viaConnect(cache, port, { secureContext: strict })), expected, 'cache.connect()')
        // The same CA given as an option rather than in a context: another trust store too.
        assert.equal(await codeOf(viaConnect(cache, port, { ca: pki.real })), expected, 'cache.connect({ ca })')

        const agent = cache.httpsAgent({ keepAlive: true })
        try {
          assert.equal((await viaAgent(agent, port, { secureContext: lax })).peer, 'impostor')
          assert.equal(await codeOf(viaAgent(agent, port, { secureContext: strict })), expected, 'httpsAgent()')
        } finally {
          agent.destroy()
        }

        const laxDispatcher = cache.dispatcher({ connect: { secureContext: lax } })
        const strictDispatcher = cache.dispatcher({ connect: { secureContext: strict } })
        try {
          assert.equal((await viaDispatcher(laxDispatcher, port)).peer, 'impostor')
          assert.equal(await codeOf(viaDispatcher(strictDispatcher, port)), expected, 'dispatcher()')
        } finally {
          await laxDispatcher.close()
          await strictDispatcher.close()
        }
        // A checkServerIdentity of its own is a check of its own.
        const checked = []
        const check = (host, peer) => { checked.push(peer.subject.CN) }
        assert.equal((await viaConnect(cache, port, { secureContext: lax, checkServerIdentity: check })).reused, false)
        assert.deepEqual(checked, ['impostor'])
      } finally {
        await close(server)
      }
    })
  }
})

describe('Unix sockets: each path is an origin of its own', () => {
  test('a session of the server on one socket is never offered to the server on another (cache.connect() and dispatcher())', async () => {
    const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-unix-'))
    const servers = []
    try {
      for (const name of ['a', 'b']) {
        const ring = new TicketKeyRing({ rotationInterval: 3600 })
        const server = https.createServer({ ...pki.server }, (req, res) => {
          res.setHeader('Connection', 'close')
          res.end(name)
        })
        server.on('tlsClientError', () => {})
        attach(server, ring)
        const socketPath = path.join(socketDir, `${name}.sock`)
        server.listen(socketPath)
        await new Promise((resolve) => server.once('listening', resolve))
        servers.push({ server, ring, socketPath })
      }
      const [a, b] = servers
      for (const version of VERSIONS) {
        const cache = new SessionCache()
        const options = (s) => ({ path: s.socketPath, servername: 'localhost', ca: pki.real, minVersion: version, maxVersion: version })
        assert.deepEqual(await viaConnect(cache, undefined, options(a)), { peer: 'a', reused: false })
        assert.deepEqual(await viaConnect(cache, undefined, options(a)), { peer: 'a', reused: true })
        const offeredBefore = cache.stats().offered
        assert.deepEqual(await viaConnect(cache, undefined, options(b)), { peer: 'b', reused: false })
        assert.equal(cache.stats().offered, offeredBefore, `${version}: nothing was offered to b`)
      }
      const dispatchers = [a, b].map((s) => new SessionCache().dispatcher({ connect: { socketPath: s.socketPath, ca: pki.real } }))
      const shared = new SessionCache()
      const viaA = shared.dispatcher({ connect: { socketPath: a.socketPath, ca: pki.real } })
      const viaB = shared.dispatcher({ connect: { socketPath: b.socketPath, ca: pki.real } })
      try {
        assert.equal((await viaDispatcher(viaA, 1)).peer, 'a')
        assert.equal((await viaDispatcher(viaA, 1)).peer, 'a')
        const offeredBefore = shared.stats().offered
        assert.equal((await viaDispatcher(viaB, 1)).peer, 'b')
        assert.equal(shared.stats().offered, offeredBefore, 'dispatcher(): nothing was offered to b')
      } finally {
        for (const d of [...dispatchers, viaA, viaB]) await d.close()
      }
      assert.equal(b.ring.stats().unknownKey, 0, "b never saw a's ticket")
    } finally {
      for (const { server, ring } of servers) {
        server.closeAllConnections()
        await close(server)
        ring.destroy()
      }
      fs.rmSync(socketDir, { recursive: true, force: true })
    }
  })
})

describe('originKey(): one definition, fail-safe', () => {
  const base = { host: HOST, port: 443, servername: 'example.com' }
  test('what separates origins', () => {
    const a = tls.createSecureContext({})
    const b = tls.createSecureContext({})
    const distinct = [
      base, { ...base, port: 444 }, { ...base, servername: 'other.example' }, { ...base, path: '/run/a.sock' },
      { ...base, path: '/run/b.sock' }, { ...base, secureContext: a }, { ...base, secureContext: b },
      { ...base, rejectUnauthorized: false }, { ...base, checkServerIdentity: () => undefined },
      { ...base, checkServerIdentity: () => undefined }, { ...base, minVersion: 'TLSv1.3' }, { ...base, ciphers: 'AES256' },
      { ...base, ALPNProtocols: ['h2'] }, { ...base, ca: 'x' }, { ...base, ca: ['x', 'y'] }, { ...base, lookup: () => {} },
      { ...base, key: [{ pem: 'k', passphrase: 'p' }] }, { ...base, key: [{ pem: 'k', passphrase: 'q' }] },
    ].map(originKey)
    assert.equal(new Set(distinct).size, distinct.length)
    assert.ok(distinct.every((k) => typeof k === 'string'))
    // Same identity, same origin; socket tuning and request details change nothing.
    assert.equal(originKey({ ...base, secureContext: a }), originKey({ ...base, secureContext: a, timeout: 5, headers: {} }))
    // Nothing of a passphrase or key shows in the key.
    assert.ok(!originKey({ ...base, passphrase: 'hunter2-secret' }).includes('hunter2'))
  })

  test('a socket handed in (a proxy tunnel) is part of the origin by the peer it is connected to', async () => {
    const net = require('node:net')
    const proxies = [net.createServer((s) => s.resume()), net.createServer((s) => s.resume())]
    const sockets = []
    try {
      for (const proxy of proxies) {
        const port = await listen(proxy)
        const socket = net.connect(port, HOST)
        await new Promise((resolve) => socket.once('connect', resolve))
        sockets.push(socket)
      }
      const [one, two] = sockets.map((socket) => originKey({ ...base, socket }))
      assert.equal(typeof one, 'string')
      assert.notEqual(one, two)
      assert.notEqual(one, originKey(base))
      // A stream that is no socket, or a socket not connected: not judged, not cached.
      assert.equal(originKey({ ...base, socket: new (require('node:stream').Duplex)() }), null)
      assert.equal(originKey({ ...base, socket: new net.Socket() }), null)
    } finally {
      for (const socket of sockets) socket.destroy()
      for (const proxy of proxies) await close(proxy)
    }
  })

  test('an option it does not know only separates; one it cannot judge: the connection is not cached', async () => {
    const unknown = [base, { ...base, someNewTlsOption: 1 }, { ...base, someNewTlsOption: 2 }, { ...base, someNewTlsOption: () => {} }].map(originKey)
    assert.equal(new Set(unknown).size, 4)
    assert.equal(originKey({ ...base, someNewTlsOption: 1 }), unknown[1])
    assert.equal(originKey({ ...base, someNewTlsOption: Symbol('x') }), null)
    assert.equal(originKey({ ...base, secureContext: 'not an object' }), null)
    const cache = new SessionCache()
    const ring = new TicketKeyRing({ rotationInterval: 3600 })
    const server = tls.createServer({ ...pki.server }, (s) => s.end('hi'))
    attach(server, ring)
    const port = await listen(server)
    try {
      for (let i = 0; i < 2; i++) {
        const socket = cache.connect({ host: HOST, port, servername: 'localhost', ca: pki.real, someNewTlsOption: Symbol('x') })
        await new Promise((resolve, reject) => socket.on('close', resolve).on('error', reject).resume())
      }
      assert.deepEqual(cache.stats(), { offered: 0, resumed: 0, full: 0, unreadable: 0, uncached: 2, origins: 0, tickets: 0 })
    } finally {
      await close(server)
      ring.destroy()
    }
    assert.equal(thrown(() => cache.connect()).code, 'ERR_INVALID_ARG_TYPE')
  })
})
