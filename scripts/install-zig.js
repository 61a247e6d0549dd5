'use strict'

// npm run zig: installs the linker of the Linux gnu (glibc 2.17), musl and macOS targets,
// PyPI's ziglang and cargo-zigbuild at pinned versions, under .toolchains/zig (pip --target),
// where scripts/toolchains.js looks first. Does nothing when those versions are there already.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { ZIG_HOME } = require('./toolchains.js')

const PINS = { ziglang: '0.15.2', 'cargo-zigbuild': '0.24.1' }

function installed(name, version) {
  const dist = `${name.replace(/-/g, '_')}-${version}.dist-info`
  return fs.existsSync(path.join(ZIG_HOME, dist))
}

function main() {
  if (Object.entries(PINS).every(([name, version]) => installed(name, version))) {
    console.log(`zig ${PINS.ziglang} and cargo-zigbuild ${PINS['cargo-zigbuild']} are in ${ZIG_HOME}`)
    return
  }
  fs.rmSync(ZIG_HOME, { recursive: true, force: true })
  const args = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location',
    '--target', ZIG_HOME, ...Object.entries(PINS).map(([name, version]) => `${name}==${version}`)]
  let result = spawnSync('python3', args, { stdio: 'inherit' })
  if (result.status !== 0) {
    // Debian's own python3 refuses pip installs unless told (PEP 668); --target touches only ZIG_HOME.
    result = spawnSync('python3', [...args, '--break-system-packages'], { stdio: 'inherit' })
  }
  if (result.error || result.status !== 0) {
    console.error(`npm run zig: pip install failed${result.error ? `: ${result.error.message}` : ''} (needs python3 and pip)`)
    process.exitCode = 1
    return
  }
  console.log(`installed zig ${PINS.ziglang} and cargo-zigbuild ${PINS['cargo-zigbuild']} in ${ZIG_HOME}`)
}

main()
