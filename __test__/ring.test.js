'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const util = require('node:util')
const { TicketKeyRing, generateTicketKeys } = require('..')

const HOUR = 3600

// Every 8-byte window of the HMAC and AES keys, in hex. Names are public: they start every ticket.
function secretsOf(material, layout = 48) {
  const out = []
  for (let k = 0; k < material.length; k += layout) {
    const hex = material.subarray(k + 16, k + layout).toString('hex')
    for (let i = 0; i + 16 <= hex.length; i += 16) out.push(hex.slice(i, i + 16))
  }
  return out
}

function assertNoSecret(text, material) {
  for (const part of secretsOf(material)) assert.ok(!text.includes(part), `secret bytes leaked into: ${text}`)
  assert.ok(!text.includes(material.subarray(16, 48).toString('base64')), `secret bytes leaked into: ${text}`)
}

test('generateTicketKeys gives fresh CSPRNG material in either layout', () => {
  const a = generateTicketKeys()
  const b = generateTicketKeys()
  assert.equal(a.length, new TicketKeyRing().getTicketKeys().length) // a default ring's layout
  assert.notDeepEqual(a, b)
  assert.equal(generateTicketKeys(80).length, 80)
  assert.equal(generateTicketKeys(96).length, 96)
  assert.equal(generateTicketKeys(160).length, 160)
})

test('generateTicketKeys refuses bad sizes with Node-style errors', () => {
  assert.throws(() => generateTicketKeys('48'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => generateTicketKeys(50), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
  for (const size of [0, -48, 48.5, NaN, Infinity, 2 ** 40]) {
    assert.throws(() => generateTicketKeys(size), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, String(size))
  }
})

test('a new ring has a current key and a next key on aligned epochs', () => {
  const ring = new TicketKeyRing({ rotationInterval: HOUR, ticketLifetime: 2 * HOUR, cipher: 'aes-256-cbc' })
  try {
    const keys = ring.keys()
    assert.deepEqual(keys.map((k) => k.state), ['next', 'current'])
    const [next, current] = keys
    assert.equal(current.activatesAt.getTime() % (HOUR * 1000), 0)
    assert.ok(current.activatesAt.getTime() <= Date.now())
    assert.equal(next.activatesAt.getTime() - current.activatesAt.getTime(), HOUR * 1000)
    assert.equal(current.expiresAt.getTime() - current.activatesAt.getTime(), 3 * HOUR * 1000)
    assert.match(current.name, /^[0-9a-f]{32}$/)
    assert.equal(ring.getTicketKeys().length, 80)
    assert.equal(ring.getTicketKeys().subarray(0, 16).toString('hex'), current.name)
  } finally {
    ring.destroy()
  }
})

test('rotate() makes the next key current and keeps the old one decrypt-only', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
  try {
    const [next, current] = ring.keys()
    ring.rotate()
    const keys = ring.keys()
    assert.deepEqual(keys.map((k) => [k.name, k.state]).slice(1), [[next.name, 'current'], [current.name, 'previous']])
    assert.equal(keys[0].state, 'next')
    const previous = keys[2]
    assert.ok(Math.abs(previous.expiresAt - Date.now() - 7200 * 1000) < 5000, 'expires a lifetime after rotation')
  } finally {
    ring.destroy()
  }
})

test('explicit keys: the first encrypts, the rest decrypt, nothing rotates on its own', () => {
  const material = generateTicketKeys(96)
  const ring = new TicketKeyRing({ keys: material })
  try {
    assert.equal(ring.cipher, 'aes-128-cbc')
    assert.deepEqual(ring.getTicketKeys(), material.subarray(0, 48))
    const keys = ring.keys()
    assert.deepEqual(keys.map((k) => k.state), ['current', 'previous'])
    assert.deepEqual(keys.map((k) => k.expiresAt), [null, null])
  } finally {
    ring.destroy()
  }
})

test('the layout of explicit keys follows the cipher, or their length', () => {
  assert.equal(new TicketKeyRing({ keys: generateTicketKeys(80) }).cipher, 'aes-256-cbc')
  assert.equal(new TicketKeyRing({ keys: generateTicketKeys(240), cipher: 'aes-128-cbc' }).keys().length, 5)
  assert.equal(new TicketKeyRing({ keys: generateTicketKeys(240), cipher: 'aes-256-cbc' }).keys().length, 3)
  assert.throws(() => new TicketKeyRing({ keys: generateTicketKeys(240) }),
    { code: 'ERR_INVALID_ARG_VALUE', message: /pass options.cipher/ })
  assert.throws(() => new TicketKeyRing({ keys: generateTicketKeys(80), cipher: 'aes-128-cbc' }),
    { code: 'ERR_INVALID_ARG_VALUE' })
})

test('setTicketKeys installs keys and keeps the old current key until its tickets expire', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-128-cbc' })
  try {
    const [next, old] = ring.keys()
    const material = generateTicketKeys(48)
    ring.setTicketKeys(material)
    assert.deepEqual(ring.getTicketKeys(), material)
    const keys = ring.keys()
    assert.deepEqual(keys.map((k) => k.state), ['current', 'previous'])
    assert.equal(keys[1].name, old.name)
    assert.ok(!keys.some((k) => k.name === next.name), 'a key that never encrypted is dropped')
    // Setting the same key again is harmless (Node's setSecureContext does exactly that).
    ring.setTicketKeys(material)
    assert.deepEqual(ring.keys().map((k) => k.state), ['current', 'previous'])
  } finally {
    ring.destroy()
  }
})

test('bad options give TypeError/RangeError with Node codes', () => {
  const cases = [
    [null, 'ERR_INVALID_ARG_TYPE', TypeError],
    ['x', 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ rotationInterval: '60' }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ rotationInterval: 0 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ rotationInterval: -1 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ rotationInterval: NaN }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ rotationInterval: 1.5 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ rotationInterval: 1e12 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ ticketLifetime: 604801 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ ticketLifetime: 0 }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ ticketLifetime: Infinity }, 'ERR_OUT_OF_RANGE', RangeError],
    [{ cipher: 'aes-256-gcm' }, 'ERR_INVALID_ARG_VALUE', TypeError],
    [{ cipher: 256 }, 'ERR_INVALID_ARG_VALUE', TypeError],
    [{ keys: 'not a buffer' }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ keys: [1, 2, 3] }, 'ERR_INVALID_ARG_TYPE', TypeError],
    [{ keys: Buffer.alloc(47, 1) }, 'ERR_INVALID_ARG_VALUE', TypeError],
    [{ keys: Buffer.alloc(0) }, 'ERR_INVALID_ARG_VALUE', TypeError],
    [{ keys: Buffer.alloc(48) }, 'ERR_INVALID_ARG_VALUE', TypeError],
    [{ keys: Buffer.concat([generateTicketKeys(48), Buffer.alloc(48)]) }, 'ERR_INVALID_ARG_VALUE', TypeError],
  ]
  for (const [options, code, ErrorClass] of cases) {
    assert.throws(() => new TicketKeyRing(options), (err) => {
      assert.ok(err instanceof ErrorClass, `${util.inspect(options)}: ${err}`)
      assert.equal(err.code, code, util.inspect(options))
      return true
    })
  }
})

test('repeated key names are refused', () => {
  const key = generateTicketKeys(48)
  const twin = Buffer.from(key)
  twin[40] ^= 0xff
  assert.throws(() => new TicketKeyRing({ keys: Buffer.concat([key, twin]) }),
    { code: 'ERR_INVALID_ARG_VALUE', message: /repeats the name/ })
})

test('setTicketKeys refuses bad input and leaves the ring as it was', () => {
  const ring = new TicketKeyRing({ cipher: 'aes-256-cbc' })
  try {
    const before = ring.getTicketKeys()
    assert.throws(() => ring.setTicketKeys(), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => ring.setTicketKeys('x'.repeat(80)), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => ring.setTicketKeys(generateTicketKeys(48)), { code: 'ERR_INVALID_ARG_VALUE', message: /80 bytes/ })
    assert.throws(() => ring.setTicketKeys(Buffer.alloc(80)), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.deepEqual(ring.getTicketKeys(), before)
    // Any ArrayBufferView works, also a view into a larger buffer.
    const big = generateTicketKeys(160)
    ring.setTicketKeys(new Uint8Array(big.buffer, big.byteOffset + 80, 80))
    assert.deepEqual(ring.getTicketKeys(), big.subarray(80))
  } finally {
    ring.destroy()
  }
})

test('a destroyed ring throws ERR_INVALID_STATE on every use', () => {
  const ring = new TicketKeyRing()
  ring.destroy()
  assert.equal(ring.destroyed, true)
  for (const use of [
    () => ring.getTicketKeys(), () => ring.setTicketKeys(generateTicketKeys(80)), () => ring.rotate(),
    () => ring.keys(), () => ring.stats(),
  ]) {
    assert.throws(use, { name: 'Error', code: 'ERR_INVALID_STATE' })
  }
  ring.destroy() // twice is fine
  assert.match(util.inspect(ring), /destroyed: true/)
})

test('no key byte in util.inspect, JSON.stringify, keys(), stats() or error messages', () => {
  const material = generateTicketKeys(96)
  const ring = new TicketKeyRing({ keys: material })
  try {
    const shown = [
      util.inspect(ring, { showHidden: true, depth: 10 }),
      JSON.stringify(ring),
      JSON.stringify(ring.keys()),
      JSON.stringify(ring.stats()),
      String(ring),
    ]
    for (const text of shown) assertNoSecret(text, material)
    // The public names are fine to show; the secrets behind them are not.
    assert.match(util.inspect(ring), /aes-128-cbc/)
    const bad = Buffer.concat([material.subarray(0, 47)])
    for (const fn of [() => ring.setTicketKeys(bad), () => new TicketKeyRing({ keys: bad }),
      () => new TicketKeyRing({ keys: material.toString('hex') })]) {
      assert.throws(fn, (err) => {
        assertNoSecret(err.message + err.stack, material)
        assert.ok(!err.message.includes(material.toString('hex').slice(32, 48)))
        return true
      })
    }
  } finally {
    ring.destroy()
  }
})

test('stats() starts at zero', () => {
  const ring = new TicketKeyRing()
  try {
    assert.deepEqual(ring.stats(), { issued: 0, resumed: 0, renewed: 0, unknownKey: 0, expired: 0, fallbackKeys: 0 })
  } finally {
    ring.destroy()
  }
})
