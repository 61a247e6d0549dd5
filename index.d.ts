/// <reference types="node" />
import type { Server as TlsServer } from 'node:tls'

/** The ticket cipher of a ring: AES-CBC with an HMAC-SHA256 key of the same length. */
export type TicketCipher = 'aes-128-cbc' | 'aes-256-cbc'

/** Where a key is in its life. */
export type KeyState = 'next' | 'current' | 'previous'

export interface TicketKeyRingOptions {
  /**
   * Seconds a key encrypts, >= 1 and <= 604800 (seven days, the TLS 1.3 ticket limit; a larger
   * value, likely milliseconds meant, is refused with ERR_OUT_OF_RANGE). Epochs are aligned to multiples of it since
   * the Unix epoch, so every process with the same clock rotates at the same instant.
   * @default 3600
   */
  rotationInterval?: number
  /**
   * Seconds a ticket stays resumable, >= 1 and <= 604800 (RFC 8446 §4.6.1), and at most 238 ×
   * `rotationInterval`: a ring holds at most 256 keys and never drops one whose tickets are
   * still live, so a longer lifetime is refused with ERR_OUT_OF_RANGE (seven-day tickets need
   * a `rotationInterval` of at least 2542 s). `attach()` makes it the server's session timeout.
   * A key is kept, decrypt-only, for this long after it stopped encrypting.
   * @default 7200, or 238 × rotationInterval when that is shorter
   */
  ticketLifetime?: number
  /**
   * Explicit key material: n keys of 48 bytes (`name | hmac | aes`, 16 each, Node's layout,
   * AES-128) or of 80 bytes (`name | hmac(32) | aes(32)`, AES-256). The first key encrypts,
   * all decrypt, and the ring does not rotate on its own. Keys with an all-zero HMAC or AES
   * key, and repeated names, are refused.
   */
  keys?: NodeJS.ArrayBufferView
  /**
   * A fleet secret of at least 32 bytes: each epoch's key is derived from it with HKDF-SHA256,
   * so every process holding it has the same keys at the same time, with no coordination, and
   * a restarted process still opens the tickets of recent epochs. The price: whoever learns
   * the secret can compute every epoch's key, past and future. Not with `keys`.
   */
  secret?: NodeJS.ArrayBufferView
  /**
   * With `secret` only: other keys from the same secret for each scope (a region, a data
   * centre), so a leaked key exposes one scope. 1 to 255 UTF-8 bytes (ERR_OUT_OF_RANGE).
   * Rings of different scopes never resume each other's tickets.
   */
  scope?: string
  /**
   * With `secret` only: up to 4 other secrets whose tickets the ring opens (renewing them
   * under its own keys) and never seals with, for moving a fleet to a new secret. The session
   * id context does not depend on the secret, so it stays the same. See README, "Fleets".
   */
  previousSecrets?: NodeJS.ArrayBufferView[]
  /**
   * A file of fleet secrets, watched: one per line, `<RFC 3339 time> <standard base64 secret
   * of >= 32 bytes>`, or a secret alone (active since the beginning of time); blank lines and
   * `#` comments are ignored; 1 to 8 secrets. Each epoch is sealed by the secret with the
   * latest time at or before the epoch's start (the earliest secret also seals before its
   * time), and every listed secret opens tickets, including one whose time has not come. Each
   * secret derives exactly the keys `{ secret }` derives (with the same `scope`). A secret
   * stops opening and is wiped `ticketLifetime` after a newer one took over sealing, even if
   * still listed (a `TLS_TICKET_SECRET_DROPPED` warning says the line can go).
   *
   * Read at construction (ERR_INVALID_ARG_VALUE, naming the line and never the secret, for a
   * missing or refused file), then on every change of its directory (Kubernetes swaps a
   * `..data` symlink there) and every `secretFileCheckInterval` seconds. A bad change
   * (unreadable, empty, truncated, refused) keeps the last good secrets: counted in
   * `stats().secretFileErrors`, published on `tls-ticket-keys:store-error` and
   * `tls-ticket-keys:secret`, one `TLS_TICKET_SECRET_FILE_REFUSED` warning until a good version
   * is read. Not with `secret`, `keys` or `previousSecrets`. README: "Rotating the fleet secret".
   */
  secretFile?: string | URL
  /**
   * With `secretFile`: seconds between re-reads of the file, for file systems whose changes
   * a directory watch misses. 0.05 to 3600. The timer never keeps a process alive.
   * @default 10
   */
  secretFileCheckInterval?: number
  /**
   * The cipher for new keys. Defaults to 'aes-256-cbc' where the native mode is available and
   * to 'aes-128-cbc' elsewhere; with `keys`, to the layout their length implies.
   */
  cipher?: TicketCipher
  /**
   * The ring's name: the `ring` label of its metrics and the `ring` field of its diagnostics
   * messages. 1 to 64 characters of `A-Z a-z 0-9 _ . : / -`, starting with a letter or a digit
   * (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE otherwise). Rings registered in one
   * prom-client registry need different names.
   * @default `ring-<n>`: `ring-1`, `ring-2`, ... in the order rings are made in the process
   */
  name?: string
}

/** A key as `keys()` shows it: never its secrets. */
export interface TicketKeyInfo {
  /** The 16-byte key name in hex; it is public, every ticket starts with it. */
  name: string
  state: KeyState
  /** When it starts (or started) to encrypt. */
  activatesAt: Date
  /** When it will be wiped, or null for explicit keys, which are held until replaced. */
  expiresAt: Date | null
  /**
   * A ring of `secretFile` only: the fingerprint of the secret the key was derived from (16
   * hex digits: HKDF-SHA256 of the secret, salt `tls-ticket-keys/v1`, info
   * `tls-ticket-keys/v1 secret fingerprint`, 8 bytes; never the secret), as `secrets()` and
   * `tls-ticket-keys secret add` show it.
   */
  secret?: string | null
}

/** A secret of a `secretFile` ring as `secrets()` shows it: never the secret. */
export interface TicketSecretInfo {
  /** 16 hex digits, as `keys()` shows them. */
  fingerprint: string
  /** Its line in the file version last read. */
  line: number
  /** Its time in the file, or null for a line with a secret alone. */
  activatesAt: Date | null
  /** The first epoch start at which it seals (the Unix epoch for the earliest secret). */
  sealsFrom: Date
  /** When it stops opening tickets and is wiped, once a newer secret is listed. */
  dropsAt: Date | null
  /** 'pending' (opens, seals later), 'sealing', or 'retired' (opens until `dropsAt`). */
  state: 'pending' | 'sealing' | 'retired'
}

/** Counters since the ring was made, across every server it is attached to. */
export interface TicketKeyStats {
  /** Tickets sealed. */
  issued: number
  /** Tickets opened with the current or the next key. */
  resumed: number
  /** Tickets opened with a previous key; the client got a fresh ticket under the current one. */
  renewed: number
  /** Tickets whose key this ring never held: foreign, forged, or from before a restart. */
  unknownKey: number
  /** Tickets whose key the ring held but has wiped, because their lifetime is over. */
  expired: number
  /**
   * For rings fed by a RedisKeyStore or a cluster's primary: keys the ring made itself
   * because the feed had not delivered in time, counted when such a key seals its first
   * ticket (a start-up key that the feed replaced in time is none). 0 on a healthy fleet, and
   * after an outage covered by the keys held ahead.
   */
  fallbackKeys: number
  /** A ring of `secretFile` only: good new versions of the file taken since construction. */
  secretFileChanges?: number
  /**
   * A ring of `secretFile` only: bad versions seen (unreadable, empty, truncated, refused),
   * each counted once however often it is re-read; the ring kept its last good secrets.
   */
  secretFileErrors?: number
  /** A ring of `secretFile` only: secrets dropped and wiped, a ticket lifetime after a newer one took over. */
  secretsDropped?: number
}

/**
 * A ring of session-ticket keys with a schedule. A key is *next* (decrypts only) for one
 * interval, *current* (encrypts) for one interval, then *previous* (decrypts only, and
 * tickets it opens are renewed) until `ticketLifetime` after it stopped encrypting; then it is
 * wiped. Rotation needs no timer: it is computed from the clock whenever a key is needed.
 * A clock stepping back by more than `rotationInterval` restarts the schedule from the new
 * time; no key is then held for longer than `ticketLifetime` from the step.
 *
 * Keys come from the operating system's CSPRNG, live only in memory and are zeroized when
 * retired. Neither `util.inspect()` nor `JSON.stringify()` shows them.
 */
export declare class TicketKeyRing {
  constructor(options?: TicketKeyRingOptions)
  /**
   * One ring for a `node:cluster`: call it in the primary (with the options) and in every
   * worker. Workers mirror the primary's keys over the IPC channel, get them before their
   * first handshake, and rotate with the primary. Rejects with ERR_INVALID_STATE in a worker
   * whose primary sends no keys within 10 s.
   */
  static forCluster(options?: Omit<TicketKeyRingOptions, 'keys' | 'secret' | 'secretFile' | 'secretFileCheckInterval'>): Promise<TicketKeyRing>
  /** `options.name`, or `ring-<n>`; fixed for the ring's life. */
  readonly name: string
  readonly rotationInterval: number
  readonly ticketLifetime: number
  readonly cipher: TicketCipher
  /** The session id context `attach()` gives servers, the same in every process. */
  readonly sessionIdContext: string
  readonly destroyed: boolean
  /** The current key in the ring's layout: 48 bytes for AES-128, 80 bytes for AES-256. */
  getTicketKeys(): Buffer
  /**
   * Installs explicit keys (n keys in the ring's layout; the first encrypts from now on) and
   * stops automatic rotation. The keys that encrypted before stay decrypt-only until their
   * tickets have expired, so this never costs a resumption, unlike `server.setTicketKeys()`.
   * @throws {TypeError} ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE
   * @throws {Error} ERR_INVALID_STATE when the ring would hold more than 256 keys, and on a
   *   ring whose keys come from a `secret`, a `secretFile`, a `RedisKeyStore` or a cluster
   *   primary: one process alone would seal with a key its peers do not hold (move to a new
   *   secret with `previousSecrets`, or add one to the `secretFile`, instead)
   */
  setTicketKeys(keys: NodeJS.ArrayBufferView): void
  /**
   * Makes the next key current now; a ring of explicit keys gets a fresh random key.
   * @throws {Error} ERR_INVALID_STATE when the ring holds 256 keys (more than 16 manual
   *   rotations within one ticket lifetime): it drops no key before its tickets expire; and on
   *   a ring whose keys come from a `secret`, a `RedisKeyStore` or a cluster primary, as for
   *   `setTicketKeys()`
   */
  rotate(): void
  /** Every key held, newest first. */
  keys(): TicketKeyInfo[]
  /**
   * The secrets of a `secretFile` ring, earliest first, by fingerprint.
   * @throws {Error} ERR_INVALID_STATE on other rings
   */
  secrets(): TicketSecretInfo[]
  stats(): TicketKeyStats
  /**
   * The ring's counters, its keys by state, and per attached server why handshakes resumed or
   * not, in the Prometheus text format (version 0.0.4, `tls_ticket_keys_*`), every series
   * labelled `ring="<name>"`. Never key bytes. After `destroy()`: the final counters and no
   * keys. For prom-client, see `registerMetrics()`.
   */
  metrics(): string
  /**
   * The keys of nginx `ssl_session_ticket_key` files, the first file's key encrypting.
   * 48-byte files are `name | aes | hmac`, 80-byte files `name | hmac | aes`.
   */
  static fromNginx(files: NodeJS.ArrayBufferView | NodeJS.ArrayBufferView[], options?: Omit<TicketKeyRingOptions, 'keys' | 'secret' | 'cipher' | 'secretFile' | 'secretFileCheckInterval'>): TicketKeyRing
  /**
   * The keys of a HAProxy `tls-ticket-keys` file (base64 lines of `name | aes | hmac`, 48 or
   * 80 bytes): like HAProxy, the last three, labelled previous, current (it encrypts) and
   * next; `rotate()` makes the next one current, as HAProxy's `set ssl tls-key` does.
   * @throws {Error} ERR_INVALID_ARG_VALUE for a file HAProxy refuses (fewer than 3 keys, a
   *   line that is not strict base64, including comments and blank lines, or keys of mixed sizes)
   */
  static fromHaproxy(text: string | Buffer, options?: Omit<TicketKeyRingOptions, 'keys' | 'secret' | 'cipher' | 'secretFile' | 'secretFileCheckInterval'>): TicketKeyRing
  /** Wipes every key. Attached servers fall back to full handshakes; any later call throws ERR_INVALID_STATE. */
  destroy(): void
  toJSON(): { name: string; cipher: TicketCipher; rotationInterval: number; ticketLifetime: number; keys: number; destroyed: boolean }
}

export type AttachMode = 'auto' | 'native' | 'callback'

export interface AttachOptions {
  /**
   * 'native': a Rust ticket callback on the server's OpenSSL context; no JavaScript per
   * handshake, key bytes never enter the JavaScript heap, AES-128 and AES-256.
   * 'callback': Node's internal ticket-key callback; AES-128 only.
   * 'auto' picks 'native' where it works, else 'callback', and throws if neither can serve the ring.
   * @default 'auto'
   */
  mode?: AttachMode
  /**
   * Share sessions with nginx (http module) or HAProxy 2.x servers that hold the same keys:
   * the server takes their session id context (nginx: computed from this server's
   * certificates, in the order of its `cert` option; HAProxy: `haproxy`), which native mode
   * gives every connection and ticket. Native mode only; refused on a server that requests
   * client certificates.
   */
  shareWith?: 'nginx' | 'haproxy'
}

/** Why handshakes on one attached server resumed or not. */
export interface AttachmentStats {
  handshakes: number
  resumed: number
  full: number
  /** Full handshakes where the client offered no ticket. */
  noTicket: number
  /** Tickets under a key the ring never held: another fleet, a restart without shared keys, forgery. */
  unknownKey: number
  /** Tickets under a key the ring had wiped: the ticket outlived its lifetime. */
  expiredKey: number
  /** Tickets that opened but OpenSSL did not resume: session id context, cipher or timeout mismatch. */
  notResumed: number
}

export interface TicketKeyAttachment {
  /** The mode in use. */
  readonly mode: 'native' | 'callback'
  readonly detached: boolean
  /** The server whose session id context this one takes, or null. */
  readonly shareWith: 'nginx' | 'haproxy' | null
  stats(): AttachmentStats
  /**
   * Gives the server back its own ticket handling, session timeout (the one it had before
   * `attach()`, or was given through `setSecureContext()` since) and session id context. Idempotent.
   */
  detach(): void
  toJSON(): { mode: 'native' | 'callback'; shareWith: 'nginx' | 'haproxy' | null; detached: boolean }
}

/**
 * Serves the session tickets of a `tls.Server`, `https.Server` or `http2.createSecureServer()`
 * from the ring. It sets the server's session timeout to `ring.ticketLifetime` and, unless the
 * server was given a `sessionIdContext`, replaces Node's argv-derived one with
 * `ring.sessionIdContext`, so servers sharing keys resume each other's tickets. On a server
 * that asks for client certificates the context also carries its client-certificate policy
 * (`requestCert`, `rejectUnauthorized`, the CAs Node loaded, CRLs, pfx), so a session only
 * resumes where a full handshake would accept the same client. It follows
 * `server.setSecureContext()`. SNI contexts need nothing.
 * @throws {TypeError} ERR_INVALID_ARG_TYPE for a wrong server, ring or options;
 *   ERR_INVALID_ARG_VALUE for an unknown mode, shareWith or option name, a server without a
 *   secure context, an AES-256 ring in callback mode, or shareWith in callback mode or on a
 *   server that requests client certificates
 * @throws {Error} ERR_INVALID_STATE for a destroyed ring, a server or context that a ring
 *   already serves (through any copy of this package), or a closed secure context;
 *   ERR_TLS_TICKET_NATIVE_UNAVAILABLE when mode 'native' (or every mode) cannot work here
 */
export declare function attach(server: TlsServer, ring: TicketKeyRing, options?: AttachOptions): TicketKeyAttachment

/**
 * A Redis client `RedisKeyStore` accepts: from node-redis 5 or later, `createClient()`,
 * `createSentinel()` or `createCluster()`; from ioredis, `new Redis()` (also with `sentinels`)
 * or `new Cluster()`. The shape here only lets both libraries' types through: which library and
 * topology it is gets checked at run time, and anything else throws ERR_INVALID_ARG_TYPE.
 */
export interface RedisKeyStoreClient {
  get(key: string): Promise<unknown>
  set(key: string, value: string, ...options: any[]): Promise<unknown>
  on(event: 'error', listener: (err: Error) => void): unknown
}

export interface RedisKeyStoreOptions {
  /** @default 'redis://127.0.0.1:6379' */
  url?: string
  /** At least 32 bytes. Stored keys are sealed with AES-256-GCM under a key derived from it. */
  wrapSecret: NodeJS.ArrayBufferView
  /** @default 'tls-ticket-keys:' */
  prefix?: string
  /**
   * A node-redis or ioredis client to use instead of one made from `url` (see
   * `RedisKeyStoreClient`); connect it yourself (node-redis): `close()` leaves it open.
   * @throws {TypeError} ERR_INVALID_ARG_TYPE for anything else
   */
  client?: RedisKeyStoreClient
  /**
   * Milliseconds any Redis call may take before it counts as failed (a Redis that stops
   * answering without closing the connection); `ring()` and `close()` settle within it.
   * 1 to 60000. @default 3000
   */
  timeout?: number
  /**
   * A process warning (type `TlsTicketKeysWarning`) when Redis stops answering
   * (`TLS_TICKET_STORE_OUTAGE`) and one when it answers again (`TLS_TICKET_STORE_RECOVERED`),
   * not one per failed command. @default true
   */
  warnings?: boolean
  /**
   * The key a ring uses for an epoch whose key Redis has not agreed in time (an outage longer
   * than the two epochs held ahead). `'derived'`: derived (HKDF-SHA256) from `wrapSecret`,
   * `prefix`, `rotationInterval`, the cipher and the epoch, the same in every member, so the
   * fleet keeps resuming; written back to Redis once it answers (the epoch that begins next
   * then is sealed with the derived key too). Whoever holds `wrapSecret` can compute the keys
   * of those epochs. `'local'`: a random key of the member's own, so
   * the fleet splits while Redis is away. A member that holds the agreed key never derives one.
   * @default 'derived'
   * @throws {TypeError} ERR_INVALID_ARG_VALUE for anything else
   */
  fallback?: 'derived' | 'local'
}

/**
 * Random epoch keys agreed through Redis, for forward secrecy across a fleet: for each epoch
 * the first process to `SET ... NX EX` wins, two epochs (at least a full interval) before the
 * key starts to encrypt, and every process loads it as its next key. Values are sealed (AES-256-GCM, epoch and prefix as
 * associated data, with the cipher and the interval), so a Redis dump holds no usable key;
 * Redis expires them once their tickets have. While Redis is unreachable the rings rotate on
 * fallback keys (see `fallback`), and take the shared ones again when it answers. With `url` it needs the `redis` package (node-redis 5 or
 * later); with `client`, the library of that client (node-redis or ioredis).
 */
export declare class RedisKeyStore {
  constructor(options: RedisKeyStoreOptions)
  /**
   * A ring kept fed from Redis. Resolves within `timeout`, also while Redis is unreachable or
   * not answering: the ring then starts on a fallback key (counted in its `fallbackKeys`
   * once it seals a ticket).
   */
  ring(options?: Omit<TicketKeyRingOptions, 'keys' | 'secret' | 'secretFile' | 'secretFileCheckInterval'>): Promise<TicketKeyRing>
  /** Epochs agreed, races won by this process, Redis errors, and stored values that did not open. */
  /**
   * Shared keys taken into rings; SET NX races won with a new key; keys this process held
   * that Redis had lost (restarted empty) and got back; Redis errors (timeouts included);
   * stored values that did not open under the wrapping secret.
   */
  stats(): { agreed: number; won: number; writtenBack: number; redisErrors: number; unopenable: number }
  /** Stops feeding; the rings keep their keys until they expire. Settles within `timeout`. */
  close(): Promise<void>
  readonly closed: boolean
  /** Milliseconds any Redis call may take before it counts as failed. */
  readonly timeout: number
  /** What a ring uses for an epoch Redis did not agree in time. */
  readonly fallback: 'derived' | 'local'
}

export interface SessionCacheOptions {
  /** Origins kept, least recently used out first. @default 100 */
  maxOrigins?: number
  /** TLS 1.3 tickets kept per origin, newest first. @default 4 */
  maxTicketsPerOrigin?: number
  /**
   * TLS 1.3 tickets are offered once each while an unused one exists (RFC 8446 C.4). OpenSSL
   * servers send two tickets after a full handshake and none after a resumption, so when all
   * have been offered, 'last-resort' offers the newest one again rather than none (linking those
   * connections for an observer); 'never' does a full handshake instead.
   * @default 'last-resort'
   */
  ticketReuse?: 'last-resort' | 'never'
}

/**
 * The undici module a dispatcher is built from: `require('undici')` or `import * as undici from 'undici'`.
 * Its `Agent` class is what matters.
 */
export interface UndiciModule {
  Agent: new (options?: any) => unknown
}

/**
 * Signatures that let the Agent of `SessionCache#dispatcher()` stand where any undici major's
 * `Dispatcher` is expected. undici's own classes (what its `setGlobalDispatcher()` takes) and
 * @types/node's `undici-types` (what the built-in `fetch` takes) declare the same methods with
 * parameter types that differ between majors, so neither class is assignable to the other. Each
 * method here is an extra overload after the typed ones, which a correct call still resolves to.
 */
export interface AnyUndiciDispatcher {
  dispatch(...args: any[]): any
  request(...args: any[]): any
  stream(...args: any[]): any
  pipeline(...args: any[]): any
  connect(...args: any[]): any
  upgrade(...args: any[]): any
  compose(...args: any[]): any
  close(...args: any[]): any
  destroy(...args: any[]): any
  on(...args: any[]): any
  once(...args: any[]): any
  off(...args: any[]): any
  addListener(...args: any[]): any
  removeListener(...args: any[]): any
  prependListener(...args: any[]): any
  prependOnceListener(...args: any[]): any
  emit(...args: any[]): any
  listeners(...args: any[]): any
  rawListeners(...args: any[]): any
}

/** What `SessionCache#dispatcher()` returns without `{ undici }`: an undici Agent, assignable to every undici major's `Dispatcher`. */
export type SessionCacheDispatcher = import('undici-types').Agent & AnyUndiciDispatcher

/** TLS options for connections made through the cache under undici: `tls.connect()` options plus undici's connector options. */
export type UndiciConnectOptions = import('node:tls').ConnectionOptions & {
  /** The undici module to use. @default require('undici'), resolved from this package */
  undici?: UndiciModule
  /** Offer `h2` through ALPN (the ALPN list is part of the cache's origin key). @default false, true with undici 8 */
  allowH2?: boolean
  /** Milliseconds a connection may take to complete its handshake; 0 for no limit. @default 10000 */
  timeout?: number | null
  /** Connect through a Unix socket instead of host and port. */
  socketPath?: string | null
  /** TCP keep-alive on the connection. @default true */
  keepAlive?: boolean | null
  /** @default 60000 */
  keepAliveInitialDelay?: number | null
  /** Ignored: the cache replaces undici's own session cache. */
  maxCachedSessions?: number | null
}

/** undici `Agent` options, and in `connect` the TLS options of every connection. */
export type SessionCacheDispatcherOptions = Omit<import('undici-types').Agent.Options, 'connect'> & {
  /** The undici module whose `Agent` is built. @default require('undici'), resolved from this package */
  undici?: UndiciModule
  connect?: Omit<UndiciConnectOptions, 'undici'>
}

/**
 * The client half: keeps the tickets servers hand out, per origin (host, port, servername,
 * ALPN protocols and every option that makes a session unusable elsewhere), and offers them
 * again. Picks up the renewed ticket of a resumed TLS 1.2 connection from `getSession()`,
 * keeps a pool of TLS 1.3 tickets so concurrent connections offer different ones, drops
 * tickets past their lifetime hint or 7 days, and forgets an origin's tickets when a
 * connection that offered one fails before its handshake completes. A session never replaces certificate or hostname checks.
 */
export declare class SessionCache {
  constructor(options?: SessionCacheOptions)
  /** Same arguments and result as `tls.connect()`. */
  connect(options: import('node:tls').ConnectionOptions, secureConnectListener?: () => void): import('node:tls').TLSSocket
  connect(port: number, host?: string, options?: import('node:tls').ConnectionOptions, secureConnectListener?: () => void): import('node:tls').TLSSocket
  connect(port: number, options?: import('node:tls').ConnectionOptions, secureConnectListener?: () => void): import('node:tls').TLSSocket
  /** An `https.Agent` whose connections resume through this cache; keep-alive works as usual. */
  httpsAgent(agentOptions?: import('node:https').AgentOptions): import('node:https').Agent
  /**
   * An undici `Agent` whose connections resume through this cache, for `fetch(url, { dispatcher })`
   * and `setGlobalDispatcher()`. Throws `ERR_TLS_TICKET_UNDICI_VERSION` when the built-in `fetch`
   * of this Node cannot use that undici's Agent (undici 8 before Node 26, undici 6 from Node 26;
   * undici 7 fits all), and `ERR_TLS_TICKET_UNDICI_UNAVAILABLE` when undici is not installed.
   *
   * Given `{ undici }`, typed as that module's own Agent. Without it, as the Agent of
   * `undici-types` that is also assignable to the `Dispatcher` of undici 6, 7 and 8
   * (`SessionCacheDispatcher`), so that `setGlobalDispatcher(cache.dispatcher())` compiles
   * whichever undici and @types/node a project has.
   */
  dispatcher<AgentType>(options: SessionCacheDispatcherOptions & { undici: { Agent: new (options?: any) => AgentType } }): AgentType
  dispatcher(options?: SessionCacheDispatcherOptions): SessionCacheDispatcher
  /** A connect function for `new undici.Agent({ connect })`: TLS through this cache, plain TCP through undici's connector. */
  undiciConnect(options?: UndiciConnectOptions): import('undici-types').buildConnector.connector
  /** Forgets every session of `'host:port'`; whether there was one. */
  delete(origin: string): boolean
  clear(): void
  /**
   * offered: connections that offered a cached ticket; resumed and full: how their handshakes
   * went; unreadable: sessions it could not read (and so never offers): should stay 0;
   * uncached: connections with an option the cache cannot judge, which it neither offers a
   * session nor keeps one from.
   */
  stats(): { offered: number; resumed: number; full: number; unreadable: number; uncached: number; origins: number; tickets: number }
  readonly size: number
}

/** What a session (from a `'session'` event or `getSession()`) says about itself; nothing secret. */
export interface SessionInfo {
  protocol: 'TLSv1.2' | 'TLSv1.3' | string
  /** The IANA number of the cipher suite. */
  cipherSuite: number
  /** The cipher suite's standard (IANA) name, e.g. 'TLS_AES_256_GCM_SHA384'; null for a suite outside OpenSSL's DEFAULT list and TLS 1.3's. */
  cipherName: string | null
  createdAt: Date
  /** Seconds the session stays resumable by the issuing side's reckoning. */
  timeout: number
  /** Seconds the server said its ticket is good for; 0 when it did not say. */
  ticketLifetimeHint: number
  /** When a client should stop offering it: creation plus the hint (or timeout), at most 7 days. */
  expiresAt: Date
  serverName: string | null
  alpn: string | null
  /** The ticket's key name in hex: which key sealed it. */
  ticketKeyName: string | null
  /** The ticket's IV in hex; unique per ticket. */
  ticketIv: string | null
}

/** @throws {TypeError} ERR_INVALID_ARG_TYPE for a non-buffer, ERR_INVALID_ARG_VALUE for bytes that are not a session */
export declare function inspectSession(session: NodeJS.ArrayBufferView): SessionInfo

export interface TicketReport {
  /** The key name the ticket claims, in hex; null when it is too short to be a ticket. */
  keyName: string | null
  /** The state of that key in the ring; 'unknown' when retired or never the ring's. */
  keyState: KeyState | 'unknown'
  /** The session inside, once the ticket opened (MAC verified in constant time first). */
  session: SessionInfo | null
  /** Why it did not open. */
  error: string | null
  /**
   * A ring of `secretFile` only: the fingerprint of the secret whose key sealed the ticket,
   * or null when none of its secrets did. A key of a listed secret other than the one sealing
   * shows as 'previous': it opens the ticket, which is renewed under the current key.
   */
  secret?: string | null
}

/** Which of `ring`'s keys sealed `ticket` (from `socket.getTLSTicket()`), and what it holds. */
export declare function inspectTicket(ticket: NodeJS.ArrayBufferView, ring: TicketKeyRing): TicketReport

/**
 * Fresh key material from the CSPRNG: `size` bytes, a multiple of 48 (Node's layout) or of 80
 * (the extended layout), at most 81920. Without `size`, one key in the layout of a default
 * `new TicketKeyRing()`: 80 bytes where the native mode is available, else 48, so that
 * `ring.setTicketKeys(generateTicketKeys())` fits a default ring.
 */
export declare function generateTicketKeys(size?: number): Buffer

/**
 * What `registerMetrics()` needs of a prom-client `Registry` (prom-client 15 or later, whose
 * `Registry` fits); prom-client itself stays an optional dependency.
 */
export interface MetricsRegistry {
  registerMetric(metric: any): void
  getSingleMetric(name: string): any
  removeSingleMetric(name: string): void
  metrics(): Promise<string>
  readonly contentType: string
}

/** A ring's place in a registry. */
export interface MetricsRegistration {
  /** Takes the ring's series out of the registry; the last ring takes the metrics with it. Idempotent. */
  unregister(): void
}

/**
 * Puts the ring's metrics into a prom-client registry (prom-client's default registry when
 * none is given): the same families as `ring.metrics()`, labelled `ring="<ring.name>"`, read
 * from the ring at every scrape, valid in both content types (Prometheus text and
 * OpenMetrics). Several rings share a registry, also rings of another copy of this package in
 * the process; a destroyed ring drops out at the next scrape.
 * @throws {TypeError} ERR_INVALID_ARG_TYPE for something that is not a ring or a registry;
 *   ERR_INVALID_ARG_VALUE for a ring registered there already, a ring whose name another ring
 *   there has, or a registry holding a `tls_ticket_keys_*` metric of someone else's
 * @throws {Error} ERR_INVALID_STATE for a destroyed ring; ERR_TLS_TICKET_PROM_CLIENT_UNAVAILABLE
 *   when prom-client is not installed
 */
export declare function registerMetrics(ring: TicketKeyRing, registry?: MetricsRegistry): MetricsRegistration

/**
 * `tls-ticket-keys:rotate`: the ring's current key changed, seen by `rotate()`,
 * `setTicketKeys()`, a store or cluster feed, or the ring's timer just after each epoch
 * boundary (cause 'schedule').
 */
export interface RotateMessage {
  ring: string
  /** Key names in hex (public: every ticket starts with its key's name). */
  current: string | null
  previous: string | null
  keys: { name: string; state: KeyState }[]
  cause: 'schedule' | 'rotate' | 'setTicketKeys' | 'feed'
}

/**
 * `tls-ticket-keys:fallback`: a fed ring sealed its first ticket with a key it made itself,
 * because its feed was late; published within a round of the feed (or at the next boundary).
 */
export interface FallbackMessage {
  ring: string
  /** The name of that key. */
  key: string
  /**
   * `'derived'`: the key every member of a RedisKeyStore fleet derives alike for that epoch;
   * `'local'`: a random key of this process (`fallback: 'local'`, or a cluster worker).
   */
  kind: 'derived' | 'local'
  /** `ring.stats().fallbackKeys` after it. */
  fallbackKeys: number
}

/** `tls-ticket-keys:refused`: a ticket that did not resume, for the reason `handle.stats()` counts. */
export interface RefusedMessage {
  ring: string
  /** The server, as the metrics' `server` label: `127.0.0.1:443`, `[::1]:443`, a socket path, or `unbound`. */
  server: string
  reason: 'unknownKey' | 'expiredKey' | 'notResumed'
}

/** `tls-ticket-keys:store-error`: a Redis error of a `RedisKeyStore`, without credentials. */
export interface StoreErrorMessage {
  /** The rings concerned: the one being fed, or every ring of the store for the client's own errors. */
  rings: string[]
  /** Redis operations, or an exporter's: 'haproxy show tls-keys', 'haproxy set ssl tls-key', 'nginx write', 'nginx reload'. */
  operation: 'connect' | 'client' | 'fetch' | 'agree' | 'close' | 'haproxy show tls-keys' | 'haproxy set ssl tls-key' | 'nginx write' | 'nginx reload'
  error: { name: string; code?: string; message: string }
}

/** `exportKeys(ring, { haproxy })`: HAProxy's runtime API, no reload. */
export interface HaproxyExportOptions {
  /** The runtime API socket (`stats socket … level admin`). */
  socket: string
  /** The `tls-ticket-keys` file named on HAProxy's bind, as HAProxy knows it (its reference). */
  keyFile: string
  /**
   * HAProxy holds 3 keys (previous, current, next), so a ring whose ticketLifetime exceeds its
   * rotationInterval is refused (ERR_OUT_OF_RANGE) unless this is true: HAProxy then opens a
   * ticket for one to two intervals, and stats().truncatedKeys counts the keys it drops early.
   */
  truncate?: boolean
}

/** `exportKeys(ring, { nginx })`: key files in `dir`, then `reload`. */
export interface NginxExportOptions {
  /** Where current.key, next.key and previous-1.key … previous-N.key are kept (mode 0600). */
  dir: string
  /** The reload command as argv (no shell), e.g. ['nginx', '-s', 'reload']. */
  reload: string[]
}

export interface KeyExportStats {
  target: 'haproxy' | 'nginx'
  /** Syncs that ended well (HAProxy agreed, or nginx's files were current and reloaded). */
  syncs: number
  /** `set ssl tls-key` commands HAProxy accepted. */
  pushes: number
  /** Times nginx's files were written. */
  writes: number
  /** Reload commands that exited 0. */
  reloads: number
  /** Read-backs (`show tls-keys`) that matched the ring's window. */
  confirmed: number
  failures: number
  retries: number
  /** HAProxy with truncate: previous keys the ring holds that HAProxy dropped early. */
  truncatedKeys: number
  /** Whether the last attempt failed. */
  down: boolean
  lastSyncAt: Date | null
  lastError: { name: string; code?: string; message: string; operation: string } | null
  /** Milliseconds from the last epoch boundary to the server holding the new window. */
  boundaryLagMs: number | null
}

export interface KeyExportSyncEvent {
  target: 'haproxy' | 'nginx'
  operation: string
  /** Key names (public: the first 16 bytes of every ticket), hex. */
  current: string | null
  next: string | null
  rotated: boolean
  lagMs: number
}

export interface KeyExportFailureEvent {
  target: 'haproxy' | 'nginx'
  operation: string
  code?: string
  message: string
  retryInMs: number
}

/** What exportKeys() returns. Emits 'sync', 'failure' and 'recovered', never 'error'. */
export interface KeyExport {
  stats(): KeyExportStats
  /** Stops exporting; the server keeps the keys it has. */
  close(): Promise<void>
  on(event: 'sync', listener: (e: KeyExportSyncEvent) => void): this
  on(event: 'failure', listener: (e: KeyExportFailureEvent) => void): this
  on(event: 'recovered', listener: (e: { target: 'haproxy' | 'nginx'; failures: number }) => void): this
  off(event: string, listener: (...args: any[]) => void): this
  toJSON(): { target: 'haproxy' | 'nginx'; ring: string; closed: boolean }
}

/**
 * Keeps HAProxy or nginx on the ring's keys: at start and just after each epoch boundary (the
 * next key a full interval before it encrypts), retried on failure, with one process warning
 * (TLS_TICKET_EXPORT_FAILING / TLS_TICKET_EXPORT_RECOVERED) each way.
 */
export declare const exportKeys: {
  (ring: TicketKeyRing, options: { haproxy: HaproxyExportOptions } | { nginx: NginxExportOptions }): KeyExport
  /** The `ssl_session_ticket_key` lines for nginx's configuration, current.key first. */
  nginxConfig(ring: TicketKeyRing, dir: string): string
}
