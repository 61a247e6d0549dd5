'use strict'

// The README's demo: two HTTPS servers on loopback, one rotating its key with Node's
// built-in setTicketKeys(), one on a tls-ticket-keys ring rotating with ring.rotate(). A
// client (an https.Agent per server, as an application would have) reconnects to both and prints what `openssl s_client
// -reconnect` would: New (full handshake) or Reused (resumed).

const crypto = require('node:crypto')
const https = require('node:https')
const tls = require('node:tls')
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

// One TLS connection offering `session`; resolves with whether it resumed and the newest session.
function reconnect(port, session) {
  const { cert } = selfSignedCertificate()
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert, session })
    let latest = null
    socket.on('session', (s) => { latest = s })
    socket.on('data', () => {})
    socket.on('error', reject)
    socket.on('secureConnect', () => setTimeout(() => {
      resolve({ reused: socket.isSessionReused(), session: latest || session })
      socket.destroy()
    }, 20))
  })
}

// A fleet of three servers, as behind a round-robin load balancer, then every one of them
// restarted: plain Node servers against servers holding rings from one fleet secret.
async function fleet(withRing, secret) {
  const start = async () => Promise.all([0, 1, 2].map(async () => {
    const server = await startServer((req, res) => res.end('ok'))
    if (withRing) attach(server, new TicketKeyRing({ secret }))
    return server
  }))
  const stop = (servers) => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  let servers = await start()
  let session
  let resumed = 0
  const COUNT = 9
  try {
    for (let i = 0; i <= COUNT; i++) {
      const r = await reconnect(servers[i % 3].address().port, session)
      if (i > 0 && r.reused) resumed++
      session = r.session
    }
  } finally {
    await stop(servers)
  }
  servers = await start()
  try {
    const afterRestart = await reconnect(servers[0].address().port, session)
    return { resumed, count: COUNT, afterRestart: afterRestart.reused }
  } finally {
    await stop(servers)
  }
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
    log(`ring stats: ${stats.issued} tickets issued, ${stats.resumed} resumed, ${stats.renewed} renewed after rotation\n`)

    // A fleet and a restart.
    const secret = crypto.randomBytes(32)
    const plain = await fleet(false, secret)
    const ours = await fleet(true, secret)
    totals.fleet = { builtin: plain, ring: ours }
    const pct = (r) => `${Math.round((100 * r.resumed) / r.count)} % (${r.resumed}/${r.count})`
    log(`${''.padEnd(44)}${'Node defaults'.padEnd(20)}tls-ticket-keys`)
    log(`${'three servers, round-robin reconnections'.padEnd(44)}${pct(plain).padEnd(20)}${pct(ours)}`)
    log(`${'after restarting every server'.padEnd(44)}${(plain.afterRestart ? 'Reused' : 'New').padEnd(20)}${ours.afterRestart ? 'Reused' : 'New'}`)
    log('(the ring servers share one fleet secret; a restarted server derives the same keys)')
  } finally {
    handle.detach()
    ring.destroy()
    await Promise.all([builtin, ringServer].map((s) => new Promise((resolve) => s.close(resolve))))
  }
  return totals
}

if (require.main === module) {
  main().catch((err) => {
    // A missing openssl command says what to install; anything else shows its stack.
    console.error(err.code === 'ERR_TLS_TICKET_OPENSSL_MISSING' ? `demo: ${err.message}` : err)
    process.exitCode = 1
  })
}

module.exports = { main }
