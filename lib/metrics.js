'use strict'

// A ring's metrics in the Prometheus text exposition format: its counters, its keys by state,
// and why handshakes on each attached server resumed or not.

const OUTCOMES = ['resumed', 'noTicket', 'unknownKey', 'expiredKey', 'notResumed']
const KEY_STATES = ['next', 'current', 'previous']

const snake = (s) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/** `native`: the Rust ring; `attachments`: [{ server, stats() }] serving it. */
function metricsText(native, attachments) {
  const stats = native.stats()
  const keys = native.keys()
  const lines = []
  const metric = (name, type, help, samples) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`)
  }
  const counter = (name, help, value) => metric(`tls_ticket_keys_${name}_total`, 'counter', help, [['', value]])
  counter('tickets_issued', 'Session tickets sealed with the ring.', stats.issued)
  counter('tickets_resumed', 'Tickets opened with the current or the next key.', stats.resumed)
  counter('tickets_renewed', 'Tickets opened with a previous key and renewed under the current one.', stats.renewed)
  counter('tickets_unknown_key', 'Tickets under a key the ring never held.', stats.unknownKey)
  counter('tickets_expired_key', 'Tickets under a key the ring held and wiped.', stats.expired)
  counter('fallback_keys', 'Keys a fed ring made itself because its feed was late.', stats.fallbackKeys)
  metric('tls_ticket_keys_keys', 'gauge', 'Keys held, by state.',
    KEY_STATES.map((state) => [`{state="${state}"}`, keys.filter((k) => k.state === state).length]))
  const servers = attachments.map((a, i) => {
    const address = a.server.address()
    const label = address && typeof address === 'object' ? `${address.address}:${address.port}` : String(i)
    return [label.replace(/["\\\n]/g, '_'), a.stats()]
  })
  metric('tls_ticket_keys_handshakes_total', 'counter',
    'TLS handshakes on attached servers, by outcome: resumed, or why not.',
    servers.flatMap(([label, s]) => OUTCOMES.map((r) => [`{server="${label}",outcome="${snake(r)}"}`, s[r]])))
  return `${lines.join('\n')}\n`
}

module.exports = { metricsText }
