'use strict'

// A TLS server in its own process for the soak benchmark and the load tests, so that a crash
// shows as an exit code instead of taking the test runner down. argv[2] is JSON:
//   { mode: 'builtin' | 'native' | 'callback' | 'auto', key, cert, rotationInterval,
//     ticketLifetime, redisUrl?, wrapSecret? (base64) }
// Every 250 ms it samples its RSS and the number of keys the ring holds. IPC requests
// ({ id, op }) answer { id, ok, ... }; `op` is one of report, setTicketKeys, setSecureContext,
// rotate, detach, attach, destroy.

const tls = require('node:tls')
const { TicketKeyRing, RedisKeyStore, attach, generateTicketKeys } = require('..')

const config = JSON.parse(process.argv[2])
const credentials = { key: config.key, cert: config.cert }
let handshakes = 0
let resumed = 0

const server = tls.createServer(credentials, (socket) => {
  handshakes++
  if (socket.isSessionReused()) resumed++
  socket.on('error', () => {})
  socket.end('x')
})
server.on('tlsClientError', () => {})

let ring = null
let store = null
let handle = null
const samples = { rss: [], keys: [] }

async function makeRing() {
  const options = { rotationInterval: config.rotationInterval, ticketLifetime: config.ticketLifetime }
  if (config.mode === 'callback') options.cipher = 'aes-128-cbc'
  if (config.redisUrl) {
    store = new RedisKeyStore({ url: config.redisUrl, wrapSecret: Buffer.from(config.wrapSecret, 'base64') })
    return store.ring(options)
  }
  return new TicketKeyRing(options)
}

function sample() {
  samples.rss.push(process.memoryUsage().rss)
  if (ring !== null && !ring.destroyed) samples.keys.push(ring.keys().length)
}

const operations = {
  report() {
    return {
      handshakes,
      resumed,
      samples,
      ring: ring === null || ring.destroyed ? null : ring.stats(),
      attachment: handle === null ? null : handle.stats(),
      store: store === null ? null : store.stats(),
    }
  },
  setTicketKeys() {
    ring.setTicketKeys(generateTicketKeys(ring.cipher === 'aes-128-cbc' ? 48 : 80))
  },
  setSecureContext() {
    server.setSecureContext(credentials)
  },
  rotate() {
    ring.rotate()
  },
  detach() {
    handle.detach()
  },
  attach() {
    handle = attach(server, ring, { mode: config.mode === 'builtin' ? 'auto' : config.mode })
    return { mode: handle.mode }
  },
  destroy() {
    ring.destroy()
  },
}

process.on('message', async ({ id, op }) => {
  try {
    process.send({ id, ok: true, ...(await operations[op]()) })
  } catch (err) {
    process.send({ id, ok: false, error: `${err.code}: ${err.message}` })
  }
})
process.on('disconnect', async () => {
  if (store !== null) await store.close()
  process.exit(0)
})

async function main() {
  if (config.mode !== 'builtin') {
    ring = await makeRing()
    operations.attach()
  }
  setInterval(sample, 250).unref()
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port, mode: handle?.mode ?? 'builtin' }))
}

main()
