'use strict'

// A cheap look at a native binary before dlopen() maps it: a file cut short (a disk that
// filled up, an interrupted copy) makes the dynamic loader touch pages past its end, and the
// process dies of SIGBUS, with no error to catch. Only the headers are read: the file must be
// as long as its own headers say, for ELF (Linux: the program headers dlopen() maps and the
// section header table), PE (Windows: every section's raw data) and Mach-O (macOS: every
// segment's file range). A file that passes can still be damaged inside; one that fails is
// surely cut.

const fs = require('node:fs')

const ELF_MAGIC = 0x464c457f // '\x7fELF', little-endian
const PE_MAGIC = 0x5a4d // 'MZ'
const MACHO_64 = 0xfeedfacf
const LC_SEGMENT_64 = 0x19
// No real header table is larger; more is a corrupt header, not one to read.
const MAX_HEADER_BYTES = 1 << 20

function readAt(fd, offset, length) {
  const buffer = Buffer.alloc(length)
  const read = fs.readSync(fd, buffer, 0, length, offset)
  return read === length ? buffer : null
}

function elfEnd(fd, head) {
  const is64 = head[4] === 2
  const little = head[5] === 1
  const u16 = (b, o) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o))
  const u32 = (b, o) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o))
  const u64 = (b, o) => Number(little ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o))
  const word = is64 ? u64 : u32
  const phoff = word(head, is64 ? 32 : 28)
  const shoff = word(head, is64 ? 40 : 32)
  const phentsize = u16(head, is64 ? 54 : 42)
  const phnum = u16(head, is64 ? 56 : 44)
  const shentsize = u16(head, is64 ? 58 : 46)
  const shnum = u16(head, is64 ? 60 : 48)
  let end = Math.max(phoff + phentsize * phnum, shoff + shentsize * shnum)
  if (phentsize * phnum > MAX_HEADER_BYTES) return Infinity
  const table = readAt(fd, phoff, phentsize * phnum)
  if (table === null) return Infinity
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize
    const offset = word(table, at + (is64 ? 8 : 4))
    const filesz = word(table, at + (is64 ? 32 : 16))
    end = Math.max(end, offset + filesz)
  }
  return end
}

function peEnd(fd, head) {
  const peOffset = head.readUInt32LE(0x3c)
  const pe = readAt(fd, peOffset, 24)
  if (pe === null || pe.readUInt32LE(0) !== 0x4550) return Infinity
  const sections = pe.readUInt16LE(6)
  const optionalSize = pe.readUInt16LE(20)
  const tableAt = peOffset + 24 + optionalSize
  const table = readAt(fd, tableAt, 40 * sections)
  if (table === null) return Infinity
  let end = tableAt + 40 * sections
  for (let i = 0; i < sections; i++) {
    end = Math.max(end, table.readUInt32LE(i * 40 + 20) + table.readUInt32LE(i * 40 + 16))
  }
  return end
}

function machoEnd(fd, head) {
  const commands = head.readUInt32LE(16)
  const size = head.readUInt32LE(20)
  if (size > MAX_HEADER_BYTES) return Infinity
  const table = readAt(fd, 32, size)
  if (table === null) return Infinity
  let end = 32 + size
  for (let at = 0, i = 0; i < commands && at + 8 <= size; i++) {
    const cmd = table.readUInt32LE(at)
    const cmdsize = table.readUInt32LE(at + 4)
    if (cmd === LC_SEGMENT_64 && at + 56 <= size) {
      end = Math.max(end, Number(table.readBigUInt64LE(at + 40) + table.readBigUInt64LE(at + 48)))
    }
    if (cmdsize < 8) break
    at += cmdsize
  }
  return end
}

/**
 * Why the binary at `file` must not be loaded (it is shorter than its headers say), or null
 * when it looks whole or is of a format this does not read.
 */
function truncation(file) {
  let fd
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return null // Not there: require() says so in its own words.
  }
  try {
    const size = fs.fstatSync(fd).size
    const head = readAt(fd, 0, 64)
    if (head === null) return `it is ${size} bytes, too short for a binary`
    let end = 0
    if (head.readUInt32LE(0) === ELF_MAGIC) end = elfEnd(fd, head)
    else if (head.readUInt16LE(0) === PE_MAGIC) end = peEnd(fd, head)
    else if (head.readUInt32LE(0) === MACHO_64) end = machoEnd(fd, head)
    return end > size ? `it is truncated: ${size} bytes, and its headers describe ${Number.isFinite(end) ? end : 'more'}` : null
  } finally {
    fs.closeSync(fd)
  }
}

module.exports = { truncation }
