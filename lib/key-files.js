'use strict'

// Key files of other software, read into the ring's `name | hmac | aes` layout: nginx
// `ssl_session_ticket_key` files and HAProxy `tls-ticket-keys` files. Each reader returns the
// { cipher, keys } of a ring of explicit keys.

const { invalidArgType, invalidArgValue, validateKeyBytes } = require('./errors.js')

const NAME_BYTES = 16
// nginx: 48-byte files are name|aes|hmac, 80-byte ones name|hmac|aes.
const NGINX_ORDER = { 48: 'name|aes|hmac', 80: 'name|hmac|aes' }
const LAYOUT_CIPHER = { 48: 'aes-128-cbc', 80: 'aes-256-cbc' }

/** `name | a | b` as `name | b | a`: between nginx/HAProxy's name|aes|hmac and name|hmac|aes. */
function swapSecrets(key) {
  const half = (key.length - NAME_BYTES) / 2
  return Buffer.concat([key.subarray(0, NAME_BYTES), key.subarray(NAME_BYTES + half), key.subarray(NAME_BYTES, NAME_BYTES + half)])
}

/** One key of `order` ('name|aes|hmac' or 'name|hmac|aes') in the ring's name|hmac|aes layout. */
function toRingLayout(key, order) {
  return order === 'name|hmac|aes' ? key : swapSecrets(key)
}

/** nginx key files in nginx's order: the first file's key encrypts. */
function nginxKeys(files) {
  const list = ArrayBuffer.isView(files) ? [files] : files
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidArgType('files', 'a Buffer or a non-empty array of Buffers', files)
  }
  const keys = list.map((file, i) => validateKeyBytes(file, `files[${i}]`))
  const size = keys[0].length
  if (!(size in NGINX_ORDER) || keys.some((k) => k.length !== size)) {
    throw invalidArgValue('files', `must all be 48 or all be 80 bytes long. Received ${keys.map((k) => k.length).join(', ')} bytes`)
  }
  return { cipher: LAYOUT_CIPHER[size], keys: Buffer.concat(keys.map((k) => toRingLayout(k, NGINX_ORDER[size]))) }
}

// HAProxy's rules for a `tls-ticket-keys` file (bind_parse_tls_ticket_keys, 2.6): one
// strictly base64 line per key, each line's trailing CR LF dropped, every key the size of the
// first, at least three of them. HAProxy keeps the last three: the second-to-last encrypts,
// the one before it is the previous key, and the last line is the next one.
const HAPROXY_MIN_KEYS = 3
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** The lines of a key file as HAProxy's fgets loop sees them. */
function haproxyLines(text) {
  const lines = String(text).split('\n')
  // A newline at the end of the last line ends it; it does not start another.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop()
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line))
}

/**
 * A HAProxy key file, refused where HAProxy refuses it. Returns the ring's keys (current
 * first, then previous) and the next key, each `name | hmac | aes`.
 */
function haproxyKeys(text) {
  if (typeof text !== 'string' && !Buffer.isBuffer(text)) throw invalidArgType('text', 'of type string or a Buffer', text)
  const keys = []
  haproxyLines(text).forEach((line, i) => {
    const where = `is refused by HAProxy: line ${i + 1}`
    if (!STRICT_BASE64.test(line)) {
      throw invalidArgValue('text', `${where} is not base64 (HAProxy refuses comments, blank lines and spaces too)`)
    }
    const key = Buffer.from(line, 'base64')
    if (!(key.length in LAYOUT_CIPHER) || (keys.length > 0 && key.length !== keys[0].length)) {
      throw invalidArgValue('text', `${where} holds a key of ${key.length} bytes: every key must be 48 or 80 bytes, all the same size`)
    }
    keys.push(key)
  })
  if (keys.length < HAPROXY_MIN_KEYS) {
    throw invalidArgValue('text', `is refused by HAProxy: it holds ${keys.length} key(s), and HAProxy needs at least ${HAPROXY_MIN_KEYS} (previous, current, next)`)
  }
  const [previous, current, next] = keys.slice(-HAPROXY_MIN_KEYS).map((k) => toRingLayout(k, 'name|aes|hmac'))
  // A line that repeats a key (a rotation script that wrote the current key twice) is one
  // key: the ring holds each key name once. One name with two different keys is refused.
  const ring = [current]
  for (const key of [previous, next]) {
    const same = ring.find((k) => k.subarray(0, NAME_BYTES).equals(key.subarray(0, NAME_BYTES)))
    if (same !== undefined && !same.equals(key)) {
      throw invalidArgValue('text', 'holds two different keys under one key name')
    }
    if (same === undefined) ring.push(key)
  }
  const nextKey = ring.includes(next) ? next : undefined
  return { cipher: LAYOUT_CIPHER[current.length], keys: Buffer.concat(ring.filter((k) => k !== next)), next: nextKey }
}

module.exports = { nginxKeys, haproxyKeys, swapSecrets, HAPROXY_MIN_KEYS }
