'use strict'

// How each target is linked on a Debian machine, and what it needs there. Every toolchain
// comes from a registry: rustup's targets, Debian's cross linkers, PyPI's ziglang and
// cargo-zigbuild (see the README's platform table).

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

function onPath(command) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

let sysroot
function rustTargetInstalled(triple) {
  sysroot ??= spawnSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).stdout?.trim()
  return Boolean(sysroot) && fs.existsSync(path.join(sysroot, 'lib', 'rustlib', triple, 'lib'))
}

// cargo-zigbuild runs `zig`, or `python3 -m ziglang` (the PyPI package).
function zigAvailable() {
  return onPath('zig') || spawnSync('python3', ['-m', 'ziglang', 'version']).status === 0
}

const cargoEnv = (triple) => triple.toUpperCase().replace(/-/g, '_')

/** A Debian cross gcc as the linker. */
function gccLinker(triple, gcc, debianPackages) {
  return {
    how: `linked by ${gcc}`,
    needs: [[() => onPath(gcc), `no ${gcc} (apt-get install ${debianPackages})`]],
    env: { [`CARGO_TARGET_${cargoEnv(triple)}_LINKER`]: gcc, [`CC_${triple.replace(/-/g, '_')}`]: gcc },
    napiArgs: [],
  }
}

/** zig as the linker, through cargo-zigbuild (`napi build --cross-compile`). */
function zig() {
  return {
    how: 'linked by zig through cargo-zigbuild',
    needs: [[zigAvailable, 'no zig (pip install ziglang)'], [() => onPath('cargo-zigbuild'), 'no cargo-zigbuild (pip install cargo-zigbuild)']],
    env: {},
    napiArgs: ['--cross-compile'],
  }
}

/**
 * mingw-w64. napi-build links a windows-gnu addon against libnode.dll (a MinGW-built node's),
 * but the napi crate finds every Node-API function in the host process at load time, so an
 * empty stand-in satisfies the linker, and the check below proves the addon imports nothing
 * from it: it then needs only system DLLs and loads in the official node.exe.
 */
function mingw(triple) {
  const recipe = gccLinker(triple, 'x86_64-w64-mingw32-gcc', 'gcc-mingw-w64-x86-64')
  recipe.needs.push([() => onPath('x86_64-w64-mingw32-objdump'), 'no x86_64-w64-mingw32-objdump (apt-get install binutils-mingw-w64-x86-64)'])
  recipe.setup = () => {
    // In target/, at a fixed path: napi-build reruns (and the crate relinks) when it changes.
    const dir = path.join(__dirname, '..', 'target', 'libnode-stand-in')
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, 'empty.c'), '')
    const cc = spawnSync('x86_64-w64-mingw32-gcc', ['-shared', '-o', path.join(dir, 'libnode.dll'), path.join(dir, 'empty.c')])
    if (cc.status !== 0) throw new Error(`x86_64-w64-mingw32-gcc could not make the libnode.dll stand-in: ${cc.stderr}`)
    return { LIBNODE_PATH: dir }
  }
  recipe.check = (binary) => {
    const dlls = spawnSync('x86_64-w64-mingw32-objdump', ['-p', binary], { encoding: 'utf8' }).stdout
      .split('\n').filter((l) => l.includes('DLL Name:')).map((l) => l.split(':')[1].trim())
    if (dlls.length === 0 || dlls.some((d) => /node/i.test(d))) throw new Error(`${binary} imports ${dlls.join(', ') || 'nothing'}`)
  }
  return recipe
}

const RECIPES = {
  'x86_64-unknown-linux-gnu': () => ({ how: 'the host toolchain', needs: [[() => onPath('cc'), 'no cc']], env: {}, napiArgs: [] }),
  'aarch64-unknown-linux-gnu': (t) => gccLinker(t, 'aarch64-linux-gnu-gcc', 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross'),
  'x86_64-pc-windows-gnu': mingw,
  'x86_64-unknown-linux-musl': zig,
  'aarch64-unknown-linux-musl': zig,
  'x86_64-apple-darwin': zig,
  'aarch64-apple-darwin': zig,
}

/**
 * How to build a target here: { how, env, napiArgs, setup?() -> env, check?(binary) },
 * or { missing: why not } when a toolchain it needs is absent.
 */
function recipeFor(target) {
  const make = RECIPES[target.triple]
  if (make === undefined) return { missing: `no recipe for ${target.triple} in scripts/toolchains.js` }
  if (process.platform !== 'linux' || process.arch !== 'x64') return { missing: 'the recipes are for an x64 Linux host' }
  const recipe = make(target.triple)
  if (!rustTargetInstalled(target.triple)) return { missing: `no Rust target ${target.triple} (rustup target add ${target.triple})` }
  const absent = recipe.needs.find(([ok]) => !ok())
  return absent ? { missing: absent[1] } : recipe
}

module.exports = { recipeFor }
