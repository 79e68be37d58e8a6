/**
 * `conclave/metrics`: Prometheus metrics (prom-client) and the operator endpoints. A separate
 * entry point so that members without metrics never load prom-client.
 */
export { instrument, type InstrumentOptions, type Instrumentation } from './metrics.js'
export { serveOperatorEndpoints, health, readiness, type OperatorServer, type Health, type Readiness } from './server.js'
