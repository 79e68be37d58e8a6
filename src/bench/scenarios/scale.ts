/**
 * scale: for each size (5, 20, 50 by default) start that many member processes one at a time,
 * then measure
 *   - the time for all to agree after the last member's "ready";
 *   - an idle window (30 s by default): CPU % of a core and RSS per member (from /proc), and
 *     false suspicions: suspect lines or view changes while nobody failed (must be 0).
 * Each size runs in its own cluster; its processes are killed before the next size starts.
 */
import { summarize } from '../stats.js'
import { checkAborted, type Figure } from '../context.js'
import { grow } from '../cluster.js'
import { processUsage } from '../machine.js'
import { int, intList, type Scenario } from '../scenario.js'
import type { MemberProcess } from '../../testing/member-process.js'

export interface ScaleSample {
  size: number
  /** Last member's ready → all agree, ms. */
  agreeAfterLastMs: number
  /** Per member: CPU % of one core over the window, RSS MiB at its end. */
  cpuPercent: number[]
  rssMiB: number[]
  suspicions: number
  viewChanges: number
  windowS: number
}

export const scale: Scenario = {
  name: 'scale',
  summary: 'N members on this machine: agreement after the last start, idle CPU and RSS per member, false suspicions',
  flags: {
    sizes: { default: '5,20,50', describe: 'cluster sizes, comma-separated', parse: intList(2, 200) },
    window: { default: '60', describe: 'idle window, seconds', parse: int(1, 3600) },
    settle: { default: '3', describe: 'seconds to wait after agreement before the window', parse: int(0, 600) }
  },
  smoke: { sizes: '2', window: '1', settle: '0' },
  async run (ctx, flags) {
    const sizes = flags.sizes as number[]
    const windowS = flags.window as number
    const settleS = flags.settle as number
    const samples: ScaleSample[] = []
    const failures: ScaleFailure[] = []
    ctx.report.settings = { sizes, windowS, settleS }
    ctx.report.samples = { sizes: samples, failures }
    ctx.progress.start('scale', sizes.reduce((a, b) => a + b, 0) + sizes.length)
    for (const size of sizes) {
      const group: MemberProcess[] = []
      const cluster = ctx.cluster(`scale${size}`)
      try {
        let last = 0
        while (group.length < size) {
          const [join] = await grow(ctx, cluster, group, group.length + 1, {}, 30_000)
          last = join?.fromReadyMs ?? 0
          ctx.progress.tick(`${size} members: ${group.length} up`)
        }
        await ctx.sleep(settleS * 1000)
        checkAborted(ctx)
        const marks = group.map(p => p.events.length)
        const before = group.map(p => processUsage(p.child.pid as number))
        await ctx.sleep(windowS * 1000)
        checkAborted(ctx)
        const after = group.map(p => processUsage(p.child.pid as number))
        const during = group.map((p, i) => p.events.slice(marks[i]))
        samples.push({
          size,
          agreeAfterLastMs: last,
          cpuPercent: after.map((a, i) => a === undefined || before[i] === undefined ? Number.NaN : ((a.cpuS - (before[i]?.cpuS ?? 0)) / windowS) * 100),
          rssMiB: after.map(a => a?.rssMiB ?? Number.NaN),
          suspicions: during.flat().filter(e => e.type === 'suspect').length,
          viewChanges: during.flat().filter(e => e.type === 'view').length,
          windowS
        })
        ctx.progress.tick(`${size} members: idle window done`)
      } catch (err) {
        // A size that does not come together is a result too: record it and go on to the next.
        if (ctx.aborted) throw err
        ctx.report.notes.push(`${size} members: ${err instanceof Error ? err.message : String(err)} (${group.length} had started)`)
        failures.push({ size, startedMembers: group.length, error: err instanceof Error ? err.message : String(err) })
      } finally {
        for (const p of group) if (p.running) p.kill('SIGKILL')
        await Promise.all(group.map(async p => await p.exited))
        ctx.report.figures = [...samples.flatMap(s => figures(s)), ...failures.map(failed)]
      }
      // let the machine cool down after a big size before the next one
      await ctx.sleep(Math.min(10_000, size * 200))
    }
    ctx.report.charts = [{
      name: 'scale',
      spec: {
        title: 'Idle cost per member by cluster size',
        data: { values: samples.flatMap(s => [{ size: s.size, figure: 'CPU % of a core (median)', value: summarize(s.cpuPercent).median }, { size: s.size, figure: 'RSS MiB (median)', value: summarize(s.rssMiB).median }]) },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'size', type: 'quantitative', title: 'members' },
          y: { field: 'value', type: 'quantitative', title: null },
          row: { field: 'figure', type: 'nominal', title: null }
        },
        resolve: { scale: { y: 'independent' } },
        width: 420,
        height: 140
      }
    }]
  }
}

interface ScaleFailure { size: number, startedMembers: number, error: string }

function failed (f: ScaleFailure): Figure {
  return { figure: `${f.size} members: did not all agree (${f.startedMembers} started)`, unit: '', value: f.startedMembers, target: f.size >= 50 ? '≤ 5000 ms' : undefined, met: false }
}

function figures (s: ScaleSample): Figure[] {
  const cpu = summarize(s.cpuPercent)
  const rss = summarize(s.rssMiB)
  const out: Figure[] = [
    { figure: `${s.size} members: last ready → all agree`, unit: 'ms', value: s.agreeAfterLastMs, ...(s.size >= 50 ? { target: '≤ 5000 ms', met: s.agreeAfterLastMs <= 5000 } : {}) },
    { figure: `${s.size} members: idle CPU per member`, unit: '% of a core', median: cpu.median, p99: cpu.max, n: cpu.n, ...(s.size === 5 ? { target: '≤ 1 %', met: cpu.median <= 1 } : {}) },
    { figure: `${s.size} members: RSS per member`, unit: 'MiB', median: rss.median, p99: rss.max, n: rss.n, target: '≤ 75 MiB', met: rss.median <= 75 },
    { figure: `${s.size} members: false suspicions in ${s.windowS} s idle`, unit: '', value: s.suspicions, target: '0', met: s.suspicions === 0 && s.viewChanges === 0 }
  ]
  return out
}
