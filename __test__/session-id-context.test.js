'use strict'

// The session id contexts are part of the wire: servers of different versions in one fleet
// resume each other's sessions only while they compute the same ones. These values were
// recorded with the release before lib/session-id-context.js took them over (the scoped ones
// were then computed in Rust, src/derive.rs).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TicketKeyRing } = require('../index.js')
const { clientAuthPolicy } = require('../lib/client-auth.js')
const {
  ringSessionIdContext, argvSessionIdContext, serverSessionIdContext, peerSessionIdContext,
} = require('../lib/session-id-context.js')

const PEM = fs.readFileSync(path.join(__dirname, 'fixtures', 'session-id-context.pem'), 'latin1')
const SECRET = Buffer.alloc(32, 7)
const SCOPE_255 = 'é'.repeat(127) + 'x'

const RECORDED = {
  shared: '991171e68c4d6594b62c34b71e9ef7b7',
  derivedNoScope: '29f1ef996b2c8aed03acc7f90e5c066d',
  derivedEuWest: '059e132ce6501d8d0ea453934da9c0ea',
  derived255: '28d8616d842edc1ef48e7b0b6912048a',
  argv: '521fcbe6964855b4b301b0a54a31363c',
  policyCa: '19ce188a0aad5833b166d84d7adfcf210036e682638fb5d0662ab89ae046d8ac',
  policyCaNoReject: 'e99c04550b7666cbba71bb6db5ce2774c5ee6884707a5813b3d5e5f5273a2ad1',
  contextCa: 'c4bfc3b51fd5ee680bec0c92ecd8706c',
  contextCaNoReject: '4f4ffca7bb367e9ee1a5cfddf2e475b3',
  peerHaproxy: '686170726f7879',
  peerNginx: '47efa8aa8d239838fc7288a95e301a00bfbe4749',
  peerNginxTwo: '0bcbf54c0fc8ac9c609566fe96f23182605bf02b',
}

function contextOf(options) {
  const ring = new TicketKeyRing(options)
  try {
    return ring.sessionIdContext
  } finally {
    ring.destroy()
  }
}

test('every kind of ring keeps the session id context it had', () => {
  assert.equal(Buffer.byteLength(SCOPE_255), 255)
  assert.equal(contextOf({}), RECORDED.shared)
  assert.equal(contextOf({ keys: Buffer.alloc(48, 1) }), RECORDED.shared)
  assert.equal(contextOf({ secret: SECRET }), RECORDED.derivedNoScope)
  assert.equal(contextOf({ secret: SECRET, scope: 'eu-west' }), RECORDED.derivedEuWest)
  assert.equal(contextOf({ secret: Buffer.alloc(32, 9), scope: 'eu-west' }), RECORDED.derivedEuWest, 'whatever the secret')
  assert.equal(contextOf({ secret: SECRET, scope: SCOPE_255 }), RECORDED.derived255)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-sic-'))
  try {
    const file = path.join(dir, 'secrets')
    fs.writeFileSync(file, `${SECRET.toString('base64')}\n`, { mode: 0o600 })
    assert.equal(contextOf({ secretFile: file }), RECORDED.derivedNoScope)
    assert.equal(contextOf({ secretFile: file, scope: 'eu-west' }), RECORDED.derivedEuWest)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  assert.equal(ringSessionIdContext(null), RECORDED.shared)
  assert.equal(ringSessionIdContext('eu-west'), RECORDED.derivedEuWest)
})

test("Node's argv-derived context, the client-auth contexts and the peers' contexts are as recorded", () => {
  assert.equal(argvSessionIdContext(['node', '/srv/server.js', '--port', '443']), RECORDED.argv)
  assert.equal(argvSessionIdContext(), argvSessionIdContext(process.argv))
  assert.equal(clientAuthPolicy({ requestCert: false }), 'none')
  assert.equal(clientAuthPolicy({ requestCert: true, ca: PEM }), RECORDED.policyCa)
  assert.equal(clientAuthPolicy({ requestCert: true, rejectUnauthorized: false, ca: PEM }), RECORDED.policyCaNoReject)
  assert.equal(clientAuthPolicy({ requestCert: true, ca: new Uint8Array(Buffer.from(PEM)) }), RECORDED.policyCa)
  assert.equal(serverSessionIdContext(RECORDED.derivedEuWest, 'none'), RECORDED.derivedEuWest)
  assert.equal(serverSessionIdContext(RECORDED.derivedEuWest, RECORDED.policyCa), RECORDED.contextCa)
  assert.equal(serverSessionIdContext(RECORDED.derivedEuWest, RECORDED.policyCaNoReject), RECORDED.contextCaNoReject)
  assert.equal(peerSessionIdContext('haproxy', {}, null).toString('hex'), RECORDED.peerHaproxy)
  assert.equal(peerSessionIdContext('nginx', { cert: PEM }, null).toString('hex'), RECORDED.peerNginx)
  assert.equal(peerSessionIdContext('nginx', { cert: [PEM, Buffer.from(PEM)] }, null).toString('hex'), RECORDED.peerNginxTwo)
})

test('lib/session-id-context.js is the only module that hashes a session id context', () => {
  const lib = path.join(__dirname, '..', 'lib')
  for (const file of fs.readdirSync(lib, { recursive: true }).filter((f) => f.endsWith('.js'))) {
    if (file === 'session-id-context.js') continue
    const text = fs.readFileSync(path.join(lib, file), 'utf8')
    assert.doesNotMatch(text, /'tls-ticket-keys[ /]\S* ?session id context|'HTTP'/, file)
  }
})
