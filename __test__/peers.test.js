'use strict'

// Other TLS stacks as clients: OpenSSL's s_client and GnuTLS's gnutls-cli.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TicketKeyRing, attach } = require('..')
const { cert, tlsServer, listen, close, run, sessionLines } = require('../test-support/helpers.js')

for (const { mode, cipher } of [{ mode: 'native', cipher: 'aes-256-cbc' }, { mode: 'callback', cipher: 'aes-128-cbc' }]) {
  describe(`${mode} mode`, () => {
    let ring, server, port, dir
    before(async () => {
      ring = new TicketKeyRing({ cipher })
      server = tlsServer()
      attach(server, ring, { mode })
      port = await listen(server)
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-peers-'))
      fs.writeFileSync(path.join(dir, 'ca.pem'), cert)
    })
    after(async () => {
      await close(server)
      ring.destroy()
      fs.rmSync(dir, { recursive: true, force: true })
    })

    test('openssl s_client -reconnect says New, then Reused five times (TLS 1.2)', async () => {
      const resumed = ring.stats().resumed
      const { stdout } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost',
        '-tls1_2', '-reconnect'])
      const lines = sessionLines(stdout)
      assert.equal(lines.length, 6, stdout)
      assert.match(lines[0], /^New, TLSv1\.2, Cipher is /)
      for (const line of lines.slice(1)) assert.match(line, /^Reused, TLSv1\.2, Cipher is /)
      assert.equal(ring.stats().resumed - resumed, 5, 'every reconnection resumed through a ticket of the ring')
    })

    test('openssl s_client resumes TLS 1.3 with -sess_out and -sess_in', async () => {
      const sess = path.join(dir, `${mode}.sess`)
      const first = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost',
        '-tls1_3', '-ign_eof', '-sess_out', sess])
      assert.match(sessionLines(first.stdout)[0], /^New, TLSv1\.3/)
      const resumed = ring.stats().resumed
      const second = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost',
        '-tls1_3', '-ign_eof', '-sess_in', sess])
      assert.match(sessionLines(second.stdout)[0], /^Reused, TLSv1\.3/, second.stdout)
      assert.equal(ring.stats().resumed - resumed, 1)
    })

    // TLS 1.2 only: against any Node server, plain or attached, `gnutls-cli --resume
    // --waitresumption` (GnuTLS 3.7) waits forever for TLS 1.3 tickets, and without that flag
    // it reconnects before they arrive.
    test('gnutls-cli --resume resumes (TLS 1.2)', async () => {
      const resumed = ring.stats().resumed
      const { stdout, stderr } = await run('gnutls-cli', ['--resume', '--priority', 'NORMAL:-VERS-TLS1.3',
        `--x509cafile=${path.join(dir, 'ca.pem')}`, '-p', String(port), 'localhost'])
      assert.match(stdout + stderr, /\*\*\* This is a resumed session/, stdout + stderr)
      assert.equal(ring.stats().resumed - resumed, 1)
    })
  })
}
