'use strict'

// How each target is linked on a Debian machine, and what it needs there. Every toolchain
// comes from a registry: rustup's targets, Debian's cross linkers, PyPI's ziglang and
// cargo-zigbuild (see the README's platform table).
//
// The Linux gnu targets are linked by zig against glibc 2.17 (`x86_64-unknown-linux-gnu.2.17`
// for cargo-zigbuild), so that they load wherever Node itself does (Node 20-26 need glibc
// 2.28). Linked by the host's gcc they would need the build machine's glibc (2.34 and 2.33
// symbols on Debian 12). `npm run zig` (scripts/install-zig.js) puts PyPI's ziglang and
// cargo-zigbuild under .toolchains/zig, which is looked at before PATH.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

// Where scripts/install-zig.js installs PyPI's ziglang and cargo-zigbuild (`pip install --target`).
const ZIG_HOME = path.join(__dirname, '..', '.toolchains', 'zig')
const ZIG_PATH = [path.join(ZIG_HOME, 'bin'), path.join(ZIG_HOME, 'ziglang')]
// The glibc that the Linux gnu binaries are linked against, and the newest they may need.
const GLIBC_LINKED = '2.17'
const GLIBC_FLOOR = '2.28'

/** PATH with the project's own zig first, when it is installed. */
function zigPath(PATH = process.env.PATH ?? '') {
  const own = ZIG_PATH.filter((dir) => fs.existsSync(dir))
  return [...own, PATH].filter(Boolean).join(path.delimiter)
}

function onPath(command, PATH = process.env.PATH) {
  return (PATH ?? '').split(path.delimiter).some((dir) => {
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
  return onPath('zig', zigPath()) || spawnSync('python3', ['-m', 'ziglang', 'version']).status === 0
}

/**
 * The GLIBC_x.y versions that an ELF binary's dynamic symbols need (objdump -T, from binutils),
 * newest last: [] for a binary that needs none.
 */
function glibcVersions(binary) {
  const result = spawnSync('objdump', ['-T', binary], { encoding: 'utf8' })
  if (result.error || result.status !== 0) {
    throw new Error(`objdump -T ${binary} failed (apt-get install binutils): ${result.error?.message ?? result.stderr}`)
  }
  const versions = new Set([...result.stdout.matchAll(/\bGLIBC_(\d+(?:\.\d+)+)\b/g)].map((m) => m[1]))
  return [...versions].sort(compareVersions)
}

function compareVersions(a, b) {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number))
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
  }
  return 0
}

/** Throws unless every glibc symbol the binary needs is at most GLIBC_FLOOR; returns the newest. */
function checkGlibcFloor(binary) {
  const newest = glibcVersions(binary).pop()
  if (newest === undefined) throw new Error(`${binary} needs no GLIBC_ symbol at all: not a glibc binary?`)
  if (compareVersions(newest, GLIBC_FLOOR) > 0) {
    throw new Error(`${binary} needs GLIBC_${newest}, newer than the floor GLIBC_${GLIBC_FLOOR}`)
  }
  return newest
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
function zig(triple) {
  return {
    how: 'linked by zig through cargo-zigbuild',
    needs: [
      [zigAvailable, 'no zig (npm run zig, or pip install ziglang)'],
      [() => onPath('cargo-zigbuild', zigPath()), 'no cargo-zigbuild (npm run zig, or pip install cargo-zigbuild)'],
    ],
    env: { PATH: zigPath() },
    napiArgs: ['--cross-compile'],
    cargoTarget: triple,
  }
}

/** zig against an old glibc: cargo-zigbuild takes the version as a suffix of the target. */
function zigGnu(triple) {
  const recipe = zig(triple)
  recipe.how = `linked by zig through cargo-zigbuild against glibc ${GLIBC_LINKED}`
  recipe.cargoTarget = `${triple}.${GLIBC_LINKED}`
  recipe.check = checkGlibcFloor
  return recipe
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
  'x86_64-unknown-linux-gnu': zigGnu,
  'aarch64-unknown-linux-gnu': zigGnu,
  'x86_64-pc-windows-gnu': mingw,
  'x86_64-unknown-linux-musl': zig,
  'aarch64-unknown-linux-musl': zig,
  'x86_64-apple-darwin': zig,
  'aarch64-apple-darwin': zig,
}

/**
 * How to build a target here: { how, env, napiArgs, cargoTarget?, setup?() -> env, check?(binary) },
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

module.exports = { recipeFor, glibcVersions, checkGlibcFloor, zigPath, GLIBC_FLOOR, GLIBC_LINKED, ZIG_HOME }
