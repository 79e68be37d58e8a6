/**
 * Prometheus metrics of one member, with prom-client, opt-in and injected: they go into the
 * Registry the caller passes, never into prom-client's global one, and nothing here is loaded
 * unless imported (`conclave/metrics`), so a member without metrics carries no prom-client.
 *
 *   import { Registry } from 'prom-client'
 *   import { instrument } from 'conclave/metrics'
 *   const registry = new Registry()
 *   const metrics = instrument(member, { registry })
 *   // … registry.metrics() is the text a scrape gets; metrics.close() detaches
 *
 * One member per registry (the names would clash); a process with two members uses two.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Member, MemberEvents } from '../member.js'
import type { Route, RouteEvent } from '../policies/route-policy.js'

export interface InstrumentOptions {
  /** Where the metrics are registered. */
  readonly registry: Registry
  /** Heartbeat round-trip buckets, seconds. @default 0.25 ms … 1 s */
  readonly rttBuckets?: readonly number[]
  /** Routes (`member.route(…)`) to report on; more with `watchRoute`. */
  readonly routes?: readonly Route[]
}

export interface Instrumentation {
  /** Adds a route's series: `conclave_route_running{route}` and `conclave_route_errors_total{route,phase}`. */
  watchRoute (route: Route): void
  /** Stops counting (the metrics stay registered, frozen). Idempotent. */
  close (): void
}

const RTT_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

export function instrument (member: Member, options: InstrumentOptions): Instrumentation {
  const registers = [options.registry]
  new Gauge({
    name: 'conclave_member_info',
    help: 'Constant 1, labelled with the cluster, name and id of this member',
    labelNames: ['cluster', 'name', 'id'],
    registers,
    collect () { this.reset(); this.set({ cluster: member.cluster, name: member.name, id: member.id }, 1) }
  })
  new Gauge({
    name: 'conclave_is_master',
    help: '1 while this member is one of the first `masters` members of the view and may act (its lease holds), else 0; one series per masters(N) watched (1 is the coordinator)',
    labelNames: ['masters'],
    registers,
    collect () {
      for (const n of member.mastershipLevels()) this.set({ masters: String(n) }, member.isMaster(n) ? 1 : 0)
    }
  })
  new Gauge({
    name: 'conclave_rank',
    help: 'This member\'s rank in the view while it may act on it (0 = coordinator), -1 otherwise',
    registers,
    collect () { this.set(member.rank ?? -1) }
  })
  new Gauge({
    name: 'conclave_epoch',
    help: 'Epoch of the installed view (a fencing token: it grows with every view), 0 without one',
    registers,
    collect () { this.set(member.epoch) }
  })
  new Gauge({
    name: 'conclave_view_members',
    help: 'Members of the installed view, 0 without one',
    registers,
    collect () { this.set(member.view?.members.length ?? 0) }
  })
  new Gauge({
    name: 'conclave_connections',
    help: 'Open transport connections (to members, observers and clients); bounded by maxConnections plus a reserve',
    registers,
    collect () { this.set(member.connections) }
  })
  new Gauge({
    name: 'conclave_time_since_view_change_seconds',
    help: 'Seconds since this member installed its current view (absent without one)',
    registers,
    collect () {
      const ms = member.msSinceViewChange
      if (ms === undefined) this.reset()
      else this.set(ms / 1000)
    }
  })
  new Gauge({
    name: 'conclave_view_quorate',
    help: '1 when the installed view may have masters (split-brain policy and quorum), else 0',
    registers,
    collect () { this.set(member.view !== undefined && member.quorum === 'ok' ? 1 : 0) }
  })
  const viewChanges = new Counter({ name: 'conclave_view_changes_total', help: 'Views this member installed', registers })
  const mastershipChanges = new Counter({
    name: 'conclave_mastership_changes_total',
    help: 'Times this member became or stopped being master (masters(N) of its options), by reason (elected, failover, handover, no-quorum, view, lease-expired, lease-renewed, excluded, leaving)',
    labelNames: ['reason', 'is_master'],
    registers
  })
  const suspicions = new Counter({ name: 'conclave_suspicions_total', help: 'Members this member suspected, by what it noticed (silence, disconnect)', labelNames: ['reason'], registers })
  const falseSuspicions = new Counter({ name: 'conclave_false_suspicions_total', help: 'Suspected members that proved alive', registers })
  const dropped = new Counter({ name: 'conclave_dropped_messages_total', help: 'Input from the network dropped, by reason (docs/security.md)', labelNames: ['reason'], registers })
  const splitBrains = new Counter({ name: 'conclave_split_brain_detected_total', help: 'Masters this member heard where its view expects another (policies/dual-master.ts)', registers })
  const merges = new Counter({ name: 'conclave_merges_total', help: 'Views in which members of an earlier view came back (a healed partition)', registers })
  const rtt = new Histogram({
    name: 'conclave_heartbeat_rtt_seconds',
    help: 'Heartbeat round trips to the members this one exchanges heartbeats with',
    buckets: [...(options.rttBuckets ?? RTT_BUCKETS)],
    registers
  })
  for (const [reason, n] of Object.entries(member.dropped)) dropped.inc({ reason }, n)
  // Series that exist from the start, so rate() and increase() see their first rise.
  for (const reason of ['silence', 'disconnect']) suspicions.inc({ reason }, 0)

  const listeners: Array<() => void> = []
  const on = <E extends keyof MemberEvents>(event: E, listener: (...args: MemberEvents[E]) => void): void => {
    // The generic E does not narrow EventEmitter's conditional listener type; the call is sound.
    const untyped = listener as (...args: unknown[]) => void
    const emitter = member as unknown as { on: (e: string, l: (...a: unknown[]) => void) => void, off: (e: string, l: (...a: unknown[]) => void) => void }
    emitter.on(event, untyped)
    listeners.push(() => { emitter.off(event, untyped) })
  }
  // Counted at install, as the epoch and member gauges read it (the public `view` event waits
  // for the broadcast flush).
  listeners.push(member.onViewChange(() => { viewChanges.inc() }))
  on('mastership', c => { mastershipChanges.inc({ reason: c.reason, is_master: c.isMaster ? '1' : '0' }) })
  on('suspect', s => { suspicions.inc({ reason: s.reason }) })
  on('refuted', () => { falseSuspicions.inc() })
  on('dropped', d => { dropped.inc({ reason: d.reason }) })
  on('split-brain', () => { splitBrains.inc() })
  on('merge', () => { merges.inc() })
  on('heartbeat-rtt', r => { rtt.observe(r.ms / 1000) })
  const routes = new Set<Route>()
  new Gauge({
    name: 'conclave_route_running',
    help: '1 while the route\'s work runs on this member (started, not yet stopping), else 0',
    labelNames: ['route'],
    registers,
    collect () { for (const r of routes) this.set({ route: r.name }, r.running ? 1 : 0) }
  })
  const routeErrors = new Counter({ name: 'conclave_route_errors_total', help: 'Route prepare/start/stop calls that threw or timed out', labelNames: ['route', 'phase'], registers })
  let closed = false
  const watchRoute = (route: Route): void => {
    if (routes.has(route)) return
    routes.add(route)
    const onEvent = (e: RouteEvent): void => {
      if (closed) return
      if (e.type === 'error') routeErrors.inc({ route: e.route, phase: e.phase })
      else if (e.type === 'stop-timeout') routeErrors.inc({ route: e.route, phase: 'stop-timeout' })
    }
    route.on('event', onEvent)
    listeners.push(() => { route.off('event', onEvent) })
  }
  for (const r of options.routes ?? []) watchRoute(r)
  return {
    watchRoute,
    close () {
      if (closed) return
      closed = true
      for (const off of listeners) off()
    }
  }
}
