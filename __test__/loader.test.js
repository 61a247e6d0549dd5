'use strict'

// binding.js and lib/platform.js: which binary a process needs, and the coded errors when it
// cannot have one. Run in child processes, since the loader runs once per process.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const platform = require('../lib/platform.js')
const { version: VERSION } = require('../package.json')

const ROOT = path.join(__dirname, '..')

/** require() of the package in a child node with these flags: the error it throws, or null. */
function requireError(flags, preload = '') {
  const result = spawnSync(process.execPath, [...flags, '-e', `${preload}
    try { require(${JSON.stringify(ROOT)}); console.log('null') }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, name: e.name })) }`], { encoding: 'utf8' })
  assert.equal(result.status, 0, result.stderr)
  return JSON.parse(result.stdout.trim().split('\n').pop())
}

test('node --no-addons: ERR_DLOPEN_DISABLED that says addons are disabled', () => {
  const err = requireError(['--no-addons'])
  assert.equal(err.code, 'ERR_DLOPEN_DISABLED')
  assert.match(err.message, /native addon.*does not load addons.*--no-addons/)
  assert.doesNotMatch(err.message, /package-lock|npm (has a )?bug/)
})

test('the permission model without --allow-addons: the same ERR_DLOPEN_DISABLED', () => {
  const flag = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission'
  const err = requireError([flag, '--allow-fs-read=*', '--no-warnings'])
  assert.equal(err.code, 'ERR_DLOPEN_DISABLED')
  assert.match(err.message, /--allow-addons/)
})

test('a platform with no prebuilt binary: ERR_TLS_TICKET_NO_BINARY naming it and how to build', () => {
  const err = requireError([], "Object.defineProperty(process, 'arch', { value: 'riscv64' })")
  assert.equal(err.code, 'ERR_TLS_TICKET_NO_BINARY')
  assert.match(err.message, /no usable native binary for linux-riscv64-(gnu|musl)/)
  assert.match(err.message, /Tried: none/)
  for (const target of platform.TARGETS) assert.match(err.message, new RegExp(target.platform))
  assert.match(err.message, /build from source.*npm ci/)
  assert.doesNotMatch(err.message, /npm (has a )?bug|npm\/cli\/issues|package-lock/)
})

test('a checkout loads the .node that npm run build put beside binding.js', () => {
  const [target] = platform.candidates
  assert.ok(target, `${platform.platform} is a prebuilt platform`)
  assert.ok(fs.existsSync(path.join(ROOT, platform.binaryName(target))))
  assert.equal(requireError([]), null)
})

test('platforms: every target has its npm/ folder, with the os, cpu and libc npm matches', () => {
  for (const target of platform.TARGETS) {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', target.platform, 'package.json'), 'utf8'))
    assert.equal(manifest.name, platform.packageName(target))
    assert.equal(manifest.version, VERSION)
    assert.deepEqual(manifest.os, [target.os])
    assert.deepEqual(manifest.cpu, [target.cpu])
    // npm refuses a package with any libc on a platform other than Linux.
    assert.deepEqual(manifest.libc, target.os === 'linux' ? [target.libc] : undefined)
    assert.equal(manifest.main, platform.binaryName(target))
  }
  assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), platform.TARGETS.map((t) => t.platform).sort())
})

test('native mode is proven on glibc Linux x64 and arm64 only', () => {
  assert.deepEqual(platform.NATIVE_PROVEN, ['linux-x64-gnu', 'linux-arm64-gnu'])
  assert.equal(platform.nativeProven, platform.NATIVE_PROVEN.includes(platform.platform))
  assert.equal(platform.nativeUnprovenReason() === null, platform.nativeProven)
  assert.deepEqual(platform.parseTriple('aarch64-unknown-linux-musl'),
    { triple: 'aarch64-unknown-linux-musl', os: 'linux', cpu: 'arm64', libc: 'musl', abi: 'musl', platform: 'linux-arm64-musl' })
  assert.equal(platform.parseTriple('x86_64-apple-darwin').platform, 'darwin-x64')
  assert.equal(platform.parseTriple('x86_64-pc-windows-gnu').platform, 'win32-x64-gnu')
})
