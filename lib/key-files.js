'use strict'

// Key files of other software, read into the ring's `name | hmac | aes` layout: nginx
// `ssl_session_ticket_key` files and HAProxy `tls-ticket-keys` files. Each reader returns the
// { cipher, keys } of a ring of explicit keys.

const { invalidArgType, invalidArgValue, validateKeyBytes } = require('./errors.js')

const NAME_BYTES = 16
// nginx: 48-byte files are name|aes|hmac, 80-byte ones name|hmac|aes.
const NGINX_ORDER = { 48: 'name|aes|hmac', 80: 'name|hmac|aes' }
// HAProxy keeps the last three keys of a file; the second-to-last encrypts.
const HAPROXY_WINDOW = 3
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

/** A HAProxy key file: base64 lines of 48 or 80 bytes, each `name | aes | hmac`. */
function haproxyKeys(text) {
  if (typeof text !== 'string' && !Buffer.isBuffer(text)) throw invalidArgType('text', 'of type string or a Buffer', text)
  const lines = String(text).split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const keys = lines.slice(-HAPROXY_WINDOW).map((line) => Buffer.from(line, 'base64'))
  if (keys.length === 0 || keys.some((k) => !(k.length in LAYOUT_CIPHER) || k.length !== keys[0].length)) {
    throw invalidArgValue('text', 'must hold base64 lines of 48 or 80 bytes each, all the same size')
  }
  const encrypting = Math.max(keys.length - 2, 0)
  const ordered = [keys[encrypting], ...keys.filter((k, i) => i !== encrypting).reverse()]
  return { cipher: LAYOUT_CIPHER[keys[0].length], keys: Buffer.concat(ordered.map((k) => toRingLayout(k, 'name|aes|hmac'))) }
}

module.exports = { nginxKeys, haproxyKeys, swapSecrets }
