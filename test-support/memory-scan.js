'use strict'

// Reads another process's memory through procfs (Linux), for the tests that check that no
// key material is left behind.

const fs = require('node:fs')

/** Every place in `pid`'s readable memory where one of `needles` occurs: [name, ...]. */
function scan(pid, needles) {
  const found = new Set()
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n')
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r')
  const longest = Math.max(...needles.map(([, n]) => n.length))
  const CHUNK = 1 << 20
  const buf = Buffer.alloc(CHUNK + longest)
  try {
    for (const line of maps) {
      const [range, perms, , , , file = ''] = line.split(/\s+/)
      if (!perms.startsWith('r') || file === '[vvar]' || file === '[vsyscall]') continue
      const [start, end] = range.split('-').map((h) => parseInt(h, 16))
      for (let at = start; at < end; at += CHUNK) {
        const length = Math.min(CHUNK + longest, end - at)
        let read = 0
        try {
          read = fs.readSync(fd, buf, 0, length, at)
        } catch {
          break // unreadable region
        }
        const view = buf.subarray(0, read)
        for (const [name, needle] of needles) if (view.includes(needle)) found.add(name)
      }
    }
  } finally {
    fs.closeSync(fd)
  }
  return [...found]
}

module.exports = { scan }
