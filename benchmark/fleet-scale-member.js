'use strict'

// One member of benchmark/fleet-scale.js, in its own process: a TLS server on a ring from
// Redis, from a fleet secret, or from a secret file. Config in TLS_FLEET_SCALE (JSON). Answers { port } over IPC
// once it listens, and each 'sample' with its current key name, fallback keys, Redis errors
// and RSS. Never any key material: names only.

const tls = require('node:tls')
const { TicketKeyRing, RedisKeyStore, attach } = require('..')

const config = JSON.parse(process.env.TLS_FLEET_SCALE)
const schedule = { rotationInterval: config.interval, ticketLifetime: config.lifetime }

async function main() {
  let store = null
  let ring
  if (config.way === 'redis') {
    store = new RedisKeyStore({ url: config.redisUrl, wrapSecret: Buffer.from(config.wrapSecret, 'base64'), timeout: 1000 })
    ring = await store.ring(schedule)
  } else if (config.secretFile) {
    ring = new TicketKeyRing({ ...schedule, secretFile: config.secretFile, secretFileCheckInterval: 1 })
  } else {
    ring = new TicketKeyRing({ ...schedule, secret: Buffer.from(config.secret, 'base64') })
  }
  const server = tls.createServer({ key: config.key, cert: config.cert }, (socket) => {
    socket.on('error', () => {})
    socket.end('hi')
  })
  server.on('tlsClientError', () => {})
  attach(server, ring)
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('message', (m) => {
    if (m !== 'sample') return
    const current = ring.keys().find((k) => k.state === 'current')
    process.send({
      at: Date.now(),
      name: current ? current.name : null,
      // The epoch the key encrypts for, by the schedule: a key that takes over mid-epoch has
      // the same as the one it replaced.
      epoch: current ? Math.floor(current.activatesAt.getTime() / 1000 / config.interval) : null,
      fallbackKeys: ring.stats().fallbackKeys,
      redisErrors: store ? store.stats().redisErrors : 0,
      rss: process.memoryUsage().rss,
      // A secretFile ring: the fingerprint of the current key's secret, and of every secret held.
      secret: current?.secret ?? null,
      secrets: config.secretFile ? ring.secrets().map((x) => x.fingerprint) : [],
      secretFileErrors: ring.stats().secretFileErrors ?? 0,
    })
  })
}

process.on('disconnect', () => process.exit(0))
main().catch((err) => {
  console.error(err)
  process.exit(1)
})
