'use strict'

// One set of ticket keys shared by Node, nginx and HAProxy: real servers on loopback, started
// here (Debian's nginx and haproxy; .ci/run installs them). OpenSSL resumes a session only
// under the session id context it was made in, so `attach(..., { shareWith })` gives the Node
// server the context of the server it shares with.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const { TicketKeyRing, attach, generateTicketKeys } = require('..')
const { swapSecrets } = require('../lib/key-files.js')
const { key, cert, HOST, listen, close, run, thrown } = require('../test-support/helpers.js')
const { available, startNginx, startHaproxy } = require('../test-support/peer-servers.js')

const missing = ['nginx', 'haproxy'].filter((c) => !available(c))
// CI installs both: there a missing server is a failure, not a skip.
const skip = missing.length > 0 && !process.env.CI ? `needs ${missing.join(' and ')}` : false
const VERSIONS = ['TLSv1.2', 'TLSv1.3']

// Keys in the ring's layout (name | hmac | aes) and in each server's file format.
const haproxyLine = (k) => swapSecrets(k).toString('base64')
const haproxyFile = (keys) => `${keys.map(haproxyLine).join('\n')}\n`
// nginx: 80-byte files are name | hmac | aes, 48-byte ones name | aes | hmac.
const nginxFile = (k) => (k.length === 80 ? k : swapSecrets(k))

/**
 * One HTTP/1.1 request on a new TLS connection to 127.0.0.1:port (every server here closes
 * after its answer); resolves with whether it resumed, the last session the server gave, and
 * the key name of a TLS 1.2 ticket.
 */
function visit(port, { version, session }) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: HOST, port, ca: cert, servername: 'localhost', session, minVersion: version, maxVersion: version })
    let latest = null
    let reused = null
    socket.on('session', (s) => { latest = s })
    let ticket = null
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused()
      // A resumed connection may bring no new session: keep the one it resumed.
      latest ??= socket.getSession() ?? null
      ticket = socket.getTLSTicket() ?? null
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('close', () => {
      resolve({
        reused,
        session: latest,
        ticketKeyName: ticket && version === 'TLSv1.2' ? ticket.subarray(0, 16).toString('hex') : null,
      })
    })
  })
}

/** A Node TLS server that answers one HTTP request and closes, as nginx and HAProxy do here. */
function nodeHttpServer(options = {}) {
  const server = tls.createServer({ key, cert, ...options }, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nnode\n'))
    socket.on('error', () => {})
  })
  server.on('tlsClientError', () => {})
  return server
}

/** Whether a session made on `from` resumes on `to`. */
async function crosses(from, to, version) {
  const first = await visit(from, { version })
  assert.equal(first.reused, false)
  const second = await visit(to, { version, session: first.session })
  return second.reused
}

describe('a key file shared by Node, nginx and HAProxy', { skip }, () => {
  let dir, nginx, haproxy
  const nodeServers = []
  // previous, current, next: the HAProxy file's lines; nginx gets current first.
  const keys = [0, 1, 2].map(() => generateTicketKeys(80))
  const keys48 = [0, 1, 2].map(() => generateTicketKeys(48))
  const port = {}

  async function nodeServer(name, ring, options) {
    const server = nodeHttpServer()
    const handle = attach(server, ring, options)
    port[name] = await listen(server)
    nodeServers.push({ server, ring })
    return { server, ring, handle }
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-interop-'))
    fs.mkdirSync(path.join(dir, 'nginx'))
    fs.mkdirSync(path.join(dir, 'haproxy'))
    nginx = await startNginx(path.join(dir, 'nginx'), { cert, key, keyFiles: [keys[1], keys[2], keys[0]].map(nginxFile) })
    port.nginx = nginx.port
    await nodeServer('node-nginx', TicketKeyRing.fromHaproxy(haproxyFile(keys)), { mode: 'native', shareWith: 'nginx' })
    await nodeServer('node-haproxy', TicketKeyRing.fromHaproxy(haproxyFile(keys)), { mode: 'native', shareWith: 'haproxy' })
    await nodeServer('node-haproxy-128', TicketKeyRing.fromHaproxy(haproxyFile(keys48)), { mode: 'native', shareWith: 'haproxy' })
    haproxy = await startHaproxy(path.join(dir, 'haproxy'), {
      cert,
      key,
      frontends: [{ name: 'haproxy', keysText: haproxyFile(keys) }, { name: 'haproxy48', keysText: haproxyFile(keys48) }],
      balancers: [
        { name: 'lb-nginx', backends: [{ name: 'node', port: port['node-nginx'] }, { name: 'nginx', port: nginx.port }] },
        { name: 'lb-haproxy', backends: [{ name: 'node', port: port['node-haproxy'] }, { name: 'haproxy' }] },
      ],
    })
    Object.assign(port, haproxy.ports)
  })

  after(async () => {
    await nginx?.stop()
    await haproxy?.stop()
    for (const { server, ring } of nodeServers) {
      await close(server)
      ring.destroy()
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  // Each pair in both directions; the Node server in the mode and key size given.
  const pairs = [
    ['node-nginx', 'nginx', 'native, AES-256'],
    ['node-haproxy', 'haproxy', 'native, AES-256'],
    ['node-haproxy-128', 'haproxy48', 'native, AES-128'],
  ]
  for (const [node, peer, mode] of pairs) {
    for (const version of VERSIONS) {
      test(`${node} (${mode}) and ${peer} resume each other's sessions both ways, ${version}`, async () => {
        assert.equal(await crosses(port[node], port[peer], version), true, `${node} -> ${peer}`)
        assert.equal(await crosses(port[peer], port[node], version), true, `${peer} -> ${node}`)
      })
    }
  }

  test('nginx and HAProxy never resume each other\'s sessions: their own contexts differ, whatever the keys', async () => {
    for (const version of VERSIONS) {
      assert.equal(await crosses(port.nginx, port.haproxy, version), false)
      assert.equal(await crosses(port.haproxy, port.nginx, version), false)
      // A Node server takes one of the two contexts.
      assert.equal(await crosses(port['node-nginx'], port.haproxy, version), false)
      assert.equal(await crosses(port['node-haproxy'], port.nginx, version), false)
    }
  })

  // TLS 1.2: every reconnection resumes. TLS 1.3: a Node server sends no new ticket on a
  // resumed connection (plain Node too), and the OpenSSL 3.5 client of Node 22 and later does
  // not offer a used ticket to another server again, so there every other reconnection
  // resumes; a client that keeps both tickets of a full handshake does better.
  for (const [balancer, pair] of [['lb-nginx', 'Node and nginx'], ['lb-haproxy', 'Node and HAProxy']]) {
    for (const version of VERSIONS) {
      test(`behind a round-robin TCP balancer over ${pair}, one client resumes (${version})`, async (t) => {
        const flags = []
        let session
        for (let i = 0; i < 12; i++) {
          const r = await visit(port[balancer], { version, session })
          flags.push(r.reused)
          session = r.session
        }
        const resumed = flags.filter(Boolean).length
        t.diagnostic(`${resumed}/11 reconnections resumed`)
        if (version === 'TLSv1.2') assert.deepEqual(flags, [false, ...Array(11).fill(true)])
        else assert.ok(resumed >= 5 && flags.every((r, i) => r || i % 2 === 0), flags.join())
      })
    }
  }

  test('shareWith: bad values, client certificates and callback mode are refused with codes', () => {
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    try {
      assert.equal(thrown(() => attach(nodeHttpServer(), ring, { shareWith: 'apache' })).code, 'ERR_INVALID_ARG_VALUE')
      assert.equal(thrown(() => attach(nodeHttpServer(), ring, { shareWith: 42 })).code, 'ERR_INVALID_ARG_VALUE')
      const mtls = nodeHttpServer({ requestCert: true, ca: cert })
      const err = thrown(() => attach(mtls, ring, { shareWith: 'haproxy' }))
      assert.equal(err.code, 'ERR_INVALID_ARG_VALUE')
      assert.match(err.message, /client certificates/)
      assert.equal(mtls.sessionIdContext.length, 32, 'a refused attach leaves the server as it was')
      for (const shareWith of ['nginx', 'haproxy']) {
        const cb = thrown(() => attach(nodeHttpServer(), ring, { mode: 'callback', shareWith }))
        assert.equal(cb.code, 'ERR_INVALID_ARG_VALUE')
        assert.match(cb.message, /native mode/)
      }
    } finally {
      ring.destroy()
    }
  })

  test('a server that turns client certificates on later stops sharing, with a warning, and keeps its policy', async () => {
    const ring = TicketKeyRing.fromHaproxy(haproxyFile(keys))
    const server = nodeHttpServer()
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const handle = attach(server, ring, { mode: 'native', shareWith: 'haproxy' })
      assert.deepEqual(handle.toJSON(), { mode: 'native', shareWith: 'haproxy', detached: false })
      const p = await listen(server)
      assert.equal(await crosses(port.haproxy, p, 'TLSv1.2'), true)
      // Node reads requestCert from the server for each connection; setSecureContext() makes
      // the attachment compute the context again.
      server.requestCert = true
      server.rejectUnauthorized = false
      server.setSecureContext({ key, cert, ca: cert })
      assert.equal(await crosses(port.haproxy, p, 'TLSv1.2'), false, 'a session without a certificate from HAProxy')
      assert.equal(await crosses(port.haproxy, p, 'TLSv1.3'), false)
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(warnings.filter((w) => w.code === 'TLS_TICKET_SHARE_WITH_CLIENT_AUTH').length, 1)
      handle.detach()
      assert.equal(server.sessionIdContext.length, 32, 'detach() gives back the server\'s own context')
    } finally {
      process.off('warning', onWarning)
      await close(server)
      ring.destroy()
    }
  })

  test('rotating the key file everywhere, one server at a time, loses no resumption', async (t) => {
    const fresh = generateTicketKeys(80)
    const rotated = [keys[1], keys[2], fresh] // previous, current, next after one rotation
    const node = nodeServers.find((s) => s.server.address().port === port['node-nginx'])
    const nodeHa = nodeServers.find((s) => s.server.address().port === port['node-haproxy'])
    const servers = ['nginx', 'node-nginx', 'haproxy', 'node-haproxy']
    const sharing = (a, b) => (a.includes('nginx') === b.includes('nginx'))
    // What every server offers, before and at each step; each must resume wherever the
    // session id context matches.
    const table = []
    async function checkAll(step) {
      for (const version of VERSIONS) {
        for (const from of servers) {
          for (const to of servers.filter((s) => sharing(s, from))) {
            const resumed = await crosses(port[from], port[to], version)
            table.push({ step, version, from, to, resumed })
          }
        }
      }
    }
    // Sessions sealed before any rotation, offered to each server after it rotated.
    const before = {}
    for (const s of servers) before[s] = await visit(port[s], { version: 'TLSv1.2' })
    await checkAll('before')
    await nginx.reload([rotated[1], rotated[2], rotated[0]].map(nginxFile))
    await checkAll('nginx reloaded with the new files')
    const answer = await haproxy.command(`set ssl tls-key ${haproxy.keysFiles.haproxy} ${haproxyLine(fresh)}`)
    assert.match(answer, /TLS ticket key updated/)
    await checkAll("HAProxy's set ssl tls-key")
    for (const ring of [node.ring, nodeHa.ring]) ring.setTicketKeys(Buffer.concat([rotated[1], rotated[2], rotated[0]]))
    await checkAll('Node rings setTicketKeys')
    const lost = table.filter((r) => !r.resumed)
    t.diagnostic(`${table.length - lost.length}/${table.length} resumed`)
    assert.deepEqual(lost, [])
    // Each now encrypts with the new current key, and still opens the old one's sessions.
    for (const s of servers) {
      const later = await visit(port[s], { version: 'TLSv1.2', session: before[s].session })
      assert.equal(later.reused, true, `${s}: a session from before the rotation`)
      const { ticketKeyName } = await visit(port[s], { version: 'TLSv1.2' })
      assert.equal(ticketKeyName, rotated[1].subarray(0, 16).toString('hex'), `${s} seals with the new current key`)
    }
  })

  test('fromHaproxy refuses exactly the files that haproxy -c refuses, naming the same line', async () => {
    const good = keys.map(haproxyLine)
    const files = {
      good: `${good.join('\n')}\n`,
      'no final newline': good.join('\n'),
      'CR LF': `${good.join('\r\n')}\r\n`,
      'two keys': `${good.slice(0, 2).join('\n')}\n`,
      comment: `# keys\n${good.join('\n')}\n`,
      'blank line at the end': `${good.join('\n')}\n\n`,
      'trailing space': `${good[0]} \n${good.slice(1).join('\n')}\n`,
      'mixed sizes': `${good.join('\n')}\n${haproxyLine(keys48[0])}\n`,
      'no padding': `${good.map((l) => l.replace(/=+$/, '')).join('\n')}\n`,
    }
    const pem = path.join(dir, 'check.pem')
    fs.writeFileSync(pem, Buffer.concat([cert, key]), { mode: 0o600 })
    for (const [name, text] of Object.entries(files)) {
      const keysFile = path.join(dir, 'check.keys')
      fs.writeFileSync(keysFile, text, { mode: 0o600 })
      fs.writeFileSync(path.join(dir, 'check.cfg'), `frontend f\n  mode http\n  bind 127.0.0.1:1 ssl crt ${pem} tls-ticket-keys ${keysFile}\n`)
      const haproxySays = await run('haproxy', ['-c', '-f', path.join(dir, 'check.cfg')])
      let ours = null
      try {
        TicketKeyRing.fromHaproxy(text).destroy()
      } catch (err) {
        ours = err
      }
      assert.equal(ours === null, haproxySays.code === 0, `${name}: haproxy ${haproxySays.code === 0 ? 'accepts' : 'refuses'} it`)
      if (ours !== null) {
        assert.equal(ours.code, 'ERR_INVALID_ARG_VALUE')
        const line = /line (\d+)/.exec(haproxySays.stdout + haproxySays.stderr)
        if (line) assert.match(ours.message, new RegExp(`line ${line[1]}\\b`), name)
      }
    }
  })
})

