/**
 * rolling: rolling restarts of N `conclave member` processes (testing/rolling-restart.ts), one
 * member at a time, each stopped with SIGTERM (graceful leave: a master hands over at once) and
 * replaced once everyone agrees again. Per restart, from the members' own `master` lines
 * (testing/master-timeline.ts): how often mastership moved, how long two processes held it at
 * once, and the longest time nobody held it.
 */
import { agreed, waitUntil, type MemberProcess } from '../../testing/member-process.js'
import { rollingRestart } from '../../testing/rolling-restart.js'
import { masterIntervals, timelineFigures, type TimelineFigures } from '../../testing/master-timeline.js'
import { medianP99, summarize } from '../stats.js'
import { checkAborted } from '../context.js'
import { grow } from '../cluster.js'
import { int, listOf, type Scenario } from '../scenario.js'

const ORDERS = ['master-last', 'master-first'] as const
type Order = typeof ORDERS[number]

export const rolling: Scenario = {
  name: 'rolling',
  summary: 'rolling restarts (standbys first, master last): master moves, overlap, longest gap without a master',
  flags: {
    members: { default: '5', describe: 'cluster size', parse: int(2, 20) },
    rounds: { default: '5', describe: 'rolling restarts per order', parse: int(1, 100) },
    orders: { default: 'master-last', describe: `restart orders: ${ORDERS.join(', ')}`, parse: listOf(ORDERS) }
  },
  smoke: { members: '2', rounds: '1', orders: 'master-last' },
  async run (ctx, flags) {
    const size = flags.members as number
    const rounds = flags.rounds as number
    const orders = flags.orders as Order[]
    const cluster = ctx.cluster('rolling')
    const samples: Array<TimelineFigures & { order: Order, round: number, ms: number }> = []
    ctx.report.settings = { members: size, rounds, orders }
    ctx.report.samples = { restarts: samples }
    ctx.progress.start('rolling', rounds * orders.length)
    let group: MemberProcess[] = []
    await grow(ctx, cluster, group, size)
    for (const order of orders) {
      for (let r = 1; r <= rounds; r++) {
        checkAborted(ctx)
        // Each member has been master-capable for a while: the leases are settled.
        await waitUntil(() => group.some(p => p.events.some(e => e.type === 'master' && e.isMaster === true)) || ctx.aborted, 10_000, 'a master')
        const result = await rollingRestart(group, (_old, seeds) => ctx.spawn({ cluster, seeds }), { order, aborted: () => ctx.aborted })
        checkAborted(ctx)
        group = result.group
        await waitUntil(() => agreed(group, size) || ctx.aborted, 10_000, 'the restarted cluster to agree')
        const f = timelineFigures(masterIntervals(result.all, result.since, result.until), result.since, result.until)
        samples.push({ order, round: r, ms: result.until - result.since, ...f })
        ctx.progress.tick(`${order}: ${f.moves} moves, gap ${f.longestGapMs} ms`)
      }
    }
    ctx.report.figures = orders.flatMap(order => {
      const s = samples.filter(x => x.order === order)
      const moves = summarize(s.map(x => x.moves))
      const gap = summarize(s.map(x => x.longestGapMs))
      const overlap = Math.max(...s.map(x => x.overlapMs))
      const last = order === 'master-last'
      return [
        { figure: `rolling restart of ${size} (${order}): master moves per restart (max)`, unit: '', value: moves.max, n: moves.n, ...(last ? { target: '1', met: moves.max <= 1 } : {}) },
        { figure: `rolling restart of ${size} (${order}): overlap, two masters at once (max)`, unit: 'ms', value: overlap, target: '0', met: overlap === 0 },
        { figure: `rolling restart of ${size} (${order}): longest gap without a master`, unit: 'ms', median: gap.median, p99: gap.p99, n: gap.n, ...(last ? { target: '≤ 50 ms', met: gap.p99 <= 50 } : {}) },
        { figure: `rolling restart of ${size} (${order}): duration`, unit: 'ms', ...medianP99(summarize(s.map(x => x.ms))) }
      ]
    })
  }
}
