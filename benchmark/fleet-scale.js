'use strict'

// A fleet of N server processes on one machine, each with its own ring: from one Redis, and
// from one fleet secret. Rotation every --interval seconds; a client resumes sessions on
// random other members the whole time. Reports, per kind of ring:
//   - how long after each boundary the members disagree on the current key (p50, p99, max),
//     from the first sample round after the boundary to the first in which all agree, at
//     100 ms resolution: 0 means they agreed at the first sample,
//   - keys per epoch (the most seen in any epoch; one is the goal),
//   - fallback keys (rotations on a local key), Redis errors,
//   - cross-member resumption, Redis commands per second per member, RSS per member.
// Faults, injected --phase of the way into an epoch after the warm-up:
//   --fault stop   Redis SIGSTOPped for --fault-seconds, then SIGCONT
//   --fault kill   Redis SIGKILLed, started again empty after --fault-seconds
//   --fault empty  FLUSHALL
//   --fault secret-file  (--ring secret) members on new TicketKeyRing({ secretFile }), each on its
//                  own copy of a Kubernetes-style volume; a new secret activating --activate-in
//                  seconds ahead (default --fault-seconds + 2 intervals) is written to the copies
//                  one after the other, spread over --fault-seconds
// --skew S spreads the members' clocks evenly over [-S, +S] seconds (libfaketime, when
// installed), for the clock skew each kind of ring tolerates.
//
//   node benchmark/fleet-scale.js [--n 50] [--ring redis|secret|both] [--interval 2]
//     [--seconds 20] [--fault none|stop|kill|empty] [--phase 0.5] [--fault-seconds 5]
//     [--skew 0] [--activate-in S] [--json]
//
// Needs redis-server on the PATH (for --ring redis or both).

const { fork, execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const { once } = require('node:events')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { setTimeout: sleep } = require('node:timers/promises')
const { createClient } = require('redis')
const { key, cert, connect } = require('../test-support/helpers.js')
const { startRedis } = require('../test-support/fleet.js')
const { createVolume } = require('../test-support/k8s-volume.js')
const { fingerprint, rfc3339 } = require('../lib/secret-add.js')

const FIRST_SECRET = crypto.randomBytes(32)
const volumes = []

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '50' },
    ring: { type: 'string', default: 'both' },
    interval: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '20' },
    fault: { type: 'string', default: 'none' },
    phase: { type: 'string', default: '0.5' },
    'fault-seconds': { type: 'string', default: '5' },
    skew: { type: 'string', default: '0' },
    'activate-in': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
const N = Number(values.n)
const INTERVAL = Number(values.interval)
const SECONDS = Number(values.seconds)
const FAULT = values.fault
const PHASE = Number(values.phase)
const FAULT_SECONDS = Number(values['fault-seconds'])
const SKEW = Number(values.skew)
const SAMPLE_MS = 100
const WARM_UP_EPOCHS = 2
const MEMBER = path.join(__dirname, 'fleet-scale-member.js')
const FAULTS = ['none', 'stop', 'kill', 'empty', 'secret-file']
const SECRET_FILE = FAULT === 'secret-file'
const ACTIVATE_IN = values['activate-in'] === undefined ? Math.ceil(FAULT_SECONDS) + 2 * INTERVAL : Number(values['activate-in'])
if (!(N >= 2) || !(INTERVAL >= 1) || !(SECONDS > 0) || !FAULTS.includes(FAULT) || !['redis', 'secret', 'both'].includes(values.ring) ||
    (SECRET_FILE && values.ring !== 'secret') || !(ACTIVATE_IN >= 0)) {
  console.error('usage: see the comment at the top of benchmark/fleet-scale.js')
  process.exit(2)
}

function libfaketime() {
  try {
    return execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8' }).split('\n').find((p) => p.endsWith('/libfaketime.so.1')) ?? null
  } catch {
    return null
  }
}

/** The clock offset of member i of n: evenly over [-SKEW, +SKEW]. */
const offsetOf = (i) => (N === 1 || SKEW === 0 ? 0 : -SKEW + (2 * SKEW * i) / (N - 1))

async function startMembers(way, redisUrl) {
  const faketime = SKEW > 0 ? libfaketime() : null
  if (SKEW > 0 && faketime === null) throw new Error('--skew needs libfaketime (apt-get install faketime)')
  const config = {
    way, redisUrl, key: key.toString(), cert: cert.toString(), interval: INTERVAL, lifetime: 3 * INTERVAL,
    secret: Buffer.alloc(32, 0x5e).toString('base64'), wrapSecret: Buffer.alloc(32, 0x77).toString('base64'),
  }
  const members = []
  // A few at a time: N node processes starting at once on two cores take long enough.
  for (let i = 0; i < N; i += 10) {
    members.push(...await Promise.all(Array.from({ length: Math.min(10, N - i) }, async (_, j) => {
      const offset = offsetOf(i + j)
      let member = config
      if (SECRET_FILE) {
        const volume = createVolume(fs.mkdtempSync(path.join(os.tmpdir(), 'tls-fleet-scale-')), { secrets: `${FIRST_SECRET.toString('base64')}\n` })
        volumes[i + j] = volume
        member = { ...config, secretFile: path.join(volume.root, 'secrets') }
      }
      const env = { ...process.env, TLS_FLEET_SCALE: JSON.stringify(member) }
      if (offset !== 0) {
        Object.assign(env, { LD_PRELOAD: faketime, FAKETIME: `${offset >= 0 ? '+' : ''}${offset.toFixed(3)}`, FAKETIME_DONT_FAKE_MONOTONIC: '1' })
      }
      // A secret file's drop warnings, one per member, are counted in the samples instead.
      const child = fork(MEMBER, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: SECRET_FILE ? ['--no-warnings'] : [] })
      const [message] = await Promise.race([
        once(child, 'message'),
        once(child, 'exit').then(([code]) => { throw new Error(`a member exited with ${code}`) }),
      ])
      return { child, port: message.port }
    })))
  }
  return members
}

function sample(members) {
  return Promise.all(members.map((m) => new Promise((resolve) => {
    const onMessage = (reply) => resolve(reply)
    m.child.once('message', onMessage)
    m.child.send('sample')
  })))
}

const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0)

async function redisCommands(admin) {
  const info = await admin.info('stats')
  return Number(/total_commands_processed:(\d+)/.exec(info)[1])
}

async function injectFault(redis, admin) {
  if (FAULT === 'stop') {
    redis.signal('SIGSTOP')
    await sleep(FAULT_SECONDS * 1000)
    redis.signal('SIGCONT')
  } else if (FAULT === 'kill') {
    await redis.stop('SIGKILL')
    await sleep(FAULT_SECONDS * 1000)
    return startRedis(redis.port)
  } else if (FAULT === 'empty') {
    await admin.flushAll()
  }
  return redis
}

async function measure(way) {
  let redis = null
  let admin = null
  if (way === 'redis') {
    redis = await startRedis()
    admin = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } })
    admin.on('error', () => {})
    await admin.connect()
  }
  const members = await startMembers(way, redis?.url)
  try {
    // Warm up: every member through a boundary or two.
    const ms = INTERVAL * 1000
    await sleep((Math.floor(Date.now() / ms) + WARM_UP_EPOCHS) * ms - Date.now())
    const started = Date.now()
    const end = started + SECONDS * 1000
    const commandsBefore = admin ? await redisCommands(admin) : 0
    const fallbacksBefore = (await sample(members)).reduce((n, s) => n + s.fallbackKeys, 0)
    // The client: sessions from one random member offered to another.
    const resumption = { offered: 0, resumed: 0, failed: 0 }
    const client = (async () => {
      let version = 'TLSv1.3'
      while (Date.now() < end) {
        const a = members[Math.floor(Math.random() * N)]
        let b = a
        while (b === a) b = members[Math.floor(Math.random() * N)]
        try {
          const first = await connect(a.port, { version })
          const second = await connect(b.port, { version, session: first.session })
          resumption.offered++
          if (second.reused) resumption.resumed++
        } catch {
          resumption.failed++
        }
        version = version === 'TLSv1.3' ? 'TLSv1.2' : 'TLSv1.3'
      }
    })()
    let change = null
    const fault = SECRET_FILE
      ? (async () => {
          const at = (Math.floor(Date.now() / ms) + 1 + PHASE) * ms
          await sleep(at - Date.now())
          const secret = crypto.randomBytes(32)
          const activation = Math.ceil(Date.now() / 1000) + ACTIVATE_IN
          change = { fingerprint: fingerprint(secret), old: fingerprint(FIRST_SECRET), activation, writtenFrom: Date.now() }
          const text = `${FIRST_SECRET.toString('base64')}\n${rfc3339(activation)} ${secret.toString('base64')}\n`
          for (let i = 0; i < N; i++) {
            await sleep(change.writtenFrom + (FAULT_SECONDS * 1000 * i) / (N - 1) - Date.now())
            volumes[i].update({ secrets: text })
          }
          change.writtenTo = Date.now()
        })()
      : FAULT !== 'none' && redis
      ? (async () => {
          const at = (Math.floor(Date.now() / ms) + 1 + PHASE) * ms
          await sleep(at - Date.now())
          redis = await injectFault(redis, admin)
        })()
      : Promise.resolve()
    // Samples: what every member holds, every SAMPLE_MS.
    const rounds = []
    while (Date.now() < end) {
      rounds.push(await sample(members))
      await sleep(SAMPLE_MS)
    }
    await Promise.all([client, fault])
    const last = rounds[rounds.length - 1]
    const commandsAfter = admin ? await redisCommands(admin).catch(() => null) : 0
    // Per boundary: from the first sample round after it to the first in which every member
    // agrees (the whole epoch when none does).
    const disagreement = []
    const startOf = (round) => Math.min(...round.map((s) => s.at))
    for (let boundary = Math.ceil(started / ms) * ms; boundary + ms <= end; boundary += ms) {
      const after = rounds.filter((r) => startOf(r) >= boundary && startOf(r) < boundary + ms)
      if (after.length === 0) continue
      const agreed = after.find((r) => new Set(r.map((s) => s.name)).size === 1)
      disagreement.push(agreed ? startOf(agreed) - startOf(after[0]) : ms)
    }
    disagreement.sort((x, y) => x - y)
    // Keys per epoch: the current keys seen for each epoch of the schedule.
    const perEpoch = new Map()
    for (const round of rounds) {
      for (const s of round) {
        if (!perEpoch.has(s.epoch)) perEpoch.set(s.epoch, new Set())
        perEpoch.get(s.epoch).add(s.name)
      }
    }
    const rss = last.map((s) => s.rss).sort((x, y) => x - y)
    // A secret file change: who seals with the new secret at the end, who still holds the old one.
    const secretFile = change && {
      activation: change.activation,
      spreadMs: change.writtenTo - change.writtenFrom,
      sealingNew: last.filter((s) => s.secret === change.fingerprint).length,
      holdingOld: last.filter((s) => s.secrets.includes(change.old)).length,
      secretFileErrors: last.reduce((n, s) => n + s.secretFileErrors, 0),
      // The first sample round in which every member sealed with the new secret, after the activation.
      allSealingNewMsAfterActivation: (() => {
        const round = rounds.find((r) => r.every((x) => x.secret === change.fingerprint))
        return round ? Math.min(...round.map((x) => x.at)) - change.activation * 1000 : null
      })(),
    }
    return {
      ring: way,
      n: N,
      fault: FAULT,
      skew: SKEW,
      boundaries: disagreement.length,
      disagreementMs: { p50: quantile(disagreement, 0.5), p99: quantile(disagreement, 0.99), max: disagreement[disagreement.length - 1] ?? 0 },
      keysPerEpoch: Math.max(...[...perEpoch.values()].map((names) => names.size)),
      fallbackKeys: last.reduce((n, s) => n + s.fallbackKeys, 0) - fallbacksBefore,
      redisErrors: last.reduce((n, s) => n + s.redisErrors, 0),
      resumption,
      // Not after a restart, which starts Redis's count again.
      redisCommandsPerSecondPerMember: admin && commandsAfter !== null && FAULT !== 'kill'
        ? Number(((commandsAfter - commandsBefore) / ((Date.now() - started) / 1000) / N).toFixed(2)) : null,
      rssMiB: { median: Math.round(quantile(rss, 0.5) / 2 ** 20), max: Math.round(rss[rss.length - 1] / 2 ** 20) },
      ...(secretFile ? { secretFile } : {}),
    }
  } finally {
    for (const m of members) m.child.kill('SIGKILL')
    for (const v of volumes.splice(0)) fs.rmSync(v.root, { recursive: true, force: true })
    await admin?.quit().catch(() => {})
    await redis?.stop()
  }
}

async function main() {
  const ways = values.ring === 'both' ? ['redis', 'secret'] : [values.ring]
  const results = []
  for (const way of ways) results.push(await measure(way))
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results)}\n`)
    return
  }
  console.log(`N = ${N}, rotation every ${INTERVAL} s, ${SECONDS} s measured, fault: ${FAULT}${FAULT === 'none' ? '' : ` at ${PHASE} of an epoch`}, clock skew ±${SKEW} s\n`)
  console.log('| ring | disagreement after a boundary, p50 / p99 / max | keys per epoch (max) | fallback keys | Redis errors | resumed on another member | Redis commands/s per member | RSS per member, median / max |')
  console.log('|---|---|---:|---:|---:|---|---:|---|')
  for (const r of results) {
    const { offered, resumed, failed } = r.resumption
    const rate = offered ? `${(100 * resumed / offered).toFixed(1)} % (${resumed}/${offered}${failed ? `, ${failed} failed` : ''})` : '-'
    const d = r.disagreementMs
    console.log(`| ${r.ring} | ${d.p50} / ${d.p99} / ${d.max} ms | ${r.keysPerEpoch} | ${r.fallbackKeys} | ${r.redisErrors} | ${rate} | ${r.redisCommandsPerSecondPerMember ?? '-'} | ${r.rssMiB.median} / ${r.rssMiB.max} MiB |`)
    if (r.secretFile) {
      const f = r.secretFile
      console.log(`\nsecret file: copies written over ${f.spreadMs} ms, activation ${rfc3339(f.activation)}; at the end ${f.sealingNew}/${N} seal with ` +
        `the new secret, ${f.holdingOld}/${N} still hold the old one; all sealed with the new one ${f.allSealingNewMsAfterActivation} ms ` +
        `after the activation; ${f.secretFileErrors} file errors`)
    }
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
