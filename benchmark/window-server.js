'use strict'

// An HTTPS server for benchmark/client.js, in its own process: a window of two ticket keys
// (the current one seals, the previous one still opens and renews), shifted every second,
// as HAProxy or nginx rotate. argv: <key and cert as JSON>.

const crypto = require('node:crypto')
const https = require('node:https')

const { key, cert } = JSON.parse(process.argv[2])
const fresh = () => ({ name: crypto.randomBytes(16), hmac: crypto.randomBytes(16), aes: crypto.randomBytes(16) })
let window = [fresh(), fresh()]
setInterval(() => { window = [fresh(), window[0]] }, 1000).unref()

const server = https.createServer({ key, cert }, (req, res) => res.end('ok'))
server._sharedCreds.context.enableTicketKeyCallback()
server._sharedCreds.context.onticketkeycallback = (name, iv, enc) => {
  if (enc) return [1, window[0].hmac, window[0].aes, window[0].name, crypto.randomBytes(16)]
  const i = window.findIndex((k) => k.name.equals(name))
  if (i === -1) return [0, window[0].hmac, window[0].aes]
  return [i === 0 ? 1 : 2, window[i].hmac, window[i].aes]
}
server.on('tlsClientError', () => {})
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
process.on('disconnect', () => process.exit(0))
