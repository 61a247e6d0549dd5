'use strict'

// Which prebuilt binary this process needs, the platform packages that carry them, and where
// native mode is proven. Read by the loader (binding.js), by attach() for its 'auto' choice,
// and by the packaging script (scripts/package.js), so the names are made in one place.

const { readFileSync } = require('node:fs')
const { napi, name: PACKAGE_NAME } = require('../package.json')

// Native mode finds OpenSSL's and V8's symbols in the running node with dlsym(RTLD_DEFAULT).
// That is tested on these platforms only (the README's platform table says how); elsewhere
// 'auto' serves tickets in callback mode, and mode: 'native' still tries.
const NATIVE_PROVEN = ['linux-x64-gnu', 'linux-arm64-gnu']

// Rust target triple parts -> Node's process.arch / process.platform names.
const ARCH = { x86_64: 'x64', aarch64: 'arm64' }
const OS = { linux: 'linux', darwin: 'darwin', windows: 'win32' }

/**
 * A Rust target triple as a napi-rs platform: its name (the suffix of the platform package
 * and of the .node file) and the `os`, `cpu` and `libc` that npm matches against.
 */
function parseTriple(triple) {
  const parts = triple.split('-')
  const cpu = ARCH[parts[0]]
  const os = OS[parts[2] === 'apple' || parts[1] === 'apple' ? 'darwin' : parts[2]]
  if (cpu === undefined || os === undefined) throw new Error(`unknown target triple ${triple}`)
  const abi = os === 'darwin' ? null : parts[3] ?? null
  const libc = os === 'linux' ? (abi === 'musl' ? 'musl' : 'glibc') : null
  return { triple, os, cpu, libc, abi, platform: [os, cpu, abi].filter(Boolean).join('-') }
}

/** Every platform this package is built for, from package.json's napi.targets. */
const TARGETS = napi.targets.map(parseTriple)

function isMusl() {
  // What this process has mapped says which libc the running node uses (/usr/bin/ldd, which
  // napi-rs reads, describes the system instead); the report is the slower second opinion.
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8')
    if (/ld-musl-|libc\.musl-/.test(maps)) return true
    if (/libc\.so\.6/.test(maps)) return false
  } catch {
    // No /proc, or the permission model forbids reading it.
  }
  try {
    return !process.report.getReport().header.glibcVersionRuntime
  } catch {
    return false
  }
}

/** This process's platform triple, as the platform packages name it, e.g. linux-x64-gnu. */
function currentPlatform() {
  if (process.platform === 'linux') return `linux-${process.arch}-${isMusl() ? 'musl' : 'gnu'}`
  return `${process.platform}-${process.arch}`
}

const platform = currentPlatform()

/** The prebuilt targets that can run here: on Windows, any toolchain's build for the arch. */
const candidates = TARGETS.filter((t) => t.platform === platform ||
  (t.os === 'win32' && `${t.os}-${t.cpu}` === platform))

/** The npm package that carries a target's binary. */
function packageName(target) {
  return `${PACKAGE_NAME}-${target.platform}`
}

/** The .node file name of a target, as `napi build --platform` writes it. */
function binaryName(target) {
  return `${napi.binaryName}.${target.platform}.node`
}

const nativeProven = NATIVE_PROVEN.includes(platform)

/** Why 'auto' should not pick native mode here, or null where native mode is proven. */
function nativeUnprovenReason() {
  return nativeProven ? null
    : `it is not proven on ${platform}, only on ${NATIVE_PROVEN.join(' and ')}; pass mode: 'native' to try it`
}

module.exports = {
  PACKAGE_NAME, NATIVE_PROVEN, TARGETS, platform, candidates, nativeProven, nativeUnprovenReason,
  parseTriple, packageName, binaryName,
}
