'use strict'

const { TicketKeyRing, generateTicketKeys } = require('./lib/ring.js')
const { attach } = require('./lib/attach.js')
const { RedisKeyStore } = require('./lib/redis-store.js')

module.exports = { TicketKeyRing, attach, generateTicketKeys, RedisKeyStore }
