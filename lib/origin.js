'use strict'

// What identifies an origin for the client cache: the one place that decides which earlier
// session a connection may be offered.
//
// A session carries the outcome of a full handshake: the server was verified under some trust
// settings, and the client presented some identity. Offering it to a connection made another
// way skips what that connection would have checked (a stricter CA) or lends it what it does
// not have (another tenant's client certificate). So the key covers every tls.connect()
// option that changes
//   - where the connection goes: host, port, a Unix socket path, a socket handed in (a proxy
//     tunnel: the peer it is connected to), a custom DNS lookup;
//   - whom the client trusts and how it checks: secureContext, ca, crl, rejectUnauthorized,
//     checkServerIdentity, servername, minDHSize;
//   - who the client is: secureContext, cert, key, pfx, passphrase, engines, pskCallback;
//   - what the session may be used for: versions, ciphers, signature algorithms, curves, ALPN.
// Values are compared by content (HMAC-SHA256 under a key of this process, so that a key string
// kept in the cache says nothing about a passphrase or a private key), objects and functions by
// identity. An option this module does not know is compared the same way, so it can only
// keep sessions apart. A value it cannot judge (nested too deep, a symbol) makes the connection
// uncacheable: it is neither offered a session nor leaves one behind.

const crypto = require('node:crypto')
const net = require('node:net')

const DEFAULT_HOST = 'localhost'
const DEFAULT_PORT = 443

// Options that decide who, whom and what for, compared by value (functions and class
// instances inside them by identity).
const BY_VALUE = [
  'ca', 'cert', 'key', 'pfx', 'passphrase', 'crl', 'ciphers', 'sigalgs', 'ecdhCurve', 'minVersion', 'maxVersion',
  'secureProtocol', 'secureOptions', 'privateKeyIdentifier', 'privateKeyEngine', 'clientCertEngine', 'minDHSize',
  'honorCipherOrder', 'dhparam', 'sessionIdContext',
]
// Options compared by identity: two secure contexts built from different certificates are two
// identities, whatever else the options say.
const BY_IDENTITY = ['secureContext', 'checkServerIdentity', 'lookup', 'pskCallback']
// Read into the destination, the servername and the ALPN list below.
const DESTINATION = ['host', 'port', 'path', 'socket', 'servername', 'ALPNProtocols', 'rejectUnauthorized']
// Options that change none of the above: socket tuning, timeouts, tracing, and what
// https.request() (with a URL: urlToHttpOptions) and the packages over it (follow-redirects,
// axios) pass along to an Agent's createConnection(). `session` is the caller's own.
const IRRELEVANT = [
  'session', 'timeout', 'signal', 'highWaterMark', 'noDelay', 'keepAlive', 'keepAliveInitialDelay', 'allowHalfOpen',
  'onread', 'enableTrace', 'requestOCSP', 'localAddress', 'localPort', 'family', 'hints', 'autoSelectFamily',
  'autoSelectFamilyAttemptTimeout', 'encoding', 'readable', 'writable', 'isServer', 'requestCert', 'pauseOnConnect',
  // https.request() options
  'agent', '_defaultAgent', '_agentKey', 'hostname', 'protocol', 'defaultPort', 'method', 'headers', 'auth', 'setHost',
  'setDefaultHeaders', 'createConnection', 'insecureHTTPParser', 'joinDuplicateHeaders', 'maxHeaderSize',
  'uniqueHeaders', 'socketPath', 'keepAliveMsecs', 'maxSockets', 'maxFreeSockets', 'maxTotalSockets', 'scheduling',
  'maxCachedSessions', 'proxyEnv', 'lazy', 'maxHeadersCount',
  // a URL's parts
  'href', 'origin', 'pathname', 'search', 'searchParams', 'hash', 'query', 'slashes', 'username', 'password',
  // follow-redirects and axios
  'maxRedirects', 'maxBodyLength', 'beforeRedirect', 'beforeRedirects', 'trackRedirects', 'nativeProtocols',
  // server options, meaningless on a client
  'ALPNCallback', 'SNICallback', 'ticketKeys', 'sessionTimeout', 'pskIdentityHint',
]
const IRRELEVANT_NAMES = new Set(IRRELEVANT)
const JUDGED = new Set([...BY_VALUE, ...BY_IDENTITY, ...DESTINATION])

// Keys the digests of this process: a heap dump or an inspected cache shows no digest that a
// dictionary of passphrases could be matched against.
const DIGEST_KEY = crypto.randomBytes(32)
const identities = new WeakMap()
let lastIdentity = 0

function identityOf(object) {
  let id = identities.get(object)
  if (id === undefined) {
    id = ++lastIdentity
    identities.set(object, id)
  }
  return `#${id}`
}

/** A canonical form of an option's value, or null when it cannot be judged. */
function canonical(value, depth = 0) {
  if (value === undefined || value === null) return ''
  if (depth > 8) return null
  switch (typeof value) {
    case 'string': return `s${value.length}:${value}`
    case 'number': case 'boolean': case 'bigint': return `${(typeof value)[0]}${String(value)}`
    case 'function': return `f${identityOf(value)}`
    case 'object': break
    default: return null
  }
  if (ArrayBuffer.isView(value)) return `b${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}`
  if (value instanceof ArrayBuffer) return `b${Buffer.from(value).toString('base64')}`
  if (Array.isArray(value)) {
    const parts = value.map((v) => canonical(v, depth + 1))
    return parts.includes(null) ? null : `[${parts.join(',')}]`
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return `o${identityOf(value)}`
  const parts = Object.keys(value).sort().map((k) => {
    const v = canonical(value[k], depth + 1)
    return v === null ? null : `${k}=${v}`
  })
  return parts.includes(null) ? null : `{${parts.join(',')}}`
}

function digest(text) {
  return crypto.createHmac('sha256', DIGEST_KEY).update(text).digest('base64url')
}

function alpnList(protocols) {
  if (!protocols) return ''
  if (Array.isArray(protocols)) return protocols.map(String).join(',')
  if (ArrayBuffer.isView(protocols)) {
    // The wire format: length-prefixed names.
    const bytes = Buffer.from(protocols.buffer, protocols.byteOffset, protocols.byteLength)
    const names = []
    for (let i = 0; i < bytes.length; i += 1 + bytes[i]) names.push(bytes.subarray(i + 1, i + 1 + bytes[i]).toString())
    return names.join(',')
  }
  return null
}

// A socket handed in is a tunnel (a proxy) or a connection made elsewhere: the peer it is
// connected to is part of where the connection goes.
function tunnelOf(socket) {
  if (socket === undefined || socket === null) return ''
  if (socket instanceof net.Socket) {
    if (socket.remoteAddress) return `via ${socket.remoteAddress}:${socket.remotePort}`
    // A Unix socket: its path is the peer.
    if (typeof socket._pipeName === 'string' || typeof socket.remotePath === 'string') {
      return `via ${socket.remotePath ?? socket._pipeName}`
    }
  }
  return null
}

/** The options compared by identity, as `name=#id` lines, or null for a value that is no object. */
function identitiesOf(options) {
  const lines = []
  for (const name of BY_IDENTITY) {
    const value = options[name]
    if (value === undefined || value === null) continue
    if (typeof value !== 'object' && typeof value !== 'function') return null
    lines.push(`${name}=${identityOf(value)}`)
  }
  return lines.join('\n')
}

/**
 * The origin a connection made with these tls.connect() options belongs to: a string whose
 * first part is `host:port` (or the Unix socket path), or null when the options hold
 * something the cache cannot judge, and the connection must not be cached.
 */
function originKey(options) {
  const host = options.host || DEFAULT_HOST
  const port = Number(options.port) || DEFAULT_PORT
  const destination = options.path ? `unix:${options.path}` : `${host}:${port}`
  const servername = options.servername !== undefined ? String(options.servername) : (net.isIP(host) ? '' : host)
  const alpn = alpnList(options.ALPNProtocols)
  const tunnel = tunnelOf(options.socket)
  if (alpn === null || tunnel === null) return null
  const verify = options.rejectUnauthorized === false ? 'insecure' : 'verify'
  const judged = []
  for (const name of BY_VALUE) {
    const value = canonical(options[name])
    if (value === null) return null
    judged.push(`${name}=${value}`)
  }
  const identities = identitiesOf(options)
  if (identities === null) return null
  judged.push(identities)
  // An option this module does not know may be a TLS option of a later Node: it only ever
  // separates, compared by value (functions and objects inside it by identity).
  for (const name of Object.keys(options).sort()) {
    if (JUDGED.has(name) || IRRELEVANT_NAMES.has(name) || options[name] === undefined) continue
    const value = canonical(options[name])
    if (value === null) return null
    judged.push(`?${name}=${value}`)
  }
  return `${destination}|${servername}|${alpn}|${verify}|${tunnel}|${digest(judged.join('\n'))}`
}

module.exports = { originKey }
