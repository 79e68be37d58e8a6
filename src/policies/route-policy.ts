/**
 * Route policy: work that runs only on a master (Camel's ZooKeeper RoutePolicy, Karaf's
 * master/slave bundles), with no lock store.
 *
 * Invariants:
 *  - start and stop of one route never overlap on one member: one serial loop per route;
 *  - start runs only while this member is one of the route's first N members with a live lease;
 *    on demotion the context's AbortSignal fires at once, then stop(reason) is awaited, bounded
 *    by `stopTimeoutMs` (a stop that throws or hangs is reported, never fatal);
 *  - a start that throws is reported and retried with exponential back-off while still master;
 *  - on a graceful leave the member stops its routes before it tells the group, so the
 *    successor's start cannot come before this member's stop.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import type { Member, MastershipReason } from '../member.js'
import type { View } from '../core/view.js'
import { InvalidOptionError } from '../errors.js'
import { rejectUnknownKeys, validateMasters } from '../options.js'
import { log } from '../log.js'
import { tokenString } from '../core/fencing.js'
import { internalsOf } from '../internal/member-internals.js'

export interface RouteContext {
  /** The epoch of the view in which mastership was granted: higher than any granted before in the group. */
  readonly epoch: number
  /**
   * This grant's fencing token (core/fencing.ts): the epoch and this member's id, as a string
   * that sorts as the grants do. Unlike the bare epoch it is never shared by two grants to
   * different members, also across the sides of an `allow` split. Give it to the store.
   */
  readonly token: string
  /** The view in which mastership was granted. */
  readonly view: View
  /** This member's rank in that view. */
  readonly rank: number
  /** Aborts the moment this member stops being master (before stop() is called). */
  readonly signal: AbortSignal
  /** Whether this member is still master now: check before acting on the outside world. */
  readonly isMaster: () => boolean
}

export interface RouteDefinition {
  /** Shown in events. */
  readonly name: string
  /** Called when this member becomes master. */
  start: (ctx: RouteContext) => void | Promise<void>
  /** Called when it stops being master (after `ctx.signal` aborted), with the reason. */
  stop?: (reason: MastershipReason | 'removed') => void | Promise<void>
  /** Hot standby: called once on every member when the route is added, so a promoted standby starts warm. */
  prepare?: () => void | Promise<void>
  /** Run on the first N members of the view. @default the member's `masters` option */
  readonly masters?: number
  /** Longest wait for `stop()` before the route counts as stopped anyway. @default 5000 */
  readonly stopTimeoutMs?: number
  /** Back-off after a failed start: first delay, doubled up to `maxMs`. @default { initialMs: 100, maxMs: 5000 } */
  readonly retry?: { readonly initialMs: number, readonly maxMs: number }
}

export type RouteEvent =
  | { readonly type: 'started', readonly route: string, readonly epoch: number, readonly at: number }
  | { readonly type: 'stopped', readonly route: string, readonly reason: string, readonly at: number }
  | { readonly type: 'error', readonly route: string, readonly phase: 'prepare' | 'start' | 'stop', readonly error: unknown, readonly retryInMs?: number }
  | { readonly type: 'stop-timeout', readonly route: string, readonly timeoutMs: number }

export interface Route {
  readonly name: string
  /** Whether start() has completed and stop() has not begun. */
  readonly running: boolean
  /** The epoch of the current grant while running. */
  readonly epoch: number | undefined
  on: (event: 'event', listener: (e: RouteEvent) => void) => void
  off: (event: 'event', listener: (e: RouteEvent) => void) => void
  /** Resolves when no start or stop is in progress. */
  idle: () => Promise<void>
  /** Stops the route if running and unregisters it; its name is free again once this resolves. Idempotent. */
  remove: () => Promise<void>
  /** A small summary for loggers and `JSON.stringify`. */
  toJSON: () => RouteSummary
}

export interface RouteSummary {
  readonly name: string
  /** The route's masters(N). */
  readonly masters: number
  /** Whether start() has completed and stop() has not begun. */
  readonly running: boolean
  /** The epoch of the current grant while running. */
  readonly epoch: number | undefined
  /** Whether remove() was called. */
  readonly removed: boolean
}

/** Every key a RouteDefinition has: a misspelt one (`stopTimeout`) would otherwise be ignored in silence. */
const ROUTE_KEYS: Record<keyof RouteDefinition, true> = { name: true, start: true, stop: true, prepare: true, masters: true, stopTimeoutMs: true, retry: true }

/** The routes registered on each member, by name: two routes of one name would be told apart by nobody. */
const routesOf = new WeakMap<object, Map<string, RouteRunner>>()

/**
 * Registers `definition` on `member`: it runs whenever the member is one of the route's masters.
 * Throws InvalidOptionError for a bad definition, an unknown key in it, or a name already used
 * by a route of this member that has not been removed.
 */
export function addRoute (member: Member, definition: RouteDefinition): Route {
  return new RouteRunner(member, definition)
}

class RouteRunner extends EventEmitter implements Route {
  readonly name: string
  private readonly masters: number
  private readonly stopTimeoutMs: number
  private readonly retry: { initialMs: number, maxMs: number }
  private desired = false
  private desiredReason: MastershipReason | 'removed' = 'view'
  private state: 'stopped' | 'running' = 'stopped'
  private controller: AbortController | undefined
  private grantEpoch: number | undefined
  private loop: Promise<void> | undefined
  private failures = 0
  private retryTimer: NodeJS.Timeout | undefined
  private removed = false
  private removing: Promise<void> | undefined
  private readonly unwatch: () => void
  private readonly unhook: () => void
  private readonly prepared: Promise<void>

  constructor (private readonly member: Member, private readonly def: RouteDefinition) {
    super()
    if (typeof def !== 'object' || def === null || Array.isArray(def)) throw new InvalidOptionError('route', 'an object with name and start', def)
    rejectUnknownKeys(def, Object.keys(ROUTE_KEYS), 'route.')
    if (typeof def.name !== 'string' || def.name.length === 0) throw new InvalidOptionError('route.name', 'a non-empty string', def.name)
    if (typeof def.start !== 'function') throw new InvalidOptionError('route.start', 'a function', def.start)
    if (def.stop !== undefined && typeof def.stop !== 'function') throw new InvalidOptionError('route.stop', 'a function', def.stop)
    if (def.prepare !== undefined && typeof def.prepare !== 'function') throw new InvalidOptionError('route.prepare', 'a function', def.prepare)
    this.name = def.name
    this.masters = validateMasters('route.masters', def.masters ?? member.options.masters)
    this.stopTimeoutMs = def.stopTimeoutMs ?? 5000
    if (!(this.stopTimeoutMs > 0)) throw new InvalidOptionError('route.stopTimeoutMs', 'a positive number of milliseconds', def.stopTimeoutMs)
    if (def.retry !== undefined) {
      if (typeof def.retry !== 'object' || def.retry === null || Array.isArray(def.retry)) throw new InvalidOptionError('route.retry', '{ initialMs > 0, maxMs >= initialMs }', def.retry)
      rejectUnknownKeys(def.retry, ['initialMs', 'maxMs'], 'route.retry.')
    }
    this.retry = def.retry ?? { initialMs: 100, maxMs: 5000 }
    if (!(this.retry.initialMs > 0) || !(this.retry.maxMs >= this.retry.initialMs)) throw new InvalidOptionError('route.retry', '{ initialMs > 0, maxMs >= initialMs }', def.retry)
    const routes = routesOf.get(member) ?? new Map<string, RouteRunner>()
    if (routes.has(def.name)) throw new InvalidOptionError('route.name', 'a route name not already in use on this member (remove() the route of that name first)', def.name)
    this.setMaxListeners(0)
    this.on('error', () => {}) // events are 'event'; never let an 'error' emit throw
    // Throws NotRunningError on a stopped member, before anything of the route has run.
    this.unwatch = member.watchMastership(this.masters, c => this.want(c.isMaster, c.reason))
    this.unhook = internalsOf(member).onBeforeLeave(async () => { this.want(false, 'leaving'); await this.idle() })
    routes.set(def.name, this)
    routesOf.set(member, routes)
    this.prepared = this.runPrepare()
    if (member.isMaster(this.masters)) this.want(true, 'elected')
  }

  get running (): boolean { return this.state === 'running' }
  get epoch (): number | undefined { return this.state === 'running' ? this.grantEpoch : undefined }

  async idle (): Promise<void> {
    while (this.loop !== undefined) await this.loop
  }

  async remove (): Promise<void> {
    this.removing ??= (async () => {
      this.removed = true
      this.unwatch()
      this.unhook()
      this.want(false, 'removed')
      await this.idle()
      // Only now may the name be used again: a new route's start cannot overlap this one's stop.
      const routes = routesOf.get(this.member)
      if (routes?.get(this.name) === this) routes.delete(this.name)
    })()
    await this.removing
  }

  toJSON (): RouteSummary {
    return { name: this.name, masters: this.masters, running: this.running, epoch: this.epoch, removed: this.removed }
  }

  [inspect.custom] (): string {
    return `Route ${inspect(this.toJSON())}`
  }

  private async runPrepare (): Promise<void> {
    if (this.def.prepare === undefined) return
    try {
      await this.def.prepare()
    } catch (error) {
      this.report({ type: 'error', route: this.name, phase: 'prepare', error })
    }
  }

  private want (master: boolean, reason: MastershipReason | 'removed'): void {
    if (this.removed && master) return
    this.desired = master
    if (!master) {
      this.desiredReason = reason
      // Demotion is immediate for the work: abort before anything awaits.
      this.controller?.abort(new Error(`no longer master: ${reason}`))
      if (this.retryTimer !== undefined) { clearTimeout(this.retryTimer); this.retryTimer = undefined }
    }
    this.loop ??= this.reconcile().finally(() => { this.loop = undefined })
  }

  /** The serial loop: one transition at a time until the state matches what is wanted. */
  private async reconcile (): Promise<void> {
    await this.prepared
    for (;;) {
      if (this.desired && this.state === 'stopped') {
        if (this.retryTimer !== undefined) return
        const ok = await this.doStart()
        if (!ok && this.desired) { this.scheduleRetry(); return }
      } else if (!this.desired && this.state === 'running') {
        await this.doStop(this.desiredReason)
      } else {
        return
      }
    }
  }

  private async doStart (): Promise<boolean> {
    const view = this.member.view
    const rank = this.member.rank
    if (view === undefined || rank === undefined || rank >= this.masters) return true // lost it meanwhile
    const controller = new AbortController()
    this.controller = controller
    this.grantEpoch = view.id.epoch
    const ctx: RouteContext = { epoch: view.id.epoch, token: tokenString({ epoch: view.id.epoch, holder: this.member.id }), view, rank, signal: controller.signal, isMaster: () => this.member.isMaster(this.masters) }
    try {
      await this.def.start(ctx)
    } catch (error) {
      this.failures++
      const retryInMs = Math.min(this.retry.maxMs, this.retry.initialMs * 2 ** (this.failures - 1))
      this.report({ type: 'error', route: this.name, phase: 'start', error, retryInMs })
      this.controller = undefined
      return false
    }
    this.failures = 0
    this.state = 'running'
    this.report({ type: 'started', route: this.name, epoch: view.id.epoch, at: performance.timeOrigin + performance.now() })
    return true
  }

  private scheduleRetry (): void {
    const delay = Math.min(this.retry.maxMs, this.retry.initialMs * 2 ** Math.max(0, this.failures - 1))
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (this.desired) this.want(true, 'view')
    }, delay)
  }

  private async doStop (reason: MastershipReason | 'removed'): Promise<void> {
    this.controller?.abort(new Error(`no longer master: ${reason}`))
    this.state = 'stopped'
    const stop = this.def.stop
    if (stop !== undefined) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), this.stopTimeoutMs) })
      try {
        const outcome = await Promise.race([Promise.resolve().then(async () => await stop(reason)), timeout])
        if (outcome === 'timeout') this.report({ type: 'stop-timeout', route: this.name, timeoutMs: this.stopTimeoutMs })
      } catch (error) {
        this.report({ type: 'error', route: this.name, phase: 'stop', error })
      } finally {
        clearTimeout(timer)
      }
    }
    this.controller = undefined
    this.report({ type: 'stopped', route: this.name, reason, at: performance.timeOrigin + performance.now() })
  }

  private report (e: RouteEvent): void {
    if (log.policies.enabled) log.policies('%s %s %s%s', 'route', e.route, e.type, 'error' in e ? `: ${e.error instanceof Error ? e.error.message : String(e.error)}` : '')
    try {
      this.emit('event', e)
    } catch (err) {
      setImmediate(() => { throw err })
    }
  }
}
