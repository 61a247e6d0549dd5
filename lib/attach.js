'use strict'

// attach(): the attachment's lifecycle. What each mode does to a context is in modes/, what
// both need of Node's SecureContext in secure-context.js, the session id contexts in
// session-id-context.js, and the server's client-certificate policy in client-auth.js.

const tls = require('node:tls')
const { inspect } = require('node:util')
const { TicketKeyRing } = require('./ring.js')
const { kNative, registerAttachment, unregisterAttachment } = require('./internal.js')
const { nativeUnprovenReason } = require('./platform.js')
const { clientAuthPolicy } = require('./client-auth.js')
const { PEERS, argvSessionIdContext, serverSessionIdContext, peerSessionIdContext } = require('./session-id-context.js')
const { publishRefusals } = require('./diagnostics.js')
const {
  SecureContext, contextOpen, sessionTimeoutOf, mark, unmark, markedBy, attachedAlready,
} = require('./secure-context.js')
const nativeMode = require('./modes/native.js')
const callbackMode = require('./modes/callback.js')
const {
  makeError, invalidArgType, invalidArgValue, invalidState, validateObject, validateOneOf, validateOptionNames,
} = require('./errors.js')

const MODES = ['auto', 'native', 'callback']
const ATTACH_OPTIONS = ['mode', 'shareWith']

class Attachment {
  #server
  #ring
  // The mode's module (modes/), and what it keeps for this attachment.
  #mode
  #modeState
  // The ring's session id context, or the user's; what a context gets also carries the
  // server's client-certificate policy (client-auth.js).
  #sessionIdContext
  #userSessionIdContext
  // 'nginx' or 'haproxy': the server whose session id context this one takes; else null.
  #shareWith
  #warnedClientAuth = false
  #saved
  #context = null
  #contexts = []
  #detached = false
  #record = { server: null, stats: () => this.stats() }
  // The ticket outcomes as of the last handshake that finished, so that a ticket opened for a
  // handshake still under way is not counted before its handshake is.
  #settled = { opened: 0, unknownKey: 0, expiredKey: 0 }
  #handshakes = { total: 0, resumed: 0 }
  // What the `tls-ticket-keys:refused` channel has been told (diagnostics.js).
  #published = { notResumed: 0 }
  #settle = () => {
    this.#settleHandshake(false)
  }
  #onSecure = (socket) => {
    this.#handshakes.total++
    const reused = socket.isSessionReused()
    if (reused) this.#handshakes.resumed++
    this.#settleHandshake(reused)
  }

  // A handshake ended: what it did to the ticket counts becomes visible in stats(), and each
  // ticket it refused goes to the `tls-ticket-keys:refused` channel.
  #settleHandshake(reused) {
    const before = this.#settled
    this.#settled = this.#mode.counts(this.#modeState.outcomes)
    publishRefusals(this.#ring, this.#server, this.#published, before, this.#settled, this.#handshakes.resumed, reused)
  }

  constructor(server, ring, mode, shareWith) {
    this.#server = server
    this.#ring = ring
    this.#mode = mode
    this.#shareWith = shareWith
    // What happened to the tickets offered to this server: Rust counts them in native mode,
    // the callback in callback mode, as a ticket is opened.
    this.#modeState = { native: ring[kNative](), outcomes: mode.newOutcomes(), callback: null }
    this.#saved = {
      sessionTimeout: server.sessionTimeout,
      contextTimeout: sessionTimeoutOf(server, server._sharedCreds.context),
      sessionIdContext: server.sessionIdContext,
      setSecureContext: Object.getOwnPropertyDescriptor(server, 'setSecureContext'),
    }
    this.#record.server = server
    // Node fills in an argv-derived context when the user gave none: replace only that one.
    this.#userSessionIdContext = typeof server.sessionIdContext === 'string' &&
      server.sessionIdContext !== argvSessionIdContext()
    this.#sessionIdContext = this.#userSessionIdContext ? server.sessionIdContext : ring.sessionIdContext
  }

  /**
   * Why handshakes on this server resumed or not. Ticket outcomes come from the ring's
   * callback; handshakes from 'secureConnection'. Tickets that opened but did not resume were
   * refused by OpenSSL (session id context, cipher, or session timeout mismatch).
   */
  stats() {
    const t = this.#settled
    const { total, resumed } = this.#handshakes
    const full = total - resumed
    const notResumed = Math.max(0, t.opened - resumed)
    return {
      handshakes: total,
      resumed,
      full,
      noTicket: Math.max(0, full - t.unknownKey - t.expiredKey - notResumed),
      unknownKey: t.unknownKey,
      expiredKey: t.expiredKey,
      notResumed,
    }
  }

  /** 'native' or 'callback'. */
  get mode() {
    return this.#mode.name
  }

  get detached() {
    return this.#detached
  }

  /** 'nginx' or 'haproxy' when the server takes that server's session id context, else null. */
  get shareWith() {
    return this.#shareWith
  }

  /**
   * Serves `server`'s tickets from `ring`; on failure leaves the server as it was. `policy`:
   * the server's client-certificate policy (client-auth.js), as attach() found it.
   */
  static start(server, ring, mode, shareWith, policy) {
    const attachment = new Attachment(server, ring, mode, shareWith)
    try {
      attachment.#start(policy)
    } catch (err) {
      attachment.detach()
      throw err
    }
    return attachment
  }

  /** Puts the ring on the server's current context, and again whenever it is replaced. */
  #start(policy) {
    const server = this.#server
    mark(server, this)
    server.sessionTimeout = this.#ring.ticketLifetime
    this.#serve(server._sharedCreds.context, policy)
    // First, so that stats() read in the server's own connection listener counts this one.
    server.prependListener('secureConnection', this.#onSecure)
    server.on('tlsClientError', this.#settle)
    registerAttachment(this.#ring, this.#record)
    const attachment = this
    const original = server.setSecureContext
    Object.defineProperty(server, 'setSecureContext', {
      configurable: true,
      writable: true,
      value: function setSecureContext(options) {
        const result = Reflect.apply(original, this, arguments)
        attachment.#contextReplaced(options)
        return result
      },
    })
  }

  // Node's setSecureContext() builds a new context and resets server.sessionIdContext to
  // the option or to its argv default. Connections already under way keep the old context,
  // which stays hooked until Node frees it.
  #contextReplaced(options) {
    if (this.#detached) return
    // A timeout given here is what the server has from now on, and what detach() gives back.
    if (options && options.sessionTimeout !== undefined) {
      this.#saved.sessionTimeout = options.sessionTimeout
      this.#saved.contextTimeout = options.sessionTimeout
    }
    this.#server.sessionTimeout = this.#ring.ticketLifetime
    if (options && options.sessionIdContext) {
      this.#sessionIdContext = options.sessionIdContext
      this.#userSessionIdContext = true
    }
    // Node has taken the new options' requestCert, rejectUnauthorized, ca, crl and cert.
    this.#serve(this.#server._sharedCreds.context)
  }

  /**
   * The session id context for `context`: its own as a string, which Node's setter and its
   * own setSecureContext() take; and, for a server sharing sessions with nginx or HAProxy,
   * theirs as bytes, which native mode gives every connection. Not when the server now asks
   * for client certificates: their context cannot carry its policy, so it keeps its own.
   * `policy`: the server's client-certificate policy (client-auth.js).
   */
  #contextFor(context, policy) {
    const own = { string: serverSessionIdContext(this.#sessionIdContext, policy), shared: null }
    if (this.#shareWith === null) return own
    if (policy !== 'none') {
      this.#warnClientAuth()
      return own
    }
    return { string: own.string, shared: peerSessionIdContext(this.#shareWith, this.#server, context) }
  }

  #warnClientAuth() {
    if (this.#warnedClientAuth) return
    this.#warnedClientAuth = true
    process.emitWarning(`the server now requests client certificates, so it no longer shares sessions with ${this.#shareWith}: ` +
      'its own session id context carries its client-certificate policy', { type: 'TlsTicketKeysWarning', code: 'TLS_TICKET_SHARE_WITH_CLIENT_AUTH' })
  }

  // `policy`: the server's client-certificate policy, read once per context.
  #serve(context, policy = clientAuthPolicy(this.#server)) {
    const lifetime = this.#ring.ticketLifetime
    if (markedBy(context) !== undefined && markedBy(context) !== this) {
      throw invalidState('another copy of tls-ticket-keys serves this secure context; detach() it first')
    }
    if (!contextOpen(context)) throw invalidState('the server\'s secure context is closed')
    this.#context = context
    mark(context, this)
    // Every context served, to unmark on detach(); the ones Node has freed are dropped.
    this.#contexts = this.#contexts.filter((ref) => ref.deref() !== undefined)
    this.#contexts.push(new WeakRef(context))
    context.setSessionTimeout(lifetime)
    const clientAuth = policy !== 'none'
    const sessionIdContext = this.#contextFor(context, policy)
    this.#server.sessionIdContext = sessionIdContext.string
    context.setSessionIdContext(sessionIdContext.string)
    this.#mode.hook(context, this.#modeState, lifetime, sessionIdContext.shared, clientAuth)
  }

  /** Gives the server back its own ticket handling. Safe to call more than once. */
  detach() {
    if (this.#detached) return
    this.#detached = true
    const server = this.#server
    const saved = this.#saved
    if (saved.setSecureContext) Object.defineProperty(server, 'setSecureContext', saved.setSecureContext)
    else delete server.setSecureContext
    server.sessionTimeout = saved.sessionTimeout
    server.sessionIdContext = saved.sessionIdContext
    server.off('secureConnection', this.#onSecure)
    server.off('tlsClientError', this.#settle)
    unregisterAttachment(this.#ring, this.#record)
    unmark(server, this)
    for (const ref of this.#contexts) {
      const hooked = ref.deref()
      if (hooked !== undefined) unmark(hooked, this)
    }
    const context = this.#context
    // Nothing was hooked when attaching failed before the first context.
    if (context === null) return
    this.#mode.restore?.(context, this.#modeState)
    // A closed context has nothing left to give back, and Node's setters crash on it.
    if (!contextOpen(context)) return
    if (typeof saved.sessionIdContext === 'string') context.setSessionIdContext(saved.sessionIdContext)
    this.#mode.unhook(context, { timeout: saved.contextTimeout })
  }

  [inspect.custom]() {
    const shareWith = this.#shareWith === null ? '' : `, shareWith: '${this.#shareWith}'`
    return `TicketKeyAttachment { mode: '${this.mode}'${shareWith}, detached: ${this.#detached} }`
  }

  toJSON() {
    return { mode: this.mode, shareWith: this.#shareWith, detached: this.#detached }
  }
}

/**
 * Serves the server's session tickets from the ring. See index.d.ts for the contract.
 */
function attach(server, ring, options = {}) {
  if (!(server instanceof tls.Server)) {
    throw invalidArgType('server', 'an instance of tls.Server, https.Server or Http2SecureServer', server)
  }
  // A tls.Server made without its constructor has no secure context to serve.
  if (!(server._sharedCreds?.context instanceof SecureContext)) {
    throw invalidArgValue('server', 'has no secure context: create it with tls.createServer(), https.createServer() or http2.createSecureServer()')
  }
  if (!(ring instanceof TicketKeyRing)) throw invalidArgType('ring', 'an instance of TicketKeyRing', ring)
  validateObject(options, 'options')
  validateOptionNames(options, 'options', ATTACH_OPTIONS)
  const requested = options.mode === undefined ? 'auto' : validateOneOf(options.mode, 'options.mode', MODES)
  const shareWith = options.shareWith === undefined ? null : validateOneOf(options.shareWith, 'options.shareWith', PEERS)
  if (ring.destroyed) throw invalidState('the TicketKeyRing has been destroyed')
  if (attachedAlready(server)) throw invalidState('a ring is already attached to this server; detach() it first')
  const policy = clientAuthPolicy(server)
  if (shareWith !== null && policy !== 'none') {
    // nginx mixes in only client CA names, HAProxy 2.6 nothing: a session accepted by one of
    // them could skip a check of this server's policy (its CRLs, rejectUnauthorized).
    throw invalidArgValue('options.shareWith', `cannot be used on a server that requests client certificates: ${shareWith}'s ` +
      'session id context cannot carry its client-certificate policy')
  }
  // Node's setter takes a string (nginx's context is binary), and Node 22 and 24 replace
  // it per connection with a digest: only native mode's callbacks can set theirs.
  const needsNative = shareWith !== null
  if (needsNative && requested === 'callback') {
    throw invalidArgValue('options.shareWith', 'needs native mode: callback mode cannot give connections the session id context of nginx or HAProxy')
  }
  if (requested === 'callback') return startCallback(server, ring, null, policy)
  // Native mode must serve: when it was asked for, or shareWith needs it.
  const nativeOnly = requested === 'native' || needsNative
  let nativeWhy = nativeUnavailable(server, ring, requested)
  if (nativeWhy === null) {
    try {
      return Attachment.start(server, ring, nativeMode, shareWith, policy)
    } catch (err) {
      if (nativeOnly || err.code !== 'ERR_TLS_TICKET_NATIVE_UNAVAILABLE') throw err
      nativeWhy = err.message
    }
  } else if (nativeOnly) {
    const why = needsNative ? 'shareWith needs native mode, which is unavailable' : 'native mode is unavailable'
    throw makeError('ERR_TLS_TICKET_NATIVE_UNAVAILABLE', `${why}: ${nativeWhy}`)
  }
  return startCallback(server, ring, nativeWhy, policy)
}

/**
 * Why native mode cannot serve `ring` on `server`, or null. 'auto' also wants a platform where
 * it is proven (platform.js); mode 'native' tries it anywhere it runs.
 */
function nativeUnavailable(server, ring, requested) {
  return nativeMode.unavailable(server, ring) ?? (requested === 'auto' ? nativeUnprovenReason() : null)
}

/** Serves the ring in callback mode, or throws why it cannot (`nativeWhy`: why native mode did not, if tried). */
function startCallback(server, ring, nativeWhy, policy) {
  const callbackWhy = callbackMode.unavailable(server, ring)
  if (callbackWhy === null) return Attachment.start(server, ring, callbackMode, null, policy)
  if (nativeWhy !== null) {
    throw makeError('ERR_TLS_TICKET_NATIVE_UNAVAILABLE',
      `no mode can serve this ring: native mode is unavailable (${nativeWhy}) and ${callbackWhy}`)
  }
  throw ring.cipher !== 'aes-128-cbc'
    ? invalidArgValue('ring', `cannot be served in callback mode: ${callbackWhy}. Use mode 'native' or an 'aes-128-cbc' ring`)
    : makeError('ERR_TLS_TICKET_CALLBACK_UNAVAILABLE', `callback mode is unavailable: ${callbackWhy}`)
}

module.exports = { attach }
