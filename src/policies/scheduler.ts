/**
 * Cluster scheduler: each tick of a job fires once in the whole cluster, on the coordinator,
 * also across failovers (Quartz's clustered JobStore, with the view and its lease instead of
 * database row locks).
 *
 * Tick times are a pure function of the spec, so every member computes the same ones:
 * `everyMs` ticks at the multiples of everyMs since the Unix epoch; `cron` ticks at the times
 * croner computes, in `timezone` (UTC unless given, so hosts in other zones agree).
 *
 * Protocol (service channel `conclave.scheduler`: a direct, ordered, authenticated stream per
 * peer). Every member keeps `lastFired` per job: the highest tick it knows was claimed.
 *  1. claim: before firing tick T the firing member records T, sends `{claim, job, T, epoch}` to
 *     every other member of its view and waits for all `{claimed, job, T}` acks, or ackTimeoutMs.
 *     A receiver records lastFired = max(lastFired, T), then acks. It ignores (no record, no
 *     ack) a claim stamped with an epoch older than its own view when the sender does not
 *     coordinate that view: a deposed master.
 *  2. fire: right before calling fn the firer checks again that it is the acting rank 0 (lease
 *     live): a process that was paused past its lease, or demoted meanwhile, does not fire.
 *  3. takeover: a member that becomes rank 0 first asks every other member of its view
 *     (`{query, job}` → `{state, job, lastFired}`), waits for all answers or ackTimeoutMs and
 *     takes the max. Only then does it schedule: ticks ≤ lastFired never fire again; ticks that
 *     passed while no master could fire follow `missed`.
 *  4. a member that joins a view asks its coordinator once per job, so it knows the ticks
 *     claimed before it was a member (it may be the successor of a later failover).
 *
 * Why a tick cannot fire twice: a member fires only while it is rank 0 with a live lease
 * (checked at the call). A successor is promoted only when it installs a view without the old
 * master, and the group installs that view only after the old master's lease ended
 * (docs/design.md), so every fire of the old master precedes the successor's promotion, and
 * every fire was preceded by a claim. The successor learns the last claim from any member of
 * its view that acked it, and under `missed: 'skip'` it never fires a tick whose time passed
 * before its promotion anyway.
 *
 * Failure cases:
 *  - the master dies (or is demoted) between claim and fire: members recorded T, nobody fires
 *    it — the tick is lost. At most once is the price of no lock store.
 *  - the master dies after firing: the successor learns T from the members that acked it.
 *  - the master fires after an ack timed out and dies, the member that missed the claim
 *    becomes the successor, and no member that acked answers its query in time: that
 *    successor does not know T. Under 'skip' it still cannot fire T (its time passed before
 *    the promotion) unless its wall clock lags the old master's by more than the failover
 *    took; under 'latest' T may be the missed tick it catches up. Two faults at once.
 *  - a member that runs no scheduler at all never acks: every claim waits ackTimeoutMs.
 *    Schedule the same jobs on every member, as with routes.
 *
 * Why only rank 0 fires (there is no `masters` option, unlike routes): a member knows only its
 * own lease, so rank 1 cannot tell that rank 0 stopped firing until a view without rank 0 makes
 * it rank 0 itself; letting it fire earlier would need a second agreement.
 *
 * Invariants (per job, per member):
 *  - one serial loop: a tick's fn is awaited before the next tick is considered; at most one
 *    timer (the wait for the next tick, clamped to 60 s, or the ack/answer wait) at a time;
 *  - a tick fires on time if it came due while the loop waited as master (for its timer, or
 *    for the answers after a promotion) and no later tick is due yet; every other due tick
 *    (passed before the promotion, during a long fn, during a blocked event loop) is missed:
 *    'skip' drops them, 'latest' fires the newest once;
 *  - on demotion the timer is cleared and the tick's signal aborts; on a graceful leave firing
 *    stops before the group hears of it (a running fn is awaited up to leaveTimeoutMs);
 *    after cancel() or stop() no timer is left;
 *  - fn errors and remote garbage are reported or dropped, never thrown.
 */
import { EventEmitter } from 'node:events'
import { Cron } from 'croner'
import type { Member, MastershipReason, ViewChange } from '../member.js'
import { InvalidOptionError } from '../errors.js'
import { log } from '../log.js'

/** The service name of the scheduler's messages on the member's direct streams. */
export const SCHEDULER_SERVICE = 'conclave.scheduler'

/** Longest single wait for a tick: longer waits re-check the clock (wall-clock jumps). */
const MAX_SLEEP_MS = 60_000
/**
 * Missed cron ticks are counted one by one (croner takes tens of µs a tick) up to this many, so
 * a catch-up never blocks the event loop long enough to cost the lease. everyMs counts are exact.
 */
const MAX_COUNT = 1000
const MAX_NAME_LENGTH = 256
/** Jobs this member only hears about (claims for jobs it does not run) it remembers, at most. */
const MAX_REMEMBERED_JOBS = 10_000
const MAX_EVERY_MS = 2 ** 31

export type ScheduleSpec =
  /** Ticks at the multiples of `everyMs` since the Unix epoch: an integer from 10 to 2^31. */
  | { readonly everyMs: number }
  /** Ticks at the times of a cron expression (5, 6 or 7 fields, croner syntax), in `timezone` (IANA, @default 'UTC'). */
  | { readonly cron: string, readonly timezone?: string }

export type MissedPolicy = 'skip' | 'latest'

const SCHEDULE_OPTION_KEYS: ReadonlySet<string> = new Set(['missed', 'ackTimeoutMs'])

export interface ScheduleOptions {
  /**
   * Ticks that passed while no master could fire them (a failover, a long fn, a blocked loop):
   * 'skip' drops them; 'latest' fires the most recent of them once. @default 'skip'
   */
  readonly missed?: MissedPolicy
  /** How long the firer waits for claim acks, and a new master for the others' state. @default 250 */
  readonly ackTimeoutMs?: number
}

export interface TickContext {
  readonly job: string
  /** The tick's scheduled time, Unix ms. */
  readonly tick: number
  /** When fn was called, Unix ms. */
  readonly firedAt: number
  /** Fencing token: the view epoch when the tick fired. */
  readonly epoch: number
  /** Aborts when this member stops being the firing master (or the job is cancelled). */
  readonly signal: AbortSignal
}

export type ScheduleEvent =
  | { readonly type: 'fired', readonly job: string, readonly tick: number, readonly epoch: number }
  /** fn threw or rejected (tick 0: an internal error outside any tick). */
  | { readonly type: 'error', readonly job: string, readonly tick: number, readonly error: unknown }
  /** `ticks` missed ticks from `from` to `to` (inclusive) were not fired. */
  | { readonly type: 'skipped', readonly job: string, readonly ticks: number, readonly from: number, readonly to: number }

export interface ScheduledJob {
  readonly name: string
  /** The highest tick this member knows was claimed in the cluster (by itself or others). */
  readonly lastFired: number | undefined
  on: (event: 'event', listener: (e: ScheduleEvent) => void) => void
  off: (event: 'event', listener: (e: ScheduleEvent) => void) => void
  /** Stops firing (awaiting a running fn) and unregisters the job. Idempotent. */
  cancel: () => Promise<void>
}

// ─── tick math: pure ─────────────────────────────────────────────────────────

/** The ticks t with after < t ≤ upTo. */
export interface DueTicks {
  /** How many (cron: counted up to 1000). */
  readonly count: number
  readonly first?: number
  readonly last?: number
  /** The tick before `last`, when count > 1. */
  readonly beforeLast?: number
}

export interface TickSeries {
  /** The first tick strictly after `after` (Unix ms), or undefined when the schedule has no more. */
  next: (after: number) => number | undefined
  /** The ticks in (after, upTo]. */
  due: (after: number, upTo: number) => DueTicks
}

/** Ticks at the multiples of `everyMs` since the Unix epoch. */
export function everySeries (everyMs: number): TickSeries {
  const next = (after: number): number => (Math.floor(after / everyMs) + 1) * everyMs
  return {
    next,
    due (after, upTo) {
      const first = next(after)
      const last = Math.floor(upTo / everyMs) * everyMs
      if (last < first) return { count: 0 }
      const count = (last - first) / everyMs + 1
      return count > 1 ? { count, first, last, beforeLast: last - everyMs } : { count, first, last }
    }
  }
}

/** Ticks of a cron expression, computed by croner (throws croner's error on a bad expression). */
export function cronSeries (expression: string, timezone = 'UTC'): TickSeries {
  // paused and without a function: croner only computes times, it never arms a timer
  const cron = new Cron(expression, { paused: true, timezone })
  const next = (after: number): number | undefined => cron.nextRun(new Date(after))?.getTime()
  return {
    next,
    due (after, upTo) {
      let count = 0
      let first: number | undefined
      let last: number | undefined
      let beforeLast: number | undefined
      for (let t = next(after); t !== undefined && t <= upTo && count < MAX_COUNT; t = next(t)) {
        count++
        first ??= t
        beforeLast = last
        last = t
      }
      if (count === MAX_COUNT && last !== undefined) {
        // more remain: the newest two come from a backward search (runs strictly before upTo + 1)
        const newest = cron.previousRuns(2, new Date(upTo + 1)).map(d => d.getTime()).filter(t => t > after)
        if (newest[0] !== undefined && newest[0] > last) {
          last = newest[0]
          beforeLast = newest[1]
        }
      }
      if (count === 0) return { count }
      return { count, first, last, ...(count > 1 ? { beforeLast } : {}) }
    }
  }
}

export interface TickPlan {
  /** The tick to fire now, if any. */
  readonly fire?: number
  /** The due ticks not fired. */
  readonly skipped?: { readonly ticks: number, readonly from: number, readonly to: number }
}

/**
 * What to do with the due ticks. `waitingSince` is when the loop, as master, began waiting
 * (its timer, or a promotion), or undefined if it was busy (fn ran). The newest due tick is on
 * time if it came due after `waitingSince` and no other tick did: it fires, and any older due
 * ticks (they passed before the promotion) are skipped. Otherwise all due ticks are missed:
 * 'skip' fires none, 'latest' fires the newest once.
 */
export function planTicks (due: DueTicks, waitingSince: number | undefined, missed: MissedPolicy): TickPlan {
  const { count, first, last, beforeLast } = due
  if (count === 0 || first === undefined || last === undefined) return {}
  const onTime = waitingSince !== undefined && last > waitingSince && (count === 1 || (beforeLast !== undefined && beforeLast <= waitingSince))
  if (!onTime && missed === 'skip') return { skipped: { ticks: count, from: first, to: last } }
  if (count === 1 || beforeLast === undefined) return { fire: last }
  return { fire: last, skipped: { ticks: count - 1, from: first, to: beforeLast } }
}

// ─── registration ────────────────────────────────────────────────────────────

/**
 * Schedules `fn` on `member`: each tick of `spec` fires once in the cluster, on the coordinator.
 * Register the same job (name, spec, options) on every member.
 */
export function schedule (member: Member, name: string, spec: ScheduleSpec, fn: (tick: TickContext) => void | Promise<void>, opts: ScheduleOptions = {}): ScheduledJob {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) throw new InvalidOptionError('name', `a string of 1–${MAX_NAME_LENGTH} characters`, name)
  const series = toSeries(spec)
  if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'a function', fn)
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('opts', 'an object', opts)
  for (const key of Object.keys(opts)) {
    // `masters` is refused, not ignored: only the coordinator fires (see the header), and an
    // option that silently does nothing would mislead whoever set it.
    if (!SCHEDULE_OPTION_KEYS.has(key)) throw new InvalidOptionError(key, `one of the schedule options (${[...SCHEDULE_OPTION_KEYS].join(', ')}); a tick always fires on the coordinator`, (opts as Record<string, unknown>)[key])
  }
  const missed = opts.missed ?? 'skip'
  if (missed !== 'skip' && missed !== 'latest') throw new InvalidOptionError('missed', '"skip" or "latest"', missed)
  const ackTimeoutMs = opts.ackTimeoutMs ?? 250
  if (typeof ackTimeoutMs !== 'number' || !Number.isFinite(ackTimeoutMs) || ackTimeoutMs <= 0 || ackTimeoutMs > MAX_SLEEP_MS) {
    throw new InvalidOptionError('ackTimeoutMs', `a positive number of milliseconds up to ${MAX_SLEEP_MS}`, ackTimeoutMs)
  }
  const hub = hubs.get(member) ?? new Hub(member)
  if (hub.jobs.has(name)) throw new InvalidOptionError('name', 'a job name not already scheduled on this member', name)
  return new JobRunner(member, hub, name, series, fn, missed, ackTimeoutMs)
}

function toSeries (spec: ScheduleSpec): TickSeries {
  if (typeof spec !== 'object' || spec === null) throw new InvalidOptionError('spec', '{ everyMs } or { cron, timezone? }', spec)
  const hasEvery = 'everyMs' in spec
  const hasCron = 'cron' in spec
  if (hasEvery === hasCron) throw new InvalidOptionError('spec', 'exactly one of everyMs and cron', spec)
  if (hasEvery) {
    const { everyMs } = spec
    if (typeof everyMs !== 'number' || !Number.isInteger(everyMs) || everyMs < 10 || everyMs > MAX_EVERY_MS) {
      throw new InvalidOptionError('spec.everyMs', `an integer number of milliseconds from 10 to ${MAX_EVERY_MS}`, everyMs)
    }
    return everySeries(everyMs)
  }
  const { cron, timezone } = spec
  if (typeof cron !== 'string') throw new InvalidOptionError('spec.cron', 'a cron expression string', cron)
  if (timezone !== undefined) {
    let valid = typeof timezone === 'string' && timezone.length > 0
    try { if (valid) new Intl.DateTimeFormat('en-US', { timeZone: timezone }) } catch { valid = false }
    if (!valid) throw new InvalidOptionError('spec.timezone', 'an IANA time zone such as "Europe/Berlin"', timezone)
  }
  let series: TickSeries
  try {
    series = cronSeries(cron, timezone)
  } catch (err) {
    throw new InvalidOptionError('spec.cron', `a valid cron expression (${err instanceof Error ? err.message : String(err)})`, cron)
  }
  if (series.next(Date.now()) === undefined) throw new InvalidOptionError('spec.cron', 'a cron expression with a future run', cron)
  return series
}

// ─── the per-member hub: wire, lastFired, job names ──────────────────────────

type Reply = { readonly kind: 'claimed', readonly tick: number } | { readonly kind: 'state' }

interface Collector {
  readonly job: string
  readonly kind: Reply['kind']
  readonly tick: number | undefined
  accept: (from: string) => void
}

const hubs = new WeakMap<Member, Hub>()

/** One per member: owns the service handler, the lastFired records and the job names. */
class Hub {
  readonly jobs = new Map<string, JobRunner>()
  readonly collectors = new Set<Collector>()
  /** Remote messages dropped as malformed or unwanted. */
  dropped = 0
  private readonly fired = new Map<string, number>()
  private readonly unregister: () => void
  private readonly unhookView: () => void

  constructor (private readonly member: Member) {
    hubs.set(member, this)
    this.unregister = member.registerService(SCHEDULER_SERVICE, (from, data) => this.receive(from, data))
    this.unhookView = member.onViewChange(change => this.catchUp(change))
  }

  lastFired (job: string): number | undefined { return this.fired.get(job) }

  /** Raises the job's lastFired to `tick`; false when it cannot be remembered (too many jobs). */
  record (job: string, tick: number): boolean {
    const known = this.fired.get(job)
    if (known === undefined && !this.jobs.has(job) && this.fired.size >= MAX_REMEMBERED_JOBS) return false
    if (known === undefined || tick > known) this.fired.set(job, tick)
    return true
  }

  send (to: string, msg: Record<string, unknown>): void {
    this.member.sendService(to, SCHEDULER_SERVICE, msg)
  }

  remove (name: string): void {
    this.jobs.delete(name)
    if (this.jobs.size > 0) return
    this.unregister()
    this.unhookView()
    hubs.delete(this.member)
  }

  /** A member that joins a view asks its coordinator what was claimed before it was there. */
  private catchUp ({ view, previous }: ViewChange): void {
    const self = this.member.id
    const coordinator = view.members[0]?.id
    if (coordinator === undefined || coordinator === self) return
    if (previous !== undefined && previous.members.some(m => m.id === self)) return
    for (const job of this.jobs.keys()) this.send(coordinator, { type: 'query', job })
  }

  /** Remote input: validated, dropped when malformed, never thrown. */
  private receive (from: string, data: unknown): void {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) { this.dropped++; return }
    const msg = data as Record<string, unknown>
    const { type, job } = msg
    if (typeof job !== 'string' || job.length === 0 || job.length > MAX_NAME_LENGTH) { this.dropped++; return }
    switch (type) {
      case 'claim': {
        const { tick, epoch } = msg
        if (!isTime(tick) || typeof epoch !== 'number' || !Number.isFinite(epoch)) { this.dropped++; return }
        const view = this.member.view
        // a deposed master's claim: do not let it hold back the real master's ticks
        if (view !== undefined && epoch < view.id.epoch && view.members[0]?.id !== from) { this.dropped++; return }
        if (!this.record(job, tick)) { this.dropped++; return }
        this.send(from, { type: 'claimed', job, tick })
        return
      }
      case 'query': {
        this.send(from, { type: 'state', job, lastFired: this.fired.get(job) ?? null })
        return
      }
      case 'claimed': {
        const { tick } = msg
        if (!isTime(tick)) { this.dropped++; return }
        this.deliver(from, job, { kind: 'claimed', tick })
        return
      }
      case 'state': {
        const { lastFired } = msg
        if (lastFired !== null && lastFired !== undefined && !isTime(lastFired)) { this.dropped++; return }
        if (lastFired !== null && lastFired !== undefined) this.record(job, lastFired)
        this.deliver(from, job, { kind: 'state' })
        return
      }
      default:
        this.dropped++
    }
  }

  private deliver (from: string, job: string, reply: Reply): void {
    for (const c of [...this.collectors]) {
      if (c.job !== job || c.kind !== reply.kind) continue
      if (reply.kind === 'claimed' && reply.tick !== c.tick) continue
      c.accept(from)
    }
  }
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

// ─── one job on one member: the serial loop ──────────────────────────────────

interface Term {
  readonly controller: AbortController
  done: boolean
}

class JobRunner extends EventEmitter implements ScheduledJob {
  /** Wall-clock registration time: ticks before it did not exist for this member. */
  private readonly registeredAt = Date.now()
  /** Ticks up to here this member's loop has handled (fired, lost or skipped). */
  private handledThrough = Number.NEGATIVE_INFINITY
  private term: Term | undefined
  private loop: Promise<void> | undefined
  private removed = false
  private cancelling: Promise<void> | undefined
  private readonly unwatch: () => void
  private readonly unhook: () => void

  constructor (
    private readonly member: Member,
    private readonly hub: Hub,
    readonly name: string,
    private readonly series: TickSeries,
    private readonly fn: (tick: TickContext) => void | Promise<void>,
    private readonly missed: MissedPolicy,
    private readonly ackTimeoutMs: number
  ) {
    super()
    this.setMaxListeners(0)
    this.on('error', () => {}) // events are 'event'; never let an 'error' emit throw
    hub.jobs.set(name, this)
    this.unwatch = member.watchMastership(1, c => this.want(c.isMaster, c.reason))
    // A graceful leave waits for a running fn (its signal has aborted), at most leaveTimeoutMs:
    // a hung fn must not keep the member from leaving.
    this.unhook = member.onBeforeLeave(async () => { this.want(false, 'leaving'); await this.idle(member.options.leaveTimeoutMs) })
    if (member.rank === 0) this.want(true, 'elected')
    // Registered late on a member of a view: learn what the coordinator already claimed.
    const coordinator = member.view?.members[0]?.id
    if (coordinator !== undefined && coordinator !== member.id) hub.send(coordinator, { type: 'query', job: name })
  }

  get lastFired (): number | undefined { return this.hub.lastFired(this.name) }

  async cancel (): Promise<void> {
    this.cancelling ??= (async () => {
      this.removed = true
      this.unwatch()
      this.unhook()
      this.want(false, 'cancelled')
      await this.idle()
      this.hub.remove(this.name) // only now may the name be scheduled again: never two loops
    })()
    await this.cancelling
  }

  private async idle (timeoutMs?: number): Promise<void> {
    if (timeoutMs === undefined) {
      while (this.loop !== undefined) await this.loop
      return
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })
    await Promise.race([this.idle(), timeout])
    clearTimeout(timer)
  }

  private want (master: boolean, reason: MastershipReason | 'cancelled'): void {
    if (master && !this.removed) {
      this.term ??= { controller: new AbortController(), done: false }
    } else if (this.term !== undefined) {
      // Demotion is immediate for the work: the timer is cleared and fn's signal aborts now.
      this.term.controller.abort(new Error(`no longer master: ${reason}`))
      this.term = undefined
    }
    this.kick()
  }

  private kick (): void {
    if (this.loop !== undefined) return
    this.loop = this.drive().finally(() => {
      this.loop = undefined
      if (this.term !== undefined && !this.term.done) this.kick()
    })
  }

  /** Runs terms one after another: a new term starts only when the previous one's fn returned. */
  private async drive (): Promise<void> {
    for (let term = this.term; term !== undefined && !term.done; term = this.term) {
      try {
        await this.runTerm(term.controller.signal)
      } catch (error) {
        this.report({ type: 'error', job: this.name, tick: 0, error })
      }
      term.done = true
    }
  }

  /** One stretch as firing master: learn what was claimed, then fire ticks until demoted. */
  private async runTerm (signal: AbortSignal): Promise<void> {
    // From the promotion on, a master is waiting: a tick that comes due during the query is not
    // missed, it fires (late) once the answers are in.
    let waitingSince: number | undefined = Date.now()
    await this.collect('state', undefined, { type: 'query', job: this.name }, signal)
    while (!signal.aborted) {
      const cursor = Math.max(this.lastFired ?? Number.NEGATIVE_INFINITY, this.handledThrough, this.registeredAt)
      const now = Date.now()
      const plan = planTicks(this.series.due(cursor, now), waitingSince, this.missed)
      waitingSince = undefined
      if (plan.fire === undefined && plan.skipped === undefined) {
        const next = this.series.next(Math.max(cursor, now))
        if (next === undefined) return // the schedule has no more ticks
        waitingSince = now
        await this.sleep(Math.min(next - now, MAX_SLEEP_MS), signal)
        continue
      }
      if (plan.skipped !== undefined) {
        this.handledThrough = Math.max(this.handledThrough, plan.skipped.to)
        this.report({ type: 'skipped', job: this.name, ...plan.skipped })
      }
      if (plan.fire !== undefined) await this.fire(plan.fire, signal)
    }
  }

  private async fire (tick: number, signal: AbortSignal): Promise<void> {
    this.handledThrough = Math.max(this.handledThrough, tick)
    if (this.member.rank !== 0) return // lease lapsed; the demotion is on its way
    this.hub.record(this.name, tick)
    await this.collect('claimed', tick, { type: 'claim', job: this.name, tick, epoch: this.member.epoch }, signal)
    // Checked against the clock at the call: a paused process whose lease lapsed does not fire.
    if (signal.aborted || this.member.rank !== 0) return // claimed, not fired: lost, at most once
    const epoch = this.member.epoch
    this.report({ type: 'fired', job: this.name, tick, epoch })
    try {
      await this.fn({ job: this.name, tick, firedAt: Date.now(), epoch, signal })
    } catch (error) {
      this.report({ type: 'error', job: this.name, tick, error })
    }
  }

  /**
   * Sends `msg` to every other member of the view and waits until each answered with `kind`,
   * left the view, `ackTimeoutMs` passed, or `signal` aborted.
   */
  private async collect (kind: Reply['kind'], tick: number | undefined, msg: Record<string, unknown>, signal: AbortSignal): Promise<void> {
    const self = this.member.id
    const waiting = new Set((this.member.view?.members ?? []).map(m => m.id).filter(id => id !== self))
    if (waiting.size === 0 || signal.aborted) return
    await new Promise<void>(resolve => {
      const check = (): void => { if (waiting.size === 0) finish() }
      const collector: Collector = { job: this.name, kind, tick, accept: from => { waiting.delete(from); check() } }
      const onView = ({ view }: ViewChange): void => {
        for (const id of waiting) if (!view.members.some(m => m.id === id)) waiting.delete(id)
        check()
      }
      const finish = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', finish)
        unhookView()
        this.hub.collectors.delete(collector)
        resolve()
      }
      const timer = setTimeout(finish, this.ackTimeoutMs)
      signal.addEventListener('abort', finish, { once: true })
      const unhookView = this.member.onViewChange(onView)
      this.hub.collectors.add(collector)
      for (const to of waiting) this.hub.send(to, msg)
    })
  }

  private async sleep (ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return
    await new Promise<void>(resolve => {
      const finish = (): void => { clearTimeout(timer); signal.removeEventListener('abort', finish); resolve() }
      const timer = setTimeout(finish, Math.max(0, ms))
      signal.addEventListener('abort', finish, { once: true })
    })
  }

  private report (e: ScheduleEvent): void {
    if (log.policies.enabled) log.policies('%s %s %s%s', 'job', e.job, e.type, 'error' in e ? `: ${e.error instanceof Error ? e.error.message : String(e.error)}` : '')
    try {
      this.emit('event', e)
    } catch (err) {
      setImmediate(() => { throw err })
    }
  }
}
