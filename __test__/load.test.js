'use strict'

// The short version of benchmark/soak.js, and lifecycle calls made while handshakes are in
// flight. The server runs in its own process (test-support/soak-server.js), so that a crash is an
// exit status here rather than the end of the test run.

const test = require('node:test')
const assert = require('node:assert/strict')
const { setTimeout: sleep } = require('node:timers/promises')
const crypto = require('node:crypto')
const { runLoad, handshake, startServer } = require('../test-support/soak-load.js')
const { startRedis } = require('../test-support/fleet.js')
const { selfSignedCertificate } = require('../lib/selfsigned.js')

const { key, cert } = selfSignedCertificate()
const credentials = { key: key.toString(), cert: cert.toString() }
const MODES = ['native', 'callback']

async function withServer(config, fn) {
  const server = await startServer({ ...credentials, ...config })
  let stopped = false
  try {
    await fn(server)
    const { code, signal } = await server.stop()
    stopped = true
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'the server process did not end cleanly')
  } finally {
    if (!stopped) await server.stop()
  }
}

for (const mode of MODES) {
  test(`${mode}: 32 clients for 8 s, TLS 1.2 and 1.3, ring rotating every second`, async () => {
    const rotationInterval = 1
    const ticketLifetime = 4
    await withServer({ mode, rotationInterval, ticketLifetime }, async (server) => {
      assert.equal(server.mode, mode)
      const load = await runLoad({ ports: [server.port], ca: cert, clients: 32, durationMs: 8000, lifetimeSeconds: ticketLifetime })
      assert.deepEqual(load.errors, [])
      assert.equal(load.failed, 0)
      assert.ok(load.offeredInsideLifetime > 200, `only ${load.offeredInsideLifetime} sessions offered inside their lifetime`)
      // A ticket inside its lifetime always finds its key: the rate is exact, not statistical.
      assert.equal(load.resumedInsideLifetime, load.offeredInsideLifetime)
      const report = await server.request('report')
      // Keys rotated under load, and tickets of previous keys were renewed.
      assert.ok(report.ring.renewed > 0, JSON.stringify(report.ring))
      // Only sessions past their lifetime meet a wiped key.
      assert.equal(report.ring.unknownKey, 0, JSON.stringify(report.ring))
      assert.ok(report.ring.expired <= load.offered - load.offeredInsideLifetime, JSON.stringify(report.ring))
      // next + current + previous for a lifetime: never more than the schedule allows.
      const bound = 3 + Math.ceil(ticketLifetime / rotationInterval)
      assert.ok(Math.max(...report.samples.keys) <= bound, `held ${Math.max(...report.samples.keys)} keys, bound ${bound}`)
      assert.equal(report.attachment.handshakes, load.connections)
      assert.equal(report.attachment.resumed, load.resumed)
    })
  })

  test(`${mode}: setSecureContext, setTicketKeys, rotate, detach, attach and destroy while handshakes are in flight`, async () => {
    await withServer({ mode, rotationInterval: 1, ticketLifetime: 30 }, async (server) => {
      const port = server.port
      const load = runLoad({ ports: [port], ca: cert, clients: 16, durationMs: 7000, lifetimeSeconds: 30 })
      const versions = ['TLSv1.2', 'TLSv1.3']
      const sessions = {}
      const probe = async (version, session) => {
        const outcome = await handshake(port, version, session, cert)
        assert.equal(outcome.error, null)
        return outcome
      }
      const expect = async (label, reused, sessionFor = (v) => sessions[v]) => {
        for (const version of versions) {
          const outcome = await probe(version, sessionFor(version))
          assert.equal(outcome.reused, reused, `${label}, ${version}`)
          if (outcome.session) sessions[version] = outcome.session
        }
      }
      const op = async (name) => {
        const answer = await server.request(name)
        assert.ok(answer.ok, `${name}: ${answer.error}`)
      }

      await sleep(300)
      await expect('first connection', false, () => undefined)
      await expect('ring attached', true)
      for (let i = 0; i < 10; i++) await op('setSecureContext')
      await expect('after setSecureContext under load', true)
      const beforeKeys = { ...sessions }
      await op('setTicketKeys')
      await expect('ticket from before setTicketKeys', true, (v) => beforeKeys[v])
      await op('rotate')
      await expect('after rotate', true)
      const ringSessions = { ...sessions }
      await op('detach')
      await expect('ring ticket after detach', false, (v) => ringSessions[v])
      await expect('the server\'s own ticket after detach', true)
      await op('attach')
      await expect('ring ticket after attaching again', true, (v) => ringSessions[v])
      await op('destroy')
      await expect('after destroy', false)
      await expect('after destroy, again', false)

      const result = await load
      assert.deepEqual(result.errors, [])
      assert.equal(result.failed, 0)
      assert.ok(result.connections > 100, `only ${result.connections} connections under load`)
    })
  })
}

test('Redis SIGKILLed and restarted under load: no failed handshake, two servers resume each other before and again after', async () => {
  const redis = { current: await startRedis() }
  const ticketLifetime = 3
  const config = {
    ...credentials, mode: 'native', rotationInterval: 1, ticketLifetime,
    redisUrl: redis.current.url, wrapSecret: crypto.randomBytes(32).toString('base64'),
  }
  const servers = []
  try {
    servers.push(await startServer(config), await startServer(config))
    let killed = false
    let restarted = false
    const load = await runLoad({
      ports: servers.map((s) => s.port), ca: cert, clients: 16, durationMs: 14_000, lifetimeSeconds: ticketLifetime,
      async during(elapsed) {
        if (!killed && elapsed > 2000) {
          killed = true
          await redis.current.stop('SIGKILL')
        } else if (!restarted && elapsed > 4000) {
          restarted = true
          redis.current = await startRedis(redis.current.port)
        }
      },
      // Tickets sealed with a server's own keys while Redis was away open only there until
      // they expire; after reconnecting (backoff up to 2 s) and a lifetime, all open anywhere.
      phaseAt: (elapsed) => (elapsed < 2000 ? 'up' : elapsed < 10_000 ? 'outage and recovery' : 'recovered'),
    })
    assert.deepEqual(load.errors, [])
    assert.equal(load.failed, 0)
    const { up, recovered } = load.phases
    assert.ok(up.offeredInsideLifetime > 20 && recovered.offeredInsideLifetime > 50, JSON.stringify(load.phases))
    assert.equal(up.resumedInsideLifetime, up.offeredInsideLifetime, 'before the kill: ' + JSON.stringify(load.phases))
    assert.equal(recovered.resumedInsideLifetime, recovered.offeredInsideLifetime, 'after recovery: ' + JSON.stringify(load.phases))
    for (const server of servers) {
      const report = await server.request('report')
      assert.ok(report.store.redisErrors > 0, 'the outage went unnoticed: ' + JSON.stringify(report.store))
    }
  } finally {
    for (const server of servers) {
      const { code, signal } = await server.stop()
      assert.deepEqual({ code, signal }, { code: 0, signal: null })
    }
    await redis.current.stop()
  }
})
