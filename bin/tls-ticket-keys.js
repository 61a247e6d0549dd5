#!/usr/bin/env node
'use strict'

// tls-ticket-keys generate | check | demo. Writes no file; key material goes to stdout only.

const { parseArgs } = require('node:util')
const fs = require('node:fs')

const USAGE = `Usage:
  tls-ticket-keys --version
  tls-ticket-keys generate [--size 48|80] [--format base64|hex|nginx|haproxy] [--count N]
  tls-ticket-keys check host:port [-n 5] [--servername NAME] [--tls1.2|--tls1.3] [--ca FILE|--insecure] [--json]
  tls-ticket-keys demo`

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
    size: { type: 'string', default: '48' }, format: { type: 'string', default: 'base64' }, count: { type: 'string' },
  } })
  const { HAPROXY_MIN_KEYS } = require('../lib/key-files.js')
  const size = Number(values.size)
  // HAProxy refuses a file of fewer keys (previous, current, next).
  const minimum = values.format === 'haproxy' ? HAPROXY_MIN_KEYS : 1
  const count = values.count === undefined ? minimum : Number(values.count)
  if (size !== 48 && size !== 80) fail('--size must be 48 or 80')
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
      process.stdout.write(size === 48 ? swap(keys[0]) : keys[0])
      break
    default: fail('--format must be base64, hex, nginx or haproxy')
  }
}

async function check(argv) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    n: { type: 'string', short: 'n', default: '5' }, servername: { type: 'string' },
    'tls1.2': { type: 'boolean' }, 'tls1.3': { type: 'boolean' }, ca: { type: 'string' },
    insecure: { type: 'boolean' }, json: { type: 'boolean' },
  } })
  const target = positionals[0]
  const match = target && /^(.*):(\d+)$/.exec(target)
  if (!match) fail('check needs host:port')
  const host = match[1].replace(/^\[|\]$/g, '')
  const port = Number(match[2])
  if (host === '') fail('check needs a host before the port')
  if (!(port >= 1 && port <= 65535)) fail('the port must be 1 to 65535')
  const count = Number(values.n)
  if (!Number.isInteger(count) || count < 1 || count > 100) fail('-n must be 1 to 100')
  if (values['tls1.2'] && values['tls1.3']) fail('--tls1.2 and --tls1.3 exclude each other')
  const options = {
    host, port, count, servername: values.servername,
    version: values['tls1.2'] ? 'TLSv1.2' : values['tls1.3'] ? 'TLSv1.3' : undefined,
    ca: values.ca ? fs.readFileSync(values.ca) : undefined, insecure: Boolean(values.insecure),
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

async function main() {
  const [command, ...rest] = process.argv.slice(2)
  try {
    if (command === 'generate') return generate(rest)
    if (command === 'check') return await check(rest)
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
