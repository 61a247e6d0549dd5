'use strict'

// A project without an optional peer (redis, prom-client): a coded error with an install hint
// where it is needed, not a MODULE_NOT_FOUND and its require stack, and no unhandled
// rejection. The peers are hidden from a child process by a preload that makes them
// unresolvable, as they would be in a project that never installed them.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

const HIDE = `
const Module = require('node:module')
const hidden = new Set(process.env.HIDE_PEERS.split(','))
const resolve = Module._resolveFilename
Module._resolveFilename = function (request, ...rest) {
  if (hidden.has(request) || [...hidden].some((p) => request.startsWith(p + '/'))) {
    const err = new Error("Cannot find module '" + request + "'\\nRequire stack:\\n- " + (rest[0] && rest[0].filename))
    err.code = 'MODULE_NOT_FOUND'
    throw err
  }
  return resolve.call(this, request, ...rest)
}
`

function runHidden(peers, script) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-peers-'))
  try {
    fs.writeFileSync(path.join(dir, 'hide.js'), HIDE)
    fs.writeFileSync(path.join(dir, 'main.js'), `const pkg = require(${JSON.stringify(ROOT)})\n${script}`)
    const r = spawnSync(process.execPath, ['--require', path.join(dir, 'hide.js'), path.join(dir, 'main.js')],
      { env: { ...process.env, HIDE_PEERS: peers.join(',') }, encoding: 'utf8', timeout: 60_000 })
    return r
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

test('without redis: new RedisKeyStore({ url }) throws ERR_TLS_TICKET_REDIS_UNAVAILABLE with an install hint', () => {
  const r = runHidden(['redis'], `
    process.on('unhandledRejection', (e) => { console.log(JSON.stringify({ unhandled: String(e && e.code) })); process.exit(3) })
    const report = (e) => ({ code: e.code, message: e.message, stackHasRequire: /Require stack/.test(e.stack), cause: e.cause && e.cause.code })
    let out = {}
    try {
      new pkg.RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret: Buffer.alloc(32, 7) })
      out.constructed = true
    } catch (e) { out = report(e) }
    ;(async () => {
      try { await Promise.resolve().then(() => new pkg.RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret: Buffer.alloc(32, 7) })) } catch (e) { out.async = e.code }
      console.log(JSON.stringify(out))
    })()`)
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const out = JSON.parse(r.stdout.trim().split('\n').pop())
  assert.equal(out.code, 'ERR_TLS_TICKET_REDIS_UNAVAILABLE')
  assert.match(out.message, /`npm install redis`/)
  assert.match(out.message, /optional peer dependency/)
  assert.match(out.message, /\{ client \}/)
  assert.equal(out.stackHasRequire, false)
  assert.equal(out.cause, 'MODULE_NOT_FOUND')
  assert.equal(out.async, 'ERR_TLS_TICKET_REDIS_UNAVAILABLE')
})

test('without prom-client: registerMetrics() throws ERR_TLS_TICKET_PROM_CLIENT_UNAVAILABLE; ring.metrics() works', () => {
  const r = runHidden(['prom-client'], `
    const ring = new pkg.TicketKeyRing()
    let out = {}
    try { pkg.registerMetrics(ring) } catch (e) { out = { code: e.code, message: e.message } }
    out.metrics = typeof ring.metrics()
    ring.destroy()
    console.log(JSON.stringify(out))`)
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const out = JSON.parse(r.stdout.trim())
  assert.equal(out.code, 'ERR_TLS_TICKET_PROM_CLIENT_UNAVAILABLE')
  assert.match(out.message, /`npm install prom-client`/)
  assert.notEqual(out.metrics, 'undefined')
})

test('loadPeer: each optional peer has a code and a hint; an error inside an installed peer is left as it is', () => {
  const { loadPeer, PEERS } = require('../lib/peers.js')
  assert.deepEqual(Object.keys(PEERS).sort(), ['ioredis', 'prom-client', 'redis'])
  const r = runHidden(['ioredis'], `
    const { loadPeer } = require(${JSON.stringify(path.join(ROOT, 'lib', 'peers.js'))})
    try { loadPeer('ioredis') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`)
  const out = JSON.parse(r.stdout.trim())
  assert.equal(out.code, 'ERR_TLS_TICKET_IOREDIS_UNAVAILABLE')
  assert.match(out.message, /`npm install ioredis`/)
  assert.equal(typeof loadPeer('redis').createClient, 'function')
})
