/**
 * cold-start: a member whose seeds refuse the connection (nothing listens there) founds its
 * own group: the time from its spawn to its "I am coordinator" line. This is what a lone
 * first server of a cluster costs at boot, libp2p loading included.
 */
import { summarize } from '../stats.js'
import { checkAborted } from '../context.js'
import { int, type Scenario } from '../scenario.js'
import { freePort } from '../../testing/member-process.js'

export const coldStart: Scenario = {
  name: 'cold-start',
  summary: 'spawn → a lone member is coordinator (its seeds refuse the connection)',
  flags: {
    rounds: { default: '20', describe: 'starts to time', parse: int(1, 1000) }
  },
  smoke: { rounds: '1' },
  async run (ctx, flags) {
    const rounds = flags.rounds as number
    const fromSpawnMs: number[] = []
    const fromReadyMs: number[] = []
    ctx.report.settings = { rounds }
    ctx.report.samples = { fromSpawnMs, fromReadyMs }
    ctx.progress.start('cold-start', rounds)
    for (let r = 1; r <= rounds; r++) {
      checkAborted(ctx)
      const refused = await freePort()
      const p = ctx.spawn({ cluster: ctx.cluster(`cold${r}`), seeds: [`127.0.0.1:${refused}`] })
      const claim = await p.waitFor(e => e.type === 'coordinator' && e.isCoordinator === true, 20_000)
      fromSpawnMs.push(claim.ts - p.spawnedAt)
      fromReadyMs.push(claim.ts - (p.ready()?.ts as number))
      await p.stop(3000)
      ctx.progress.tick(`${fromSpawnMs.at(-1)?.toFixed(0)} ms`)
      await ctx.sleep(200)
    }
    const spawn = summarize(fromSpawnMs)
    const ready = summarize(fromReadyMs)
    ctx.report.figures = [
      { figure: 'cold start: spawn → lone coordinator', unit: 'ms', median: spawn.median, p99: spawn.p99, n: spawn.n, target: '≤ 500 ms', met: spawn.n > 0 && spawn.median <= 500 },
      { figure: 'cold start: ready → lone coordinator', unit: 'ms', median: ready.median, p99: ready.p99, n: ready.n }
    ]
  }
}
