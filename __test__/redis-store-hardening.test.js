'use strict'

// RedisKeyStore against a real redis-server: every call settles within the store's timeout,
// even when Redis stops answering, and its errors carry codes and never a password.

const test = require('node:test')
const assert = require('node:assert/strict')
const { inspect } = require('node:util')
const { createClient } = require('redis')
const { RedisKeyStore } = require('..')
const { startRedis } = require('../test-support/fleet.js')
const { thrown } = require('../test-support/helpers.js')

const wrapSecret = Buffer.alloc(32, 9)
const TIMEOUT_MS = 300
// Not a timing threshold: a bound on "settles at all", far above the timeout, so a hang fails
// here instead of at the test runner's limit.
const SETTLES_WITHIN_MS = 20 * TIMEOUT_MS

async function settles(promise) {
  const started = performance.now()
  await promise
  const took = performance.now() - started
  assert.ok(took < SETTLES_WITHIN_MS, `settled after ${Math.round(took)} ms`)
}

test('a Redis that stops answering: ring() and close() settle, local keys take over, and it counts', async () => {
  const redis = await startRedis()
  const store = new RedisKeyStore({ url: redis.url, wrapSecret, timeout: TIMEOUT_MS })
  try {
    const warm = await store.ring({ rotationInterval: 60 })
    assert.equal(store.stats().redisErrors, 0)
    warm.destroy()
    redis.signal('SIGSTOP')
    let ring
    await settles((async () => { ring = await store.ring({ rotationInterval: 60 }) })())
    assert.ok(ring.keys().some((k) => k.state === 'current'), 'the ring encrypts with a local key')
    assert.equal(ring.stats().fallbackKeys, 0, 'a fallback counts once it seals a ticket, and none was')
    assert.ok(store.stats().redisErrors >= 1, 'the timeout counts as a Redis error')
    await settles(store.close())
    ring.destroy()
  } finally {
    redis.signal('SIGCONT')
    await redis.stop()
  }
})

test("a user's own node-redis client with its offline queue does not hang the store either", async () => {
  const redis = await startRedis()
  const client = createClient({ url: redis.url })
  client.on('error', () => {})
  await client.connect()
  const store = new RedisKeyStore({ client, wrapSecret, timeout: TIMEOUT_MS })
  try {
    redis.signal('SIGSTOP')
    let ring
    await settles((async () => { ring = await store.ring({ rotationInterval: 60 }) })())
    assert.ok(store.stats().redisErrors >= 1)
    await settles(store.close())
    ring.destroy()
  } finally {
    redis.signal('SIGCONT')
    client.destroy()
    await redis.stop()
  }
})

test('the timeout is documented, defaults to a few seconds, and is checked', () => {
  const store = new RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret })
  assert.equal(store.timeout, 3000)
  for (const timeout of [0, -1, 1.5, 60_001]) {
    assert.equal(thrown(() => new RedisKeyStore({ wrapSecret, timeout })).code, 'ERR_OUT_OF_RANGE', String(timeout))
  }
  assert.equal(thrown(() => new RedisKeyStore({ wrapSecret, timeout: '100' })).code, 'ERR_INVALID_ARG_TYPE')
  return store.close()
})

test('bad URLs and clients get coded errors that never show a password', () => {
  const password = 'hunter2-very-secret'
  const cases = [
    [{ url: `http://:${password}@127.0.0.1:6379` }, 'ERR_INVALID_ARG_VALUE'],
    [{ url: `redis://:${password}@[not-a-host` }, 'ERR_INVALID_ARG_VALUE'],
    [{ url: `redis://:${password}@127.0.0.1:99999` }, 'ERR_INVALID_ARG_VALUE'],
    [{ url: 42 }, 'ERR_INVALID_ARG_TYPE'],
    [{ client: {} }, 'ERR_INVALID_ARG_TYPE'],
    [{ client: null }, 'ERR_INVALID_ARG_TYPE'],
    [{ url: 'redis://127.0.0.1', client: createClient() }, 'ERR_INVALID_ARG_VALUE'],
    [{ urll: 'redis://127.0.0.1' }, 'ERR_INVALID_ARG_VALUE'],
  ]
  for (const [options, code] of cases) {
    const err = thrown(() => new RedisKeyStore({ wrapSecret, ...options }))
    assert.equal(err.code, code, inspect(Object.keys(options)))
    const shown = `${err.message}\n${err.stack}\n${inspect(err, { showHidden: true, depth: Infinity })}\n${inspect(err.cause)}`
    assert.ok(!shown.includes(password), `the password shows: ${shown}`)
  }
})

test('the store keeps its Redis work private', () => {
  const store = new RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret })
  for (const name of ['fetch', 'agree', 'noteError']) assert.equal(store[name], undefined, name)
  assert.equal(inspect(store), 'RedisKeyStore { closed: false, timeout: 3000 }')
  return store.close()
})
