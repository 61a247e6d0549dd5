'use strict'

// The client-certificate policy of a server, which session-id-context.js folds into the
// session id context that attach() sets. OpenSSL resumes a session only on a server whose session id context equals
// the one the session was made under, so two servers that share a ring resume each other's
// sessions only when a full handshake on either would have accepted the same clients.
//
// A session keeps the verification result of its full handshake: resumed elsewhere, it would
// skip that server's client authentication (Node 20 and 22 even report such a TLS 1.3
// connection as `authorized` without a peer certificate).

const { createHash, X509Certificate } = require('node:crypto')
const fs = require('node:fs')
const tls = require('node:tls')
const { entriesOf, pemBlocks } = require('./pem.js')

// The PEM labels OpenSSL's PEM_read_bio_X509_AUX takes, which is how Node loads `ca`; it skips
// blocks of other labels and stops at the first certificate that does not parse.
const CERTIFICATE_LABELS = ['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE']
// Node's addCRL reads PEM "X509 CRL" blocks.
const CRL_LABELS = ['X509 CRL']
// Flags and variables that change Node's default trust store where tls.rootCertificates does
// not show it (Node 20 has no tls.getCACertificates()).
const TRUST_FLAGS = /^--(use-openssl-ca|use-bundled-ca|use-system-ca)$/
const TRUST_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'NODE_USE_SYSTEM_CA', 'SSL_CERT_FILE', 'SSL_CERT_DIR']

/**
 * The DER of every certificate Node loads from a `ca` option, as a sorted set: only PEM, as
 * Node reads it (a DER Buffer loads nothing), so that a policy never claims a trust that the
 * server does not have.
 */
function loadedCertificates(option) {
  const loaded = []
  for (const entry of entriesOf(option)) {
    for (const { label, der } of pemBlocks(entry)) {
      if (!CERTIFICATE_LABELS.includes(label)) continue
      if (label !== 'TRUSTED CERTIFICATE' && !parses(der)) break
      loaded.push(der)
    }
  }
  return sortedSet(loaded)
}

/** The DER of every PEM CRL block in a `crl` option, as a sorted set. */
function loadedCrls(option) {
  const loaded = []
  for (const entry of entriesOf(option)) {
    for (const { label, der } of pemBlocks(entry)) if (CRL_LABELS.includes(label)) loaded.push(der)
  }
  return sortedSet(loaded)
}

function parses(der) {
  try {
    new X509Certificate(der) // eslint-disable-line no-new
    return true
  } catch {
    return false
  }
}

// A trust set has no order, and the same certificate twice trusts nothing more.
function sortedSet(buffers) {
  return [...new Set(buffers.map((b) => b.toString('hex')))].sort().map((h) => Buffer.from(h, 'hex'))
}

/** What Node trusts when a server gives no `ca`: its roots, and whatever extends or replaces them. */
function defaultTrust(field) {
  if (typeof tls.getCACertificates === 'function') {
    for (const der of loadedCertificates(tls.getCACertificates('default'))) field('default-ca', der)
  } else {
    for (const der of loadedCertificates(tls.rootCertificates)) field('default-ca', der)
    const extra = process.env.NODE_EXTRA_CA_CERTS
    if (extra) {
      let text = null
      try {
        text = fs.readFileSync(extra, 'latin1')
      } catch {}
      for (const der of loadedCertificates(text ?? undefined)) field('extra-ca', der)
      if (text === null) field('extra-ca-unreadable', extra)
    }
  }
  for (const flag of process.execArgv.filter((a) => TRUST_FLAGS.test(a))) field('trust-flag', flag)
  for (const name of TRUST_VARIABLES) if (process.env[name] !== undefined) field(name, process.env[name])
}

/**
 * A digest of what decides which clients a full handshake on `server` accepts:
 * `requestCert`, `rejectUnauthorized`, the CAs Node loads from `ca` (else its default trust,
 * with NODE_EXTRA_CA_CERTS and the trust flags), the CRLs, and a PFX (which may carry CAs).
 * The same for every server that accepts the same clients; 'none' for every server that asks
 * for no certificate.
 */
function clientAuthPolicy(server) {
  // Node asks for a certificate on each connection when requestCert is truthy, not only true.
  if (!server.requestCert) return 'none'
  const digest = createHash('sha256')
  const field = (name, value) => digest.update(`${name}:${Buffer.byteLength(value)}:`).update(value)
  field('rejectUnauthorized', String(server.rejectUnauthorized !== false))
  // Node takes any falsy `ca` (undefined, '', null) for its default trust, as it does here.
  if (!server.ca) defaultTrust(field)
  else for (const der of loadedCertificates(server.ca)) field('ca', der)
  for (const der of loadedCrls(server.crl)) field('crl', der)
  // A PKCS#12 bundle may carry CAs: any difference in it is a different policy.
  for (const pfx of entriesOf(server.pfx)) field('pfx', Buffer.from(String(pfx && pfx.buf ? pfx.buf.toString('base64') : pfx)))
  return digest.digest('hex')
}

module.exports = { clientAuthPolicy }
