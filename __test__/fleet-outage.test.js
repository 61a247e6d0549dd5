'use strict'

// A fleet of RedisKeyStore members, each its own process, through Redis outages longer than
// the two epochs held ahead: a client reconnects to a random other member every time,
// offering its newest session, and every reconnection resumes. With fallback: 'local' the
// fleet splits, as it did before derived fallbacks existed.
//
// Each outage starts in the middle of an epoch, away from the rounds that follow each
// boundary (within a tenth of an interval). An outage that starts while some members have
// agreed the key two epochs ahead and others have not yet leaves that one epoch split
// (see the README's Security section); that window is not what these tests measure.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { setTimeout: sleep } = require('node:timers/promises')
const { connect } = require('../test-support/helpers.js')
const { startRedis, startMember, stopChild } = require('../test-support/fleet.js')

const INTERVAL = 2
const SCHEDULE = { rotationInterval: INTERVAL, ticketLifetime: 3 * INTERVAL }
const MEMBERS = 5
const OUTAGE_EPOCHS = 5
const wrapSecret = Buffer.alloc(32, 0x2b).toString('base64')

/** Sleeps until `fraction` of the way into an epoch, at least `epochs` boundaries from now. */
async function untilInto(fraction, epochs = 1) {
  const ms = INTERVAL * 1000
  const now = Date.now()
  await sleep((Math.floor(now / ms) + epochs) * ms + fraction * ms - now)
}

function stats(member) {
  return new Promise((resolve) => {
    member.child.once('message', resolve)
    member.child.send('stats')
  })
}

// A TLS 1.2 session that keeps resuming keeps the time of the full handshake that made it,
// and no server resumes it a ticket lifetime after that: the client starts a new one (not
// counted) before then, with a second of the servers' whole-second clocks to spare.
const MAX_SESSION_AGE_MS = (SCHEDULE.ticketLifetime - INTERVAL) * 1000

/**
 * A client that reconnects until stopped, each time to a random member other than the one
 * that issued the session it offers, its newest; TLS 1.3 and 1.2 in turn, each with its own
 * sessions. Counts the reconnections that had a session to offer.
 */
function roam(members) {
  const counts = { reconnections: 0, resumed: 0, failed: 0, notResumed: [] }
  let running = true
  const done = (async () => {
    const fresh = () => ({ session: undefined, from: null, bornAt: Date.now() })
    const newest = { 'TLSv1.3': fresh(), 'TLSv1.2': fresh() }
    let version = 'TLSv1.3'
    while (running) {
      if (Date.now() - newest[version].bornAt > MAX_SESSION_AGE_MS) newest[version] = fresh()
      const { session, from, bornAt } = newest[version]
      const others = members.filter((m) => m !== from)
      const member = others[Math.floor(Math.random() * others.length)]
      try {
        const result = await connect(member.port, { version, session })
        if (session !== undefined) {
          counts.reconnections++
          if (result.reused) counts.resumed++
          else counts.notResumed.push(`${version} on ${member.tag} at ${new Date().toISOString()}`)
        }
        newest[version] = { session: result.session, from: member, bornAt: result.reused ? bornAt : Date.now() }
      } catch {
        counts.failed++
      }
      version = version === 'TLSv1.3' ? 'TLSv1.2' : 'TLSv1.3'
    }
  })()
  return { counts, stop: async () => { running = false; await done } }
}

describe('a fleet through a Redis outage of several epochs', () => {
  let redis
  let prefixes = 0

  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    redis?.signal('SIGCONT')
    await redis?.stop()
  })

  async function fleet(count, fallback) {
    const prefix = `outage-${process.pid}-${++prefixes}:`
    const start = (i) => startMember('redis', `member-${i}`, {
      ...SCHEDULE, redisUrl: redis.url, wrapSecret, prefix, timeout: 400, fallback,
    }).then((m) => Object.assign(m, { tag: `member-${i}` }))
    const members = await Promise.all(Array.from({ length: count }, (_, i) => start(i)))
    return {
      members,
      add: async () => { members.push(await start(members.length)) },
      stats: () => Promise.all(members.map(stats)),
      stop: () => Promise.all(members.map((m) => stopChild(m.child, 'SIGKILL'))),
    }
  }

  test('stopped for five epochs, with a member that starts during it: every reconnection resumes', async () => {
    const f = await fleet(MEMBERS)
    const client = roam(f.members)
    let all
    try {
      await untilInto(0.5)
      redis.signal('SIGSTOP')
      // Past the two epochs held ahead, every member derives the same key; a member started
      // then derives it too, and joins the client's rotation.
      await untilInto(0.5, 3)
      await f.add()
      await untilInto(0.5, OUTAGE_EPOCHS - 3)
      redis.signal('SIGCONT')
      // Back to keys agreed in Redis, with no boundary lost.
      await untilInto(0.5, 2)
    } finally {
      redis.signal('SIGCONT')
      await client.stop()
      all = await f.stats()
      await f.stop()
    }
    const { counts } = client
    assert.ok(counts.reconnections > 50, `only ${counts.reconnections} reconnections`)
    assert.deepEqual(counts.notResumed, [])
    assert.equal(counts.failed, 0)
    assert.equal(counts.resumed, counts.reconnections)
    // Members sealed with derived keys during the outage: counted (and published, see
    // redis-faults.test.js), and Redis counted as failing.
    assert.ok(all.every((s) => s.store.redisErrors > 0))
    assert.ok(all.reduce((n, s) => n + s.stats.fallbackKeys, 0) > 0)
  })

  test('killed and started again empty after four epochs: every reconnection resumes', async () => {
    const f = await fleet(MEMBERS)
    const client = roam(f.members)
    let all
    try {
      await untilInto(0.5)
      await redis.stop('SIGKILL')
      await untilInto(0.5, OUTAGE_EPOCHS - 1)
      redis = await startRedis(redis.port)
      await untilInto(0.5, 2)
    } finally {
      await client.stop()
      all = await f.stats()
      await f.stop()
    }
    const { counts } = client
    assert.ok(counts.reconnections > 50, `only ${counts.reconnections} reconnections`)
    assert.deepEqual(counts.notResumed, [])
    assert.equal(counts.failed, 0)
    assert.ok(all.reduce((n, s) => n + s.stats.fallbackKeys, 0) > 0)
    // The keys sealed with during the outage went back to the emptied Redis.
    assert.ok(all.reduce((n, s) => n + s.store.writtenBack, 0) > 0)
  })

  test("fallback: 'local' keeps the old behaviour: the fleet splits once the keys held ahead run out", async () => {
    const f = await fleet(MEMBERS, 'local')
    const client = roam(f.members)
    try {
      await untilInto(0.5)
      redis.signal('SIGSTOP')
      await untilInto(0.5, 4)
      redis.signal('SIGCONT')
    } finally {
      redis.signal('SIGCONT')
      await client.stop()
      await f.stop()
    }
    const { counts } = client
    assert.equal(counts.failed, 0, 'no handshake fails: a ticket that does not resume gets a full one')
    assert.ok(counts.notResumed.length > 0, 'each member sealed with a random key of its own')
  })
})
