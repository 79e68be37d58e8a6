/** Growing a cluster of member processes one at a time, and reading agreement from their lines. */
import { agreed, waitUntil, type MemberProcess } from '../testing/member-process.js'
import type { SpawnOptions } from '../testing/member-process.js'
import { checkAborted, type BenchContext } from './context.js'

export interface JoinSample {
  /** From the joiner's spawn to every member holding the same view with it. */
  readonly fromSpawnMs: number
  /** From the joiner's "ready" line (listening, libp2p loaded) to the same. */
  readonly fromReadyMs: number
}

/** The ts at which `procs` came to agree: the latest of their current views' timestamps. */
export function agreedAt (procs: readonly MemberProcess[]): number {
  return Math.max(...procs.map(p => p.lastView()?.ts ?? Number.NaN))
}

/**
 * Spawns members one at a time (start-up is CPU-bound: trap 12) until `group` has `size`
 * agreeing members; every joiner after the first is a join sample.
 */
export async function grow (ctx: BenchContext, cluster: string, group: MemberProcess[], size: number, extra: Partial<SpawnOptions> = {}, agreeTimeoutMs = 15_000): Promise<JoinSample[]> {
  const joins: JoinSample[] = []
  while (group.length < size) {
    checkAborted(ctx)
    const p = ctx.spawn({ cluster, seeds: group.slice(0, 3).map(q => q.address as string), ...extra })
    await p.waitReady(30_000)
    group.push(p)
    await waitUntil(() => agreed(group, group.length) || ctx.aborted, agreeTimeoutMs, `${group.length} members to agree`)
    checkAborted(ctx)
    if (group.length > 1) joins.push({ fromSpawnMs: agreedAt(group) - p.spawnedAt, fromReadyMs: agreedAt(group) - (p.ready()?.ts as number) })
  }
  return joins
}
