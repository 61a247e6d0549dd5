'use strict'

// The client half: keeps the tickets a server hands out and offers them again.
//
// Node's clients lose resumptions that servers offer: a TLS 1.3 server sends several tickets
// ('session' events), but https.Agent keeps only the last one per host and shares it between
// concurrent sockets; and when a TLS 1.2 server renews a ticket on a resumed connection, no
// 'session' event fires, so the Agent keeps offering the old ticket until its key is gone.
//
// A SessionCache keeps, per origin, a small pool of TLS 1.3 tickets (newest first, each
// offered once while an unused one exists, RFC 8446 C.4) or the latest TLS 1.2 session
// (which may be offered again), picks up renewed TLS 1.2 tickets from getSession(), drops
// expired ones, and forgets an origin's tickets when a connection that offered one fails
// before its handshake completes.
//
// OpenSSL servers, Node's among them, send two TLS 1.3 tickets after a full handshake and
// none after a resumption (unless they renew the ticket). A client that never reuses a
// ticket therefore does a full handshake every third connection. By default the cache then
// offers its newest ticket again rather than none, which links those connections for an
// observer; `ticketReuse: 'never'` keeps every ticket single-use at that cost.

const https = require('node:https')
const tls = require('node:tls')
const binding = require('../binding.js')
const { originKey } = require('./origin.js')
const { invalidArgType, validateInteger, validateObject, validateOneOf, validateOptionNames } = require('./errors.js')

const CACHE_OPTIONS = ['maxOrigins', 'maxTicketsPerOrigin', 'ticketReuse']

function nowSeconds() {
  return Date.now() / 1000
}

// Node's tls.connect() accepts (options[, cb]), (port[, host][, options][, cb]) and (path...).
function normalizeConnectArgs(args) {
  let callback
  if (typeof args[args.length - 1] === 'function') callback = args[args.length - 1]
  const rest = callback ? args.slice(0, -1) : args
  let options
  if (rest[0] !== null && typeof rest[0] === 'object') {
    options = { ...rest[0] }
  } else if (typeof rest[0] === 'number' || (typeof rest[0] === 'string' && /^\d+$/.test(rest[0]))) {
    options = { port: Number(rest[0]) }
    if (typeof rest[1] === 'string') options.host = rest[1]
    const extra = rest.find((a, i) => i > 0 && a !== null && typeof a === 'object')
    if (extra) options = { ...extra, ...options }
  } else if (rest.length === 0) {
    throw invalidArgType('options', 'of type object', undefined)
  } else {
    throw invalidArgType('options', 'of type object', rest[0])
  }
  return { options, callback }
}

// Sockets whose options the cache could not judge: an Agent never pools them.
const uncachedSockets = new WeakSet()

class SessionCache {
  #maxOrigins
  #maxTickets
  #reuseWhenOut
  /** origin key -> { host, port, tickets: [{ session, expiresAt, protocol }] }, least recently used first */
  #origins = new Map()
  #stats = { offered: 0, resumed: 0, full: 0, unreadable: 0, uncached: 0 }

  constructor(options = {}) {
    validateObject(options, 'options')
    validateOptionNames(options, 'options', CACHE_OPTIONS)
    this.#maxOrigins = options.maxOrigins === undefined ? 100 : validateInteger(options.maxOrigins, 'options.maxOrigins', 1, 1e6)
    this.#maxTickets = options.maxTicketsPerOrigin === undefined ? 4
      : validateInteger(options.maxTicketsPerOrigin, 'options.maxTicketsPerOrigin', 1, 64)
    const reuse = options.ticketReuse === undefined ? 'last-resort'
      : validateOneOf(options.ticketReuse, 'options.ticketReuse', ['last-resort', 'never'])
    this.#reuseWhenOut = reuse === 'last-resort'
  }

  /** Like tls.connect(), and the returned TLSSocket offers and records tickets. */
  connect(...args) {
    const { options, callback } = normalizeConnectArgs(args)
    const key = originKey(options)
    if (key === null) {
      // Options the cache cannot judge: it offers nothing and keeps nothing (fail-safe).
      this.#stats.uncached++
      const socket = tls.connect(options, callback)
      uncachedSockets.add(socket)
      return socket
    }
    let offered = null
    if (options.session === undefined) {
      offered = this.#take(key)
      if (offered) options.session = offered.session
    }
    const socket = tls.connect(options, callback)
    this.#track(socket, key, options, offered)
    return socket
  }

  /** An https.Agent whose connections resume through this cache, keep-alive included. */
  httpsAgent(agentOptions = {}) {
    validateObject(agentOptions, 'agentOptions')
    return new SessionCacheAgent(this, agentOptions)
  }

  /** An undici Agent whose connections resume through this cache: for fetch(url, { dispatcher }) and setGlobalDispatcher(). */
  dispatcher(options) {
    return require('./undici.js').dispatcher(this, options)
  }

  /** A connect function for `new undici.Agent({ connect })`, resuming through this cache. */
  undiciConnect(options) {
    return require('./undici.js').undiciConnect(this, options)
  }

  /** Forgets every session of 'host:port' (all servernames and ALPN lists). */
  delete(origin) {
    if (typeof origin !== 'string') throw invalidArgType('origin', "of type string ('host:port')", origin)
    let deleted = false
    for (const key of [...this.#origins.keys()]) {
      if (key.startsWith(`${origin}|`)) {
        this.#origins.delete(key)
        deleted = true
      }
    }
    return deleted
  }

  clear() {
    this.#origins.clear()
  }

  /**
   * offered: connections that offered a cached ticket; resumed and full: how handshakes went;
   * unreadable: sessions the cache could not read, and so never offers; uncached: connections
   * with an option the cache cannot judge (origin.js), which it neither offers nor keeps a
   * session.
   */
  stats() {
    let tickets = 0
    for (const entry of this.#origins.values()) tickets += entry.tickets.length
    return { ...this.#stats, origins: this.#origins.size, tickets }
  }

  get size() {
    return this.#origins.size
  }

  // The ticket to offer: the newest unexpired one not offered yet; a TLS 1.2 session, or
  // (unless ticketReuse is 'never') the newest TLS 1.3 ticket when all have been offered.
  #take(key) {
    const entry = this.#origins.get(key)
    if (!entry) return null
    this.#origins.delete(key) // and back at the end: most recently used
    this.#origins.set(key, entry)
    const now = nowSeconds()
    entry.tickets = entry.tickets.filter((t) => t.expiresAt > now)
    if (entry.tickets.length === 0) {
      this.#origins.delete(key)
      return null
    }
    const fresh = entry.tickets.find((t) => t.protocol !== 'TLSv1.3' || !t.offered)
    if (fresh) {
      fresh.offered = true
      return fresh
    }
    return this.#reuseWhenOut ? entry.tickets[0] : null
  }

  #add(key, session) {
    let info
    try {
      info = binding.inspectSession(session)
    } catch {
      // Not a session we can date (a new Node session format?): never offer it, but count
      // it, so that a cache that stopped working shows.
      this.#stats.unreadable++
      return
    }
    const ticket = { session, protocol: info.protocol, expiresAt: info.expiresAt, iv: info.ticketIv ?? null, offered: false }
    if (ticket.expiresAt <= nowSeconds()) return
    let entry = this.#origins.get(key)
    if (entry) {
      this.#origins.delete(key)
    } else {
      entry = { tickets: [] }
    }
    this.#origins.set(key, entry)
    if (ticket.protocol === 'TLSv1.3') {
      if (entry.tickets.some((t) => t.iv !== null && t.iv === ticket.iv)) return
      // Newest first; past the limit, tickets already offered go before unused ones.
      const pool = [ticket, ...entry.tickets.filter((t) => t.protocol === 'TLSv1.3')]
      while (pool.length > this.#maxTickets) {
        const spent = pool.findLastIndex((t) => t.offered)
        pool.splice(spent === -1 ? pool.length - 1 : spent, 1)
      }
      entry.tickets = pool
    } else {
      entry.tickets = [ticket]
    }
    while (this.#origins.size > this.#maxOrigins) {
      this.#origins.delete(this.#origins.keys().next().value)
    }
  }

  #evict(key) {
    this.#origins.delete(key)
  }

  #track(socket, key, options, offered) {
    socket.on('session', (session) => this.#add(key, session))
    let secured = false
    socket.once('secureConnect', () => {
      secured = true
      const reused = socket.isSessionReused()
      if (offered || options.session) this.#stats.offered++
      this.#stats[reused ? 'resumed' : 'full']++
      // A TLS 1.2 server that renews a ticket on a resumed connection sends a new one, but
      // Node fires no 'session' event for it; getSession() has it.
      if (reused && socket.getProtocol() === 'TLSv1.2') {
        const session = socket.getSession()
        if (session && !(offered && session.equals(offered.session))) this.#add(key, session)
      }
    })
    socket.once('error', () => {
      // After a handshake that failed with a ticket offered (a refused certificate, a reset),
      // the origin's tickets are not offered again: whatever changed there, they are suspect.
      // Errors after the handshake say nothing about them: undici, for one, destroys every
      // socket it is done with with an error (UND_ERR_INFO).
      if (offered && !secured) this.#evict(key)
    })
  }
}

/** An https.Agent whose TLS connections go through the SessionCache. */
class SessionCacheAgent extends https.Agent {
  #cache

  constructor(cache, options) {
    // The cache replaces the Agent's own one-session-per-host cache.
    super({ ...options, maxCachedSessions: 0 })
    this.#cache = cache
  }

  createConnection(port, host, options) {
    // The argument forms of https.Agent#createConnection.
    if (port !== null && typeof port === 'object') {
      options = { ...port }
    } else if (host !== null && typeof host === 'object') {
      options = { ...host, port }
    } else {
      options = { ...(options || {}), port, host }
    }
    delete options.session
    return this.#cache.connect(options)
  }

  // Node's Agent pools keep-alive sockets by a name that leaves out secureContext and
  // checkServerIdentity (a request with another tenant's context would be handed a socket that
  // presented the first tenant's certificate), and that holds the client's private key and
  // passphrase in clear (util.inspect(agent) shows them). The cache's origin replaces it.
  getName(options = {}) {
    const merged = { ...options, ...this.options, path: options.socketPath ?? null }
    const origin = originKey(merged)
    // Sockets of options the cache cannot judge are never kept alive (keepSocketAlive), so
    // this one name shares nothing.
    if (origin === null) return 'uncached'
    return `${origin}|${merged.localAddress ?? ''}|${merged.family === 4 || merged.family === 6 ? merged.family : ''}`
  }

  keepSocketAlive(socket) {
    if (uncachedSockets.has(socket)) return false
    return super.keepSocketAlive(socket)
  }
}

module.exports = { SessionCache, originKey }
