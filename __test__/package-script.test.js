'use strict'

// `npm run package` in a clone where `npm ci` has not run: it must not reach for `npx napi`
// (npx would fetch whatever the registry calls `napi`, which is not @napi-rs/cli), and must say
// to run `npm ci`. And no script calls npx at all.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

/** A clone's files without node_modules: package.json, scripts/ and the lib/ they load. */
function cloneWithoutNodeModules(tmp) {
  const clone = path.join(tmp, 'clone')
  for (const dir of ['scripts', 'lib']) fs.cpSync(path.join(ROOT, dir), path.join(clone, dir), { recursive: true })
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(clone, 'package.json'))
  return clone
}

/** A PATH whose npx, npm exec and napi only leave a mark that they ran. */
function trappedPath(tmp) {
  const bin = path.join(tmp, 'bin')
  const marks = path.join(tmp, 'marks')
  fs.mkdirSync(bin)
  for (const tool of ['npx', 'napi', 'cargo']) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho ${tool} "$@" >> '${marks}'\nexit 0\n`, { mode: 0o755 })
  }
  return { PATH: [bin, path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter), marks }
}

test('npm run package before npm ci: exits non-zero, says to run npm ci, runs no npx', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ticket-keys-package-script-'))
  try {
    const clone = cloneWithoutNodeModules(tmp)
    const { PATH, marks } = trappedPath(tmp)
    const result = spawnSync(process.execPath, [path.join(clone, 'scripts', 'package.js'), '--targets', 'linux-x64-gnu', '--out', path.join(tmp, 'dist')],
      { cwd: clone, env: { ...process.env, PATH }, encoding: 'utf8' })
    assert.notEqual(result.status, 0, result.stdout + result.stderr)
    assert.match(result.stderr, /node_modules\/\.bin\/napi is missing: run `npm ci` first/)
    assert.equal(fs.existsSync(marks) ? fs.readFileSync(marks, 'utf8') : '', '', 'nothing from PATH ran')
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})

test('no script in package.json or scripts/ calls npx', () => {
  const { scripts } = require('../package.json')
  for (const [name, command] of Object.entries(scripts)) {
    assert.doesNotMatch(command, /(^|[\s;&|(])(npx|npm\s+exec|pnpx|pnpm\s+dlx|yarn\s+dlx)(\s|$)/, `package.json scripts.${name}`)
  }
  for (const file of fs.readdirSync(path.join(ROOT, 'scripts'))) {
    // Code only: a comment may say why npx is not used.
    const code = fs.readFileSync(path.join(ROOT, 'scripts', file), 'utf8').split('\n')
      .filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line)).join('\n')
    assert.doesNotMatch(code, /['"`]npx['"`\s]|['"`]exec['"`]\s*[,\]]/, `scripts/${file}`)
  }
})
