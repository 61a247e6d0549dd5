'use strict'

const { inspect } = require('node:util')
const binding = require('../binding.js')
const {
  callNative, refuseAllZero, invalidArgType, invalidArgValue, invalidState, outOfRange, validateObject, validateInteger, validateKeyBytes,
  validateOneOf,
  validateOptionNames,
} = require('./errors.js')
const {
  CIPHERS, RING_OPTIONS, kFed, kNextKeys, runDestroyHooks,
  kNative, kInspectTicket, kExportEdgeKeys, kSealEpochKeysTo, kOfferSealed, kSealHeld, kSealFallback, kOfferWrapped,
  kLivePreviousEpochs, kFallBackNow, kFeedRoundDone, kNewWrapper, kNewClusterInbox,
} = require('./internal.js')
const { nginxKeys, haproxyKeys } = require('./key-files.js')
const { kSnapshot, metricsText, snapshot } = require('./metrics.js')
const { validateRingName, defaultRingName } = require('./ring-name.js')
const { KeyWatcher } = require('./diagnostics.js')
const { forCluster } = require('./cluster.js')
const { nativeProven } = require('./platform.js')
const { nativePathAvailable } = require('./secure-context.js')
const { SecretFileWatch, validateSecretFileOptions } = require('./secret-file-watch.js')
const { ringSessionIdContext } = require('./session-id-context.js')

// Key material per key, by cipher, as the Rust ring lays it out: Node's layout (48 bytes), or
// the extended one (80).
const NODE_LAYOUT = binding.KEY_LAYOUT_BYTES_AES_128_CBC
const EXTENDED_LAYOUT = binding.KEY_LAYOUT_BYTES_AES_256_CBC
const LAYOUT = { 'aes-128-cbc': NODE_LAYOUT, 'aes-256-cbc': EXTENDED_LAYOUT }
const MAX_GENERATED_BYTES = EXTENDED_LAYOUT * 1024
// A scope is a short label (a region, a data centre).
const { MAX_SCOPE_BYTES } = binding
// Each previous secret keeps a schedule of keys of its own: a fleet moves between a few.
const MAX_PREVIOUS_SECRETS = 4
const DEFAULT_TICKET_LIFETIME = 7200
// Wipe expired keys within this many seconds even on a server that sees no handshakes.
const MAX_TICK_SECONDS = 60
// The ring's timer fires this long after each epoch boundary, when the Rust ring has rotated.
const TICK_AFTER_BOUNDARY_MS = 5

// A ring dropped without destroy(): its file watch stops with it.
const secretFileWatches = new FinalizationRegistry((watch) => watch.close())

function validateSecret(value, name) {
  const secret = validateKeyBytes(value, name)
  if (secret.length < binding.MIN_SECRET_BYTES) {
    throw invalidArgValue(name, `must be at least ${binding.MIN_SECRET_BYTES} bytes. Received ${secret.length} bytes`)
  }
  return refuseAllZero(secret, name)
}

// A lone surrogate: UTF-8 has no form for it (it would become U+FFFD, the same scope as another).
const LONE_SURROGATE = /\p{Surrogate}/u

function validateScope(scope) {
  if (typeof scope !== 'string') throw invalidArgType('options.scope', 'of type string', scope)
  if (LONE_SURROGATE.test(scope)) throw invalidArgValue('options.scope', 'must be a well-formed string (it has a lone surrogate)')
  const bytes = Buffer.byteLength(scope)
  if (bytes === 0 || bytes > MAX_SCOPE_BYTES) {
    throw outOfRange('options.scope', `1 to ${MAX_SCOPE_BYTES} UTF-8 bytes long`, bytes)
  }
  return scope
}

function validatePreviousSecrets(value) {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw invalidArgType('options.previousSecrets', 'an array of Buffers', value)
  if (value.length > MAX_PREVIOUS_SECRETS) {
    throw outOfRange('options.previousSecrets', `at most ${MAX_PREVIOUS_SECRETS} secrets long`, value.length)
  }
  // A loop, not map(): map() skips the holes of a sparse array, which would reach Rust unchecked.
  const secrets = []
  for (let i = 0; i < value.length; i++) secrets.push(validateSecret(value[i], `options.previousSecrets[${i}]`))
  return secrets
}

/**
 * The cipher of a ring made without options.cipher or keys: AES-256 where 'auto' attaches in
 * native mode, else AES-128, which callback mode can serve. Only such a ring asks whether the
 * native path runs, once per process (secure-context.js): predicting it from the platform and
 * process.versions alone would make an AES-256 ring that no mode serves wherever the symbols
 * still do not resolve (a Node that stops exporting one), and attach() would refuse it.
 */
function defaultCipher() {
  return nativeProven && nativePathAvailable() ? 'aes-256-cbc' : 'aes-128-cbc'
}

// By default one key in the layout of a default ring, so that what generateTicketKeys() makes,
// new TicketKeyRing() takes (ring.setTicketKeys(generateTicketKeys())).
function generateTicketKeys(size = LAYOUT[defaultCipher()]) {
  validateInteger(size, 'size', 1, MAX_GENERATED_BYTES)
  if (size % NODE_LAYOUT !== 0 && size % EXTENDED_LAYOUT !== 0) {
    throw invalidArgValue('size', `must be a multiple of ${NODE_LAYOUT} (Node layout) or ${EXTENDED_LAYOUT} (extended layout). Received ${size}`)
  }
  return callNative(() => binding.generateTicketKeys(size))
}

function cipherForKeys(bytes, cipher) {
  if (cipher !== undefined) return validateOneOf(cipher, 'options.cipher', CIPHERS)
  const byNode = bytes.length > 0 && bytes.length % NODE_LAYOUT === 0
  const byExtended = bytes.length > 0 && bytes.length % EXTENDED_LAYOUT === 0
  if (byNode && byExtended) {
    throw invalidArgValue('options.keys',
      `is ${bytes.length} bytes, which fits both the ${NODE_LAYOUT}- and the ${EXTENDED_LAYOUT}-byte layout; pass options.cipher`)
  }
  if (byNode) return 'aes-128-cbc'
  if (byExtended) return 'aes-256-cbc'
  throw invalidArgValue('options.keys', `must be a non-zero multiple of ${NODE_LAYOUT} or ${EXTENDED_LAYOUT} bytes. Received ${bytes.length} bytes`)
}

// The file decides the keys and their cipher; a secret and what goes with it have no place.
const FROM_FILE = ['keys', 'cipher', 'secret', 'scope', 'previousSecrets', 'secretFile', 'secretFileCheckInterval']

function validateImporterOptions(options) {
  validateObject(options, 'options')
  for (const name of FROM_FILE) {
    if (options[name] !== undefined) throw invalidArgValue(`options.${name}`, 'is refused: the key file decides the keys and their cipher')
  }
}

/** Milliseconds until the ring's next tick: just after the next epoch boundary, at most a minute. */
function msUntilTick(rotationIntervalSeconds) {
  const interval = rotationIntervalSeconds * 1000
  return Math.min(interval - (Date.now() % interval) + TICK_AFTER_BOUNDARY_MS, MAX_TICK_SECONDS * 1000)
}

/**
 * The Rust ring that options ask for, with what goes with it: `keysFrom` ('secret', 'secretFile'
 * or 'feed' for rings whose keys every process computes or receives alike, else null), the
 * watch of a secret file, and `scope`, the scope of a ring derived from secrets (null for others).
 */
function makeNativeRing(options, internal, rotationInterval, ticketLifetime) {
  const fed = internal?.[kFed]
  const fromFile = options.secretFile === undefined ? null : validateSecretFileOptions(options)
  if (options.secretFileCheckInterval !== undefined && fromFile === null) {
    throw invalidArgValue('options.secretFileCheckInterval', 'goes with options.secretFile')
  }
  if (options.secret !== undefined && options.keys !== undefined) {
    throw invalidArgValue('options', 'cannot have both keys and secret')
  }
  if (options.keys !== undefined && (options.scope !== undefined || options.previousSecrets !== undefined)) {
    const which = options.scope !== undefined ? 'options.scope' : 'options.previousSecrets'
    throw invalidArgValue(which, 'goes with options.secret, not with options.keys: it separates or renews keys derived from a secret')
  }
  const made = { native: null, keysFrom: null, secretFile: null, scope: null }
  if (fromFile !== null) {
    if (fed !== undefined) throw invalidArgValue('options.secretFile', 'is for a ring of its own, not one fed from a store or a cluster')
    const cipher = options.cipher === undefined
      ? defaultCipher()
      : validateOneOf(options.cipher, 'options.cipher', CIPHERS)
    const scope = options.scope === undefined ? '' : validateScope(options.scope)
    made.secretFile = SecretFileWatch.open(fromFile, (lines, activations, secrets) => callNative(() =>
      binding.NativeRing.fromSecretFile(cipher, rotationInterval, ticketLifetime, scope, lines, activations, secrets)))
    made.native = made.secretFile.native
    made.keysFrom = 'secretFile'
    made.scope = scope
    return made
  }
  if (options.keys !== undefined) {
    const keys = validateKeyBytes(options.keys, 'options.keys')
    const cipher = cipherForKeys(keys, options.cipher)
    const next = internal?.[kNextKeys]
    made.native = callNative(() => binding.NativeRing.explicit(cipher, rotationInterval, ticketLifetime, keys, next))
    return made
  }
  const cipher = options.cipher === undefined
    ? defaultCipher()
    : validateOneOf(options.cipher, 'options.cipher', CIPHERS)
  if (options.secret !== undefined) {
    const secret = validateSecret(options.secret, 'options.secret')
    const scope = options.scope === undefined ? '' : validateScope(options.scope)
    const previous = validatePreviousSecrets(options.previousSecrets)
    made.native = callNative(() => binding.NativeRing.derived(cipher, rotationInterval, ticketLifetime, secret, scope, previous))
    made.keysFrom = 'secret'
    made.scope = scope
  } else if (options.scope !== undefined || options.previousSecrets !== undefined) {
    const which = options.scope !== undefined ? 'options.scope' : 'options.previousSecrets'
    throw invalidArgValue(which, `needs options.secret${which === 'options.scope' ? ' or options.secretFile' : ''}: it ` +
      'separates or renews the keys derived from a fleet secret (rings fed from Redis get separate keys from another RedisKeyStore prefix)')
  } else if (fed?.fallback === 'derived') {
    made.native = callNative(() =>
      binding.NativeRing.fedDerived(cipher, rotationInterval, ticketLifetime, fed.wrapper, fed.prefix))
    made.keysFrom = 'feed'
  } else if (fed !== undefined) {
    made.native = callNative(() => binding.NativeRing.fed(cipher, rotationInterval, ticketLifetime))
    made.keysFrom = 'feed'
  } else {
    made.native = callNative(() => binding.NativeRing.random(cipher, rotationInterval, ticketLifetime))
  }
  return made
}

// Why rotate() and setTicketKeys() are refused on rings whose keys every process computes or
// receives alike: one process alone would seal with a key its peers do not hold.
const FOLLOWS = {
  secret: 'its keys are derived from the secret by the clock, the same in every process, and a key made in one ' +
    'process alone would be refused by the others; to replace the keys, move to a new secret with ' +
    'options.previousSecrets (README: "Moving to a new secret")',
  feed: 'its keys come from its feed (a RedisKeyStore or the cluster primary), the same in every process; rotate there',
  secretFile: 'its keys are derived by the clock from the secrets of its secretFile, the same in every process; to ' +
    'replace them, add a secret to the file with a time to come (tls-ticket-keys secret add FILE --activate-in 10m)',
}

// Whether `value` was made by this copy's TicketKeyRing constructor, not merely given its
// prototype (Object.create(TicketKeyRing.prototype) passes instanceof and has no Rust ring).
let isTicketKeyRing

class TicketKeyRing {
  #native
  /** 'secret', 'secretFile' or 'feed' for rings that follow keys shared by every process, else null. */
  #keysFrom = null
  #name
  #watcher
  #timer
  #rotationInterval
  #ticketLifetime
  /** The watch of options.secretFile, for a ring of a secret file. */
  #secretFile = null
  #sessionIdContext

  static {
    isTicketKeyRing = (value) => typeof value === 'object' && value !== null && #native in value
  }

  constructor(options = {}, internal = undefined) {
    const fed = internal?.[kFed]
    validateObject(options, 'options')
    validateOptionNames(options, 'options', RING_OPTIONS)
    const name = options.name === undefined ? undefined : validateRingName(options.name, 'options.name')
    const rotationInterval = options.rotationInterval === undefined ? 3600
      : validateInteger(options.rotationInterval, 'options.rotationInterval', 1, binding.MAX_ROTATION_INTERVAL)
    // Two hours, or as long as the ring can hold keys for when the interval is under 31 s.
    const ticketLifetime = options.ticketLifetime === undefined
      ? Math.min(DEFAULT_TICKET_LIFETIME, binding.maxTicketLifetime(rotationInterval))
      : validateInteger(options.ticketLifetime, 'options.ticketLifetime', 1, binding.MAX_TICKET_LIFETIME)
    const made = makeNativeRing(options, internal, rotationInterval, ticketLifetime)
    this.#native = made.native
    this.#keysFrom = made.keysFrom
    this.#secretFile = made.secretFile
    this.#sessionIdContext = ringSessionIdContext(made.scope)
    this.#rotationInterval = rotationInterval
    this.#ticketLifetime = ticketLifetime
    this.#name = name ?? defaultRingName()
    // A fed ring's first keys come from its feed before the ring is handed out.
    this.#watcher = new KeyWatcher(this.#name, this.#native, { publishing: fed === undefined, fallbackKind: fed?.fallback })
    if (this.#secretFile !== null) {
      this.#secretFile.start(this.#name, this.#watcher)
      secretFileWatches.register(this, this.#secretFile, this.#secretFile)
    }
    this.#scheduleTick()
  }

  // Rotation is computed at every lookup; this timer makes sure that expired keys are wiped on
  // time on an idle server, and that the rotate and fallback diagnostics see each rotation
  // within milliseconds of its epoch boundary. It holds the ring weakly and never keeps a
  // process alive.
  #scheduleTick() {
    const ref = new WeakRef(this)
    // A secret file's ring also wakes when a secret's time to go comes, to wipe it on time.
    const ms = Math.min(msUntilTick(this.#rotationInterval), this.#secretFile?.msUntilDrop() ?? Infinity)
    this.#timer = setTimeout(() => ref.deref()?.#tick(), ms)
    this.#timer.unref()
  }

  #tick() {
    const native = this.#native
    if (native.destroyed) return
    native.tick()
    this.#watcher.check(native, 'schedule')
    this.#secretFile?.dropExpired()
    this.#scheduleTick()
  }

  #alive() {
    if (this.#native.destroyed) throw invalidState('the TicketKeyRing has been destroyed')
    return this.#native
  }

  // The internal methods (internal.js): how the other modules of lib/ reach the Rust ring.
  // Those that change the keys tell the watcher in the same call.

  [kNative]() {
    return this.#native
  }

  /** What the Rust ring says of `bytes`, and whether it is a secret file's ring. */
  [kInspectTicket](bytes) {
    const native = this.#native
    return { report: callNative(() => native.inspectTicket(bytes)), secretFile: native.isSecretFile }
  }

  [kExportEdgeKeys](kind, slots) {
    return callNative(() => this.#native.exportEdgeKeys(kind, slots))
  }

  [kSealEpochKeysTo](publicKey, channel) {
    return callNative(() => this.#native.sealEpochKeysTo(publicKey, channel))
  }

  /** A cluster worker's ring takes the keys its primary sealed to it: each message is a whole round. */
  [kOfferSealed](inbox, sealed, channel) {
    callNative(() => this.#native.offerSealed(inbox, sealed, channel))
    this.#watcher.feedRoundDone(this.#native, { offered: true })
  }

  [kSealHeld](wrapper, prefix, epoch) {
    return callNative(() => this.#native.sealHeld(wrapper, prefix, epoch))
  }

  [kSealFallback](wrapper, prefix, epoch) {
    return callNative(() => this.#native.sealFallback(wrapper, prefix, epoch))
  }

  /** true when the ring took the key (it had none for `epoch`, or another one). */
  [kOfferWrapped](wrapper, prefix, epoch, value) {
    const taken = callNative(() => this.#native.offerWrapped(wrapper, prefix, epoch, value))
    if (taken) this.#watcher.check(this.#native, 'feed')
    return taken
  }

  get [kLivePreviousEpochs]() {
    return this.#native.livePreviousEpochs
  }

  [kFallBackNow](pastToo) {
    callNative(() => this.#native.fallBackNow(pastToo))
  }

  /** A store's round ended: fallbacks counted meanwhile are published; the first round makes the ring ready. */
  [kFeedRoundDone]() {
    this.#watcher.feedRoundDone(this.#native, { offered: false })
  }

  /** A RedisKeyStore's wrapping key, from `secret` (given as option `name`). */
  static [kNewWrapper](secret, name) {
    if (secret.length < binding.MIN_WRAP_SECRET_BYTES) {
      throw invalidArgValue(name, `must be at least ${binding.MIN_WRAP_SECRET_BYTES} bytes. Received ${secret.length} bytes`)
    }
    refuseAllZero(secret, name)
    return callNative(() => new binding.NativeWrapper(secret))
  }

  /** A cluster worker's key pair, which the primary seals the keys to. */
  static [kNewClusterInbox]() {
    return callNative(() => new binding.NativeClusterInbox())
  }

  /**
   * One ring for a node:cluster: call it in the primary and in every worker. Workers mirror
   * the primary's keys over IPC and rotate with it.
   */
  static forCluster(options = {}) {
    return forCluster(TicketKeyRing, options)
  }

  /**
   * A ring of the keys in nginx `ssl_session_ticket_key` files, in nginx's order (the first
   * file's key encrypts). See key-files.js.
   */
  static fromNginx(files, options = {}) {
    validateImporterOptions(options)
    return new TicketKeyRing({ ...options, ...nginxKeys(files) })
  }

  /**
   * A ring of the keys in a HAProxy `tls-ticket-keys` file, refused where HAProxy refuses it:
   * like HAProxy, the last three lines, labelled previous, current (it encrypts) and next.
   * `rotate()` makes the next key current, as HAProxy's `set ssl tls-key` does. See key-files.js.
   */
  static fromHaproxy(text, options = {}) {
    validateImporterOptions(options)
    const { cipher, keys, next } = haproxyKeys(text)
    return new TicketKeyRing({ ...options, cipher, keys }, { [kNextKeys]: next })
  }

  /** The `ring` label of its metrics and diagnostics messages: options.name, else `ring-<n>`. */
  get name() {
    return this.#name
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
   * The session id context attach() gives servers: for a secret-derived ring, derived from its
   * scope (not the secret, so that moving to a new secret keeps it), else one shared by every
   * ring. The same wherever the keys are shared.
   */
  get sessionIdContext() {
    return this.#sessionIdContext
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

  #ownKeys(operation) {
    if (this.#keysFrom !== null) throw invalidState(`${operation} is refused on this ring: ${FOLLOWS[this.#keysFrom]}`)
  }

  setTicketKeys(keys) {
    const native = this.#alive()
    this.#ownKeys('setTicketKeys()')
    const bytes = validateKeyBytes(keys, 'keys')
    const layout = LAYOUT[native.cipher]
    if (bytes.length === 0 || bytes.length % layout !== 0) {
      throw invalidArgValue('keys',
        `must be a non-zero multiple of ${layout} bytes for an ${native.cipher} ring. Received ${bytes.length} bytes`)
    }
    callNative(() => native.setKeys(bytes))
    this.#watcher.check(native, 'setTicketKeys')
  }

  rotate() {
    const native = this.#alive()
    this.#ownKeys('rotate()')
    callNative(() => native.rotate())
    this.#watcher.check(native, 'rotate')
  }

  keys() {
    const native = this.#alive()
    return callNative(() => native.keys()).map((k) => {
      const key = {
        name: k.name,
        state: k.state,
        activatesAt: new Date(k.activatesAt * 1000),
        expiresAt: k.expiresAt == null ? null : new Date(k.expiresAt * 1000),
      }
      // A secret file's ring: the fingerprint of the secret the key was derived from.
      if (this.#secretFile !== null) key.secret = k.secret ?? null
      return key
    })
  }

  /**
   * For a ring of options.secretFile: the secrets it holds, earliest first, by fingerprint
   * (never the secret), with their line, activation, the time each seals from, when it will
   * be dropped, and its state ('pending', 'sealing' or 'retired').
   */
  secrets() {
    this.#alive()
    if (this.#secretFile === null) throw invalidState('secrets() is for a ring of options.secretFile')
    return this.#secretFile.secrets()
  }

  stats() {
    const stats = { ...this.#alive().stats() }
    if (this.#secretFile !== null) Object.assign(stats, this.#secretFile.stats())
    return stats
  }

  /**
   * The ring's counters, its keys by state, and why handshakes on each attached server
   * resumed or not, in the Prometheus text exposition format, each series labelled with the
   * ring's name. A destroyed ring shows its final counters and no keys.
   */
  metrics() {
    return metricsText(this[kSnapshot]())
  }

  /** What registerMetrics() reads at each scrape, whichever copy of the package registered it. */
  [kSnapshot]() {
    return snapshot(this, this.#native, this.#secretFile)
  }

  destroy() {
    clearTimeout(this.#timer)
    if (this.#secretFile !== null) {
      this.#secretFile.close()
      secretFileWatches.unregister(this.#secretFile)
    }
    this.#native.destroy()
    runDestroyHooks(this)
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
      name: this.#name,
      cipher: this.#native.cipher,
      rotationInterval: this.rotationInterval,
      ticketLifetime: this.ticketLifetime,
      keys: destroyed ? 0 : this.#native.keys().length,
      destroyed,
    }
  }
}

module.exports = { TicketKeyRing, generateTicketKeys, isTicketKeyRing }
