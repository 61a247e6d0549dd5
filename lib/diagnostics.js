'use strict'

// node:diagnostics_channel messages, as undici and Node's own modules publish them. Each is
// published only while the channel has subscribers, and carries names and counts, never a
// key byte, a Redis URL or a password.
//
//   tls-ticket-keys:rotate       { ring, current, previous, keys: [{ name, state }], cause }
//   tls-ticket-keys:fallback     { ring, key, kind, fallbackKeys }
//   tls-ticket-keys:refused      { ring, server, reason }
//   tls-ticket-keys:store-error  { rings, operation, error: { name, code, message } }
//   tls-ticket-keys:secret       a secret file's ring (secret: a fingerprint, never a secret):
//                                { ring, event: 'takeover', secret, previous }   a secret seals from now on
//                                { ring, event: 'dropped', secret, line }        a secret stops opening, wiped
//                                { ring, event: 'read', file, added, removed, secrets }  a new version taken
//                                { ring, event: 'refused', file, reason, secretFileErrors }  a bad version
//   (and the rotate message of such a ring carries `secret`: the current key's)

const diagnosticsChannel = require('node:diagnostics_channel')
const { serverLabel } = require('./metrics.js')

// Channels are global by name: every copy of the package in the process publishes to the same ones.
const channels = {
  rotate: diagnosticsChannel.channel('tls-ticket-keys:rotate'),
  fallback: diagnosticsChannel.channel('tls-ticket-keys:fallback'),
  refused: diagnosticsChannel.channel('tls-ticket-keys:refused'),
  storeError: diagnosticsChannel.channel('tls-ticket-keys:store-error'),
  secret: diagnosticsChannel.channel('tls-ticket-keys:secret'),
}

/** The reasons `handle.stats()` counts for a ticket that did not resume. */
const REFUSAL_REASONS = ['unknownKey', 'expiredKey', 'notResumed']

/**
 * Watches one ring's keys for the changes the JavaScript side can see: the current key
 * changing (rotate), and a fed ring sealing with a key it made itself because its feed was
 * late (fallback). The Rust ring rotates by itself at each lookup, and counts a fallback key
 * when it seals its first ticket. The ring calls `check()` in each of its methods that can
 * change the keys (rotate(), setTicketKeys(), a feed's offer: ring.js) and from its timer,
 * which fires just after each epoch boundary, where the Rust ring rotates by the clock; and
 * `feedRoundDone()` after each round of a feed, so that every fallback counted is published
 * within a round or a boundary. The ring's first keys are not a change.
 */
class KeyWatcher {
  #ringName
  #current
  #currentSecret
  #fallbackKeys
  #fallbackKind
  #publishing

  /**
   * `native`: the Rust ring, as it is at the ring's creation. Without `publishing`, changes are
   * followed but not published until the first feedRoundDone() (a fed ring, until its feed delivered).
   * `fallbackKind`: what a fed ring's fallback keys are, 'derived' (alike in every member of a
   * fleet) or 'local' (random, its own).
   */
  constructor(ringName, native, { publishing, fallbackKind = 'local' }) {
    this.#ringName = ringName
    this.#publishing = publishing
    this.#fallbackKind = fallbackKind
    const keys = native.keys()
    this.#current = currentName(keys)
    this.#currentSecret = currentSecret(keys)
    this.#fallbackKeys = native.stats().fallbackKeys
  }

  /**
   * A feed's round ended. `offered`: it offered keys in this call (a cluster message), which
   * may have changed them. A fed ring's first round makes it ready: only later changes are
   * published. Else the fallbacks counted meanwhile are published.
   */
  feedRoundDone(native, { offered }) {
    if (!this.#publishing) {
      this.check(native, 'feed')
      this.#publishing = true
    } else if (offered) {
      this.check(native, 'feed')
    } else {
      this.checkFallbacks(native)
    }
  }

  /** `cause`: 'schedule' (the ring's timer), 'rotate', 'setTicketKeys' or 'feed'. */
  check(native, cause) {
    if (native.destroyed) return
    let keys
    try {
      keys = native.keys()
    } catch {
      return
    }
    const current = currentName(keys)
    const previous = this.#current
    this.#current = current
    const secret = currentSecret(keys)
    if (current !== previous && this.#publishing && channels.rotate.hasSubscribers) {
      const message = { ring: this.#ringName, current, previous, keys: keys.map(({ name, state }) => ({ name, state })), cause }
      if (secret != null) message.secret = secret
      channels.rotate.publish(message)
    }
    // A secret file's ring: a newer secret sealing from now on.
    const previousSecret = this.#currentSecret
    this.#currentSecret = secret
    if (secret != null && previousSecret != null && secret !== previousSecret && channels.secret.hasSubscribers) {
      channels.secret.publish({ ring: this.#ringName, event: 'takeover', secret, previous: previousSecret })
    }
    this.checkFallbacks(native)
  }

  /** One message per fallback counted since the last look (never more than one in practice). */
  checkFallbacks(native) {
    if (native.destroyed) return
    const fallbackKeys = native.stats().fallbackKeys
    const counted = fallbackKeys - this.#fallbackKeys
    this.#fallbackKeys = fallbackKeys
    if (counted <= 0 || !this.#publishing || !channels.fallback.hasSubscribers) return
    const key = native.lastFallbackKey ?? this.#current
    for (let n = fallbackKeys - counted + 1; n <= fallbackKeys; n++) {
      channels.fallback.publish({ ring: this.#ringName, key, kind: this.#fallbackKind, fallbackKeys: n })
    }
  }
}

function currentSecret(keys) {
  return keys.find((k) => k.state === 'current')?.secret ?? null
}

function currentName(keys) {
  return keys.find((k) => k.state === 'current')?.name ?? null
}

/**
 * One `refused` message per ticket that a handshake refused, for an attachment's `state`
 * ({ notResumed: the highest count published so far }). `before` and `after` are its ticket
 * counts ({ opened, unknownKey, expiredKey }) around the handshake that just ended, `resumed`
 * the resumed handshakes after it, `reused` whether this one resumed.
 *
 * unknownKey and expiredKey are counted as the ring looks the ticket up, so their increase is
 * exact. A ticket that opened but did not resume is only known as `opened - resumed`, which
 * briefly counts tickets of handshakes still under way: so it is published only when a
 * handshake ends without resuming, and only when that count passes the highest one published.
 * Nothing to do without a subscriber, which is the common case.
 */
function publishRefusals(ring, server, state, before, after, resumed, reused) {
  // Kept up to date without a subscriber too, so that a late one is not told the past.
  let notResumed = 0
  if (!reused && after.opened - resumed > state.notResumed) {
    notResumed = after.opened - resumed - state.notResumed
    state.notResumed += notResumed
  }
  if (!channels.refused.hasSubscribers) return
  const counts = {
    unknownKey: after.unknownKey - before.unknownKey,
    expiredKey: after.expiredKey - before.expiredKey,
    notResumed,
  }
  for (const reason of REFUSAL_REASONS) {
    for (let i = 0; i < counts[reason]; i++) {
      channels.refused.publish({ ring: ring.name, server: serverLabel(server), reason })
    }
  }
}

// What a Redis error may say: its class, a short code, and its message without credentials.
// node-redis and ioredis quote host and port, and sometimes a URL, which may carry a password.
const CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,39}$/
const MAX_MESSAGE_LENGTH = 200

function redactedMessage(message, secrets) {
  let text = String(message).slice(0, MAX_MESSAGE_LENGTH)
  // user:password@ in any URL-like text.
  text = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1')
  for (const secret of secrets) {
    if (secret) text = text.split(secret).join('***')
  }
  return text
}

/**
 * `err` as a store-error message may carry it. `secrets`: strings known to be secret (the
 * URL's user name and password), removed wherever they appear.
 */
function describeStoreError(err, secrets = []) {
  const name = typeof err?.name === 'string' && /^\w{1,40}$/.test(err.name) ? err.name : 'Error'
  const code = typeof err?.code === 'string' && CODE_PATTERN.test(err.code) ? err.code : undefined
  const message = redactedMessage(err?.message ?? err, secrets)
  return code === undefined ? { name, message } : { name, code, message }
}

function publishStoreError(rings, operation, err, secrets) {
  if (!channels.storeError.hasSubscribers) return
  channels.storeError.publish({ rings, operation, error: describeStoreError(err, secrets) })
}

module.exports = { channels, KeyWatcher, publishRefusals, publishStoreError, describeStoreError, REFUSAL_REASONS }
