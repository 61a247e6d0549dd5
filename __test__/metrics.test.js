'use strict'

// Metrics as a scraper reads them: ring.metrics() and registerMetrics() in prom-client
// registries of both content types, parsed by the reference parsers (Python prometheus_client),
// with real servers and handshakes behind the numbers.

const test = require('node:test')
const assert = require('node:assert/strict')
const { once } = require('node:events')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const promClient = require('prom-client')
const { TicketKeyRing, attach, generateTicketKeys, registerMetrics } = require('..')
const { tlsServer, listen, close, connect } = require('../test-support/helpers.js')
const { parseExposition, seriesOf, havePrometheusClient } = require('../test-support/exposition.js')

const { Registry } = promClient
const FORMATS = [
  { format: 'prometheus', contentType: Registry.PROMETHEUS_CONTENT_TYPE },
  { format: 'openmetrics', contentType: Registry.OPENMETRICS_CONTENT_TYPE },
]
const skip = !havePrometheusClient && !process.env.CI && 'python3 -m pip install prometheus_client (.ci/run does)'
const haveIPv6Loopback = Object.values(os.networkInterfaces()).flat().some((i) => i.address === '::1')

async function listenOn(server, host) {
  server.listen(0, host)
  await new Promise((resolve) => server.once('listening', resolve))
  return server.address().port
}

test('two rings in one registry, in Prometheus and OpenMetrics text: every series once, labelled by ring and server', { skip }, async () => {
  const edge = new TicketKeyRing({ name: 'edge', cipher: 'aes-128-cbc' })
  const api = new TicketKeyRing({ name: 'api/eu-1', cipher: 'aes-128-cbc' })
  const servers = [tlsServer(), tlsServer(), tlsServer()]
  const [edgeServer, apiServer, idle] = servers
  attach(edgeServer, edge)
  attach(apiServer, api)
  attach(idle, api) // never listens
  const registries = FORMATS.map(({ contentType }) => new Registry(contentType))
  const handles = registries.flatMap((registry) => [registerMetrics(edge, registry), registerMetrics(api, registry)])
  try {
    const edgePort = await listenOn(edgeServer, '127.0.0.1')
    const apiHost = haveIPv6Loopback ? '::1' : '127.0.0.1'
    const apiPort = await listenOn(apiServer, apiHost)
    const apiLabel = haveIPv6Loopback ? `[::1]:${apiPort}` : `127.0.0.1:${apiPort}`
    const first = await connect(edgePort, { version: 'TLSv1.2' })
    assert.equal((await connect(edgePort, { version: 'TLSv1.2', session: first.session })).reused, true)
    // A ticket of the other ring: refused for an unknown key.
    const fromEdge = await connect(edgePort, { version: 'TLSv1.2' })
    // The server counts the handshake when it has finished on its side.
    const served = once(apiServer, 'secureConnection')
    await new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: apiHost, port: apiPort, servername: 'localhost', rejectUnauthorized: false, session: fromEdge.session,
        maxVersion: 'TLSv1.2',
      }, () => { socket.destroy(); resolve() })
      socket.on('error', reject)
    })
    await served

    for (const [i, { format, contentType }] of FORMATS.entries()) {
      const registry = registries[i]
      const text = await registry.metrics()
      assert.equal(registry.contentType, contentType)
      assert.doesNotMatch(text, /_total_total/)
      const families = parseExposition(text, format)
      const series = seriesOf(families) // throws on a series seen twice
      const types = Object.fromEntries(families.map((f) => [f.name, f.type]))
      // Both parsers name a counter's family without `_total`; its samples keep it.
      assert.equal(types.tls_ticket_keys_handshakes, 'counter', format)
      assert.equal(types.tls_ticket_keys_tickets_issued, 'counter', format)
      assert.equal(types.tls_ticket_keys_keys, 'gauge', format)
      assert.equal(series.get(`tls_ticket_keys_handshakes_total{outcome="resumed",ring="edge",server="127.0.0.1:${edgePort}"}`), 1, format)
      assert.equal(series.get(`tls_ticket_keys_handshakes_total{outcome="no_ticket",ring="edge",server="127.0.0.1:${edgePort}"}`), 2, format)
      assert.equal(series.get(`tls_ticket_keys_handshakes_total{outcome="unknown_key",ring="api/eu-1",server="${apiLabel}"}`), 1, format)
      assert.equal(series.get('tls_ticket_keys_handshakes_total{outcome="resumed",ring="api/eu-1",server="unbound"}'), 0, format)
      assert.equal(series.get('tls_ticket_keys_tickets_issued_total{ring="edge"}'), edge.stats().issued, format)
      assert.equal(series.get('tls_ticket_keys_tickets_unknown_key_total{ring="api/eu-1"}'), 1, format)
      assert.equal(series.get('tls_ticket_keys_keys{ring="api/eu-1",state="current"}'), 1, format)
      // Every series carries the ring label.
      for (const key of series.keys()) assert.match(key, /ring="(edge|api\/eu-1)"/)
    }
  } finally {
    for (const handle of handles) handle.unregister()
    await Promise.all(servers.map(close))
    edge.destroy()
    api.destroy()
  }
})

test('a destroyed ring drops out of the registry; unregistering the last ring takes the metrics away', { skip }, async () => {
  for (const { format, contentType } of FORMATS) {
    const registry = new Registry(contentType)
    new promClient.Counter({ name: 'app_requests_total', help: 'The application\'s own.', registers: [registry] }).inc()
    const a = new TicketKeyRing({ name: 'a' })
    const b = new TicketKeyRing({ name: 'b' })
    const ha = registerMetrics(a, registry)
    const hb = registerMetrics(b, registry)
    b.destroy()
    const text = await registry.metrics()
    const series = seriesOf(parseExposition(text, format))
    assert.equal(series.get('tls_ticket_keys_keys{ring="a",state="current"}'), 1)
    assert.ok(![...series.keys()].some((key) => key.includes('ring="b"')), text)
    // b's name is free again.
    const b2 = new TicketKeyRing({ name: 'b' })
    const hb2 = registerMetrics(b2, registry)
    a.destroy()
    b2.destroy()
    // Only empty families left: still valid text.
    parseExposition(await registry.metrics(), format)
    for (const handle of [ha, hb, hb2, hb2]) handle.unregister()
    assert.equal(registry.getSingleMetric('tls_ticket_keys_handshakes_total'), undefined)
    assert.match(await registry.metrics(), /app_requests_total 1/)
  }
})

test('ring.metrics(): the ring label, two rings concatenated parse without a duplicate series, and after destroy()', { skip }, async () => {
  const a = new TicketKeyRing({ name: 'a' })
  const b = new TicketKeyRing()
  assert.match(b.name, /^ring-\d+$/)
  assert.equal(b.name, b.name)
  assert.notEqual(new TicketKeyRing().name, b.name)
  const series = seriesOf(parseExposition(a.metrics() + b.metrics(), 'prometheus'))
  assert.equal(series.get('tls_ticket_keys_keys{ring="a",state="current"}'), 1)
  assert.equal(series.get(`tls_ticket_keys_keys{ring="${b.name}",state="current"}`), 1)
  a.destroy()
  b.destroy()
  const after = seriesOf(parseExposition(a.metrics(), 'prometheus'))
  assert.equal(after.get('tls_ticket_keys_keys{ring="a",state="current"}'), 0)
  assert.equal(after.get('tls_ticket_keys_tickets_issued_total{ring="a"}'), 0)
})

test('the default registry, a registry switched between content types, and refused registrations', async () => {
  const ring = new TicketKeyRing({ name: 'default-registry' })
  const handle = registerMetrics(ring)
  try {
    assert.match(await promClient.register.metrics(), /tls_ticket_keys_keys\{ring="default-registry",state="current"\} 1/)
    assert.throws(() => registerMetrics(ring), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => registerMetrics(new TicketKeyRing({ name: 'default-registry' })), { code: 'ERR_INVALID_ARG_VALUE' })
  } finally {
    handle.unregister()
  }
  assert.doesNotMatch(await promClient.register.metrics(), /tls_ticket_keys/)

  const registry = new Registry(Registry.OPENMETRICS_CONTENT_TYPE)
  const switched = registerMetrics(ring, registry)
  assert.match(await registry.metrics(), /^# TYPE tls_ticket_keys_tickets_issued counter$/m)
  registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE)
  assert.match(await registry.metrics(), /^tls_ticket_keys_tickets_issued_total\{ring="default-registry"\} 0$/m)
  // registry.clear() forgets them; registering again puts them back.
  registry.clear()
  assert.throws(() => registerMetrics(ring, registry), { code: 'ERR_INVALID_ARG_VALUE' })
  switched.unregister()
  registerMetrics(ring, registry).unregister()

  const taken = new Registry()
  new promClient.Gauge({ name: 'tls_ticket_keys_keys', help: 'Someone else\'s.', registers: [taken] })
  assert.throws(() => registerMetrics(ring, taken), { code: 'ERR_INVALID_ARG_VALUE', message: /tls_ticket_keys_keys/ })
  assert.equal(taken.getSingleMetric('tls_ticket_keys_tickets_issued_total'), undefined, 'nothing registered half-way')

  for (const bad of [null, 'registry', {}, new Map()]) {
    assert.throws(() => registerMetrics(ring, bad), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  for (const bad of [undefined, {}, 'ring']) {
    assert.throws(() => registerMetrics(bad, registry), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  ring.destroy()
  assert.throws(() => registerMetrics(ring, registry), { code: 'ERR_INVALID_STATE' })
})

test('ring names: validated with codes, and taken by every way of making a ring', async () => {
  for (const bad of [5, null, Buffer.from('edge'), {}]) {
    assert.throws(() => new TicketKeyRing({ name: bad }), { code: 'ERR_INVALID_ARG_TYPE' })
  }
  for (const bad of ['', ' edge', 'edge"', 'a\nb', '-edge', 'é', 'x'.repeat(65), 'a{b}', 'a=b']) {
    assert.throws(() => new TicketKeyRing({ name: bad }), (err) => {
      // The value is never quoted: it could be key material passed by mistake.
      assert.equal(err.code, 'ERR_INVALID_ARG_VALUE')
      assert.ok(bad.length < 2 || !err.message.includes(bad), err.message)
      return true
    })
  }
  const rings = []
  const made = (ring) => rings.push(ring) && ring
  try {
    assert.equal(made(new TicketKeyRing({ name: 'x'.repeat(64) })).name.length, 64)
    const nginx = made(TicketKeyRing.fromNginx(generateTicketKeys(48), { name: 'from-nginx' }))
    assert.equal(nginx.name, 'from-nginx')
    assert.match(JSON.stringify(nginx), /"name":"from-nginx"/)
    const haproxyFile = [0, 1, 2].map(() => `${generateTicketKeys(48).toString('base64')}\n`).join('')
    assert.equal(made(TicketKeyRing.fromHaproxy(haproxyFile, { name: 'from-haproxy' })).name, 'from-haproxy')
    await assert.rejects(TicketKeyRing.forCluster({ name: 7 }), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.equal(made(await TicketKeyRing.forCluster({ name: 'cluster-ring' })).name, 'cluster-ring')
  } finally {
    for (const ring of rings) ring.destroy()
  }
})

test('two copies of the package (npm installs two versions side by side) share a registry', { skip }, async () => {
  const root = path.join(__dirname, '..')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-second-copy-'))
  try {
    for (const entry of fs.readdirSync(root)) {
      if (['index.js', 'binding.js', 'package.json'].includes(entry) || entry.endsWith('.node')) {
        fs.copyFileSync(path.join(root, entry), path.join(dir, entry))
      }
    }
    fs.cpSync(path.join(root, 'lib'), path.join(dir, 'lib'), { recursive: true })
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'))
    const second = require(dir)
    assert.notEqual(second.registerMetrics, registerMetrics)
    const ours = new TicketKeyRing()
    const theirs = new second.TicketKeyRing()
    assert.notEqual(ours.name, theirs.name, 'default names are unique across copies')
    for (const { format, contentType } of FORMATS) {
      const registry = new Registry(contentType)
      const handles = [registerMetrics(ours, registry), second.registerMetrics(theirs, registry)]
      assert.throws(() => registerMetrics(theirs, registry), { code: 'ERR_INVALID_ARG_TYPE' }, 'each copy registers its own rings')
      const series = seriesOf(parseExposition(await registry.metrics(), format))
      assert.equal(series.get(`tls_ticket_keys_keys{ring="${ours.name}",state="current"}`), 1)
      assert.equal(series.get(`tls_ticket_keys_keys{ring="${theirs.name}",state="current"}`), 1)
      handles[0].unregister()
      assert.ok(![...seriesOf(parseExposition(await registry.metrics(), format)).keys()].some((k) => k.includes(`"${ours.name}"`)))
      handles[1].unregister()
      assert.equal(registry.getSingleMetric('tls_ticket_keys_keys'), undefined)
    }
    ours.destroy()
    theirs.destroy()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('server labels are unique within a ring, even when a Unix socket is named like a suffixed label', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-labels-'))
  const cwd = process.cwd()
  const ring = new TicketKeyRing()
  const servers = [tlsServer(), tlsServer(), tlsServer(), tlsServer()]
  try {
    for (const server of servers) attach(server, ring)
    // Relative socket paths: server.address() returns them as given.
    process.chdir(dir)
    servers[2].listen('unbound#2')
    servers[3].listen('unbound#3')
    await Promise.all([once(servers[2], 'listening'), once(servers[3], 'listening')])
    const labels = [...ring.metrics().matchAll(/^tls_ticket_keys_handshakes_total\{[^}]*server="([^"]*)"[^}]*outcome="resumed"\}/gm)].map((m) => m[1])
    assert.equal(labels.length, 4, ring.metrics())
    assert.equal(new Set(labels).size, 4, `labels: ${labels}`)
    assert.ok(labels.includes('unbound#2') && labels.includes('unbound#3') && labels.includes('unbound'))
  } finally {
    process.chdir(cwd)
    for (const server of servers.slice(2)) await close(server)
    ring.destroy()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
