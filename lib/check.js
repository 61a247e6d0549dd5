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
    if (failed) hint = `the connection failed: ${results.find((r) => r.error).error.message}`
    else if (!first.hasTicket) {
      hint = 'no ticket offered: the server sent no session ticket (tickets off, or no session cache)'
    } else if (first.statefulOnly) {
      hint = 'no session tickets: the server sends TLS 1.3 session ids for a session cache of its own instead ' +
        '(tickets off, SSL_OP_NO_TICKET), and that cache did not resume them'
    } else if (resumed === 0) {
      hint = 'ticket refused: the server did not accept its own ticket (keys change per process or per connection, ' +
        'a load balancer spreads connections over servers with other keys, or their session id contexts differ)'
    } else {
      hint = 'some tickets refused: keys rotated without keeping the old ones, servers behind a balancer hold ' +
        'different keys, or the ticket lifetime is shorter than the time between connections'
    }
  }
  return { connections: results.length, reconnections: reconnections.length, resumed, rate: reconnections.length ? resumed / reconnections.length : 0, ok, hint, results }
}

module.exports = { check }
