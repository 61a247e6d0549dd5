'use strict'

// Secret-derived rings at fleet scale: scopes (one secret, separate keys per region) and
// moving a fleet to a new secret with previousSecrets, server by server, on real servers.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { TicketKeyRing, attach } = require('..')
const { tlsServer, listen, close, connect } = require('../test-support/helpers.js')

const OLD = Buffer.alloc(32, 0x51)
const NEW = Buffer.alloc(32, 0x52)
const VERSIONS = ['TLSv1.2', 'TLSv1.3']

/** Servers on their own rings; `use(i, options)` restarts server i on a ring of `options`. */
async function fleet(count, options) {
  const servers = []
  for (let i = 0; i < count; i++) {
    const server = tlsServer()
    const ring = new TicketKeyRing(options)
    servers.push({ server, ring, handle: attach(server, ring, { mode: 'native' }), port: await listen(server) })
  }
  return {
    servers,
    use(i, ringOptions) {
      const s = servers[i]
      s.handle.detach()
      s.ring.destroy()
      s.ring = new TicketKeyRing(ringOptions)
      s.handle = attach(s.server, s.ring, { mode: 'native' })
    },
    async close() {
      for (const s of servers) {
        await close(s.server)
        s.ring.destroy()
      }
    },
  }
}

describe('scopes', () => {
  test('one secret, two scopes: each scope resumes its own sessions and never the other\'s', async () => {
    const f = await fleet(4, { secret: OLD, scope: 'eu-west' })
    try {
      f.use(2, { secret: OLD, scope: 'us-east' })
      f.use(3, { secret: OLD, scope: 'us-east' })
      const [eu1, eu2, us1, us2] = f.servers.map((s) => s.port)
      assert.equal(f.servers[0].ring.sessionIdContext === f.servers[2].ring.sessionIdContext, false)
      for (const version of VERSIONS) {
        for (const [from, to, same] of [[eu1, eu2, true], [us1, us2, true], [eu1, us1, false], [us2, eu2, false]]) {
          const first = await connect(from, { version })
          const second = await connect(to, { version, session: first.session })
          assert.equal(second.reused, same, `${version} ${from} -> ${to}`)
        }
      }
      // Another scope's tickets are under keys this ring never held.
      assert.ok(f.servers[1].handle.stats().unknownKey + f.servers[1].handle.stats().notResumed > 0)
    } finally {
      await f.close()
    }
  })

  test('a scope needs a secret, and is a short string', () => {
    assert.throws(() => new TicketKeyRing({ scope: 'eu' }), { code: 'ERR_INVALID_ARG_VALUE', message: /needs options.secret/ })
    assert.throws(() => new TicketKeyRing({ secret: OLD, scope: '' }), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => new TicketKeyRing({ secret: OLD, scope: 'x'.repeat(256) }), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => new TicketKeyRing({ secret: OLD, scope: 7 }), { code: 'ERR_INVALID_ARG_TYPE' })
    // Ill-formed strings would be the same scope as the one with U+FFFD in their place.
    for (const scope of ['\uD800', 'eu\uD83D', '\uDC00x']) {
      assert.throws(() => new TicketKeyRing({ secret: OLD, scope }), { code: 'ERR_INVALID_ARG_VALUE' })
    }
    new TicketKeyRing({ secret: OLD, scope: 'région-😀' }).destroy()
  })
})

describe('previousSecrets', () => {
  test('a rolling move to a new secret loses no resumption at any step', async () => {
    const schedule = { rotationInterval: 10, ticketLifetime: 60 }
    const f = await fleet(3, { ...schedule, secret: OLD })
    const losses = []
    // Sessions from every server, offered to every other; and sessions from before the move.
    const before = []
    for (const s of f.servers) for (const version of VERSIONS) before.push({ version, session: (await connect(s.port, { version })).session })
    async function check(step, { older = true } = {}) {
      for (const version of VERSIONS) {
        for (const a of f.servers) {
          const first = await connect(a.port, { version })
          for (const b of f.servers) {
            if (a === b) continue
            const second = await connect(b.port, { version, session: first.session })
            if (!second.reused) losses.push(`${step}: ${version} ${a.port} -> ${b.port}`)
          }
        }
      }
      if (!older) return
      for (const { version, session } of before) {
        for (const b of f.servers) {
          if (!(await connect(b.port, { version, session })).reused) losses.push(`${step}: a session from before the move on ${b.port}`)
        }
      }
    }
    try {
      // 1. Every server learns the new secret, opening its tickets and sealing none.
      for (let i = 0; i < 3; i++) {
        f.use(i, { ...schedule, secret: OLD, previousSecrets: [NEW] })
        await check(`learn ${i}`)
      }
      // 2. Every server seals with the new secret and still opens the old one's tickets.
      for (let i = 0; i < 3; i++) {
        f.use(i, { ...schedule, secret: NEW, previousSecrets: [OLD] })
        await check(`switch ${i}`)
      }
      // 3. Once every ticket of the old secret has expired (a ticketLifetime after the last
      // switch; not waited for here), it goes: the new secret's sessions keep resuming.
      for (let i = 0; i < 3; i++) {
        f.use(i, { ...schedule, secret: NEW })
        await check(`drop ${i}`, { older: false })
      }
      assert.deepEqual(losses, [])
      // The session id context never changed: it does not come from the secret.
      assert.equal(f.servers[0].ring.sessionIdContext, new TicketKeyRing({ secret: OLD }).sessionIdContext)
    } finally {
      await f.close()
    }
  })

  test('out of order, it would lose them: the step that cannot be skipped', async () => {
    const f = await fleet(2, { secret: OLD })
    try {
      // One server seals with the new secret before the other has learnt it.
      f.use(0, { secret: NEW, previousSecrets: [OLD] })
      const first = await connect(f.servers[0].port, { version: 'TLSv1.3' })
      const second = await connect(f.servers[1].port, { version: 'TLSv1.3', session: first.session })
      assert.equal(second.reused, false)
      assert.equal(f.servers[1].handle.stats().unknownKey, 1)
    } finally {
      await f.close()
    }
  })

  test('previousSecrets are checked like the secret, need a secret, and never show', () => {
    assert.throws(() => new TicketKeyRing({ previousSecrets: [OLD] }), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => new TicketKeyRing({ secret: NEW, previousSecrets: OLD }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => new TicketKeyRing({ secret: NEW, previousSecrets: [OLD.subarray(0, 16)] }),
      { code: 'ERR_INVALID_ARG_VALUE', message: /previousSecrets\[0\]/ })
    assert.throws(() => new TicketKeyRing({ secret: NEW, previousSecrets: Array(5).fill(OLD) }), { code: 'ERR_OUT_OF_RANGE' })
    const ring = new TicketKeyRing({ secret: NEW, previousSecrets: [OLD], scope: 'eu' })
    try {
      const shown = require('node:util').inspect(ring, { showHidden: true }) + JSON.stringify(ring) + JSON.stringify(ring.keys())
      assert.equal(shown.includes(OLD.toString('hex').slice(0, 16)), false)
      assert.equal(shown.includes(OLD.toString('base64').slice(0, 16)), false)
    } finally {
      ring.destroy()
    }
  })
})

let canScan = false
try {
  fs.accessSync(`/proc/${process.pid}/mem`, fs.constants.R_OK)
  canScan = true
} catch {}

test('destroy() wipes what derives the keys of the secret and of previousSecrets (procfs scan)', { skip: !canScan && 'no /proc/<pid>/mem' }, async () => {
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, 'fixtures', 'secret-memory.js')], (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }))
      else resolve(JSON.parse(stdout))
    })
  })
  assert.deepEqual(out.before, ['previous', 'secret'], 'the scan finds them while the ring lives (the control)')
  assert.deepEqual(out.after, [], 'none is left once the ring is destroyed, with its server still up')
})
