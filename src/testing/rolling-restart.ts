/**
 * A rolling restart of member processes, as an orchestrator does one (a StatefulSet's rolling
 * update, a deploy script): one member at a time, stopped gracefully (SIGTERM: it leaves, and
 * a master hands over at once), replaced by a new process that joins, and the next one only
 * once everyone agrees on the full view again (the readiness gate).
 *
 * Order `master-last`, the documented way: the standbys first, the master last. A restarted
 * member rejoins as the youngest, so the master keeps the first place until its own turn, and
 * then the oldest standby (restarted first, long since ready) takes over: one move. Order
 * `master-first` restarts the master first, then the next master, and so on (for comparison).
 */
import { agreed, waitUntil, type MemberProcess } from './member-process.js'
import { masterIntervals, timelineFigures, type MasterInterval, type TimelineFigures } from './master-timeline.js'

export interface RollingRestart {
  /** The processes after the restart, in the order of the view. */
  readonly group: MemberProcess[]
  /** Every process involved: the old ones and their replacements. */
  readonly all: MemberProcess[]
  /** Wall-clock ms: the first stop, and when the last replacement was agreed on. */
  readonly since: number
  readonly until: number
}

export async function rollingRestart (
  group: readonly MemberProcess[],
  replace: (old: MemberProcess, seeds: string[]) => MemberProcess,
  opts: { readonly order: 'master-last' | 'master-first', readonly agreeTimeoutMs?: number, readonly aborted?: () => boolean }
): Promise<RollingRestart> {
  const timeoutMs = opts.agreeTimeoutMs ?? 20_000
  const n = group.length
  const byRank = (procs: readonly MemberProcess[]): MemberProcess[] => {
    const ids = procs[0]?.lastView()?.members.map(m => m.id) ?? []
    return [...procs].sort((a, b) => ids.indexOf(a.ready()?.id as string) - ids.indexOf(b.ready()?.id as string))
  }
  let current = byRank(group)
  const all = [...group]
  const since = Date.now()
  // Which member goes next is decided each turn from the view then: under master-first the
  // next master is the one that took over.
  const remaining = new Set(current)
  while (remaining.size > 0) {
    if (opts.aborted?.() === true) break
    const ranked = byRank(current).filter(p => remaining.has(p))
    const victim = (opts.order === 'master-first' ? ranked[0] : ranked[ranked.length - 1]) as MemberProcess
    remaining.delete(victim)
    const survivors = current.filter(p => p !== victim)
    await victim.stop(10_000)
    await waitUntil(() => agreed(survivors, n - 1) || opts.aborted?.() === true, timeoutMs, `${n - 1} members to agree after ${victim.name} left`)
    const fresh = replace(victim, survivors.slice(0, 3).map(p => p.address as string))
    all.push(fresh)
    await fresh.waitReady(timeoutMs)
    current = [...survivors, fresh]
    await waitUntil(() => agreed(current, n) || opts.aborted?.() === true, timeoutMs, `${n} members to agree with ${fresh.name}'s replacement`)
  }
  return { group: byRank(current), all, since, until: Date.now() }
}

/** Who held mastership during `restart`, and its moves, overlap and longest gap. */
export function restartTimeline (restart: RollingRestart): { readonly intervals: MasterInterval[], readonly figures: TimelineFigures } {
  const intervals = masterIntervals(restart.all, restart.since, restart.until)
  return { intervals, figures: timelineFigures(intervals, restart.since, restart.until) }
}
