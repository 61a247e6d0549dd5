'use strict'

// A throwaway self-signed certificate for loopback servers (the demo and the tests), made
// with the openssl command line, since Node has no API that creates certificates.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

let cached = null

/** The process's throwaway certificate for localhost and 127.0.0.1, made once. */
function selfSignedCertificate() {
  cached ??= makeSelfSignedCertificate()
  return cached
}

/** A new throwaway certificate for localhost and 127.0.0.1. */
function makeSelfSignedCertificate() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-cert-'))
  try {
    const keyFile = path.join(dir, 'key.pem')
    const certFile = path.join(dir, 'cert.pem')
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

module.exports = { selfSignedCertificate, makeSelfSignedCertificate }
