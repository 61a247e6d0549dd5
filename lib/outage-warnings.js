'use strict'

// A store outage, made visible as a process warning (what nginx and HAProxy log): one when
// the store's first Redis call fails, one when a call succeeds again, none in between,
// however many commands fail. The messages name the store's rings and the error's code,
// never a URL, a password or key bytes. `warnings: false` in the store's options turns them off
// (the `tls-ticket-keys:store-error` diagnostics channel still carries every error).

const OUTAGE = 'TLS_TICKET_STORE_OUTAGE'
const RECOVERED = 'TLS_TICKET_STORE_RECOVERED'
const TYPE = 'TlsTicketKeysWarning'

// The longest part of an error's message a warning quotes.
const MAX_MESSAGE = 100

function describe(err) {
  if (err && typeof err.code === 'string' && /^[A-Z0-9_]+$/.test(err.code)) return err.code
  // node-redis' errors for a refused or closed socket carry no code: their first line says it.
  const name = err && typeof err.name === 'string' && /^\w+$/.test(err.name) ? err.name : 'an error'
  const line = err && typeof err.message === 'string' ? err.message.split('\n')[0].slice(0, MAX_MESSAGE) : ''
  return line ? `${name} (${line})` : name
}

function ringList(rings) {
  const names = rings.filter((n) => typeof n === 'string')
  return names.length ? ` (rings: ${names.join(', ')})` : ''
}

// What a store outage's warnings say, by the store's `fallback` option; exportKeys() gives its
// own (export-keys.js).
function redisWords(fallback = 'derived') {
  const then = fallback === 'local' ? 'random keys of their own (the fleet splits)' : 'keys derived from wrapSecret, the same in every member'
  return {
    what: 'Redis store',
    outage: OUTAGE,
    recovered: RECOVERED,
    meanwhile: `rings keep rotating on the keys they hold ahead, then on ${then}, until it answers`,
  }
}

class OutageWarnings {
  #enabled
  #down = false
  #since = 0
  #failures = 0
  #words

  constructor(enabled = true, words = redisWords()) {
    this.#enabled = enabled
    this.#words = words
  }

  get down() {
    return this.#down
  }

  /** A Redis call failed: the first failure of an outage warns. */
  failed(err, operation, rings = []) {
    this.#failures++
    if (this.#down) return
    this.#down = true
    this.#since = Date.now()
    this.#failures = 1
    if (!this.#enabled) return
    const w = this.#words
    process.emitWarning(`${w.what} unreachable: ${describe(err)} on ${operation}${ringList(rings)}; ` +
      `${w.meanwhile} (one warning now, one when it is back)`, { type: TYPE, code: w.outage })
  }

  /** A Redis call succeeded: ends an outage, with one warning. */
  ok(rings = []) {
    if (!this.#down) return
    this.#down = false
    if (!this.#enabled) return
    const seconds = ((Date.now() - this.#since) / 1000).toFixed(1)
    process.emitWarning(`${this.#words.what} reachable again after ${seconds} s and ${this.#failures} failed calls${ringList(rings)}`,
      { type: TYPE, code: this.#words.recovered })
  }
}

module.exports = { OutageWarnings, redisWords, OUTAGE, RECOVERED }
