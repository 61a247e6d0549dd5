'use strict'

// Soak: 32 concurrent clients (half TLS 1.2, half TLS 1.3, each offering its newest session)
// for 60 s against a server whose ring rotates every second, then the same load against a
// server with Node's built-in ticket handling, in the same run. Reports failed handshakes,
// the resumption rate of sessions offered inside their lifetime, the server's RSS and held
// keys over time, and p50/p99 handshake latency against built-in.
//
//   node benchmark/soak.js [--duration 60] [--builtin-duration 60] [--clients 32]
//                          [--rotation 1] [--lifetime 10] [--mode auto|native|callback] [--redis]
//
// --redis: two servers whose rings share keys through a real redis-server, the clients
// alternating between them; Redis is killed with SIGKILL a third into the run and restarted
// at half-time.

const crypto = require('node:crypto')
const { parseArgs } = require('node:util')
const { runLoad, startServer } = require('../test-support/soak-load.js')
const { freePort, startRedis } = require('../test-support/fleet.js')
const { selfSignedCertificate } = require('../lib/selfsigned.js')

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    'builtin-duration': { type: 'string' },
    clients: { type: 'string', default: '32' },
    rotation: { type: 'string', default: '1' },
    lifetime: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'auto' },
    redis: { type: 'boolean', default: false },
  },
})
const DURATION_MS = Number(values.duration) * 1000
const BUILTIN_MS = Number(values['builtin-duration'] ?? values.duration) * 1000
const CLIENTS = Number(values.clients)
const ROTATION = Number(values.rotation)
const LIFETIME = Number(values.lifetime)
const WARMUP_MS = 2000

const { key, cert } = selfSignedCertificate()
const base = { key: key.toString(), cert: cert.toString(), rotationInterval: ROTATION, ticketLifetime: LIFETIME }

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]
}

/** RSS after warm-up, in five points: the medians of each fifth of the run. */
function rssTrend(samples) {
  const steady = samples.slice(Math.ceil(WARMUP_MS / 250))
  const fifth = Math.max(1, Math.floor(steady.length / 5))
  return Array.from({ length: 5 }, (_, i) => median(steady.slice(i * fifth, (i + 1) * fifth)))
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`
// Node's default session timeout: how long built-in tickets resume.
const BUILTIN_LIFETIME = 300
const ms = (x) => `${x.toFixed(2)} ms`

async function soak(label, configs, durationMs, duringFor = () => null, phaseAt = undefined) {
  const lifetimeSeconds = configs[0].mode === 'builtin' ? BUILTIN_LIFETIME : LIFETIME
  const servers = []
  try {
    for (const config of configs) servers.push(await startServer({ ...base, ...config }))
    const ports = servers.map((s) => s.port)
    await runLoad({ ports, ca: cert, clients: CLIENTS, durationMs: WARMUP_MS, lifetimeSeconds })
    const load = await runLoad({
      ports, ca: cert, clients: CLIENTS, durationMs, lifetimeSeconds, during: duringFor(servers), phaseAt,
    })
    const reports = await Promise.all(servers.map((s) => s.request('report')))
    return { label, mode: servers[0].mode, load, reports }
  } finally {
    for (const server of servers) {
      const { code, signal } = await server.stop()
      if (code !== 0) console.log(`!! ${label}: a server exited with ${signal ?? code}`)
    }
  }
}

function print(run, builtin) {
  const { load, reports } = run
  console.log(`\n== ${run.label} (${run.mode}): ${load.connections} connections, ${load.failed} failed`)
  for (const e of load.errors) console.log(`   error: ${e}`)
  console.log(`   resumed ${load.resumed}/${load.connections} (${(100 * load.resumed / load.connections).toFixed(1)} %); ` +
    `offered inside their lifetime: ${load.resumedInsideLifetime}/${load.offeredInsideLifetime} resumed ` +
    `(${(100 * load.resumptionInsideLifetime).toFixed(2)} %)`)
  const phases = Object.entries(load.phases)
  if (phases.length > 1) {
    console.log(`   by phase: ${phases.map(([name, p]) => `${name} ${p.resumedInsideLifetime}/${p.offeredInsideLifetime} ` +
      `(${(100 * p.resumedInsideLifetime / p.offeredInsideLifetime).toFixed(1)} %)`).join('; ')}`)
  }
  reports.forEach((r, i) => {
    const rss = rssTrend(r.samples.rss)
    const keys = r.samples.keys
    const held = keys.length ? `keys held ${Math.min(...keys)}-${Math.max(...keys)} (schedule bound ${3 + Math.ceil(LIFETIME / ROTATION)})` : 'no ring'
    console.log(`   server ${i}: RSS by fifths of the run ${rss.map(mib).join(', ')}; ${held}`)
    if (r.ring) console.log(`   server ${i}: ring ${JSON.stringify(r.ring)}`)
    if (r.store) console.log(`   server ${i}: store ${JSON.stringify(r.store)}`)
  })
  for (const version of ['TLSv1.2', 'TLSv1.3']) {
    const l = load.latency[version]
    let line = `   ${version}: handshake p50 ${ms(l.p50)}, p99 ${ms(l.p99)} (${l.count})`
    if (builtin) {
      const b = builtin.load.latency[version]
      line += `; vs built-in p50 ${(l.p50 / b.p50).toFixed(2)}x, p99 ${(l.p99 / b.p99).toFixed(2)}x`
    }
    console.log(line)
  }
}

async function main() {
  console.log(`soak: ${CLIENTS} clients (half TLS 1.2, half 1.3), ring rotating every ${ROTATION} s, ` +
    `tickets live ${LIFETIME} s; ${DURATION_MS / 1000} s with the ring, ${BUILTIN_MS / 1000} s built-in; Node ${process.version}`)
  const builtin = await soak('built-in', [{ mode: 'builtin' }], BUILTIN_MS)
  print(builtin)
  if (!values.redis) {
    print(await soak('ring', [{ mode: values.mode }], DURATION_MS), builtin)
    return
  }
  const redisPort = await freePort()
  let redis = await startRedis(redisPort)
  const redisConfig = { mode: values.mode, redisUrl: `redis://127.0.0.1:${redisPort}`, wrapSecret: crypto.randomBytes(32).toString('base64') }
  const events = []
  try {
    const run = await soak('ring, two servers sharing keys through Redis', [redisConfig, redisConfig], DURATION_MS, () => {
      let killed = false
      let restarted = false
      return async (elapsed) => {
        if (!killed && elapsed > DURATION_MS / 3) {
          killed = true
          await redis.stop('SIGKILL')
          events.push(`redis SIGKILLed at ${(elapsed / 1000).toFixed(1)} s`)
        } else if (killed && !restarted && elapsed > DURATION_MS / 2) {
          restarted = true
          redis = await startRedis(redisPort)
          events.push(`redis restarted at ${(elapsed / 1000).toFixed(1)} s`)
        }
      }
    }, (elapsed) => {
      if (elapsed < DURATION_MS / 3) return 'Redis up'
      if (elapsed < DURATION_MS / 2) return 'Redis killed'
      // Tickets sealed with a member's own keys during the outage open only there until
      // they expire: a lifetime, plus the epoch until the feed's keys are current.
      if (elapsed < DURATION_MS / 2 + (LIFETIME + 2 * ROTATION) * 1000) return 'a lifetime after the restart'
      return 'after that'
    })
    console.log(`\n   ${events.join('; ')}`)
    print(run, builtin)
  } finally {
    await redis.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
