'use strict'

// The default cipher and the native path: a ring given its cipher (or keys) never asks whether
// the native path runs; a default ring asks once per process, and is AES-128 where native mode
// is unavailable, so that 'auto' still serves it in callback mode.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')

// Runs `body` in a fresh process whose binding.nativeUnavailableReason is counted and, with
// `unavailable`, answers as in a process where the native path's symbols do not resolve.
function run(body, unavailable = null) {
  const script = `
    const binding = require(${JSON.stringify(path.join(root, 'binding.js'))})
    let asked = 0
    const real = binding.nativeUnavailableReason
    binding.nativeUnavailableReason = () => { asked++; return ${JSON.stringify(unavailable)} ?? real() }
    const tls = require('node:tls')
    const { TicketKeyRing, attach, generateTicketKeys } = require(${JSON.stringify(root)})
    const { key, cert } = require(${JSON.stringify(path.join(root, 'lib', 'selfsigned.js'))}).selfSignedCertificate()
    const out = {}
    ${body}
    out.asked = asked
    process.stdout.write(JSON.stringify(out))
  `
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
}

test('a ring given its cipher or keys never asks whether the native path runs', () => {
  const out = run(`
    const keys = Buffer.alloc(48, 1)
    for (const ring of [new TicketKeyRing({ cipher: 'aes-256-cbc' }), new TicketKeyRing({ keys }),
      new TicketKeyRing({ secret: Buffer.alloc(32, 7), cipher: 'aes-128-cbc' }), TicketKeyRing.fromNginx([Buffer.alloc(80, 2)])]) ring.destroy()
    generateTicketKeys(80)
  `)
  assert.equal(out.asked, 0)
})

test('default rings ask once per process, and are AES-256 where native mode runs', () => {
  const out = run(`
    const rings = [new TicketKeyRing(), new TicketKeyRing({ secret: Buffer.alloc(32, 7) }), new TicketKeyRing()]
    out.ciphers = rings.map((r) => r.cipher)
    out.keys = generateTicketKeys().length
    const server = tls.createServer({ key, cert })
    out.mode = attach(server, rings[0]).mode
    for (const ring of rings) ring.destroy()
  `)
  assert.equal(out.asked, 1)
  assert.deepEqual(out.ciphers, ['aes-256-cbc', 'aes-256-cbc', 'aes-256-cbc'])
  assert.equal(out.keys, 80)
  assert.equal(out.mode, 'native')
})

test('where the native path does not run, a default ring is AES-128 and attach() serves it in callback mode', () => {
  const out = run(`
    out.modes = []
    out.ciphers = []
    for (const options of [{}, { secret: Buffer.alloc(32, 7) }]) {
      const ring = new TicketKeyRing(options)
      out.ciphers.push(ring.cipher)
      out.modes.push(attach(tls.createServer({ key, cert }), ring).mode)
      ring.destroy()
    }
    out.keys = generateTicketKeys().length
  `, 'v8::External::Value is not exported by this process')
  assert.deepEqual(out.ciphers, ['aes-128-cbc', 'aes-128-cbc'])
  assert.deepEqual(out.modes, ['callback', 'callback'])
  assert.equal(out.keys, 48)
})
