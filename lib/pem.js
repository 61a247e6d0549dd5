'use strict'

// PEM blocks in the certificate options of a TLS server (`cert`, `ca`, `crl`): one reading of
// them for the session id contexts (client-auth.js, session-id-context.js).

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g

/** An option's entries: Node takes one value or an array of them. */
function entriesOf(option) {
  return option === undefined || option === null ? [] : Array.isArray(option) ? option : [option]
}

// Node takes a string, a Buffer or any ArrayBufferView; PEM is ASCII, so latin1 keeps every byte.
function textOf(entry) {
  return Buffer.isBuffer(entry) || ArrayBuffer.isView(entry)
    ? Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength).toString('latin1') : String(entry)
}

/** Each PEM block of one entry, in order: { label, der }. */
function * pemBlocks(entry) {
  for (const [, label, body] of textOf(entry).matchAll(PEM_BLOCK)) {
    yield { label, der: Buffer.from(body.replace(/\s+/g, ''), 'base64') }
  }
}

module.exports = { entriesOf, pemBlocks }
