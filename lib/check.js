'use strict'

// `tls-ticket-keys check host:port`: the `openssl s_client -reconnect` check, done right for
// TLS 1.3 too. One full handshake, then N reconnections each offering the newest ticket the
// server sent (waiting for TLS 1.3 tickets, which arrive after the handshake).

const tls = require('node:tls')
const { inspectSession } = require('./inspect.js')

// How long to wait for TLS 1.3 tickets after the handshake: the first connection must get
// one; after a resumption OpenSSL servers send none unless they renew, so wait less.
const FIRST_TICKET_WAIT_MS = 1500
const LATER_TICKET_WAIT_MS = 300
// OpenSSL's stateless tickets are name(16) | iv(16) | sealed session | hmac(32); a TLS 1.3
// "ticket" shorter than that is a session id for the server's own cache.
const SHORTEST_STATELESS_TICKET = 16 + 16 + 32

function ticketLength(session) {
  try {
    return inspectSession(session).ticketLength ?? 0
  } catch {
    return 0
  }
}

function connectOnce({ host, port, servername, version, ca, insecure, session }) {
  return new Promise((resolve) => {
    const options = {
      host, port, session, ca,
      servername: servername || (require('node:net').isIP(host) ? undefined : host),
      rejectUnauthorized: !insecure,
      minVersion: version || 'TLSv1.2',
      maxVersion: version || 'TLSv1.3',
    }
    const socket = tls.connect(options)
    const result = { reused: false, protocol: null, cipher: null, ticket: null, hasTicket: false, error: null }
    let timer = null
    const finish = () => {
      clearTimeout(timer)
      if (result.protocol === 'TLSv1.3') {
        result.hasTicket = result.ticket !== null
        result.statefulOnly = result.hasTicket && ticketLength(result.ticket) < SHORTEST_STATELESS_TICKET
      }
      socket.destroy()
      resolve(result)
    }
    socket.on('session', (s) => {
      result.ticket = s
      if (result.protocol) finish()
    })
    socket.once('secureConnect', () => {
      result.reused = socket.isSessionReused()
      result.protocol = socket.getProtocol()
      result.cipher = socket.getCipher().name
      if (result.protocol === 'TLSv1.2') {
        // The session (a renewed one too) is there at once.
        result.ticket = socket.getSession() || result.ticket
        result.hasTicket = Boolean(socket.getTLSTicket())
        return finish()
      }
      if (result.ticket) return finish()
      timer = setTimeout(finish, session ? LATER_TICKET_WAIT_MS : FIRST_TICKET_WAIT_MS)
    })
    socket.on('data', () => {})
    socket.on('error', (err) => {
      result.error = err
      finish()
    })
    socket.setTimeout(10_000, () => {
      result.error = result.error || new Error('timed out')
      finish()
    })
  })
}

// Certificate errors that a test server's self-made certificate gives (Node's error codes).
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED',
])

/** What to do about a connection that failed. */
function connectionHint(err) {
  const what = err.message
  if (UNTRUSTED.has(err.code)) {
    return `the server's certificate is not trusted (${what}): pass the certificate or its CA with --ca FILE (PEM), ` +
      'or check resumption without verifying it with --insecure'
  }
  if (err.code === 'CERT_HAS_EXPIRED' || err.code === 'CERT_NOT_YET_VALID') {
    return `the server's certificate is not valid now (${what}): check resumption without verifying it with --insecure`
  }
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the certificate is not for this name (${what}): give the name it is for with --servername NAME, or use --insecure`
  }
  return `the connection failed: ${what}`
}

// Why a ticket offered to a server was not resumed there.
const REFUSED_OWN = 'ticket refused: the server did not accept its own ticket (keys change per process or per connection, ' +
  'a load balancer spreads connections over servers with other keys, or their session id contexts differ)'
const REFUSED_OTHER = 'ticket refused: this server does not hold the key that sealed the other\'s ticket (no shared ring ' +
  'secret, Redis store or key file, or a key rotated away), the ticket expired, or the two servers\' session id contexts differ'

/** The hint for a connection that got no usable ticket, or null when it got one. */
function ticketHint(first) {
  if (!first.hasTicket) return 'no ticket offered: the server sent no session ticket (tickets off, or no session cache)'
  if (first.statefulOnly) {
    return 'no session tickets: the server sends TLS 1.3 session ids for a session cache of its own instead ' +
      '(tickets off, SSL_OP_NO_TICKET), and that cache did not resume them'
  }
  return null
}

/**
 * Runs the check; returns { lines, connections, resumed, rate, ok, hint }.
 * options: host, port, count, servername, version ('TLSv1.2' | 'TLSv1.3'), ca, insecure.
 */
async function check(options, onLine = () => {}) {
  const results = []
  let session
  for (let i = 0; i <= options.count; i++) {
    const r = await connectOnce({ ...options, session })
    results.push(r)
    if (r.error) {
      const line = `Error, ${r.error.code || r.error.message}`
      onLine(line, r)
      break
    }
    onLine(`${r.reused ? 'Reused' : 'New'}, ${r.protocol}, Cipher is ${r.cipher}`, r)
    session = r.ticket || session
  }
  const reconnections = results.slice(1)
  const resumed = reconnections.filter((r) => r.reused).length
  const failed = results.some((r) => r.error)
  const ok = !failed && reconnections.length === options.count && resumed === options.count
  let hint = null
  if (!ok) {
    const first = results[0]
    if (failed) hint = connectionHint(results.find((r) => r.error).error)
    else if (ticketHint(first)) {
      hint = ticketHint(first)
    } else if (resumed === 0) {
      hint = REFUSED_OWN
    } else {
      hint = 'some tickets refused: keys rotated without keeping the old ones, servers behind a balancer hold ' +
        'different keys, or the ticket lifetime is shorter than the time between connections'
    }
  }
  return { connections: results.length, reconnections: reconnections.length, resumed, rate: reconnections.length ? resumed / reconnections.length : 0, ok, hint, results }
}

/**
 * `check A B [C...]`: for each TLS version, a session from each server (a full handshake),
 * offered to every server (the server itself too), a fresh session for each offer. Returns
 * { ok, versions: { [version]: { cells: [[cell]] } }, pairs, resumed } where cells[i][j] says
 * whether the session of servers[i] resumed on servers[j]: { reused, error, hint, protocol }.
 * options: servers [{ host, port, label }], servername, versions, ca, insecure.
 */
async function checkFleet(options) {
  const { servers, versions = ['TLSv1.2', 'TLSv1.3'] } = options
  const report = { ok: true, pairs: 0, resumed: 0, versions: {} }
  for (const version of versions) {
    const cells = []
    for (const from of servers) {
      const row = []
      for (const to of servers) {
        const common = { servername: options.servername, version, ca: options.ca, insecure: options.insecure }
        const first = await connectOnce({ ...common, host: from.host, port: from.port })
        let cell
        if (first.error) {
          cell = { reused: false, protocol: null, error: first.error.code || first.error.message, hint: `${from.label}: ${connectionHint(first.error)}` }
        } else if (ticketHint(first)) {
          cell = { reused: false, protocol: first.protocol, error: null, hint: `${from.label}: ${ticketHint(first)}` }
        } else {
          const offer = await connectOnce({ ...common, host: to.host, port: to.port, session: first.ticket })
          if (offer.error) {
            cell = { reused: false, protocol: null, error: offer.error.code || offer.error.message, hint: `${to.label}: ${connectionHint(offer.error)}` }
          } else {
            cell = { reused: offer.reused, protocol: offer.protocol, error: null, hint: offer.reused ? null : from === to ? REFUSED_OWN : REFUSED_OTHER }
          }
        }
        report.pairs++
        if (cell.reused) report.resumed++
        else report.ok = false
        row.push(cell)
      }
      cells.push(row)
    }
    report.versions[version] = { cells }
  }
  return report
}

module.exports = { check, checkFleet, connectionHint }
