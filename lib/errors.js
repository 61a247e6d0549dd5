'use strict'

// Node-style errors: the class and the `code` that Node's own validators use, and messages
// that never quote a string or a buffer, since either might hold key material.

const classes = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: TypeError,
  ERR_OUT_OF_RANGE: RangeError,
  ERR_INVALID_STATE: Error,
  ERR_TLS_TICKET_NATIVE_UNAVAILABLE: Error,
  ERR_TLS_TICKET_CALLBACK_UNAVAILABLE: Error,
  ERR_TLS_TICKET_KEY_UNOPENABLE: Error,
  ERR_TLS_TICKET_UNDICI_UNAVAILABLE: Error,
  ERR_TLS_TICKET_UNDICI_VERSION: Error,
  ERR_TLS_TICKET_PROM_CLIENT_UNAVAILABLE: Error,
  ERR_TLS_TICKET_REDIS_UNAVAILABLE: Error,
  ERR_TLS_TICKET_IOREDIS_UNAVAILABLE: Error,
}

function makeError(code, message, caller = makeError) {
  const ErrorClass = classes[code] || Error
  const err = new ErrorClass(message)
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  Error.captureStackTrace(err, caller)
  return err
}

// What Node's messages put after "Received", minus the contents of strings and buffers.
function describeReceived(value) {
  if (value === null) return 'Received null'
  if (value === undefined) return 'Received undefined'
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = value.constructor && value.constructor.name
    return name ? `Received an instance of ${name}` : 'Received an object'
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `Received type ${typeof value} (${String(value)}${typeof value === 'bigint' ? 'n' : ''})`
  }
  return `Received type ${typeof value}`
}

function invalidArgType(name, expected, value) {
  return makeError('ERR_INVALID_ARG_TYPE',
    `The "${name}" argument must be ${expected}. ${describeReceived(value)}`, invalidArgType)
}

function invalidArgValue(name, reason) {
  return makeError('ERR_INVALID_ARG_VALUE', `The argument '${name}' ${reason}`, invalidArgValue)
}

function outOfRange(name, range, value) {
  return makeError('ERR_OUT_OF_RANGE',
    `The value of "${name}" is out of range. It must be ${range}. ${describeReceived(value).replace(/^Received type number \((.*)\)$/, 'Received $1')}`,
    outOfRange)
}

function invalidState(message) {
  return makeError('ERR_INVALID_STATE', `Invalid state: ${message}`, invalidState)
}

// Refusals the Rust core reports by reason (src/napi/mod.rs), worded here with the name of the
// JavaScript option: the Node code, and the message around the core's neutral one.
const nativeReasons = {
  TICKET_LIFETIME_TOO_LONG: {
    code: 'ERR_OUT_OF_RANGE',
    message: (detail) => `The value of "options.ticketLifetime" is out of range: ${detail}; choose a longer options.rotationInterval`,
  },
}

// Errors from the Rust layer carry a Node code in `code`, or a reason above: give them the
// class, code and message Node would.
function fromNative(err) {
  if (err && typeof err.code === 'string' && Object.hasOwn(nativeReasons, err.code)) {
    const reason = nativeReasons[err.code]
    return makeError(reason.code, reason.message(err.message), fromNative)
  }
  if (err && typeof err.code === 'string' && Object.hasOwn(classes, err.code)) {
    return makeError(err.code, err.message, fromNative)
  }
  return err
}

function callNative(fn) {
  try {
    return fn()
  } catch (err) {
    throw fromNative(err)
  }
}

// Argument checks, named after Node's internal validators.

function validateObject(value, name) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value)
  }
}

function validateInteger(value, name, min, max) {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw outOfRange(name, `an integer >= ${min} && <= ${max}`, value)
  }
  return value
}

/** Refuses a secret of zeros only (a Buffer.alloc() never filled): anyone derives its keys. */
function refuseAllZero(bytes, name) {
  if (!bytes.some((byte) => byte !== 0)) throw invalidArgValue(name, 'must not be all zeros')
  return bytes
}

function validateKeyBytes(value, name) {
  if (!ArrayBuffer.isView(value)) {
    throw invalidArgType(name, 'an instance of Buffer, TypedArray, or DataView', value)
  }
  try {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  } catch {
    // Its ArrayBuffer was transferred away.
    throw invalidArgValue(name, 'is a view of a detached ArrayBuffer')
  }
}

function validateOneOf(value, name, allowed) {
  if (!allowed.includes(value)) {
    const shown = typeof value === 'string' && value.length <= 24 && /^[\w.-]*$/.test(value)
      ? `Received '${value}'` : describeReceived(value)
    throw makeError('ERR_INVALID_ARG_VALUE',
      `The argument '${name}' must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}. ${shown}`, validateOneOf)
  }
  return value
}

// A misspelt option (`secrte`) would otherwise be ignored, and a ring would quietly use
// random keys that no other process shares. The name is shown only when it looks like one.
function validateOptionNames(options, name, known) {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const shown = /^[\w$-]{1,32}$/.test(key) ? `'${key}'` : 'a name'
      throw makeError('ERR_INVALID_ARG_VALUE',
        `The argument '${name}' has an unknown option ${shown}. Known options: ${known.join(', ')}`, validateOptionNames)
    }
  }
}

module.exports = {
  refuseAllZero,
  validateOptionNames,
  makeError,
  invalidArgType,
  invalidArgValue,
  outOfRange,
  invalidState,
  fromNative,
  callNative,
  validateObject,
  validateInteger,
  validateKeyBytes,
  validateOneOf,
}
