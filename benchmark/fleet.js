'use strict'

// Resumption rate through a load balancer: three server processes started with different
// argv behind HAProxy (TCP mode, round-robin, on loopback), for plain Node servers and for
// each way of sharing a ring, across several rotations, and again after every server process
// was killed and started anew. The client offers its newest session each time.
//
//   node benchmark/fleet.js [--connections 200] [--rotation 2]
//
// Needs redis-server and haproxy on the PATH.

const { parseArgs } = require('node:util')
const { startRedis, startHaproxy, startFleet, reconnectThrough } = require('../test-support/fleet.js')

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '200' },
    rotation: { type: 'string', default: '2' },
  },
})
const CONNECTIONS = Number(values.connections)
const ROTATION = Number(values.rotation)
const SPAN_MS = 3.5 * ROTATION * 1000
const WAYS = ['plain', 'secret', 'redis', 'cluster']

function percent(result) {
  const failed = result.failed ? `, ${result.failed} failed` : ''
  return `${(100 * result.rate).toFixed(1)} % (${result.resumed}/${result.resumed + result.full + result.failed}${failed})`
}

async function measure(way, redisUrl) {
  const options = {
    rotationInterval: ROTATION,
    ticketLifetime: 30,
    secret: Buffer.alloc(32, 0x5e).toString('base64'),
    wrapSecret: Buffer.alloc(32, 0x77).toString('base64'),
    redisUrl,
  }
  // While rotating.
  let fleet = await startFleet(way, options)
  let lb = await startHaproxy(fleet.ports)
  const rotating = await reconnectThrough(lb.port, { count: CONNECTIONS, spanMs: SPAN_MS })
  await lb.stop()
  await fleet.stop('SIGKILL')
  // Every process killed and started anew; the client keeps its last session.
  fleet = await startFleet(way, options)
  lb = await startHaproxy(fleet.ports)
  const restarted = await reconnectThrough(lb.port, { count: 1, session: rotating.session })
  await lb.stop()
  await fleet.stop('SIGKILL')
  return { rotating, restartFirst: restarted.firstResumed }
}

async function main() {
  console.log(`resumption through HAProxy (round-robin over 3 processes), ${CONNECTIONS} reconnections ` +
    `over ${SPAN_MS / 1000} s, rotation every ${ROTATION} s, Node ${process.version}\n`)
  console.log(`${'fleet'.padEnd(10)}${'resumed while rotating'.padStart(30)}${'first connection after restart'.padStart(34)}`)
  const redis = await startRedis()
  try {
    for (const way of WAYS) {
      const r = await measure(way, redis.url)
      const label = way === 'plain' ? 'Node' : way === 'cluster' ? 'cluster*' : way
      console.log(`${label.padEnd(10)}${percent(r.rotating).padStart(30)}${(r.restartFirst ? 'resumed' : 'full handshake').padStart(34)}`)
    }
  } finally {
    await redis.stop()
  }
  console.log('\nNode: plain tls.Server processes; cluster*: one primary with three workers behind the balancer')
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
