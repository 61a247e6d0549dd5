'use strict'

// exportKeys() and `tls-ticket-keys edge` against real HAProxy and nginx on loopback (as
// interop.test.js): rings from one secret, rotating every 3 s, and a client that goes back and
// forth between a Node server and the server it shares with, offering its newest session.
// EDGE_ROTATIONS (default 3) sets how many rotations the daemon test watches; the report's
// measurement runs it with 10.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const diagnosticsChannel = require('node:diagnostics_channel')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const { randomBytes } = require('node:crypto')
const { TicketKeyRing, attach, exportKeys, generateTicketKeys } = require('..')
const { swapSecrets } = require('../lib/key-files.js')
const { key, cert, HOST, listen, close } = require('../test-support/helpers.js')
const { available, startNginx, startHaproxy } = require('../test-support/peer-servers.js')

const missing = ['nginx', 'haproxy'].filter((c) => !available(c))
const skip = missing.length > 0 && !process.env.CI ? `needs ${missing.join(' and ')}` : false
const INTERVAL = 3
// A TLS 1.2 session keeps its creation time when a ticket renews it, and attach() makes the
// ring's ticketLifetime the Node server's session timeout: a client that resumes for 10 and
// more seconds needs a longer lifetime than the 3 s interval. HAProxy then keeps only the
// newest of the ring's previous keys (truncate: true); the client's newest session is always
// under a key it holds.
const LIFETIME = 60
const RING = { rotationInterval: INTERVAL, ticketLifetime: LIFETIME, cipher: 'aes-256-cbc' }
const HAPROXY_TRUNCATE = true
const CLI = path.join(__dirname, '..', 'bin', 'tls-ticket-keys.js')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const epochOf = (t = Date.now()) => Math.floor(t / (INTERVAL * 1000))

function visit(port, { version, session }) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: HOST, port, ca: cert, servername: 'localhost', session, minVersion: version, maxVersion: version })
    const sessions = []
    let reused = null
    let ticket = null
    let current = null
    socket.on('session', (s) => sessions.push(s))
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused()
      ticket = socket.getTLSTicket()?.subarray(0, 16).toString('hex') ?? null
      // TLS 1.2: a server that renews a ticket on a resumed connection sends a new one, but the
      // client emits no 'session' for it; the connection's session carries it.
      current = socket.getSession() ?? null
      socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('close', () => resolve({ reused, sessions, ticket, current }))
  })
}

function nodeHttpServer() {
  const server = tls.createServer({ key, cert }, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nnode\n'))
    socket.on('error', () => {})
  })
  server.on('tlsClientError', () => {})
  return server
}

/**
 * A client that alternates between `ports`, offering its newest session. TLS 1.2 sessions are
 * offered again and again; a TLS 1.3 ticket once (the client of Node 22 and later offers a used
 * ticket no more), so with 1.3 a reconnection offers the newest ticket not yet used, and one
 * with none left to offer is a full handshake by design (a Node server sends no ticket on a
 * resumed connection: interop.test.js).
 */
class Client {
  constructor(version) {
    this.version = version
    this.fresh = []
    this.latest = undefined
    this.results = []
  }

  async visit(port, label) {
    const session = this.version === 'TLSv1.2' ? this.latest : this.fresh.pop()
    const r = await visit(port, { version: this.version, session })
    this.results.push({ label, offered: session !== undefined, reused: r.reused, msAfterBoundary: Date.now() % (INTERVAL * 1000) })
    // The newest session: the last one the server sent, else (TLS 1.2, renewed) the connection's own.
    this.latest = r.sessions.at(-1) ?? r.current ?? this.latest
    this.fresh.push(...r.sessions)
    return r
  }

  /** Reconnections that offered a session and did not resume. */
  get lost() {
    return this.results.slice(1).filter((r) => r.offered && !r.reused)
  }


  summary() {
    const later = this.results.slice(1)
    const offered = later.filter((r) => r.offered)
    return `${this.version}: ${offered.filter((r) => r.reused).length}/${offered.length} offers resumed, ` +
      `${later.filter((r) => r.reused).length}/${later.length} reconnections`
  }
}

/** HAProxy's key names for `keyFile` (previous, current, next), from its runtime API. */
async function haproxyNames(haproxy, keyFile) {
  const answer = await haproxy.command(`show tls-keys ${keyFile}`)
  return answer.split('\n').filter((l) => /^\d+\.\d+ /.test(l))
    .map((l) => Buffer.from(l.split(' ')[1], 'base64').subarray(0, 16).toString('hex'))
}

/** The ring's window as HAProxy should hold it. */
function windowOf(ring) {
  const keys = ring.keys()
  const name = (state) => keys.find((k) => k.state === state)?.name
  return [name('previous'), name('current'), name('next')]
}

/** Polls HAProxy until it holds `ring`'s window; resolves with the milliseconds after `since`, or null. */
async function haproxyAgrees(haproxy, keyFile, ring, since, tries = 300) {
  for (let i = 0; i < tries; i++) {
    const names = await haproxyNames(haproxy, keyFile).catch(() => [])
    if (JSON.stringify(names) === JSON.stringify(windowOf(ring))) return Date.now() - since
    await sleep(10)
  }
  return null
}

/**
 * From each of the next `rotations` epoch boundaries, polls HAProxy every 5 ms until it holds
 * the ring's new window: the milliseconds from each boundary to HAProxy agreeing (null if it
 * did not within 3 s).
 */
async function boundaryLags(haproxy, keyFile, ring, rotations) {
  const lags = []
  for (let n = 0; n < rotations; n++) {
    const boundary = (epochOf() + 1) * INTERVAL * 1000
    await sleep(boundary - Date.now() + 1)
    let lag = null
    for (let i = 0; i < 600 && Date.now() - boundary < 3000; i++) {
      const names = await haproxyNames(haproxy, keyFile).catch(() => [])
      if (JSON.stringify(names) === JSON.stringify(windowOf(ring))) {
        lag = Date.now() - boundary
        break
      }
      await sleep(5)
    }
    lags.push(lag)
  }
  return lags
}

async function until(predicate, ms = 10_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await predicate()) return true
    await sleep(20)
  }
  return false
}

const haproxyFileText = () => `${[0, 1, 2].map(() => swapSecrets(generateTicketKeys(80)).toString('base64')).join('\n')}\n`

/** Node server attached to a ring from `secret`, sharing with `peer`. */
async function nodeServer(secret, peer, cleanup) {
  const ring = new TicketKeyRing({ ...RING, secret })
  const server = nodeHttpServer()
  attach(server, ring, { mode: 'native', shareWith: peer })
  const port = await listen(server)
  cleanup.push(async () => { await close(server); ring.destroy() })
  return { ring, server, port }
}

async function runCleanup(cleanup) {
  for (const fn of cleanup.reverse()) await fn().catch(() => {})
}

/**
 * Alternates both clients between the Node server and the peer until `rotations` epoch
 * boundaries have passed; at each boundary `onBoundary()` runs. Bounded by the clock and a
 * count of visits.
 */
async function alternate(nodePort, peerPort, rotations, onBoundary) {
  const clients = [new Client('TLSv1.2'), new Client('TLSv1.3')]
  let epoch = epochOf()
  const lastEpoch = epoch + rotations
  let turn = 0
  for (let i = 0; i < 2000 && epochOf() <= lastEpoch; i++) {
    const [port, label] = turn++ % 2 === 0 ? [nodePort, 'node'] : [peerPort, 'peer']
    for (const c of clients) await c.visit(port, label)
    if (epochOf() !== epoch) {
      epoch = epochOf()
      await onBoundary?.(epoch)
    }
    await sleep(100)
  }
  return clients
}

describe('exportKeys() keeps HAProxy and nginx on the ring', { skip, concurrency: 1 }, () => {
  test('HAProxy: runtime API pushes, no reload; Node and HAProxy resume each other across rotations', async (t) => {
    const cleanup = []
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-export-haproxy-'))
    cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }))
    try {
      const secret = randomBytes(32)
      const node = await nodeServer(secret, 'haproxy', cleanup)
      const haproxy = await startHaproxy(dir, { cert, key, frontends: [{ name: 'edge', keysText: haproxyFileText() }] })
      cleanup.push(() => haproxy.stop())
      const keyFile = haproxy.keysFiles.edge
      const ring = new TicketKeyRing({ ...RING, secret })
      cleanup.push(async () => ring.destroy())
      const exporter = exportKeys(ring, { haproxy: { socket: haproxy.socketPath, keyFile, truncate: HAPROXY_TRUNCATE } })
      cleanup.push(() => exporter.close())
      assert.ok(await until(() => exporter.stats().confirmed >= 1), 'first push confirmed')
      assert.deepEqual(await haproxyNames(haproxy, keyFile), windowOf(node.ring))
      const [clients, lags] = await Promise.all([
        alternate(node.port, haproxy.ports.edge, 3),
        boundaryLags(haproxy, keyFile, node.ring, 3),
      ])
      t.diagnostic(`boundary -> show tls-keys agreeing: ${lags.join(', ')} ms; the exporter's own last: ${exporter.stats().boundaryLagMs} ms`)
      assert.ok(lags.every((l) => l !== null), 'show tls-keys agrees with the ring after each boundary')
      for (const c of clients) t.diagnostic(c.summary())
      assert.ok(lags.length >= 3)
      for (const c of clients) assert.deepEqual(c.lost, [], c.summary())
      const v12 = clients[0].results.slice(1)
      assert.ok(v12.every((r) => r.reused), 'TLS 1.2: every reconnection resumes')
      assert.ok(clients[1].results.slice(1).filter((r) => r.reused).length >= v12.length / 2)
      assert.equal(haproxy.pid, (await haproxyPid(haproxy)), 'HAProxy was never reloaded')
      const stats = exporter.stats()
      assert.equal(stats.failures, 0)
      assert.ok(stats.pushes >= 3 + 3, `pushes: ${stats.pushes}`)
    } finally {
      await runCleanup(cleanup)
    }
  })

  test('nginx: key files, then a graceful reload; the master PID stays, Node and nginx resume each other', async (t) => {
    const cleanup = []
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-export-nginx-'))
    cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }))
    try {
      const secret = randomBytes(32)
      const node = await nodeServer(secret, 'nginx', cleanup)
      const keysDir = path.join(dir, 'keys')
      const ring = new TicketKeyRing({ ...RING, secret })
      cleanup.push(async () => ring.destroy())
      // The files must exist before nginx starts: a first exporter writes them.
      const first = exportKeys(ring, { nginx: { dir: keysDir, reload: ['true'] } })
      assert.ok(await until(() => first.stats().reloads >= 1))
      await first.close()
      const names = fs.readdirSync(keysDir).sort()
      assert.deepEqual(names, ['current.key', 'next.key', ...Array.from({ length: LIFETIME / INTERVAL }, (_, i) => `previous-${i + 1}.key`)].sort())
      for (const f of names) assert.equal(fs.statSync(path.join(keysDir, f)).mode & 0o777, 0o600)
      const lines = exportKeys.nginxConfig(ring, keysDir).trim().split('\n')
      const order = ['current.key', 'next.key', ...Array.from({ length: LIFETIME / INTERVAL }, (_, i) => `previous-${i + 1}.key`)]
      assert.deepEqual(lines, order.map((f) => `ssl_session_ticket_key ${path.join(keysDir, f)};`))
      const keyPaths = lines.map((l) => l.split(' ')[1].replace(/;$/, ''))
      fs.mkdirSync(path.join(dir, 'nginx'))
      const nginx = await startNginx(path.join(dir, 'nginx'), { cert, key, keyPaths })
      cleanup.push(() => nginx.stop())
      const exporter = exportKeys(ring, { nginx: { dir: keysDir, reload: nginx.reloadCommand } })
      cleanup.push(() => exporter.close())
      assert.ok(await until(() => exporter.stats().reloads >= 1))
      const clients = await alternate(node.port, nginx.port, 3)
      for (const c of clients) t.diagnostic(c.summary())
      for (const c of clients) assert.deepEqual(c.lost, [], c.summary())
      assert.ok(clients[0].results.slice(1).every((r) => r.reused), 'TLS 1.2: every reconnection resumes')
      assert.equal(fs.readFileSync(path.join(dir, 'nginx', 'nginx.pid'), 'utf8').trim(), String(nginx.pid), 'the same nginx master')
      const stats = exporter.stats()
      assert.equal(stats.failures, 0)
      assert.ok(stats.reloads >= 3, `reloads: ${stats.reloads}`)
      // nginx's layout for AES-256: name | hmac | aes, the ring's own; current.key holds the current key.
      const current = fs.readFileSync(path.join(keysDir, 'current.key'))
      assert.equal(current.length, 80)
      assert.equal(current.subarray(0, 16).toString('hex'), windowOf(ring)[1])
      await exporter.close() // a write may be under way until then
      assert.equal(fs.readdirSync(keysDir).filter((f) => f.endsWith('.tmp')).length, 0, 'no temporary file left')
    } finally {
      await runCleanup(cleanup)
    }
  })

  test('faults: HAProxy\'s socket gone for an interval, then back; Node keeps resuming; one warning each way', async () => {
    const cleanup = []
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-export-fault-'))
    cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }))
    const warnings = []
    const onWarning = (w) => warnings.push(w)
    process.on('warning', onWarning)
    cleanup.push(async () => process.off('warning', onWarning))
    const published = []
    const onError = (m) => published.push(m)
    diagnosticsChannel.subscribe('tls-ticket-keys:store-error', onError)
    cleanup.push(async () => diagnosticsChannel.unsubscribe('tls-ticket-keys:store-error', onError))
    try {
      const secret = randomBytes(32)
      const node = await nodeServer(secret, 'haproxy', cleanup)
      const haproxy = await startHaproxy(dir, { cert, key, frontends: [{ name: 'edge', keysText: haproxyFileText() }] })
      cleanup.push(() => haproxy.stop())
      const keyFile = haproxy.keysFiles.edge
      const ring = new TicketKeyRing({ ...RING, secret })
      cleanup.push(async () => ring.destroy())
      const exporter = exportKeys(ring, { haproxy: { socket: haproxy.socketPath, keyFile, truncate: HAPROXY_TRUNCATE } })
      cleanup.push(() => exporter.close())
      assert.ok(await until(() => exporter.stats().confirmed >= 1))
      const away = `${haproxy.socketPath}.away`
      fs.renameSync(haproxy.socketPath, away)
      let moved = true
      cleanup.push(async () => { if (moved) fs.renameSync(away, haproxy.socketPath) })
      // One full interval without HAProxy: a boundary passes. Node keeps resuming its own sessions.
      const client = new Client('TLSv1.2')
      const end = Date.now() + INTERVAL * 1000 + 500
      for (let i = 0; i < 100 && Date.now() < end; i++) {
        await client.visit(node.port, 'node')
        await sleep(100)
      }
      assert.ok(client.results.slice(1).every((r) => r.reused), 'Node servers never fail')
      const during = exporter.stats()
      assert.ok(during.failures >= 2, `failures: ${during.failures}`)
      assert.equal(during.down, true)
      assert.equal(during.lastError.code, 'ENOENT')
      fs.renameSync(away, haproxy.socketPath)
      moved = false
      const back = Date.now()
      const lag = await haproxyAgrees(haproxy, keyFile, node.ring, back)
      assert.notEqual(lag, null, 'the current window is pushed once HAProxy answers again')
      assert.ok(await until(() => exporter.stats().down === false))
      const codes = warnings.map((w) => w.code)
      assert.deepEqual(codes.filter((c) => c.startsWith('TLS_TICKET_EXPORT')), ['TLS_TICKET_EXPORT_FAILING', 'TLS_TICKET_EXPORT_RECOVERED'])
      assert.ok(published.length >= 2 && published.every((m) => m.operation.startsWith('haproxy') && m.rings[0] === ring.name))
      // No key bytes anywhere in what was said.
      const said = JSON.stringify([published, warnings.map((w) => w.message), exporter.stats()])
      for (const k of [ring.getTicketKeys()]) assert.ok(!said.includes(k.subarray(16).toString('base64').slice(0, 20)))
      assert.ok(!said.includes(secret.toString('base64')))
    } finally {
      await runCleanup(cleanup)
    }
  })

  test('faults: a failing reload command is reported, counted and retried until it works', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-export-reload-'))
    const ring = new TicketKeyRing({ ...RING, secret: randomBytes(32) })
    const published = []
    const onError = (m) => published.push(m)
    diagnosticsChannel.subscribe('tls-ticket-keys:store-error', onError)
    const flag = path.join(dir, 'reload-works')
    const reload = [process.execPath, '-e', `process.exit(require('fs').existsSync(${JSON.stringify(flag)}) ? 0 : 3)`]
    const exporter = exportKeys(ring, { nginx: { dir: path.join(dir, 'keys'), reload } })
    const failures = []
    exporter.on('failure', (e) => failures.push(e))
    try {
      assert.ok(await until(() => exporter.stats().failures >= 3))
      const s = exporter.stats()
      assert.equal(s.reloads, 0)
      assert.ok(s.retries >= 1, `retries: ${s.retries}`)
      assert.equal(s.lastError.code, 'ERR_TLS_TICKET_EXPORT_RELOAD')
      assert.match(s.lastError.message, /exited with code 3/)
      assert.ok(published.some((m) => m.operation === 'nginx reload' && m.error.code === 'ERR_TLS_TICKET_EXPORT_RELOAD'))
      assert.equal(failures[0].operation, 'nginx reload')
      fs.writeFileSync(flag, '')
      assert.ok(await until(() => exporter.stats().reloads >= 1))
      assert.equal(exporter.stats().down, false)
    } finally {
      diagnosticsChannel.unsubscribe('tls-ticket-keys:store-error', onError)
      await exporter.close()
      ring.destroy()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('HAProxy\'s three keys: a ticketLifetime over the rotationInterval is refused, or truncated on request and counted', async () => {
    const ring = new TicketKeyRing({ rotationInterval: INTERVAL, ticketLifetime: 3 * INTERVAL, secret: randomBytes(32), cipher: 'aes-256-cbc' })
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-export-bound-'))
    let haproxy, exporter
    try {
      assert.throws(() => exportKeys(ring, { haproxy: { socket: '/nonexistent', keyFile: '/nonexistent' } }), (err) => {
        assert.equal(err.code, 'ERR_OUT_OF_RANGE')
        assert.match(err.message, /ticketLifetime.*rotationInterval \(3\).*truncate: true/s)
        return true
      })
      assert.throws(() => exportKeys(ring, { haproxy: { socket: 's', keyFile: 'k', truncate: 'yes' } }), { code: 'ERR_INVALID_ARG_TYPE' })
      assert.throws(() => exportKeys(ring, { nginx: { dir, reload: 'nginx -s reload' } }), { code: 'ERR_INVALID_ARG_TYPE' })
      assert.throws(() => exportKeys(ring, { nginx: { dir, reload: ['true'] }, haproxy: {} }), { code: 'ERR_INVALID_ARG_VALUE' })
      haproxy = await startHaproxy(dir, { cert, key, frontends: [{ name: 'edge', keysText: haproxyFileText() }] })
      exporter = exportKeys(ring, { haproxy: { socket: haproxy.socketPath, keyFile: haproxy.keysFiles.edge, truncate: true } })
      assert.ok(await until(() => exporter.stats().confirmed >= 1))
      // A secret ring holds three previous keys here; HAProxy one.
      assert.equal(exporter.stats().truncatedKeys, 2)
    } finally {
      await exporter?.close()
      await haproxy?.stop()
      ring.destroy()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('tls-ticket-keys edge: a daemon feeds nginx and HAProxy; Node servers from the same secret resume with both', async (t) => {
    const rotations = Number(process.env.EDGE_ROTATIONS ?? 3)
    const cleanup = []
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-edge-'))
    cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }))
    try {
      const secret = randomBytes(32)
      const nodeHa = await nodeServer(secret, 'haproxy', cleanup)
      const nodeNginx = await nodeServer(secret, 'nginx', cleanup)
      fs.mkdirSync(path.join(dir, 'haproxy'))
      fs.mkdirSync(path.join(dir, 'nginx'))
      const haproxy = await startHaproxy(path.join(dir, 'haproxy'), { cert, key, frontends: [{ name: 'edge', keysText: haproxyFileText() }] })
      cleanup.push(() => haproxy.stop())
      const keysDir = path.join(dir, 'keys')
      const nginxDir = path.join(dir, 'nginx')
      const reload = ['nginx', '-p', nginxDir, '-e', `${nginxDir}/logs/error.log`, '-c', `${nginxDir}/nginx.conf`, '-s', 'reload']
      const args = [CLI, 'edge', '--secret-env', 'EDGE_SECRET', '--rotation-interval', String(INTERVAL), '--ticket-lifetime', String(LIFETIME),
        '--haproxy-socket', haproxy.socketPath, '--haproxy-keyfile', haproxy.keysFiles.edge, '--haproxy-truncate', '--nginx-dir', keysDir, '--nginx-reload', reload.join(' ')]
      const daemon = spawn(process.execPath, args, { env: { ...process.env, EDGE_SECRET: secret.toString('base64') }, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      daemon.stdout.on('data', (d) => { out += d })
      daemon.stderr.on('data', (d) => { out += d })
      cleanup.push(async () => { if (daemon.exitCode === null) { daemon.kill('SIGKILL'); await once(daemon, 'exit') } })
      // The daemon writes nginx's files first; its reload fails until nginx runs, and is retried.
      assert.ok(await until(() => fs.existsSync(path.join(keysDir, 'previous-1.key'))), out)
      const config = await runCli(['edge', '--secret-env', 'EDGE_SECRET', '--rotation-interval', String(INTERVAL), '--ticket-lifetime', String(LIFETIME), '--nginx-dir', keysDir, '--print-nginx-config'], secret)
      const keyPaths = config.trim().split('\n').map((l) => l.split(' ')[1].replace(/;$/, ''))
      const nginx = await startNginx(nginxDir, { cert, key, keyPaths })
      cleanup.push(() => nginx.stop())
      assert.ok(await until(() => /nginx: reachable again/.test(out), 15_000), out)
      assert.ok(await until(async () => JSON.stringify(await haproxyNames(haproxy, haproxy.keysFiles.edge)) === JSON.stringify(windowOf(nodeHa.ring))), out)
      const watching = boundaryLags(haproxy, haproxy.keysFiles.edge, nodeHa.ring, rotations)
      const pairs = [[nodeHa.port, haproxy.ports.edge, 'Node/HAProxy'], [nodeNginx.port, nginx.port, 'Node/nginx']]
      const clients = pairs.map(() => [new Client('TLSv1.2'), new Client('TLSv1.3')])
      const epoch = epochOf()
      const lastEpoch = epoch + rotations
      for (let i = 0; i < 20_000 && epochOf() <= lastEpoch; i++) {
        for (const [p, [nodePort, peerPort]] of pairs.entries()) {
          for (const c of clients[p]) await c.visit(i % 2 === 0 ? nodePort : peerPort, i % 2 === 0 ? 'node' : 'peer')
        }
        await sleep(100)
      }
      const lags = await watching
      assert.ok(lags.every((l) => l !== null), `HAProxy agrees after each boundary: ${lags.join(', ')}`)
      const all = clients.flat()
      pairs.forEach(([, , label], p) => clients[p].forEach((c) => t.diagnostic(`${label} ${c.summary()}`)))
      const later = all.flatMap((c) => c.results.slice(1))
      t.diagnostic(`${rotations} rotations: ${later.filter((r) => r.reused).length}/${later.length} reconnections resumed, ` +
        `${later.filter((r) => r.offered && r.reused).length}/${later.filter((r) => r.offered).length} offers; ` +
        `boundary -> HAProxy agreeing: ${lags.join(', ')} ms (max ${Math.max(...lags)})`)
      for (const c of all) assert.deepEqual(c.lost, [], c.summary())
      for (const c of all.filter((c) => c.version === 'TLSv1.2')) assert.ok(c.results.slice(1).every((r) => r.reused), c.summary())
      assert.equal(fs.readFileSync(path.join(nginxDir, 'nginx.pid'), 'utf8').trim(), String(nginx.pid))
      daemon.kill('SIGTERM')
      const [code] = await once(daemon, 'exit')
      assert.equal(code, 0, out)
      assert.ok(out.match(/haproxy: encrypts with/g).length >= rotations, out)
      assert.ok(out.match(/nginx: encrypts with/g).length >= rotations, out)
      assert.match(out, /nginx: nginx reload failed: ERR_TLS_TICKET_EXPORT_RELOAD/)
      assert.match(out, /SIGTERM, stopping/)
      assert.ok(!out.includes(secret.toString('base64')))
    } finally {
      await runCleanup(cleanup)
    }
  })
})

async function haproxyPid(haproxy) {
  const info = await haproxy.command('show info')
  return Number(/^Pid: (\d+)/m.exec(info)[1])
}

async function runCli(args, secret) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, EDGE_SECRET: secret.toString('base64') }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  await once(child, 'exit')
  return out
}
