'use strict'

// Concurrent TLS clients for the soak benchmark and the load tests. Each client connects
// again and again, offering the newest session it holds; half speak TLS 1.2, half TLS 1.3.
// With several ports, each client takes them in turn (a fleet behind round-robin).

const { fork } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')
const tls = require('node:tls')
const { inspectSession } = require('..')

const HOST = '127.0.0.1'
const CONNECTION_TIMEOUT_MS = 10_000

/** One connection: how long the handshake took, whether it resumed, the newest session. */
function handshake(port, version, session, ca) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint()
    let latencyMs = null
    let reused = false
    let newest = null
    let settled = false
    const socket = tls.connect({
      host: HOST, port, ca, servername: 'localhost', session: session ?? undefined, minVersion: version, maxVersion: version,
    })
    const finish = (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ error: error ?? (latencyMs === null ? new Error('closed before the handshake finished') : null), latencyMs, reused, session: newest })
    }
    const timer = setTimeout(() => finish(new Error(`no answer within ${CONNECTION_TIMEOUT_MS} ms`)), CONNECTION_TIMEOUT_MS)
    socket.on('secureConnect', () => {
      latencyMs = Number(process.hrtime.bigint() - started) / 1e6
      reused = socket.isSessionReused()
    })
    socket.on('session', (s) => { newest = s })
    socket.on('data', () => {})
    socket.on('end', () => {
      // A TLS 1.2 ticket renewed on resumption comes without a 'session' event.
      if (newest === null && reused && version === 'TLSv1.2') newest = socket.getSession() ?? null
      finish()
    })
    socket.on('close', () => finish())
    socket.on('error', (err) => finish(err))
  })
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

function summarize(latencies) {
  const sorted = Float64Array.from(latencies).sort()
  return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }
}

/**
 * Runs `clients` clients against `ports` for `durationMs`. `lifetimeSeconds`: the server's
 * ticket lifetime, to tell offered sessions inside it from those past it. `during(elapsedMs)`
 * is awaited every 100 ms, for faults; `phaseAt(elapsedMs)` names the phase a connection
 * belongs to, for resumption rates per phase. Resolves with counts and latency percentiles.
 */
async function runLoad({ ports, ca, clients = 32, durationMs, lifetimeSeconds, during = null, phaseAt = () => 'all' }) {
  const result = {
    connections: 0,
    failed: 0,
    errors: [],
    resumed: 0,
    offered: 0,
    offeredInsideLifetime: 0,
    resumedInsideLifetime: 0,
    latency: { 'TLSv1.2': [], 'TLSv1.3': [] },
    phases: {},
  }
  const started = Date.now()
  const deadline = started + durationMs
  let next = 0

  async function client(index) {
    const version = index % 2 === 0 ? 'TLSv1.2' : 'TLSv1.3'
    let session = null
    let sessionCreatedAt = 0
    while (Date.now() < deadline) {
      const port = ports[next++ % ports.length]
      // Session times are whole seconds, on both sides: the server's can be a second behind
      // the client's when the handshake straddles a second, and the client's a second behind
      // the real time. Two seconds of margin keep "inside" honest.
      const inside = session !== null && Date.now() < sessionCreatedAt + (lifetimeSeconds - 2) * 1000
      const outcome = await handshake(port, version, session, ca)
      const phase = (result.phases[phaseAt(Date.now() - started)] ??= { offeredInsideLifetime: 0, resumedInsideLifetime: 0 })
      result.connections++
      if (outcome.error) {
        result.failed++
        if (result.errors.length < 5) result.errors.push(`${version} port ${port}: ${outcome.error.message}`)
        session = null
        continue
      }
      result.latency[version].push(outcome.latencyMs)
      if (outcome.reused) result.resumed++
      if (session !== null) {
        result.offered++
        if (inside) {
          result.offeredInsideLifetime++
          phase.offeredInsideLifetime++
          if (outcome.reused) {
            result.resumedInsideLifetime++
            phase.resumedInsideLifetime++
          }
        }
      }
      if (outcome.session !== null) {
        session = outcome.session
        // A renewed TLS 1.2 ticket carries the session of the full handshake and its time,
        // though the client's copy says it is new: OpenSSL servers refuse it a lifetime after
        // that handshake. A TLS 1.3 ticket's session starts with the ticket.
        if (version === 'TLSv1.3' || !outcome.reused) sessionCreatedAt = inspectSession(session).createdAt.getTime()
      }
    }
  }

  let faults = Promise.resolve()
  let ticker = null
  if (during !== null) {
    let busy = false
    ticker = setInterval(() => {
      if (busy) return
      busy = true
      faults = faults.then(() => during(Date.now() - started)).finally(() => { busy = false })
    }, 100)
  }
  try {
    await Promise.all(Array.from({ length: clients }, (_, i) => client(i)))
  } finally {
    clearInterval(ticker)
  }
  await faults
  result.latency = { 'TLSv1.2': summarize(result.latency['TLSv1.2']), 'TLSv1.3': summarize(result.latency['TLSv1.3']) }
  result.resumptionInsideLifetime = result.offeredInsideLifetime === 0 ? NaN
    : result.resumedInsideLifetime / result.offeredInsideLifetime
  return result
}

/**
 * Starts soak-server.js with `config`. `request(op)` runs an operation there and
 * resolves with its answer; `exit` resolves with { code, signal } whenever the process ends;
 * `stop()` ends it and resolves with the same.
 */
async function startServer(config) {
  const child = fork(path.join(__dirname, 'soak-server.js'), [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exit = once(child, 'exit').then(([code, signal]) => ({ code, signal }))
  const pending = new Map()
  let ids = 0
  let ready
  const started = new Promise((resolve, reject) => {
    ready = resolve
    exit.then(({ code, signal }) => reject(new Error(`soak server exited (${signal ?? code}) before listening`)))
  })
  child.on('message', (message) => {
    if (message.port !== undefined) return ready(message)
    pending.get(message.id)?.(message)
    pending.delete(message.id)
  })
  exit.then(({ code, signal }) => {
    for (const resolve of pending.values()) resolve({ ok: false, error: `server exited (${signal ?? code})` })
    pending.clear()
  })
  const { port, mode } = await started
  return {
    port,
    mode,
    exit,
    request(op) {
      const id = ++ids
      return new Promise((resolve) => {
        pending.set(id, resolve)
        if (child.connected) child.send({ id, op })
      })
    },
    async stop() {
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      const result = await exit
      clearTimeout(timer)
      return result
    },
  }
}

module.exports = { runLoad, handshake, startServer }
