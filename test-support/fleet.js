'use strict'

// Real parts for the fleet tests and benchmark/fleet.js: redis-server, HAProxy in TCP mode
// with round-robin, fleets of server processes, and a client that reconnects through them.
// Everything listens on 127.0.0.1 and is stopped by the caller.

const { spawn, fork } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const { key, cert } = require('./helpers.js')

const FLEET_SERVER = path.join(__dirname, '..', '__test__', 'fixtures', 'fleet-server.js')

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function waitForPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill(signal)
  await exited
}

/** A throwaway redis-server on a free loopback port, without persistence. */
async function startRedis(port) {
  port ??= await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: 'ignore' })
  await waitForPort(port)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: (signal) => stopChild(child, signal),
    // SIGSTOP and SIGCONT: a Redis that stops answering without closing its connections.
    signal: (signal) => child.kill(signal),
  }
}

/** HAProxy in TCP mode, round-robin over `ports`, on a free loopback port. */
async function startHaproxy(ports) {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-haproxy-'))
  const config = path.join(dir, 'haproxy.cfg')
  fs.writeFileSync(config, [
    'global',
    '  maxconn 512',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 10s',
    '  timeout server 10s',
    'frontend fleet',
    `  bind 127.0.0.1:${port}`,
    '  default_backend servers',
    'backend servers',
    '  balance roundrobin',
    ...ports.map((p, i) => `  server s${i} 127.0.0.1:${p}`),
    '',
  ].join('\n'))
  const child = spawn('haproxy', ['-db', '-f', config], { stdio: 'ignore' })
  await waitForPort(port)
  return {
    port,
    stop: async () => {
      await stopChild(child)
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

function fleetConfig(options) {
  return JSON.stringify({ key: key.toString(), cert: cert.toString(), ...options })
}

async function startMember(way, tag, options) {
  const child = fork(FLEET_SERVER, [way, tag], {
    env: { ...process.env, TLS_FLEET_CONFIG: fleetConfig(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`fleet member (${way}) exited with ${code}`) }),
  ])
  return { child, port: message.port }
}

/**
 * A fleet for `way`: three server processes started with different argv, or for 'cluster'
 * one primary with three workers. Returns the ports to balance over, and stop().
 */
async function startFleet(way, options) {
  const members = way === 'cluster'
    ? [await startMember(way, 'primary', options)]
    : await Promise.all([0, 1, 2].map((i) => startMember(way, `member-${i}-${'y'.repeat(i)}`, options)))
  return {
    ports: members.map((m) => m.port),
    async stats() {
      return Promise.all(members.map(async (m) => {
        m.child.send('stats')
        const [reply] = await once(m.child, 'message')
        return reply
      }))
    },
    stop: (signal = 'SIGKILL') => Promise.all(members.map((m) => stopChild(m.child, signal))),
  }
}

/**
 * `count` reconnections to 127.0.0.1:port, one after the other, each offering the newest
 * session (starting with `session`, if given), spread over at least `spanMs`. Counts resumed,
 * full and failed handshakes of all but the first connection, which usually has no session
 * to offer; `firstResumed` tells how that one went.
 */
async function reconnectThrough(port, { count, spanMs = 0, version = 'TLSv1.3', onEach, session } = {}) {
  const result = { resumed: 0, full: 0, failed: 0, firstResumed: null }
  const started = Date.now()
  for (let i = 0; i <= count; i++) {
    if (onEach) await onEach(i)
    const outcome = await new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost', session,
        minVersion: version, maxVersion: version })
      let reused = null
      socket.on('session', (s) => { session = s })
      socket.on('secureConnect', () => { reused = socket.isSessionReused() })
      socket.on('data', () => {})
      socket.on('error', () => {})
      socket.setTimeout(5000, () => socket.destroy())
      socket.on('close', () => resolve(reused))
    })
    if (i === 0) result.firstResumed = outcome
    if (i > 0) {
      if (outcome === null) result.failed++
      else if (outcome) result.resumed++
      else result.full++
    }
    const due = started + (spanMs * (i + 1)) / (count + 1)
    const wait = due - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  }
  result.rate = result.resumed / count
  result.session = session
  return result
}

module.exports = { freePort, waitForPort, startRedis, startHaproxy, startFleet, startMember, reconnectThrough, stopChild }
