#!/usr/bin/env node
'use strict'

// tls-ticket-keys generate | check | inspect | secret add | demo | edge. Writes no file, except the
// secret file `secret add FILE` is given (atomically, mode 0600) and the nginx key files that
// `edge --nginx-dir` is asked to keep; key material goes to stdout only with generate.

const { parseArgs } = require('node:util')
const fs = require('node:fs')

const USAGE = `Usage:
  tls-ticket-keys --version
  tls-ticket-keys generate [--size 48|80] [--format base64|hex|nginx|haproxy] [--count N]
      (default size: generateTicketKeys()'s, what a default new TicketKeyRing() takes: 80 where native mode works, else 48)
  tls-ticket-keys check host:port [-n 5] [--servername NAME] [--tls1.2|--tls1.3] [--ca FILE|--insecure] [--json]
  tls-ticket-keys check host:port host:port [...] [--servername NAME] [--tls1.2|--tls1.3] [--ca FILE|--insecure] [--json]
      (a session from each server offered to each: exit 0 when every pair resumes, 1 when one does not)
  tls-ticket-keys inspect FILE      (a session saved by openssl s_client -sess_out, PEM or DER)
  tls-ticket-keys secret add FILE|- [--activate-in 10m | --at TIME] [--ticket-lifetime S] [--rotation-interval S] [--force]
      (a fresh 32-byte secret for new TicketKeyRing({ secretFile }), sealing from the given time; prunes lines whose
       secret can no longer open a live ticket; FILE is rewritten atomically with mode 0600, - reads stdin, writes stdout;
       --activate-in under 2m is refused without --force: it must exceed the time the change takes to reach every process)
  tls-ticket-keys demo
  tls-ticket-keys edge ((--secret-file FILE | --secret-env NAME) [--scope S] | --redis-url URL --wrap-secret-env NAME [--redis-prefix P])
      --rotation-interval SECONDS --ticket-lifetime SECONDS [--cipher aes-256-cbc|aes-128-cbc]
      [--haproxy-socket PATH --haproxy-keyfile FILE [--haproxy-truncate]]
      [--nginx-dir DIR --nginx-reload 'nginx -s reload'] [--print-nginx-config]
      (keeps HAProxy and nginx on the ring's keys; secrets in base64 in the named environment variables;
       --nginx-reload is split on spaces into argv, no shell; one log line per rotation and per failure; SIGTERM stops it)`

// A reader that stops early (`| head`) closes the pipe: that ends the output, not in a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

const tty = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code, text) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text)
const green = (t) => paint(32, t)
const red = (t) => paint(31, t)
const dim = (t) => paint(2, t)

function fail(message) {
  process.stderr.write(`tls-ticket-keys: ${message}\n${USAGE}\n`)
  process.exit(2)
}

function generate(argv) {
  const { values } = parseArgs({ args: argv, options: {
    size: { type: 'string' }, format: { type: 'string', default: 'base64' }, count: { type: 'string' },
  } })
  const { HAPROXY_MIN_KEYS } = require('../lib/key-files.js')
  // Without --size: the API's default, the layout of a default new TicketKeyRing().
  const size = values.size === undefined ? undefined : Number(values.size)
  // HAProxy refuses a file of fewer keys (previous, current, next).
  const minimum = values.format === 'haproxy' ? HAPROXY_MIN_KEYS : 1
  const count = values.count === undefined ? minimum : Number(values.count)
  if (size !== undefined && size !== 48 && size !== 80) fail('--size must be 48 or 80')
  if (!Number.isInteger(count) || count < minimum || count > 16) fail(`--count must be ${minimum} to 16${minimum > 1 ? ' for --format haproxy, which HAProxy refuses with fewer keys' : ''}`)
  const { generateTicketKeys } = require('..')
  const keys = []
  for (let i = 0; i < count; i++) keys.push(generateTicketKeys(size))
  // Our layout is name|hmac|aes; nginx 48-byte files and HAProxy lines are name|aes|hmac.
  const { swapSecrets: swap } = require('../lib/key-files.js')
  switch (values.format) {
    case 'base64': keys.forEach((k) => process.stdout.write(`${k.toString('base64')}\n`)); break
    case 'hex': keys.forEach((k) => process.stdout.write(`${k.toString('hex')}\n`)); break
    case 'haproxy': keys.forEach((k) => process.stdout.write(`${swap(k).toString('base64')}\n`)); break
    case 'nginx':
      if (count !== 1) fail('--format nginx writes one key file: use --count 1')
      if (process.stdout.isTTY) fail('--format nginx is binary: redirect it, e.g. > /run/secrets/ticket.key')
      process.stdout.write(keys[0].length === 48 ? swap(keys[0]) : keys[0])
      break
    default: fail('--format must be base64, hex, nginx or haproxy')
  }
}

/** A base64 secret from the environment variable `name`, or a usage error; never echoed. */
function secretFromEnv(name, option) {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(`${option} takes the name of an environment variable`)
  const text = process.env[name]
  // The name is not repeated: a secret pasted where its variable's name belongs would be.
  if (text === undefined || text.trim() === '') fail(`${option}: the environment variable it names is not set (give the variable's name, not the secret)`)
  const bytes = Buffer.from(text.trim(), 'base64')
  if (bytes.length === 0 || bytes.toString('base64').replace(/=+$/, '') !== text.trim().replace(/=+$/, '')) {
    fail(`${option}: the environment variable it names must hold the secret in base64`)
  }
  return bytes
}

function seconds(value, option) {
  const n = Number(value)
  if (value === undefined) fail(`edge needs ${option}`)
  if (!Number.isInteger(n) || n < 1) fail(`${option} must be a whole number of seconds`)
  return n
}

/**
 * edge: a daemon for an nginx or HAProxy host with no Node server. One ring from the fleet's
 * source, exported to HAProxy and/or nginx until SIGTERM or SIGINT.
 */
async function edge(argv) {
  const { values } = parseArgs({ args: argv, options: {
    'secret-file': { type: 'string' }, 'secret-env': { type: 'string' }, scope: { type: 'string' },
    'redis-url': { type: 'string' }, 'wrap-secret-env': { type: 'string' }, 'redis-prefix': { type: 'string' },
    'rotation-interval': { type: 'string' }, 'ticket-lifetime': { type: 'string' }, cipher: { type: 'string', default: 'aes-256-cbc' },
    'haproxy-socket': { type: 'string' }, 'haproxy-keyfile': { type: 'string' }, 'haproxy-truncate': { type: 'boolean' },
    'nginx-dir': { type: 'string' }, 'nginx-reload': { type: 'string' }, 'print-nginx-config': { type: 'boolean' },
  } })
  const sources = ['secret-file', 'secret-env', 'redis-url'].filter((o) => values[o] !== undefined)
  if (sources.length !== 1) fail('edge needs one key source: --secret-file FILE, --secret-env NAME, or --redis-url URL with --wrap-secret-env NAME')
  if (values['redis-url'] !== undefined && values['wrap-secret-env'] === undefined) fail('--redis-url needs --wrap-secret-env NAME')
  if (values['redis-url'] !== undefined && values.scope !== undefined) fail('--scope separates secret-derived keys; with Redis, separate fleets with --redis-prefix')
  const haproxy = values['haproxy-socket'] !== undefined || values['haproxy-keyfile'] !== undefined
  const nginx = values['nginx-dir'] !== undefined || values['nginx-reload'] !== undefined
  if (haproxy && (values['haproxy-socket'] === undefined || values['haproxy-keyfile'] === undefined)) fail('HAProxy needs both --haproxy-socket and --haproxy-keyfile')
  if (nginx && values['nginx-dir'] === undefined) fail('nginx needs --nginx-dir')
  if (nginx && values['nginx-reload'] === undefined && !values['print-nginx-config']) fail('nginx needs --nginx-reload, e.g. \'nginx -s reload\'')
  if (!haproxy && !nginx) fail('edge needs --haproxy-socket and --haproxy-keyfile, or --nginx-dir and --nginx-reload, or both')
  const ringOptions = {
    rotationInterval: seconds(values['rotation-interval'], '--rotation-interval'),
    ticketLifetime: seconds(values['ticket-lifetime'], '--ticket-lifetime'),
    cipher: values.cipher,
    name: 'edge',
  }
  const { TicketKeyRing, RedisKeyStore, exportKeys } = require('..')
  const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`)
  let ring, store
  try {
    if (values['secret-file'] !== undefined) {
      // The watched file of secrets: one edit rotates Node servers and this edge alike.
      ring = new TicketKeyRing({ ...ringOptions, secretFile: values['secret-file'], ...(values.scope === undefined ? {} : { scope: values.scope }) })
    } else if (values['secret-env'] !== undefined) {
      const secret = secretFromEnv(values['secret-env'], '--secret-env')
      ring = new TicketKeyRing({ ...ringOptions, secret, ...(values.scope === undefined ? {} : { scope: values.scope }) })
      secret.fill(0)
    } else {
      const wrapSecret = secretFromEnv(values['wrap-secret-env'], '--wrap-secret-env')
      store = new RedisKeyStore({ url: values['redis-url'], wrapSecret, ...(values['redis-prefix'] === undefined ? {} : { prefix: values['redis-prefix'] }) })
      wrapSecret.fill(0)
      ring = await store.ring(ringOptions)
    }
  } catch (err) {
    process.stderr.write(`tls-ticket-keys: edge: ${err.code ?? err.name}: ${err.message}\n`)
    await store?.close().catch(() => {})
    process.exit(2)
  }
  if (values['print-nginx-config']) {
    process.stdout.write(exportKeys.nginxConfig(ring, values['nginx-dir'] ?? '/run/nginx-tickets'))
    ring.destroy()
    await store?.close()
    return
  }
  // Warnings go to the log as lines of their own (one when a server stops answering, one when it is back).
  process.on('warning', (w) => { if (w.name === 'TlsTicketKeysWarning') log(`warning ${w.code}: ${w.message}`) })
  const exporters = []
  const watch = (exporter, label) => {
    exporter.on('sync', (e) => {
      if (e.rotated) log(`${label}: encrypts with ${e.current}, next ${e.next ?? 'none'} (${e.operation}, ${e.lagMs} ms after the epoch began)`)
    })
    exporter.on('failure', (e) => log(`${label}: ${e.operation} failed: ${e.code ?? 'error'}: ${e.message}; retry in ${(e.retryInMs / 1000).toFixed(1)} s`))
    exporter.on('recovered', (e) => log(`${label}: reachable again after ${e.failures} failed attempt(s)`))
    exporters.push(exporter)
  }
  try {
    if (haproxy) {
      watch(exportKeys(ring, { haproxy: { socket: values['haproxy-socket'], keyFile: values['haproxy-keyfile'], truncate: Boolean(values['haproxy-truncate']) } }), 'haproxy')
    }
    if (nginx) {
      // Split on spaces into argv; no shell runs it (quote nothing; use a script for more).
      const reload = values['nginx-reload'].split(' ').filter((a) => a !== '')
      watch(exportKeys(ring, { nginx: { dir: values['nginx-dir'], reload } }), 'nginx')
    }
  } catch (err) {
    process.stderr.write(`tls-ticket-keys: edge: ${err.code ?? err.name}: ${err.message}\n`)
    for (const e of exporters) await e.close()
    ring.destroy()
    await store?.close().catch(() => {})
    process.exit(2)
  }
  log(`edge: ring ${ring.cipher}, rotation every ${ring.rotationInterval} s, tickets for ${ring.ticketLifetime} s; exporting to ${exporters.map((e) => e.stats().target).join(' and ')}`)
  await new Promise((resolve) => {
    const stop = (signal) => {
      log(`edge: ${signal}, stopping`)
      resolve()
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  for (const e of exporters) await e.close()
  ring.destroy()
  await store?.close().catch(() => {})
  process.exit(0)
}

/** host:port (IPv6 in brackets) -> { host, port, label }, or a usage error. */
function parseTarget(target) {
  const match = typeof target === 'string' && /^(.*):(\d+)$/.exec(target)
  if (!match) fail(`check needs host:port, not '${String(target).slice(0, 100)}'`)
  const host = match[1].replace(/^\[|\]$/g, '')
  const port = Number(match[2])
  if (host === '') fail('check needs a host before the port')
  if (!(port >= 1 && port <= 65535)) fail('the port must be 1 to 65535')
  return { host, port, label: target }
}

function readCa(file) {
  try {
    return fs.readFileSync(file)
  } catch (err) {
    fail(`--ca: cannot read ${file} (${err.code || err.message})`)
  }
}

async function check(argv) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    n: { type: 'string', short: 'n' }, servername: { type: 'string' },
    'tls1.2': { type: 'boolean' }, 'tls1.3': { type: 'boolean' }, ca: { type: 'string' },
    insecure: { type: 'boolean' }, json: { type: 'boolean' },
  } })
  if (positionals.length === 0) fail('check needs host:port')
  // Each server's session goes to each server, a fresh one every time: n² pairs of connections.
  if (positionals.length > 16) fail('check takes at most 16 servers')
  const targets = positionals.map(parseTarget)
  if (values['tls1.2'] && values['tls1.3']) fail('--tls1.2 and --tls1.3 exclude each other')
  const version = values['tls1.2'] ? 'TLSv1.2' : values['tls1.3'] ? 'TLSv1.3' : undefined
  const ca = values.ca !== undefined ? readCa(values.ca) : undefined
  if (targets.length > 1) {
    if (values.n !== undefined) fail('-n is for one server; with several, each session is offered once to each server')
    return checkFleet(targets, { servername: values.servername, versions: version ? [version] : undefined, ca, insecure: Boolean(values.insecure), json: values.json })
  }
  const { host, port } = targets[0]
  const target = positionals[0]
  const count = Number(values.n ?? '5')
  if (!Number.isInteger(count) || count < 1 || count > 100) fail('-n must be 1 to 100')
  const options = {
    host, port, count, servername: values.servername, version, ca, insecure: Boolean(values.insecure),
  }
  const { check: run } = require('../lib/check.js')
  const result = await run(options, (line, r) => {
    if (values.json) return
    const word = line.split(',')[0]
    process.stdout.write(`${word === 'Reused' ? green(word) : word === 'New' && r !== undefined ? word : red(word)}${line.slice(word.length)}\n`)
  })
  if (values.json) {
    process.stdout.write(`${JSON.stringify({
      target, ok: result.ok, reconnections: result.reconnections, resumed: result.resumed, rate: result.rate, hint: result.hint,
      connections: result.results.map((r) => ({ reused: r.reused, protocol: r.protocol, cipher: r.cipher, ticket: r.hasTicket, error: r.error ? String(r.error.message) : null })),
    })}\n`)
  } else {
    const pct = (100 * result.rate).toFixed(0)
    process.stdout.write(`${result.ok ? green('resumed') : red('not resumed')}: ${result.resumed}/${result.reconnections} reconnections (${pct} %)\n`)
    if (result.hint) process.stdout.write(`${dim('hint:')} ${result.hint}\n`)
  }
  process.exitCode = result.ok ? 0 : 1
}

/** check A B [C...]: the matrix of who resumes whose session, per TLS version. */
async function checkFleet(servers, options) {
  const { checkFleet: run } = require('../lib/check.js')
  const report = await run({ ...options, servers })
  if (options.json) {
    process.stdout.write(`${JSON.stringify({
      servers: servers.map((s) => s.label), ok: report.ok, pairs: report.pairs, resumed: report.resumed,
      versions: Object.fromEntries(Object.entries(report.versions).map(([v, { cells }]) => [v, cells.map((row) => row.map((c) => ({
        reused: c.reused, error: c.error, hint: c.hint,
      })))])),
    })}\n`)
  } else {
    const names = servers.map((s, i) => `[${i + 1}]`)
    const width = Math.max(...servers.map((s, i) => `${names[i]} ${s.label}`.length), 'session from \\ offered to'.length)
    // One line per distinct hint, with the offers it explains.
    const hints = new Map()
    for (const [version, { cells }] of Object.entries(report.versions)) {
      process.stdout.write(`${version}\n  ${'session from \\ offered to'.padEnd(width)}  ${names.map((n) => n.padEnd(10)).join(' ')}`.trimEnd() + '\n')
      cells.forEach((row, i) => {
        const line = row.map((c) => (c.reused ? green('Reused'.padEnd(10)) : red((c.error ? 'Error' : 'New').padEnd(10)))).join(' ')
        process.stdout.write(`  ${`${names[i]} ${servers[i].label}`.padEnd(width)}  ${line}`.trimEnd() + '\n')
        row.forEach((c, j) => {
          if (c.reused) return
          if (!hints.has(c.hint)) hints.set(c.hint, [])
          hints.get(c.hint).push(`${version} ${names[i]} -> ${names[j]}`)
        })
      })
    }
    process.stdout.write(`${report.ok ? green('resumed') : red('not resumed')}: ${report.resumed}/${report.pairs} offers resumed\n`)
    for (const [hint, offers] of hints) process.stdout.write(`${dim('hint:')} ${offers.join(', ')}: ${hint}\n`)
  }
  process.exitCode = report.ok ? 0 : 1
}

/** inspect FILE: a session saved by `openssl s_client -sess_out` (PEM), or its DER (`openssl sess_id -outform DER`). */
function inspect(argv) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } })
  if (positionals.length !== 1) fail('inspect needs one FILE')
  let bytes
  try {
    bytes = fs.readFileSync(positionals[0])
  } catch (err) {
    fail(`inspect: cannot read ${positionals[0]} (${err.code || err.message})`)
  }
  const text = bytes.toString('latin1')
  const pem = /-----BEGIN SSL SESSION PARAMETERS-----([\s\S]*?)-----END SSL SESSION PARAMETERS-----/.exec(text)
  const der = pem ? Buffer.from(pem[1].replace(/\s+/g, ''), 'base64') : bytes
  const { inspectSession } = require('..')
  let info
  try {
    info = inspectSession(der)
  } catch (err) {
    process.stderr.write(`tls-ticket-keys: inspect: ${positionals[0]} is not an SSL session in PEM or DER (${err.code || 'unreadable'})\n`)
    process.exitCode = 1
    return
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(info)}\n`)
    return
  }
  const hex = (n) => `0x${n.toString(16).padStart(4, '0').toUpperCase()}`
  const rows = [
    ['protocol', info.protocol],
    ['cipher suite', `${info.cipherName ?? '(unknown)'} (${hex(info.cipherSuite)})`],
    ['created', info.createdAt.toISOString()],
    ['expires', `${info.expiresAt.toISOString()} (timeout ${info.timeout} s)`],
    ['server name', info.serverName ?? '-'],
    ['ALPN', info.alpn ?? '-'],
    ['ticket', info.ticketLength === null ? 'none' : `${info.ticketLength} bytes, key name ${info.ticketKeyName ?? '-'}`],
  ]
  for (const [name, value] of rows) process.stdout.write(`${name.padEnd(13)} ${value}\n`)
}

/** secret add FILE|-: one more secret in a secret file. */
async function secret(argv) {
  const [sub, ...rest] = argv
  if (sub !== 'add') fail(sub ? `unknown secret command '${String(sub).slice(0, 40)}'` : 'secret needs a command: add')
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: {
    'activate-in': { type: 'string' }, at: { type: 'string' }, 'ticket-lifetime': { type: 'string' },
    'rotation-interval': { type: 'string' }, force: { type: 'boolean' },
  } })
  const add = require('../lib/secret-add.js')
  if (positionals.length !== 1) fail('secret add needs one FILE, or - for standard input to standard output')
  if (values['activate-in'] !== undefined && values.at !== undefined) fail('--activate-in and --at exclude each other')
  const now = Math.floor(Date.now() / 1000)
  let activatesAt
  if (values.at !== undefined) {
    const { parseTime } = require('../lib/secret-file.js')
    activatesAt = parseTime(values.at)
    if (activatesAt === null) fail('--at needs an RFC 3339 date-time, such as 2026-12-08T00:00:00Z')
  } else {
    const seconds = add.parseDuration(values['activate-in'] ?? String(add.DEFAULT_ACTIVATE_IN))
    if (seconds === null) fail('--activate-in needs a duration: 600, 90s, 10m, 2h or 1d')
    activatesAt = now + seconds
  }
  // A time the file format can hold: four-digit years.
  if (!(activatesAt <= add.LATEST_ACTIVATION)) fail('the secret would activate after the year 9999')
  if (activatesAt < now && !values.force) fail('--at is in the past: the new secret would seal at once, before any process read it')
  if (activatesAt - now < add.MIN_ACTIVATE_IN && !values.force) {
    fail(`the secret would activate in ${activatesAt - now} s, under ${add.MIN_ACTIVATE_IN / 60} minutes: every process must read ` +
      'the file before any seals with the new secret (Kubernetes takes up to a minute or two); --force to do it anyway')
  }
  const seconds = (name, fallback) => {
    if (values[name] === undefined) return fallback
    const s = add.parseDuration(values[name])
    if (s === null || s < 1 || s > 604800) fail(`--${name} needs a duration of 1 s to 7 days`)
    return s
  }
  const ticketLifetime = seconds('ticket-lifetime', add.DEFAULT_TICKET_LIFETIME)
  // Without --rotation-interval, pruning assumes the longest a ring takes: it never drops a
  // secret that a ring of any interval may still seal with.
  const rotationInterval = seconds('rotation-interval', add.LONGEST_ROTATION_INTERVAL)
  const file = positionals[0]
  let bytes
  try {
    bytes = file === '-' ? fs.readFileSync(0) : fs.readFileSync(file)
  } catch (err) {
    if (err.code !== 'ENOENT') {
      process.stderr.write(`tls-ticket-keys: secret add: cannot read ${file} (${err.code || 'unreadable'})\n`)
      process.exitCode = 1
      return
    }
    bytes = Buffer.alloc(0) // a new file
  }
  let out
  try {
    out = add.addSecret(bytes, { activatesAt, now, rotationInterval, ticketLifetime })
  } catch (err) {
    process.stderr.write(`tls-ticket-keys: secret add: ${file === '-' ? 'standard input' : file} refused: ${err.message}\n`)
    process.exitCode = 1
    return
  } finally {
    bytes.fill(0)
  }
  if (file === '-') {
    process.stdout.write(out.text)
  } else {
    try {
      // Through a symlink (a Kubernetes-style volume), the file it points at: replacing the
      // link would cut the path off from every later update of the volume.
      add.writeAtomically(fs.existsSync(file) ? fs.realpathSync(file) : file, out.text)
    } catch (err) {
      process.stderr.write(`tls-ticket-keys: secret add: cannot write ${file} (${err.code || err.message})\n`)
      process.exitCode = 1
      return
    }
  }
  const when = add.rfc3339(out.added.activatesAt)
  process.stderr.write(`added secret ${out.added.fingerprint}, sealing from ${when} (in ${out.added.activatesAt - now} s)\n`)
  for (const p of out.pruned) process.stderr.write(`pruned line ${p.line} (secret ${p.fingerprint}): it can open no live ticket\n`)
}

async function main() {
  const [command, ...rest] = process.argv.slice(2)
  try {
    if (command === 'generate') return generate(rest)
    if (command === 'check') return await check(rest)
    if (command === 'inspect') return inspect(rest)
    if (command === 'edge') return await edge(rest)
    if (command === 'secret') return await secret(rest)
    if (command === 'demo') return await require('../examples/demo.js').main()
    if (command === '--help' || command === '-h' || command === 'help') return process.stdout.write(`${USAGE}\n`)
    if (command === '--version' || command === '-v') return process.stdout.write(`${require('../package.json').version}\n`)
  } catch (err) {
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ||
        err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') fail(err.message)
    throw err
  }
  fail(command ? `unknown command '${command}'` : 'a command is needed')
}

main().catch((err) => {
  process.stderr.write(`tls-ticket-keys: ${err.message}\n`)
  process.exitCode = 2
})
