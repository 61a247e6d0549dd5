'use strict'

// Real nginx and HAProxy servers on loopback for the interop tests, each in a scratch folder
// of its own, in the foreground, stopped by the test. Key files are written there with mode
// 0600 and removed with the folder.

const { spawn, execFileSync } = require('node:child_process')
const { once } = require('node:events')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')

const HOST = '127.0.0.1'
const START_TIMEOUT_MS = 10_000

function available(command) {
  try {
    execFileSync(command, ['-v'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A port nothing listens on now (the OS picks it; the server binds it just after). */
async function freePort() {
  const server = net.createServer()
  server.listen(0, HOST)
  await once(server, 'listening')
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Resolves once something accepts connections on `port`. */
async function waitForPort(port, child, log) {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${path.basename(child.spawnfile)} exited: ${log()}`)
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, HOST, () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}: ${log()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function writePrivate(file, data) {
  fs.writeFileSync(file, data, { mode: 0o600 })
  return file
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await once(child, 'exit')
}

/**
 * nginx serving `cert`/`key` with `ssl_session_ticket_key` files in nginx's order (the first
 * encrypts). `reload(files)` rewrites the key files and sends SIGHUP, as `nginx -s reload` does.
 */
async function startNginx(dir, { cert, key, keyFiles, keyPaths: givenPaths }) {
  const port = await freePort()
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true })
  writePrivate(path.join(dir, 'cert.pem'), cert)
  writePrivate(path.join(dir, 'key.pem'), key)
  const writeKeys = (files) => files.map((bytes, i) => writePrivate(path.join(dir, `ticket-${i}.key`), bytes))
  // `keyPaths`: key files kept by someone else (exportKeys), named in the configuration as given.
  const keyPaths = givenPaths ?? writeKeys(keyFiles)
  const config = `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log notice;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${HOST}:${port} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
${keyPaths.map((p) => `    ssl_session_ticket_key ${p};`).join('\n')}
    keepalive_timeout 0;
    location / { return 200 "nginx\\n"; }
  }
}
`
  fs.writeFileSync(path.join(dir, 'nginx.conf'), config)
  const child = spawn('nginx', ['-p', dir, '-e', `${dir}/logs/error.log`, '-c', `${dir}/nginx.conf`], { stdio: 'ignore' })
  const log = () => readIfThere(path.join(dir, 'logs', 'error.log'))
  await waitForPort(port, child, log)
  return {
    name: 'nginx',
    port,
    pid: child.pid,
    /** nginx's own reload command for this instance (argv). */
    reloadCommand: ['nginx', '-p', dir, '-e', `${dir}/logs/error.log`, '-c', `${dir}/nginx.conf`, '-s', 'reload'],
    log,
    async reload(files) {
      if (files.length !== keyPaths.length) throw new Error('reload() takes as many key files as nginx started with')
      writeKeys(files)
      const before = log()
      child.kill('SIGHUP')
      await waitForLog(log, before, /start worker process/, START_TIMEOUT_MS)
    },
    stop: () => stop(child),
  }
}

/**
 * HAProxy with TLS frontends (`frontends`: { name, keysText }, each with its own
 * `tls-ticket-keys` file and port), TCP round-robin balancers (`balancers`: { name, backends:
 * [{ name, port }] }, a backend named after a frontend meaning that frontend), and a runtime
 * API socket.
 */
async function startHaproxy(dir, { cert, key, frontends, balancers = [] }) {
  const socketPath = path.join(dir, 'haproxy.sock')
  writePrivate(path.join(dir, 'site.pem'), Buffer.concat([Buffer.from(cert), Buffer.from(key)]))
  const ports = {}
  const keysFiles = {}
  for (const { name, keysText } of frontends) {
    ports[name] = await freePort()
    keysFiles[name] = writePrivate(path.join(dir, `${name}.keys`), keysText)
  }
  for (const { name } of balancers) ports[name] = await freePort()
  const portOf = (backend) => backend.port ?? ports[backend.name]
  const config = [
    'global',
    `  stats socket ${socketPath} level admin`,
    'defaults',
    '  timeout connect 5s',
    '  timeout client 10s',
    '  timeout server 10s',
    ...frontends.flatMap(({ name }) => [
      `frontend ${name}`,
      '  mode http',
      `  bind ${HOST}:${ports[name]} ssl crt ${dir}/site.pem tls-ticket-keys ${keysFiles[name]} ssl-min-ver TLSv1.2`,
      '  http-after-response set-header Connection close',
      '  http-request return status 200 content-type text/plain string "haproxy"',
    ]),
    ...balancers.flatMap(({ name, backends }) => [
      `frontend ${name}`,
      '  mode tcp',
      `  bind ${HOST}:${ports[name]}`,
      `  default_backend ${name}-servers`,
      `backend ${name}-servers`,
      '  mode tcp',
      '  balance roundrobin',
      ...backends.map((b) => `  server ${b.name} ${HOST}:${portOf(b)}`),
    ]),
  ].join('\n')
  fs.writeFileSync(path.join(dir, 'haproxy.cfg'), `${config}\n`)
  let output = ''
  const child = spawn('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.on('data', (d) => { output += d })
  child.stderr.on('data', (d) => { output += d })
  for (const port of Object.values(ports)) await waitForPort(port, child, () => output)
  return {
    name: 'haproxy',
    pid: child.pid,
    socketPath,
    ports,
    keysFiles,
    log: () => output,
    /** A command on HAProxy's runtime API; resolves with its answer. */
    command: (line) => runtimeCommand(socketPath, line),
    stop: () => stop(child),
  }
}

function runtimeCommand(socketPath, line) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let answer = ''
    socket.on('connect', () => socket.end(`${line}\n`))
    socket.on('data', (d) => { answer += d })
    socket.on('end', () => resolve(answer))
    socket.on('error', reject)
  })
}

function readIfThere(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

async function waitForLog(log, before, pattern, ms) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (pattern.test(log().slice(before.length))) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

module.exports = { available, freePort, startNginx, startHaproxy }
