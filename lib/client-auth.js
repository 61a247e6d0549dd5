'use strict'

// The client-certificate policy of a server, folded into the session id context that
// attach() sets. OpenSSL resumes a session only on a server whose session id context equals
// the one the session was made under, so two servers that share a ring resume each other's
// sessions only when a full handshake on either would have accepted the same clients.
//
// A session keeps the verification result of its full handshake: resumed elsewhere, it would
// skip that server's client authentication (Node 20 and 22 even report such a TLS 1.3
// connection as `authorized` without a peer certificate).

const { createHash } = require('node:crypto')
const tls = require('node:tls')

const CONTEXT_LABEL = 'tls-ticket-keys session id context v2'
// OpenSSL's SSL_MAX_SID_CTX_LENGTH is 32 bytes; Node passes the string's bytes through.
const CONTEXT_HEX_LENGTH = 32
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** The DER bodies of every PEM block in a `ca`, `crl`-style option, or the raw bytes when none. */
function derBlocks(option) {
  const entries = option === undefined || option === null ? [] : Array.isArray(option) ? option : [option]
  const blocks = []
  for (const entry of entries) {
    const text = Buffer.isBuffer(entry) ? entry.toString('latin1') : String(entry)
    const found = [...text.matchAll(PEM_BLOCK)].map((m) => Buffer.from(m[2].replace(/\s+/g, ''), 'base64'))
    blocks.push(...(found.length > 0 ? found : [Buffer.from(text, 'latin1')]))
  }
  // A trust set has no order, and the same certificate twice trusts nothing more.
  const hexes = [...new Set(blocks.map((b) => b.toString('hex')))].sort()
  return hexes.map((h) => Buffer.from(h, 'hex'))
}

function defaultTrust() {
  return typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : tls.rootCertificates
}

/**
 * A digest of what decides which clients a full handshake on `server` accepts:
 * `requestCert`, `rejectUnauthorized`, the trusted CAs (Node's default roots when `ca` is not
 * given), the CRLs, and a PFX (which may carry CAs). The same for every server that accepts
 * the same clients; 'none' for every server that asks for no certificate.
 */
function clientAuthPolicy(server) {
  if (server.requestCert !== true) return 'none'
  const digest = createHash('sha256')
  const field = (name, value) => digest.update(`${name}:${value.length}:`).update(value)
  field('rejectUnauthorized', String(server.rejectUnauthorized !== false))
  const ca = server.ca === undefined || server.ca === null ? defaultTrust() : server.ca
  for (const der of derBlocks(ca)) field('ca', der)
  for (const der of derBlocks(server.crl)) field('crl', der)
  for (const der of derBlocks(server.pfx === undefined ? undefined : [].concat(server.pfx).map((p) => p && p.buf ? p.buf : p))) {
    field('pfx', der)
  }
  return digest.digest('hex')
}

/**
 * The session id context attach() gives `server`: the ring's (or the user's) as it is for a
 * server that asks for no certificate, so that such servers keep sharing sessions with plain
 * Node servers of the same keys and context; else a digest of it and the policy, which no
 * context of another policy can equal.
 */
function sessionIdContextFor(baseContext, server) {
  const policy = clientAuthPolicy(server)
  if (policy === 'none') return baseContext
  return createHash('sha256')
    .update(`${CONTEXT_LABEL}\0${baseContext}\0${policy}`)
    .digest('hex')
    .slice(0, CONTEXT_HEX_LENGTH)
}

module.exports = { clientAuthPolicy, sessionIdContextFor }
