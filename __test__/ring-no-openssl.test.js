'use strict'

// Making a ring resolves no OpenSSL symbol: only attach() asks whether the native path runs.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')

test('making rings and keys never asks binding.nativeUnavailableReason()', () => {
  const root = path.join(__dirname, '..')
  const script = `
    const binding = require(${JSON.stringify(path.join(root, 'binding.js'))})
    let asked = 0
    const real = binding.nativeUnavailableReason
    binding.nativeUnavailableReason = () => { asked++; return real() }
    const { TicketKeyRing, generateTicketKeys } = require(${JSON.stringify(root)})
    const rings = [new TicketKeyRing(), new TicketKeyRing({ secret: Buffer.alloc(32, 7) }), new TicketKeyRing({ keys: generateTicketKeys() })]
    const made = { asked, cipher: rings[0].cipher, keys: generateTicketKeys().length }
    for (const ring of rings) ring.destroy()
    process.stdout.write(JSON.stringify(made))
  `
  const made = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
  assert.equal(made.asked, 0)
  // Where 'auto' attaches in native mode (attach.test.js), the default stays AES-256.
  assert.equal(made.cipher, 'aes-256-cbc')
  assert.equal(made.keys, 80)
})
