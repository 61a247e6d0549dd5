'use strict'

// Secrets stay secret: no key byte in util.inspect, JSON.stringify, error messages, stats(),
// keys(), metrics(), diagnostics channel messages or the output of `check`, and no file
// written by any part of the package.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const diagnosticsChannel = require('node:diagnostics_channel')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { inspect } = require('node:util')
const { TicketKeyRing, RedisKeyStore, SessionCache, attach, inspectTicket } = require('..')
const { tlsServer, listen, close, connect, thrown, cli } = require('../test-support/helpers.js')
const { startRedis } = require('../test-support/fleet.js')

// Two keys whose secrets are easy to recognise in any encoding.
function knownKeys(size) {
  const bytes = Buffer.alloc(2 * size)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff
  return bytes
}

/** The ways a secret could show up in text: hex (plain and as util.inspect prints Buffers), base64, decimal lists. */
function encodings(secret) {
  const hex = secret.toString('hex')
  return [
    hex, hex.toUpperCase(), [...secret.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' '),
    secret.toString('base64').slice(0, 16), secret.toString('base64url').slice(0, 16),
    [...secret.subarray(0, 6)].join(', '), [...secret.subarray(0, 6)].join(','),
  ]
}

/** Every secret (HMAC and AES key, not the public name) of the keys in `layout` bytes. */
function secretsOf(bytes, size) {
  const secrets = []
  for (let at = 0; at < bytes.length; at += size) {
    const half = (size - 16) / 2
    secrets.push(bytes.subarray(at + 16, at + 16 + half), bytes.subarray(at + 16 + half, at + size))
  }
  return secrets
}

function assertNoSecret(text, secrets, where) {
  for (const secret of secrets) {
    for (const form of encodings(secret)) {
      assert.ok(!text.includes(form), `${where} shows key material (${form.slice(0, 8)}…)`)
    }
  }
}

for (const mode of ['native', 'callback']) {
  test(`${mode}: inspect, JSON, stats, keys, metrics, diagnostics messages and check show no key byte`, async () => {
    const size = mode === 'native' ? 80 : 48
    const keys = knownKeys(size)
    const secrets = secretsOf(keys, size)
    const ring = new TicketKeyRing({ keys })
    const server = tlsServer()
    const handle = attach(server, ring, { mode })
    const port = await listen(server)
    const foreign = new TicketKeyRing({ cipher: ring.cipher })
    const foreignServer = tlsServer()
    attach(foreignServer, foreign, { mode })
    const messages = []
    const listeners = ['rotate', 'refused', 'fallback', 'store-error'].map((name) =>
      [`tls-ticket-keys:${name}`, (message) => messages.push(message)])
    for (const [channel, listener] of listeners) diagnosticsChannel.subscribe(channel, listener)
    try {
      const first = await connect(port, { version: 'TLSv1.2' })
      const again = await connect(port, { version: 'TLSv1.2', session: first.session })
      assert.equal(again.reused, true)
      // A refusal and two key changes, published while subscribed.
      const fromForeign = await connect(await listen(foreignServer), { version: 'TLSv1.2' })
      assert.equal((await connect(port, { version: 'TLSv1.2', session: fromForeign.session })).reused, false)
      ring.rotate()
      ring.setTicketKeys(keys.subarray(size))
      assert.deepEqual(messages.map((m) => m.reason ?? 'rotate'), ['unknownKey', 'rotate', 'rotate'])
      const texts = {
        'diagnostics messages (inspect)': inspect(messages, { showHidden: true, depth: Infinity }),
        'diagnostics messages (JSON)': JSON.stringify(messages),
        'inspect(ring)': inspect(ring, { showHidden: true, depth: Infinity, getters: true }),
        'JSON(ring)': JSON.stringify(ring),
        'String(ring)': String(ring),
        'stats()': JSON.stringify(ring.stats()),
        'keys()': inspect(ring.keys(), { depth: Infinity }),
        'metrics()': ring.metrics(),
        'inspect(attachment)': inspect(handle, { showHidden: true, depth: Infinity }),
        'JSON(attachment)': JSON.stringify(handle),
        'attachment.stats()': JSON.stringify(handle.stats()),
        'inspect(server)': inspect(server, { showHidden: true, depth: 6 }),
        'inspectTicket()': inspect(inspectTicket(first.session, ring), { depth: Infinity }),
      }
      for (const [where, text] of Object.entries(texts)) assertNoSecret(text, secrets, where)
      // The names are public and do show, so the test looks where the keys are.
      assert.match(texts['keys()'], new RegExp(keys.subarray(0, 16).toString('hex')))

      for (const args of [[], ['--json'], ['--tls1.2', '-n', '3']]) {
        const { code, stdout, stderr } = await cli(['check', `127.0.0.1:${port}`, '--insecure', ...args])
        assert.equal(code, 0, `${stdout}${stderr}`)
        assertNoSecret(`${stdout}${stderr}`, secrets, `check ${args.join(' ')}`)
      }
    } finally {
      for (const [channel, listener] of listeners) diagnosticsChannel.unsubscribe(channel, listener)
      handle.detach()
      ring.destroy()
      foreign.destroy()
      await Promise.all([close(server), close(foreignServer)])
    }
  })
}

test('callback mode: the key bytes handed to Node are wiped in the next turn of the event loop', async () => {
  const keys = knownKeys(48)
  const ring = new TicketKeyRing({ keys })
  const server = tlsServer()
  const handle = attach(server, ring, { mode: 'callback' })
  try {
    // What Node's C++ side calls for each ticket; it copies the buffers out before returning.
    const callback = server._sharedCreds.context.onticketkeycallback
    const [result, hmac, aes] = callback(Buffer.alloc(16), Buffer.alloc(16), true)
    assert.equal(result, 1)
    assert.deepEqual([Buffer.from(hmac), Buffer.from(aes)], secretsOf(keys.subarray(0, 48), 48))
    await new Promise((resolve) => setImmediate(resolve))
    assert.ok(hmac.every((b) => b === 0) && aes.every((b) => b === 0), 'the key stayed in the JavaScript heap')
  } finally {
    handle.detach()
    ring.destroy()
  }
})

test('demo prints nothing shaped like key material', async () => {
  // Its keys are random, so look for anything key-shaped: long runs of hex or base64.
  const { code, stdout, stderr } = await cli(['demo'])
  const out = `${stdout}${stderr}`
  assert.equal(code, 0, out)
  assert.match(out, /Reused/)
  // Cipher suite names (ECDHE-ECDSA-AES128-GCM-SHA256) are the one long token it prints.
  const text = out.replace(/Cipher is \S+/g, '')
  assert.doesNotMatch(text, /[0-9a-f]{24,}|[0-9A-F]{24,}|[A-Za-z0-9+/_-]{22,}={0,2}/)
})

test('errors about key material never quote it', () => {
  const keys = knownKeys(48)
  const secrets = secretsOf(keys, 48)
  const ring = new TicketKeyRing({ keys })
  const attempts = {
    'keys as hex': () => new TicketKeyRing({ keys: keys.toString('hex') }),
    'keys as base64': () => new TicketKeyRing({ keys: keys.toString('base64') }),
    'keys as an array': () => new TicketKeyRing({ keys: [...keys] }),
    'keys one byte short': () => new TicketKeyRing({ keys: keys.subarray(0, 95) }),
    'secret as hex': () => new TicketKeyRing({ secret: keys.toString('hex') }),
    'secret too short': () => new TicketKeyRing({ secret: keys.subarray(16, 40) }),
    'setTicketKeys as a string': () => ring.setTicketKeys(keys.toString('latin1')),
    'setTicketKeys wrong length': () => ring.setTicketKeys(keys.subarray(0, 50)),
    'setTicketKeys with a zero key': () => ring.setTicketKeys(Buffer.concat([keys.subarray(0, 32), Buffer.alloc(16)])),
    'fromNginx wrong length': () => TicketKeyRing.fromNginx(keys.subarray(0, 47)),
    'fromHaproxy bad line': () => TicketKeyRing.fromHaproxy(`${keys.subarray(0, 47).toString('base64')}\n`),
    'wrapSecret as hex': () => new RedisKeyStore({ wrapSecret: keys.toString('hex') }),
    'wrapSecret too short': () => new RedisKeyStore({ wrapSecret: keys.subarray(16, 32) }),
    'ticket as a string': () => inspectTicket(keys.toString('latin1'), ring),
  }
  for (const [what, attempt] of Object.entries(attempts)) {
    const err = thrown(attempt)
    assert.ok(err.code, `${what}: no code`)
    assertNoSecret(`${err.message}\n${err.stack}\n${inspect(err)}`, secrets, `the error for ${what}`)
  }
  ring.destroy()
})

test('RedisKeyStore and SessionCache show no secret', () => {
  const wrapSecret = knownKeys(48)
  const store = new RedisKeyStore({ url: 'redis://127.0.0.1:1', wrapSecret })
  const cache = new SessionCache()
  for (const [where, text] of Object.entries({
    'inspect(store)': inspect(store, { showHidden: true, depth: 3 }),
    'JSON(store)': JSON.stringify(store) ?? '',
    'store.stats()': JSON.stringify(store.stats()),
    'inspect(cache)': inspect(cache, { showHidden: true, depth: Infinity }),
  })) {
    assertNoSecret(text, [wrapSecret.subarray(0, 16), wrapSecret.subarray(16, 32), wrapSecret.subarray(32, 48)], where)
  }
  return store.close()
})

// The system calls that create, change, rename or remove files, and opens for writing.
const FILE_CHANGES = 'openat,open,creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,truncate,ftruncate,mkdir,mkdirat,unlink,unlinkat'
const WRITE_FLAGS = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/
const HARMLESS = /"\/dev\/(null|tty|pts\/\d+)"/

/** The file changes that `node script` makes, itself and in every child process, by strace. */
function fileChanges(script, env) {
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-strace-')), 'log')
  return new Promise((resolve, reject) => {
    const child = spawn('strace', ['-f', '-qq', '-e', `trace=${FILE_CHANGES}`, '-o', log, process.execPath, ...script],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.on('error', reject)
    child.on('close', (code) => {
      const lines = fs.readFileSync(log, 'utf8').split('\n')
      fs.rmSync(path.dirname(log), { recursive: true, force: true })
      const changes = lines.filter((line) => {
        const call = /^\d+\s+(\w+)\(/.exec(line)
        if (call === null || HARMLESS.test(line)) return false
        return call[1].startsWith('open') ? WRITE_FLAGS.test(line) : true
      })
      resolve({ code, out, changes })
    })
  })
}

const hasStrace = (() => {
  try {
    require('node:child_process').execFileSync('strace', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

test('no part of the package writes a file: every API, both modes, Redis, the command line (strace -f)', { skip: !hasStrace && 'strace is not installed (.ci/run installs it)' }, async () => {
  // The watcher itself: a script that writes a file is caught.
  const probe = await fileChanges(['-e', `require('fs').writeFileSync(require('path').join(require('os').tmpdir(), 'tls-ticket-keys-probe-' + process.pid), 'x')`])
  assert.equal(probe.code, 0, probe.out)
  assert.equal(probe.changes.length, 1, `strace did not see the probe's write:\n${probe.changes.join('\n')}`)
  fs.rmSync(path.join(os.tmpdir(), probe.changes[0].match(/tls-ticket-keys-probe-\d+/)[0]), { force: true })

  const redis = await startRedis()
  try {
    const run = await fileChanges([path.join(__dirname, 'fixtures', 'exercise.js')], { REDIS_URL: redis.url })
    assert.equal(run.code, 0, run.out)
    assert.match(run.out, /exercised/)
    assert.deepEqual(run.changes, [], 'files were written')
  } finally {
    await redis.stop()
  }
})
