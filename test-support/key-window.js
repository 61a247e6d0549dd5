'use strict'

// A server-side ticket key window, as HAProxy and nginx rotate: the current key seals, the
// previous one still opens (and the ticket is renewed), and rotate() drops the oldest. Put
// on a Node server through its internal ticket callback; for the client tests and benchmark.

const crypto = require('node:crypto')

function installKeyWindow(server) {
  const fresh = () => ({ name: crypto.randomBytes(16), hmac: crypto.randomBytes(16), aes: crypto.randomBytes(16) })
  let window = [fresh(), fresh()]
  const context = server._sharedCreds.context
  context.enableTicketKeyCallback()
  context.onticketkeycallback = (name, iv, enc) => {
    if (enc) return [1, window[0].hmac, window[0].aes, window[0].name, crypto.randomBytes(16)]
    const i = window.findIndex((k) => k.name.equals(name))
    if (i === -1) return [0, window[0].hmac, window[0].aes]
    return [i === 0 ? 1 : 2, window[i].hmac, window[i].aes]
  }
  return { rotate: () => { window = [fresh(), window[0]] } }
}

module.exports = { installKeyWindow }
