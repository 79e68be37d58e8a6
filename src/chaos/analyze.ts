/**
 * Reads a chaos run afterwards: every member process's JSON events (wall-clock `ts`, all on one
 * machine) and the faults the run injected, into the figures `conclave chaos` judges by.
 * Pure functions, so they are tested on made-up logs.
 *
 * Mastership intervals come from each process's own `master` lines. A process frozen by
 * SIGSTOP cannot act, so its interval ends when it was frozen; after SIGCONT it acts again only
 * if it still holds its lease, which it says within moments (RESUME_GRACE_MS) by a `master`
 * line; a killed process's interval ends at the kill.
 */
import type { MemberEvent } from '../testing/member-process.js'
import { summarize, type Summary } from '../bench/stats.js'

export type FaultType = 'kill' | 'hang' | 'partition'

export interface Fault {
  readonly type: FaultType
  /** When it began and when it was undone (restart, SIGCONT, heal), wall-clock ms. */
  readonly at: number
  readonly endAt: number
  readonly detail: string
}

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
}

/** How soon after SIGCONT a member that lost its lease says so. */
export const RESUME_GRACE_MS = 50

export interface Interval { readonly label: string, readonly from: number, readonly to: number }

export interface ChaosFigures {
  readonly durationMs: number
  readonly faults: Record<FaultType, number>
  /** Times two processes acted as master at once, with how long. */
  readonly dualMasters: readonly Interval[]
  /** Time with no master, within each fault's window (until the next fault), by fault type. */
  readonly leaderlessMs: Record<FaultType, Summary>
  /** From a fault's end (heal, resume, restart) to all live members agreeing on one view. */
  readonly reconvergeMs: Record<FaultType, Summary>
  /** Faults after whose end the members had not agreed before the next fault or the end. */
  readonly notReconverged: number
  readonly crashes: number
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

/** Stretches where two or more intervals overlap. */
export function overlaps (intervals: readonly Interval[]): Interval[] {
  const edges = intervals.flatMap(i => [{ t: i.from, d: 1, label: i.label }, { t: i.to, d: -1, label: i.label }])
  edges.sort((a, b) => a.t - b.t || a.d - b.d)
  const out: Interval[] = []
  const active = new Map<string, number>()
  let since: number | undefined
  for (const e of edges) {
    active.set(e.label, (active.get(e.label) ?? 0) + e.d)
    if ((active.get(e.label) ?? 0) <= 0) active.delete(e.label)
    if (active.size >= 2 && since === undefined) since = e.t
    else if (active.size < 2 && since !== undefined) {
      if (e.t > since) out.push({ label: 'overlap', from: since, to: e.t })
      since = undefined
    }
  }
  return out
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
  const live = (t: number): ProcessLog[] => logs.filter(l => l.startedAt <= t && (l.endedAt === undefined || l.endedAt > t))
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

export function analyze (logs: readonly ProcessLog[], faults: readonly Fault[], start: number, end: number): ChaosFigures {
  const intervals = masterIntervals(logs, end)
  const types: FaultType[] = ['kill', 'hang', 'partition']
  const leaderless: Record<FaultType, number[]> = { kill: [], hang: [], partition: [] }
  const reconverge: Record<FaultType, number[]> = { kill: [], hang: [], partition: [] }
  let notReconverged = 0
  const sorted = [...faults].sort((a, b) => a.at - b.at)
  sorted.forEach((f, i) => {
    const next = sorted[i + 1]?.at ?? end
    leaderless[f.type].push(uncovered(intervals, f.at, next))
    const agreedAt = agreementAfter(logs, f.endAt, next)
    if (agreedAt === undefined) notReconverged++
    else reconverge[f.type].push(agreedAt - f.endAt)
  })
  const count = (t: FaultType): number => faults.filter(f => f.type === t).length
  return {
    durationMs: end - start,
    faults: { kill: count('kill'), hang: count('hang'), partition: count('partition') },
    dualMasters: overlaps(intervals),
    leaderlessMs: Object.fromEntries(types.map(t => [t, summarize(leaderless[t])])) as Record<FaultType, Summary>,
    reconvergeMs: Object.fromEntries(types.map(t => [t, summarize(reconverge[t])])) as Record<FaultType, Summary>,
    notReconverged,
    crashes: logs.filter(l => l.crashed).length
  }
}
