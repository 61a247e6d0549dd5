'use strict'

// Server CPU per resumed TLS handshake: Node's built-in ticket handling vs the ring in
// native mode and in callback mode, each also with a subscriber on every diagnostics channel,
// measured in the same run, interleaved, TLS 1.2 and 1.3. The server and the client each run
// in their own process; the server reports process.cpuUsage() over the measured connections.
// With --refused every connection offers a ticket of another ring instead: full handshakes,
// each refused for an unknown key, which a subscriber hears about (tls-ticket-keys:refused).
// Modes take turns at going first, round by round. Last, the cost of the refused-ticket hook
// itself, per handshake, in this process: without a subscriber it is a counter comparison.
//
//   node benchmark/handshake.js [--connections 2000] [--rounds 5] [--concurrency 8] [--versions TLSv1.2,TLSv1.3] [--refused]

const { fork } = require('node:child_process')
const diagnosticsChannel = require('node:diagnostics_channel')
const { once } = require('node:events')
const path = require('node:path')
const tls = require('node:tls')
const { parseArgs } = require('node:util')
const { TicketKeyRing, attach } = require('..')
const { selfSignedCertificate } = require('../lib/selfsigned.js')
const { publishRefusals } = require('../lib/diagnostics.js')

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
    versions: { type: 'string', default: 'TLSv1.2,TLSv1.3' },
    refused: { type: 'boolean', default: false },
  },
})
const CONNECTIONS = Number(values.connections)
const ROUNDS = Number(values.rounds)
const CONCURRENCY = Number(values.concurrency)
const WARMUP = 300
const MODES = ['builtin', 'native', 'callback', 'native+subscriber', 'callback+subscriber']
const VERSIONS = values.versions.split(',')

const { key, cert } = selfSignedCertificate()
const credentials = JSON.stringify({ key: key.toString(), cert: cert.toString() })

async function ask(child, message) {
  child.send(message)
  const [reply] = await once(child, 'message')
  return reply
}

/** A session whose ticket another ring sealed, for --refused: base64, or '' to resume normally. */
async function foreignSession(version) {
  if (!values.refused) return ''
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
  // Data before the end: a TLS 1.3 server sends its tickets with it.
  const server = tls.createServer({ key, cert }, (socket) => socket.end('x'))
  attach(server, ring)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    return await new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.address().port, ca: cert, servername: 'localhost',
        minVersion: version, maxVersion: version })
      socket.once('session', (session) => {
        socket.destroy()
        resolve(session.toString('base64'))
      })
      socket.on('data', () => {})
      socket.on('error', reject)
      socket.on('close', () => reject(new Error(`no ${version} session from the foreign server`)))
    })
  } finally {
    server.close()
    ring.destroy()
  }
}

async function load(port, version, count, session) {
  const client = fork(path.join(__dirname, 'handshake-load.js'),
    [port, version, count, CONCURRENCY, cert.toString(), session], { stdio: 'inherit' })
  const [result] = await once(client, 'message')
  await once(client, 'exit')
  return result
}

async function measure(mode, version, session) {
  const server = fork(path.join(__dirname, 'server.js'), [mode, credentials], { stdio: 'inherit' })
  try {
    const [{ port }] = await once(server, 'message')
    await load(port, version, WARMUP, session)
    await ask(server, 'reset')
    const client = await load(port, version, CONNECTIONS, session)
    const report = await ask(server, 'report')
    if (client.failed > 0) throw new Error(`${mode} ${version}: ${client.failed} connections failed`)
    return {
      micros: report.cpuMicros / report.handshakes,
      resumedShare: report.resumed / report.handshakes,
      publishedPerHandshake: report.published / report.handshakes,
    }
  } finally {
    server.disconnect()
    await once(server, 'exit')
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

function ratioText(numerators, denominators) {
  // Paired per round: both were measured back to back, so slow drifts of the machine cancel.
  const ratios = numerators.map((n, i) => n / denominators[i])
  const lo = Math.min(...ratios)
  const hi = Math.max(...ratios)
  return `${median(ratios).toFixed(3)}x [${lo.toFixed(2)}-${hi.toFixed(2)}]`
}

async function main() {
  console.log(`server CPU per ${values.refused ? 'refused (unknown key)' : 'resumed'} handshake: ` +
    `${CONNECTIONS} connections x ${ROUNDS} rounds, ${CONCURRENCY} at a time, Node ${process.version}`)
  console.log('µs: medians over rounds; ratios: median of per-round ratios [lowest-highest]; ' +
    '+sub: a subscriber on every diagnostics channel\n')
  const short = (mode) => mode.replace('+subscriber', '+sub')
  const header = ['', ...MODES.map((m) => `${short(m)} (µs)`), 'native/builtin', 'callback/builtin',
    'native+sub/native', 'callback+sub/callback', 'resumed', 'published']
  const widths = [9, 14, 14, 14, 18, 18, 24, 24, 24, 24, 10, 11]
  const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('')
  console.log(row(header))
  for (const version of VERSIONS) {
    const session = await foreignSession(version)
    const samples = Object.fromEntries(MODES.map((m) => [m, []]))
    let resumedShare = 1
    let publishedPerHandshake = Infinity
    for (let round = 0; round < ROUNDS; round++) {
      const order = [...MODES.slice(round % MODES.length), ...MODES.slice(0, round % MODES.length)]
      for (const mode of order) {
        const r = await measure(mode, version, session)
        samples[mode].push(r.micros)
        resumedShare = Math.min(resumedShare, r.resumedShare)
        if (mode.endsWith('+subscriber')) publishedPerHandshake = Math.min(publishedPerHandshake, r.publishedPerHandshake)
      }
    }
    console.log(row([
      version,
      ...MODES.map((mode) => median(samples[mode]).toFixed(1)),
      ratioText(samples.native, samples.builtin),
      ratioText(samples.callback, samples.builtin),
      ratioText(samples['native+subscriber'], samples.native),
      ratioText(samples['callback+subscriber'], samples.callback),
      `${(100 * resumedShare).toFixed(1)} %`,
      `${publishedPerHandshake.toFixed(2)}/hs`,
    ]))
  }
}

/** Nanoseconds per call of the hook every handshake end runs, each call refusing one ticket. */
async function hookNanos() {
  const server = tls.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const ring = { name: 'bench' }
  const state = { notResumed: 0 }
  const calls = 200_000
  const pass = () => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) {
      publishRefusals(ring, server, state, { opened: 0, unknownKey: i, expiredKey: 0 },
        { opened: 0, unknownKey: i + 1, expiredKey: 0 }, 0, false)
    }
    return Number(process.hrtime.bigint() - start) / calls
  }
  pass()
  const without = pass()
  const subscriber = () => {}
  diagnosticsChannel.subscribe('tls-ticket-keys:refused', subscriber)
  pass()
  const withSubscriber = pass()
  diagnosticsChannel.unsubscribe('tls-ticket-keys:refused', subscriber)
  server.close()
  return { without, withSubscriber }
}

async function hook() {
  const { without, withSubscriber } = await hookNanos()
  console.log(`\nthe refused-ticket hook per handshake, in process: ${without.toFixed(1)} ns without a subscriber, ` +
    `${withSubscriber.toFixed(0)} ns publishing to one`)
}

main().then(hook).catch((err) => {
  console.error(err)
  process.exitCode = 1
})
