'use strict'

// new TicketKeyRing({ secretFile }): a fleet's secrets from a mounted file, changed under
// running processes the way the kubelet changes a Secret volume (test-support/k8s-volume.js).
// Real server processes, a real file system, a client that reconnects round-robin.

const { describe, test } = require('node:test')
const assert = require('node:assert/strict')
const { fork, spawn, execFile } = require('node:child_process')
const { once } = require('node:events')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TicketKeyRing, attach } = require('..')
const { key, cert, tlsServer, listen, close, connect, cli } = require('../test-support/helpers.js')
const { createVolume } = require('../test-support/k8s-volume.js')
const { stopChild } = require('../test-support/fleet.js')
const { scan } = require('../test-support/memory-scan.js')

const SERVER = path.join(__dirname, 'fixtures', 'secret-file-server.js')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const fresh = () => crypto.randomBytes(32)
const b64 = (secret) => secret.toString('base64')
const rfc3339 = (seconds) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
/** The fingerprint keys() shows: documented as HKDF-SHA256(salt, secret, label, 8). */
const fingerprint = (secret) =>
  Buffer.from(crypto.hkdfSync('sha256', secret, 'tls-ticket-keys/v1', 'tls-ticket-keys/v1 secret fingerprint', 8)).toString('hex')
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-secret-file-'))

function writeFile(text) {
  const file = path.join(tmp(), 'secrets')
  fs.writeFileSync(file, text)
  return file
}

async function startServer(file, schedule) {
  const child = fork(SERVER, [file], {
    env: { ...process.env, TLS_SECRET_FILE_CONFIG: JSON.stringify({ key: key.toString(), cert: cert.toString(), ...schedule }) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Its warnings are reported over IPC and checked; not printed.
    execArgv: ['--no-warnings'],
  })
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => { throw new Error(`secret file server exited with ${code}`) }),
  ])
  return {
    child,
    port: message.port,
    pid: message.pid,
    async report() {
      child.send('report')
      const [reply] = await once(child, 'message')
      return reply
    },
  }
}

/** The server's report once `ready(report)` holds, or after 5 s (for the assertions to say what is wrong). */
async function reportWhen(server, ready) {
  const deadline = Date.now() + 5000
  for (;;) {
    const report = await server.report()
    if (ready(report) || Date.now() > deadline) return report
    await sleep(100)
  }
}

/**
 * Reconnects round-robin over `ports()` until `until()` says stop, each time offering the
 * newest session. Returns every connection: { at, port, reused } (the first has no session).
 */
async function roundRobin(ports, until, { version = 'TLSv1.3', pauseMs = 40 } = {}) {
  const log = []
  let session
  for (let i = 0; !until(); i++) {
    const list = ports()
    const port = list[i % list.length]
    let r
    try {
      r = await connect(port, { version, session })
    } catch (err) {
      log.push({ at: Date.now(), port, reused: null, error: err.code ?? err.message })
      continue
    }
    log.push({ at: Date.now(), port, reused: r.reused })
    session = r.session ?? session
    await sleep(pauseMs)
  }
  return log
}

describe('the file and the options', () => {
  test('a bare secret derives the keys of { secret }: the two rings resume each other, same session id context', async () => {
    const secret = fresh()
    const file = writeFile(`# a comment\n\n   ${b64(secret)}   \n`)
    const fromFile = new TicketKeyRing({ secretFile: file, scope: 'eu-west' })
    const fromCode = new TicketKeyRing({ secret, scope: 'eu-west' })
    const servers = [tlsServer(), tlsServer()]
    try {
      attach(servers[0], fromFile)
      attach(servers[1], fromCode)
      const [a, b] = [await listen(servers[0]), await listen(servers[1])]
      assert.equal(fromFile.sessionIdContext, fromCode.sessionIdContext)
      assert.deepEqual(fromFile.keys().map((k) => k.name), fromCode.keys().map((k) => k.name))
      assert.ok(fromFile.keys().every((k) => k.secret === fingerprint(secret)), 'keys() names the secret by its fingerprint')
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        for (const [from, to] of [[a, b], [b, a]]) {
          const first = await connect(from, { version })
          assert.equal((await connect(to, { version, session: first.session })).reused, true, `${version} ${from} -> ${to}`)
        }
      }
      const shown = JSON.stringify(fromFile.keys()) + JSON.stringify(fromFile.secrets()) + require('node:util').inspect(fromFile)
      assert.equal(shown.includes(b64(secret).slice(0, 12)), false)
      assert.equal(shown.includes(secret.toString('hex').slice(0, 12)), false)
    } finally {
      for (const s of servers) await close(s)
      fromFile.destroy()
      fromCode.destroy()
    }
  })

  test('refused files: a coded error naming the line, never the secret', () => {
    const good = b64(fresh())
    const other = b64(fresh())
    const short = b64(fresh().subarray(0, 31))
    const cases = [
      ['', /lists no secret/],
      ['# only a comment\n\n', /lists no secret/],
      [`${good}\n${short}\n`, /line 2: .*31 bytes/],
      [`${b64(Buffer.alloc(32))}\n`, /line 1: .*zeros/],
      [`${good.slice(0, 30)}\n`, /line 1: .*base64/],
      [`${good.replace(/\+|\//g, '-')}x\n`, /line 1: .*base64/],
      [`2026-13-01T00:00:00Z ${good}\n`, /line 1: .*RFC 3339/],
      [`yesterday ${good}\n`, /line 1: .*RFC 3339/],
      [`${good}\n# x\n2030-01-01T00:00:00Z ${good}\n`, /line 3: repeats the secret of line 1/],
      [`2030-01-01T00:00:00Z ${good}\n2030-01-01T00:00:00Z ${other}\n`, /line 2: repeats the activation time of line 1/],
      [`${Array.from({ length: 9 }, (_, i) => `${rfc3339(2e9 + i)} ${b64(fresh())}`).join('\n')}\n`, /line 9: .*at most 8/],
      [`2030-01-01T00:00:00Z ${good} extra\n`, /line 1: .*more than/],
    ]
    for (const [text, message] of cases) {
      const file = writeFile(text)
      assert.throws(() => new TicketKeyRing({ secretFile: file }), (err) => {
        assert.equal(err.code, 'ERR_INVALID_ARG_VALUE', text)
        assert.match(err.message, message)
        assert.match(err.message, /options\.secretFile/)
        for (const s of [good, other, short]) assert.equal(err.message.includes(s.slice(0, 10)), false, 'quotes a secret')
        return true
      })
    }
    assert.throws(() => new TicketKeyRing({ secretFile: path.join(tmp(), 'missing') }),
      (err) => err.code === 'ERR_INVALID_ARG_VALUE' && /ENOENT/.test(err.message) && err.cause.code === 'ENOENT')
  })

  test('options: secretFile goes with scope, not with secret, keys or previousSecrets; rotate() and setTicketKeys() are refused', () => {
    const file = writeFile(`${b64(fresh())}\n`)
    for (const extra of [{ secret: fresh() }, { keys: Buffer.alloc(80, 1) }, { previousSecrets: [fresh()] }]) {
      assert.throws(() => new TicketKeyRing({ secretFile: file, ...extra }), { code: 'ERR_INVALID_ARG_VALUE', message: /secretFile/ })
    }
    assert.throws(() => new TicketKeyRing({ secretFile: 7 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => new TicketKeyRing({ secretFile: file, secretFileCheckInterval: 0 }), { code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => new TicketKeyRing({ secretFileCheckInterval: 5 }), { code: 'ERR_INVALID_ARG_VALUE' })
    const ring = new TicketKeyRing({ secretFile: file, scope: 'eu' })
    try {
      assert.throws(() => ring.rotate(), { code: 'ERR_INVALID_STATE', message: /secret add/ })
      assert.throws(() => ring.setTicketKeys(Buffer.alloc(80, 1)), { code: 'ERR_INVALID_STATE' })
      assert.throws(() => new TicketKeyRing({ secret: fresh() }).secrets(), { code: 'ERR_INVALID_STATE' })
    } finally {
      ring.destroy()
    }
  })

  test('metrics: the secrets by state, the one sealing, the file\'s changes, errors and drops', () => {
    const secret = fresh()
    const ring = new TicketKeyRing({ secretFile: writeFile(`${b64(secret)}\n${rfc3339(2e9)} ${b64(fresh())}\n`), name: 'edge' })
    try {
      const text = ring.metrics()
      assert.match(text, /^tls_ticket_keys_secrets\{ring="edge",state="pending"\} 1$/m)
      assert.match(text, /^tls_ticket_keys_secrets\{ring="edge",state="sealing"\} 1$/m)
      assert.match(text, new RegExp(`^tls_ticket_keys_sealing_secret_info\\{ring="edge",secret="${fingerprint(secret)}"\\} 1$`, 'm'))
      assert.match(text, /^tls_ticket_keys_secret_file_errors_total\{ring="edge"\} 0$/m)
      assert.doesNotMatch(new TicketKeyRing({ secret }).metrics(), /^tls_ticket_keys_secrets\{/m, 'no samples for other rings')
    } finally {
      ring.destroy()
    }
  })

  test('the directory watch alone sees a Kubernetes symlink swap; the periodic re-read alone sees a change too', async () => {
    const [a, b, c] = [fresh(), fresh(), fresh()]
    const volume = createVolume(tmp(), { secrets: `${b64(a)}\n` })
    // A re-read once an hour: only the watch of the directory can see the swap in time.
    const watched = new TicketKeyRing({ secretFile: path.join(volume.root, 'secrets'), secretFileCheckInterval: 3600 })
    const file = writeFile(`${b64(a)}\n`)
    const polled = new TicketKeyRing({ secretFile: file, secretFileCheckInterval: 0.2 })
    try {
      volume.update({ secrets: `${b64(a)}\n${rfc3339(2e9)} ${b64(b)}\n` })
      // Written in place, as an editor might: the periodic re-read sees it even if no event came.
      fs.writeFileSync(file, `${b64(a)}\n${rfc3339(2e9)} ${b64(c)}\n`)
      await sleep(800)
      assert.deepEqual(watched.secrets().map((x) => x.fingerprint), [fingerprint(a), fingerprint(b)])
      assert.deepEqual(polled.secrets().map((x) => x.fingerprint), [fingerprint(a), fingerprint(c)])
      assert.equal(watched.stats().secretFileChanges, 1)
    } finally {
      watched.destroy()
      polled.destroy()
    }
    // destroy() stops both: a later change is not read.
    volume.update({ secrets: `${b64(c)}\n` })
    await sleep(300)
    assert.equal(watched.stats === undefined, false)
    assert.throws(() => watched.secrets(), { code: 'ERR_INVALID_STATE' })
  })

  test('inspectTicket() names the secret that sealed a ticket, a listed secret not yet sealing included', async () => {
    const [a, b] = [fresh(), fresh()]
    const fileRing = new TicketKeyRing({ secretFile: writeFile(`${b64(a)}\n${rfc3339(2e9)} ${b64(b)}\n`) })
    const codeRing = new TicketKeyRing({ secret: b })
    const servers = [tlsServer(), tlsServer()]
    const ticketFrom = (port) => new Promise((resolve, reject) => {
      const socket = require('node:tls').connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
        const ticket = socket.getTLSTicket()
        socket.destroy()
        resolve(ticket)
      })
      socket.on('error', reject)
    })
    try {
      attach(servers[0], fileRing)
      attach(servers[1], codeRing)
      const [own, other] = [await ticketFrom(await listen(servers[0])), await ticketFrom(await listen(servers[1]))]
      const { inspectTicket } = require('..')
      const seenOwn = inspectTicket(own, fileRing)
      assert.deepEqual([seenOwn.keyState, seenOwn.secret], ['current', fingerprint(a)])
      const seenOther = inspectTicket(other, fileRing)
      assert.deepEqual([seenOther.keyState, seenOther.secret, seenOther.error], ['previous', fingerprint(b), null])
      assert.equal(seenOther.session.protocol, 'TLSv1.2')
      assert.equal('secret' in inspectTicket(other, codeRing), false, 'other rings say nothing of secrets')
    } finally {
      for (const server of servers) await close(server)
      fileRing.destroy()
      codeRing.destroy()
    }
  })

  test('the watch and its timer never keep a process alive', async () => {
    const file = writeFile(`${b64(fresh())}\n`)
    const started = Date.now()
    const code = await new Promise((resolve) => {
      execFile(process.execPath, ['-e', `new (require(${JSON.stringify(path.join(__dirname, '..'))}).TicketKeyRing)({ secretFile: ${JSON.stringify(file)}, secretFileCheckInterval: 0.1 })`],
        { timeout: 10_000 }, (err) => resolve(err ? err.code ?? err.signal : 0))
    })
    assert.equal(code, 0)
    assert.ok(Date.now() - started < 5000)
  })
})

describe('a fleet on a Kubernetes Secret volume', () => {
  const ROTATION = 2
  const LIFETIME = 6
  const schedule = { rotationInterval: ROTATION, ticketLifetime: LIFETIME, secretFileCheckInterval: 0.25 }

  test('rotation under load, and a process restarted from the new file: every reconnection resumes', async () => {
    const [oldSecret, newSecret] = [fresh(), fresh()]
    const before = `# fleet secrets\n${b64(oldSecret)}\n`
    const volumes = [0, 1, 2].map(() => createVolume(tmp(), { secrets: before }))
    const servers = []
    let restarted = null
    try {
      for (const v of volumes) servers.push(await startServer(path.join(v.root, 'secrets'), schedule))
      const ports = () => servers.map((s) => s.port)
      let stop = false
      const load = roundRobin(ports, () => stop)
      await sleep(1000)
      // The new secret, activating about 6 s ahead, on an epoch boundary; the copies change 0, 2
      // and 4 s apart, the last one 0.3 s after the boundary before the activation, when every
      // ring has already made its next key (the activation's epoch's) from the old secret: that
      // one must be made again from the new secret.
      const activation = Math.ceil((Date.now() / 1000 + 6.5) / ROTATION) * ROTATION
      const takeover = activation
      const dropAt = takeover + LIFETIME
      const after = `${before}${rfc3339(activation)} ${b64(newSecret)}\n`
      for (const [i, v] of volumes.entries()) {
        await sleep((activation - 6 + 2 * i + 0.3) * 1000 - Date.now())
        v.update({ secrets: after })
      }
      // Sealing with the new secret from the activation on, the last copy's too.
      await sleep(Math.max(0, takeover * 1000 - Date.now() + 300))
      for (const s of servers) {
        const report = await s.report()
        assert.equal(report.keys.find((k) => k.state === 'current').secret, fingerprint(newSecret), `${s.port} seals with the new secret`)
      }
      // A pre-change session, and a process started after the change from the new file.
      const oldSession = (await connect(servers[0].port, { version: 'TLSv1.2' }))
      const restartVolume = createVolume(tmp(), { secrets: after })
      restarted = await startServer(path.join(restartVolume.root, 'secrets'), schedule)
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        for (const s of servers) {
          const theirs = await connect(s.port, { version })
          assert.equal((await connect(restarted.port, { version, session: theirs.session })).reused, true, `${version}: the new process resumes ${s.port}'s`)
          const its = await connect(restarted.port, { version })
          assert.equal((await connect(s.port, { version, session: its.session })).reused, true, `${version}: ${s.port} resumes the new process's`)
        }
      }
      assert.equal((await connect(restarted.port, { version: 'TLSv1.2', session: oldSession.session })).reused, true)
      // On until a second after the old secret is dropped.
      await sleep(Math.max(0, dropAt * 1000 - Date.now() + 1500))
      stop = true
      const log = await load
      const reconnections = log.slice(1)
      const phase = (from, to) => reconnections.filter((c) => c.at >= from * 1000 && c.at < to * 1000)
      assert.ok(phase(0, activation).length > 20, 'reconnections before the activation')
      assert.ok(phase(activation, takeover + 1).length > 3, 'reconnections across it')
      assert.ok(phase(dropAt, Infinity).length > 5, 'reconnections after the old secret is dropped')
      assert.deepEqual(reconnections.filter((c) => c.reused !== true), [], 'every reconnection resumed')
      const newPrint = fingerprint(newSecret)
      const oldPrint = fingerprint(oldSecret)
      for (const s of [...servers, restarted]) {
        const report = await s.report()
        assert.equal(report.keys.find((k) => k.state === 'current').secret, newPrint, 'seals with the new secret')
        assert.ok(report.keys.every((k) => k.secret === newPrint), 'no key of the old secret is held')
        assert.deepEqual(report.secrets.map((x) => [x.fingerprint, x.state]), [[newPrint, 'sealing']])
        assert.equal(report.stats.secretFileErrors, 0)
        if (s === restarted) continue
        assert.ok(report.seen.secret.some((m) => m.event === 'takeover' && m.secret === newPrint && m.previous === oldPrint), 'takeover published')
        assert.ok(report.seen.secret.some((m) => m.event === 'dropped' && m.secret === oldPrint && m.line === 2), 'drop published')
        assert.equal(report.seen.warnings.filter((w) => w.code === 'TLS_TICKET_SECRET_DROPPED').length, 1)
        assert.equal(report.stats.secretFileChanges, 1)
        assert.equal(report.stats.unknownKey, 0)
      }
    } finally {
      for (const s of servers) await stopChild(s.child)
      if (restarted) await stopChild(restarted.child)
    }
  })

  test('bad changes (empty, truncated, garbage, missing, a refused line) keep every process on its last good secrets', async () => {
    const [a, b] = [fresh(), fresh()]
    const good = `${b64(a)}\n`
    const volumes = [0, 1].map(() => createVolume(tmp(), { secrets: good }))
    const servers = []
    try {
      for (const v of volumes) servers.push(await startServer(path.join(v.root, 'secrets'), schedule))
      const later = rfc3339(Math.ceil(Date.now() / 1000) + 3600)
      const next = `${good}${later} ${b64(b)}\n`
      const bad = [
        ['empty', { secrets: '' }],
        ['truncated', { secrets: next.slice(0, next.length - 20) }],
        ['garbage', { secrets: crypto.randomBytes(200) }],
        ['missing', {}],
        ['a refused line', { secrets: `${good}${later} ${b64(a.subarray(0, 20))}\n` }],
      ]
      const log = []
      let session
      for (const [i, [what, files]] of bad.entries()) {
        for (const v of volumes) v.update(files)
        for (const s of servers) await reportWhen(s, (r) => r.stats.secretFileErrors === i + 1)
        for (let n = 0; n < 6; n++) {
          const r = await connect(servers[n % 2].port, { session })
          log.push({ what, reused: r.reused })
          session = r.session
        }
        for (const s of servers) {
          const report = await s.report()
          assert.equal(report.stats.secretFileErrors, i + 1, `${what}: counted`)
          assert.equal(report.seen.storeError.length, i + 1, `${what}: published`)
          assert.equal(report.seen.storeError[i].operation, 'secretFile')
          assert.equal(report.seen.secret.filter((m) => m.event === 'refused').length, i + 1, `${what}: on tls-ticket-keys:secret`)
          assert.deepEqual(report.secrets.map((x) => x.fingerprint), [fingerprint(a)], `${what}: last good secrets kept`)
        }
      }
      assert.deepEqual(log.slice(1).filter((c) => c.reused !== true), [], 'every handshake resumed')
      // The next good version is taken.
      for (const v of volumes) v.update({ secrets: next })
      for (const s of servers) {
        const report = await reportWhen(s, (r) => r.stats.secretFileChanges === 1)
        assert.deepEqual(report.secrets.map((x) => [x.fingerprint, x.state]), [[fingerprint(a), 'sealing'], [fingerprint(b), 'pending']])
        const codes = report.seen.warnings.map((w) => w.code)
        assert.deepEqual(codes, ['TLS_TICKET_SECRET_FILE_REFUSED', 'TLS_TICKET_SECRET_FILE_RECOVERED'], 'one warning, then one when good again')
        assert.ok(report.seen.warnings.every((w) => !w.message.includes(b64(b).slice(0, 10))))
        assert.equal(report.stats.secretFileChanges, 1)
        const read = report.seen.secret.filter((m) => m.event === 'read')
        assert.deepEqual(read.map((m) => m.added), [[fingerprint(b)]], 'the good version published')
      }
    } finally {
      for (const s of servers) await stopChild(s.child)
    }
  })
})

let canScan = false
try {
  fs.accessSync(`/proc/${process.pid}/mem`, fs.constants.R_OK)
  canScan = true
} catch {}

test('a dropped secret is gone from the process memory (procfs scan)', { skip: !canScan && 'no /proc/<pid>/mem' }, async () => {
  const [a, b] = [fresh(), fresh()]
  // HKDF-Extract with the ring's salt (src/derive.rs): what derives every key of a secret.
  const prk = (s) => crypto.createHmac('sha256', 'tls-ticket-keys/v1').update(s).digest()
  const needles = [['prk a', prk(a)], ['prk b', prk(b)], ['secret a', a], ['secret b', b], ['base64 a', Buffer.from(b64(a))]]
  const activation = Math.ceil(Date.now() / 1000) + 2
  const volume = createVolume(tmp(), { secrets: `${b64(a)}\n${rfc3339(activation)} ${b64(b)}\n` })
  const server = await startServer(path.join(volume.root, 'secrets'), { rotationInterval: 1, ticketLifetime: 2, secretFileCheckInterval: 0.2 })
  // And the HMAC and AES keys of the epoch that seals the first ticket (src/derive.rs: HKDF
  // with the label, the cipher and the epoch as info; 80-byte layout: name | hmac | aes).
  const epochKeys = (secret, epoch) => {
    const info = Buffer.concat([Buffer.from('tls-ticket-keys/v1 key secrets'), Buffer.from('aes-256-cbc'), Buffer.alloc(8)])
    info.writeBigUInt64BE(BigInt(epoch), info.length - 8)
    const material = Buffer.from(crypto.hkdfSync('sha256', secret, 'tls-ticket-keys/v1', info, 64))
    return [material.subarray(0, 32), material.subarray(32)]
  }
  try {
    const epoch = Math.floor(Date.now() / 1000)
    await connect(server.port, { version: 'TLSv1.2' })
    const [hmac, aes] = epochKeys(a, epoch)
    needles.push(['hmac key a', hmac], ['aes key a', aes])
    const before = scan(server.pid, needles).sort()
    const deadline = Date.now() + 15_000
    let report
    do {
      await sleep(300)
      report = await server.report()
    } while (report.secrets.length > 1 && Date.now() < deadline)
    assert.equal(report.secrets.length, 1, 'the old secret was dropped')
    await connect(server.port, { version: 'TLSv1.2' })
    const after = scan(server.pid, needles).sort()
    assert.deepEqual(before, ['aes key a', 'hmac key a', 'prk a', 'prk b'], 'the scan finds them while they live (the control); no copy of a secret or its text')
    assert.deepEqual(after, ['prk b'], 'the dropped secret and its keys are gone, the live one is there')
  } finally {
    await stopChild(server.child)
  }
})

describe('tls-ticket-keys secret add', () => {
  test('writes a file the ring takes, with the activation asked, atomically and 0600; prunes; refuses a short --activate-in', async () => {
    const dir = tmp()
    const file = path.join(dir, 'secrets')
    const first = await cli(['secret', 'add', file, '--activate-in', '10m'])
    assert.equal(first.code, 0, first.stderr)
    const now = Date.now() / 1000
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    const at = rfc3339(Math.floor(now) + 7200)
    const second = await cli(['secret', 'add', file, '--at', at])
    assert.equal(second.code, 0, second.stderr)
    assert.deepEqual(fs.readdirSync(dir), ['secrets'], 'no temporary file left')
    const ring = new TicketKeyRing({ secretFile: file })
    try {
      const secrets = ring.secrets()
      assert.equal(secrets.length, 2)
      assert.ok(Math.abs(secrets[0].activatesAt.getTime() / 1000 - (now + 600)) <= 2, '--activate-in 10m')
      assert.equal(secrets[1].activatesAt.toISOString().replace('.000', ''), at, '--at')
      assert.match(second.stderr, new RegExp(`added secret ${secrets[1].fingerprint}`))
    } finally {
      ring.destroy()
    }
    const text = fs.readFileSync(file, 'utf8')
    const short = await cli(['secret', 'add', file, '--activate-in', '30s'])
    assert.equal(short.code, 2)
    assert.match(short.stderr, /under 2 minutes.*--force/)
    assert.equal(fs.readFileSync(file, 'utf8'), text, 'unchanged')
    assert.equal((await cli(['secret', 'add', file, '--activate-in', '30s', '--force'])).code, 0)
    assert.equal((await cli(['secret', 'add', file, '--activate-in', '10m', '--at', at])).code, 2)
    assert.equal((await cli(['secret', 'nope', file])).code, 2)
    // Pruning: a secret whose successor took over more than a ticket lifetime ago opens nothing.
    const [old, recent] = [b64(fresh()), b64(fresh())]
    const prunable = writeFile(`# keep me\n${old}\n${rfc3339(Math.floor(now) - 3 * 3600)} ${recent}\n`)
    const pruned = await cli(['secret', 'add', prunable, '--ticket-lifetime', '7200', '--rotation-interval', '3600'])
    assert.equal(pruned.code, 0, pruned.stderr)
    const lines = fs.readFileSync(prunable, 'utf8').trim().split('\n')
    assert.equal(lines[0], '# keep me')
    assert.equal(lines.some((l) => l.includes(old)), false, 'pruned')
    assert.ok(lines.some((l) => l.includes(recent)))
    assert.equal(lines.length, 3)
    assert.match(pruned.stderr, /pruned line 2/)
    // A refused file is left alone.
    const refused = writeFile('not base64!\n')
    const r = await cli(['secret', 'add', refused])
    assert.equal(r.code, 1)
    assert.equal(fs.readFileSync(refused, 'utf8'), 'not base64!\n')
  })

  test('secret add - reads standard input and writes standard output', async () => {
    const input = `${b64(fresh())}\n`
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'tls-ticket-keys.js'), 'secret', 'add', '-', '--activate-in', '5m'],
      { stdio: ['pipe', 'pipe', 'pipe'] })
    child.stdin.end(input)
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    const [code] = await once(child, 'close')
    assert.equal(code, 0)
    assert.ok(out.startsWith(input))
    const file = writeFile(out)
    const ring = new TicketKeyRing({ secretFile: file })
    try {
      assert.deepEqual(ring.secrets().map((s) => s.state), ['sealing', 'pending'])
    } finally {
      ring.destroy()
    }
  })
})

describe('from an outside review', () => {
  test('secrets longer than 32 bytes, at construction and in a change, derive what { secret } derives', async () => {
    const dir = tmp()
    const file = path.join(dir, 'secrets')
    try {
      const [long, longer] = [crypto.randomBytes(48), crypto.randomBytes(64)]
      fs.writeFileSync(file, `${b64(long)}\n`)
      const ring = new TicketKeyRing({ secretFile: file, secretFileCheckInterval: 0.05 })
      const same = new TicketKeyRing({ secret: long })
      try {
        const current = (r) => r.keys().find((k) => k.state === 'current').name
        assert.equal(current(ring), current(same))
        fs.writeFileSync(file, `${b64(long)}\n${rfc3339(Math.floor(Date.now() / 1000) + 86400)} ${b64(longer)}\n`)
        for (let i = 0; i < 100 && ring.secrets().length < 2; i++) await sleep(20)
        assert.equal(ring.secrets().length, 2, 'the change with a 64-byte secret was taken')
        assert.equal(ring.stats().secretFileErrors, 0)
      } finally {
        ring.destroy()
        same.destroy()
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a FIFO or a device at the path is refused, never read', { skip: process.platform === 'win32' }, () => {
    const dir = tmp()
    try {
      const fifo = path.join(dir, 'fifo')
      require('node:child_process').execFileSync('mkfifo', [fifo])
      for (const file of [fifo, '/dev/zero']) {
        assert.throws(() => new TicketKeyRing({ secretFile: file }), { code: 'ERR_INVALID_ARG_VALUE', message: /not a regular file/ })
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test('secret add through a symlink writes the file it points at; --at in the past is refused', async () => {
    const dir = tmp()
    const volume = createVolume(path.join(dir, 'volume'), { secrets: `${b64(fresh())}\n` })
    try {
      const link = path.join(volume.root, 'secrets')
      assert.ok(fs.lstatSync(link).isSymbolicLink())
      const added = await cli(['secret', 'add', link, '--activate-in', '10m'])
      assert.equal(added.code, 0, added.stderr)
      assert.ok(fs.lstatSync(link).isSymbolicLink(), 'the link is still a link')
      assert.equal(fs.readFileSync(link, 'utf8').trim().split('\n').length, 2)
      const past = await cli(['secret', 'add', link, '--at', '2020-01-01T00:00:00Z'])
      assert.equal(past.code, 2)
      assert.match(past.stderr, /in the past/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
