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

test('two named forCluster() rings: each worker ring mirrors only its own, a session of one service never resumes on the other, forged messages do not open', async () => {
  const { fork } = require('node:child_process')
  const { once } = require('node:events')
  const { key, cert, connect } = require('../test-support/helpers.js')
  const child = fork(path.join(__dirname, 'fixtures', 'cluster-two-rings.js'), [], {
    env: { ...process.env, TEST_KEY: key.toString('base64'), TEST_CERT: cert.toString('base64') },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    const [report] = await once(child, 'message')
    assert.equal(report.error, undefined, report.error)
    assert.equal(report.worker.error, undefined, report.worker.error)
    const { primary, worker } = report
    // Each worker ring holds every key of the primary ring of its name, and none of the other's
    // (a fed ring may also hold the key it made for itself before the first message).
    const shared = (x, y) => x.filter((n) => y.includes(n))
    assert.deepEqual(shared(worker.names.a, primary.names.a), primary.names.a)
    assert.deepEqual(shared(worker.names.b, primary.names.b), primary.names.b)
    assert.deepEqual(shared(worker.names.a, primary.names.b), [])
    assert.deepEqual(shared(worker.names.b, primary.names.a), [])
    // Ring a's keys sealed to b's public key (a forged hello), as sent and relabelled: b takes none.
    assert.deepEqual(worker.bAfter, worker.bBefore)
    assert.equal(worker.secondA, 'ERR_INVALID_STATE', 'a second ring named a in the worker')
    assert.equal(primary.secondA, 'ERR_INVALID_STATE', 'a second ring named a in the primary')
    const [before, withSpare, after] = worker.listeners
    assert.equal(withSpare, before + 1)
    assert.equal(after, before, "destroy() removed the worker ring's listener at once")

    for (const version of ['TLSv1.2', 'TLSv1.3']) {
      const servers = { 'primary a': primary.ports.a, 'primary b': primary.ports.b, 'worker a': worker.ports.a, 'worker b': worker.ports.b }
      for (const [from, port] of Object.entries(servers)) {
        const { session } = await connect(port, { version })
        for (const [to, other] of Object.entries(servers)) {
          const { reused } = await connect(other, { version, session })
          assert.equal(reused, from.slice(-1) === to.slice(-1), `${version}: a session of ${from} offered to ${to}`)
        }
      }
    }
  } finally {
    child.kill()
    await once(child, 'exit')
  }
})
