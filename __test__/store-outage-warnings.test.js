'use strict'

// A Redis outage is visible by default: one process warning with a code when it starts, one
// when it ends, however many commands fail in between; `warnings: false` turns them off. A
// real redis-server on loopback starts in the middle of the outage.

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomBytes } = require('node:crypto')
const { setTimeout: sleep } = require('node:timers/promises')
const { RedisKeyStore } = require('..')
const { freePort, startRedis } = require('../test-support/fleet.js')
const { thrown } = require('../test-support/helpers.js')
const { OUTAGE, RECOVERED } = require('../lib/outage-warnings.js')

const haveRedis = require('node:child_process').spawnSync('sh', ['-c', 'command -v redis-server']).status === 0

/** Polls until `done()` holds; fails after `tries` polls (a bound on the test, not a threshold it measures). */
async function until(done, what, tries = 400) {
  for (let i = 0; i < tries; i++) {
    if (done()) return
    await sleep(50)
  }
  assert.fail(`never: ${what}`)
}

test('an outage warns once when it starts and once when it ends; warnings: false is silent', { skip: !haveRedis && 'no redis-server' }, async () => {
  const warnings = []
  const onWarning = (w) => {
    if (w.code === OUTAGE || w.code === RECOVERED) warnings.push({ code: w.code, name: w.name, message: w.message })
  }
  process.on('warning', onWarning)
  const port = await freePort()
  const wrapSecret = randomBytes(32)
  const url = `redis://:hunter2-password@127.0.0.1:${port}`
  const loud = new RedisKeyStore({ url, wrapSecret, timeout: 300 })
  const quiet = new RedisKeyStore({ url, wrapSecret, timeout: 300, warnings: false })
  let redis = null
  const rings = []
  try {
    rings.push(await loud.ring({ name: 'warn-on', rotationInterval: 3600 }))
    rings.push(await quiet.ring({ name: 'warn-off', rotationInterval: 3600 }))
    // Many failed commands and reconnects, one warning.
    await until(() => loud.stats().redisErrors >= 6 && quiet.stats().redisErrors >= 6, 'six Redis errors on each store')
    await sleep(0)
    assert.deepEqual(warnings.map((w) => w.code), [OUTAGE], JSON.stringify(warnings))
    assert.equal(warnings[0].name, 'TlsTicketKeysWarning')
    assert.match(warnings[0].message, /Redis store unreachable: ECONNREFUSED/)
    assert.match(warnings[0].message, /warn-on/)

    redis = await startRedis(port)
    await until(() => warnings.length >= 2, 'the recovery warning')
    await sleep(200)
    assert.deepEqual(warnings.map((w) => w.code), [OUTAGE, RECOVERED], JSON.stringify(warnings))
    assert.match(warnings[1].message, /Redis store reachable again after [\d.]+ s and \d+ failed calls \(rings: warn-on\)/)
    for (const w of warnings) {
      assert.doesNotMatch(w.message, /hunter2|redis:\/\/|warn-off/)
      assert.ok(!w.message.includes(wrapSecret.toString('hex')) && !w.message.includes(wrapSecret.toString('base64')))
    }
  } finally {
    process.off('warning', onWarning)
    await loud.close()
    await quiet.close()
    rings.forEach((r) => r.destroy())
    await redis?.stop()
  }
})

test('warnings must be a boolean', () => {
  const err = thrown(() => new RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret: randomBytes(32), warnings: 'no' }))
  assert.equal(err.code, 'ERR_INVALID_ARG_TYPE')
})
