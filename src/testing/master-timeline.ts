/**
 * Who was master when, from member processes' own `master` lines (`conclave member --json`,
 * wall-clock `ts` on one machine): the intervals each process held mastership, and what a
 * rolling restart is judged by — how often mastership moved, how long two processes held it at
 * once (overlap), and the longest time nobody held it (gap).
 */
import type { MemberProcess } from './member-process.js'

export interface MasterInterval { readonly name: string, readonly from: number, readonly to: number }

/**
 * Every interval in which a process held mastership (per its `master` lines), clipped to
 * [since, until]. An interval still open ends at `until`, or at the process's last line if it
 * exited (its work ended with it).
 */
export function masterIntervals (procs: readonly MemberProcess[], since: number, until: number): MasterInterval[] {
  const out: MasterInterval[] = []
  for (const p of procs) {
    let from: number | undefined
    for (const e of p.events) {
      if (e.type !== 'master') continue
      if (e.isMaster === true && from === undefined) from = e.ts
      else if (e.isMaster === false && from !== undefined) { push(out, p.name, from, e.ts, since, until); from = undefined }
    }
    if (from !== undefined) push(out, p.name, from, p.running ? until : (p.events.at(-1)?.ts ?? until), since, until)
  }
  return out.sort((a, b) => a.from - b.from)
}

function push (out: MasterInterval[], name: string, from: number, to: number, since: number, until: number): void {
  const f = Math.max(from, since)
  const t = Math.min(to, until)
  if (t >= f) out.push({ name, from: f, to: t })
}

export interface TimelineFigures {
  /** Intervals that began after `since`: each is mastership moving to (or coming back to) a process. */
  readonly moves: number
  /** Milliseconds during which two or more processes held mastership. */
  readonly overlapMs: number
  /** The longest stretch, after the first master, with no master at all. */
  readonly longestGapMs: number
}

export function timelineFigures (intervals: readonly MasterInterval[], since: number, until: number): TimelineFigures {
  const edges = intervals.flatMap(i => [{ at: i.from, d: 1 }, { at: i.to, d: -1 }]).sort((a, b) => a.at - b.at || a.d - b.d)
  let holders = 0
  let last = since
  let overlapMs = 0
  let longestGapMs = 0
  let gapFrom: number | undefined
  let seenMaster = false
  for (const e of edges) {
    if (holders >= 2) overlapMs += e.at - last
    holders += e.d
    if (holders === 0 && e.d < 0) gapFrom = e.at
    if (holders > 0 && gapFrom !== undefined) { longestGapMs = Math.max(longestGapMs, e.at - gapFrom); gapFrom = undefined }
    if (holders > 0) seenMaster = true
    last = e.at
  }
  if (seenMaster && gapFrom !== undefined) longestGapMs = Math.max(longestGapMs, until - gapFrom)
  return { moves: intervals.filter(i => i.from > since).length, overlapMs, longestGapMs }
}
