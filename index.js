'use strict'

const { TicketKeyRing, generateTicketKeys } = require('./lib/ring.js')
const { attach } = require('./lib/attach.js')
const { RedisKeyStore } = require('./lib/redis-store.js')
const { SessionCache } = require('./lib/session-cache.js')
const binding = require('./binding.js')
const { callNative, validateKeyBytes } = require('./lib/errors.js')

/** What a session (from a 'session' event or getSession()) says about itself; no secret. */
function inspectSession(session) {
  const der = validateKeyBytes(session, 'session')
  const info = callNative(() => binding.inspectSession(der))
  return {
    ...info,
    createdAt: new Date(info.createdAt * 1000),
    expiresAt: new Date(info.expiresAt * 1000),
    serverName: info.serverName ?? null,
    alpn: info.alpn ?? null,
    ticketKeyName: info.ticketKeyName ?? null,
    ticketIv: info.ticketIv ?? null,
  }
}

module.exports = { TicketKeyRing, attach, generateTicketKeys, RedisKeyStore, SessionCache, inspectSession }
