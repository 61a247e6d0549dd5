'use strict'

// What a Redis client costs each process in memory: the resident set size of a process that
// loads tls-ticket-keys and holds a ring, alone and with a RedisKeyStore over a connected
// node-redis client (the `redis` package, or only its core `@redis/client`) or ioredis client,
// measured in fresh processes (after a GC and a short settle), interleaved over several
// rounds, against a throwaway redis-server on loopback. Prints the median RSS of each and its
// difference from the baseline.
//
//   node benchmark/redis-client-rss.js [--rounds 5]

const { spawn } = require('node:child_process')
const { parseArgs } = require('node:util')
const path = require('node:path')
const { startRedis } = require('../test-support/fleet.js')

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, child: { type: 'string' }, port: { type: 'string' } } })
const ROUNDS = Number(values.rounds)
const SETTLE_MS = 500
const MB = 1024 * 1024

const KINDS = {
  'tls-ticket-keys and a ring (baseline)': 'none',
  "+ RedisKeyStore over node-redis createClient (require('redis'))": 'node-redis',
  "+ RedisKeyStore over node-redis createClient (require('@redis/client'), without the modules)": '@redis/client',
  '+ RedisKeyStore over ioredis': 'ioredis',
}

async function child(kind, port) {
  const { TicketKeyRing, RedisKeyStore } = require('..')
  const wrapSecret = Buffer.alloc(32, 1)
  let ring
  if (kind === 'none') {
    ring = new TicketKeyRing({ rotationInterval: 3600 })
  } else if (kind === 'node-redis' || kind === '@redis/client') {
    const client = await require(kind === 'node-redis' ? 'redis' : '@redis/client').createClient({ url: `redis://127.0.0.1:${port}` }).connect()
    ring = await new RedisKeyStore({ client, wrapSecret }).ring({ rotationInterval: 3600 })
  } else {
    const { Redis } = require('ioredis')
    const client = new Redis({ port: Number(port), host: '127.0.0.1' })
    ring = await new RedisKeyStore({ client, wrapSecret }).ring({ rotationInterval: 3600 })
  }
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
  global.gc()
  process.stdout.write(`${JSON.stringify({ rss: process.memoryUsage().rss, keys: ring.keys().length })}\n`)
  process.exit(0)
}

function measure(kind, port) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', __filename, '--child', kind, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    proc.stdout.on('data', (d) => { out += d })
    proc.on('error', reject)
    proc.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).rss) : reject(new Error(`${kind} exited ${code}`))))
  })
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  const redis = await startRedis()
  try {
    const samples = Object.fromEntries(Object.values(KINDS).map((k) => [k, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of Object.values(KINDS)) samples[kind].push(await measure(kind, redis.port))
    }
    const base = median(samples.none)
    console.log(`Node ${process.version}, ${ROUNDS} fresh processes each, median RSS after a GC\n`)
    console.log('| process | RSS | more than the baseline |')
    console.log('|---|---:|---:|')
    for (const [label, kind] of Object.entries(KINDS)) {
      const rss = median(samples[kind])
      console.log(`| ${label} | ${(rss / MB).toFixed(1)} MB | ${kind === 'none' ? '' : `${((rss - base) / MB).toFixed(1)} MB`} |`)
    }
  } finally {
    await redis.stop()
  }
}

if (values.child) child(values.child, values.port)
else main()
