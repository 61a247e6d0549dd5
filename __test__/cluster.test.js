'use strict'

// TicketKeyRing.forCluster(): workers mirror the primary's ring and rotate with it.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { fork } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')
const { TicketKeyRing } = require('..')


describe('TicketKeyRing.forCluster', () => {
  test('workers, also one started later, hold the primary\'s keys and rotate with it', async () => {
    const primary = fork(path.join(__dirname, 'fixtures', 'cluster-primary.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    try {
      const [report] = await Promise.race([
        once(primary, 'message'),
        new Promise((resolve, reject) => setTimeout(() => reject(new Error('the cluster sent no report in 30 s')), 30_000).unref()),
      ])
      assert.equal(report.error, undefined, report.error)
      const { early, late } = report
      // Each snapshot: the primary's current key and every worker's, taken at one moment.
      for (const snapshot of [...early, ...late]) {
        assert.equal(new Set(snapshot).size, 1, JSON.stringify(snapshot))
      }
      assert.notEqual(early[0][0], late[late.length - 1][0], 'the keys rotated in between')
      // Each worker's ring has the name of the primary ring it mirrors, and publishes the rotations it follows: the ones it saw
      // at epoch boundaries, not its first keys from the primary.
      for (const { ring, rotations, fallbacks, fallbackKeys } of report.diagnostics) {
        assert.equal(ring, 'cluster-worker')
        // The primary fed every worker in time: nothing fell back, and nothing says it did.
        assert.equal(fallbackKeys, 0)
        assert.deepEqual(fallbacks, [])
        assert.ok(rotations.length >= 2, JSON.stringify(rotations))
        assert.ok(rotations.every(([name, cause]) => name === 'cluster-worker' && (cause === 'schedule' || cause === 'feed')),
          JSON.stringify(rotations))
      }
    } finally {
      primary.kill()
      await once(primary, 'exit')
    }
  })

  test('outside a cluster worker it needs the primary', async () => {
    const ring = await TicketKeyRing.forCluster({ rotationInterval: 60 })
    assert.equal(ring.rotationInterval, 60, 'in a primary (or a plain process) it is an ordinary ring')
    ring.destroy()
    await assert.rejects(TicketKeyRing.forCluster('x'), { code: 'ERR_INVALID_ARG_TYPE' })
  })
})
