'use strict'

// The types match what README.md shows: a strict TypeScript consumer of every call there
// (types/consumer.ts) compiles with `tsc --strict --noEmit`, against index.d.ts reached through
// the package's exports map, which also hides the internals from TypeScript.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

test('a strict TypeScript consumer of the README compiles', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '--strict', '--noEmit', '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(result.status, 0, `tsc:\n${result.stdout}${result.stderr}`)
})

// The README's TypeScript-relevant lines, exactly: its ```ts blocks, and its JavaScript fetch
// block with its require() lines as imports, compile under `tsc --strict --module nodenext`
// with every undici major the README names and with @types/node 20, 22, 24 and 26 (aliased
// devDependencies @types/node-22... as undici-6 is). Each combination is a scratch project
// whose node_modules holds that @types/node, its own undici-types, that undici, and this
// package's index.d.ts, as a user's would.

const ROOT = path.join(__dirname, '..')
const NM = path.join(ROOT, 'node_modules')
const TYPES_NODE = { 20: '@types/node', 22: '@types/node-22', 24: '@types/node-24', 26: '@types/node-26' }
const UNDICI = { 6: 'undici-6', 7: 'undici', 8: 'undici-8' }

/** The README's ```ts blocks, and its JavaScript fetch block with its require() lines as imports. */
function readmeTypeScript() {
  const markdown = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const blocks = [...markdown.matchAll(/^```(ts|js)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2] }))
  const ts = blocks.filter((b) => b.lang === 'ts').map((b) => b.code)
  const fetchJs = blocks.filter((b) => b.lang === 'js' && /setGlobalDispatcher\(/.test(b.code)).map((b) =>
    b.code.replace(/^const (\{[^}]*\}) = require\(('[^']+')\)$/gm, 'import $1 from $2'))
  return { ts, fetchJs }
}

function link(target, at) {
  fs.mkdirSync(path.dirname(at), { recursive: true })
  fs.symlinkSync(target, at, 'dir')
}

/** A project with the given @types/node and undici; the package itself copied, as npm installs it. */
function project(tmp, nodeMajor, undiciMajor, sources) {
  const dir = path.join(tmp, `node${nodeMajor}-undici${undiciMajor}`)
  const nm = path.join(dir, 'node_modules')
  const typesNode = fs.realpathSync(path.join(NM, TYPES_NODE[nodeMajor]))
  link(typesNode, path.join(nm, '@types', 'node'))
  // @types/node's own undici-types: what the built-in fetch's types are, and what index.d.ts sees.
  link(path.dirname(require.resolve('undici-types/package.json', { paths: [typesNode] })), path.join(nm, 'undici-types'))
  link(fs.realpathSync(path.join(NM, UNDICI[undiciMajor])), path.join(nm, 'undici'))
  const pkg = path.join(nm, 'tls-ticket-keys')
  fs.mkdirSync(pkg, { recursive: true })
  for (const file of ['package.json', 'index.d.ts']) fs.copyFileSync(path.join(ROOT, file), path.join(pkg, file))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022',
      types: ['node'], skipLibCheck: false,
    },
    files: sources.map((_, i) => `readme-${i}.mts`),
  }))
  sources.forEach((code, i) => fs.writeFileSync(path.join(dir, `readme-${i}.mts`), `export {}\n${code}`))
  return dir
}

test('the README has the TypeScript lines this test compiles', () => {
  const { ts, fetchJs } = readmeTypeScript()
  assert.ok(ts.some((code) => /setGlobalDispatcher\(cache\.dispatcher\(\)\)/.test(code)), 'a ```ts block with the fetch one-liner')
  assert.equal(fetchJs.length, 1)
  assert.match(fetchJs[0], /^import \{ SessionCache \} from 'tls-ticket-keys'$/m)
})

// tsc's verdict does not depend on the node that runs it: CI, which runs the suite on Node 20,
// 22, 24 and 26, compiles the twelve projects (about 80 s) in its Node 20 pass only.
const ONCE_IN_CI = process.env.CI && process.versions.node.split('.')[0] !== '20' && 'compiled in the Node 20 pass of CI'

test('the README\'s TypeScript lines compile with undici 6, 7, 8 and @types/node 20, 22, 24, 26', { skip: ONCE_IN_CI }, async (t) => {
  const { ts, fetchJs } = readmeTypeScript()
  const tsc = require.resolve('typescript/bin/tsc')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-types-'))
  try {
    for (const nodeMajor of Object.keys(TYPES_NODE)) {
      for (const undiciMajor of Object.keys(UNDICI)) {
        await t.test(`@types/node ${nodeMajor}, undici ${undiciMajor}`, () => {
          const dir = project(tmp, nodeMajor, undiciMajor, [...ts, ...fetchJs])
          const installed = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', '@types', 'node', 'package.json'), 'utf8')).version
          assert.equal(installed.split('.')[0], nodeMajor)
          const result = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' })
          assert.equal(result.status, 0, `tsc with @types/node ${installed}, undici ${undiciMajor}:\n${result.stdout}${result.stderr}`)
        })
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
