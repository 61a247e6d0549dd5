'use strict'

// The tls-ticket-keys command line, run as a user would, against servers no one here wrote
// (openssl s_server, with and without tickets) and against a ring.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TicketKeyRing, attach } = require('..')
const { key, cert, tlsServer, listen, close, cli } = require('../test-support/helpers.js')
const { freePort, waitForPort, stopChild } = require('../test-support/fleet.js')

test('generate: fresh keys in every format, to stdout only', async () => {
  const before = fs.readdirSync(process.cwd())
  const b64 = await cli(['generate'])
  assert.equal(b64.code, 0)
  // The default size is the API's (80 bytes where native mode works): cli-fleet.test.js.
  assert.equal(Buffer.from(b64.stdout.toString().trim(), 'base64').length, require('..').generateTicketKeys().length)
  const hex = await cli(['generate', '--size', '80', '--format', 'hex', '--count', '3'])
  const lines = hex.stdout.toString().trim().split('\n')
  assert.equal(lines.length, 3)
  assert.ok(lines.every((l) => /^[0-9a-f]{160}$/.test(l)))
  assert.equal(new Set(lines).size, 3)
  // nginx and HAProxy formats load back through the importers.
  const nginx = await cli(['generate', '--format', 'nginx', '--size', '48'])
  assert.equal(nginx.stdout.length, 48)
  assert.equal(TicketKeyRing.fromNginx(nginx.stdout).getTicketKeys().subarray(0, 16).toString('hex'),
    nginx.stdout.subarray(0, 16).toString('hex'))
  const haproxy = await cli(['generate', '--format', 'haproxy', '--count', '3', '--size', '80'])
  assert.equal(TicketKeyRing.fromHaproxy(haproxy.stdout.toString()).keys().length, 3)
  assert.deepEqual(fs.readdirSync(process.cwd()), before, 'no file written')
  for (const bad of [['generate', '--size', '64'], ['generate', '--format', 'pem'], ['nope'], [], ['check'], ['check', 'host']]) {
    const r = await cli(bad)
    assert.equal(r.code, 2, bad.join(' '))
    assert.match(r.stderr, /Usage:/)
  }
})

async function sServer(port, extra) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-cli-'))
  fs.writeFileSync(path.join(dir, 'key.pem'), key)
  fs.writeFileSync(path.join(dir, 'cert.pem'), cert)
  const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-key', path.join(dir, 'key.pem'),
    '-cert', path.join(dir, 'cert.pem'), '-quiet', ...extra], { stdio: ['pipe', 'ignore', 'ignore'] })
  await waitForPort(port)
  return { dir, stop: async () => { await stopChild(child); fs.rmSync(dir, { recursive: true, force: true }) } }
}

for (const version of ['--tls1.2', '--tls1.3']) {
  test(`check ${version}: openssl s_server resumes (exit 0); with -no_ticket -no_cache it does not (exit 1)`, async () => {
    const port = await freePort()
    const server = await sServer(port, [])
    const portOff = await freePort()
    const off = await sServer(portOff, ['-no_ticket', '-no_cache'])
    try {
      const ca = path.join(server.dir, 'cert.pem')
      const good = await cli(['check', `127.0.0.1:${port}`, '-n', '3', '--servername', 'localhost', '--ca', ca, version])
      const lines = good.stdout.toString().trim().split('\n')
      assert.equal(good.code, 0, good.stdout.toString())
      assert.match(lines[0], /^New, TLSv1\.[23], Cipher is /)
      assert.deepEqual(lines.slice(1, 4).map((l) => l.split(',')[0]), ['Reused', 'Reused', 'Reused'])
      assert.match(lines[4], /^resumed: 3\/3 reconnections \(100 %\)/)
      const bad = await cli(['check', `127.0.0.1:${portOff}`, '-n', '3', '--servername', 'localhost', '--ca', ca, version])
      assert.equal(bad.code, 1, bad.stdout.toString())
      assert.match(bad.stdout.toString(), /not resumed: 0\/3/)
      assert.match(bad.stdout.toString(), /^hint: /m)
      const json = JSON.parse((await cli(['check', `127.0.0.1:${portOff}`, '-n', '2', '--insecure', version, '--json'])).stdout)
      assert.deepEqual([json.ok, json.resumed, json.reconnections], [false, 0, 2])
    } finally {
      await Promise.all([server.stop(), off.stop()])
    }
  })
}

test('check: a ring server resumes, a plain Node server whose key changes does not', async () => {
  const ring = new TicketKeyRing()
  const ours = tlsServer()
  attach(ours, ring)
  // A plain server that rotates with setTicketKeys() on every connection, and has no session
  // cache to fall back on for TLS 1.3.
  const plain = tlsServer({}, () => plain.setTicketKeys(require('node:crypto').randomBytes(48)))
  try {
    const [p1, p2] = [await listen(ours), await listen(plain)]
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-cli-'))
    fs.writeFileSync(path.join(dir, 'ca.pem'), cert)
    try {
      const good = await cli(['check', `127.0.0.1:${p1}`, '--ca', path.join(dir, 'ca.pem'), '--servername', 'localhost'])
      assert.equal(good.code, 0, good.stdout.toString())
      assert.match(good.stdout.toString(), /resumed: 5\/5/)
      const bad = await cli(['check', `127.0.0.1:${p2}`, '--ca', path.join(dir, 'ca.pem'), '--servername', 'localhost', '--tls1.3'])
      assert.equal(bad.code, 1, bad.stdout.toString())
      assert.match(bad.stdout.toString(), /hint: (some )?tickets? refused/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  } finally {
    await Promise.all([close(ours), close(plain)])
    ring.destroy()
  }
})

test('check: an empty host and port 0 are usage errors (exit 2)', async () => {
  for (const target of [':443', 'localhost:0', '127.0.0.1:65536']) {
    const r = await cli(['check', target])
    assert.equal(r.code, 2, target)
    assert.match(r.stderr, /Usage:/, target)
  }
})

test('check: a TLS 1.3 server without tickets gets a hint about session ids, not about keys', async () => {
  const server = tlsServer({ secureOptions: require('node:crypto').constants.SSL_OP_NO_TICKET })
  try {
    const port = await listen(server)
    const r = await cli(['check', `127.0.0.1:${port}`, '-n', '2', '--insecure', '--tls1.3', '--json'])
    assert.equal(r.code, 1)
    const report = JSON.parse(r.stdout.toString())
    assert.equal(report.resumed, 0)
    assert.match(report.hint, /no session tickets/)
    assert.doesNotMatch(report.hint, /keys change/)
  } finally {
    await close(server)
  }
})

test('a reader that stops early (| head) ends the output quietly, exit 0', async () => {
  const { spawn } = require('node:child_process')
  const { once } = require('node:events')
  const child = spawn(process.execPath, [require('node:path').join(__dirname, '..', 'bin', 'tls-ticket-keys.js'), 'generate', '--count', '16', '--size', '80'])
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  // Closed before the command writes: every write meets a closed pipe (EPIPE).
  child.stdout.destroy()
  const [code] = await once(child, 'exit')
  assert.equal(stderr, '')
  assert.equal(code, 0)
})

test('edge takes a secret file as its key source (--print-nginx-config needs no server)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-edge-file-'))
  try {
    const file = path.join(dir, 'secrets')
    fs.writeFileSync(file, `${require('node:crypto').randomBytes(32).toString('base64')}\n`, { mode: 0o600 })
    const bin = path.join(__dirname, '..', 'bin', 'tls-ticket-keys.js')
    const args = ['edge', '--secret-file', file, '--rotation-interval', '60', '--ticket-lifetime', '60', '--nginx-dir', dir, '--print-nginx-config']
    const r = require('node:child_process').spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /ssl_session_ticket_key .*current\.key;/)
    const both = require('node:child_process').spawnSync(process.execPath, [bin, ...args, '--secret-env', 'X'], { encoding: 'utf8' })
    assert.equal(both.status, 2)
    assert.match(both.stderr, /one key source/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
