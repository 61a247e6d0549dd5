'use strict'

// Real Redis topologies for the tests, on 127.0.0.1 in a temp directory each: a Sentinel set
// (a master, its replica, one sentinel) and a Redis Cluster of masters. The sentinel is
// `redis-server --sentinel`: on Debian the `redis-sentinel` package only adds a link to the
// same binary and a system service.

const { spawn, execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { freePort, waitForPort } = require('./fleet.js')

const SENTINEL_MASTER = 'mymaster'
const POLL_MS = 100

function redisCli(port, args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}${stderr}`))
      else resolve(stdout.trim())
    })
  })
}

/** Polls `check` until it returns something truthy; fails after `ms`. */
async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms
  for (;;) {
    const result = await check().catch(() => null)
    if (result) return result
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** Starts processes in one temp directory; stop() ends them all and removes it. */
class Processes {
  constructor(label) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `tls-ticket-keys-${label}-`))
    this.children = []
  }

  redisServer(args) {
    const child = spawn('redis-server', args, { cwd: this.dir, stdio: 'ignore' })
    this.children.push(child)
    return child
  }

  async stop() {
    await Promise.all(this.children.map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return null
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGCONT')
      child.kill('SIGKILL')
      return exited
    }))
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

// No files, and a replica's first sync at once (Redis 7 waits 5 s for more replicas by default).
const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0']

/**
 * A master, a replica of it and one sentinel watching them as 'mymaster'. `failover()` kills
 * the master (SIGKILL: a crash) and resolves once the sentinel has promoted the replica.
 */
async function startSentinel() {
  const procs = new Processes('sentinel')
  try {
    const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()]
    const ports = [masterPort, replicaPort, sentinelPort]
    if (new Set(ports).size !== 3) throw new Error('port clash')
    const master = procs.redisServer(['--port', String(masterPort), '--bind', '127.0.0.1', ...NO_PERSISTENCE])
    procs.redisServer(['--port', String(replicaPort), '--bind', '127.0.0.1', ...NO_PERSISTENCE,
      '--replicaof', '127.0.0.1', String(masterPort)])
    await waitForPort(masterPort)
    await waitForPort(replicaPort)
    await until('the replica to sync', async () => /master_link_status:up/.test(await redisCli(replicaPort, ['info', 'replication'])))
    // The sentinel rewrites its configuration file, so it gets one of its own.
    const config = path.join(procs.dir, 'sentinel.conf')
    fs.writeFileSync(config, [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${procs.dir}`,
      `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
      `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
      '',
    ].join('\n'))
    procs.redisServer([config, '--sentinel'])
    await waitForPort(sentinelPort)
    // A replica the sentinel has only heard of from the master is no candidate for promotion
    // (NOGOODSLAVE) until the sentinel has talked to it and seen its link to the master up.
    await until('the sentinel to know the replica', async () => {
      const fields = (await redisCli(sentinelPort, ['sentinel', 'replicas', SENTINEL_MASTER])).split('\n')
      const field = (name) => fields[fields.indexOf(name) + 1]
      return field('port') === String(replicaPort) && field('flags') === 'slave' && field('master-link-status') === 'ok'
    })
    const masterAddress = async () => Number((await redisCli(sentinelPort, ['sentinel', 'get-master-addr-by-name', SENTINEL_MASTER])).split('\n')[1])
    return {
      name: SENTINEL_MASTER,
      sentinels: [{ host: '127.0.0.1', port: sentinelPort }],
      masterPort,
      replicaPort,
      masterAddress,
      /** Kills the master; resolves with the new master's port once it takes writes. */
      async failover() {
        const exited = new Promise((resolve) => master.once('exit', resolve))
        master.kill('SIGKILL')
        await exited
        const after = await until('the sentinel to promote the replica', async () => {
          const now = await masterAddress()
          return now !== masterPort ? now : null
        })
        await until('the new master to take writes', async () =>
          /role:master/.test(await redisCli(after, ['info', 'replication'])))
        return after
      },
      stop: () => procs.stop(),
    }
  } catch (err) {
    await procs.stop()
    throw err
  }
}

/** A Redis Cluster of `masters` masters and no replicas. */
async function startCluster(masters = 3) {
  const procs = new Processes('cluster')
  try {
    const ports = []
    while (ports.length < masters) {
      const port = await freePort()
      if (!ports.includes(port)) ports.push(port)
    }
    for (const port of ports) {
      procs.redisServer(['--port', String(port), '--bind', '127.0.0.1', ...NO_PERSISTENCE,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', procs.dir])
    }
    for (const port of ports) await waitForPort(port)
    await redisCli(ports[0], ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
    for (const port of ports) {
      await until('the cluster to be ok', async () => /cluster_state:ok/.test(await redisCli(port, ['cluster', 'info'])))
    }
    return {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      ports,
      stop: () => procs.stop(),
    }
  } catch (err) {
    await procs.stop()
    throw err
  }
}

module.exports = { startSentinel, startCluster, redisCli, until }
