'use strict'

// A short run of benchmark/fleet-scale.js: a few member processes on one Redis (emptied
// mid-epoch) and on a secret, with a client resuming on other members throughout.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const path = require('node:path')

const BENCHMARK = path.join(__dirname, '..', 'benchmark', 'fleet-scale.js')

function run(args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BENCHMARK, ...args, '--json'], { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }))
      else resolve(JSON.parse(stdout))
    })
  })
}

test('a fleet on one Redis emptied mid-epoch, and on a secret: one key per epoch, every session resumes elsewhere', async () => {
  const results = await run(['--n', '4', '--ring', 'both', '--interval', '2', '--seconds', '4', '--fault', 'empty', '--phase', '0.5'])
  assert.deepEqual(results.map((r) => r.ring), ['redis', 'secret'])
  for (const r of results) {
    const shown = JSON.stringify(r)
    assert.equal(r.keysPerEpoch, 1, `keys per epoch: ${shown}`)
    assert.equal(r.fallbackKeys, 0, `fallback keys: ${shown}`)
    assert.ok(r.resumption.offered > 0, shown)
    assert.equal(r.resumption.failed, 0, shown)
    assert.equal(r.resumption.resumed, r.resumption.offered, `resumed on another member: ${shown}`)
  }
  assert.ok(results[0].redisCommandsPerSecondPerMember > 0)
})

test('a fleet on a secret file changed copy by copy: every session resumes elsewhere, every member seals with the new secret', async () => {
  // The change is written 1 to 3 s in, activates 5 s after, and seals from the next 2 s
  // boundary: up to 10 s in. 14 s leave every member a few sample rounds on the new secret.
  const [r] = await run(['--n', '3', '--ring', 'secret', '--interval', '2', '--seconds', '14', '--fault', 'secret-file', '--fault-seconds', '1'])
  const shown = JSON.stringify(r)
  assert.equal(r.keysPerEpoch, 1, `keys per epoch: ${shown}`)
  assert.ok(r.resumption.offered > 0, shown)
  assert.equal(r.resumption.resumed, r.resumption.offered, `resumed on another member: ${shown}`)
  assert.equal(r.secretFile.sealingNew, 3, shown)
  assert.equal(r.secretFile.secretFileErrors, 0, shown)
})
