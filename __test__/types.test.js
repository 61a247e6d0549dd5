'use strict'

// The types match what README.md shows: a strict TypeScript consumer of every call there
// (types/consumer.ts) compiles with `tsc --strict --noEmit`, against index.d.ts reached through
// the package's exports map, which also hides the internals from TypeScript.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

test('a strict TypeScript consumer of the README compiles', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '--strict', '--noEmit', '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(result.status, 0, `tsc:\n${result.stdout}${result.stderr}`)
})
