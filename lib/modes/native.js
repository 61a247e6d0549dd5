'use strict'

// Native mode: the ring's ticket callback, in Rust, on the context's SSL_CTX. No JavaScript
// runs per handshake and no key byte enters the JavaScript heap.

const crypto = require('node:crypto')
const binding = require('../../binding.js')
const { callNative } = require('../errors.js')
const { externalOf, nativePathUnavailable } = require('../secure-context.js')

// The probe is a random session timeout that no context has by chance; Node aborts on one
// that is not a positive int32.
const PROBE_MIN = 1_000_000_000
const PROBE_SPREAD = 1_000_000_000

// Runs fn(external, probe) while the context's session timeout is a random value: the Rust
// side reads it back through the SSL_CTX pointer it got from `_external`, and refuses a
// pointer that does not show it.
function withProvenContext(context, timeoutAfter, fn) {
  const probe = PROBE_MIN + crypto.randomInt(PROBE_SPREAD)
  context.setSessionTimeout(probe)
  try {
    return callNative(() => fn(externalOf(context), probe))
  } finally {
    context.setSessionTimeout(timeoutAfter)
  }
}

module.exports = {
  name: 'native',

  /**
   * null when native mode can serve `ring` on `server`, else why not: it serves any ring, in a
   * process whose OpenSSL and V8 symbols it finds (asked once per process).
   */
  unavailable(server, ring) {
    return nativePathUnavailable()
  },

  /** Counters of the tickets offered to one server, kept by the Rust callback. */
  newOutcomes() {
    return new binding.NativeTicketOutcomes()
  },

  counts(outcomes) {
    return outcomes.counts()
  },

  /**
   * Serves `context`'s tickets from the ring; its session timeout ends at `lifetime`. With
   * `sessionIdContext` (bytes), the Rust callbacks give it to every connection and ticket.
   * `clientAuth`: whether the server asks for client certificates now; if it starts to later,
   * without a new context, the callback lets nothing resume.
   */
  hook(context, { native, outcomes }, lifetime, sessionIdContext = null, clientAuth = false) {
    withProvenContext(context, lifetime,
      (external, probe) => binding.nativeAttach(external, probe, native, outcomes, sessionIdContext ?? undefined, clientAuth))
  },

  /** Gives the context back Node's ticket callback and `timeout`. */
  unhook(context, { timeout }) {
    withProvenContext(context, timeout, (external, probe) => binding.nativeDetach(external, probe))
  },
}
