'use strict'

// The session id contexts of the servers a Node server can share a key file with. OpenSSL
// resumes a session only on a server whose session id context equals the one the session was
// made under, whatever the keys; so a Node server in a fleet with nginx or HAProxy takes
// their context, computed from its own certificates (a fleet that shares sessions serves the
// same certificates).

const { createHash } = require('node:crypto')

// nginx's http module (ngx_ssl_session_id_context, src/event/ngx_event_openssl.c): SHA-1 over
// "HTTP", then the SHA-1 of each server certificate's DER in the order of the ssl_certificate
// directives, then the SHA-1 of each client CA name when it verifies clients. 20 bytes.
const NGINX_HTTP_LABEL = 'HTTP'
// HAProxy 2.6 (ssl_set_shctx, src/ssl_sock.c): SHCTX_APPNAME on every bind.
const HAPROXY_CONTEXT = 'haproxy'

const PEERS = ['nginx', 'haproxy']
const FIRST_CERTIFICATE = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/

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
    const text = Buffer.isBuffer(chain) || ArrayBuffer.isView(chain)
      ? Buffer.from(chain.buffer, chain.byteOffset, chain.byteLength).toString('latin1') : String(chain)
    const match = FIRST_CERTIFICATE.exec(text)
    if (match) leaves.push(Buffer.from(match[1].replace(/\s+/g, ''), 'base64'))
  }
  if (leaves.length === 0) {
    const der = context.getCertificate()
    if (Buffer.isBuffer(der) && der.length > 0) leaves.push(der)
  }
  return leaves
}

/**
 * The session id context `peer` uses for a server of `server`'s certificates that asks no
 * client certificate: the bytes to set on the context. Client authentication is refused
 * before this is called (attach.js), so nginx's client CA names never enter.
 */
function peerSessionIdContext(peer, server, context) {
  if (peer === 'haproxy') return Buffer.from(HAPROXY_CONTEXT, 'latin1')
  const certificates = serverCertificates(server, context)
  return sha1(NGINX_HTTP_LABEL, ...certificates.map((der) => sha1(der)))
}

module.exports = { PEERS, peerSessionIdContext }
