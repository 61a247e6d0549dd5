'use strict'

// A ring's metrics: its counters, its keys by state, and why handshakes on each attached server
// resumed or not. One list of families serves both ring.metrics() (Prometheus text, no
// dependency) and registerMetrics() (prom-client, in Prometheus or OpenMetrics text).

const { attachmentsOf } = require('./internal.js')

const OUTCOMES = ['resumed', 'noTicket', 'unknownKey', 'expiredKey', 'notResumed']
const KEY_STATES = ['next', 'current', 'previous']
// The `server` label of a server that has not listened yet.
const UNBOUND = 'unbound'

const snake = (s) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

const ringCounter = (name, stat, help) => ({
  name: `tls_ticket_keys_${name}_total`, type: 'counter', help, labelNames: ['ring'],
  samples: (s) => [[{ ring: s.ring }, s.stats[stat]]],
})

const SECRET_STATES = ['pending', 'sealing', 'retired']

const secretFileCounter = (name, stat, help) => ({
  name: `tls_ticket_keys_${name}_total`, type: 'counter', help, labelNames: ['ring'],
  samples: (s) => (s.secretFile ? [[{ ring: s.ring }, s.secretFile.stats[stat]]] : []),
})

/**
 * Every family, by its name in the Prometheus text format: counter names end in `_total`
 * (prom-client drops the suffix from an OpenMetrics family name and keeps it on the samples).
 * `samples(snapshot)` gives [labels, value] pairs for one ring.
 */
const FAMILIES = [
  ringCounter('tickets_issued', 'issued', 'Session tickets sealed with the ring.'),
  ringCounter('tickets_resumed', 'resumed', 'Tickets opened with the current or the next key.'),
  ringCounter('tickets_renewed', 'renewed', 'Tickets opened with a previous key and renewed under the current one.'),
  ringCounter('tickets_unknown_key', 'unknownKey', 'Tickets under a key the ring never held.'),
  ringCounter('tickets_expired_key', 'expired', 'Tickets under a key the ring held and wiped.'),
  ringCounter('fallback_keys', 'fallbackKeys', 'Keys a fed ring made itself because its feed was late, counted when each sealed its first ticket.'),
  {
    name: 'tls_ticket_keys_keys', type: 'gauge', help: 'Keys held, by state.', labelNames: ['ring', 'state'],
    samples: (s) => KEY_STATES.map((state) => [{ ring: s.ring, state }, s.keys.filter((k) => k.state === state).length]),
  },
  {
    name: 'tls_ticket_keys_current_key_activation_timestamp_seconds',
    type: 'gauge',
    help: 'When the current key started to encrypt, in Unix seconds.',
    labelNames: ['ring'],
    samples: (s) => s.keys.filter((k) => k.state === 'current').slice(0, 1).map((k) => [{ ring: s.ring }, k.activatesAt]),
  },
  // A ring of options.secretFile only (no samples for the others).
  {
    name: 'tls_ticket_keys_secrets', type: 'gauge', help: 'Secrets of a secretFile ring, by state: pending (opens, seals later), sealing, retired (opens until dropped).',
    labelNames: ['ring', 'state'],
    samples: (s) => (s.secretFile ? SECRET_STATES.map((state) => [{ ring: s.ring, state }, s.secretFile.secrets.filter((x) => x.state === state).length]) : []),
  },
  {
    name: 'tls_ticket_keys_sealing_secret_info', type: 'gauge', help: 'The fingerprint of the secret a secretFile ring seals with now (value 1): it changes when a newer secret takes over.',
    labelNames: ['ring', 'secret'],
    samples: (s) => (s.secretFile?.secrets ?? []).filter((x) => x.state === 'sealing').map((x) => [{ ring: s.ring, secret: x.fingerprint }, 1]),
  },
  secretFileCounter('secret_file_changes', 'secretFileChanges', 'New versions of a secretFile ring\'s file taken.'),
  secretFileCounter('secret_file_errors', 'secretFileErrors', 'Bad versions of a secretFile ring\'s file (unreadable, empty, truncated, refused), each counted once; the ring kept its last good secrets.'),
  secretFileCounter('secrets_dropped', 'secretsDropped', 'Secrets a secretFile ring dropped and wiped, a ticket lifetime after a newer one took over sealing.'),
  {
    name: 'tls_ticket_keys_handshakes_total',
    type: 'counter',
    help: 'TLS handshakes on attached servers, by outcome: resumed, or why not.',
    labelNames: ['ring', 'server', 'outcome'],
    samples: (s) => s.servers.flatMap(({ server, stats }) => OUTCOMES.map((outcome) =>
      [{ ring: s.ring, server, outcome: snake(outcome) }, stats[outcome]])),
  },
]

// A ring's snapshot(), as every copy of this package in the process can ask for it: copies
// share the metrics of a prom-client registry (prometheus.js). The suffix is the shape of a
// snapshot; a copy with another shape uses another symbol.
const kSnapshot = Symbol.for('tls-ticket-keys.metrics-snapshot.v1')

// The last address each server listened on: a server keeps its label after close().
const lastLabel = new WeakMap()

/**
 * `host:port` for a server listening on IPv4, `[host]:port` on IPv6, the path of a Unix socket
 * or pipe, else the last of these it had, else `unbound` (attached before listen()).
 */
function serverLabel(server) {
  let address = null
  try {
    address = server.address()
  } catch {}
  let label
  if (address !== null && typeof address === 'object' && typeof address.address === 'string') {
    label = address.address.includes(':') ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`
  } else if (typeof address === 'string' && address !== '') {
    label = address
  }
  if (label === undefined) return lastLabel.get(server) ?? UNBOUND
  lastLabel.set(server, label)
  return label
}

/**
 * What a ring's metrics need, read once: its name, counters, keys (none once destroyed) and
 * each attached server's stats under a label unique within the ring (`#2`, `#3` after a
 * label that two servers share, such as two that have not listened yet). Called by the ring,
 * with its Rust ring and the watch of its secret file (or null).
 */
function snapshot(ring, native, file) {
  const keys = native.destroyed ? [] : native.keys()
  const attachments = attachmentsOf(ring)
  const labels = attachments.map((attachment) => serverLabel(attachment.server))
  // A suffix never takes a label that a server has of its own (a Unix socket named `unbound#2`).
  const taken = new Set(labels)
  const given = new Set()
  const servers = attachments.map((attachment, i) => {
    let server = labels[i]
    for (let n = 2; given.has(server); n++) {
      server = `${labels[i]}#${n}`
      if (taken.has(server)) server = labels[i]
    }
    given.add(server)
    return { server, stats: attachment.stats() }
  })
  const secretFile = file === null ? undefined : { stats: file.stats(), secrets: native.destroyed ? [] : file.secrets() }
  return { ring: ring.name, stats: native.stats(), keys, servers, secretFile }
}

const escapeHelp = (text) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (value) => String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** A ring's snapshot() in the Prometheus text exposition format (version 0.0.4). */
function metricsText(s) {
  const lines = []
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`)
    for (const [labels, value] of family.samples(s)) {
      const text = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')
      lines.push(`${family.name}{${text}} ${value}`)
    }
  }
  return `${lines.join('\n')}\n`
}

module.exports = { FAMILIES, kSnapshot, snapshot, metricsText, serverLabel }
