'use strict'

// The readers of nginx and HAProxy key files, whose layouts the tests write out byte by byte.

const test = require('node:test')
const assert = require('node:assert/strict')
const { TicketKeyRing } = require('..')

// Byte patterns that say where each part of a key went.
const part = (fill, n) => Buffer.alloc(n, fill)

test('fromNginx: 48-byte files are name|aes|hmac, 80-byte files name|hmac|aes; the first file encrypts', () => {
  const file48 = (i) => Buffer.concat([part(0x10 + i, 16), part(0xa0 + i, 16), part(0xb0 + i, 16)]) // name, aes, hmac
  const ring = TicketKeyRing.fromNginx([file48(1), file48(2)])
  assert.equal(ring.cipher, 'aes-128-cbc')
  assert.deepEqual(ring.getTicketKeys(), Buffer.concat([part(0x11, 16), part(0xb1, 16), part(0xa1, 16)]))
  assert.deepEqual(ring.keys().map((k) => [k.name.slice(0, 2), k.state]), [['11', 'current'], ['12', 'previous']])

  const file80 = Buffer.concat([part(0x21, 16), part(0xc1, 32), part(0xd1, 32)]) // name, hmac, aes
  const ring80 = TicketKeyRing.fromNginx(file80)
  assert.equal(ring80.cipher, 'aes-256-cbc')
  assert.deepEqual(ring80.getTicketKeys(), file80)

  assert.throws(() => TicketKeyRing.fromNginx([]), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => TicketKeyRing.fromNginx([file48(1), file80]), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => TicketKeyRing.fromNginx(Buffer.alloc(64, 1)), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => TicketKeyRing.fromNginx('keyfile'), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('fromHaproxy: base64 lines of name|aes|hmac; of the last three, previous, current (encrypts), next', () => {
  const line = (i, n) => Buffer.concat([part(0x30 + i, 16), part(0xe0 + i, n), part(0xf0 + i, n)]).toString('base64')
  const text = `${[1, 2, 3, 4].map((i) => line(i, 16)).join('\n')}\n`
  const ring = TicketKeyRing.fromHaproxy(text)
  // Lines 2, 3, 4 are the window; line 3 encrypts, line 4 is next.
  assert.deepEqual(ring.getTicketKeys(), Buffer.concat([part(0x33, 16), part(0xf3, 16), part(0xe3, 16)]))
  const states = Object.fromEntries(ring.keys().map((k) => [k.name.slice(0, 2), k.state]))
  assert.deepEqual(states, { 32: 'previous', 33: 'current', 34: 'next' })
  // rotate() moves on as HAProxy's `set ssl tls-key` does: the next key encrypts.
  ring.rotate()
  assert.deepEqual(ring.getTicketKeys().subarray(0, 16), part(0x34, 16))
  const ring80 = TicketKeyRing.fromHaproxy(Buffer.from([line(1, 32), line(2, 32), line(3, 32)].join('\r\n')))
  assert.equal(ring80.cipher, 'aes-256-cbc')
  assert.deepEqual(ring80.getTicketKeys(), Buffer.concat([part(0x32, 16), part(0xf2, 32), part(0xe2, 32)]))
  for (const refused of ['', `${line(1, 16)}\n${line(2, 16)}\n`, `# rotated daily\n${text}`, `${text}\n`,
    `${line(1, 16)}\n${line(2, 16)}\n${line(3, 32)}\n`]) {
    assert.throws(() => TicketKeyRing.fromHaproxy(refused), { code: 'ERR_INVALID_ARG_VALUE', message: /refused by HAProxy/ })
  }
  assert.throws(() => TicketKeyRing.fromHaproxy(42), { code: 'ERR_INVALID_ARG_TYPE' })
})
