'use strict'

// Servers in separate processes, started with different argv, as in a fleet or after a
// restart. Node derives its default session id context from argv, so plain Node servers
// refuse each other's tickets even with the same keys; attached servers do not.

const test = require('node:test')
const assert = require('node:assert/strict')
const { fork } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')
const { generateTicketKeys } = require('..')
const { key, cert, connect } = require('../test-support/helpers.js')

const FIXTURE = path.join(__dirname, 'fixtures', 'ring-server.js')

async function startServer(mode, tag, keys) {
  const child = fork(FIXTURE, [mode, tag], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  child.send({ keys: keys.toString('base64'), key: key.toString(), cert: cert.toString() })
  const [{ port }] = await once(child, 'message')
  return { child, port }
}

async function crossResumption(mode, keys) {
  const a = await startServer(mode, 'process-a', keys)
  const b = await startServer(mode, 'process-b-with-other-argv', keys)
  try {
    const results = {}
    for (const version of ['TLSv1.2', 'TLSv1.3']) {
      const first = await connect(a.port, { version })
      const there = await connect(b.port, { version, session: first.session })
      const back = await connect(a.port, { version, session: there.session })
      results[version] = [there.reused, back.reused]
    }
    return results
  } finally {
    a.child.disconnect()
    b.child.disconnect()
    await Promise.all([once(a.child, 'exit'), once(b.child, 'exit')])
  }
}

for (const [mode, size] of [['native', 80], ['native', 48], ['callback', 48]]) {
  test(`${mode}, ${size}-byte keys: processes with different argv sharing keys via setTicketKeys resume each other`, async () => {
    const results = await crossResumption(mode, generateTicketKeys(size))
    assert.deepEqual(results, { 'TLSv1.2': [true, true], 'TLSv1.3': [true, true] })
  })
}

test('plain Node servers with the same ticketKeys but different argv do not (the problem attach() solves)', async () => {
  const results = await crossResumption('plain', generateTicketKeys(48))
  assert.deepEqual(results, { 'TLSv1.2': [false, false], 'TLSv1.3': [false, false] })
})
