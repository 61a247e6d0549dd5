'use strict'

// The client half, against real servers on loopback: Node servers with and without a ring,
// and openssl s_server.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const https = require('node:https')
const tls = require('node:tls')
const { TicketKeyRing, attach, SessionCache, inspectSession } = require('..')
const { key, cert, HOST, tlsServer, listen, close } = require('../test-support/helpers.js')
const { makeSelfSignedCertificate } = require('../lib/selfsigned.js')
const { freePort, stopChild, waitForPort } = require('../test-support/fleet.js')
const { installKeyWindow } = require('../test-support/key-window.js')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for a TLS socket to finish; resolves with whether it resumed, or rejects on error. */
function finished(socket) {
  return new Promise((resolve, reject) => {
    let reused = null
    socket.on('secureConnect', () => { reused = socket.isSessionReused() })
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('close', () => resolve(reused))
  })
}

function options(port, version, extra = {}) {
  return { host: HOST, port, ca: cert, servername: 'localhost', minVersion: version, maxVersion: version, ...extra }
}

function get(agent, port, version) {
  return new Promise((resolve, reject) => {
    https.get({ ...options(port, version), agent, path: '/' }, (res) => {
      const reused = res.socket.isSessionReused()
      res.resume()
      res.on('end', () => resolve(reused))
    }).on('error', reject)
  })
}

// A server with a window of two keys (key-window.js). Sessions stay valid for Node's default 300 s, so only the key decides. A client that keeps
// offering its first ticket instead of the renewed one loses it two rotations later.
async function windowServer(app) {
  const server = app ? https.createServer({ key, cert }, app) : tlsServer()
  const window = installKeyWindow(server)
  const port = await listen(server)
  return { server, port, ring: window }
}

async function sequence(count, ring, connectOnce) {
  const flags = []
  for (let i = 0; i < count; i++) {
    flags.push(await connectOnce())
    if (i % 3 === 2) ring.rotate()
  }
  return flags.slice(1).filter(Boolean).length
}

describe('resumption over 20 connections with rotate() in between', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3']) {
    test(`${version}: cache.connect resumes every time; tls.connect with the last 'session' does not keep up`, async () => {
      const { ring, server, port } = await windowServer()
      try {
        const cache = new SessionCache()
        const withCache = await sequence(20, ring, () => finished(cache.connect(options(port, version))))
        let last
        const plain = await sequence(20, ring, () => {
          const socket = tls.connect({ ...options(port, version), session: last })
          socket.on('session', (s) => { last = s })
          return finished(socket)
        })
        assert.equal(withCache, 19, `cache ${withCache}/19, plain ${plain}/19`)
        // TLS 1.2 renews tickets without a 'session' event, so the plain client keeps
        // offering a ticket whose key is dropped two rotations later.
        if (version === 'TLSv1.2') assert.ok(plain < 19, `plain ${plain}/19`)
        assert.equal(cache.stats().resumed, 19)
        assert.equal(cache.stats().unreadable, 0, 'every session this Node hands out is readable')
      } finally {
        await close(server)
      }
    })

    test(`${version}: cache.httpsAgent resumes every time; new https.Agent() does not keep up`, async () => {
      const { ring, server, port } = await windowServer((req, res) => res.end('ok'))
      const cache = new SessionCache()
      const ours = cache.httpsAgent({ keepAlive: false })
      const nodes = new https.Agent({ keepAlive: false })
      try {
        const withCache = await sequence(20, ring, () => get(ours, port, version))
        const withAgent = await sequence(20, ring, () => get(nodes, port, version))
        assert.equal(withCache, 19, `cache agent ${withCache}/19, https.Agent ${withAgent}/19`)
        if (version === 'TLSv1.2') assert.ok(withAgent < 19, `https.Agent ${withAgent}/19`)
      } finally {
        ours.destroy()
        nodes.destroy()
        await close(server)
      }
    })
  }

  test('keep-alive: requests on one socket, then new sockets resume', async () => {
    const ring = new TicketKeyRing()
    const server = https.createServer({ key, cert }, (req, res) => res.end('ok'))
    attach(server, ring)
    const port = await listen(server)
    const agent = new SessionCache().httpsAgent({ keepAlive: true, maxSockets: 1 })
    try {
      const flags = []
      for (let i = 0; i < 3; i++) flags.push(await get(agent, port, 'TLSv1.3'))
      assert.deepEqual(flags, [false, false, false], 'one socket, kept alive')
      agent.destroy()
      await sleep(50)
      assert.equal(await get(agent, port, 'TLSv1.3'), true, 'a new socket resumes')
    } finally {
      agent.destroy()
      await close(server)
      ring.destroy()
    }
  })
})

test('TLS 1.3: concurrent connections offer different tickets (https.Agent offers one to all)', async () => {
  // A Node server whose ticket callback records the IV of every ticket it opens: the IV is
  // unique per ticket, so equal IVs mean a reused ticket.
  const keys = { hmac: crypto.randomBytes(16), aes: crypto.randomBytes(16), name: crypto.randomBytes(16) }
  const opened = []
  const server = https.createServer({ key, cert }, (req, res) => setTimeout(() => res.end('ok'), 30))
  server._sharedCreds.context.enableTicketKeyCallback()
  server._sharedCreds.context.onticketkeycallback = (name, iv, enc) => {
    if (enc) return [1, keys.hmac, keys.aes, keys.name, crypto.randomBytes(16)]
    opened.push(iv.toString('hex'))
    return [name.equals(keys.name) ? 1 : 0, keys.hmac, keys.aes]
  }
  try {
    const port = await listen(server)
    const ours = new SessionCache().httpsAgent({ keepAlive: false })
    const node = new https.Agent({ keepAlive: false })
    for (const [name, agent] of [['cache', ours], ['https.Agent', node]]) {
      opened.length = 0
      await get(agent, port, 'TLSv1.3') // a full handshake: two tickets
      await sleep(50)
      const reused = await Promise.all([get(agent, port, 'TLSv1.3'), get(agent, port, 'TLSv1.3')])
      const distinct = new Set(opened).size
      if (name === 'cache') {
        assert.deepEqual(reused, [true, true])
        assert.equal(distinct, 2, `cache: ${opened}`)
      } else {
        assert.equal(opened.length, 2)
        assert.equal(distinct, 1, `Node's Agent offers one ticket to both: ${opened}`)
      }
      agent.destroy()
    }
  } finally {
    await close(server)
  }
})

describe('what a session may be offered to', () => {
  test('never to another servername, ALPN list or port', async () => {
    const ring = new TicketKeyRing()
    const a = tlsServer({ ALPNProtocols: ['h2', 'http/1.1'] })
    const b = tlsServer()
    attach(a, ring)
    attach(b, ring)
    try {
      const [pa, pb] = [await listen(a), await listen(b)]
      const cache = new SessionCache()
      await finished(cache.connect(options(pa, 'TLSv1.3')))
      const base = cache.stats().offered
      await finished(cache.connect(options(pa, 'TLSv1.3', { servername: 'other.example', checkServerIdentity: () => undefined })))
      await finished(cache.connect(options(pa, 'TLSv1.3', { ALPNProtocols: ['h2'] })))
      await finished(cache.connect(options(pb, 'TLSv1.3')))
      await finished(cache.connect(options(pa, 'TLSv1.3', { ca: [cert, cert] })))
      assert.equal(cache.stats().offered, base, 'no session crossed to another origin')
      assert.equal(await finished(cache.connect(options(pa, 'TLSv1.3'))), true)
    } finally {
      await Promise.all([close(a), close(b)])
      ring.destroy()
    }
  })

  test('a cached session does not let a server with the wrong certificate through, and is evicted', async () => {
    const ring = new TicketKeyRing()
    const good = tlsServer()
    attach(good, ring)
    const port = await listen(good)
    const cache = new SessionCache()
    try {
      await finished(cache.connect(options(port, 'TLSv1.2')))
      assert.equal(cache.stats().tickets, 1)
    } finally {
      await close(good)
    }
    // Another server on the same address, with a certificate the client does not trust: the
    // cached session must not get the client in. (A server that held the ticket keys could
    // resume it: whoever has the keys is the server, as far as TLS can tell.)
    const other = makeSelfSignedCertificate()
    const impostor = tls.createServer({ key: other.key, cert: other.cert }, (s) => s.end('hi'))
    impostor.on('tlsClientError', () => {})
    const impostorRing = new TicketKeyRing()
    attach(impostor, impostorRing)
    impostor.listen(port, HOST)
    await new Promise((resolve) => impostor.once('listening', resolve))
    try {
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        await assert.rejects(finished(cache.connect(options(port, version))), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
      }
      assert.equal(cache.stats().tickets, 0, 'the ticket of the failed connection was evicted')
      assert.equal(impostorRing.stats().unknownKey, 1, 'the cached ticket was offered, and could not be opened')
    } finally {
      await close(impostor)
      ring.destroy()
      impostorRing.destroy()
    }
  })

  test('expired tickets are dropped, not offered', async () => {
    const ring = new TicketKeyRing({ ticketLifetime: 2 })
    const server = tlsServer()
    attach(server, ring)
    try {
      const port = await listen(server)
      const cache = new SessionCache()
      await finished(cache.connect(options(port, 'TLSv1.3')))
      assert.equal(cache.stats().tickets, 2, 'two TLS 1.3 tickets')
      await sleep(2300)
      assert.equal(await finished(cache.connect(options(port, 'TLSv1.3'))), false)
      assert.equal(cache.stats().offered, 0, 'the expired tickets were not offered')
    } finally {
      await close(server)
      ring.destroy()
    }
  })

  test('at most maxOrigins origins, least recently used out first; at most maxTicketsPerOrigin tickets', async () => {
    const ring = new TicketKeyRing()
    const servers = [tlsServer(), tlsServer(), tlsServer()]
    servers.forEach((s) => attach(s, ring))
    try {
      const ports = []
      for (const s of servers) ports.push(await listen(s))
      const cache = new SessionCache({ maxOrigins: 2, maxTicketsPerOrigin: 3 })
      for (let i = 0; i < 3; i++) await finished(cache.connect(options(ports[0], 'TLSv1.3')))
      assert.ok(cache.stats().tickets <= 3)
      await finished(cache.connect(options(ports[1], 'TLSv1.3')))
      await finished(cache.connect(options(ports[0], 'TLSv1.3'))) // 0 is now the most recent
      await finished(cache.connect(options(ports[2], 'TLSv1.3'))) // 1 goes
      assert.equal(cache.stats().origins, 2)
      assert.equal(await finished(cache.connect(options(ports[1], 'TLSv1.3'))), false, 'origin 1 was dropped')
      // ...and came back, pushing out origin 0, the least recently used now.
      assert.equal(cache.delete(`${HOST}:${ports[0]}`), false)
      assert.equal(cache.delete(`${HOST}:${ports[2]}`), true)
      assert.equal(await finished(cache.connect(options(ports[2], 'TLSv1.3'))), false, 'deleted')
      cache.clear()
      assert.deepEqual([cache.stats().origins, cache.stats().tickets], [0, 0])
    } finally {
      await Promise.all(servers.map(close))
      ring.destroy()
    }
  })

  test("ticketReuse: 'never' keeps TLS 1.3 tickets single-use", async () => {
    const ring = new TicketKeyRing()
    const server = tlsServer()
    attach(server, ring)
    try {
      const port = await listen(server)
      const cache = new SessionCache({ ticketReuse: 'never' })
      const flags = []
      for (let i = 0; i < 4; i++) flags.push(await finished(cache.connect(options(port, 'TLSv1.3'))))
      // Two tickets from the full handshake, none after a resumption (OpenSSL's default).
      assert.deepEqual(flags, [false, true, true, false])
    } finally {
      await close(server)
      ring.destroy()
    }
  })
})

// The intent of Node's test-https-agent-session-reuse.js and -session-eviction.js, for the
// cache's agent: one session per servername, never crossing; a failed connection evicts.
test('agent: sessions per servername never cross, and a TLS failure evicts', async () => {
  const ring = new TicketKeyRing()
  const server = https.createServer({ key, cert }, (req, res) => res.end(req.headers.host))
  attach(server, ring)
  const cache = new SessionCache()
  const agent = cache.httpsAgent({ keepAlive: false })
  let port
  // One function: a checkServerIdentity is part of the origin by identity (origin.js).
  const checkServerIdentity = () => undefined
  const request = (servername) => new Promise((resolve, reject) => {
    https.get({ host: HOST, port, ca: cert, servername, agent, checkServerIdentity },
      (res) => {
        const reused = res.socket.isSessionReused()
        res.resume()
        res.on('end', () => resolve(reused))
      }).on('error', reject)
  })
  try {
    port = await listen(server)
    const flags = []
    for (const name of ['a.example', 'b.example', 'a.example', 'b.example', 'c.example']) flags.push(await request(name))
    assert.deepEqual(flags, [false, false, true, true, false])
    assert.equal(cache.stats().origins, 3)
  } finally {
    await close(server)
  }
  // The same address now answers with a certificate the client does not trust.
  const other = makeSelfSignedCertificate()
  const impostor = https.createServer({ key: other.key, cert: other.cert }, (req, res) => res.end())
  impostor.on('tlsClientError', () => {})
  impostor.listen(port, HOST)
  await new Promise((resolve) => impostor.once('listening', resolve))
  try {
    await assert.rejects(new Promise((resolve, reject) => {
      https.get({ host: HOST, port, ca: cert, servername: 'a.example', agent, checkServerIdentity }, resolve)
        .on('error', reject)
    }), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
    assert.equal(cache.stats().origins, 2, "a.example's ticket was evicted")
  } finally {
    agent.destroy()
    await close(impostor)
    ring.destroy()
  }
})

test('against openssl s_server: resumes TLS 1.2 and TLS 1.3', async () => {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-s_server-'))
  fs.writeFileSync(`${dir}/key.pem`, key)
  fs.writeFileSync(`${dir}/cert.pem`, cert)
  const server = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-key', `${dir}/key.pem`,
    '-cert', `${dir}/cert.pem`, '-naccept', '100', '-quiet'], { stdio: ['pipe', 'ignore', 'ignore'] })
  try {
    await waitForPort(port)
    for (const version of ['TLSv1.2', 'TLSv1.3']) {
      const cache = new SessionCache()
      const flags = []
      for (let i = 0; i < 4; i++) {
        const socket = cache.connect(options(port, version))
        socket.once('secureConnect', () => setTimeout(() => socket.end(), 50))
        flags.push(await finished(socket))
      }
      assert.deepEqual(flags, [false, true, true, true], version)
    }
  } finally {
    await stopChild(server)
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('sessions say what they are, and nothing secret', async () => {
  const ring = new TicketKeyRing({ ticketLifetime: 1234 })
  const server = tlsServer()
  attach(server, ring)
  try {
    const port = await listen(server)
    let session
    const socket = tls.connect(options(port, 'TLSv1.2'))
    socket.on('session', (s) => { session = s })
    await finished(socket)
    const info = inspectSession(session)
    assert.equal(info.protocol, 'TLSv1.2')
    assert.equal(info.ticketLifetimeHint, 1234)
    assert.equal(info.ticketKeyName, ring.getTicketKeys().subarray(0, 16).toString('hex'))
    assert.ok(Math.abs(info.createdAt - Date.now()) < 5000)
    assert.equal(info.expiresAt - info.createdAt, 1234 * 1000)
    assert.throws(() => inspectSession(Buffer.from('not a session')), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => inspectSession('x'), { code: 'ERR_INVALID_ARG_TYPE' })
  } finally {
    await close(server)
    ring.destroy()
  }
})

test('bad input to SessionCache gives Node-style errors', () => {
  assert.throws(() => new SessionCache('x'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new SessionCache({ maxOrigins: 0 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new SessionCache({ maxTicketsPerOrigin: 1.5 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new SessionCache({ maxOrigins: '10' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => new SessionCache({ ticketReuse: 'always' }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
  const cache = new SessionCache()
  assert.throws(() => cache.connect(), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => cache.connect(null), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => cache.connect(true), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => cache.delete(443), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => cache.httpsAgent('x'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
})
