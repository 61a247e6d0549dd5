'use strict'

// No session resumes on a server whose client-certificate policy would have refused that
// client in a full handshake, whatever the servers share: one ring, or one fleet secret.
// Servers with the same policy still resume each other's sessions.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const crypto = require('node:crypto')
const { execFileSync } = require('node:child_process')
const { TicketKeyRing, attach } = require('..')
const { clientAuthPolicy } = require('../lib/client-auth.js')
const { key, cert, HOST, listen, close } = require('../test-support/helpers.js')

const MODES = [
  { mode: 'native', cipher: 'aes-256-cbc' },
  { mode: 'callback', cipher: 'aes-128-cbc' },
]
const VERSIONS = ['TLSv1.2', 'TLSv1.3']
const SECRET = Buffer.alloc(32, 7)

// Two client CAs, X and Y, each with one client certificate. openssl needs files to sign.
const pki = {}
let dir
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-client-auth-'))
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  for (const name of ['X', 'Y']) {
    openssl('req', '-x509', ...ec, '-keyout', `ca${name}.key`, '-out', `ca${name}.crt`, '-days', '2', '-subj', `/CN=Test CA ${name}`)
    openssl('req', ...ec, '-keyout', `client${name}.key`, '-out', `client${name}.csr`, '-subj', `/CN=client of ${name}`)
    openssl('x509', '-req', '-in', `client${name}.csr`, '-CA', `ca${name}.crt`, '-CAkey', `ca${name}.key`,
      '-CAcreateserial', '-out', `client${name}.crt`, '-days', '2')
    pki[name] = {
      ca: fs.readFileSync(path.join(dir, `ca${name}.crt`)),
      client: { key: fs.readFileSync(path.join(dir, `client${name}.key`)), cert: fs.readFileSync(path.join(dir, `client${name}.crt`)) },
    }
  }
})
after(() => fs.rmSync(dir, { recursive: true, force: true }))

const OPEN = {}
const strict = (ca) => ({ requestCert: true, rejectUnauthorized: true, ca })

/** A server that records what its handler saw of each connection. */
function recordingServer(options) {
  const seen = []
  const server = tls.createServer({ key, cert, ...options }, (socket) => {
    seen.push({ reused: socket.isSessionReused(), authorized: socket.authorized, peer: Boolean(socket.getPeerCertificate()?.subject) })
    socket.end('hi')
  })
  server.on('tlsClientError', () => {})
  server.seen = seen
  return server
}

/** One connection; never rejects: { reused, session, error }. */
function attempt(port, { version, session, client }) {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: HOST, port, ca: cert, servername: 'localhost', session, minVersion: version, maxVersion: version, ...client,
    })
    const result = { reused: false, session: null, error: null }
    socket.on('secureConnect', () => {
      result.reused = socket.isSessionReused()
      if (version === 'TLSv1.2') result.session = socket.getSession()
    })
    socket.on('session', (s) => { result.session ??= s })
    socket.on('data', () => {})
    socket.on('error', (err) => { result.error = err })
    // The server ends every connection it accepts, after its TLS 1.3 tickets.
    socket.on('close', () => resolve(result))
  })
}

/** Gets a session from `from`, offers it to `to`; returns what `to`'s handler saw. */
async function carry({ from, to, version, client }) {
  const fromPort = await listen(from)
  const toPort = await listen(to)
  const first = await attempt(fromPort, { version, client })
  assert.equal(first.error, null, `the first server accepts the client: ${first.error?.message}`)
  assert.ok(first.session, 'the first server issued a session')
  const second = await attempt(toPort, { version, client, session: first.session })
  return { second, seen: to.seen }
}

async function withServers(servers, fn) {
  try {
    return await fn()
  } finally {
    await Promise.all(servers.map((s) => (s.listening ? close(s) : undefined)))
  }
}

for (const { mode, cipher } of MODES) {
  describe(`${mode} mode`, () => {
    for (const version of VERSIONS) {
      test(`${version}: a session from an open server does not let a client without a certificate into a strict one`, async () => {
        const ring = new TicketKeyRing({ cipher })
        const open = recordingServer(OPEN)
        const locked = recordingServer(strict(pki.X.ca))
        attach(open, ring, { mode })
        attach(locked, ring, { mode })
        await withServers([open, locked], async () => {
          const { second, seen } = await carry({ from: open, to: locked, version })
          assert.equal(second.reused, false, 'the client did not resume')
          assert.deepEqual(seen.filter((c) => c.reused || !c.peer), [], 'the strict server accepted nobody without a certificate')
        })
        ring.destroy()
      })

      test(`${version}: a client of CA Y does not resume on a server that trusts only CA X`, async () => {
        const ring = new TicketKeyRing({ cipher })
        const trustsY = recordingServer(strict(pki.Y.ca))
        const trustsX = recordingServer(strict(pki.X.ca))
        attach(trustsY, ring, { mode })
        attach(trustsX, ring, { mode })
        await withServers([trustsY, trustsX], async () => {
          const { second, seen } = await carry({ from: trustsY, to: trustsX, version, client: pki.Y.client })
          assert.equal(second.reused, false)
          assert.deepEqual(seen, [], 'the server that trusts only X let no client of Y in')
        })
        ring.destroy()
      })

      test(`${version}: requestCert turned on after attach(), or truthy but not true, lets no client of another CA resume`, async (t) => {
        if (mode === 'callback') return t.skip('callback mode cannot check a session when it opens (README: Security)')
        for (const turnOn of ['after attach()', 'requestCert: 1']) {
          const ring = new TicketKeyRing({ cipher })
          const trustsY = recordingServer(strict(pki.Y.ca))
          // Both trust only X in a full handshake; neither had requestCert === true at attach().
          const trustsX = recordingServer(turnOn === 'requestCert: 1' ? { ca: pki.X.ca, requestCert: 1 } : { ca: pki.X.ca })
          attach(trustsY, ring, { mode })
          attach(trustsX, ring, { mode })
          if (turnOn === 'after attach()') trustsX.requestCert = true
          await withServers([trustsY, trustsX], async () => {
            const { second, seen } = await carry({ from: trustsY, to: trustsX, version, client: pki.Y.client })
            assert.equal(second.reused, false, turnOn)
            assert.deepEqual(seen.filter((c) => c.reused), [], `${turnOn}: no resumed connection`)
          })
          ring.destroy()
        }
      })

      test(`${version}: fleet-secret rings in separate servers keep the policies apart too`, async () => {
        const rings = [new TicketKeyRing({ cipher, secret: SECRET }), new TicketKeyRing({ cipher, secret: SECRET })]
        const open = recordingServer(OPEN)
        const locked = recordingServer(strict(pki.X.ca))
        attach(open, rings[0], { mode })
        attach(locked, rings[1], { mode })
        await withServers([open, locked], async () => {
          const { second, seen } = await carry({ from: open, to: locked, version })
          assert.equal(second.reused, false)
          assert.deepEqual(seen.filter((c) => c.reused || !c.peer), [])
        })
        rings.forEach((r) => r.destroy())
      })

      test(`${version}: servers with the same policy still resume each other's sessions`, async () => {
        const rings = [new TicketKeyRing({ cipher, secret: SECRET }), new TicketKeyRing({ cipher, secret: SECRET })]
        // The same CA set, given in another order and form: the policy is the same.
        const a = recordingServer(strict([pki.X.ca, pki.Y.ca]))
        const b = recordingServer(strict(Buffer.concat([pki.Y.ca, pki.X.ca])))
        const openA = recordingServer(OPEN)
        const openB = recordingServer({ ...OPEN, ca: pki.X.ca })
        attach(a, rings[0], { mode })
        attach(b, rings[1], { mode })
        attach(openA, rings[0], { mode })
        attach(openB, rings[1], { mode })
        await withServers([a, b, openA, openB], async () => {
          const strictCase = await carry({ from: a, to: b, version, client: pki.X.client })
          assert.equal(strictCase.second.reused, true, 'resumed across two servers that trust the same CAs')
          assert.deepEqual(strictCase.seen, [{ reused: true, authorized: true, peer: true }])
          const openCase = await carry({ from: openA, to: openB, version })
          assert.equal(openCase.second.reused, true, 'resumed across two servers that ask for no certificate')
        })
        rings.forEach((r) => r.destroy())
      })

      test(`${version}: a ca Node does not load (DER) trusts nothing, and no session says otherwise`, async () => {
        const ring = new TicketKeyRing({ cipher })
        const pem = recordingServer(strict(pki.X.ca))
        const der = recordingServer(strict(new crypto.X509Certificate(pki.X.ca).raw))
        attach(pem, ring, { mode })
        attach(der, ring, { mode })
        await withServers([pem, der], async () => {
          const { second, seen } = await carry({ from: pem, to: der, version, client: pki.X.client })
          assert.equal(second.reused, false)
          assert.deepEqual(seen, [], 'the server that loaded no CA let nobody in')
        })
        ring.destroy()
      })

      test(`${version}: setSecureContext() with another client CA changes the policy`, async () => {
        const ring = new TicketKeyRing({ cipher })
        const first = recordingServer(strict(pki.Y.ca))
        const second = recordingServer(strict(pki.Y.ca))
        attach(first, ring, { mode })
        attach(second, ring, { mode })
        second.setSecureContext({ key, cert, ...strict(pki.X.ca) })
        await withServers([first, second], async () => {
          const { second: result, seen } = await carry({ from: first, to: second, version, client: pki.Y.client })
          assert.equal(result.reused, false)
          assert.deepEqual(seen, [])
        })
        ring.destroy()
      })
    }
  })
}

describe('native mode, where the session id context cannot tell', () => {
  for (const version of VERSIONS) {
    test(`${version}: a client without a certificate never resumes on a server that asks for one (Node 20 and 22 would call it authorized)`, async () => {
      const ring = new TicketKeyRing()
      const asks = recordingServer({ requestCert: true, rejectUnauthorized: false, ca: pki.X.ca })
      attach(asks, ring, { mode: 'native' })
      try {
        const port = await listen(asks)
        const first = await attempt(port, { version })
        const again = await attempt(port, { version, session: first.session })
        assert.equal(again.reused, false)
        assert.deepEqual(asks.seen.filter((c) => c.authorized && !c.peer), [], 'no certificate-less connection was authorized')
        assert.equal(asks.seen.length, 2)
      } finally {
        await close(asks)
        ring.destroy()
      }
    })

    test(`${version}: a server made to ask for certificates after attach() refuses a session without one`, async () => {
      // The session id context still says "open", so only the native decrypt callback stands
      // between this session and the handler.
      const ring = new TicketKeyRing()
      const open = recordingServer(OPEN)
      const locked = recordingServer(OPEN)
      attach(open, ring, { mode: 'native' })
      attach(locked, ring, { mode: 'native' })
      locked.requestCert = true
      locked.rejectUnauthorized = true
      await withServers([open, locked], async () => {
        const { second, seen } = await carry({ from: open, to: locked, version })
        assert.equal(second.reused, false)
        assert.deepEqual(seen.filter((c) => c.reused || !c.peer), [])
      })
      ring.destroy()
    })
  }
})

test('the default trust includes NODE_EXTRA_CA_CERTS and the trust flags, on every Node', () => {
  const policyWith = (env, execArgv = []) => execFileSync(process.execPath, [...execArgv, '-p',
    `require(${JSON.stringify(require.resolve('../lib/client-auth.js'))}).clientAuthPolicy({ requestCert: true })`],
  { env: { ...process.env, NODE_EXTRA_CA_CERTS: '', ...env }, encoding: 'utf8' }).trim()
  const plain = policyWith({})
  assert.equal(policyWith({}), plain, 'the same trust, the same policy')
  assert.notEqual(policyWith({ NODE_EXTRA_CA_CERTS: path.join(dir, 'caX.crt') }), plain)
  assert.notEqual(policyWith({}, ['--use-openssl-ca']), plain)
  assert.equal(clientAuthPolicy({ requestCert: false, ca: pki.X.ca }), 'none')
})

test('a CRL counts in the policy in every form Node takes it: string, Buffer, Uint8Array, DataView', () => {
  // Node loads a `crl` from any ArrayBufferView. 783843f read only strings and Buffers, so a
  // server whose CRL came as a Uint8Array had the policy of one without it, and resumed
  // sessions that its CRL would have refused (lib/pem.js reads every form alike now).
  const pem = `-----BEGIN X509 CRL-----\n${Buffer.alloc(48, 5).toString('base64')}\n-----END X509 CRL-----\n`
  const bytes = Buffer.from(pem)
  const base = { requestCert: true, ca: pki.X.ca }
  const withCrl = clientAuthPolicy({ ...base, crl: pem })
  assert.notEqual(withCrl, clientAuthPolicy(base))
  assert.equal(clientAuthPolicy({ ...base, crl: bytes }), withCrl)
  assert.equal(clientAuthPolicy({ ...base, crl: new Uint8Array(bytes) }), withCrl)
  assert.equal(clientAuthPolicy({ ...base, crl: [new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)] }), withCrl)
})
