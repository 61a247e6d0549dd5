'use strict'

// The node:diagnostics_channel messages: rotate (manual and on schedule), fallback and
// store-error from a RedisKeyStore whose Redis refuses it, and what a fed ring that is on time
// does not publish. Refusals are in reasons.test.js, key bytes in hygiene.test.js.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const diagnosticsChannel = require('node:diagnostics_channel')
const { TicketKeyRing, RedisKeyStore, attach } = require('..')
const { tlsServer, listen, connect, close } = require('../test-support/helpers.js')
const { freePort, waitForPort, stopChild } = require('../test-support/fleet.js')
const { describeStoreError } = require('../lib/diagnostics.js')

const CHANNELS = ['rotate', 'fallback', 'refused', 'store-error']
const wrapSecret = Buffer.alloc(32, 7)

/** Every message of every channel while `fn` runs, as [channel, message]. */
async function recording(fn) {
  const messages = []
  const listeners = CHANNELS.map((name) => [`tls-ticket-keys:${name}`, (message) => messages.push([name, message])])
  for (const [channel, listener] of listeners) diagnosticsChannel.subscribe(channel, listener)
  try {
    await fn(messages)
  } finally {
    for (const [channel, listener] of listeners) diagnosticsChannel.unsubscribe(channel, listener)
  }
  return messages
}

/** Resolves with the first message of `name` in `messages` for which `pick` holds. */
async function first(messages, name, pick = () => true) {
  for (;;) {
    const found = messages.find(([n, m]) => n === name && pick(m))
    if (found) return found[1]
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const currentOf = (ring) => ring.keys().find((k) => k.state === 'current').name

async function redisWithPassword(password) {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--requirepass', password], { stdio: 'ignore' })
  await waitForPort(port)
  return { port, stop: () => stopChild(child) }
}

test('rotate: rotate(), setTicketKeys() and the schedule, with the ring name and the key names', async () => {
  const ring = new TicketKeyRing({ name: 'rotating', rotationInterval: 1 })
  try {
    const messages = await recording(async (messages) => {
      const before = currentOf(ring)
      ring.rotate()
      const manual = await first(messages, 'rotate')
      assert.deepEqual({ ...manual, keys: undefined },
        { ring: 'rotating', current: currentOf(ring), previous: before, keys: undefined, cause: 'rotate' })
      assert.deepEqual(manual.keys, ring.keys().map(({ name, state }) => ({ name, state })))
      // The Rust ring rotates by itself at the epoch boundary; the ring's timer sees it.
      const rotated = currentOf(ring)
      const scheduled = await first(messages, 'rotate', (m) => m.cause === 'schedule')
      assert.equal(scheduled.previous, rotated)
      assert.notEqual(scheduled.current, rotated)
    })
    assert.equal(messages.filter(([name]) => name === 'fallback').length, 0, 'a ring of its own keys has no fallback')
    // A ring of explicit keys rotates only when told to.
    const explicit = new TicketKeyRing({ name: 'explicit', keys: Buffer.alloc(48, 1) })
    const set = await recording(async (messages) => {
      explicit.setTicketKeys(Buffer.alloc(48, 2))
      await first(messages, 'rotate')
      explicit.setTicketKeys(Buffer.alloc(48, 2)) // the same key: no change
    })
    assert.deepEqual(set.map(([name, m]) => [name, m.ring, m.cause]), [['rotate', 'explicit', 'setTicketKeys']])
    explicit.destroy()
  } finally {
    ring.destroy()
  }
})

test('store-error and fallback: a Redis that refuses the password, and nothing quotes it', async () => {
  const password = 'pw-9f3a1c77e2'
  const redis = await redisWithPassword('the-right-one')
  let store
  try {
    const messages = await recording(async (messages) => {
      store = new RedisKeyStore({ url: `redis://user1:${password}@127.0.0.1:${redis.port}`, wrapSecret, timeout: 1000 })
      const ring = await store.ring({ name: 'fed', rotationInterval: 1 })
      const error = await first(messages, 'store-error')
      assert.ok(['connect', 'client', 'fetch', 'agree'].includes(error.operation), error.operation)
      assert.equal(typeof error.error.message, 'string')
      // Redis never answered with a key: the ring encrypts with a key of its own, a fallback
      // once it seals a ticket, and published then (within a round of the feed).
      assert.equal(ring.stats().fallbackKeys, 0, 'nothing sealed yet')
      const server = tlsServer()
      attach(server, ring)
      try {
        const port = await listen(server)
        const sealedWith = currentOf(ring)
        await connect(port)
        const fallback = await first(messages, 'fallback')
        assert.deepEqual(fallback, { ring: 'fed', key: sealedWith, kind: 'derived', fallbackKeys: 1 })
        assert.equal(ring.stats().fallbackKeys, 1)
      } finally {
        await close(server)
      }
      ring.destroy()
    })
    assert.ok(messages.some(([name, m]) => name === 'store-error' && m.rings.includes('fed')))
    const text = JSON.stringify(messages)
    assert.ok(!text.includes(password), text)
    assert.ok(!text.includes('user1:'), text)
  } finally {
    await store?.close()
    await redis.stop()
  }
  // Clients that quote their URL in an error: the credentials are taken out.
  const quoted = describeStoreError(Object.assign(new Error(`cannot reach redis://user1:${password}@10.0.0.9:6379 (${password})`),
    { code: 'ECONNREFUSED' }), [password])
  assert.deepEqual(quoted, { name: 'Error', code: 'ECONNREFUSED', message: 'cannot reach redis://10.0.0.9:6379 (***)' })
})

test('a fed ring whose Redis answers rotates on the shared key: rotate, no fallback', async () => {
  const redis = await redisWithPassword('the-right-one')
  const store = new RedisKeyStore({ url: `redis://default:the-right-one@127.0.0.1:${redis.port}`, wrapSecret })
  try {
    const messages = await recording(async (messages) => {
      const ring = await store.ring({ name: 'on-time', rotationInterval: 1 })
      // The next epoch's key (the one after it is agreed too).
      const [next] = ring.keys().filter((k) => k.state === 'next').sort((a, b) => a.activatesAt - b.activatesAt)
      assert.ok(next, 'ring() agreed the next key')
      const rotate = await first(messages, 'rotate', (m) => m.cause === 'schedule')
      assert.equal(rotate.current, next.name)
      ring.destroy()
    })
    // Its first keys came from Redis before ring() resolved: not a rotation.
    assert.deepEqual(messages.map(([name, m]) => [name, m.cause]), [['rotate', 'schedule']])
  } finally {
    await store.close()
    await redis.stop()
  }
})
