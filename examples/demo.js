'use strict'

// The README's demo: two HTTPS servers on loopback, one rotating its key with Node's
// built-in setTicketKeys(), one on a tls-ticket-keys ring rotating with ring.rotate(). A
// client (an https.Agent per server, as an application would have) reconnects to both and prints what `openssl s_client
// -reconnect` would: New (full handshake) or Reused (resumed).

const https = require('node:https')
const { once } = require('node:events')
const { TicketKeyRing, attach, generateTicketKeys } = require('..')
const { selfSignedCertificate } = require('../lib/selfsigned.js')

const ROUNDS = 12
const ROTATE_EVERY = 3

async function startServer(onRequest) {
  const { key, cert } = selfSignedCertificate()
  const server = https.createServer({ key, cert }, onRequest)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

// One HTTPS request on a fresh connection; the agent offers the session it cached last time.
function request(agent, port) {
  return new Promise((resolve, reject) => {
    const { cert } = selfSignedCertificate()
    const req = https.get({ host: '127.0.0.1', port, path: '/', servername: 'localhost', ca: cert, agent }, (res) => {
      const socket = res.socket
      const reused = socket.isSessionReused()
      const line = `${reused ? 'Reused' : 'New'}, ${socket.getProtocol()}, Cipher is ${socket.getCipher().name}`
      res.resume()
      // TLS 1.3 tickets follow the handshake; keep the connection a moment so they arrive.
      res.on('end', () => setTimeout(() => {
        socket.destroy()
        resolve({ reused, line })
      }, 20))
    })
    req.on('error', reject)
  })
}

async function main({ log = console.log } = {}) {
  const ok = (req, res) => res.end('ok')
  const builtin = await startServer(ok)
  const ringServer = await startServer(ok)
  const ring = new TicketKeyRing()
  const handle = attach(ringServer, ring)
  const totals = {}
  try {
    log(`tls-ticket-keys demo: ${ROUNDS} reconnections per TLS version, keys rotated every ${ROTATE_EVERY}`)
    log(`ring: ${ring.cipher}, attached in ${handle.mode} mode\n`)
    for (const version of ['TLSv1.2', 'TLSv1.3']) {
      const pad = 58
      log(`${'round'.padEnd(7)}${"Node's setTicketKeys() rotation".padEnd(pad)}tls-ticket-keys ring.rotate()`)
      const agentOptions = { keepAlive: false, minVersion: version, maxVersion: version }
      const agents = { builtin: new https.Agent(agentOptions), ring: new https.Agent(agentOptions) }
      const reused = { builtin: 0, ring: 0 }
      for (let round = 1; round <= ROUNDS; round++) {
        let mark = ' '
        if (round > 1 && (round - 1) % ROTATE_EVERY === 0) {
          builtin.setTicketKeys(generateTicketKeys(48))
          ring.rotate()
          mark = '*'
        }
        const a = await request(agents.builtin, builtin.address().port)
        const b = await request(agents.ring, ringServer.address().port)
        if (a.reused) reused.builtin++
        if (b.reused) reused.ring++
        log(`${(String(round) + mark).padEnd(7)}${a.line.padEnd(pad)}${b.line}`)
      }
      const rate = (n) => `${n}/${ROUNDS - 1} reconnections resumed (${Math.round((100 * n) / (ROUNDS - 1))} %)`
      log(`${''.padEnd(7)}${rate(reused.builtin).padEnd(pad)}${rate(reused.ring)}\n`)
      agents.builtin.destroy()
      agents.ring.destroy()
      totals[version] = reused
    }
    log('* keys rotated before this round')
    const stats = ring.stats()
    log(`ring stats: ${stats.issued} tickets issued, ${stats.resumed} resumed, ${stats.renewed} renewed after rotation`)
  } finally {
    handle.detach()
    ring.destroy()
    await Promise.all([builtin, ringServer].map((s) => new Promise((resolve) => s.close(resolve))))
  }
  return totals
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exitCode = 1
  })
}

module.exports = { main }
