'use strict'

// A directory laid out as the kubelet's atomic writer lays out a Secret volume: each version
// in a timestamped directory, a `..data` symlink to the current one, swapped atomically with
// rename(2), and each file name a symlink through it (`secrets -> ..data/secrets`). The file
// itself is never written in place.

const fs = require('node:fs')
const path = require('node:path')

let serial = 0

function versionDir(root, files) {
  const stamp = new Date().toISOString().replace(/[-:]/g, '_').replace(/\..*$/, '')
  const name = `..${stamp}.${process.pid}_${++serial}`
  fs.mkdirSync(path.join(root, name), { mode: 0o755 })
  for (const [file, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(root, name, file), content, { mode: 0o644 })
  }
  return name
}

/** A volume in `root` (created) holding `files` ({ name: content }). */
function createVolume(root, files) {
  fs.mkdirSync(root, { recursive: true })
  const first = versionDir(root, files)
  fs.symlinkSync(first, path.join(root, '..data'))
  for (const file of Object.keys(files)) fs.symlinkSync(path.join('..data', file), path.join(root, file))
  return {
    root,
    /** A new version: new directory, `..data_tmp` symlink, renamed over `..data`, old directory removed. */
    update(newFiles) {
      const old = fs.readlinkSync(path.join(root, '..data'))
      const next = versionDir(root, newFiles)
      fs.symlinkSync(next, path.join(root, '..data_tmp'))
      fs.renameSync(path.join(root, '..data_tmp'), path.join(root, '..data'))
      for (const file of Object.keys(newFiles)) {
        const link = path.join(root, file)
        if (!fs.existsSync(link) && !isLink(link)) fs.symlinkSync(path.join('..data', file), link)
      }
      fs.rmSync(path.join(root, old), { recursive: true, force: true })
    },
  }
}

function isLink(p) {
  try {
    return fs.lstatSync(p).isSymbolicLink()
  } catch {
    return false
  }
}

module.exports = { createVolume }
