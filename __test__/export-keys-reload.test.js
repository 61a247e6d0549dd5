'use strict'

// exportKeys() to nginx with reload commands that misbehave: one that leaves a process behind
// (a wrapper that starts nginx) finishes when it exits, and one that ignores SIGTERM is killed
// with its process group after the timeout, counted, and does not hold close() up. A listener
// that throws does not fail the export. No nginx is needed: the files are the export.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TicketKeyRing, exportKeys } = require('..')

const secret = Buffer.alloc(32, 5)

function alive(marker) {
  return spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' }).stdout.trim() !== ''
}

test('a reload that leaves a process running counts when it exits; a listener that throws fails nothing', { skip: process.platform === 'win32' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-reload-'))
  const ring = new TicketKeyRing({ secret, rotationInterval: 60, ticketLifetime: 60 })
  // A distinctive duration marks the process it leaves behind.
  const marker = `sleep 29.${process.pid}`
  const handle = exportKeys(ring, { nginx: { dir, reload: ['sh', '-c', `${marker} & exit 0`] } })
  try {
    const [event] = await once(handle, 'sync')
    assert.equal(event.target, 'nginx')
    assert.equal(alive(marker), true, 'the reload counted when its command exited, not when what it left behind did')
    assert.equal(handle.stats().reloads, 1)
    assert.equal(handle.stats().failures, 0)
    assert.ok(fs.readdirSync(dir).includes('current.key'))
  } finally {
    await handle.close()
    ring.destroy()
    spawnSync('pkill', ['-f', marker])
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a reload that ignores SIGTERM is killed with its process group after the timeout, counted, and close() settles', { skip: process.platform === 'win32' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-reload-'))
  const ring = new TicketKeyRing({ secret, rotationInterval: 60, ticketLifetime: 60 })
  // SIGTERM ignored by the shell and by the sleep it starts (an ignored signal is inherited).
  const marker = `sleep 119.${process.pid}`
  const handle = exportKeys(ring, { nginx: { dir, reload: ['sh', '-c', `trap '' TERM; ${marker}; true`] } })
  const warnings = []
  const onWarning = (w) => warnings.push(w.code)
  process.on('warning', onWarning)
  try {
    const [failure] = await once(handle, 'failure')
    assert.equal(failure.code, 'ERR_TLS_TICKET_EXPORT_RELOAD')
    assert.match(failure.message, /did not finish within 30 s and was killed/)
    assert.equal(handle.stats().failures, 1)
    assert.equal(alive(marker), false, 'the whole process group is gone')
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(warnings, ['TLS_TICKET_EXPORT_FAILING'])
  } finally {
    process.off('warning', onWarning)
    await handle.close()
    ring.destroy()
    spawnSync('pkill', ['-9', '-f', marker])
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
