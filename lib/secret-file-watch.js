'use strict'

// A secret file's ring, kept on the file: the first read (synchronous, refused with a coded
// error), then every change seen by a directory watch or a periodic re-check. A bad change
// (unreadable, empty, truncated, refused) never costs a resumption: the ring keeps its last
// good secrets, counts the failure (stats().secretFileErrors, once per bad version), publishes
// it on `tls-ticket-keys:store-error` and on `tls-ticket-keys:secret`, and warns once until a
// good version is read. The next good version is taken.

const path = require('node:path')
const { fileURLToPath } = require('node:url')
const { readSecretFile, parseSecretFile, loadSecretFile, secretFileError, watchSecretFile, LineError } = require('./secret-file.js')
const { callNative, invalidArgType, invalidArgValue, outOfRange } = require('./errors.js')
const { channels, publishStoreError } = require('./diagnostics.js')

const DEFAULT_CHECK_INTERVAL = 10 // seconds
const MIN_CHECK_INTERVAL = 0.05
const MAX_CHECK_INTERVAL = 3600
const TYPE = 'TlsTicketKeysWarning'
const REFUSED = 'TLS_TICKET_SECRET_FILE_REFUSED'
const RECOVERED = 'TLS_TICKET_SECRET_FILE_RECOVERED'
const DROPPED = 'TLS_TICKET_SECRET_DROPPED'

/** { file (absolute), intervalMs } of a ring's options, or a coded error. */
function validateSecretFileOptions(options) {
  for (const other of ['secret', 'keys', 'previousSecrets']) {
    if (options[other] !== undefined) {
      throw invalidArgValue(`options.${other}`, 'cannot go with options.secretFile: the file lists the fleet\'s secrets ' +
        '(a line with a secret alone is active since the beginning of time)')
    }
  }
  let file = options.secretFile
  if (file instanceof URL) file = fileURLToPath(file)
  if (typeof file !== 'string') throw invalidArgType('options.secretFile', 'of type string or an instance of URL', options.secretFile)
  if (file === '' || file.includes('\0')) throw invalidArgValue('options.secretFile', 'must be a path')
  const seconds = options.secretFileCheckInterval ?? DEFAULT_CHECK_INTERVAL
  if (typeof seconds !== 'number') throw invalidArgType('options.secretFileCheckInterval', 'of type number', seconds)
  if (!(seconds >= MIN_CHECK_INTERVAL && seconds <= MAX_CHECK_INTERVAL)) {
    throw outOfRange('options.secretFileCheckInterval', `>= ${MIN_CHECK_INTERVAL} && <= ${MAX_CHECK_INTERVAL} (seconds)`, seconds)
  }
  return { file: path.resolve(file), intervalMs: Math.round(seconds * 1000) }
}

/** The coded error of a file refused at construction. */
function constructionError(file, err) {
  if (err instanceof LineError || (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code))) return secretFileError(file, err)
  // The Rust side's checks (src/secrets.rs): a line's secret or time, already numbered.
  if (err?.code === 'ERR_INVALID_ARG_VALUE') return invalidArgValue('options.secretFile', `(${file}) ${err.message}`)
  return err
}

function date(seconds) {
  return seconds == null ? null : new Date(seconds * 1000)
}

class SecretFileWatch {
  /** The Rust ring. */
  native
  #file
  #intervalMs
  /** SHA-256 of the version the ring holds. */
  #digest
  /** What identifies the bad version seen last (a digest or an error code), or null. */
  #failing = null
  #warnedFailing = false
  #errors = 0
  #changes = 0
  #dropped = 0
  #name = ''
  #keyWatcher = null
  #watch = null
  #closed = false
  #warnedStale = new Set()

  /** Reads `file` now; `make(lines, activations, secrets)` makes the Rust ring. */
  static open({ file, intervalMs }, make) {
    let loaded
    try {
      loaded = loadSecretFile(file, make)
    } catch (err) {
      throw constructionError(file, err)
    }
    return new SecretFileWatch(file, intervalMs, loaded.result, loaded.digest)
  }

  constructor(file, intervalMs, native, digest) {
    this.#file = file
    this.#intervalMs = intervalMs
    this.native = native
    this.#digest = digest
  }

  /** Starts watching, once the ring has its name; warns about lines of secrets dropped already. */
  start(name, keyWatcher) {
    this.#name = name
    this.#keyWatcher = keyWatcher
    this.#warnStale(this.native.staleSecretLines)
    this.#watch = watchSecretFile(this.#file, this.#intervalMs, () => this.reload())
  }

  close() {
    this.#closed = true
    this.#watch?.close()
    this.#watch = null
  }

  /** Reads the file again; takes it if it changed and is good. */
  reload() {
    if (this.#closed || this.native.destroyed) return
    let read
    try {
      read = readSecretFile(this.#file)
    } catch (err) {
      this.#failed(err, `read ${err?.code ?? err?.message}`)
      return
    }
    if (read.digest === this.#digest || read.digest === this.#failing) {
      read.bytes.fill(0)
      if (read.digest === this.#digest) this.#recovered()
      return
    }
    let update
    try {
      let parsed
      try {
        parsed = parseSecretFile(read.bytes)
      } finally {
        read.bytes.fill(0)
      }
      try {
        update = callNative(() => this.native.updateSecrets(parsed.lines, parsed.activations, parsed.secrets))
      } finally {
        for (const s of parsed.secrets) s.fill(0)
      }
    } catch (err) {
      this.#failed(err, read.digest)
      return
    }
    this.#digest = read.digest
    this.#changes++
    this.#recovered()
    if (channels.secret.hasSubscribers) {
      channels.secret.publish({
        ring: this.#name, event: 'read', file: this.#file, added: update.added, removed: update.removed,
        secrets: this.secrets().map(({ fingerprint, state, activatesAt }) => ({ fingerprint, state, activatesAt })),
      })
    }
    this.#warnStale(update.staleLines)
    this.#keyWatcher?.check(this.native, 'secretFile')
  }

  #failed(err, key) {
    if (key === this.#failing) return
    this.#failing = key
    this.#errors++
    const reason = err instanceof LineError ? err.message
      : typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code) ? `cannot be read (${err.code})`
        : String(err?.message ?? err)
    publishStoreError([this.#name], 'secretFile', err)
    if (channels.secret.hasSubscribers) {
      channels.secret.publish({ ring: this.#name, event: 'refused', file: this.#file, reason, secretFileErrors: this.#errors })
    }
    if (this.#warnedFailing) return
    this.#warnedFailing = true
    process.emitWarning(`Secret file ${this.#file} of ring ${this.#name} refused: ${reason}; the ring keeps its last good ` +
      'secrets until a good version is read (one warning now, one when a good version is read)', { type: TYPE, code: REFUSED })
  }

  #recovered() {
    if (this.#failing === null) return
    this.#failing = null
    if (!this.#warnedFailing) return
    this.#warnedFailing = false
    process.emitWarning(`Secret file ${this.#file} of ring ${this.#name} read again`, { type: TYPE, code: RECOVERED })
  }

  #warnStale(lines) {
    for (const line of lines) {
      if (this.#warnedStale.has(line)) continue
      this.#warnedStale.add(line)
      process.emitWarning(`Line ${line} of secret file ${this.#file} (ring ${this.#name}) lists a secret dropped already: ` +
        'a newer secret took over sealing more than a ticket lifetime ago. The line can go', { type: TYPE, code: DROPPED })
    }
  }

  /** Wipes the secrets whose time to go has come; warns and publishes each. */
  dropExpired() {
    if (this.#closed || this.native.destroyed) return
    let dropped
    try {
      dropped = this.native.dropSecrets()
    } catch {
      return
    }
    for (const { fingerprint, line } of dropped) {
      this.#dropped++
      this.#warnedStale.add(line)
      if (channels.secret.hasSubscribers) channels.secret.publish({ ring: this.#name, event: 'dropped', secret: fingerprint, line })
      process.emitWarning(`Secret ${fingerprint} (line ${line} of ${this.#file}, ring ${this.#name}) dropped and wiped: a newer ` +
        'secret took over sealing a ticket lifetime ago. The line can go', { type: TYPE, code: DROPPED })
    }
  }

  /** Milliseconds until the next secret is dropped, if one is due. */
  msUntilDrop() {
    if (this.#closed || this.native.destroyed) return undefined
    const times = this.native.secrets().map((s) => s.dropsAt).filter((t) => t != null)
    if (times.length === 0) return undefined
    return Math.max(1, Math.min(...times) * 1000 - Date.now() + 5)
  }

  secrets() {
    if (this.native.destroyed) return []
    return this.native.secrets().map((s) => ({
      fingerprint: s.fingerprint,
      line: s.line,
      activatesAt: s.activatesAt === 0 ? null : date(s.activatesAt),
      sealsFrom: date(s.sealsFrom),
      dropsAt: date(s.dropsAt),
      state: s.state,
    }))
  }

  stats() {
    return { secretFileChanges: this.#changes, secretFileErrors: this.#errors, secretsDropped: this.#dropped }
  }
}

module.exports = { SecretFileWatch, validateSecretFileOptions, REFUSED, RECOVERED, DROPPED }
