'use strict'

const { createHash } = require('node:crypto')
const { inspect } = require('node:util')
const binding = require('../binding.js')
const {
  callNative, invalidArgType, invalidArgValue, invalidState, validateObject, validateInteger, validateKeyBytes, validateOneOf,
} = require('./errors.js')

const CIPHERS = ['aes-128-cbc', 'aes-256-cbc']
const LAYOUT = { 'aes-128-cbc': 48, 'aes-256-cbc': 80 }
const MAX_ROTATION_INTERVAL = 31536000 // a year
const MAX_TICKET_LIFETIME = 604800 // RFC 8446 §4.6.1: seven days
const MAX_GENERATED_BYTES = 80 * 1024
// Wipe expired keys within this many seconds even on a server that sees no handshakes.
const MAX_TICK_SECONDS = 60

// Every ring that is not derived from a fleet secret shares one session id context, so that
// servers holding the same keys resume each other's tickets whatever their argv. Sessions
// can only cross between servers that can open each other's tickets anyway.
const SHARED_SESSION_ID_CONTEXT = createHash('sha256')
  .update('tls-ticket-keys session id context v1').digest('hex').slice(0, 32)

const natives = new WeakMap()
// ring -> the attachments serving its tickets, for metrics().
const attachmentsByRing = new WeakMap()

function registerAttachment(ring, attachment) {
  if (!attachmentsByRing.has(ring)) attachmentsByRing.set(ring, new Set())
  attachmentsByRing.get(ring).add(attachment)
}

function unregisterAttachment(ring, attachment) {
  attachmentsByRing.get(ring)?.delete(attachment)
}
// The layouts of other software's key files, for the importers.
const NGINX_ORDER = { 48: 'name|aes|hmac', 80: 'name|hmac|aes' }
const HAPROXY_WINDOW = 3
const LAYOUT_CIPHER = { 48: 'aes-128-cbc', 80: 'aes-256-cbc' }

/** `name | a | b` as `name | b | a`: between nginx/HAProxy's name|aes|hmac and name|hmac|aes. */
function swapSecrets(key) {
  const half = (key.length - 16) / 2
  return Buffer.concat([key.subarray(0, 16), key.subarray(16 + half), key.subarray(16, 16 + half)])
}

/** One key of `order` ('name|aes|hmac' or 'name|hmac|aes') in the ring's name|hmac|aes layout. */
function toRingLayout(key, order) {
  return order === 'name|hmac|aes' ? key : swapSecrets(key)
}
// Passed by the store and the cluster code to make a ring that is fed keys from outside.
const kFed = Symbol('fed ring')
const MIN_SECRET_BYTES = 32

/** The Rust ring behind a TicketKeyRing; for attach(), not exported from the package. */
function nativeOf(ring) {
  const native = natives.get(ring)
  if (native === undefined) throw invalidState('not a TicketKeyRing')
  return native
}

/**
 * Milliseconds until the middle of the current epoch, or of the next one once past it: when
 * a feed hands out the next key, well before it is due and away from the rotation instant.
 */
function msUntilMidEpoch(rotationIntervalSeconds) {
  const interval = rotationIntervalSeconds * 1000
  const intoEpoch = Date.now() % interval
  return (intoEpoch < interval / 2 ? interval / 2 : 1.5 * interval) - intoEpoch
}

function nativeAvailable() {
  return binding.nativeUnavailableReason() === null
}

/** The cipher of a ring made without options.cipher or keys: AES-256 where native mode works. */
function defaultCipher() {
  return nativeAvailable() ? 'aes-256-cbc' : 'aes-128-cbc'
}

// By default one key in the layout of a default ring, so that what generateTicketKeys() makes,
// new TicketKeyRing() takes (ring.setTicketKeys(generateTicketKeys())).
function generateTicketKeys(size = LAYOUT[defaultCipher()]) {
  validateInteger(size, 'size', 1, MAX_GENERATED_BYTES)
  if (size % 48 !== 0 && size % 80 !== 0) {
    throw invalidArgValue('size', `must be a multiple of 48 (Node layout) or 80 (extended layout). Received ${size}`)
  }
  return callNative(() => binding.generateTicketKeys(size))
}

function cipherForKeys(bytes, cipher) {
  if (cipher !== undefined) return validateOneOf(cipher, 'options.cipher', CIPHERS)
  const by48 = bytes.length > 0 && bytes.length % 48 === 0
  const by80 = bytes.length > 0 && bytes.length % 80 === 0
  if (by48 && by80) {
    throw invalidArgValue('options.keys',
      `is ${bytes.length} bytes, which fits both the 48- and the 80-byte layout; pass options.cipher`)
  }
  if (by48) return 'aes-128-cbc'
  if (by80) return 'aes-256-cbc'
  throw invalidArgValue('options.keys', `must be a non-zero multiple of 48 or 80 bytes. Received ${bytes.length} bytes`)
}

class TicketKeyRing {
  #native
  #timer
  #rotationInterval
  #ticketLifetime

  constructor(options = {}, internal = undefined) {
    validateObject(options, 'options')
    const rotationInterval = options.rotationInterval === undefined ? 3600
      : validateInteger(options.rotationInterval, 'options.rotationInterval', 1, MAX_ROTATION_INTERVAL)
    const ticketLifetime = options.ticketLifetime === undefined ? 7200
      : validateInteger(options.ticketLifetime, 'options.ticketLifetime', 1, MAX_TICKET_LIFETIME)
    if (options.secret !== undefined && options.keys !== undefined) {
      throw invalidArgValue('options', 'cannot have both keys and secret')
    }
    if (options.keys !== undefined) {
      const keys = validateKeyBytes(options.keys, 'options.keys')
      const cipher = cipherForKeys(keys, options.cipher)
      this.#native = callNative(() => binding.NativeRing.explicit(cipher, rotationInterval, ticketLifetime, keys))
    } else {
      const cipher = options.cipher === undefined
        ? (nativeAvailable() ? 'aes-256-cbc' : 'aes-128-cbc')
        : validateOneOf(options.cipher, 'options.cipher', CIPHERS)
      if (options.secret !== undefined) {
        const secret = validateKeyBytes(options.secret, 'options.secret')
        if (secret.length < MIN_SECRET_BYTES) {
          throw invalidArgValue('options.secret', `must be at least ${MIN_SECRET_BYTES} bytes. Received ${secret.length} bytes`)
        }
        this.#native = callNative(() => binding.NativeRing.derived(cipher, rotationInterval, ticketLifetime, secret))
      } else if (internal === kFed) {
        this.#native = callNative(() => binding.NativeRing.fed(cipher, rotationInterval, ticketLifetime))
      } else {
        this.#native = callNative(() => binding.NativeRing.random(cipher, rotationInterval, ticketLifetime))
      }
    }
    this.#rotationInterval = rotationInterval
    this.#ticketLifetime = ticketLifetime
    natives.set(this, this.#native)
    this.#startTicking()
  }

  // Rotation is computed at every lookup; this timer only makes sure that expired keys are
  // wiped on time on an idle server. It holds the ring weakly and never keeps a process alive.
  #startTicking() {
    const ref = new WeakRef(this.#native)
    const timer = setInterval(() => {
      const native = ref.deref()
      if (native === undefined || native.destroyed) clearInterval(timer)
      else native.tick()
    }, Math.min(this.rotationInterval, MAX_TICK_SECONDS) * 1000)
    timer.unref()
    this.#timer = timer
  }

  #alive() {
    if (this.#native.destroyed) throw invalidState('the TicketKeyRing has been destroyed')
    return this.#native
  }

  /**
   * One ring for a node:cluster: call it in the primary and in every worker. Workers mirror
   * the primary's keys over IPC and rotate with it.
   */
  static forCluster(options = {}) {
    return require('./cluster.js').forCluster(options)
  }

  /**
   * A ring of the keys in nginx `ssl_session_ticket_key` files, in nginx's order (the first
   * file's key encrypts). 48-byte files are `name | aes | hmac`; 80-byte files are
   * `name | hmac | aes`. Explicit keys: no automatic rotation.
   */
  static fromNginx(files, options = {}) {
    const list = ArrayBuffer.isView(files) ? [files] : files
    if (!Array.isArray(list) || list.length === 0) {
      throw invalidArgType('files', 'a Buffer or a non-empty array of Buffers', files)
    }
    const keys = list.map((file, i) => validateKeyBytes(file, `files[${i}]`))
    const size = keys[0].length
    if (!(size in NGINX_ORDER) || keys.some((k) => k.length !== size)) {
      throw invalidArgValue('files', `must all be 48 or all be 80 bytes long. Received ${keys.map((k) => k.length).join(', ')} bytes`)
    }
    return new TicketKeyRing({ ...options, cipher: LAYOUT_CIPHER[size], keys: Buffer.concat(keys.map((k) => toRingLayout(k, NGINX_ORDER[size]))) })
  }

  /**
   * A ring of the keys in a HAProxy `tls-ticket-keys` file: base64 lines of 48 or 80 bytes,
   * each `name | aes | hmac`. Like HAProxy, it takes the last three keys and the
   * second-to-last encrypts, so appending a line rotates.
   */
  static fromHaproxy(text, options = {}) {
    if (typeof text !== 'string' && !Buffer.isBuffer(text)) throw invalidArgType('text', 'of type string or a Buffer', text)
    const lines = String(text).split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    const keys = lines.slice(-HAPROXY_WINDOW).map((line) => Buffer.from(line, 'base64'))
    if (keys.length === 0 || keys.some((k) => !(k.length === 48 || k.length === 80) || k.length !== keys[0].length)) {
      throw invalidArgValue('text', 'must hold base64 lines of 48 or 80 bytes each, all the same size')
    }
    const encrypting = Math.max(keys.length - 2, 0)
    const ordered = [keys[encrypting], ...keys.filter((k, i) => i !== encrypting).reverse()]
    return new TicketKeyRing({
      ...options, cipher: LAYOUT_CIPHER[keys[0].length], keys: Buffer.concat(ordered.map((k) => toRingLayout(k, 'name|aes|hmac'))),
    })
  }

  /** Seconds a key encrypts. */
  get rotationInterval() {
    return this.#rotationInterval
  }

  /** Seconds a ticket stays resumable; attach() makes it the server's session timeout. */
  get ticketLifetime() {
    return this.#ticketLifetime
  }

  /**
   * The session id context attach() gives servers: derived from the secret for a
   * secret-derived ring, else one shared by every ring. The same wherever the keys are shared.
   */
  get sessionIdContext() {
    return this.#native.sessionIdContext ?? SHARED_SESSION_ID_CONTEXT
  }

  /** 'aes-128-cbc' (48-byte keys) or 'aes-256-cbc' (80-byte keys). */
  get cipher() {
    return this.#native.cipher
  }

  get destroyed() {
    return this.#native.destroyed
  }

  getTicketKeys() {
    const native = this.#alive()
    return callNative(() => native.currentKeys())
  }

  setTicketKeys(keys) {
    const native = this.#alive()
    const bytes = validateKeyBytes(keys, 'keys')
    const layout = LAYOUT[native.cipher]
    if (bytes.length === 0 || bytes.length % layout !== 0) {
      throw invalidArgValue('keys',
        `must be a non-zero multiple of ${layout} bytes for an ${native.cipher} ring. Received ${bytes.length} bytes`)
    }
    callNative(() => native.setKeys(bytes))
  }

  rotate() {
    const native = this.#alive()
    callNative(() => native.rotate())
  }

  keys() {
    const native = this.#alive()
    return callNative(() => native.keys()).map((k) => ({
      name: k.name,
      state: k.state,
      activatesAt: new Date(k.activatesAt * 1000),
      expiresAt: k.expiresAt == null ? null : new Date(k.expiresAt * 1000),
    }))
  }

  stats() {
    return { ...this.#alive().stats() }
  }

  /**
   * The ring's counters, its keys by state, and why handshakes on each attached server
   * resumed or not, in the Prometheus text exposition format.
   */
  metrics() {
    const native = this.#alive()
    const stats = native.stats()
    const keys = native.keys()
    const lines = []
    const metric = (name, type, help, samples) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`)
    }
    const counter = (name, help, value) => metric(`tls_ticket_keys_${name}_total`, 'counter', help, [['', value]])
    counter('tickets_issued', 'Session tickets sealed with the ring.', stats.issued)
    counter('tickets_resumed', 'Tickets opened with the current or the next key.', stats.resumed)
    counter('tickets_renewed', 'Tickets opened with a previous key and renewed under the current one.', stats.renewed)
    counter('tickets_unknown_key', 'Tickets under a key the ring never held.', stats.unknownKey)
    counter('tickets_expired_key', 'Tickets under a key the ring held and wiped.', stats.expired)
    counter('fallback_keys', 'Keys a fed ring made itself because its feed was late.', stats.fallbackKeys)
    metric('tls_ticket_keys_keys', 'gauge', 'Keys held, by state.',
      ['next', 'current', 'previous'].map((state) => [`{state="${state}"}`, keys.filter((k) => k.state === state).length]))
    const servers = [...(attachmentsByRing.get(this) ?? [])].map((a, i) => {
      const address = a.server.address()
      const label = address && typeof address === 'object' ? `${address.address}:${address.port}` : String(i)
      return [label.replace(/["\\\n]/g, '_'), a.stats()]
    })
    const reasons = ['resumed', 'noTicket', 'unknownKey', 'expiredKey', 'notResumed']
    const snake = (s) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
    metric('tls_ticket_keys_handshakes_total', 'counter',
      'TLS handshakes on attached servers, by outcome: resumed, or why not.',
      servers.flatMap(([label, s]) => reasons.map((r) => [`{server="${label}",outcome="${snake(r)}"}`, s[r]])))
    return `${lines.join('\n')}\n`
  }

  destroy() {
    clearInterval(this.#timer)
    this.#native.destroy()
  }

  toJSON() {
    return this.#summary()
  }

  [inspect.custom](depth, options, inspectFn = inspect) {
    return `TicketKeyRing ${inspectFn(this.#summary(), options)}`
  }

  #summary() {
    const destroyed = this.#native.destroyed
    return {
      cipher: this.#native.cipher,
      rotationInterval: this.rotationInterval,
      ticketLifetime: this.ticketLifetime,
      keys: destroyed ? 0 : this.#native.keys().length,
      destroyed,
    }
  }
}

module.exports = {
  TicketKeyRing, generateTicketKeys, nativeOf, nativeAvailable, kFed, LAYOUT, registerAttachment, unregisterAttachment,
  swapSecrets, msUntilMidEpoch,
}
