'use strict'

// Server CPU per resumed TLS handshake: Node's built-in ticket handling vs the ring in
// native mode and in callback mode, measured in the same run, interleaved, TLS 1.2 and 1.3.
// The server and the client each run in their own process; the server reports
// process.cpuUsage() over the measured connections.
//
//   node benchmark/handshake.js [--connections 2000] [--rounds 5] [--concurrency 8] [--versions TLSv1.2,TLSv1.3]

const { fork } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { selfSignedCertificate } = require('../lib/selfsigned.js')

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
    versions: { type: 'string', default: 'TLSv1.2,TLSv1.3' },
  },
})
const CONNECTIONS = Number(values.connections)
const ROUNDS = Number(values.rounds)
const CONCURRENCY = Number(values.concurrency)
const WARMUP = 300
const MODES = ['builtin', 'native', 'callback']
const VERSIONS = values.versions.split(',')

const { key, cert } = selfSignedCertificate()
const credentials = JSON.stringify({ key: key.toString(), cert: cert.toString() })

async function ask(child, message) {
  child.send(message)
  const [reply] = await once(child, 'message')
  return reply
}

async function load(port, version, count) {
  const client = fork(path.join(__dirname, 'handshake-load.js'),
    [port, version, count, CONCURRENCY, cert.toString()], { stdio: 'inherit' })
  const [result] = await once(client, 'message')
  await once(client, 'exit')
  return result
}

async function measure(mode, version) {
  const server = fork(path.join(__dirname, 'server.js'), [mode, credentials], { stdio: 'inherit' })
  try {
    const [{ port }] = await once(server, 'message')
    await load(port, version, WARMUP)
    await ask(server, 'reset')
    const client = await load(port, version, CONNECTIONS)
    const report = await ask(server, 'report')
    if (client.failed > 0) throw new Error(`${mode} ${version}: ${client.failed} connections failed`)
    return { micros: report.cpuMicros / report.handshakes, resumedShare: report.resumed / report.handshakes }
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
  console.log(`server CPU per resumed handshake: ${CONNECTIONS} connections x ${ROUNDS} rounds, ` +
    `${CONCURRENCY} at a time, Node ${process.version}`)
  console.log('µs: medians over rounds; ratios: median of per-round ratios [lowest-highest]\n')
  const header = ['', ...MODES.map((m) => `${m} (µs)`), 'native/builtin', 'callback/builtin', 'resumed']
  const widths = [9, 16, 16, 16, 24, 24, 10]
  const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('')
  console.log(row(header))
  for (const version of VERSIONS) {
    const samples = Object.fromEntries(MODES.map((m) => [m, []]))
    let resumedShare = 1
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) {
        const r = await measure(mode, version)
        samples[mode].push(r.micros)
        resumedShare = Math.min(resumedShare, r.resumedShare)
      }
    }
    console.log(row([
      version,
      ...MODES.map((mode) => median(samples[mode]).toFixed(1)),
      ratioText(samples.native, samples.builtin),
      ratioText(samples.callback, samples.builtin),
      `${(100 * resumedShare).toFixed(1)} %`,
    ]))
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
