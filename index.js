'use strict'

const { TicketKeyRing, generateTicketKeys } = require('./lib/ring.js')
const { attach } = require('./lib/attach.js')

module.exports = { TicketKeyRing, attach, generateTicketKeys }
