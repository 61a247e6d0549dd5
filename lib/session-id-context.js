'use strict'

// The session id contexts attach() gives servers, all of them. OpenSSL resumes a session only
// on a server whose session id context equals the one the session was made under, whatever the
// keys; so every value here must stay byte for byte what earlier versions computed, or a fleet
// that mixes versions stops resuming (__test__/session-id-context.test.js pins them).

const { createHash, hkdfSync } = require('node:crypto')
const { pemBlocks } = require('./pem.js')

// Every ring that is not derived from a fleet secret shares one context, so that servers
// holding the same keys resume each other's tickets whatever their argv. Sessions can only
// cross between servers that can open each other's tickets anyway.
const SHARED = createHash('sha256').update('tls-ticket-keys session id context v1').digest('hex').slice(0, 32)

// A secret-derived ring's context: HKDF-SHA256 over its scope, never its secret, so that a
// fleet moving to a new secret (options.previousSecrets) keeps resuming sessions. The labels
// are those of the key derivation (src/derive.rs), which once computed it.
const DERIVE_SALT = 'tls-ticket-keys/v1'
const DERIVE_CONTEXT_LABEL = 'tls-ticket-keys/v1 session id context'
const DERIVE_SCOPE_LABEL = 'tls-ticket-keys/v1 scope'
const DERIVED_BYTES = 16

// A server that asks for client certificates: its context mixed with its policy (client-auth.js).
const CLIENT_AUTH_LABEL = 'tls-ticket-keys session id context v2'
// OpenSSL's SSL_MAX_SID_CTX_LENGTH is 32 bytes; Node passes the string's bytes through.
const HEX_LENGTH = 32

// nginx's http module (ngx_ssl_session_id_context, src/event/ngx_event_openssl.c): SHA-1 over
// "HTTP", then the SHA-1 of each server certificate's DER in the order of the ssl_certificate
// directives, then the SHA-1 of each client CA name when it verifies clients. 20 bytes.
const NGINX_HTTP_LABEL = 'HTTP'
// HAProxy 2.6 (ssl_set_shctx, src/ssl_sock.c): SHCTX_APPNAME on every bind.
const HAPROXY_CONTEXT = 'haproxy'
/** The servers whose context attach({ shareWith }) can take. */
const PEERS = ['nginx', 'haproxy']

/**
 * A ring's context: `scope` is the scope of a ring derived from secrets (options.secret or
 * options.secretFile; '' without options.scope), null for any other ring.
 */
function ringSessionIdContext(scope) {
  if (scope === null) return SHARED
  const bytes = Buffer.from(scope)
  const info = bytes.length === 0 ? Buffer.alloc(0)
    : Buffer.concat([Buffer.from(DERIVE_SCOPE_LABEL), Buffer.from([bytes.length]), bytes])
  return Buffer.from(hkdfSync('sha256', DERIVE_CONTEXT_LABEL, DERIVE_SALT, info, DERIVED_BYTES)).toString('hex')
}

/** What Node gives a server that was created without a sessionIdContext. */
function argvSessionIdContext(argv = process.argv) {
  return createHash('sha1').update(argv.join(' ')).digest('hex').slice(0, HEX_LENGTH)
}

/**
 * The context attach() gives a server: `base` (the ring's, or the user's) as it is for a server
 * that asks for no certificate (`policy` 'none'), so that such servers keep sharing sessions
 * with plain Node servers of the same keys and context; else a digest of it and the
 * client-certificate policy (client-auth.js), which no context of another policy can equal.
 */
function serverSessionIdContext(base, policy) {
  if (policy === 'none') return base
  return createHash('sha256').update(`${CLIENT_AUTH_LABEL}\0${base}\0${policy}`).digest('hex').slice(0, HEX_LENGTH)
}

const sha1 = (...parts) => {
  const hash = createHash('sha1')
  for (const part of parts) hash.update(part)
  return hash.digest()
}

/**
 * The DER of the server's certificates, one per chain in the `cert` option's order (the leaf
 * of each: what nginx hashes), else the one certificate its context holds (a `pfx`).
 */
function serverCertificates(server, context) {
  const chains = server.cert === undefined || server.cert === null ? [] : [server.cert].flat()
  const leaves = []
  for (const chain of chains) {
    for (const { label, der } of pemBlocks(chain)) {
      if (label !== 'CERTIFICATE') continue
      leaves.push(der)
      break
    }
  }
  if (leaves.length === 0) {
    const der = context.getCertificate()
    if (Buffer.isBuffer(der) && der.length > 0) leaves.push(der)
  }
  return leaves
}

/**
 * The context `peer` ('nginx' or 'haproxy') uses for a server of `server`'s certificates that
 * asks no client certificate: the bytes to set on the context. Client authentication is
 * refused before this is called (attach.js), so nginx's client CA names never enter.
 */
function peerSessionIdContext(peer, server, context) {
  if (peer === 'haproxy') return Buffer.from(HAPROXY_CONTEXT, 'latin1')
  const certificates = serverCertificates(server, context)
  return sha1(NGINX_HTTP_LABEL, ...certificates.map((der) => sha1(der)))
}

module.exports = { PEERS, ringSessionIdContext, argvSessionIdContext, serverSessionIdContext, peerSessionIdContext }
