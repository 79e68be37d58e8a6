/**
 * Reads a chaos run afterwards: every member process's JSON events (wall-clock `ts`, all on one
 * machine) and the faults the run injected, into the figures `conclave chaos` judges by.
 * Pure functions, so they are tested on made-up logs.
 *
 * A process whose clock the run shifted (clock-restart) stamps its events on its own clock;
 * every figure here is on the run's clock (`onRunClock`), so its events line up with everyone
 * else's, while its epochs stay what it said.
 *
 * Mastership intervals come from each process's own `master` lines. A process frozen by
 * SIGSTOP cannot act, so its interval ends when it was frozen; after SIGCONT it acts again only
 * if it still holds its lease, which it says within moments (RESUME_GRACE_MS) by a `master`
 * line; a killed process's interval ends at the kill.
 */
import type { MemberEvent } from '../testing/member-process.js'
import { summarize, type Summary } from '../bench/stats.js'
import { FAULT_TYPES, RESTARTS, type Fault, type FaultType } from './faults.js'

export type { Fault, FaultType } from './faults.js'

export interface ProcessLog {
  readonly label: string
  readonly events: readonly MemberEvent[]
  readonly startedAt: number
  /** When the run killed it (SIGKILL, or SIGTERM at the end), if it did. */
  readonly endedAt: number | undefined
  /** SIGSTOP → SIGCONT periods. */
  readonly frozen: ReadonlyArray<readonly [number, number]>
  /** It exited without being told to, or printed an unhandled error. */
  readonly crashed: boolean
  /** How far its wall clock was from the run's, ms (negative: behind). Default 0. */
  readonly clockOffsetMs?: number
}

/** How soon after SIGCONT a member that lost its lease says so. */
export const RESUME_GRACE_MS = 50

export interface Interval { readonly label: string, readonly from: number, readonly to: number }

export interface ChaosFigures {
  readonly durationMs: number
  readonly faults: Record<FaultType, number>
  /** Times two processes acted as master at once, with how long. */
  readonly dualMasters: readonly Overlap[]
  /** Time with no master, within each fault's window (until the next fault), by fault type. */
  readonly leaderlessMs: Record<FaultType, Summary>
  /** From a fault's end (heal, resume, restart, load gone) to all live members agreeing on one view. */
  readonly reconvergeMs: Record<FaultType, Summary>
  /** Distinct views installed across the members from a fault's start to its end, by type. */
  readonly viewsDuringFault: Record<FaultType, Summary>
  /** The same from a fault's start until the members agreed again (or the next fault). */
  readonly viewsUntilAgreed: Record<FaultType, Summary>
  /** Faults after whose end the members had not agreed before the next fault or the end. */
  readonly notReconverged: number
  readonly crashes: number
  /** Mastership grants in wall-clock order whose fencing epoch was not above every earlier one. */
  readonly fencing: { readonly grants: number, readonly violations: readonly FencingViolation[] }
  /** Each cut-off-start: how long the member started cut off acted as master while cut off. */
  readonly cutOffStarts: ReadonlyArray<{ readonly detail: string, readonly label: string, readonly masterMs: number }>
  /** The figures of each fault, in order. */
  readonly perFault: readonly FaultFigures[]
}

export interface FaultFigures {
  readonly type: FaultType
  readonly detail: string
  readonly at: number
  readonly endAt: number
  readonly leaderlessMs: number
  /** Undefined: not agreed before the next fault. */
  readonly reconvergeMs: number | undefined
  readonly views: number
  readonly viewsUntilAgreed: number
}

/** A mastership grant: a `master` line with isMaster true (masters = 1). */
export interface Grant { readonly label: string, readonly at: number, readonly epoch: number }

export interface FencingViolation {
  readonly grant: Grant
  /** The earlier grant with the highest epoch. */
  readonly highest: Grant
  /** The restart that caused it: the one that started the granting process, else the latest before the grant. */
  readonly cause: string | undefined
}

/** The logs with every event's `ts` moved onto the run's clock. */
export function onRunClock (logs: readonly ProcessLog[]): ProcessLog[] {
  return logs.map(l => {
    const offset = l.clockOffsetMs ?? 0
    return offset === 0 ? l : { ...l, events: l.events.map(e => ({ ...e, ts: e.ts - offset })) }
  })
}

/** Each process's mastership intervals (masters = 1: the `master` lines of `conclave member`). */
export function masterIntervals (logs: readonly ProcessLog[], end: number): Interval[] {
  const out: Interval[] = []
  for (const log of logs) {
    const stop = Math.min(end, log.endedAt ?? end)
    let open: number | undefined
    const close = (to: number): void => {
      if (open !== undefined && to > open) out.push(...clipFrozen(log, open, to))
      open = undefined
    }
    for (const e of log.events) {
      if (e.type !== 'master' || e.ts > stop) continue
      if (e.isMaster === true && open === undefined) open = e.ts
      else if (e.isMaster !== true) close(e.ts)
    }
    close(stop)
  }
  return out.sort((a, b) => a.from - b.from)
}

/** An interval without the frozen periods of its process (and the grace after each). */
function clipFrozen (log: ProcessLog, from: number, to: number): Interval[] {
  const pieces: Interval[] = []
  let start = from
  for (const [f0, f1] of log.frozen) {
    if (f1 <= start || f0 >= to) continue
    if (f0 > start) pieces.push({ label: log.label, from: start, to: f0 })
    start = Math.max(start, f1 + RESUME_GRACE_MS)
  }
  if (to > start) pieces.push({ label: log.label, from: start, to })
  return pieces
}

/** A stretch where two or more processes acted as master: `label` is 'overlap', `who` names them. */
export interface Overlap extends Interval { readonly who: readonly string[] }

/** Stretches where two or more intervals overlap, with the processes whose intervals they are. */
export function overlaps (intervals: readonly Interval[]): Overlap[] {
  const edges = intervals.flatMap(i => [{ t: i.from, d: 1, label: i.label }, { t: i.to, d: -1, label: i.label }])
  edges.sort((a, b) => a.t - b.t || a.d - b.d)
  const out: Overlap[] = []
  const active = new Map<string, number>()
  let since: number | undefined
  let who = new Set<string>()
  for (const e of edges) {
    active.set(e.label, (active.get(e.label) ?? 0) + e.d)
    if ((active.get(e.label) ?? 0) <= 0) active.delete(e.label)
    if (active.size >= 2) {
      if (since === undefined) { since = e.t; who = new Set() }
      for (const label of active.keys()) who.add(label)
    } else if (since !== undefined) {
      if (e.t > since) out.push({ label: 'overlap', from: since, to: e.t, who: [...who].sort() })
      since = undefined
    }
  }
  return out
}

/**
 * The `master` and `view` events of the processes in `labels` between `from` and `to`, one
 * line each in time order, times in seconds after `t0`: what a failed verdict shows so that
 * a run that broke an invariant can be read without its JSON file.
 */
export function timeline (logs: readonly ProcessLog[], labels: readonly string[], from: number, to: number, t0: number): string[] {
  const rows: Array<{ ts: number, text: string }> = []
  const ids = new Map(logs.map(l => [l.events.find(e => e.type === 'ready')?.id as string | undefined, l.label]))
  for (const l of onRunClock(logs)) {
    if (!labels.includes(l.label)) continue
    for (const e of l.events) {
      if (e.ts < from || e.ts > to) continue
      if (e.type === 'master') rows.push({ ts: e.ts, text: `${l.label} master ${String(e.isMaster)} epoch ${String(e.epoch)}` })
      if (e.type === 'view') {
        const members = (e.members as Array<{ id: string, name?: string }>).map(m => m.name ?? ids.get(m.id) ?? m.id.slice(-6))
        rows.push({ ts: e.ts, text: `${l.label} view ${String(e.epoch)} [${members.join(',')}]` })
      }
    }
    for (const [f0, f1] of l.frozen) {
      if (f0 >= from && f0 <= to) rows.push({ ts: f0, text: `${l.label} frozen` })
      if (f1 >= from && f1 <= to) rows.push({ ts: f1, text: `${l.label} resumed` })
    }
    if (l.endedAt !== undefined && l.endedAt >= from && l.endedAt <= to) rows.push({ ts: l.endedAt, text: `${l.label} ended` })
  }
  return rows.sort((a, b) => a.ts - b.ts).map(r => `${((r.ts - t0) / 1000).toFixed(3).padStart(9)} s  ${r.text}`)
}

/** Time within [from, to) covered by no interval. */
export function uncovered (intervals: readonly Interval[], from: number, to: number): number {
  let covered = 0
  let cursor = from
  for (const i of [...intervals].sort((a, b) => a.from - b.from)) {
    const a = Math.max(i.from, cursor)
    const b = Math.min(i.to, to)
    if (b > a) { covered += b - a; cursor = b }
    cursor = Math.max(cursor, Math.min(i.to, to))
  }
  return Math.max(0, to - from - covered)
}

/**
 * The first time at or after `from` (and before `until`) when every live process's latest
 * view is the same view holding exactly the live processes; undefined if none.
 */
export function agreementAfter (logs: readonly ProcessLog[], from: number, until: number): number | undefined {
  // A process retired at t (the run's end) still counts at t: it held its view until then.
  const live = (t: number): ProcessLog[] => logs.filter(l => l.startedAt <= t && (l.endedAt === undefined || l.endedAt >= t))
  const views = logs.flatMap(l => l.events.filter(e => e.type === 'view' && e.ts <= until).map(e => ({ log: l, e })))
  views.sort((a, b) => a.e.ts - b.e.ts)
  const latest = new Map<ProcessLog, MemberEvent>()
  const agreed = (t: number): boolean => {
    const procs = live(t)
    const vs = procs.map(p => latest.get(p))
    const first = vs[0]
    if (first === undefined) return false
    const key = (v: MemberEvent | undefined): string => v === undefined ? '' : `${String(v.epoch)}:${(v.members as Array<{ id: string }>).map(m => m.id).join(',')}`
    const self = new Set(procs.map(p => latestSelf(p)))
    const members = (first.members as Array<{ id: string }>).map(m => m.id)
    return vs.every(v => key(v) === key(first)) && members.length === procs.length && members.every(id => self.has(id))
  }
  for (const { log, e } of views) {
    latest.set(log, e)
    if (e.ts >= from && agreed(e.ts)) return e.ts
  }
  // Agreement reached before `from` and never disturbed counts as at once.
  return agreed(from) ? from : undefined
}

function latestSelf (log: ProcessLog): string | undefined {
  return log.events.find(e => e.type === 'ready')?.id as string | undefined
}

/** Every grant, in wall-clock order (within a process, in the order it printed them). */
export function grants (logs: readonly ProcessLog[]): Grant[] {
  const out = logs.flatMap(l => l.events
    .filter(e => e.type === 'master' && e.isMaster === true && typeof e.epoch === 'number' && e.ts <= (l.endedAt ?? Infinity))
    .map(e => ({ label: l.label, at: e.ts, epoch: e.epoch as number })))
  return out.sort((a, b) => a.at - b.at)
}

/**
 * Grants that break fencing: an epoch below an earlier grant's, or equal to one held by another
 * process (a process granted again in the same view, its lease renewed, keeps its token).
 */
export function fencingViolations (ordered: readonly Grant[], faults: readonly Fault[]): FencingViolation[] {
  const restarts = faults.filter(f => RESTARTS.includes(f.type)).sort((a, b) => a.at - b.at)
  const out: FencingViolation[] = []
  let highest: Grant | undefined
  for (const g of ordered) {
    if (highest !== undefined && (g.epoch < highest.epoch || (g.epoch === highest.epoch && g.label !== highest.label))) {
      const cause = restarts.find(f => f.process === g.label) ?? restarts.filter(f => f.at <= g.at).pop()
      out.push({ grant: g, highest, cause: cause?.detail })
    }
    if (highest === undefined || g.epoch > highest.epoch) highest = g
  }
  return out
}

/** Distinct views (epoch and members) installed by any process within [from, to]. */
export function viewsBetween (logs: readonly ProcessLog[], from: number, to: number): number {
  const keys = new Set<string>()
  for (const l of logs) {
    for (const e of l.events) {
      if (e.type !== 'view' || e.ts < from || e.ts > to) continue
      keys.add(`${String(e.epoch)}:${(e.members as Array<{ id: string }>).map(m => m.id).join(',')}`)
    }
  }
  return keys.size
}

export function analyze (rawLogs: readonly ProcessLog[], faults: readonly Fault[], start: number, end: number): ChaosFigures {
  const logs = onRunClock(rawLogs)
  const intervals = masterIntervals(logs, end)
  const byType = <T>(make: () => T): Record<FaultType, T> => Object.fromEntries(FAULT_TYPES.map(t => [t, make()])) as Record<FaultType, T>
  const leaderless = byType<number[]>(() => [])
  const reconverge = byType<number[]>(() => [])
  const views = byType<number[]>(() => [])
  const viewsToAgreement = byType<number[]>(() => [])
  const perFault: FaultFigures[] = []
  let notReconverged = 0
  const sorted = [...faults].sort((a, b) => a.at - b.at)
  sorted.forEach((f, i) => {
    const next = sorted[i + 1]?.at ?? end
    const gap = uncovered(intervals, f.at, next)
    leaderless[f.type].push(gap)
    const agreedAt = agreementAfter(logs, f.endAt, next)
    if (agreedAt === undefined) notReconverged++
    else reconverge[f.type].push(agreedAt - f.endAt)
    const installed = viewsBetween(logs, f.at, f.endAt)
    const untilAgreed = viewsBetween(logs, f.at, agreedAt ?? next)
    views[f.type].push(installed)
    viewsToAgreement[f.type].push(untilAgreed)
    perFault.push({
      type: f.type,
      detail: f.detail,
      at: f.at,
      endAt: f.endAt,
      leaderlessMs: gap,
      reconvergeMs: agreedAt === undefined ? undefined : agreedAt - f.endAt,
      views: installed,
      viewsUntilAgreed: untilAgreed
    })
  })
  const ordered = grants(logs)
  const cutOffStarts = sorted.filter(f => f.type === 'cut-off-start' && f.process !== undefined).map(f => ({
    detail: f.detail,
    label: f.process as string,
    masterMs: intervals.filter(i => i.label === f.process)
      .reduce((ms, i) => ms + Math.max(0, Math.min(i.to, f.endAt) - Math.max(i.from, f.at)), 0)
  }))
  const summaries = (samples: Record<FaultType, number[]>): Record<FaultType, Summary> =>
    Object.fromEntries(FAULT_TYPES.map(t => [t, summarize(samples[t])])) as Record<FaultType, Summary>
  return {
    durationMs: end - start,
    faults: Object.fromEntries(FAULT_TYPES.map(t => [t, faults.filter(f => f.type === t).length])) as Record<FaultType, number>,
    dualMasters: overlaps(intervals),
    leaderlessMs: summaries(leaderless),
    reconvergeMs: summaries(reconverge),
    viewsDuringFault: summaries(views),
    viewsUntilAgreed: summaries(viewsToAgreement),
    notReconverged,
    crashes: logs.filter(l => l.crashed).length,
    fencing: { grants: ordered.length, violations: fencingViolations(ordered, faults) },
    cutOffStarts,
    perFault
  }
}
