'use strict'

// The ring's symbol-keyed internal methods (lib/internal.js) can be found with
// Object.getOwnPropertySymbols(TicketKeyRing.prototype): whatever they are given, they throw,
// and never take the process down.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')

test('exportEdgeKeys refuses a slot count no ring can fill, instead of aborting the process', () => {
  const root = path.join(__dirname, '..')
  const script = `
    const { TicketKeyRing } = require(${JSON.stringify(root)})
    const { kExportEdgeKeys } = require(${JSON.stringify(path.join(root, 'lib', 'internal.js'))})
    const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
    const out = []
    for (const slots of [-1, 2 ** 32 - 1, 1e9, 241]) {
      try {
        ring[kExportEdgeKeys]('nginx', slots)
        out.push('ok')
      } catch (err) {
        out.push(err.name + ' ' + err.code)
      }
    }
    out.push(ring[kExportEdgeKeys]('nginx', 240).names.length)
    ring.destroy()
    process.stdout.write(JSON.stringify(out))
  `
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
  assert.deepEqual(out, [...Array(4).fill('RangeError ERR_OUT_OF_RANGE'), 242])
})

test('an object that only has TicketKeyRing.prototype is refused with the codes it had before', () => {
  // 783843f asked its WeakMap of Rust rings; instanceof alone lets such an object through to a
  // private field read, a TypeError without a code.
  const { TicketKeyRing, inspectTicket, registerMetrics } = require('..')
  const fake = Object.create(TicketKeyRing.prototype)
  assert.throws(() => registerMetrics(fake), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => inspectTicket(Buffer.alloc(100, 1), fake), { code: 'ERR_INVALID_STATE' })
})
