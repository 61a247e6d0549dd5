'use strict'

// Callback mode: Node's internal `enableTicketKeyCallback()` hook, with one call into Rust per
// ticket. AES-128 only: Node's callback array has 16-byte slots.

const crypto = require('node:crypto')
const binding = require('../../binding.js')
const { markRestored } = require('../secure-context.js')

// The slots of the array Node's `onticketkeycallback(name, iv, enc)` returns, with Node's
// names (src/crypto/crypto_context.cc): all five to seal, the first three to open. Node reads
// every slot after the first as a 16-byte buffer, even with a 0, and aborts the process
// otherwise; a throw is an uncaught exception. So the answer always carries buffers, and
// nothing here may throw.
const kTicketKeyReturnIndex = 0
const kTicketKeyHMACIndex = 1
const kTicketKeyAESIndex = 2
const kTicketKeyNameIndex = 3
const kTicketKeyIVIndex = 4
// The scratch buffer the ring fills (`name | hmac | aes | iv`), laid out once in Rust.
const {
  CALLBACK_SLOT_BYTES: SLOT_BYTES,
  CALLBACK_SCRATCH_BYTES: SCRATCH_BYTES,
  CALLBACK_SCRATCH_NAME_OFFSET,
  CALLBACK_SCRATCH_HMAC_OFFSET,
  CALLBACK_SCRATCH_AES_OFFSET,
  CALLBACK_SCRATCH_IV_OFFSET,
} = binding
// Node's return values: 0 full handshake, 1 use the key, 2 use it and renew the ticket.
const NODE_REFUSE = 0
const NODE_USE = 1
const NODE_RENEW = 2
const { TicketOutcome } = binding
// A ticket outcome (the Rust ring's lookup) as Node's answer, and as the counter it adds to.
const NODE_ANSWER = { [TicketOutcome.Resume]: NODE_USE, [TicketOutcome.Renew]: NODE_RENEW }
const COUNTER = {
  [TicketOutcome.Resume]: 'opened',
  [TicketOutcome.Renew]: 'opened',
  [TicketOutcome.UnknownKey]: 'unknownKey',
  [TicketOutcome.ExpiredKey]: 'expiredKey',
}

const slot = (buffer, offset) => buffer.subarray(offset, offset + SLOT_BYTES)

function answer(ret, hmac, aes, name, iv) {
  const slots = []
  slots[kTicketKeyReturnIndex] = ret
  slots[kTicketKeyHMACIndex] = hmac
  slots[kTicketKeyAESIndex] = aes
  if (name !== undefined) {
    slots[kTicketKeyNameIndex] = name
    slots[kTicketKeyIVIndex] = iv
  }
  return slots
}

/** The ring's callback; `outcomes` counts what became of the tickets offered. */
function ringTicketCallback(native, outcomes) {
  // The one place key bytes live on the JavaScript side in this mode: refilled by each call,
  // and wiped in the next turn of the event loop (Node copies them out synchronously, after
  // the callback has returned) and when the attachment ends.
  const scratch = Buffer.alloc(SCRATCH_BYTES)
  const [name, hmac, aes, iv] = [
    CALLBACK_SCRATCH_NAME_OFFSET, CALLBACK_SCRATCH_HMAC_OFFSET, CALLBACK_SCRATCH_AES_OFFSET, CALLBACK_SCRATCH_IV_OFFSET,
  ].map((offset) => slot(scratch, offset))
  let wipePending = false
  const wipe = () => {
    wipePending = false
    scratch.fill(0)
  }
  function onticketkeycallback(keyName, ticketIv, enc) {
    if (!wipePending) {
      wipePending = true
      setImmediate(wipe).unref()
    }
    let outcome = TicketOutcome.Unusable
    try {
      if (!enc) keyName.copy(name, 0, 0, SLOT_BYTES)
      outcome = enc ? native.fillEncrypt(scratch) : native.fillDecrypt(scratch)
    } catch {}
    if (!enc && COUNTER[outcome] !== undefined) outcomes[COUNTER[outcome]]++
    const nodeAnswer = NODE_ANSWER[outcome] ?? NODE_REFUSE
    if (nodeAnswer === NODE_REFUSE) scratch.fill(0)
    return enc ? answer(nodeAnswer, hmac, aes, name, iv) : answer(nodeAnswer, hmac, aes)
  }
  onticketkeycallback.wipe = wipe
  return onticketkeycallback
}

// Once Node's callback hook is on, Node cannot go back to its own ticket handling; this
// does what Node's built-in callback does, with the context's own key (name | hmac | aes).
function contextTicketCallback(context) {
  return markRestored(function onticketkeycallback(keyName, ticketIv, enc) {
    try {
      const key = context.getTicketKeys()
      const [keyNameOwn, hmac, aes] = [0, 1, 2].map((i) => slot(key, i))
      if (enc) return answer(NODE_USE, hmac, aes, keyNameOwn, crypto.randomBytes(SLOT_BYTES))
      return answer(crypto.timingSafeEqual(keyName, keyNameOwn) ? NODE_USE : NODE_REFUSE, hmac, aes)
    } catch {
      const zero = Buffer.alloc(SLOT_BYTES)
      return answer(NODE_REFUSE, zero, zero, zero, zero)
    }
  })
}

module.exports = {
  name: 'callback',

  /** null when callback mode can serve `ring` on `server`, else why not. */
  unavailable(server, ring) {
    const context = server._sharedCreds && server._sharedCreds.context
    if (!context || typeof context.enableTicketKeyCallback !== 'function') {
      return 'this Node.js has no enableTicketKeyCallback() on its secure contexts'
    }
    if (ring.cipher !== 'aes-128-cbc') {
      return `Node's ticket callback only does AES-128 and this ring uses '${ring.cipher}'`
    }
    return null
  },

  newOutcomes() {
    return { opened: 0, unknownKey: 0, expiredKey: 0 }
  },

  counts(outcomes) {
    return { ...outcomes }
  },

  /** Serves `context`'s tickets from the ring; `state.callback` is made once per attachment. */
  hook(context, state) {
    state.callback ??= ringTicketCallback(state.native, state.outcomes)
    context.enableTicketKeyCallback()
    context.onticketkeycallback = state.callback
  },

  /** Leaves the context Node's own ticket handling, and wipes the ring's buffer. */
  restore(context, state) {
    if (state.callback === null || state.callback === undefined) return
    context.onticketkeycallback = contextTicketCallback(context)
    state.callback.wipe()
  },

  unhook(context, { timeout }) {
    context.setSessionTimeout(timeout)
  },
}
