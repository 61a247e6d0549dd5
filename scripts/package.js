'use strict'

// npm run package [-- --targets linux-x64-gnu,linux-arm64-gnu] [--out DIR (default dist/)]
// Builds the addon for every target in package.json's napi.targets that a toolchain on this
// machine can link, and writes into dist/ the `npm pack` tarball of each platform package
// (npm/<platform>/ plus its .node) and of the main package, whose package.json gains
// optionalDependencies on every platform package at its own version (what `napi pre-publish`
// does at publish time; the repository's package.json never lists them, so that `npm ci`
// works in a clone although the platform packages are not on the registry). A target whose
// toolchain is absent is skipped with a line saying so; a build that fails fails the run.

const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { TARGETS, packageName, binaryName } = require('../lib/platform.js')
const { recipeFor } = require('./toolchains.js')

const ROOT = path.join(__dirname, '..')
const MAIN = require('../package.json')

/**
 * The project's own napi (@napi-rs/cli, a devDependency), never `npx napi`: before `npm ci`,
 * npx would fetch and run whatever the registry calls `napi`, which is not @napi-rs/cli.
 */
function napiBin() {
  const bin = path.join(ROOT, 'node_modules', '.bin', process.platform === 'win32' ? 'napi.cmd' : 'napi')
  if (!fs.existsSync(bin)) {
    throw new Error(`${path.relative(process.cwd(), bin) || bin} is missing: run \`npm ci\` first (it installs @napi-rs/cli, the napi that builds the addon)`)
  }
  return bin
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`)
}

/** `npm pack` of dir into dist; returns the tarball's path. Scripts never run: nothing to build. */
function pack(dir, dist) {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dist], { cwd: dir, encoding: 'utf8' })
  const [{ filename, size }] = JSON.parse(out)
  console.log(`  ${path.join(dist, filename)}  ${size} bytes`)
  return path.join(dist, filename)
}

/** The platform package's package.json must say what lib/platform.js says of its target. */
function checkPlatformPackage(target, manifest) {
  const expected = {
    name: packageName(target), version: MAIN.version, main: binaryName(target), os: [target.os], cpu: [target.cpu],
    libc: target.libc ? [target.libc] : undefined, files: [binaryName(target)],
  }
  for (const [field, value] of Object.entries(expected)) {
    if (JSON.stringify(manifest[field]) !== JSON.stringify(value)) {
      throw new Error(`npm/${target.platform}/package.json: ${field} is ${JSON.stringify(manifest[field])}, expected ${JSON.stringify(value)}`)
    }
  }
}

function buildTarget(target, recipe, dist) {
  const started = Date.now()
  const dir = path.join(ROOT, 'npm', target.platform)
  checkPlatformPackage(target, JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')))
  // One job: the machines this runs on have two cores, often shared.
  const env = { ...process.env, CARGO_BUILD_JOBS: process.env.CARGO_BUILD_JOBS ?? '1', ...recipe.env }
  // napi build also writes type definitions beside the binary: build into a scratch folder.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `tls-ticket-keys-${target.platform}-`))
  try {
    run(napiBin(), ['build', '--platform', '--release', '--no-js', '--target', recipe.cargoTarget ?? target.triple,
      '--output-dir', out, ...recipe.napiArgs], { cwd: ROOT, env: { ...env, ...recipe.setup?.() } })
    const built = path.join(out, binaryName(target))
    if (!fs.existsSync(built)) throw new Error(`napi build wrote no ${binaryName(target)}`)
    const checked = recipe.check?.(built)
    if (typeof checked === 'string') console.log(`  ${binaryName(target)}: newest glibc symbol GLIBC_${checked}`)
    fs.copyFileSync(built, path.join(dir, binaryName(target)))
  } finally {
    fs.rmSync(out, { recursive: true, force: true })
  }
  console.log(`  built ${target.platform} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  return pack(dir, dist)
}

/** The main package as it is published: its files, plus optionalDependencies on every platform. */
function packMain(dist) {
  const listing = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--dry-run', '--json'], { cwd: ROOT, encoding: 'utf8' }))
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-pack-'))
  try {
    for (const { path: file } of listing[0].files) {
      fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true })
      fs.copyFileSync(path.join(ROOT, file), path.join(stage, file))
    }
    const manifest = { ...MAIN }
    // What builds and tests the package stays in the repository: nothing runs on install.
    delete manifest.scripts
    delete manifest.devDependencies
    manifest.optionalDependencies = Object.fromEntries(TARGETS.map((t) => [packageName(t), MAIN.version]))
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
    if (fs.readdirSync(stage).some((f) => f.endsWith('.node'))) throw new Error('a .node file would be in the main package')
    return pack(stage, dist)
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

function main() {
  napiBin()
  const { values } = parseArgs({ options: { targets: { type: 'string' }, out: { type: 'string' } } })
  const dist = path.resolve(values.out ?? path.join(ROOT, 'dist'))
  const wanted = values.targets?.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of wanted ?? []) {
    if (!TARGETS.some((t) => t.platform === name)) throw new Error(`--targets: ${name} is not in package.json's napi.targets`)
  }
  // Only this package's old tarballs go: --out may name a folder that holds other things.
  fs.mkdirSync(dist, { recursive: true })
  for (const file of fs.readdirSync(dist)) {
    if (file.startsWith(`${MAIN.name}-`) && file.endsWith('.tgz')) fs.rmSync(path.join(dist, file))
  }
  const started = Date.now()
  const built = []
  const skipped = []
  for (const target of TARGETS) {
    if (wanted && !wanted.includes(target.platform)) continue
    const recipe = recipeFor(target)
    if (recipe.missing) {
      console.log(`skip ${target.platform}: ${recipe.missing}`)
      skipped.push(target.platform)
      continue
    }
    console.log(`build ${target.platform} (${target.triple}, ${recipe.how})`)
    buildTarget(target, recipe, dist)
    built.push(target.platform)
  }
  console.log('pack tls-ticket-keys')
  packMain(dist)
  console.log(`built ${built.join(', ') || 'nothing'}${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}; ` +
    `${((Date.now() - started) / 1000).toFixed(0)} s`)
}

try {
  main()
} catch (err) {
  console.error(`npm run package: ${err.message}`)
  process.exitCode = 1
}
