'use strict'

// Every exported function and method with random arguments, in a child process: it never
// aborts, and every call works or throws an Error with a Node-style `code`.

const test = require('node:test')
const assert = require('node:assert/strict')
const { fork } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')

const CALLS = Number(process.env.FUZZ_CALLS || 20000)

test(`${CALLS} random calls: no abort, every error has a code`, async () => {
  const child = fork(path.join(__dirname, 'fixtures', 'fuzz-api.js'), [String(CALLS), String(Date.now() % 100000)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let report = null
  child.on('message', (m) => { report = m })
  const [code, signal] = await once(child, 'exit')
  assert.equal(signal, null, 'the process was not killed by a signal (abort, segfault)')
  assert.equal(code, 0)
  assert.equal(report.calls, CALLS)
  assert.deepEqual(report.uncoded, [])
  assert.ok(report.ok > 0 && report.coded > 0, JSON.stringify(report))
})
