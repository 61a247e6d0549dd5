'use strict'

// The optional peer dependencies (redis, ioredis, prom-client, undici): a missing one is a
// coded error that says what to install, never a bare MODULE_NOT_FOUND with a require stack.
// undici has its own loader (undici.js), which also checks versions against the built-in fetch.

const { makeError } = require('./errors.js')

const PEERS = {
  redis: { code: 'ERR_TLS_TICKET_REDIS_UNAVAILABLE', use: 'new RedisKeyStore({ url }) makes its client with the redis package', instead: 'or pass a client of your own as { client }' },
  ioredis: { code: 'ERR_TLS_TICKET_IOREDIS_UNAVAILABLE', use: 'this needs the ioredis package', instead: 'or use the redis package' },
  'prom-client': { code: 'ERR_TLS_TICKET_PROM_CLIENT_UNAVAILABLE', use: 'registerMetrics() needs the prom-client package', instead: 'ring.metrics() needs nothing' },
}

/** Whether `err` says that `name` itself (not something it requires) is not installed. */
function isMissing(err, name) {
  return err && err.code === 'MODULE_NOT_FOUND' && typeof err.message === 'string' &&
    err.message.split('\n')[0].includes(`'${name}'`)
}

/**
 * require(name) for an optional peer, as resolved from this package (where npm puts a
 * project's peers); a missing one throws the peer's coded error with an install hint, and its
 * MODULE_NOT_FOUND as a non-enumerable cause. Any other load error is left as it is.
 */
function loadPeer(name, caller = loadPeer) {
  const peer = PEERS[name]
  try {
    return require(name)
  } catch (err) {
    if (!peer || !isMissing(err, name)) throw err
    const error = makeError(peer.code,
      `${peer.use}, which is not installed: \`npm install ${name}\` (an optional peer dependency of tls-ticket-keys), ${peer.instead}`, caller)
    Object.defineProperty(error, 'cause', { value: err, enumerable: false, writable: true, configurable: true })
    throw error
  }
}

module.exports = { loadPeer, PEERS }
