'use strict'

// The command line where a fleet needs it: `check A B [C...]` (who resumes whose session),
// `inspect FILE` (a session openssl saved), generate's default size, the hints of a
// self-signed server and of a missing openssl. Real servers on loopback.

const test = require('node:test')
const assert = require('node:assert/strict')
const { randomBytes } = require('node:crypto')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TicketKeyRing, attach, generateTicketKeys, inspectSession } = require('..')
const { cert, tlsServer, listen, close, cli, HOST } = require('../test-support/helpers.js')
const { CIPHER_SUITES } = require('../lib/cipher-suites.js')

const CLI = path.join(__dirname, '..', 'bin', 'tls-ticket-keys.js')

/** Ring servers (each its own ring from `secret`, as separate processes would have) and plain ones. */
async function servers(kinds) {
  const list = []
  for (const kind of kinds) {
    const server = tlsServer()
    let ring = null
    if (kind !== 'plain') {
      ring = new TicketKeyRing({ secret: kind })
      attach(server, ring)
    }
    list.push({ server, ring, port: await listen(server) })
  }
  return list
}

async function closeAll(list) {
  for (const { server, ring } of list) {
    await close(server)
    ring?.destroy()
  }
}

function withCa(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-cli-fleet-'))
  const ca = path.join(dir, 'ca.pem')
  fs.writeFileSync(ca, cert)
  return fn(ca, dir).finally(() => fs.rmSync(dir, { recursive: true, force: true }))
}

test('check A B: two ring servers sharing a secret resume each other\'s sessions, TLS 1.2 and 1.3 (exit 0)', async () => {
  const secret = randomBytes(32)
  const list = await servers([secret, secret])
  try {
    await withCa(async (ca) => {
      const r = await cli(['check', `${HOST}:${list[0].port}`, `${HOST}:${list[1].port}`, '--ca', ca])
      const out = r.stdout.toString()
      assert.equal(r.code, 0, out + r.stderr)
      for (const version of ['TLSv1.2', 'TLSv1.3']) assert.match(out, new RegExp(`^${version.replace('.', '\\.')}$`, 'm'))
      assert.equal(out.match(/^ {2}\[\d\] \S+\s+Reused\s+Reused$/gm).length, 4, out)
      assert.match(out, /^resumed: 8\/8 offers resumed$/m)
      assert.doesNotMatch(out, /hint:/)
      const json = await cli(['check', `${HOST}:${list[0].port}`, `${HOST}:${list[1].port}`, '--ca', ca, '--json', '--tls1.3'])
      const report = JSON.parse(json.stdout.toString())
      assert.equal(json.code, 0)
      assert.deepEqual(Object.keys(report.versions), ['TLSv1.3'])
      assert.equal(report.pairs, 4)
      assert.ok(report.versions['TLSv1.3'].flat().every((c) => c.reused))
    })
  } finally {
    await closeAll(list)
  }
})

test('check A B: a ring server and a plain one do not resume each other (exit 1), with the hint of each refusal', async () => {
  const list = await servers([randomBytes(32), 'plain'])
  try {
    await withCa(async (ca) => {
      const r = await cli(['check', `${HOST}:${list[0].port}`, `${HOST}:${list[1].port}`, '--ca', ca])
      const out = r.stdout.toString()
      assert.equal(r.code, 1, out + r.stderr)
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        // Each server resumes its own session (the diagonal), neither resumes the other's.
        const block = out.split(`${version}\n`)[1].split('\n').slice(1, 3)
        assert.match(block[0], /^ {2}\[1\] \S+\s+Reused\s+New$/, out)
        assert.match(block[1], /^ {2}\[2\] \S+\s+New\s+Reused$/, out)
      }
      assert.match(out, /^not resumed: 4\/8 offers resumed$/m)
      const hint = out.split('\n').find((l) => l.startsWith('hint:'))
      assert.match(hint, /TLSv1\.2 \[1\] -> \[2\], TLSv1\.2 \[2\] -> \[1\], TLSv1\.3 \[1\] -> \[2\], TLSv1\.3 \[2\] -> \[1\]: ticket refused/)
      assert.match(hint, /key that sealed/)
      assert.match(hint, /expired/)
      assert.match(hint, /session id contexts differ/)
    })
  } finally {
    await closeAll(list)
  }
})

test('check: usage errors exit 2', async () => {
  for (const args of [['check', 'a:1', 'b'], ['check', 'a:1', 'b:2', '-n', '3'], ['check', 'a:1', 'b:70000'], ['check', 'a:1', 'b:2', '--tls1.2', '--tls1.3'],
    ['check', 'a:1', 'b:2', '--ca', '/nonexistent/ca.pem'], ['check', ...Array.from({ length: 17 }, (_, i) => `h:${i + 1}`)],
    ['inspect'], ['inspect', '/nonexistent/session.pem'], ['inspect', 'a', 'b']]) {
    const r = await cli(args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /Usage:/)
  }
})

test('check against a self-signed server: the hint names --ca and --insecure, and --insecure checks it', async () => {
  const list = await servers([randomBytes(32)])
  try {
    const r = await cli(['check', `${HOST}:${list[0].port}`, '-n', '1'])
    assert.equal(r.code, 1)
    const hint = r.stdout.toString().split('\n').find((l) => l.startsWith('hint:'))
    assert.match(hint, /self-signed certificate/)
    assert.match(hint, /--ca FILE/)
    assert.match(hint, /--insecure/)
    const insecure = await cli(['check', `${HOST}:${list[0].port}`, '-n', '1', '--insecure'])
    assert.equal(insecure.code, 0, insecure.stdout.toString())
  } finally {
    await closeAll(list)
  }
})

test('generate: the default size is generateTicketKeys()\'s, and what a default ring takes', async () => {
  const r = await cli(['generate'])
  assert.equal(r.code, 0)
  const generated = Buffer.from(r.stdout.toString().trim(), 'base64')
  assert.equal(generated.length, generateTicketKeys().length)
  const ring = new TicketKeyRing()
  try {
    ring.setTicketKeys(generated)
  } finally {
    ring.destroy()
  }
  const nginx = await cli(['generate', '--format', 'nginx'])
  assert.equal(nginx.stdout.length, generateTicketKeys().length)
})

/** `openssl s_client -sess_out` against a server, in PEM; and its DER from `openssl sess_id`. */
function opensslSession(port, ca, dir, version) {
  const pem = path.join(dir, `session-${version}.pem`)
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `${HOST}:${port}`, `-${version}`, '-CAfile', ca, '-sess_out', pem],
      { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let ended = false
    const quit = () => {
      if (!ended) child.stdin.end()
      ended = true
    }
    child.stdin.on('error', () => {})
    child.stdout.on('data', (d) => {
      out += d
      // TLS 1.3 tickets come after the handshake: quit once one is written.
      const done = version === 'tls1_3' ? /Post-Handshake New Session Ticket/ : /Verify return code/
      if (done.test(out) && fs.existsSync(pem) && fs.statSync(pem).size > 0) quit()
    })
    child.on('error', reject)
    child.on('close', () => {
      if (!fs.existsSync(pem)) return reject(new Error(`openssl wrote no session:\n${out}`))
      const der = path.join(dir, `session-${version}.der`)
      const conv = spawnSync('openssl', ['sess_id', '-in', pem, '-outform', 'DER', '-out', der])
      if (conv.status !== 0) return reject(new Error(String(conv.stderr)))
      resolve({ pem, der })
    })
    setTimeout(quit, 5000).unref()
  })
}

test('inspect FILE: a session openssl saved, in PEM and in DER, with the cipher suite\'s name and number', async () => {
  const list = await servers([randomBytes(32)])
  try {
    await withCa(async (ca, dir) => {
      for (const [flag, protocol] of [['tls1_2', 'TLSv1.2'], ['tls1_3', 'TLSv1.3']]) {
        const { pem, der } = await opensslSession(list[0].port, ca, dir, flag)
        const info = inspectSession(fs.readFileSync(der))
        assert.equal(info.protocol, protocol)
        assert.match(info.cipherName, /^TLS_/)
        assert.equal(info.cipherName, CIPHER_SUITES.get(info.cipherSuite))
        for (const file of [pem, der]) {
          const r = await cli(['inspect', file])
          const out = r.stdout.toString()
          assert.equal(r.code, 0, r.stderr)
          assert.match(out, new RegExp(`^protocol +${protocol.replace('.', '\\.')}$`, 'm'))
          const hex = `0x${info.cipherSuite.toString(16).padStart(4, '0').toUpperCase()}`
          assert.match(out, new RegExp(`^cipher suite +${info.cipherName} \\(${hex}\\)$`, 'm'))
          assert.match(out, /^ticket +\d+ bytes, key name [0-9a-f]{32}$/m)
          const json = JSON.parse((await cli(['inspect', file, '--json'])).stdout.toString())
          assert.equal(json.cipherName, info.cipherName)
        }
      }
      const garbage = path.join(dir, 'garbage')
      fs.writeFileSync(garbage, randomBytes(64))
      const r = await cli(['inspect', garbage])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /is not an SSL session in PEM or DER \(ERR_/)
    })
  } finally {
    await closeAll(list)
  }
})

test('inspectSession(): the standard name beside the number, as a live socket names it', async () => {
  const list = await servers([randomBytes(32)])
  try {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3']) {
      const { session, standardName } = await new Promise((resolve, reject) => {
        const socket = require('node:tls').connect({ host: HOST, port: list[0].port, ca: cert, servername: 'localhost', maxVersion })
        let session = null
        const done = () => {
          if (!session || !socket.getCipher()) return
          resolve({ session, standardName: socket.getCipher().standardName })
          socket.destroy()
        }
        socket.on('session', (s) => {
          session = s
          done()
        })
        socket.on('secureConnect', done)
        socket.on('data', () => {})
        socket.on('error', reject)
      })
      assert.equal(inspectSession(session).cipherName, standardName)
    }
  } finally {
    await closeAll(list)
  }
})

test('the cipher suite table says what OpenSSL says', () => {
  const listing = spawnSync('openssl', ['ciphers', '-V', '-stdname', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], { encoding: 'utf8' }).stdout
  const openssl = new Map(listing.trim().split('\n').map((line) => {
    const [bytes, , name] = line.trim().split(/\s+/)
    return [parseInt(bytes.replace(/0x|,/g, ''), 16), name]
  }))
  assert.ok(CIPHER_SUITES.size >= 30)
  for (const [number, name] of CIPHER_SUITES) assert.equal(openssl.get(number), name, `0x${number.toString(16)}`)
})

test('demo without openssl on PATH: says what is missing and how to get it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-no-openssl-'))
  try {
    const r = spawnSync(process.execPath, [CLI, 'demo'], { env: { ...process.env, PATH: dir }, encoding: 'utf8' })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /the openssl command is not on PATH/)
    assert.match(r.stderr, /apt-get install openssl/)
    assert.doesNotMatch(r.stderr, /spawnSync openssl ENOENT/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
