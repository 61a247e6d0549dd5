'use strict'

// Debugging aids: what a session says about itself, and which of a ring's keys sealed a
// ticket (`socket.getTLSTicket()` on the client supplies one) and what it holds.

const binding = require('../binding.js')
const { TicketKeyRing, isTicketKeyRing } = require('./ring.js')
const { kInspectTicket } = require('./internal.js')
const { callNative, invalidArgType, invalidState, validateKeyBytes } = require('./errors.js')
const { cipherSuiteName } = require('./cipher-suites.js')

function sessionInfo(info) {
  return {
    ...info,
    cipherName: cipherSuiteName(info.cipherSuite),
    createdAt: new Date(info.createdAt * 1000),
    expiresAt: new Date(info.expiresAt * 1000),
    serverName: info.serverName ?? null,
    alpn: info.alpn ?? null,
    ticketKeyName: info.ticketKeyName ?? null,
    ticketIv: info.ticketIv ?? null,
    ticketLength: info.ticketLength ?? null,
  }
}

/** What a session (from a 'session' event or getSession()) says about itself; no secret. */
function inspectSession(session) {
  const der = validateKeyBytes(session, 'session')
  return sessionInfo(callNative(() => binding.inspectSession(der)))
}

/**
 * Which key of `ring` sealed `ticket`, that key's state ('current', 'next', 'previous' or
 * 'unknown'), and once opened, the session inside. Garbage gives keyState 'unknown'.
 */
function inspectTicket(ticket, ring) {
  const bytes = validateKeyBytes(ticket, 'ticket')
  if (!(ring instanceof TicketKeyRing)) throw invalidArgType('ring', 'an instance of TicketKeyRing', ring)
  if (!isTicketKeyRing(ring)) throw invalidState('not a TicketKeyRing')
  const { report, secretFile } = ring[kInspectTicket](bytes)
  const out = {
    keyName: report.keyName ?? null,
    keyState: report.keyState,
    session: report.session ? sessionInfo(report.session) : null,
    error: report.error ?? null,
  }
  // A secretFile ring: the fingerprint of the secret whose key sealed it (a listed secret
  // other than the one sealing opens it as a previous key would).
  if (secretFile) out.secret = report.secret ?? null
  return out
}

module.exports = { inspectSession, inspectTicket }
