'use strict'

// An HTTPS server for benchmark/client.js, in its own process: a window of two ticket keys
// (the current one seals, the previous one still opens and renews), shifted every second,
// as HAProxy or nginx rotate. argv: <key and cert as JSON>.

const https = require('node:https')
const { installKeyWindow } = require('../test-support/key-window.js')

const { key, cert } = JSON.parse(process.argv[2])
const server = https.createServer({ key, cert }, (req, res) => res.end('ok'))
const window = installKeyWindow(server)
setInterval(() => window.rotate(), 1000).unref()
server.on('tlsClientError', () => {})
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('disconnect', () => process.exit(0))
