'use strict'

// SessionCache under fetch and undici (issue 16), with real servers on loopback and
// certificate checks on: the built-in fetch of the Node running the suite (CI runs it on 20,
// 22, 24 and 26), undici's own request and stream, HTTP/2, the undici majors each built-in
// fetch accepts, and when the cache forgets tickets.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const http2 = require('node:http2')
const https = require('node:https')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const undici = require('undici')
const { TicketKeyRing, attach, SessionCache } = require('..')
const { key, cert, HOST, listen, close, thrown } = require('../test-support/helpers.js')
const { makeSelfSignedCertificate } = require('../lib/selfsigned.js')
const { checkBuiltinFetch } = require('../lib/undici.js')

const NODE_MAJOR = Number(process.versions.node.split('.')[0])
const FIXTURE = path.join(__dirname, 'fixtures', 'fetch-resumption.js')

/** A ring server that closes every connection after its response; `reused` lists what each connection did. */
async function ringServer({ version = 'TLSv1.3', h2 = false } = {}) {
  const ring = new TicketKeyRing({ rotationInterval: 3600, ticketLifetime: 7200 })
  const app = (req, res) => {
    if (!h2) res.setHeader('Connection', 'close')
    res.end(`HTTP/${req.httpVersion}`)
  }
  const options = { key, cert, minVersion: version, maxVersion: version }
  const server = h2 ? http2.createSecureServer({ ...options, allowHTTP1: true }, app) : https.createServer(options, app)
  server.on('tlsClientError', () => {})
  const handle = attach(server, ring)
  const reused = []
  server.on('secureConnection', (socket) => reused.push(socket.isSessionReused()))
  const port = await listen(server)
  return {
    server, ring, handle, reused, port, url: `https://${HOST}:${port}/`,
    async close() {
      server.closeAllConnections?.()
      await close(server)
      ring.destroy()
    },
  }
}

const resumedAfterFirst = (reused) => reused.slice(1).filter(Boolean).length

describe('the built-in fetch (NODE_EXTRA_CA_CERTS, a garbage collection between requests)', () => {
  test(`on Node ${NODE_MAJOR}: alone it resumes nothing; with the dispatcher, per request or global, it resumes every connection after the first, across a rotation`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-fetch-'))
    try {
      const caFile = path.join(dir, 'ca.pem')
      fs.writeFileSync(caFile, cert)
      const child = spawn(process.execPath, ['--expose-gc', FIXTURE], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, TEST_KEY: key.toString(), TEST_CERT: cert.toString() },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => { stdout += d })
      child.stderr.on('data', (d) => { stderr += d })
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      const [code] = await once(child, 'exit')
      clearTimeout(timer)
      assert.equal(code, 0, stderr)
      const result = JSON.parse(stdout)
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        const { plain, dispatcher, global } = result[version]
        assert.equal(plain.length, 6, `${version}: one connection per request`)
        // The built-in fetch holds sessions only through WeakRefs (undici's connector), so a
        // collection between two connections loses them, on every Node version.
        assert.deepEqual(plain, [false, false, false, false, false, false], `${version} built-in fetch alone`)
        assert.deepEqual(dispatcher, [false, true, true, true, true, true], `${version} fetch(url, { dispatcher })`)
        assert.deepEqual(global, [false, true, true, true, true, true], `${version} setGlobalDispatcher()`)
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("undici's own API through cache.dispatcher()", () => {
  for (const version of ['TLSv1.2', 'TLSv1.3']) {
    test(`${version}: request and stream, a new connection each, resume across a rotation; the cache keeps its tickets although undici destroys every socket`, async () => {
      const target = await ringServer({ version })
      const cache = new SessionCache()
      const dispatcher = cache.dispatcher({ connect: { ca: cert } })
      try {
        for (let i = 0; i < 4; i++) {
          const { statusCode, body } = await undici.request(target.url, { dispatcher })
          assert.equal(statusCode, 200)
          assert.equal(await body.text(), 'HTTP/1.1')
          if (i === 1) target.ring.rotate()
        }
        for (let i = 0; i < 4; i++) {
          const chunks = []
          await undici.stream(target.url, { dispatcher }, () => new (require('node:stream').Writable)({
            write(chunk, encoding, callback) {
              chunks.push(chunk)
              callback()
            },
          }))
          assert.equal(Buffer.concat(chunks).toString(), 'HTTP/1.1')
          if (i === 1) target.ring.rotate()
        }
        assert.equal(target.reused.length, 8)
        assert.equal(resumedAfterFirst(target.reused), 7, `server saw ${target.reused}`)
        assert.ok(cache.stats().tickets > 0)
      } finally {
        await dispatcher.close()
        await target.close()
      }
    })
  }

  test('allowH2: HTTP/2 against an http2 secure server, resuming, with h2 in the origin key', async () => {
    const target = await ringServer({ h2: true })
    const cache = new SessionCache()
    try {
      for (let i = 0; i < 3; i++) {
        // A new Agent each time: a new connection, from the same cache.
        const dispatcher = cache.dispatcher({ allowH2: true, connect: { ca: cert } })
        try {
          const { body } = await undici.request(target.url, { dispatcher })
          assert.equal(await body.text(), 'HTTP/2.0')
        } finally {
          await dispatcher.close()
        }
      }
      const http1 = cache.dispatcher({ allowH2: false, connect: { ca: cert } })
      try {
        const { body } = await undici.request(target.url, { dispatcher: http1 })
        assert.equal(await body.text(), 'HTTP/1.1')
      } finally {
        await http1.close()
      }
      // The HTTP/1.1 connection offered different ALPN: not a ticket from the h2 ones.
      assert.deepEqual(target.reused, [false, true, true, false])
    } finally {
      await target.close()
    }
  })

  test('undiciConnect() in a user-built Agent, plain http through the same Agent', async () => {
    const target = await ringServer()
    const plain = require('node:http').createServer((req, res) => res.end('plain'))
    const plainPort = await listen(plain)
    const cache = new SessionCache()
    const agent = new undici.Agent({ connect: cache.undiciConnect({ ca: cert }) })
    try {
      for (let i = 0; i < 3; i++) await (await undici.request(target.url, { dispatcher: agent })).body.text()
      assert.deepEqual(target.reused, [false, true, true])
      const { body } = await undici.request(`http://${HOST}:${plainPort}/`, { dispatcher: agent })
      assert.equal(await body.text(), 'plain')
    } finally {
      await agent.close()
      plain.closeAllConnections()
      await close(plain)
      await target.close()
    }
  })

  test('a server that refuses the ticket (other keys): a full handshake, no error, and resumption from there', async () => {
    const target = await ringServer()
    const cache = new SessionCache()
    const dispatcher = cache.dispatcher({ connect: { ca: cert } })
    try {
      await (await undici.request(target.url, { dispatcher })).body.text()
      // The same origin now under another ring: the cached ticket opens under none of its keys.
      target.handle.detach()
      const other = new TicketKeyRing({ rotationInterval: 3600, ticketLifetime: 7200 })
      attach(target.server, other)
      for (let i = 0; i < 2; i++) {
        const { statusCode, body } = await undici.request(target.url, { dispatcher })
        assert.equal(statusCode, 200)
        await body.text()
      }
      assert.deepEqual(target.reused, [false, false, true])
      other.destroy()
    } finally {
      await dispatcher.close()
      await target.close()
    }
  })
})

describe('which tickets the cache forgets', () => {
  test('an error after the handshake keeps them', async () => {
    // TLS 1.2: the ticket is there by 'secureConnect'.
    const target = await ringServer({ version: 'TLSv1.2' })
    const cache = new SessionCache()
    const reused = []
    try {
      for (let i = 0; i < 3; i++) {
        const socket = cache.connect({ host: HOST, port: target.port, ca: cert, maxVersion: 'TLSv1.2' })
        await once(socket, 'secureConnect')
        // The client's view: the server may not have seen the last Finished yet.
        reused.push(socket.isSessionReused())
        const closed = new Promise((resolve) => socket.on('close', resolve))
        socket.on('error', () => {})
        socket.destroy(new Error('done with it'))
        await closed
      }
      assert.deepEqual(reused, [false, true, true])
      assert.equal(cache.size, 1)
    } finally {
      await target.close()
    }
  })

  test('a refused certificate forgets them', async () => {
    const target = await ringServer()
    const cache = new SessionCache()
    const dispatcher = cache.dispatcher({ connect: { ca: cert } })
    try {
      await (await undici.request(target.url, { dispatcher })).body.text()
      assert.equal(cache.size, 1)
      // Other keys and a certificate the client does not trust: the ticket is refused, and the full handshake fails.
      target.handle.detach()
      const stranger = makeSelfSignedCertificate()
      target.server.setSecureContext({ key: stranger.key, cert: stranger.cert })
      await assert.rejects(undici.request(target.url, { dispatcher }), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
      assert.equal(cache.size, 0)
    } finally {
      await dispatcher.close()
      await target.close()
    }
  })

  test('a reset during the handshake forgets them', async () => {
    const target = await ringServer()
    // A TCP relay in front of the server; once told to, it resets connections at their first bytes.
    let reset = false
    const relay = net.createServer((client) => {
      if (reset) {
        client.once('data', () => client.resetAndDestroy())
        return
      }
      const upstream = net.connect(target.port, HOST)
      client.pipe(upstream).pipe(client)
      client.on('error', () => upstream.destroy())
      upstream.on('error', () => client.destroy())
    })
    const relayPort = await listen(relay)
    const cache = new SessionCache()
    const dispatcher = cache.dispatcher({ connect: { ca: cert } })
    try {
      await (await undici.request(`https://${HOST}:${relayPort}/`, { dispatcher })).body.text()
      assert.equal(cache.size, 1)
      reset = true
      await assert.rejects(undici.request(`https://${HOST}:${relayPort}/`, { dispatcher }), { code: 'ECONNRESET' })
      assert.equal(cache.size, 0)
    } finally {
      await dispatcher.close()
      await close(relay)
      await target.close()
    }
  })
})

describe('the undici majors the built-in fetch accepts', () => {
  const majors = [
    ['undici-6', 6],
    ['undici', 7],
    // undici 8 does not even load on Node 20.
    ...(NODE_MAJOR >= 22 ? [['undici-8', 8]] : []),
  ]
  for (const [name, major] of majors) {
    test(`undici ${major} on Node ${NODE_MAJOR}: refused with ERR_TLS_TICKET_UNDICI_VERSION exactly where fetch cannot use its Agent`, async () => {
      const module_ = require(name)
      const target = await ringServer()
      const cache = new SessionCache()
      try {
        let refused = null
        try {
          checkBuiltinFetch(major)
        } catch (err) {
          refused = err
        }
        if (refused) {
          assert.equal(refused.code, 'ERR_TLS_TICKET_UNDICI_VERSION')
          assert.equal(thrown(() => cache.dispatcher({ undici: module_, connect: { ca: cert } })).code, 'ERR_TLS_TICKET_UNDICI_VERSION')
          // The refusal is not overcautious: the built-in fetch fails with such an Agent.
          const agent = new module_.Agent({ connect: { ca: cert } })
          try {
            await assert.rejects(fetch(target.url, { dispatcher: agent }), TypeError)
          } finally {
            await agent.close()
          }
          assert.deepEqual(target.reused, [])
        } else {
          const dispatcher = cache.dispatcher({ undici: module_, connect: { ca: cert } })
          try {
            for (let i = 0; i < 2; i++) assert.equal(await (await fetch(target.url, { dispatcher })).text(), 'HTTP/1.1')
          } finally {
            await dispatcher.close()
          }
          assert.deepEqual(target.reused, [false, true])
        }
      } finally {
        await target.close()
      }
    })
  }

  test('which majors are refused, per Node version', () => {
    const refused = (major) => {
      try {
        checkBuiltinFetch(major)
        return false
      } catch (err) {
        assert.equal(err.code, 'ERR_TLS_TICKET_UNDICI_VERSION')
        return true
      }
    }
    const builtin = Number(process.versions.undici.split('.')[0])
    assert.deepEqual([6, 7, 8].map(refused), builtin >= 8 ? [true, false, false] : [false, false, true])
  })
})

describe('bad input', () => {
  test('options refused with Node-style codes', () => {
    const cache = new SessionCache()
    assert.equal(thrown(() => cache.dispatcher(null)).code, 'ERR_INVALID_ARG_TYPE')
    assert.equal(thrown(() => cache.dispatcher({ connect: () => {} })).code, 'ERR_INVALID_ARG_VALUE')
    assert.equal(thrown(() => cache.dispatcher({ connect: 'x' })).code, 'ERR_INVALID_ARG_TYPE')
    assert.equal(thrown(() => cache.dispatcher({ undici: {} })).code, 'ERR_INVALID_ARG_TYPE')
    assert.equal(thrown(() => cache.dispatcher({ undici: 'undici' })).code, 'ERR_INVALID_ARG_TYPE')
    assert.equal(thrown(() => cache.undiciConnect({ allowH2: 'yes' })).code, 'ERR_INVALID_ARG_TYPE')
    assert.equal(thrown(() => cache.undiciConnect({ timeout: -1 })).code, 'ERR_INVALID_ARG_TYPE')
    assert.equal(thrown(() => cache.undiciConnect([])).code, 'ERR_INVALID_ARG_TYPE')
    // Agent options undici itself refuses, with its own error.
    assert.equal(thrown(() => cache.dispatcher({ allowH2: 'yes' })).code, 'ERR_INVALID_ARG_TYPE')
  })
})
