'use strict'

// A client making 1,000 HTTPS requests, each on a new connection, to a server that rotates
// its ticket keys every second (a two-key window, as HAProxy and nginx do): the share of
// full handshakes and the client's CPU per request, for SessionCache's agent and for Node's
// https.Agent, TLS 1.2 and 1.3, measured in the same run.
//
//   node benchmark/client.js [--requests 1000] [--pace 5]

const { fork } = require('node:child_process')
const { once } = require('node:events')
const https = require('node:https')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { SessionCache } = require('..')
const { selfSignedCertificate } = require('../lib/selfsigned.js')

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '1000' }, pace: { type: 'string', default: '5' } },
})
const REQUESTS = Number(values.requests)
const PACE_MS = Number(values.pace)
const { key, cert } = selfSignedCertificate()

function request(agent, port, version) {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, servername: 'localhost', ca: cert, agent, minVersion: version, maxVersion: version },
      (res) => {
        const reused = res.socket.isSessionReused()
        res.resume()
        res.on('end', () => resolve(reused))
      }).on('error', reject)
  })
}

async function run(agent, port, version) {
  let full = 0
  let cpu = 0
  const started = Date.now()
  for (let i = 0; i < REQUESTS; i++) {
    const before = process.cpuUsage()
    if (!(await request(agent, port, version))) full++
    const used = process.cpuUsage(before)
    cpu += used.user + used.system
    const wait = started + (i + 1) * PACE_MS - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  }
  agent.destroy()
  return { full, cpuPerRequest: cpu / REQUESTS }
}

async function main() {
  const server = fork(path.join(__dirname, 'window-server.js'),
    [JSON.stringify({ key: key.toString(), cert: cert.toString() })], { stdio: 'inherit' })
  try {
    const [{ port }] = await once(server, 'message')
    console.log(`${REQUESTS} requests, a new connection each, one every ${PACE_MS} ms, to a server that rotates its ` +
      `ticket keys every second; Node ${process.version}\n`)
    console.log(`${'protocol'.padEnd(10)}${'client'.padEnd(24)}${'full handshakes'.padStart(18)}${'client CPU/request'.padStart(22)}`)
    for (const version of ['TLSv1.2', 'TLSv1.3']) {
      const agents = [
        ['https.Agent', () => new https.Agent({ keepAlive: false })],
        ['SessionCache agent', () => new SessionCache().httpsAgent({ keepAlive: false })],
      ]
      for (const [name, make] of agents) {
        const r = await run(make(), port, version)
        console.log(`${version.padEnd(10)}${name.padEnd(24)}${`${(100 * r.full / REQUESTS).toFixed(1)} %`.padStart(18)}` +
          `${`${r.cpuPerRequest.toFixed(0)} µs`.padStart(22)}`)
      }
    }
  } finally {
    server.disconnect()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
