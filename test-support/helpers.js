'use strict'

const { spawn } = require('node:child_process')
const { once } = require('node:events')
const path = require('node:path')
const tls = require('node:tls')
const { selfSignedCertificate } = require('../lib/selfsigned.js')

const { key, cert } = selfSignedCertificate()
const HOST = '127.0.0.1'

function tlsServer(options = {}, onSecure) {
  const server = tls.createServer({ key, cert, ...options }, (socket) => {
    if (onSecure) onSecure(socket)
    socket.end('hi')
  })
  // A client that gives up mid-handshake must not fail a test.
  server.on('tlsClientError', () => {})
  return server
}

async function listen(server) {
  server.listen(0, HOST)
  await once(server, 'listening')
  return server.address().port
}

function close(server) {
  return new Promise((resolve) => server.close(() => resolve()))
}

/**
 * One TLS connection to 127.0.0.1:port. Resolves with whether it resumed, the session to
 * offer next time (for TLS 1.3 the first ticket the server sends), the protocol and the
 * ticket's 16-byte key name.
 */
function connect(port, { session, version = 'TLSv1.3', servername = 'localhost', ...rest } = {}) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: HOST, port, ca: cert, servername, session,
      minVersion: version, maxVersion: version, ...rest,
    })
    let newSession = null
    let result = null
    let done = false
    const finish = () => {
      if (done || result === null) return
      done = true
      clearTimeout(timer)
      result.session = newSession || result.session
      socket.destroy()
      resolve(result)
    }
    // TLS 1.3 tickets come after the handshake; give them a moment.
    const timer = setTimeout(() => finish(), 2000)
    socket.on('session', (s) => {
      newSession = newSession || s
      finish()
    })
    socket.on('secureConnect', () => {
      const ticket = socket.getTLSTicket()
      result = {
        reused: socket.isSessionReused(),
        protocol: socket.getProtocol(),
        session: socket.getSession() || null,
        ticketKeyName: ticket && socket.getProtocol() === 'TLSv1.2' ? ticket.subarray(0, 16).toString('hex') : null,
      }
      if (result.protocol === 'TLSv1.2' || newSession) setImmediate(finish)
    })
    socket.on('close', () => finish())
    socket.on('data', () => {})
    socket.on('error', (err) => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** Connects `count` times in a row, each offering the last session; returns reuse flags. */
async function reconnect(port, count, options = {}, between = () => {}) {
  const flags = []
  let session = options.session
  for (let i = 0; i < count; i++) {
    const r = await connect(port, { ...options, session })
    flags.push(r.reused)
    session = r.session || session
    await between(i)
  }
  return flags
}

/** Runs a command to its end: { code, stdout, stderr } as text. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The `New, …` and `Reused, …` lines of `openssl s_client` output. */
function sessionLines(stdout) {
  return stdout.split('\n').filter((l) => /^(New|Reused), /.test(l))
}

const CLI = path.join(__dirname, '..', 'bin', 'tls-ticket-keys.js')

/** The tls-ticket-keys command line, as a user runs it: { code, stdout (a Buffer), stderr }. */
function cli(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
    const out = []
    let stderr = ''
    child.stdout.on('data', (d) => out.push(d))
    child.stderr.on('data', (d) => { stderr += d })
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }))
  })
}

/** The error `fn` throws; fails the test when it throws nothing. */
function thrown(fn) {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error(`expected ${fn} to throw`)
}

module.exports = { key, cert, HOST, tlsServer, listen, close, connect, reconnect, thrown, run, sessionLines, cli }
