'use strict'

// What attach() and detach() must survive, found by probing from outside: a second copy of
// the package, a shadowed `_external`, a closed context, stats read mid-handshake, and a
// server's own session timeout.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const { TicketKeyRing, attach, inspectSession } = require('..')
const binding = require('../binding.js')
const { key, cert, tlsServer, listen, close, connect, run } = require('../test-support/helpers.js')

const MODES = [
  { mode: 'native', cipher: 'aes-256-cbc' },
  { mode: 'callback', cipher: 'aes-128-cbc' },
]
const ROOT = path.join(__dirname, '..')

/** A second copy of the package, as npm installs two versions side by side. */
function secondCopy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-second-copy-'))
  for (const entry of fs.readdirSync(ROOT)) {
    if (entry === 'index.js' || entry === 'binding.js' || entry === 'package.json' || entry.endsWith('.node')) {
      fs.copyFileSync(path.join(ROOT, entry), path.join(dir, entry))
    }
  }
  fs.cpSync(path.join(ROOT, 'lib'), path.join(dir, 'lib'), { recursive: true })
  return { dir, pkg: require(dir) }
}

async function hint(port) {
  return inspectSession((await connect(port, { version: 'TLSv1.2' })).session).ticketLifetimeHint
}

test("detach() gives the server back its own session timeout (OpenSSL's default when none was set)", async () => {
  const ring = new TicketKeyRing({ ticketLifetime: 86400 })
  const server = tlsServer()
  try {
    const port = await listen(server)
    const before = await hint(port)
    const handle = attach(server, ring)
    assert.equal(await hint(port), 86400)
    handle.detach()
    assert.equal(await hint(port), before)
    assert.equal(before, 7200)
  } finally {
    await close(server)
    ring.destroy()
  }
})

for (const { mode, cipher } of MODES) {
  test(`${mode}: a second copy of the package cannot attach over the first, in either order`, async () => {
    const second = secondCopy()
    const ours = new TicketKeyRing({ cipher })
    const theirs = new second.pkg.TicketKeyRing({ cipher })
    const server = tlsServer()
    try {
      const port = await listen(server)
      const first = attach(server, ours, { mode })
      assert.throws(() => second.pkg.attach(server, theirs, { mode }), { code: 'ERR_INVALID_STATE' })
      assert.equal((await connect(port, { session: (await connect(port)).session })).reused, true, 'the first still serves')
      first.detach()
      const other = second.pkg.attach(server, theirs, { mode })
      assert.throws(() => attach(server, ours, { mode }), { code: 'ERR_INVALID_STATE' })
      first.detach()
      assert.equal(other.detached, false)
      const issued = theirs.stats().issued
      assert.equal((await connect(port, { session: (await connect(port)).session })).reused, true)
      assert.ok(theirs.stats().issued > issued, "the second copy's ring seals, untouched by the first copy's detach()")
      other.detach()
    } finally {
      await close(server)
      ours.destroy()
      theirs.destroy()
      fs.rmSync(second.dir, { recursive: true, force: true })
    }
  })

  test(`${mode}: stats() never counts a ticket before its handshake`, async () => {
    const ring = new TicketKeyRing({ cipher })
    const server = tlsServer()
    const handle = attach(server, ring, { mode })
    try {
      const port = await listen(server)
      for (let i = 0; i < 20; i++) {
        const version = i % 2 ? 'TLSv1.3' : 'TLSv1.2'
        const first = await connect(port, { version })
        const again = await connect(port, { version, session: first.session })
        assert.equal(again.reused, true)
        assert.equal(handle.stats().notResumed, 0, `round ${i}: ${JSON.stringify(handle.stats())}`)
      }
    } finally {
      await close(server)
      ring.destroy()
    }
  })

  test(`${mode}: detach() after the secure context was closed does not crash the process`, async () => {
    const script = `
      const tls = require('node:tls')
      const { TicketKeyRing, attach } = require(${JSON.stringify(ROOT)})
      const { key, cert } = require(${JSON.stringify(path.join(ROOT, 'lib', 'selfsigned.js'))}).selfSignedCertificate()
      const server = tls.createServer({ key, cert })
      const handle = attach(server, new TicketKeyRing({ cipher: '${cipher}' }), { mode: '${mode}' })
      server._sharedCreds.context.close()
      handle.detach()
      console.log('detached', handle.detached)
    `
    const { code, stdout, stderr } = await run(process.execPath, ['-e', script])
    assert.equal(code, 0, stderr)
    assert.equal(stdout.trim(), 'detached true')
  })
}

test('native: an own _external property on the context cannot stand in for the real one', async () => {
  const ring = new TicketKeyRing()
  const server = tlsServer()
  const decoy = tls.createSecureContext({ key, cert, sessionTimeout: 4321 }).context
  Object.defineProperty(server._sharedCreds.context, '_external', { value: decoy._external, configurable: true })
  try {
    const handle = attach(server, ring, { mode: 'native' })
    assert.equal(handle.mode, 'native')
    const port = await listen(server)
    const issued = ring.stats().issued
    assert.equal((await connect(port, { session: (await connect(port)).session })).reused, true)
    assert.ok(ring.stats().issued > issued, 'the ring seals on the real context')
  } finally {
    await close(server)
    ring.destroy()
  }
})

test('callback mode: fillDecrypt reads the key name from the one buffer it fills', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
  try {
    const native = binding.NativeRing.explicit('aes-128-cbc', 3600, 7200, ring.getTicketKeys())
    const scratch = Buffer.alloc(64)
    ring.getTicketKeys().copy(scratch, 0, 0, 16)
    assert.equal(native.fillDecrypt(scratch), binding.TicketOutcome.Resume)
    assert.deepEqual(scratch.subarray(16, 48), ring.getTicketKeys().subarray(16, 48))
    assert.equal(native.fillDecrypt(Buffer.alloc(63)), binding.TicketOutcome.Unusable, 'a scratch of another size is refused')
    native.destroy()
  } finally {
    ring.destroy()
  }
})

test("stats() read in the server's own connection listener counts that handshake", async () => {
  const ring = new TicketKeyRing()
  const counts = []
  const server = tls.createServer({ key, cert }, (socket) => {
    counts.push(handle.stats().handshakes)
    socket.end('x')
  })
  const handle = attach(server, ring)
  try {
    const port = await listen(server)
    await connect(port)
    await connect(port)
    assert.deepEqual(counts, [1, 2])
  } finally {
    await close(server)
    ring.destroy()
  }
})

test('detach() gives back a session timeout set through setSecureContext() while attached', async () => {
  const ring = new TicketKeyRing({ ticketLifetime: 86400 })
  const server = tlsServer()
  try {
    const port = await listen(server)
    const handle = attach(server, ring)
    server.setSecureContext({ key, cert, sessionTimeout: 900 })
    assert.equal(await hint(port), 86400, 'the ring keeps its lifetime while attached')
    handle.detach()
    assert.equal(server.sessionTimeout, 900)
    assert.equal(await hint(port), 900)
  } finally {
    await close(server)
    ring.destroy()
  }
})

test('attach() refuses servers without a secure context with a code, and a closed context with ERR_INVALID_STATE', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
  try {
    const hollow = Object.create(tls.Server.prototype)
    assert.throws(() => attach(hollow, ring), { code: 'ERR_INVALID_ARG_VALUE' })
    const fake = Object.assign(Object.create(tls.Server.prototype), { _sharedCreds: { context: {} } })
    assert.throws(() => attach(fake, ring), { code: 'ERR_INVALID_ARG_VALUE' })
    for (const mode of ['native', 'callback']) {
      const server = tlsServer()
      attach(server, ring, { mode }).detach()
      server._sharedCreds.context.close()
      assert.throws(() => attach(server, ring, { mode }), { code: 'ERR_INVALID_STATE', message: /closed/ }, mode)
    }
  } finally {
    ring.destroy()
  }
})
