'use strict'

// Cluster workers: no key byte stays in a worker's memory after destroy() (keys reach workers sealed to
// each one, and are opened straight into the Rust ring, never into the JavaScript heap), and
// malformed or unsealed key messages change nothing.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const fs = require('node:fs')
const { run } = require('../test-support/helpers.js')

const canScan = (() => {
  try {
    fs.accessSync(`/proc/${process.pid}/mem`, fs.constants.R_OK)
    return true
  } catch {
    return false
  }
})()

test('a forCluster() worker holds no key byte after destroy(), detach() and GC (procfs scan)', { skip: !canScan && 'no /proc/<pid>/mem' }, async () => {
  const { code, stdout, stderr } = await run(process.execPath, [path.join(__dirname, 'fixtures', 'cluster-memory.js')])
  assert.equal(code, 0, stderr)
  const report = JSON.parse(stdout.trim().split('\n').pop())
  assert.deepEqual(report.resumed, [true, true], 'the worker served the ring')
  assert.deepEqual(report.control, ['hmac raw'], "the scan finds the key where it is: the primary's own memory")
  assert.deepEqual(report.found, [], 'key bytes left in the worker')
})

test('a forCluster() worker ignores malformed and unsealed key messages, and takes the real ones', async () => {
  const { code, stdout, stderr } = await run(process.execPath, [path.join(__dirname, 'fixtures', 'cluster-hostile.js')])
  assert.equal(code, 0, stderr)
  const report = JSON.parse(stdout.trim().split('\n').pop())
  assert.equal(report.exitCode, 0, 'the worker did not crash')
  assert.equal(report.name, report.primary, "the worker encrypts with the primary's key")
  assert.equal(report.cipher, 'aes-256-cbc')
  assert.equal(report.ticketLifetime, 7200, 'the schedule came from the sealed message, not a forged one')
})
