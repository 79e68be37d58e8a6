/**
 * join: a cluster of N-1 members; each round a new member is spawned and timed until everyone
 * holds the same view with it (from its spawn, and from its "ready" line), then it leaves
 * gracefully before the next round.
 */
import { summarize } from '../stats.js'
import { checkAborted } from '../context.js'
import { grow, type JoinSample } from '../cluster.js'
import { int, type Scenario } from '../scenario.js'
import type { MemberProcess } from '../../testing/member-process.js'
import { agreed, waitUntil } from '../../testing/member-process.js'

export const join: Scenario = {
  name: 'join',
  summary: 'a new member\'s spawn / ready → every member agrees on the view with it',
  flags: {
    rounds: { default: '20', describe: 'joins to time', parse: int(1, 1000) },
    members: { default: '3', describe: 'cluster size with the joiner', parse: int(2, 20) }
  },
  smoke: { rounds: '1', members: '2' },
  async run (ctx, flags) {
    const rounds = flags.rounds as number
    const size = flags.members as number
    const samples: JoinSample[] = []
    ctx.report.settings = { rounds, members: size }
    ctx.report.samples = { joins: samples }
    const cluster = ctx.cluster('join')
    const group: MemberProcess[] = []
    await grow(ctx, cluster, group, size - 1)
    ctx.progress.start('join', rounds)
    for (let r = 1; r <= rounds; r++) {
      await ctx.sleep(200 + Math.random() * 300)
      const [sample] = await grow(ctx, cluster, group, size)
      if (sample !== undefined) samples.push(sample)
      ctx.progress.tick(`${sample?.fromReadyMs.toFixed(0) ?? '-'} ms`)
      const joiner = group.pop() as MemberProcess
      await joiner.stop(3000)
      await waitUntil(() => agreed(group, group.length) || ctx.aborted, 10_000, 'the joiner to leave')
      checkAborted(ctx)
    }
    const ready = summarize(samples.map(s => s.fromReadyMs))
    const spawn = summarize(samples.map(s => s.fromSpawnMs))
    ctx.report.figures = [
      { figure: `join (${size} members): ready → all agree`, unit: 'ms', median: ready.median, p99: ready.p99, n: ready.n, target: '≤ 250 ms', met: ready.n > 0 && ready.median <= 250 },
      { figure: `join (${size} members): spawn → all agree`, unit: 'ms', median: spawn.median, p99: spawn.p99, n: spawn.n }
    ]
  }
}
