'use strict'

// A ring's name: the `ring` label of its metrics and the `ring` field of its diagnostics
// messages. Names are restricted to characters that need no escaping anywhere (Prometheus
// label values, log lines, URLs), and are never quoted in errors, since a value passed here
// by mistake could be key material.

const { invalidArgType, invalidArgValue } = require('./errors.js')

const MAX_NAME_LENGTH = 64
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/
// Shared by every copy of the package in the process (a registered symbol), so that two
// copies never hand out the same default name.
const kCounter = Symbol.for('tls-ticket-keys.unnamed-rings')

function validateRingName(name, argument) {
  if (typeof name !== 'string') throw invalidArgType(argument, 'of type string', name)
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !NAME_PATTERN.test(name)) {
    throw invalidArgValue(argument, `must be 1 to ${MAX_NAME_LENGTH} characters of A-Z, a-z, 0-9 and _ . : / -, ` +
      `starting with a letter or a digit. Received a string of ${name.length} characters`)
  }
  return name
}

/**
 * The name of a ring made without one: `ring-1`, `ring-2`, ... in the order rings are made in
 * this process. A counter and not a digest of the ring's keys or secret: it says nothing about
 * them, and two rings of one process never share it (rings holding the same secret would).
 */
function defaultRingName() {
  const n = (globalThis[kCounter] ?? 0) + 1
  Object.defineProperty(globalThis, kCounter, { value: n, writable: true, configurable: true, enumerable: false })
  return `ring-${n}`
}

module.exports = { validateRingName, defaultRingName }
