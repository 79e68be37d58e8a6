/**
 * A client of a failover cluster: the seed scenario's `fabric:FD`. It joins the cluster as an
 * observer (never a candidate), follows the master's "http" endpoint, and calls it every
 * `--interval` ms; when the master dies it finds the new one and carries on by itself.
 *
 *   node dist/examples/http-client.js --cluster FD --seed 127.0.0.1:7401 [--seed …] [--interval 200] [--service http]
 *
 * Prints JSON lines: ready, master (the URL it follows), answer (which server answered, and the
 * fencing epoch), failed (a call that failed even after retrying), left.
 */
import { parseArgs } from 'node:util'
import { createObserver, followMaster } from '../src/index.js'
import { emit, untilSignal } from './cli-args.js'

const { values } = parseArgs({
  options: {
    cluster: { type: 'string', default: 'FD' },
    seed: { type: 'string', multiple: true, default: [] },
    service: { type: 'string', default: 'http' },
    interval: { type: 'string', default: '200' },
    listen: { type: 'string', default: '127.0.0.1:0' },
    name: { type: 'string', default: 'client' } // accepted for symmetry with the servers; an observer has no name in any view
  }
})
const interval = Number(values.interval)
const observer = await createObserver({ cluster: values.cluster as string, seeds: values.seed as string[], listen: values.listen as string, renewIntervalMs: 500 })
const client = followMaster(observer, values.service as string, { noMasterTimeoutMs: 5000, retryBudgetMs: 3000 })
emit('ready', { id: observer.id })
client.on('change', c => emit('master', { url: c.url ?? null, previous: c.previous ?? null }))

let stopping = false
const loop = (async () => {
  while (!stopping) {
    const started = Date.now()
    try {
      // GET is idempotent: safe to repeat on the new master if the old one dies mid-call.
      const res = await client.fetch('/', { retrySafe: true, signal: AbortSignal.timeout(4000) })
      const body = await res.json() as { server?: string, epoch?: number }
      emit('answer', { status: res.status, server: body.server, epoch: body.epoch, url: client.lastUrl, tookMs: Date.now() - started })
    } catch (err) {
      emit('failed', { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
    }
    await new Promise(resolve => setTimeout(resolve, Math.max(0, interval - (Date.now() - started))))
  }
})()

await untilSignal()
stopping = true
await loop
client.close()
await observer.stop()
emit('left')
