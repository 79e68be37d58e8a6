/**
 * One small HTTP server for operators (`conclave member --metrics host:port`):
 *  - `GET /metrics`: the registry in the Prometheus text format;
 *  - `GET /health`: liveness — 200 once the member has started and until it stops, else 503;
 *  - `GET /ready`: readiness — 200 while the member belongs to a settled view, else 503
 *    (not started, joining or rejoining after an exclusion, stopping or stopped).
 * Kubernetes probes read only the status code (200–399 passes); the JSON body is for people.
 */
import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import type { Member } from '../member.js'
import type { WaitingReason } from '../core/effects.js'

export interface OperatorServer {
  /** `host:port` it listens on (port 0 picks one). */
  readonly address: string
  close (): Promise<void>
}

export interface Health { readonly status: 'ok' | 'starting' | 'stopped' }
/**
 * The body of `/ready`, for an operator watching a rollout: the view's epoch and size, who
 * coordinates it and this member's rank (0: the master); while joining, why it waits, if it
 * said (`incompatible`: its seeds speak another wire version).
 */
export interface Readiness {
  readonly ready: boolean
  readonly reason?: 'not-started' | 'joining' | 'stopped'
  readonly waiting?: WaitingReason
  readonly epoch?: number
  readonly members?: number
  readonly quorum?: string
  readonly coordinator?: { readonly id: string, readonly name: string }
  readonly rank?: number
}

export function health (member: Member): Health {
  if (member.running) return { status: 'ok' }
  return { status: member.id === '' ? 'starting' : 'stopped' }
}

export function readiness (member: Member): Readiness {
  if (!member.running) return { ready: false, reason: member.id === '' ? 'not-started' : 'stopped' }
  const view = member.view
  if (view === undefined) return { ready: false, reason: 'joining', ...(member.waiting !== undefined ? { waiting: member.waiting } : {}) }
  const coordinator = view.members[0] as { id: string, name: string }
  return { ready: true, epoch: view.id.epoch, members: view.members.length, quorum: member.quorum, coordinator: { id: coordinator.id, name: coordinator.name }, rank: view.members.findIndex(m => m.id === member.id) }
}

/** Starts the server; resolves once it listens. Rejects if the address is taken. */
export async function serveOperatorEndpoints (member: Member, registry: Registry, host: string, port: number): Promise<OperatorServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const json = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') { json(405, { error: 'GET only' }); return }
    if (path === '/metrics') {
      registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': registry.contentType }).end(text)
      }, (err: unknown) => { json(500, { error: err instanceof Error ? err.message : String(err) }) })
      return
    }
    if (path === '/health' || path === '/healthz') { const h = health(member); json(h.status === 'ok' ? 200 : 503, h); return }
    if (path === '/ready' || path === '/readyz') { const r = readiness(member); json(r.ready ? 200 : 503, r); return }
    json(404, { error: 'not found', paths: ['/metrics', '/health', '/ready'] })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const bound = server.address()
  const address = typeof bound === 'object' && bound !== null ? `${bound.address}:${bound.port}` : `${host}:${port}`
  return {
    address,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => resolve()) })
    }
  }
}
