'use strict'

// Node's SecureContext as both modes need it: its `_external` (the SSL_CTX), whether it is
// still open, its session timeout before attach() changes it, and the marks that tell every
// copy of this package which contexts a ring serves.

const tls = require('node:tls')
const binding = require('../binding.js')
const { callNative } = require('./errors.js')

// OpenSSL's default session timeout (SSL_CTX_new), which Node keeps unless told otherwise:
// what detach() gives back when it cannot read the context's own.
const OPENSSL_DEFAULT_SESSION_TIMEOUT = 7200
const MAX_INT32 = 0x7fffffff
// Marks a server and each context a ring serves. A registered symbol, so that every copy of
// this package in the process (npm can install two versions side by side) sees the marks of
// the others.
const kAttached = Symbol.for('tls-ticket-keys.attached')
// Marks the callback detach() leaves on a context in callback mode (Node cannot switch its
// hook off again), so that it does not count as an attachment.
const kRestored = Symbol.for('tls-ticket-keys.restored-callback')

const SecureContext = tls.createSecureContext().context.constructor
// Node's own getter, taken once from the prototype: an own `_external` property on a context
// cannot stand in for it, and it throws for anything that is not a SecureContext.
const externalGetter = Object.getOwnPropertyDescriptor(SecureContext.prototype, '_external')?.get

function externalOf(context) {
  if (typeof externalGetter !== 'function') return undefined
  return Reflect.apply(externalGetter, context, [])
}

// Whether the native path runs in this process cannot change: asked once.
let nativeWhy

/** Why the native path does not run in this process (its OpenSSL and V8 symbols), or null. */
function nativePathUnavailable() {
  if (nativeWhy === undefined) nativeWhy = binding.nativeUnavailableReason()
  return nativeWhy
}

function nativePathAvailable() {
  return nativePathUnavailable() === null
}

/**
 * Whether the context still has its SSL_CTX: Node's setters crash on a closed one. Without
 * the native path there is no way to tell, and the context is taken to be open.
 */
function contextOpen(context) {
  if (!nativePathAvailable()) return true
  return callNative(() => binding.nativeContextOpen(externalOf(context)))
}

/**
 * The session timeout a context has before attach() changes it: what the user set, else what
 * the context says (read through the native path where it is available), else OpenSSL's default.
 */
function sessionTimeoutOf(server, context) {
  if (server.sessionTimeout !== undefined) return server.sessionTimeout
  if (nativePathAvailable()) {
    try {
      const timeout = binding.nativeSessionTimeout(externalOf(context))
      if (Number.isInteger(timeout) && timeout > 0 && timeout <= MAX_INT32) return timeout
    } catch {}
  }
  return OPENSSL_DEFAULT_SESSION_TIMEOUT
}

function mark(target, owner) {
  Object.defineProperty(target, kAttached, { value: owner, configurable: true, enumerable: false, writable: false })
}

function unmark(target, owner) {
  if (target[kAttached] === owner) delete target[kAttached]
}

function markedBy(target) {
  return target[kAttached]
}

/** Marks `callback` as the inert one detach() leaves behind in callback mode. */
function markRestored(callback) {
  callback[kRestored] = true
  return callback
}

/**
 * Another attachment, by this copy of the package or any other, on the server or the context
 * it uses now. Another copy's native callback leaves no trace that this copy can read in
 * OpenSSL, so the marks are what tells; a callback-mode hook shows as Node's JS callback.
 */
function attachedAlready(server) {
  const context = server._sharedCreds.context
  return markedBy(server) !== undefined || markedBy(context) !== undefined ||
    (typeof context.onticketkeycallback === 'function' && context.onticketkeycallback[kRestored] !== true)
}

module.exports = {
  SecureContext, externalOf, nativePathAvailable, nativePathUnavailable, contextOpen, sessionTimeoutOf, mark, unmark, markedBy, markRestored, attachedAlready,
}
