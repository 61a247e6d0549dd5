'use strict'

// Every JavaScript block of README.md, run as a reader would run it: extracted into a file of
// a project where `tls-ticket-keys` resolves to this package (through its exports map), with
// only certificates, ports and a secret file filled in (fixtures/readme-harness.js). The certificates are the
// reader's own: key.pem and cert.pem in the project's folder for the quick start, which reads
// them, and `key` and `cert` for the later blocks, which use them as the quick start defined
// them. A block that throws, rejects, serves no TLS on a port it listens on, or does not shut
// down on SIGTERM fails.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawn, spawnSync } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const https = require('node:https')
const os = require('node:os')
const path = require('node:path')
const { key, cert } = require('../test-support/helpers.js')
const { startSentinel, startCluster } = require('../test-support/redis-topologies.js')

const ROOT = path.join(__dirname, '..')
const HARNESS = path.join(__dirname, 'fixtures', 'readme-harness.js')
const SETTLE_MS = 2500
const BLOCK_TIMEOUT_MS = 30_000

/** The ```js blocks of a Markdown text, with the line each starts on. */
function jsBlocks(markdown) {
  const blocks = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```js') continue
    const start = i + 1
    while (i + 1 < lines.length && lines[i + 1].trim() !== '```') i++
    blocks.push({ line: start + 1, code: lines.slice(start, i + 1).join('\n') })
    i++
  }
  return blocks
}

/** A certificate for example.com, signed by itself: the client example's server. */
function exampleCertificate() {
  const out = execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', '-', '-out', '-', '-days', '2', '-subj', '/CN=example.com', '-addext', 'subjectAltName=DNS:example.com',
  ], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] })
  const block = (label) => out.match(new RegExp(`-----BEGIN ${label}-----[^-]+-----END ${label}-----\\n`))[0]
  return { key: block('PRIVATE KEY'), cert: block('CERTIFICATE') }
}

async function startRedis() {
  const server = require('node:net').createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') return { redis, port }
    await new Promise((r) => setTimeout(r, 50))
  }
  redis.kill()
  throw new Error('redis-server did not start')
}

test('the README\'s first JavaScript block, the quick start, defines the key and cert the others use', () => {
  const [first, ...rest] = jsBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'))
  assert.match(first.code, /^const key = fs\.readFileSync\('key\.pem'\)/m)
  assert.match(first.code, /^const cert = fs\.readFileSync\('cert\.pem'\)/m)
  assert.ok(rest.some((block) => /\{ key, cert \}/.test(block.code)))
})

const haveRedis = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0

test('every JavaScript block of README.md runs', async (t) => {
  const blocks = jsBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'))
  assert.ok(blocks.length >= 7, `found ${blocks.length} blocks`)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-readme-'))
  const example = exampleCertificate()
  const exampleServer = https.createServer(example, (req, res) => res.end('hello\n'))
  exampleServer.on('tlsClientError', () => {})
  let redis = null
  // A Sentinel set and a Redis Cluster, started for the first block that names their ports.
  const topologies = { sentinel: null, cluster: null }
  try {
    // A project in which require('tls-ticket-keys') is this package, as npm would link it,
    // beside the optional peer a reader installs to use registerMetrics().
    fs.mkdirSync(path.join(tmp, 'node_modules'))
    fs.symlinkSync(ROOT, path.join(tmp, 'node_modules', 'tls-ticket-keys'))
    // and undici, the optional peer dependency the fetch example uses.
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'undici'), path.join(tmp, 'node_modules', 'undici'))
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'prom-client'), path.join(tmp, 'node_modules', 'prom-client'))
    // and the Redis clients a reader passes to RedisKeyStore.
    for (const name of ['redis', 'ioredis']) fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(tmp, 'node_modules', name))
    fs.writeFileSync(path.join(tmp, 'example-ca.pem'), example.cert)
    fs.writeFileSync(path.join(tmp, 'key.pem'), key)
    fs.writeFileSync(path.join(tmp, 'cert.pem'), cert)
    // and the secret file a reader mounts.
    fs.writeFileSync(path.join(tmp, 'secrets'), `${require('node:crypto').randomBytes(32).toString('base64')}\n`)
    exampleServer.listen(0, '127.0.0.1')
    await once(exampleServer, 'listening')
    const examplePort = exampleServer.address().port
    if (haveRedis || process.env.CI) redis = await startRedis()

    for (const [i, block] of blocks.entries()) {
      const needsRedis = /redis:\/\/|port: 26379\b|port: 700[0-2]\b/.test(block.code)
      await t.test(`README.md line ${block.line}`, { skip: needsRedis && !redis && 'no redis-server' }, async () => {
        if (/port: 26379\b/.test(block.code)) topologies.sentinel ??= await startSentinel()
        if (/port: 700[0-2]\b/.test(block.code)) topologies.cluster ??= await startCluster(3)
        // Filling in ports: servers listen on a free port, clients find example.com's, Redis
        // clients the Sentinel and the Cluster this test started.
        const code = block.code
          .replace(/port: 26379\b/g, () => `port: ${topologies.sentinel.sentinels[0].port}`)
          .replace(/port: 700([0-2])\b/g, (_, n) => `port: ${topologies.cluster.ports[Number(n)]}`)
          .replace(/\.listen\(443\)/g, '.listen(0)')
          .replace(/'\/etc\/tls-ticket-keys\/secrets'/g, () => JSON.stringify(path.join(tmp, 'secrets')))
          .replace(/redis:\/\/127\.0\.0\.1:6379/g, () => `redis://127.0.0.1:${redis.port}`)
          .replace(/port: 443\b/g, `port: ${examplePort}`)
          .replace(/https:\/\/example\.com\//g, `https://example.com:${examplePort}/`)
        const file = path.join(tmp, `block-${i}.js`)
        // Filling in certificates: the reader's own key and cert, unless the block reads them itself.
        const definesCertificates = /^\s*(const|let|var)\s+(key|cert)\b/m.test(code)
        const certificates = definesCertificates ? '' : 'const key = process.env.README_KEY, cert = process.env.README_CERT\n'
        fs.writeFileSync(file, `${certificates}${code}\n`)
        const child = spawn(process.execPath, ['--require', HARNESS, file], {
          cwd: tmp,
          env: {
            ...process.env, README_KEY: key.toString(), README_CERT: cert.toString(), README_SETTLE_MS: String(SETTLE_MS),
            NODE_EXTRA_CA_CERTS: path.join(tmp, 'example-ca.pem'),
          },
        })
        let output = ''
        child.stdout.on('data', (d) => { output += d })
        child.stderr.on('data', (d) => { output += d })
        const timer = setTimeout(() => child.kill('SIGKILL'), BLOCK_TIMEOUT_MS)
        try {
          const [code_] = await once(child, 'exit')
          assert.equal(code_, 0, `block at README.md line ${block.line}:\n${code}\n--- output:\n${output}`)
          // A block that listens has served a TLS handshake on that port.
          assert.match(output, /\.listen\(443\)/.test(block.code) ? /README-HARNESS handshakes \d+/ : /README-HARNESS handshakes/, output)
        } finally {
          clearTimeout(timer)
          child.kill('SIGKILL')
        }
      })
    }
  } finally {
    exampleServer.close()
    exampleServer.closeAllConnections?.()
    redis?.redis.kill()
    await topologies.sentinel?.stop()
    await topologies.cluster?.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
