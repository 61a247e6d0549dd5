'use strict'

// registerMetrics(): rings' metrics in a prom-client Registry. Each registry gets one metric
// object per family (the same names for every ring), whose collect() reads every ring
// registered there, so that several rings share a registry, each series labelled with its
// ring. Rings are read once per scrape, when prom-client collects.

const { isTicketKeyRing } = require('./ring.js')
const { FAMILIES, kSnapshot } = require('./metrics.js')
const { loadPeer } = require('./peers.js')
const { invalidArgType, invalidArgValue, invalidState } = require('./errors.js')

const REGISTRY_METHODS = ['registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics']
// A registry's Collection, kept on the registry under a registered symbol, so that a second
// copy of this package in the process (npm may install two) adds its rings to the same one.
const kCollection = Symbol.for('tls-ticket-keys.metrics-collection.v1')

function loadPromClient() {
  return loadPeer('prom-client', registerMetrics)
}

/** The rings registered in one registry, and the metric objects that collect them. */
class Collection {
  #registry
  #promClient
  #rings = new Set()
  #metrics = new Map()
  #snapshots = null

  constructor(registry, promClient) {
    this.#registry = registry
    this.#promClient = promClient
  }

  get empty() {
    return this.#rings.size === 0
  }

  add(ring) {
    this.#dropDestroyed()
    if (this.#rings.has(ring)) throw invalidArgValue('ring', 'is registered in this registry already')
    for (const other of this.#rings) {
      if (other.name === ring.name) {
        throw invalidArgValue('ring',
          'has the name of another ring in this registry: give each ring its own options.name')
      }
    }
    this.#registerFamilies()
    this.#rings.add(ring)
  }

  remove(ring) {
    this.#rings.delete(ring)
    if (!this.empty) return
    for (const [name, metric] of this.#metrics) {
      if (this.#registry.getSingleMetric(name) === metric) this.#registry.removeSingleMetric(name)
    }
    this.#metrics.clear()
  }

  // Once, and again after registry.clear(): a name another metric holds is refused before
  // anything is registered.
  #registerFamilies() {
    const ours = (family) => this.#metrics.get(family.name)
    const missing = FAMILIES.filter((f) => ours(f) === undefined || this.#registry.getSingleMetric(f.name) !== ours(f))
    for (const family of missing) {
      if (this.#registry.getSingleMetric(family.name) !== undefined) {
        throw invalidArgValue('registry',
          `has a metric named ${family.name} already (another copy of tls-ticket-keys, or the application's own)`)
      }
    }
    for (const family of missing) {
      const metric = this.#metricFor(family)
      this.#registry.registerMetric(metric)
      this.#metrics.set(family.name, metric)
    }
  }

  #metricFor(family) {
    const { Counter, Gauge, Registry } = this.#promClient
    const collection = this
    const registry = this.#registry
    const counter = family.type === 'counter'
    const MetricClass = counter ? Counter : Gauge
    return new MetricClass({
      name: family.name,
      help: family.help,
      labelNames: family.labelNames,
      registers: [],
      collect() {
        // prom-client strips `_total` from a counter's name for an OpenMetrics registry (and
        // adds it to each sample); a registry switched back to Prometheus text needs it again.
        if (counter && registry.contentType !== Registry.OPENMETRICS_CONTENT_TYPE) this.name = family.name
        this.reset()
        for (const s of collection.#snapshotsOfThisScrape()) {
          for (const [labels, value] of family.samples(s)) {
            if (counter) this.inc(labels, value)
            else this.set(labels, value)
          }
        }
      },
    })
  }

  // prom-client calls every collect() of a scrape in one synchronous run: the rings are read
  // once for all of them, so that the families agree with each other.
  #snapshotsOfThisScrape() {
    if (this.#snapshots === null) {
      this.#dropDestroyed()
      this.#snapshots = [...this.#rings].map((ring) => ring[kSnapshot]())
      queueMicrotask(() => { this.#snapshots = null })
    }
    return this.#snapshots
  }

  #dropDestroyed() {
    for (const ring of this.#rings) if (ring.destroyed) this.#rings.delete(ring)
  }
}

/**
 * Puts the ring's metrics into a prom-client Registry (prom-client's default registry when none
 * is given), labelled `ring="<ring.name>"`. Returns { unregister() }. See index.d.ts.
 */
function registerMetrics(ring, registry = undefined) {
  if (!isTicketKeyRing(ring)) throw invalidArgType('ring', 'an instance of TicketKeyRing', ring)
  const promClient = loadPromClient()
  if (registry === undefined) {
    registry = promClient.register
  } else if (registry === null || typeof registry !== 'object' ||
    !REGISTRY_METHODS.every((m) => typeof registry[m] === 'function')) {
    throw invalidArgType('registry', 'a prom-client Registry', registry)
  }
  if (ring.destroyed) throw invalidState('the TicketKeyRing has been destroyed')
  let collection = registry[kCollection]
  if (collection === undefined) {
    collection = new Collection(registry, promClient)
    Object.defineProperty(registry, kCollection, { value: collection, configurable: true, enumerable: false })
  }
  collection.add(ring)
  let registered = true
  return {
    /** Takes the ring out of the registry; the registry's last ring takes the metrics with it. Idempotent. */
    unregister() {
      if (!registered) return
      registered = false
      collection.remove(ring)
      if (collection.empty && registry[kCollection] === collection) delete registry[kCollection]
    },
  }
}

module.exports = { registerMetrics }
