'use strict'

// The README's first command runs this demo; keep what it shows true.

const test = require('node:test')
const assert = require('node:assert/strict')
const { main } = require('../examples/demo.js')

test('demo: the ring resumes every reconnection across rotate(), setTicketKeys() rotation does not', async () => {
  const lines = []
  const totals = await main({ log: (line) => lines.push(line) })
  for (const version of ['TLSv1.2', 'TLSv1.3']) {
    assert.equal(totals[version].ring, 11, version)
    assert.ok(totals[version].builtin <= 8, `${version}: ${totals[version].builtin}`)
  }
  assert.ok(lines.some((l) => /^4\*\s+New, TLSv1\.3, Cipher is \S+\s+Reused, TLSv1\.3/.test(l)), lines.join('\n'))
  assert.deepEqual(totals.fleet.ring, { resumed: 9, count: 9, afterRestart: true })
  assert.equal(totals.fleet.builtin.afterRestart, false)
  assert.ok(totals.fleet.builtin.resumed < 9)
})
