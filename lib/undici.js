'use strict'

// SessionCache under undici: a connect function for `new undici.Agent({ connect })`, and an
// Agent built on it for `fetch(url, { dispatcher })` and `setGlobalDispatcher()`.
//
// Node's built-in fetch is undici, bundled (process.versions.undici), but it takes any
// dispatcher object; the Agent comes from the user's own copy of undici, an optional peer
// dependency. Which copies fit which built-in fetch was measured (README, "Which undici fits
// which Node"): the two sides must share a handler interface. undici 6 and the fetch of undici 6
// and 7 (Node 20, 22, 24) speak the old one (onConnect, onHeaders...); undici 8 and the fetch
// of undici 8 (Node 26) only the new one (onRequestStart...); undici 7 speaks both.

const net = require('node:net')
const { invalidArgType, invalidArgValue, makeError, validateObject } = require('./errors.js')

// undici's own connector defaults (lib/core/connect.js).
const CONNECT_TIMEOUT_MS = 10_000
const KEEP_ALIVE_INITIAL_DELAY_MS = 60_000
const TLS_HIGH_WATER_MARK = 16_384

// The first undici major whose dispatchers take only the new handler interface.
const NEW_HANDLERS_ONLY = 8
// The first undici major whose dispatchers take the new handler interface at all.
const NEW_HANDLERS = 7

function withCause(err, cause) {
  Object.defineProperty(err, 'cause', { value: cause, enumerable: false, writable: true, configurable: true })
  return err
}

/** The major version of an undici module: from its package.json when we know where it is, else from what it exports. */
function undiciMajor(undici, packageJson) {
  if (packageJson) return Number(String(packageJson.version).split('.')[0])
  // Markers checked on 6.0.0, 6.29.1, 7.0.0, 7.30.2, 8.0.0 and 8.13.1.
  if (typeof undici.Dispatcher1Wrapper === 'function') return 8
  if (undici.cacheStores !== undefined) return 7
  return 6
}

/** The user's undici: the one passed in, or require('undici') as seen from this package (where npm puts peers). */
function loadUndici(passed) {
  if (passed !== undefined) {
    if (passed === null || (typeof passed !== 'object' && typeof passed !== 'function') || typeof passed.Agent !== 'function') {
      throw invalidArgType('options.undici', 'the undici module (with an Agent class)', passed)
    }
    return { undici: passed, major: undiciMajor(passed, null) }
  }
  // Its package.json gives the exact version (undici has no exports map that hides it).
  let packageJson = null
  try {
    packageJson = require('undici/package.json')
  } catch {
    // Not installed, or a layout we do not know: what its exports say, below.
  }
  let undici
  try {
    undici = require('undici')
  } catch (err) {
    const major = packageJson ? undiciMajor(null, packageJson) : NaN
    if (major >= NEW_HANDLERS_ONLY && Number(process.versions.node.split('.')[0]) < 22) {
      // undici 8 does not load on Node 20 (it needs zlib's zstd).
      throw withCause(makeError('ERR_TLS_TICKET_UNDICI_VERSION',
        `undici ${major} needs Node 22 or later; on Node ${process.versions.node} use undici 7`, loadUndici), err)
    }
    if (err && err.code === 'MODULE_NOT_FOUND' && !packageJson) {
      throw withCause(makeError('ERR_TLS_TICKET_UNDICI_UNAVAILABLE',
        'undici is not installed: `npm install undici` (an optional peer dependency of tls-ticket-keys), or pass the module as { undici }',
        loadUndici), err)
    }
    throw withCause(makeError('ERR_TLS_TICKET_UNDICI_UNAVAILABLE', 'undici did not load', loadUndici), err)
  }
  const major = undiciMajor(undici, packageJson)
  return { undici, major }
}

/**
 * Refuses an undici whose Agent the built-in fetch of this Node cannot drive. fetch would
 * otherwise fail every request with "invalid onRequestStart method" (undici 8 under the fetch
 * of Node 20-24) or "invalid onError method" (undici 6 under Node 26's), and on Node 26
 * setGlobalDispatcher() of undici 6 is silently ignored.
 */
function checkBuiltinFetch(major) {
  const builtin = Number(String(process.versions.undici).split('.')[0])
  if (!Number.isInteger(builtin) || !Number.isInteger(major)) return
  const fits = builtin >= NEW_HANDLERS_ONLY ? major >= NEW_HANDLERS : major < NEW_HANDLERS_ONLY
  if (!fits) {
    const wanted = builtin >= NEW_HANDLERS_ONLY ? `${NEW_HANDLERS} or later` : `${NEW_HANDLERS - 1} or ${NEW_HANDLERS}`
    throw makeError('ERR_TLS_TICKET_UNDICI_VERSION',
      `the built-in fetch of Node ${process.versions.node} (undici ${process.versions.undici}) cannot use a dispatcher of undici ${major}; ` +
      `install undici ${wanted} (undici 7 fits Node 20 to 26)`, checkBuiltinFetch)
  }
}

// What undici's util.getServerName does: the host header minus its port; nothing for an IP.
function serverNameOf(host) {
  if (!host) return undefined
  let name = host
  if (name[0] === '[') {
    name = name.slice(1, name.indexOf(']'))
  } else if (name.indexOf(':') !== -1 && name.indexOf(':') === name.lastIndexOf(':')) {
    name = name.slice(0, name.indexOf(':'))
  }
  return net.isIP(name) ? undefined : name
}

/**
 * A connect function for `new undici.Agent({ connect })`: TLS through the cache, plain TCP
 * through undici's own connector. `options` are undici's connect options (tls.connect
 * options plus timeout, keepAlive, keepAliveInitialDelay, socketPath, allowH2).
 */
function undiciConnect(cache, options = {}) {
  validateObject(options, 'options')
  const { undici: passed, allowH2, timeout, socketPath, maxCachedSessions, ...tlsOptions } = options
  const { undici, major } = loadUndici(passed)
  if (allowH2 !== undefined && typeof allowH2 !== 'boolean') throw invalidArgType('options.allowH2', 'of type boolean', allowH2)
  if (timeout !== undefined && timeout !== null && (typeof timeout !== 'number' || !(timeout >= 0))) {
    throw invalidArgType('options.timeout', 'a number of milliseconds >= 0', timeout)
  }
  // The cache replaces undici's own session cache, so its size means nothing here.
  void maxCachedSessions
  // undici 8 offers h2 unless told not to; earlier majors only when asked.
  const h2 = allowH2 ?? major >= NEW_HANDLERS_ONLY
  const connectTimeout = timeout ?? CONNECT_TIMEOUT_MS
  const plain = undici.buildConnector({ ...tlsOptions, socketPath, timeout: connectTimeout, allowH2: h2 })
  const ConnectTimeoutError = undici.errors && undici.errors.ConnectTimeoutError

  return function connect(target, callback) {
    const { hostname, host, protocol, port, servername, localAddress, httpSocket } = target
    if (protocol !== 'https:') return plain(target, callback)
    const socket = cache.connect({
      highWaterMark: TLS_HIGH_WATER_MARK,
      ...(socketPath ? { path: socketPath } : null),
      ...tlsOptions,
      servername: servername || tlsOptions.servername || serverNameOf(host),
      localAddress,
      ALPNProtocols: h2 ? ['http/1.1', 'h2'] : ['http/1.1'],
      socket: httpSocket,
      port: Number(port) || 443,
      host: hostname,
    })
    let timer = null
    const settle = (err, value) => {
      if (timer) clearTimeout(timer)
      timer = null
      if (!callback) return
      const cb = callback
      callback = null
      cb(err, value)
    }
    if (connectTimeout > 0) {
      timer = setTimeout(() => {
        const message = `Connect Timeout Error (attempted address: ${hostname}:${port || 443}, timeout: ${connectTimeout}ms)`
        socket.destroy(ConnectTimeoutError ? new ConnectTimeoutError(message) : makeError('UND_ERR_CONNECT_TIMEOUT', message))
      }, connectTimeout)
      timer.unref()
    }
    if (tlsOptions.keepAlive !== false) {
      socket.setKeepAlive(true, tlsOptions.keepAliveInitialDelay ?? KEEP_ALIVE_INITIAL_DELAY_MS)
    }
    socket.setNoDelay(true)
    socket.once('secureConnect', () => settle(null, socket))
    socket.on('error', (err) => settle(err))
    socket.once('close', () => {
      if (timer) clearTimeout(timer)
    })
    return socket
  }
}

/**
 * An undici Agent whose connections go through the cache, for the built-in fetch:
 * `options` are undici Agent options; `options.connect` (an object) holds the TLS options.
 */
function dispatcher(cache, options = {}) {
  validateObject(options, 'options')
  const { undici: passed, connect = {}, ...agentOptions } = options
  if (typeof connect === 'function') {
    throw invalidArgValue('options.connect', 'must be an object of connect options: the cache supplies the connect function (see undiciConnect())')
  }
  validateObject(connect, 'options.connect')
  const { undici, major } = loadUndici(passed)
  checkBuiltinFetch(major)
  const connectOptions = { ...connect, undici }
  if (agentOptions.allowH2 !== undefined) connectOptions.allowH2 = agentOptions.allowH2
  if (agentOptions.connectTimeout !== undefined && connect.timeout === undefined) connectOptions.timeout = agentOptions.connectTimeout
  return new undici.Agent({ ...agentOptions, connect: undiciConnect(cache, connectOptions) })
}

module.exports = { undiciConnect, dispatcher, undiciMajor, checkBuiltinFetch, serverNameOf }
