'use strict'

// A throwaway self-signed certificate for loopback servers (the demo and the tests), made
// with the openssl command line (Node has no API that creates certificates). openssl writes
// the private key and the certificate to a pipe, so no key ever touches the disk.

const { execFileSync } = require('node:child_process')
const { makeError } = require('./errors.js')

let cached = null

/** The process's throwaway certificate for localhost and 127.0.0.1, made once. */
function selfSignedCertificate() {
  cached ??= makeSelfSignedCertificate()
  return cached
}

function pemBlock(text, label) {
  const match = text.match(new RegExp(`-----BEGIN ${label}-----[^-]+-----END ${label}-----\\n`))
  if (match === null) throw new Error(`openssl req printed no ${label}`)
  return Buffer.from(match[0])
}

/** A new throwaway certificate for localhost and 127.0.0.1. */
function makeSelfSignedCertificate() {
  let out
  try {
    out = openssl()
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
    const error = makeError('ERR_TLS_TICKET_OPENSSL_MISSING',
      'the openssl command is not on PATH: it makes the throwaway certificate of the demo\'s servers. ' +
      'Install OpenSSL (Debian and Ubuntu: apt-get install openssl; RHEL and Fedora: dnf install openssl; ' +
      'Alpine: apk add openssl; macOS: brew install openssl; Windows: it comes with Git for Windows), then run it again',
      makeSelfSignedCertificate)
    Object.defineProperty(error, 'cause', { value: err, enumerable: false, writable: true, configurable: true })
    throw error
  }
  return { key: pemBlock(out, 'PRIVATE KEY'), cert: pemBlock(out, 'CERTIFICATE') }
}

function openssl() {
  return execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', '-', '-out', '-', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'latin1' })
}

module.exports = { selfSignedCertificate, makeSelfSignedCertificate }
