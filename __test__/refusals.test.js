'use strict'

// Input that used to be silently ignored or accepted is refused with a coded error: options
// that do not go together, key-file importers told to override their file, sparse and
// all-zero secrets, a HAProxy file that repeats a key, rotate() and setTicketKeys() on rings
// whose keys every process shares, and a rotation interval that is surely milliseconds.

const test = require('node:test')
const assert = require('node:assert/strict')
const { TicketKeyRing, RedisKeyStore, generateTicketKeys } = require('..')
const { thrown } = require('../test-support/helpers.js')
const { startRedis } = require('../test-support/fleet.js')

const secret = Buffer.alloc(32, 1)

function refused(fn, code, pattern) {
  const err = thrown(fn)
  assert.ok(err, 'no error was thrown')
  assert.equal(err.code, code, err.message)
  if (pattern) assert.match(err.message, pattern)
  return err
}

test('scope and previousSecrets go with a secret, never with keys', () => {
  const keys = generateTicketKeys(48)
  refused(() => new TicketKeyRing({ keys, scope: 'eu' }), 'ERR_INVALID_ARG_VALUE', /options\.scope/)
  refused(() => new TicketKeyRing({ keys, previousSecrets: [secret] }), 'ERR_INVALID_ARG_VALUE', /options\.previousSecrets/)
})

test('key-file importers: the file decides the keys and the cipher', () => {
  const nginxFile = generateTicketKeys(48)
  const haproxyFile = [0, 1, 2].map(() => `${generateTicketKeys(48).toString('base64')}\n`).join('')
  for (const [name, make] of [['fromNginx', (o) => TicketKeyRing.fromNginx(nginxFile, o)], ['fromHaproxy', (o) => TicketKeyRing.fromHaproxy(haproxyFile, o)]]) {
    for (const option of [{ keys: generateTicketKeys(48) }, { cipher: 'aes-256-cbc' }, { scope: 'eu' }, { secret }, { previousSecrets: [secret] }]) {
      refused(() => make(option), 'ERR_INVALID_ARG_VALUE', new RegExp(`options\\.${Object.keys(option)[0]}`))
    }
    assert.equal(make({ rotationInterval: 60, name: `from-${name}` }).name, `from-${name}`, 'other options still work')
  }
})

test('a sparse previousSecrets array is refused with a code, naming the hole', () => {
  // eslint-disable-next-line no-sparse-arrays
  refused(() => new TicketKeyRing({ secret, previousSecrets: [, Buffer.alloc(32, 2)] }), 'ERR_INVALID_ARG_TYPE', /previousSecrets\[0\]/)
  refused(() => new TicketKeyRing({ secret, previousSecrets: new Array(2) }), 'ERR_INVALID_ARG_TYPE', /previousSecrets\[0\]/)
})

test('all-zero secrets are refused: anyone can derive their keys', () => {
  refused(() => new TicketKeyRing({ secret: Buffer.alloc(32) }), 'ERR_INVALID_ARG_VALUE', /'options\.secret' must not be all zeros/)
  refused(() => new TicketKeyRing({ secret: Buffer.alloc(64) }), 'ERR_INVALID_ARG_VALUE', /all zeros/)
  refused(() => new TicketKeyRing({ secret, previousSecrets: [Buffer.alloc(32, 3), Buffer.alloc(32)] }), 'ERR_INVALID_ARG_VALUE', /previousSecrets\[1\]/)
  refused(() => new RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret: Buffer.alloc(32) }), 'ERR_INVALID_ARG_VALUE', /wrapSecret/)
  // The error says nothing of the bytes.
  assert.doesNotMatch(thrown(() => new TicketKeyRing({ secret: Buffer.alloc(32) })).message, /00000000/)
})

test('a HAProxy file whose lines repeat a key: the ring holds each key name once; one name with two keys is refused', () => {
  const [a, b] = [generateTicketKeys(48), generateTicketKeys(48)]
  const file = (...keys) => keys.map((k) => `${k.toString('base64')}\n`).join('')
  // The last line (next) repeats the current key, then the previous one repeats it.
  for (const text of [file(a, b, b), file(b, b, a), file(b, b, b)]) {
    const ring = TicketKeyRing.fromHaproxy(text)
    try {
      const names = ring.keys().map((k) => k.name)
      assert.equal(new Set(names).size, names.length, `${names}`)
    } finally {
      ring.destroy()
    }
  }
  const forged = Buffer.concat([b.subarray(0, 16), generateTicketKeys(48).subarray(16)])
  refused(() => TicketKeyRing.fromHaproxy(file(a, b, forged)), 'ERR_INVALID_ARG_VALUE', /two different keys under one key name/)
})

test('rotate() and setTicketKeys() are refused on a secret ring and a Redis ring, and say what to do instead', async () => {
  const derived = new TicketKeyRing({ secret })
  try {
    const keysBefore = derived.keys()
    refused(() => derived.rotate(), 'ERR_INVALID_STATE', /previousSecrets/)
    refused(() => derived.setTicketKeys(generateTicketKeys(derived.cipher === 'aes-256-cbc' ? 80 : 48)), 'ERR_INVALID_STATE', /previousSecrets/)
    assert.deepEqual(derived.keys(), keysBefore, 'the ring did not change')
  } finally {
    derived.destroy()
  }
  const redis = await startRedis()
  const store = new RedisKeyStore({ url: redis.url, wrapSecret: secret })
  try {
    const ring = await store.ring({ rotationInterval: 3600 })
    refused(() => ring.rotate(), 'ERR_INVALID_STATE', /RedisKeyStore/)
    refused(() => ring.setTicketKeys(generateTicketKeys(ring.cipher === 'aes-256-cbc' ? 80 : 48)), 'ERR_INVALID_STATE', /feed/)
    ring.destroy()
  } finally {
    await store.close()
    await redis.stop()
  }
  // Rings of their own keys still rotate.
  for (const ring of [new TicketKeyRing(), TicketKeyRing.fromNginx(generateTicketKeys(48))]) {
    const current = ring.getTicketKeys()
    ring.rotate()
    assert.ok(!ring.getTicketKeys().equals(current))
    ring.destroy()
  }
})

test('a rotationInterval over seven days (milliseconds meant?) is refused with ERR_OUT_OF_RANGE', () => {
  refused(() => new TicketKeyRing({ rotationInterval: 3_600_000 }), 'ERR_OUT_OF_RANGE', /<= 604800/)
  refused(() => new TicketKeyRing({ rotationInterval: 604_801 }), 'ERR_OUT_OF_RANGE')
  new TicketKeyRing({ rotationInterval: 604_800, ticketLifetime: 604_800 }).destroy()
})
