'use strict'

// exportKeys(ring, { haproxy | nginx }): keeps HAProxy (runtime API, no reload) and nginx (key
// files, then a graceful reload) on the ring's window, so that a mixed edge rotates on the
// ring's schedule.
//
// Timing: the ring holds the next epoch's key for a full interval before it encrypts; each
// export runs just after every epoch boundary, so HAProxy and nginx hold that next key for the
// same interval, and encrypt with the ring's current key from a few milliseconds after the
// boundary (before that, with the key the ring now calls previous, which every ring still opens).
//
// Failures (a missing socket, an answer that is not what was asked, a reload that exits
// non-zero) are retried with a backoff, counted in stats(), published on
// `tls-ticket-keys:store-error`, and warned about once when they start and once when they end
// (outage-warnings.js); nothing is thrown into the event loop. When the server can be reached
// again, the current window goes to it at once.
//
// Key bytes reach JavaScript only from NativeRing.exportEdgeKeys() (and HAProxy's own read-back),
// in buffers wiped as soon as they are written or sent; no log, error or diagnostics message
// carries them, and files are written only in `nginx.dir`.

const { EventEmitter } = require('node:events')
const { spawn } = require('node:child_process')
const { createHash, randomBytes } = require('node:crypto')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { TicketKeyRing } = require('./ring.js')
const {
  invalidArgType, invalidArgValue, invalidState, outOfRange, validateObject, validateOptionNames,
} = require('./errors.js')
const { kExportEdgeKeys, whenDestroyed } = require('./internal.js')
const { publishStoreError } = require('./diagnostics.js')
const { OutageWarnings } = require('./outage-warnings.js')

// Just after each epoch boundary, as the ring's own timer (ring.js).
const AFTER_BOUNDARY_MS = 5
// Between boundaries, a look for changes the schedule does not make (a fed ring's next key
// arriving, HAProxy restarted with its file's keys): a quarter interval, within these bounds.
const MIN_POLL_MS = 250
const MAX_POLL_MS = 30_000
// Retries after a failure: 250 ms doubling, at most a quarter interval and at most 10 s.
const FIRST_RETRY_MS = 250
const MAX_RETRY_MS = 10_000
const COMMAND_TIMEOUT_MS = 5_000
const RELOAD_TIMEOUT_MS = 30_000
// After a reload's timeout, SIGTERM; this much later, SIGKILL to its whole process group.
const RELOAD_KILL_AFTER_MS = 2_000
// HAProxy's answers to these commands are under a kilobyte; more is not HAProxy.
const MAX_ANSWER_BYTES = 64 * 1024
// A character HAProxy's runtime API parses (`;` separates commands, `\\` escapes) or that
// nginx's configuration parser does (`;`, quotes, `{`, `}`, `#`, `$`): refused in paths given
// to either, so no path can smuggle a command or a directive.
const UNSAFE_PATH = /[\s;\\'"{}#$]/
// HAProxy decrypts with three keys (TLS_TICKETS_NO): previous, current, next.
const HAPROXY_SLOTS = 3
const NGINX_FIXED = ['current.key', 'next.key']
const TARGETS = ['haproxy', 'nginx']
const HAPROXY_OPTIONS = ['socket', 'keyFile', 'truncate']
const NGINX_OPTIONS = ['dir', 'reload']

/** Files in nginx's order, the first encrypting: current.key, next.key, previous-1.key … previous-N.key. */
function nginxFileNames(previousSlots) {
  const names = [...NGINX_FIXED]
  for (let i = 1; i <= previousSlots; i++) names.push(`previous-${i}.key`)
  return names
}

/** Previous slots nginx needs to open every live ticket: ceil(ticketLifetime / rotationInterval). */
function previousSlots(ring) {
  return Math.ceil(ring.ticketLifetime / ring.rotationInterval)
}

function validateRing(ring) {
  if (!(ring instanceof TicketKeyRing)) throw invalidArgType('ring', 'an instance of TicketKeyRing', ring)
  if (ring.destroyed) throw invalidState('the TicketKeyRing has been destroyed')
  return ring
}

function validatePath(value, name) {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  if (value.length === 0 || value.includes('\0') || UNSAFE_PATH.test(value)) {
    throw invalidArgValue(name, "must be a non-empty path without NUL, white space, or any of ; \\ ' \" { } # $ " +
      "(HAProxy's runtime API and nginx's configuration would parse them)")
  }
  return value
}

/**
 * The `ssl_session_ticket_key` lines for nginx's configuration (http or server block): every
 * file exportKeys() writes in `dir`, current first, since nginx encrypts with the first.
 */
function nginxConfig(ring, dir) {
  validateRing(ring)
  validatePath(dir, 'dir')
  return nginxFileNames(previousSlots(ring)).map((f) => `ssl_session_ticket_key ${path.join(path.resolve(dir), f)};`).join('\n') + '\n'
}

/** An error with a code and a message that quotes no key byte. */
function exportError(code, message) {
  const err = new Error(message)
  err.code = code
  return err
}

// Answers from HAProxy or a reload command go into error messages: first line, bounded,
// with anything that looks like base64 key material cut out.
function sanitize(text) {
  const line = String(text).split('\n').find((l) => l.trim() !== '') ?? ''
  return line.replace(/[A-Za-z0-9+/=]{24,}/g, '[…]').slice(0, 200).trim()
}

/** One runtime API command on a new connection; resolves with the answer's bytes. */
function runtimeCommand(socketPath, lineBuffer) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    const chunks = []
    const timer = setTimeout(() => {
      socket.destroy(exportError('ERR_TLS_TICKET_EXPORT_TIMEOUT', `HAProxy's runtime API did not answer within ${COMMAND_TIMEOUT_MS} ms`))
    }, COMMAND_TIMEOUT_MS)
    socket.on('connect', () => socket.end(lineBuffer))
    let size = 0
    socket.on('data', (d) => {
      chunks.push(d)
      size += d.length
      if (size > MAX_ANSWER_BYTES) {
        socket.destroy(exportError('ERR_TLS_TICKET_EXPORT_REFUSED', `the runtime API answered more than ${MAX_ANSWER_BYTES} bytes: not HAProxy`))
      }
    })
    socket.on('end', () => {
      clearTimeout(timer)
      const answer = Buffer.concat(chunks)
      for (const c of chunks) c.fill(0)
      resolve(answer)
    })
    socket.on('error', (err) => {
      clearTimeout(timer)
      for (const c of chunks) c.fill(0)
      reject(err)
    })
  })
}

/** Splits `bytes` on '\n' into views (no copies). */
function lines(bytes) {
  const out = []
  let start = 0
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      out.push(bytes.subarray(start, i))
      start = i + 1
    }
  }
  return out
}

const SPACE = 0x20

/** The key lines (`<ref>.<slot> <base64>`) of a `show tls-keys <file>` answer, as views. */
function shownKeys(answer) {
  const keys = []
  for (const line of lines(answer)) {
    if (line.length === 0 || line[0] === 0x23 /* # */) continue
    const space = line.indexOf(SPACE)
    if (space > 0 && line.subarray(0, space).includes(0x2e /* . */)) keys.push(line.subarray(space + 1))
  }
  return keys
}

const digest = (bytes) => createHash('sha256').update(bytes).digest()

/** A name/state fingerprint of the ring's keys (public: key names start every ticket). */
function fingerprint(ring) {
  return ring.keys().map((k) => `${k.state}:${k.name}`).join(',')
}

class Exporter extends EventEmitter {
  #ring
  #target
  #options
  #closed = false
  #running = null
  #again = false
  #boundaryTimer = null
  #pollTimer = null
  #retryTimer = null
  #failuresInRow = 0
  #outage
  #lastFingerprint = null
  #lastCurrent = null
  #epochStart = 0
  #truncatedNames = new Set()
  #reloadPending = false
  #stats = {
    target: '', syncs: 0, pushes: 0, writes: 0, reloads: 0, confirmed: 0, failures: 0, retries: 0, truncatedKeys: 0,
    down: false, lastSyncAt: null, lastError: null, boundaryLagMs: null,
  }

  constructor(ring, target, options) {
    super()
    this.#ring = ring
    this.#target = target
    this.#options = options
    this.#stats.target = target
    this.#outage = new OutageWarnings(true, {
      what: target === 'haproxy' ? `HAProxy runtime API for ${options.keyFile}` : `nginx key files in ${options.dir}`,
      outage: 'TLS_TICKET_EXPORT_FAILING',
      recovered: 'TLS_TICKET_EXPORT_RECOVERED',
      meanwhile: 'Node servers keep serving on the ring; the current window is sent as soon as it answers',
    })
    whenDestroyed(ring, () => { this.close().catch(() => {}) })
    this.#epochStart = this.#currentEpochStart()
    this.#request()
    this.#scheduleBoundary()
    this.#schedulePoll()
  }

  get #intervalMs() {
    return this.#ring.rotationInterval * 1000
  }

  #currentEpochStart() {
    return Math.floor(Date.now() / this.#intervalMs) * this.#intervalMs
  }

  #scheduleBoundary() {
    if (this.#closed) return
    const interval = this.#intervalMs
    const wait = interval - (Date.now() % interval) + AFTER_BOUNDARY_MS
    this.#boundaryTimer = setTimeout(() => {
      this.#epochStart = this.#currentEpochStart()
      this.#request()
      this.#scheduleBoundary()
    }, wait)
  }

  #schedulePoll() {
    if (this.#closed) return
    const every = Math.min(MAX_POLL_MS, Math.max(MIN_POLL_MS, this.#intervalMs / 4))
    this.#pollTimer = setInterval(() => this.#request(), every)
  }

  /** Runs one sync now, or once more after the one under way. Never rejects. */
  #request() {
    if (this.#closed) return
    if (this.#running) {
      this.#again = true
      return
    }
    clearTimeout(this.#retryTimer)
    this.#retryTimer = null
    this.#running = this.#syncOnce().finally(() => {
      this.#running = null
      if (this.#again && !this.#closed) {
        this.#again = false
        this.#request()
      }
    })
  }

  async #syncOnce() {
    try {
      const changed = this.#target === 'haproxy' ? await this.#syncHaproxy() : await this.#syncNginx()
      this.#succeeded(changed)
    } catch (err) {
      this.#failed(err)
    }
  }

  #succeeded(changed) {
    this.#stats.syncs++
    this.#stats.lastSyncAt = new Date()
    if (this.#failuresInRow > 0) this.#tell('recovered', { target: this.#target, failures: this.#failuresInRow })
    this.#failuresInRow = 0
    this.#stats.down = false
    this.#outage.ok([this.#ring.name])
    if (changed === null) return
    const { current, next, operation } = changed
    const rotated = current !== this.#lastCurrent
    this.#lastCurrent = current
    if (rotated) this.#stats.boundaryLagMs = Date.now() - this.#epochStart
    this.#tell('sync', { target: this.#target, operation, current, next, rotated, lagMs: Date.now() - this.#epochStart })
  }

  #failed(err) {
    if (this.#closed) return
    this.#stats.failures++
    this.#failuresInRow++
    this.#stats.down = true
    this.#lastFingerprint = null
    const operation = err?.operation ?? this.#target
    const rings = [this.#ring.name]
    publishStoreError(rings, operation, err)
    this.#stats.lastError = { name: err?.name ?? 'Error', code: err?.code, message: sanitize(err?.message ?? err), operation }
    this.#outage.failed(err, operation, rings)
    const delay = Math.min(MAX_RETRY_MS, Math.max(FIRST_RETRY_MS, this.#intervalMs / 4), FIRST_RETRY_MS * 2 ** (this.#failuresInRow - 1))
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null
      this.#stats.retries++
      this.#request()
    }, delay)
    this.#tell('failure', { target: this.#target, operation, code: this.#stats.lastError.code, message: this.#stats.lastError.message, retryInMs: delay })
  }

  // Events are the listener's business: one that throws neither fails the export nor escapes
  // into the exporter's promises; it is reported as any uncaught exception, in its own turn.
  #tell(event, details) {
    try {
      this.emit(event, details)
    } catch (err) {
      process.nextTick(() => {
        throw err
      })
    }
  }

  // ---- HAProxy ----

  async #command(line, operation) {
    try {
      return await runtimeCommand(this.#options.socket, line)
    } catch (err) {
      err.operation = operation
      throw err
    }
  }

  async #show() {
    const keyFile = this.#options.keyFile
    const answer = await this.#command(Buffer.from(`show tls-keys ${keyFile}\n`), 'haproxy show tls-keys')
    const keys = shownKeys(answer)
    if (keys.length !== HAPROXY_SLOTS) {
      const text = sanitize(answer.toString('latin1'))
      answer.fill(0)
      const err = exportError('ERR_TLS_TICKET_EXPORT_REFUSED', `HAProxy's show tls-keys ${keyFile} did not list ${HAPROXY_SLOTS} keys: ${text || 'empty answer'}`)
      err.operation = 'haproxy show tls-keys'
      throw err
    }
    return { answer, keys }
  }

  async #set(line) {
    const prefix = Buffer.from(`set ssl tls-key ${this.#options.keyFile} `)
    const command = Buffer.concat([prefix, line, Buffer.from('\n')])
    let answer
    try {
      answer = await this.#command(command, 'haproxy set ssl tls-key')
    } finally {
      command.fill(0)
    }
    const text = answer.toString('latin1')
    answer.fill(0)
    if (!/TLS ticket key updated/.test(text)) {
      const err = exportError('ERR_TLS_TICKET_EXPORT_REFUSED', `HAProxy refused set ssl tls-key ${this.#options.keyFile}: ${sanitize(text) || 'empty answer'}`)
      err.operation = 'haproxy set ssl tls-key'
      throw err
    }
    this.#stats.pushes++
  }

  async #syncHaproxy() {
    const print = fingerprint(this.#ring)
    let shown = await this.#show()
    let exported
    try {
      // Nothing changed in the ring since HAProxy last agreed: only check that HAProxy still holds
      // what it held then (a restart reloads its file's keys).
      if (print === this.#lastFingerprint && this.#matchesLast(shown.keys)) return null
      exported = this.#ring[kExportEdgeKeys]('haproxy', 1)
      const want = lines(exported.keys).filter((l) => l.length > 0)
      this.#countTruncated(exported)
      const same = (a, b) => a.length === b.length && a.equals(b)
      let pushed = 0
      if (!want.every((w, i) => same(w, shown.keys[i]))) {
        // HAProxy writes its oldest slot and encrypts with the key before the one written:
        // after one boundary, one push (the new next key); otherwise all three, oldest first.
        const shifted = same(shown.keys[1], want[0]) && same(shown.keys[2], want[1])
        shown.answer.fill(0)
        shown = null
        for (const line of shifted ? [want[2]] : want) {
          await this.#set(line)
          pushed++
        }
        shown = await this.#show()
        if (!want.every((w, i) => same(w, shown.keys[i]))) {
          const err = exportError('ERR_TLS_TICKET_EXPORT_MISMATCH', `HAProxy's keys for ${this.#options.keyFile} differ from the ring's window after the push (another writer?)`)
          err.operation = 'haproxy show tls-keys'
          throw err
        }
      }
      this.#stats.confirmed++
      this.#lastFingerprint = print
      this.#lastDigests = shown.keys.map(digest)
      return { current: exported.names[1], next: exported.names[2], operation: pushed === 0 ? 'confirmed' : `pushed ${pushed}` }
    } finally {
      shown?.answer.fill(0)
      exported?.keys.fill(0)
    }
  }

  #lastDigests = null

  /** Whether HAProxy shows the lines it showed when it last agreed (compared by digest). */
  #matchesLast(keys) {
    return this.#lastDigests !== null && keys.every((line, i) => digest(line).equals(this.#lastDigests[i]))
  }

  /** Previous keys the ring holds that HAProxy no longer does (truncate: true), each counted once. */
  #countTruncated(exported) {
    if (exported.leftOut === 0) {
      this.#truncatedNames.clear()
      return
    }
    const held = new Set(exported.names)
    const previous = this.#ring.keys().filter((k) => k.state === 'previous' && !held.has(k.name)).map((k) => k.name)
    for (const name of previous) {
      if (!this.#truncatedNames.has(name)) {
        this.#truncatedNames.add(name)
        this.#stats.truncatedKeys++
      }
    }
    for (const name of this.#truncatedNames) if (!previous.includes(name)) this.#truncatedNames.delete(name)
  }

  // ---- nginx ----

  async #syncNginx() {
    const print = fingerprint(this.#ring)
    let wrote = false
    if (print !== this.#lastFingerprint) {
      await this.#writeNginxFiles()
      this.#lastFingerprint = print
      this.#reloadPending = true
      wrote = true
    }
    if (!this.#reloadPending) return null
    await this.#reload()
    this.#reloadPending = false
    const keys = this.#ring.keys()
    const name = (state) => keys.find((k) => k.state === state)?.name ?? null
    return { current: name('current'), next: name('next'), operation: wrote ? 'wrote and reloaded' : 'reloaded' }
  }

  async #writeNginxFiles() {
    const { dir } = this.#options
    const slots = previousSlots(this.#ring)
    const names = nginxFileNames(slots)
    const exported = this.#ring[kExportEdgeKeys]('nginx', slots)
    try {
      const size = exported.keys.length / names.length
      await fs.promises.mkdir(dir, { recursive: false, mode: 0o700 }).catch((err) => { if (err.code !== 'EEXIST') throw err })
      for (let i = 0; i < names.length; i++) {
        await writeAtomically(path.join(dir, names[i]), exported.keys.subarray(i * size, (i + 1) * size))
      }
      await syncDir(dir)
      this.#stats.writes++
    } catch (err) {
      err.operation ??= 'nginx write'
      throw err
    } finally {
      exported.keys.fill(0)
    }
  }

  #reload() {
    const [command, ...args] = this.#options.reload
    return new Promise((resolve, reject) => {
      // No shell, and no pipes: the command ends when it exits, even if it leaves a process
      // running (a wrapper that starts nginx). Its own process group, so a timeout ends all of it.
      const child = spawn(command, args, { stdio: 'ignore', windowsHide: true, detached: process.platform !== 'win32' })
      const killGroup = (signal) => {
        try {
          if (process.platform === 'win32') child.kill(signal)
          else process.kill(-child.pid, signal)
        } catch {
          // Gone already.
        }
      }
      let timedOut = false
      let killer = null
      const timer = setTimeout(() => {
        timedOut = true
        killGroup('SIGTERM')
        killer = setTimeout(() => killGroup('SIGKILL'), RELOAD_KILL_AFTER_MS)
      }, RELOAD_TIMEOUT_MS)
      const fail = (how) => {
        const failure = exportError('ERR_TLS_TICKET_EXPORT_RELOAD', `nginx reload command ${path.basename(command)} ${how}`)
        failure.operation = 'nginx reload'
        reject(failure)
      }
      child.once('error', (err) => {
        clearTimeout(timer)
        clearTimeout(killer)
        fail(err.code === 'ENOENT' ? 'was not found' : `failed (${err.code ?? err.name})`)
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        clearTimeout(killer)
        if (timedOut) return fail(`did not finish within ${RELOAD_TIMEOUT_MS / 1000} s and was killed`)
        if (code === 0) {
          this.#stats.reloads++
          return resolve()
        }
        fail(signal ? `was killed (${signal})` : `exited with code ${code}`)
      })
    })
  }

  // ---- handle ----

  /** Counters and state; no key bytes (key names are public: they start every ticket). */
  stats() {
    return { ...this.#stats, lastError: this.#stats.lastError && { ...this.#stats.lastError } }
  }

  /** Stops exporting; resolves once a sync under way has finished. Files and HAProxy keep their keys. */
  async close() {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#boundaryTimer)
    clearInterval(this.#pollTimer)
    clearTimeout(this.#retryTimer)
    await this.#running
  }

  toJSON() {
    return { target: this.#target, ring: this.#ring.name, closed: this.#closed }
  }
}

async function writeAtomically(file, bytes) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  let handle
  try {
    handle = await fs.promises.open(tmp, 'wx', 0o600)
    await handle.writeFile(bytes)
    await handle.sync()
    await handle.close()
    handle = null
    await fs.promises.rename(tmp, file)
  } catch (err) {
    await handle?.close().catch(() => {})
    await fs.promises.rm(tmp, { force: true }).catch(() => {})
    throw err
  }
}

async function syncDir(dir) {
  let handle
  try {
    handle = await fs.promises.open(dir, 'r')
    await handle.sync()
  } catch {
    // Some file systems cannot fsync a directory; the renames stand.
  } finally {
    await handle?.close().catch(() => {})
  }
}

/**
 * Keeps HAProxy (`{ haproxy: { socket, keyFile, truncate? } }`) or nginx (`{ nginx: { dir,
 * reload } }`) on the ring's keys. Returns a handle: stats(), close(), and events 'sync',
 * 'failure' and 'recovered' (never 'error').
 */
function exportKeys(ring, options) {
  validateRing(ring)
  validateObject(options, 'options')
  validateOptionNames(options, 'options', TARGETS)
  const given = TARGETS.filter((t) => options[t] !== undefined)
  if (given.length !== 1) throw invalidArgValue('options', 'must have exactly one of haproxy and nginx (one exporter each)')
  const [target] = given
  const o = options[target]
  validateObject(o, `options.${target}`)
  if (target === 'haproxy') {
    validateOptionNames(o, 'options.haproxy', HAPROXY_OPTIONS)
    const socket = validatePath(o.socket, 'options.haproxy.socket')
    const keyFile = validatePath(o.keyFile, 'options.haproxy.keyFile')
    if (/\s/.test(keyFile)) throw invalidArgValue('options.haproxy.keyFile', 'must have no spaces (HAProxy\'s runtime API splits on them)')
    if (o.truncate !== undefined && typeof o.truncate !== 'boolean') throw invalidArgType('options.haproxy.truncate', 'of type boolean', o.truncate)
    if (ring.ticketLifetime > ring.rotationInterval && o.truncate !== true) {
      throw outOfRange('ring.ticketLifetime',
        `<= the ring's rotationInterval (${ring.rotationInterval}) to export to HAProxy, which holds ${HAPROXY_SLOTS} keys ` +
        '(previous, current, next: TLS_TICKETS_NO), so it opens a ticket for one to two intervals; ' +
        'or pass options.haproxy.truncate: true (tls-ticket-keys edge: --haproxy-truncate) to accept that (stats().truncatedKeys counts the keys it drops early)',
        ring.ticketLifetime)
    }
    return new Exporter(ring, 'haproxy', { socket, keyFile, truncate: o.truncate === true })
  }
  validateOptionNames(o, 'options.nginx', NGINX_OPTIONS)
  const dir = validatePath(o.dir, 'options.nginx.dir')
  if (!Array.isArray(o.reload) || o.reload.length === 0 || !o.reload.every((a) => typeof a === 'string') || o.reload[0] === '') {
    throw invalidArgType('options.nginx.reload', 'a non-empty array of strings (argv: the command and its arguments; no shell)', o.reload)
  }
  return new Exporter(ring, 'nginx', { dir: path.resolve(dir), reload: [...o.reload] })
}

exportKeys.nginxConfig = nginxConfig

module.exports = { exportKeys, nginxConfig, nginxFileNames }
