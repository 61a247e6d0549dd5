'use strict'

// The built-in fetch, each request on a new connection (the server closes it), against a
// ring server on loopback, with and without `dispatcher: cache.dispatcher()`: requests per
// second, the share of resumed connections (as the server counts them) and the client's CPU
// per request, TLS 1.2 and 1.3, measured in the same run, in one process.
//
// The built-in fetch takes its trust anchors from NODE_EXTRA_CA_CERTS when Node starts, so
// this script makes a throwaway certificate and runs itself again with it; that second process
// measures. Its server runs in a worker thread, so that on Node 22 and later the client's CPU
// is its own thread's (process.threadCpuUsage); Node 20 has only the process's, client and
// server together, and the table says so.
//
//   node benchmark/fetch.js [--seconds 2] [--rounds 4]   (seconds per row, in interleaved rounds)

const { spawn } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const https = require('node:https')
const { parseArgs } = require('node:util')
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, rounds: { type: 'string', default: '4' } } })
const SECONDS = Number(values.seconds)
const ROUNDS = Number(values.rounds)
const WARMUP_REQUESTS = 20
const VERSIONS = ['TLSv1.2', 'TLSv1.3']

// The ring server: reports its port, and on request how many connections it saw and resumed.
function serve() {
  const { TicketKeyRing, attach } = require('..')
  const ring = new TicketKeyRing({ rotationInterval: 3600, ticketLifetime: 7200 })
  const counts = { connections: 0, resumed: 0 }
  const servers = VERSIONS.map((version) => {
    const server = https.createServer({ key: workerData.key, cert: workerData.cert, minVersion: version, maxVersion: version }, (req, res) => {
      res.setHeader('Connection', 'close')
      res.end('ok')
    })
    attach(server, ring)
    server.on('secureConnection', (socket) => {
      counts.connections++
      if (socket.isSessionReused()) counts.resumed++
    })
    server.listen(0, '127.0.0.1')
    return server
  })
  Promise.all(servers.map((s) => once(s, 'listening'))).then(() => {
    parentPort.postMessage({ ports: Object.fromEntries(servers.map((s, i) => [VERSIONS[i], s.address().port])) })
  })
  parentPort.on('message', (message) => {
    if (message === 'counts') {
      parentPort.postMessage({ ...counts })
      counts.connections = 0
      counts.resumed = 0
    } else if (message === 'stop') {
      for (const server of servers) server.close()
      ring.destroy()
      parentPort.close()
    }
  })
}

const cpuNow = typeof process.threadCpuUsage === 'function' ? (since) => process.threadCpuUsage(since) : (since) => process.cpuUsage(since)

// One slice of a row: requests for `seconds`, and what they cost.
async function slice(worker, url, init, seconds) {
  worker.postMessage('counts')
  await once(worker, 'message')
  const cpuBefore = cpuNow()
  const started = process.hrtime.bigint()
  const deadline = started + BigInt(Math.round(seconds * 1e9))
  let requests = 0
  while (process.hrtime.bigint() < deadline) {
    await (await fetch(url, init)).arrayBuffer()
    requests++
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = cpuNow(cpuBefore)
  worker.postMessage('counts')
  const [counts] = await once(worker, 'message')
  return { requests, elapsed, cpu: cpu.user + cpu.system, ...counts }
}

// Makes the certificate and runs the measuring process with it trusted.
async function main() {
  const { makeSelfSignedCertificate } = require('../lib/selfsigned.js')
  const { key, cert } = makeSelfSignedCertificate()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-bench-'))
  try {
    fs.writeFileSync(path.join(dir, 'ca.pem'), cert)
    const child = spawn(process.execPath, [__filename, '--seconds', String(SECONDS), '--rounds', String(ROUNDS)], {
      stdio: 'inherit',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'), BENCH_KEY: key.toString(), BENCH_CERT: cert.toString() },
    })
    const [code] = await once(child, 'exit')
    process.exitCode = code
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function benchmark() {
  const { SessionCache } = require('..')
  const undici = require('undici')
  const worker = new Worker(__filename, { workerData: { key: process.env.BENCH_KEY, cert: process.env.BENCH_CERT } })
  const [{ ports }] = await once(worker, 'message')
  const cpuLabel = typeof process.threadCpuUsage === 'function' ? 'client CPU/request' : 'CPU/request (client+server)'
  console.log(`The built-in fetch (undici ${process.versions.undici}), Node ${process.version}, a new connection per request, ` +
    `${SECONDS} s per row in ${ROUNDS} interleaved rounds, one process, loopback\n`)
  console.log(`${'protocol'.padEnd(10)}${'client'.padEnd(34)}${'requests/s'.padStart(12)}${'resumed'.padStart(10)}${cpuLabel.padStart(30)}`)
  const ratios = []
  try {
    for (const version of VERSIONS) {
      const url = `https://127.0.0.1:${ports[version]}/`
      const clients = [
        ['fetch(url)', null],
        // The same userland undici as the dispatcher's, without the cache: what the cache itself costs.
        ['fetch(url, { new undici.Agent() })', new undici.Agent()],
        ['fetch(url, { dispatcher })', new SessionCache().dispatcher()],
      ]
      const totals = clients.map(() => ({ requests: 0, elapsed: 0, cpu: 0, connections: 0, resumed: 0 }))
      try {
        for (const [, dispatcher] of clients) {
          for (let i = 0; i < WARMUP_REQUESTS; i++) await (await fetch(url, dispatcher ? { dispatcher } : {})).arrayBuffer()
        }
        // Rounds interleave the clients, so that a neighbour's load on the machine falls on all of them.
        for (let round = 0; round < ROUNDS; round++) {
          for (const [i, [, dispatcher]] of clients.entries()) {
            const r = await slice(worker, url, dispatcher ? { dispatcher } : {}, SECONDS / ROUNDS)
            for (const field of Object.keys(totals[i])) totals[i][field] += r[field]
          }
        }
      } finally {
        for (const [, dispatcher] of clients) await dispatcher?.close()
      }
      const rows = totals.map((t) => ({
        perSecond: t.requests / t.elapsed,
        resumed: t.connections ? t.resumed / t.connections : 0,
        cpuPerRequest: t.cpu / t.requests,
      }))
      for (const [i, r] of rows.entries()) {
        console.log(`${version.padEnd(10)}${clients[i][0].padEnd(34)}${r.perSecond.toFixed(0).padStart(12)}${`${(100 * r.resumed).toFixed(0)} %`.padStart(10)}` +
          `${`${r.cpuPerRequest.toFixed(0)} µs`.padStart(30)}`)
      }
      const [plain, agent, cached] = rows
      ratios.push(`${version}: with the dispatcher, ${(cached.perSecond / plain.perSecond).toFixed(2)}x requests/s and ` +
        `${(cached.cpuPerRequest / plain.cpuPerRequest).toFixed(2)}x CPU per request of fetch(url); ` +
        `${(cached.perSecond / agent.perSecond).toFixed(2)}x and ${(cached.cpuPerRequest / agent.cpuPerRequest).toFixed(2)}x of undici's own Agent`)
    }
    console.log(`\n${ratios.join('\n')}`)
  } finally {
    worker.postMessage('stop')
  }
}

if (isMainThread) {
  (process.env.BENCH_CERT ? benchmark() : main()).catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
} else {
  serve()
}
