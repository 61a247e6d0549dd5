'use strict'

// The reference parsers of the Prometheus and OpenMetrics text formats (Python's
// prometheus_client, which .ci/run installs), as a function: text in, metric families out.

const { spawnSync } = require('node:child_process')

const PARSE = `
import json, sys
if sys.argv[1] == 'openmetrics':
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
families = [
    {'name': f.name, 'type': f.type,
     'samples': [{'name': s.name, 'labels': s.labels, 'value': s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
`

const havePrometheusClient = spawnSync('python3', ['-c', 'import prometheus_client'], { stdio: 'ignore' }).status === 0

/**
 * The families of `text` in `format` ('prometheus' or 'openmetrics'): [{ name, type, samples:
 * [{ name, labels, value }] }]. Throws with the parser's own error when it refuses the text.
 */
function parseExposition(text, format) {
  const result = spawnSync('python3', ['-c', PARSE, format], { input: text, encoding: 'utf8', timeout: 30_000 })
  if (result.status !== 0) throw new Error(`the ${format} parser refused the text: ${result.stderr}\n--- text:\n${text}`)
  return JSON.parse(result.stdout)
}

/** Every sample of `families` as `name{label="value",...}` (labels sorted) -> value. */
function seriesOf(families) {
  const series = new Map()
  for (const family of families) {
    for (const s of family.samples) {
      const labels = Object.keys(s.labels).sort().map((k) => `${k}="${s.labels[k]}"`).join(',')
      const key = `${s.name}{${labels}}`
      if (series.has(key)) throw new Error(`the series ${key} appears twice`)
      series.set(key, s.value)
    }
  }
  return series
}

module.exports = { parseExposition, seriesOf, havePrometheusClient }
