/**
 * Cluster scheduler: each tick of a job fires at most once in the whole cluster, on the
 * coordinator, also across failovers (Quartz's clustered JobStore, with the view and its lease
 * instead of database row locks).
 *
 * Tick times are a pure function of the spec, so every member computes the same ones:
 * `everyMs` ticks at the multiples of everyMs since the Unix epoch; `cron` ticks at the times
 * croner computes, in `timezone` (UTC unless given, so hosts in other zones agree).
 *
 * Protocol (service channel `conclave.scheduler`: a direct, ordered, authenticated stream per
 * peer, whose queued frames are lost when it breaks, so no step relies on one frame). Every
 * member, scheduled jobs or not, runs the hub (Member's constructor installs it): it keeps
 * `lastFired` per job, the highest tick it knows was claimed, and the coordinator of each view it
 * installed (epoch → members[0]).
 *  1. claim: before firing tick T the firer records T and sends `{claim, job, T, epoch}` to every
 *     other member of its view. Every ackTimeoutMs it resends the claim, stamped with its current
 *     epoch, to the members that have not acked. Members that leave the view are no longer
 *     waited for; members that join it are sent the claim and waited for too.
 *  2. accept: a receiver records lastFired = max(lastFired, T) and acks `{claimed, job, T}` only
 *     if it installed view `epoch` and the sender coordinated it. Any other claim is dropped and
 *     counted, never acked: one from another member of that view, or for an epoch it has not
 *     installed (yet: a resend gets through once it has).
 *  3. fire: the firer calls fn once every member of its current view has acked, and only if it
 *     is still the acting rank 0, computed against its lease: checked at each resend, at each
 *     view change and right before the call. Demoted, it gives up: T is lost, never fired.
 *     It also gives up when the next tick comes due first (see the invariants).
 *  4. takeover: a member that becomes rank 0 first asks every other member of its view
 *     (`{query, job}` → `{state, job, lastFired}`), waits for all answers or ackTimeoutMs and
 *     takes the max with its own. Only then does it schedule: ticks ≤ lastFired never fire
 *     again; ticks that passed while no master could fire follow `missed`.
 *  5. join: a member that joins a view asks its coordinator once per job, so it knows the ticks
 *     claimed before it was a member.
 *
 * Why no tick fires twice: the firer calls fn for T only after every member of its view has
 * recorded T, and only while it holds its lease. A successor is promoted only in a view without
 * the old firer, which the group installs only after the old firer's lease ended
 * (docs/design.md), so every fire of the old firer precedes the promotion. The successor is the
 * oldest surviving member; joiners rank last, so unless every member older than it is gone too
 * (below), it was in the old firer's view when T fired, recorded T before its promotion, and
 * starts above T whatever its wall clock says, under either missed policy. Claims are accepted
 * only from the coordinator of their epoch, so no other member can make members record ticks
 * (which would hold back the coordinator's).
 *
 * Failure cases:
 *  - lost ticks (at most once is the price of no lock store): the firer dies or is demoted
 *    between claim and fire; a claim is not acked by every member before the next tick is due.
 *    A member that stays in the view but cannot be reached on its stream, or a firer waiting on
 *    a hung member until its lease lapses, loses every tick meanwhile. Keep ackTimeoutMs well
 *    below the tick period, so a resend lands within the tick.
 *  - split brain: under `splitBrain: 'allow'` both sides of a partition have a coordinator and
 *    each waits only for its own view, so both fire. 'majority' leaves the minority without one.
 *  - the lease's assumption: a pause that performance.now() does not see, longer than the
 *    lease margin, lets the old firer fire after its successor's promotion (docs/design.md).
 *  - a successor that joined after T fired and outlived every member that recorded T learns T
 *    only from its join query and its takeover query; if neither answer came, it may fire T
 *    again under 'latest' (under 'skip' only if its wall clock lags the old firer's by more than
 *    the failover took).
 *  - fired means fn was called once; its effects are not transactional: a firer killed during
 *    fn leaves them half done, and no one calls fn for that tick again.
 *  - a member remembers at most 10,000 jobs it does not run and forgets the least recently
 *    claimed beyond that; it cannot fire those, it only answers queries about them.
 *
 * Why only rank 0 fires (there is no `masters` option, unlike routes): a member knows only its
 * own lease, so rank 1 cannot tell that rank 0 stopped firing until a view without rank 0 makes
 * it rank 0 itself; letting it fire earlier would need a second agreement.
 *
 * Invariants (per job, per member):
 *  - one serial loop: a tick's fn is awaited before the next tick is considered; at most one
 *    timer at a time (the wait for the next tick, clamped to 60 s; the claim's resend; or the
 *    wait for the takeover answers), all on the injected clock;
 *  - a tick fires on time if it came due while the loop waited as master (for its timer, for
 *    the answers after a promotion, or for the acks of a claim it gave up) and no later tick is
 *    due yet; every other due tick (passed before the promotion, during a long fn, during a
 *    blocked event loop) is missed: 'skip' drops them, 'latest' fires the newest once;
 *  - a claim waits at most until the next tick is due. Then its tick is lost, and the next tick
 *    is claimed on time, under either policy: 'latest' would pick the newest due tick anyway,
 *    and 'skip' never fires a tick after the next one came due;
 *  - on demotion the timer is cleared and the tick's signal aborts; on a graceful leave firing
 *    stops before the group hears of it (a running fn is awaited up to leaveTimeoutMs);
 *    after cancel() or stop() no timer is left;
 *  - fn errors and remote garbage are reported or dropped, never thrown.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import { Cron } from 'croner'
import { InvalidOptionError } from '../errors.js'
import { log } from '../log.js'
import { tokenString } from '../core/fencing.js'
import { maybeInternalsOf } from '../internal/member-internals.js'
import type { Member } from '../member.js'

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
/**
 * Views whose coordinator a member remembers, to judge claims by: a claim names the firer's
 * current epoch, one of the last few views its receivers installed.
 */
const MAX_VIEWS_REMEMBERED = 64
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
  /**
   * The claim's resend period: every ackTimeoutMs the firer sends its claim again to the members
   * that have not acked it (a frame on a breaking stream is lost). Below the tick period, a lost
   * frame costs a late tick rather than a lost one. Also how long a new master waits for the
   * others' lastFired. @default 250
   */
  readonly ackTimeoutMs?: number
}

export interface TickContext {
  readonly job: string
  /** The tick's scheduled time, Unix ms. */
  readonly tick: number
  /** When fn was called, Unix ms. */
  readonly firedAt: number
  /** The view epoch when the tick fired. */
  readonly epoch: number
  /** The firing grant's fencing token (core/fencing.ts: the epoch and this member's id). */
  readonly token: string
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
  /** A small summary for loggers and `JSON.stringify`; `active`: this member fires the ticks now (its term as coordinator). */
  toJSON: () => { name: string, lastFired: number | undefined, active: boolean, cancelled: boolean }
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

// ─── what the scheduler needs: a host and a clock ───────────────────────────

/** A view as the scheduler reads it: its epoch and its members in rank order. */
export interface SchedulerView {
  readonly id: { readonly epoch: number }
  /** In rank order: members[0] coordinates the view. */
  readonly members: ReadonlyArray<{ readonly id: string }>
}

/**
 * The part of a member the scheduler uses. `Member` is one; tests drive the scheduler with
 * fakes on an in-memory bus.
 */
export interface SchedulerHost {
  readonly id: string
  /** The installed view, or undefined while joining. */
  readonly view: SchedulerView | undefined
  /** The acting rank, computed against the lease at each read; undefined when it may not act. */
  readonly rank: number | undefined
  /** The installed view's epoch, 0 without one. */
  readonly epoch: number
  readonly options: { readonly leaveTimeoutMs: number }
  /** Calls `listener` after each change of this member's masters(N) status, serially. */
  watchMastership: (masters: number, listener: (change: { readonly isMaster: boolean, readonly reason: string }) => void) => () => void
  /** Calls `listener` with each view this member installs, before its mastership for it is reported. */
  onViewChange: (listener: (change: { readonly view: SchedulerView, readonly previous: SchedulerView | undefined }) => void) => () => void
  /** Runs `hook` at the start of a graceful leave, before the group hears of it. */
  onBeforeLeave: (hook: () => Promise<void>) => () => void
  /** Receives what other members send to `name`. */
  registerService: (name: string, handler: (from: string, data: unknown) => void) => () => void
  /** Sends to `to` on the direct stream: ordered, but lost when the stream breaks; never throws. */
  sendService: (to: string, name: string, data: unknown) => void
  /** Counts dropped remote input by reason. */
  countDrop?: (reason: string, from: string | undefined) => void
}

/** The scheduler's time: tick times are wall-clock times, so `now` is the wall clock. */
export interface SchedulerClock {
  /** Unix milliseconds. */
  now: () => number
  /** Calls `fn` once after `ms` milliseconds; returns a function that clears the timer. */
  setTimer: (fn: () => void, ms: number) => () => void
}

/** Date.now and setTimeout. */
export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const timer = setTimeout(fn, ms)
    return () => { clearTimeout(timer) }
  }
}

/** A member's scheduler hub, as its installer sees it. */
export interface SchedulerHub {
  /** Remote scheduler messages dropped (malformed, unwanted, or claims this member may not accept). */
  readonly dropped: number
  /** The highest tick of `job` this member knows was claimed. */
  lastFired: (job: string) => number | undefined
}

// ─── registration ────────────────────────────────────────────────────────────

/**
 * Installs the scheduler's hub on `host`: the handler that answers claims and queries and keeps
 * lastFired. Every member needs one, scheduled jobs or not, or a claim would wait for its ack
 * until the tick is lost; Member's constructor installs it. Idempotent: a second call returns
 * the hub installed first (with its clock).
 */
export function installScheduler (on: SchedulerHost | Member, clock: SchedulerClock = systemClock): SchedulerHub {
  const host = maybeInternalsOf(on)?.schedulerHost ?? on as SchedulerHost
  return hubs.get(host) ?? new Hub(host, clock)
}

/**
 * Schedules `fn` on `host`: each tick of `spec` fires once in the cluster, on the coordinator.
 * Register the same job (name, spec, options) on every member. Runs on the clock of the host's
 * hub (installScheduler), the system clock unless the hub was installed with another.
 */
export function schedule (on: SchedulerHost | Member, name: string, spec: ScheduleSpec, fn: (tick: TickContext) => void | Promise<void>, opts: ScheduleOptions = {}): ScheduledJob {
  const host = maybeInternalsOf(on)?.schedulerHost ?? on as SchedulerHost
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) throw new InvalidOptionError('name', `a string of 1–${MAX_NAME_LENGTH} characters`, name)
  const hub = hubs.get(host) ?? new Hub(host, systemClock)
  const series = toSeries(spec, hub.clock.now())
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
  if (hub.jobs.has(name)) throw new InvalidOptionError('name', 'a job name not already scheduled on this member', name)
  return new JobRunner(host, hub, name, series, fn, missed, ackTimeoutMs)
}

function toSeries (spec: ScheduleSpec, now: number): TickSeries {
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
  if (series.next(now) === undefined) throw new InvalidOptionError('spec.cron', 'a cron expression with a future run', cron)
  return series
}

// ─── the per-member hub: wire, lastFired, the epochs' coordinators ──────────

interface Collector {
  readonly job: string
  readonly kind: 'claimed' | 'state'
  /** The claimed tick an ack must name (claims only). */
  readonly tick: number | undefined
  accept: (from: string) => void
}

const hubs = new WeakMap<SchedulerHost, Hub>()

/** One per member, for the member's life: the service handler, lastFired, the views' coordinators. */
class Hub implements SchedulerHub {
  readonly jobs = new Map<string, JobRunner>()
  readonly collectors = new Set<Collector>()
  dropped = 0
  /** job → lastFired, least recently raised first (the eviction order). */
  private readonly fired = new Map<string, number>()
  /** epoch → the coordinator (members[0]) of each view this member installed, oldest first. */
  private readonly coordinators = new Map<number, string>()

  constructor (private readonly host: SchedulerHost, readonly clock: SchedulerClock) {
    hubs.set(host, this)
    host.registerService(SCHEDULER_SERVICE, (from, data) => { this.receive(from, data) })
    host.onViewChange(change => {
      this.installed(change.view)
      this.catchUp(change)
    })
    if (host.view !== undefined) this.installed(host.view)
  }

  lastFired (job: string): number | undefined { return this.fired.get(job) }

  /**
   * Raises the job's lastFired to `tick`. Past MAX_REMEMBERED_JOBS it forgets the job this member
   * does not run whose record was raised longest ago: it can never fire that one, only tell a
   * successor about it, and refusing the claim instead would hold the claim's tick until lost.
   */
  record (job: string, tick: number): void {
    const known = this.fired.get(job)
    if (known !== undefined && tick <= known) return
    this.fired.delete(job)
    this.fired.set(job, tick)
    if (this.fired.size <= MAX_REMEMBERED_JOBS) return
    for (const name of this.fired.keys()) {
      if (this.jobs.has(name)) continue
      this.fired.delete(name)
      return
    }
  }

  send (to: string, msg: Record<string, unknown>): void {
    this.host.sendService(to, SCHEDULER_SERVICE, msg)
  }

  remove (name: string): void {
    this.jobs.delete(name)
  }

  private installed (view: SchedulerView): void {
    const coordinator = view.members[0]?.id
    if (coordinator === undefined) return
    this.coordinators.delete(view.id.epoch)
    this.coordinators.set(view.id.epoch, coordinator)
    if (this.coordinators.size > MAX_VIEWS_REMEMBERED) this.coordinators.delete(this.coordinators.keys().next().value as number)
  }

  /** A member that joins a view asks its coordinator what was claimed before it was there. */
  private catchUp ({ view, previous }: { readonly view: SchedulerView, readonly previous: SchedulerView | undefined }): void {
    const self = this.host.id
    const coordinator = view.members[0]?.id
    if (coordinator === undefined || coordinator === self) return
    if (previous !== undefined && previous.members.some(m => m.id === self)) return
    for (const job of this.jobs.keys()) this.send(coordinator, { type: 'query', job })
  }

  private drop (reason: string, from: string): void {
    this.dropped++
    this.host.countDrop?.(reason, from)
  }

  /** Remote input: validated, dropped (and counted) when malformed or unwanted, never thrown. */
  private receive (from: string, data: unknown): void {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) { this.drop('scheduler-malformed', from); return }
    const msg = data as Record<string, unknown>
    const { type, job } = msg
    if (typeof job !== 'string' || job.length === 0 || job.length > MAX_NAME_LENGTH) { this.drop('scheduler-malformed', from); return }
    switch (type) {
      case 'claim': {
        const { tick, epoch } = msg
        if (!isTime(tick) || !isTime(epoch)) { this.drop('scheduler-malformed', from); return }
        // Only the coordinator of the claim's epoch, as this member installed it, may claim: not
        // a member that believes itself coordinator in a view this member never installed, nor
        // another member of the same epoch. An epoch not installed here yet is not acked: the
        // firer's resend gets through once it is.
        const coordinator = this.coordinators.get(epoch)
        if (coordinator === undefined) { this.drop('scheduler-claim-epoch-unknown', from); return }
        if (coordinator !== from) { this.drop('scheduler-claim-not-coordinator', from); return }
        this.record(job, tick)
        this.send(from, { type: 'claimed', job, tick })
        return
      }
      case 'query': {
        this.send(from, { type: 'state', job, lastFired: this.fired.get(job) ?? null })
        return
      }
      case 'claimed': {
        const { tick } = msg
        if (!isTime(tick)) { this.drop('scheduler-malformed', from); return }
        this.deliver(from, job, 'claimed', tick)
        return
      }
      case 'state': {
        const { lastFired } = msg
        if (lastFired !== null && lastFired !== undefined && !isTime(lastFired)) { this.drop('scheduler-malformed', from); return }
        // this member asks only about jobs it runs: anything else is unasked for
        if (!this.jobs.has(job)) { this.drop('scheduler-state-unasked', from); return }
        if (lastFired !== null && lastFired !== undefined) this.record(job, lastFired)
        this.deliver(from, job, 'state', undefined)
        return
      }
      default:
        this.drop('scheduler-malformed', from)
    }
  }

  private deliver (from: string, job: string, kind: Collector['kind'], tick: number | undefined): void {
    for (const c of [...this.collectors]) {
      if (c.job === job && c.kind === kind && c.tick === tick) c.accept(from)
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
  private readonly clock: SchedulerClock
  /** Wall-clock registration time: ticks before it did not exist for this member. */
  private readonly registeredAt: number
  /** Ticks up to here this member's loop has handled (fired, lost or skipped). */
  private handledThrough = Number.NEGATIVE_INFINITY
  private term: Term | undefined
  private loop: Promise<void> | undefined
  private removed = false
  private cancelling: Promise<void> | undefined
  private readonly unwatch: () => void
  private readonly unhook: () => void

  toJSON (): { name: string, lastFired: number | undefined, active: boolean, cancelled: boolean } {
    return { name: this.name, lastFired: this.lastFired, active: this.term !== undefined, cancelled: this.removed }
  }

  [inspect.custom] (): string {
    return `ScheduledJob ${inspect(this.toJSON())}`
  }

  constructor (
    private readonly host: SchedulerHost,
    private readonly hub: Hub,
    readonly name: string,
    private readonly series: TickSeries,
    private readonly fn: (tick: TickContext) => void | Promise<void>,
    private readonly missed: MissedPolicy,
    private readonly ackTimeoutMs: number
  ) {
    super()
    this.clock = hub.clock
    this.registeredAt = this.clock.now()
    this.setMaxListeners(0)
    this.on('error', () => {}) // events are 'event'; never let an 'error' emit throw
    hub.jobs.set(name, this)
    this.unwatch = host.watchMastership(1, c => { this.want(c.isMaster, c.reason) })
    // A graceful leave waits for a running fn (its signal has aborted), at most leaveTimeoutMs:
    // a hung fn must not keep the member from leaving.
    this.unhook = host.onBeforeLeave(async () => { this.want(false, 'leaving'); await this.idle(host.options.leaveTimeoutMs) })
    if (host.rank === 0) this.want(true, 'elected')
    // Registered late on a member of a view: learn what the coordinator already claimed.
    const coordinator = host.view?.members[0]?.id
    if (coordinator !== undefined && coordinator !== host.id) hub.send(coordinator, { type: 'query', job: name })
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
    let clearTimer = (): void => {}
    const timeout = new Promise<void>(resolve => { clearTimer = this.clock.setTimer(resolve, timeoutMs) })
    await Promise.race([this.idle(), timeout])
    clearTimer()
  }

  private want (master: boolean, reason: string): void {
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
    let waitingSince: number | undefined = this.clock.now()
    await this.query(signal)
    while (!signal.aborted) {
      const cursor = Math.max(this.lastFired ?? Number.NEGATIVE_INFINITY, this.handledThrough, this.registeredAt)
      const now = this.clock.now()
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
      // A lost tick leaves the loop a waiting master, not a busy one: the next tick, which came
      // due while the claim waited, is on time.
      if (plan.fire !== undefined && !await this.fire(plan.fire, signal)) waitingSince = now
    }
  }

  /** Claims `tick`, then calls fn. False when the tick is lost: claimed (maybe), never fired. */
  private async fire (tick: number, signal: AbortSignal): Promise<boolean> {
    this.handledThrough = Math.max(this.handledThrough, tick)
    if (this.host.rank !== 0) return false // lease lapsed; the demotion is on its way
    this.hub.record(this.name, tick)
    const held = await this.claim(tick, signal)
    // Checked against the lease at the call: a paused process whose lease lapsed does not fire.
    if (!held || signal.aborted || this.host.rank !== 0) return false
    const epoch = this.host.epoch
    this.report({ type: 'fired', job: this.name, tick, epoch })
    try {
      await this.fn({ job: this.name, tick, firedAt: this.clock.now(), epoch, token: tokenString({ epoch, holder: this.host.id }), signal })
    } catch (error) {
      this.report({ type: 'error', job: this.name, tick, error })
    }
    return true
  }

  /**
   * Holds the claim on `tick`: sends it to every other member of the view, then resends it to
   * those that have not acked every ackTimeoutMs, stamped with the current epoch, until every
   * member of the current view has acked (true). Members that leave the view are no longer
   * waited for; members that join it are sent the claim too. False — the tick is lost — when
   * this member stops being the acting coordinator (checked at each resend and view change),
   * `signal` aborts, or the next tick comes due first.
   */
  private async claim (tick: number, signal: AbortSignal): Promise<boolean> {
    const self = this.host.id
    const deadline = this.series.next(tick) ?? Number.POSITIVE_INFINITY
    const acked = new Set<string>()
    const waiting = new Set<string>()
    /** Follows `view`: forgets who left it, waits for who is new in it; returns the new ones. */
    const track = (view: SchedulerView | undefined): string[] => {
      const ids = new Set((view?.members ?? []).map(m => m.id))
      for (const id of waiting) if (!ids.has(id)) waiting.delete(id)
      for (const id of acked) if (!ids.has(id)) acked.delete(id)
      const added = [...ids].filter(id => id !== self && !acked.has(id) && !waiting.has(id))
      for (const id of added) waiting.add(id)
      return added
    }
    track(this.host.view)
    if (waiting.size === 0) return true
    if (signal.aborted) return false
    return await new Promise<boolean>(resolve => {
      let settled = false
      let clearTimer = (): void => {}
      const finish = (held: boolean): void => {
        if (settled) return
        settled = true
        clearTimer()
        signal.removeEventListener('abort', onAbort)
        unhookView()
        this.hub.collectors.delete(collector)
        resolve(held)
      }
      const onAbort = (): void => { finish(false) }
      const send = (to: Iterable<string>): void => {
        const msg = { type: 'claim', job: this.name, tick, epoch: this.host.epoch }
        for (const id of to) this.hub.send(id, msg)
      }
      const arm = (): void => {
        clearTimer = this.clock.setTimer(resend, Math.max(0, Math.min(this.ackTimeoutMs, deadline - this.clock.now())))
      }
      const resend = (): void => {
        if (this.clock.now() >= deadline || this.host.rank !== 0) { finish(false); return }
        send(waiting)
        arm()
      }
      const collector: Collector = {
        job: this.name,
        kind: 'claimed',
        tick,
        accept: from => {
          if (!waiting.delete(from)) return
          acked.add(from)
          if (waiting.size === 0) finish(true)
        }
      }
      const unhookView = this.host.onViewChange(({ view }) => {
        if (this.host.rank !== 0) { finish(false); return }
        const added = track(view)
        if (waiting.size === 0) finish(true)
        else send(added)
      })
      signal.addEventListener('abort', onAbort, { once: true })
      this.hub.collectors.add(collector)
      send(waiting)
      arm()
    })
  }

  /**
   * Asks every other member of the view for the job's lastFired (the hub records the answers)
   * and waits until each answered, left the view, ackTimeoutMs passed, or `signal` aborted.
   */
  private async query (signal: AbortSignal): Promise<void> {
    const self = this.host.id
    const waiting = new Set((this.host.view?.members ?? []).map(m => m.id).filter(id => id !== self))
    if (waiting.size === 0 || signal.aborted) return
    await new Promise<void>(resolve => {
      let settled = false
      const finish = (): void => {
        if (settled) return
        settled = true
        clearTimer()
        signal.removeEventListener('abort', finish)
        unhookView()
        this.hub.collectors.delete(collector)
        resolve()
      }
      const collector: Collector = { job: this.name, kind: 'state', tick: undefined, accept: from => { waiting.delete(from); if (waiting.size === 0) finish() } }
      const unhookView = this.host.onViewChange(({ view }) => {
        for (const id of waiting) if (!view.members.some(m => m.id === id)) waiting.delete(id)
        if (waiting.size === 0) finish()
      })
      const clearTimer = this.clock.setTimer(finish, this.ackTimeoutMs)
      signal.addEventListener('abort', finish, { once: true })
      this.hub.collectors.add(collector)
      for (const to of waiting) this.hub.send(to, { type: 'query', job: this.name })
    })
  }

  private async sleep (ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return
    await new Promise<void>(resolve => {
      const finish = (): void => { clearTimer(); signal.removeEventListener('abort', finish); resolve() }
      const clearTimer = this.clock.setTimer(finish, Math.max(0, ms))
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
