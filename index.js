'use strict'

const { TicketKeyRing, generateTicketKeys } = require('./lib/ring.js')
const { attach } = require('./lib/attach.js')
const { RedisKeyStore } = require('./lib/redis-store.js')
const { SessionCache } = require('./lib/session-cache.js')
const { inspectSession, inspectTicket } = require('./lib/inspect.js')
const { registerMetrics } = require('./lib/prometheus.js')
const { exportKeys } = require('./lib/export-keys.js')

module.exports = { TicketKeyRing, attach, generateTicketKeys, RedisKeyStore, SessionCache, inspectSession, inspectTicket, registerMetrics, exportKeys }
