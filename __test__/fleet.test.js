'use strict'

// A fleet of three server processes, started with different argv, behind a real HAProxy in
// TCP mode with round-robin. A client reconnects through it 200 times across at least three
// rotations, offering its newest session each time.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { cert } = require('../test-support/helpers.js')
const { startRedis, startHaproxy, startFleet, reconnectThrough } = require('../test-support/fleet.js')

const ROTATION = 2 // seconds
const SPAN_MS = 3.5 * ROTATION * 1000 // at least three rotations
const options = () => ({
  rotationInterval: ROTATION,
  ticketLifetime: 30,
  secret: Buffer.alloc(32, 0x5e).toString('base64'),
  wrapSecret: Buffer.alloc(32, 0x77).toString('base64'),
})

describe('a fleet behind HAProxy', () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(async () => { await redis.stop() })

  async function throughFleet(way, run) {
    const fleet = await startFleet(way, { ...options(), redisUrl: redis.url })
    let lb
    try {
      lb = await startHaproxy(fleet.ports)
      return await run(lb, fleet)
    } finally {
      if (lb) await lb.stop()
      await fleet.stop()
    }
  }

  for (const way of ['secret', 'redis', 'cluster']) {
    test(`${way}: every one of 200 reconnections across three rotations resumes`, async () => {
      const result = await throughFleet(way, (lb) => reconnectThrough(lb.port, { count: 200, spanMs: SPAN_MS }))
      assert.deepEqual({ resumed: result.resumed, full: result.full, failed: result.failed },
        { resumed: 200, full: 0, failed: 0 })
    })
  }

  test('plain Node servers resume almost nothing through the same balancer', async () => {
    const result = await throughFleet('plain', (lb) => reconnectThrough(lb.port, { count: 60 }))
    assert.equal(result.failed, 0)
    assert.ok(result.rate < 0.5, `plain fleet resumed ${result.resumed} of 60`)
  })

  for (const way of ['secret', 'redis']) {
    test(`${way}: tickets from before a restart of every server still resume`, async () => {
      let session
      await throughFleet(way, async (lb) => {
        const before = await reconnectThrough(lb.port, { count: 3 })
        assert.equal(before.resumed, 3)
        session = before.session
      })
      // Every process is gone. New ones, with new argv and pids, start in a later epoch than
      // the one that sealed the ticket, and take the old session.
      const interval = ROTATION * 1000
      await new Promise((resolve) => setTimeout(resolve, interval - (Date.now() % interval) + 100))
      await throughFleet(way, async (lb) => {
        const after = await reconnectThrough(lb.port, { count: 30, session })
        assert.equal(after.firstResumed, true, 'the first connection to the new processes resumed')
        assert.deepEqual({ resumed: after.resumed, failed: after.failed }, { resumed: 30, failed: 0 })
      })
    })
  }

  test('redis: stopped in the middle of a rotation and restarted, no handshake fails and the fleet converges', async () => {
    const ownRedis = await startRedis()
    const fleet = await startFleet('redis', { ...options(), redisUrl: ownRedis.url })
    let lb
    let restarted
    try {
      lb = await startHaproxy(fleet.ports)
      const outage = await reconnectThrough(lb.port, {
        count: 120,
        spanMs: 4 * ROTATION * 1000,
        onEach: async (i) => {
          if (i === 20) await ownRedis.stop('SIGKILL')
          if (i === 90) restarted = await startRedis(ownRedis.port)
        },
      })
      assert.equal(outage.failed, 0, 'no handshake failed while Redis was away')
      const stats = await fleet.stats()
      // Whether a ring needed a key of its own depends on where the outage fell: each holds
      // the keys of the next two epochs, which may carry it through.
      for (const member of stats) assert.ok(member.store.redisErrors > 0, 'the outage was seen')
      // Once every process has agreed the keys again, they all resume each other's tickets.
      await new Promise((resolve) => setTimeout(resolve, 2.5 * ROTATION * 1000))
      const converged = await reconnectThrough(lb.port, { count: 30 })
      assert.deepEqual({ resumed: converged.resumed, failed: converged.failed }, { resumed: 30, failed: 0 })
    } finally {
      if (lb) await lb.stop()
      await fleet.stop()
      if (restarted) await restarted.stop()
      await ownRedis.stop()
    }
  })

  test('gnutls-cli --resume through HAProxy resumes (TLS 1.2)', async () => {
    await throughFleet('secret', async (lb) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-gnutls-'))
      try {
        fs.writeFileSync(path.join(dir, 'ca.pem'), cert)
        const output = await new Promise((resolve, reject) => {
          const child = spawn('gnutls-cli', ['--resume', '--priority', 'NORMAL:-VERS-TLS1.3',
            `--x509cafile=${path.join(dir, 'ca.pem')}`, '-p', String(lb.port), 'localhost'],
          { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
          let out = ''
          child.stdout.on('data', (d) => { out += d })
          child.stderr.on('data', (d) => { out += d })
          child.on('error', reject)
          child.on('close', () => resolve(out))
        })
        assert.match(output, /\*\*\* This is a resumed session/, output)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  })
})
