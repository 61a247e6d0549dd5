// A strict TypeScript consumer of every call README.md shows, compiled by types.test.js with
// `tsc --strict --noEmit`. `tls-ticket-keys` resolves through the package's exports map, as
// it does for a user. Never run: it only has to type-check.

import * as tls from 'node:tls'
import * as https from 'node:https'
import * as http2 from 'node:http2'
import * as cluster from 'node:cluster'
import * as undici from 'undici'
import { setGlobalDispatcher } from 'undici'
import { randomBytes } from 'node:crypto'
import * as diagnosticsChannel from 'node:diagnostics_channel'
import { Registry, register } from 'prom-client'
import type { OpenMetricsContentType } from 'prom-client'
import { createSentinel, createCluster, createClient } from 'redis'
import { Redis, Cluster } from 'ioredis'
import {
  TicketKeyRing, attach, generateTicketKeys, RedisKeyStore, SessionCache, inspectSession, inspectTicket, registerMetrics,
} from 'tls-ticket-keys'
import type { TicketKeyAttachment, TicketKeyInfo, TicketKeyStats, AttachmentStats, SessionInfo, TicketReport } from 'tls-ticket-keys'
import type {
  MetricsRegistration, RotateMessage, FallbackMessage, RefusedMessage, StoreErrorMessage,
} from 'tls-ticket-keys'

// @ts-expect-error internals are not exported
import type {} from 'tls-ticket-keys/lib/ring.js'
// @ts-expect-error the loader is not exported
import type {} from 'tls-ticket-keys/binding.js'

declare const key: Buffer
declare const cert: Buffer

// Usage
const ring = new TicketKeyRing({ rotationInterval: 3600, ticketLifetime: 7200 })
const server = tls.createServer({ key, cert }, (socket) => socket.end('hello\n'))
const handle: TicketKeyAttachment = attach(server, ring)
const mode: 'native' | 'callback' = handle.mode
server.listen(443)
attach(https.createServer({ key, cert }, (req, res) => res.end('hello\n')), ring)
attach(http2.createSecureServer({ key, cert }), ring, { mode: 'auto' })
const shared: 'nginx' | 'haproxy' | null = attach(tls.createServer({ key, cert }), ring, { shareWith: 'nginx' }).shareWith

// The schedule
ring.rotate()
ring.setTicketKeys(generateTicketKeys())
ring.setTicketKeys(generateTicketKeys(48))
const current: Buffer = ring.getTicketKeys()
const infos: TicketKeyInfo[] = ring.keys()
const stats: TicketKeyStats = ring.stats()
new TicketKeyRing({ keys: generateTicketKeys(80), cipher: 'aes-256-cbc' })
new TicketKeyRing({ keys: generateTicketKeys() })
ring.destroy()

// Fleets
const fleetSecret = randomBytes(32)
new TicketKeyRing({ secret: fleetSecret })
new TicketKeyRing({ secret: fleetSecret, scope: 'eu-west', previousSecrets: [randomBytes(32)] })
const fileRing = new TicketKeyRing({ secretFile: '/etc/tls-ticket-keys/secrets', scope: 'eu-west', secretFileCheckInterval: 10 })
new TicketKeyRing({ secretFile: new URL('file:///etc/tls-ticket-keys/secrets') })
const sealing: string | undefined = fileRing.secrets().find((s) => s.state === 'sealing')?.fingerprint
const dropsAt: Date | null = fileRing.secrets()[0].dropsAt
const keySecret: string | null | undefined = fileRing.keys()[0].secret
const fileErrors: number | undefined = fileRing.stats().secretFileErrors
void sealing, dropsAt, keySecret, fileErrors
async function redis(): Promise<void> {
  const store = new RedisKeyStore({ url: 'redis://127.0.0.1:6379', wrapSecret: randomBytes(32), prefix: 'tls-ticket-keys:', timeout: 3000 })
  new RedisKeyStore({ url: 'redis://127.0.0.1:6379', wrapSecret: randomBytes(32), warnings: false })
  const timeout: number = store.timeout
  const splitFleet = new RedisKeyStore({ url: 'redis://127.0.0.1:6379', wrapSecret: randomBytes(32), fallback: 'local' })
  const fallback: 'derived' | 'local' = splitFleet.fallback
  const fed: TicketKeyRing = await store.ring({ rotationInterval: 3600, ticketLifetime: 7200 })
  attach(https.createServer({ key, cert }), fed)
  const s: { agreed: number; won: number; redisErrors: number; unopenable: number } = store.stats()
  await store.close()
}
async function redisClients(): Promise<void> {
  const wrapSecret = randomBytes(32)
  const sentinel = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }] })
  await sentinel.connect()
  const viaSentinel = new RedisKeyStore({ client: sentinel, wrapSecret })
  await viaSentinel.ring({ rotationInterval: 3600 })
  await viaSentinel.close()
  await sentinel.close()
  new RedisKeyStore({ client: createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] }), wrapSecret })
  new RedisKeyStore({ client: await createClient().connect(), wrapSecret })
  const cluster = new Cluster([{ host: '127.0.0.1', port: 7000 }])
  new RedisKeyStore({ client: cluster, wrapSecret })
  await cluster.quit()
  new RedisKeyStore({ client: new Redis({ sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster', failoverDetector: true }), wrapSecret })
  new RedisKeyStore({ client: new Redis(6379, '127.0.0.1'), wrapSecret })
  // @ts-expect-error a Map is no Redis client
  new RedisKeyStore({ client: new Map<string, string>(), wrapSecret })
}
async function clustered(): Promise<void> {
  const shared = await TicketKeyRing.forCluster({ rotationInterval: 3600 })
  if (cluster.default.isPrimary) cluster.default.fork()
  else attach(https.createServer({ key, cert }), shared)
}

// The client side
const cache = new SessionCache({ maxOrigins: 100, maxTicketsPerOrigin: 4 })
const socket: tls.TLSSocket = cache.connect({ host: 'example.com', port: 443 })
const agent: https.Agent = cache.httpsAgent({ keepAlive: true })
https.get('https://example.com/', { agent })
const cacheStats: { offered: number; resumed: number; full: number; unreadable: number; origins: number; tickets: number } = cache.stats()

// fetch on Node 24 and later
setGlobalDispatcher(new SessionCache().dispatcher({ undici }))
setGlobalDispatcher(new SessionCache().dispatcher())
const typed: undici.Agent = cache.dispatcher({ undici, allowH2: true })
const dispatcher = cache.dispatcher({ connect: { ca: cert }, allowH2: true, keepAliveTimeout: 4000 })
// What @types/node's fetch takes (this config has the DOM's RequestInit, which has no dispatcher).
const init: import('undici-types').RequestInit = { dispatcher }
fetch('https://example.com/', init as RequestInit).then((res) => res.text())
const ownAgent = new undici.Agent({ connect: cache.undiciConnect({ ca: cert, allowH2: true }) })
undici.request('https://example.com/', { dispatcher: ownAgent })
dispatcher.close()
// @ts-expect-error the cache supplies the connect function
cache.dispatcher({ connect: cache.undiciConnect() })
// @ts-expect-error not an undici module
cache.dispatcher({ undici: {} })

// Noticing failed resumption
const perServer: AttachmentStats = handle.stats()
const text: string = ring.metrics()
socket.on('secureConnect', () => {
  const ticket = socket.getTLSTicket()
  if (ticket) {
    const report: TicketReport = inspectTicket(ticket, ring)
    const inside: SessionInfo | null = report.session
  }
  const session = socket.getSession()
  if (session) {
    const info: SessionInfo = inspectSession(session)
    const suite: string | null = info.cipherName
    const suiteNumber: number = info.cipherSuite
  }
})
declare const nginxKeyFile: Buffer
declare const haproxyKeys: string
TicketKeyRing.fromNginx(nginxKeyFile)
TicketKeyRing.fromNginx([nginxKeyFile, nginxKeyFile])
TicketKeyRing.fromHaproxy(haproxyKeys)
handle.detach()

// Watching resumption
const named = new TicketKeyRing({ name: 'edge' })
const ringName: string = named.name
// prom-client's types declare no constructor argument: the content type is set after.
const registry = new Registry<OpenMetricsContentType>()
registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
registerMetrics(named, new Registry())
const registration: MetricsRegistration = registerMetrics(named, registry)
registerMetrics(named, register).unregister()
registerMetrics(named)
registration.unregister()
async function scrape(): Promise<string> {
  return registry.metrics()
}
// @ts-expect-error a name is a string
new TicketKeyRing({ name: 5 })
// @ts-expect-error a registry, not its text
registerMetrics(named, 'text')
TicketKeyRing.fromNginx(nginxKeyFile, { name: 'from-nginx' })
TicketKeyRing.fromHaproxy(haproxyKeys, { name: 'from-haproxy' })
async function namedFleet(store: RedisKeyStore): Promise<void> {
  await store.ring({ name: 'fed', rotationInterval: 3600 })
  await TicketKeyRing.forCluster({ name: 'cluster' })
}
diagnosticsChannel.subscribe('tls-ticket-keys:rotate', (message) => {
  const { ring: r, current: now, previous, keys, cause } = message as RotateMessage
  const states: ('next' | 'current' | 'previous')[] = keys.map((k) => k.state)
  const why: 'schedule' | 'rotate' | 'setTicketKeys' | 'feed' = cause
  console.log(r, now, previous, states, why)
})
diagnosticsChannel.subscribe('tls-ticket-keys:fallback', (message) => {
  const { ring: r, key: k, kind, fallbackKeys }: FallbackMessage = message as FallbackMessage
  const derived: boolean = kind === 'derived'
  console.log(r, k, fallbackKeys + 1)
})
diagnosticsChannel.subscribe('tls-ticket-keys:refused', (message) => {
  const { server: s, reason }: RefusedMessage = message as RefusedMessage
  const known: 'unknownKey' | 'expiredKey' | 'notResumed' = reason
  console.log(s, known)
})
diagnosticsChannel.subscribe('tls-ticket-keys:store-error', (message) => {
  const { rings, operation, error } = message as StoreErrorMessage
  const code: string | undefined = error.code
  console.log(rings.join(), operation, code, error.message)
})

export { mode, current, infos, stats, redis, redisClients, clustered, cacheStats, perServer, text, ringName, scrape, namedFleet }
