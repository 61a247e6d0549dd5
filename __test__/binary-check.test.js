'use strict'

// A .node cut short (a full disk, an interrupted copy) is refused with ERR_TLS_TICKET_NO_BINARY
// before dlopen() maps it: mapped, it kills the process with SIGBUS.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { candidates, binaryName } = require('../lib/platform.js')
const { truncation } = require('../lib/binary-check.js')

const ROOT = path.join(__dirname, '..')
const built = candidates.map((t) => path.join(ROOT, binaryName(t))).find((file) => fs.existsSync(file))

test('a truncated binary beside binding.js: a coded error, not SIGBUS', { skip: !built && 'no built binary' }, () => {
  const whole = fs.readFileSync(built)
  assert.equal(truncation(built), null, 'the built binary is whole')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttk-truncated-'))
  try {
    for (const file of ['binding.js', 'package.json']) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file))
    fs.cpSync(path.join(ROOT, 'lib'), path.join(dir, 'lib'), { recursive: true })
    for (const length of [0, 63, 4096, Math.floor(whole.length / 2), whole.length - 1]) {
      fs.writeFileSync(path.join(dir, path.basename(built)), whole.subarray(0, length))
      const child = spawnSync(process.execPath, ['-e', `
        try { require('./binding.js'); console.log('loaded') } catch (err) { console.log(err.code); console.log(err.message) }
      `], { cwd: dir, encoding: 'utf8' })
      assert.equal(child.signal, null, `${length} bytes: killed by ${child.signal}`)
      const [code, message] = child.stdout.split('\n')
      assert.equal(code, 'ERR_TLS_TICKET_NO_BINARY', `${length} bytes: ${child.stdout} ${child.stderr}`)
      assert.match(message, length < 64 ? /too short/ : /truncated/)
    }
    fs.writeFileSync(path.join(dir, path.basename(built)), whole)
    const ok = spawnSync(process.execPath, ['-e', "require('./binding.js'); console.log('loaded')"], { cwd: dir, encoding: 'utf8' })
    assert.equal(ok.stdout.trim(), 'loaded', ok.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
