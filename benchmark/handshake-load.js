'use strict'

// The load for the handshake benchmark, in its own process so that its CPU is not counted
// against the server. argv: <port> <version> <count> <concurrency> <cert> [<session>].
// Every connection offers the newest session it has, as a resuming client does; given a
// session (base64), every connection offers that one instead.

const tls = require('node:tls')

const [port, version, count, concurrency] = process.argv.slice(2, 6).map((v, i) => (i === 1 ? v : Number(v)))
const cert = process.argv[6]
const fixed = process.argv[7] ? Buffer.from(process.argv[7], 'base64') : undefined

let session = fixed
let started = 0
let reused = 0
let failed = 0

function once() {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost', session,
      minVersion: version, maxVersion: version })
    socket.on('session', (s) => { if (fixed === undefined) session = s })
    socket.on('secureConnect', () => { if (socket.isSessionReused()) reused++ })
    socket.on('data', () => {})
    socket.on('error', () => { failed++ })
    socket.on('close', resolve)
  })
}

async function loop() {
  while (started < count) {
    started++
    await once()
  }
}

// Start with one connection so that every later one has a session to offer.
once().then(() => Promise.all(Array.from({ length: concurrency }, loop))).then(() => {
  process.send({ reused, failed })
  process.disconnect()
})
