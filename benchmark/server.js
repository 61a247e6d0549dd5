'use strict'

// A TLS server in its own process for the handshake benchmark. argv: <mode> where mode is
// builtin | native | callback, or native+subscriber | callback+subscriber: the same with a
// subscriber on every tls-ticket-keys diagnostics channel. It answers IPC messages: 'reset'
// starts a measurement, 'report' returns the CPU time used, the handshakes seen and the
// diagnostics messages published since.

const diagnosticsChannel = require('node:diagnostics_channel')
const tls = require('node:tls')
const { TicketKeyRing, attach } = require('..')

const [mode, subscriber] = process.argv[2].split('+')
let published = 0
if (subscriber === 'subscriber') {
  for (const name of ['rotate', 'fallback', 'refused', 'store-error']) {
    diagnosticsChannel.subscribe(`tls-ticket-keys:${name}`, () => { published++ })
  }
}
const { key, cert } = JSON.parse(process.argv[3])

const server = tls.createServer({ key, cert }, (socket) => {
  handshakes++
  if (socket.isSessionReused()) resumed++
  socket.on('error', () => {})
  socket.end('x')
})
server.on('tlsClientError', () => {})
if (mode !== 'builtin') {
  const ring = new TicketKeyRing({ cipher: mode === 'callback' ? 'aes-128-cbc' : 'aes-256-cbc' })
  attach(server, ring, { mode })
}

let handshakes = 0
let resumed = 0
let since = process.cpuUsage()

process.on('message', (message) => {
  if (message === 'reset') {
    handshakes = 0
    resumed = 0
    published = 0
    since = process.cpuUsage()
    process.send({ ok: true })
  } else if (message === 'report') {
    const used = process.cpuUsage(since)
    process.send({ cpuMicros: used.user + used.system, handshakes, resumed, published })
  }
})
process.on('disconnect', () => process.exit(0))
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
