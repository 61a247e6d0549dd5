'use strict'

const crypto = require('node:crypto')
const tls = require('node:tls')
const { inspect } = require('node:util')
const binding = require('../binding.js')
const { TicketKeyRing, nativeOf, registerAttachment, unregisterAttachment } = require('./ring.js')
const { sessionIdContextFor } = require('./client-auth.js')
const {
  makeError, callNative, invalidArgType, invalidArgValue, invalidState, validateObject, validateOneOf, validateOptionNames,
} = require('./errors.js')

const MODES = ['auto', 'native', 'callback']
const ATTACH_OPTIONS = ['mode']
// OpenSSL's default session timeout (SSL_CTX_new), which Node keeps unless told otherwise:
// what detach() gives back when it cannot read the context's own.
const OPENSSL_DEFAULT_SESSION_TIMEOUT = 7200
// Marks a server and each context a ring serves. A registered symbol, so that every copy of
// this package in the process (npm can install two versions side by side) sees the marks of
// the others.
const kAttached = Symbol.for('tls-ticket-keys.attached')
// Marks the callback detach() leaves on a context in callback mode (Node cannot switch its
// hook off again), so that it does not count as an attachment.
const kRestored = Symbol.for('tls-ticket-keys.restored-callback')

// Node's own getter, taken once from the prototype: an own `_external` property on a context
// cannot stand in for it, and it throws for anything that is not a SecureContext.
const SecureContext = tls.createSecureContext().context.constructor
const externalGetter = Object.getOwnPropertyDescriptor(SecureContext.prototype, '_external')?.get

function externalOf(context) {
  if (typeof externalGetter !== 'function') return undefined
  return Reflect.apply(externalGetter, context, [])
}

function mark(target, owner) {
  Object.defineProperty(target, kAttached, { value: owner, configurable: true, enumerable: false, writable: false })
}

function unmark(target, owner) {
  if (target[kAttached] === owner) delete target[kAttached]
}

// Whether the context still has its SSL_CTX: Node's setters crash on a closed one. Without the
// native path there is no way to tell, and the context is taken to be open.
function contextOpen(context) {
  if (binding.nativeUnavailableReason() !== null) return true
  return callNative(() => binding.nativeContextOpen(externalOf(context)))
}

// What Node gives a server that was created without a sessionIdContext.
function argvSessionIdContext() {
  return crypto.createHash('sha1').update(process.argv.join(' ')).digest('hex').slice(0, 32)
}

// Runs fn(external, probe) while the context's session timeout is a random value: the Rust
// side reads it back through the SSL_CTX pointer it got from `_external`, and refuses a
// pointer that does not show it. Node aborts on a timeout that is not a positive int32.
function withProvenContext(context, timeoutAfter, fn) {
  const probe = 1_000_000_000 + crypto.randomInt(1_000_000_000)
  context.setSessionTimeout(probe)
  try {
    return callNative(() => fn(externalOf(context), probe))
  } finally {
    context.setSessionTimeout(timeoutAfter)
  }
}

// The session timeout a context has before attach() changes it: what the user set, else
// what the context says (read through the native path where it is available), else
// OpenSSL's default.
function sessionTimeoutOf(server, context) {
  if (server.sessionTimeout !== undefined) return server.sessionTimeout
  if (binding.nativeUnavailableReason() === null) {
    try {
      const timeout = binding.nativeSessionTimeout(externalOf(context))
      if (Number.isInteger(timeout) && timeout > 0 && timeout <= 0x7fffffff) return timeout
    } catch {}
  }
  return OPENSSL_DEFAULT_SESSION_TIMEOUT
}

// Node's `onticketkeycallback(name, iv, enc)` contract: return [1, hmac, aes, name, iv] to
// seal and [1 | 2, hmac, aes] to open (2 renews). Node reads every element as a 16-byte
// buffer, even with a 0, and aborts the process otherwise; a throw is an uncaught exception.
// So the answer always carries buffers, and nothing in here may throw.
function ringTicketCallback(native, outcomes) {
  // The one place key bytes live on the JavaScript side in this mode: refilled by each call,
  // and wiped in the next turn of the event loop (Node copies them out synchronously, after
  // the callback has returned) and when the attachment ends.
  const scratch = Buffer.alloc(64)
  const name = scratch.subarray(0, 16)
  const hmac = scratch.subarray(16, 32)
  const aes = scratch.subarray(32, 48)
  const iv = scratch.subarray(48, 64)
  let wipePending = false
  const wipe = () => {
    wipePending = false
    scratch.fill(0)
  }
  function onticketkeycallback(keyName, ticketIv, enc) {
    if (!wipePending) {
      wipePending = true
      setImmediate(wipe).unref()
    }
    let result = 0
    try {
      if (!enc) keyName.copy(name, 0, 0, 16)
      result = enc ? native.fillEncrypt(scratch) : native.fillDecrypt(scratch)
    } catch {
      result = -1
    }
    if (!enc) {
      if (result === 1 || result === 2) outcomes.opened++
      else if (result === 0) outcomes.unknownKey++
      else if (result === 3) outcomes.expiredKey++
    }
    if (result !== 1 && result !== 2) {
      result = 0
      scratch.fill(0)
    }
    return enc ? [result, hmac, aes, name, iv] : [result, hmac, aes]
  }
  onticketkeycallback.wipe = wipe
  return onticketkeycallback
}

// Once Node's callback hook is on, Node cannot go back to its own ticket handling; this
// does what Node's built-in callback does, with the context's own key.
function contextTicketCallback(context) {
  const onticketkeycallback = function onticketkeycallback(keyName, ticketIv, enc) {
    try {
      const key = context.getTicketKeys()
      const hmac = key.subarray(16, 32)
      const aes = key.subarray(32, 48)
      if (enc) return [1, hmac, aes, key.subarray(0, 16), crypto.randomBytes(16)]
      return [crypto.timingSafeEqual(keyName, key.subarray(0, 16)) ? 1 : 0, hmac, aes]
    } catch {
      const zero = Buffer.alloc(16)
      return [0, zero, zero, zero, zero]
    }
  }
  onticketkeycallback[kRestored] = true
  return onticketkeycallback
}

class Attachment {
  #server
  #ring
  #native
  #mode
  // The ring's session id context, or the user's; what a context gets also carries the
  // server's client-certificate policy (client-auth.js).
  #sessionIdContext
  #userSessionIdContext
  #saved
  #context = null
  #contexts = []
  #callback = null
  #detached = false
  #record = { server: null, stats: () => this.stats() }
  // What happened to the tickets offered to this server: Rust counts them in native mode,
  // the callback in callback mode, as a ticket is opened.
  #outcomes
  // The ticket outcomes as of the last handshake that finished, so that a ticket opened for a
  // handshake still under way is not counted before its handshake is.
  #settled = { opened: 0, unknownKey: 0, expiredKey: 0 }
  #handshakes = { total: 0, resumed: 0 }
  #settle = () => {
    this.#settled = this.#mode === 'native' ? this.#outcomes.counts() : { ...this.#outcomes }
  }
  #onSecure = (socket) => {
    this.#handshakes.total++
    if (socket.isSessionReused()) this.#handshakes.resumed++
    this.#settle()
  }

  constructor(server, ring, mode) {
    this.#server = server
    this.#ring = ring
    this.#native = nativeOf(ring)
    this.#mode = mode
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
    this.#outcomes = mode === 'native' ? new binding.NativeTicketOutcomes() : { opened: 0, unknownKey: 0, expiredKey: 0 }
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
    return this.#mode
  }

  get detached() {
    return this.#detached
  }

  /** Serves `server`'s tickets from `ring`; on failure leaves the server as it was. */
  static start(server, ring, mode) {
    const attachment = new Attachment(server, ring, mode)
    try {
      attachment.#start()
    } catch (err) {
      attachment.detach()
      throw err
    }
    return attachment
  }

  /** Puts the ring on the server's current context, and again whenever it is replaced. */
  #start() {
    const server = this.#server
    mark(server, this)
    server.sessionTimeout = this.#ring.ticketLifetime
    server.sessionIdContext = this.#contextForServer()
    this.#hook(server._sharedCreds.context)
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
    // Node has taken the new options' requestCert, rejectUnauthorized, ca and crl.
    this.#server.sessionIdContext = this.#contextForServer()
    this.#hook(this.#server._sharedCreds.context)
  }

  #contextForServer() {
    return sessionIdContextFor(this.#sessionIdContext, this.#server)
  }

  #hook(context) {
    const lifetime = this.#ring.ticketLifetime
    if (context[kAttached] !== undefined && context[kAttached] !== this) {
      throw invalidState('another copy of tls-ticket-keys serves this secure context; detach() it first')
    }
    if (!contextOpen(context)) throw invalidState('the server\'s secure context is closed')
    this.#context = context
    mark(context, this)
    this.#contexts.push(new WeakRef(context))
    context.setSessionTimeout(lifetime)
    context.setSessionIdContext(this.#server.sessionIdContext)
    if (this.#mode === 'native') {
      withProvenContext(context, lifetime, (external, probe) => binding.nativeAttach(external, probe, this.#native, this.#outcomes))
    } else {
      this.#callback ??= ringTicketCallback(this.#native, this.#outcomes)
      context.enableTicketKeyCallback()
      context.onticketkeycallback = this.#callback
    }
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
    if (this.#callback !== null) {
      context.onticketkeycallback = contextTicketCallback(context)
      this.#callback.wipe()
    }
    // A closed context has nothing left to give back, and Node's setters crash on it.
    if (!contextOpen(context)) return
    const timeout = saved.contextTimeout
    if (typeof saved.sessionIdContext === 'string') context.setSessionIdContext(saved.sessionIdContext)
    if (this.#mode === 'native') {
      withProvenContext(context, timeout, (external, probe) => binding.nativeDetach(external, probe))
    } else {
      context.setSessionTimeout(timeout)
    }
  }

  [inspect.custom]() {
    return `TicketKeyAttachment { mode: '${this.#mode}', detached: ${this.#detached} }`
  }

  toJSON() {
    return { mode: this.#mode, detached: this.#detached }
  }
}

function callbackProblem(server, ring) {
  const context = server._sharedCreds && server._sharedCreds.context
  if (!context || typeof context.enableTicketKeyCallback !== 'function') {
    return 'this Node.js has no enableTicketKeyCallback() on its secure contexts'
  }
  if (ring.cipher !== 'aes-128-cbc') {
    return `Node's ticket callback only does AES-128 and this ring uses '${ring.cipher}'`
  }
  return null
}

// Another attachment, by this copy of the package or any other, on the server or the context
// it uses now. Another copy's native callback leaves no trace that this copy can read in
// OpenSSL, so the marks are what tells; a callback-mode hook shows as Node's JS callback.
function attachedAlready(server) {
  const context = server._sharedCreds && server._sharedCreds.context
  return server[kAttached] !== undefined || (context != null &&
    (context[kAttached] !== undefined ||
      (typeof context.onticketkeycallback === 'function' && context.onticketkeycallback[kRestored] !== true)))
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
  if (ring.destroyed) throw invalidState('the TicketKeyRing has been destroyed')
  if (attachedAlready(server)) throw invalidState('a ring is already attached to this server; detach() it first')

  let nativeWhy = null
  if (requested !== 'callback') {
    nativeWhy = binding.nativeUnavailableReason()
    if (nativeWhy === null) {
      try {
        return Attachment.start(server, ring, 'native')
      } catch (err) {
        if (requested === 'native' || err.code !== 'ERR_TLS_TICKET_NATIVE_UNAVAILABLE') throw err
        nativeWhy = err.message
      }
    } else if (requested === 'native') {
      throw makeError('ERR_TLS_TICKET_NATIVE_UNAVAILABLE', `native mode is unavailable: ${nativeWhy}`)
    }
  }
  const callbackWhy = callbackProblem(server, ring)
  if (callbackWhy !== null) {
    if (nativeWhy !== null) {
      throw makeError('ERR_TLS_TICKET_NATIVE_UNAVAILABLE',
        `no mode can serve this ring: native mode is unavailable (${nativeWhy}) and ${callbackWhy}`)
    }
    throw ring.cipher !== 'aes-128-cbc'
      ? invalidArgValue('ring', `cannot be served in callback mode: ${callbackWhy}. Use mode 'native' or an 'aes-128-cbc' ring`)
      : makeError('ERR_TLS_TICKET_CALLBACK_UNAVAILABLE', `callback mode is unavailable: ${callbackWhy}`)
  }
  return Attachment.start(server, ring, 'callback')
}

module.exports = { attach }
