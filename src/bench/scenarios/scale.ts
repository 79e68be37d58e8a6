/**
 * scale: for each size (5, 20, 50 by default) start that many member processes one at a time,
 * then measure
 *   - the time for all to agree after the last member's "ready";
 *   - an idle window (30 s by default): CPU % of a core and RSS per member (from /proc), and
 *     false suspicions: suspect lines or view changes while nobody failed (must be 0).
 * Each size runs in its own cluster; its processes are killed before the next size starts.
 *
 * With `--per-process K` (K > 1) the members run K to a process (`conclave host`, each member
 * its own libp2p node, key and port), so that sizes beyond what separate processes fit can be
 * measured; CPU and RSS are then each process's divided by its members, and connections per
 * member are counted too (the member's own count of open transport connections).
 */
import { summarize } from '../stats.js'
import { checkAborted, type Figure } from '../context.js'
import { grow } from '../cluster.js'
import { processUsage } from '../machine.js'
import { int, intList, type Scenario } from '../scenario.js'
import type { MemberProcess } from '../../testing/member-process.js'
import { hostedAgreed, type HostedMember, type MemberHost } from '../../testing/member-host.js'
import { waitUntil } from '../../testing/member-process.js'
import type { BenchContext } from '../context.js'

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
  /** Members per process (1: one process each). */
  perProcess: number
  /** Per member, open transport connections at the window's end (hosted runs only). */
  connections: number[]
}

export const scale: Scenario = {
  name: 'scale',
  summary: 'N members on this machine: agreement after the last start, idle CPU and RSS per member, false suspicions',
  flags: {
    sizes: { default: '5,20,50', describe: 'cluster sizes, comma-separated', parse: intList(2, 1000) },
    'per-process': { default: '1', describe: 'members per process (conclave host) for sizes beyond separate processes', parse: int(1, 256) },
    window: { default: '60', describe: 'idle window, seconds', parse: int(1, 3600) },
    settle: { default: '3', describe: 'seconds to wait after agreement before the window', parse: int(0, 600) }
  },
  smoke: { sizes: '2', window: '1', settle: '0', 'per-process': '1' },
  async run (ctx, flags) {
    const sizes = flags.sizes as number[]
    const windowS = flags.window as number
    const settleS = flags.settle as number
    const samples: ScaleSample[] = []
    const failures: ScaleFailure[] = []
    const perProcess = flags['per-process'] as number
    ctx.report.settings = { sizes, windowS, settleS, perProcess }
    ctx.report.samples = { sizes: samples, failures }
    ctx.progress.start('scale', sizes.reduce((a, b) => a + b, 0) + sizes.length)
    for (const size of sizes) {
      if (perProcess > 1) {
        try {
          samples.push(await hostedSize(ctx, size, perProcess, windowS, settleS))
        } catch (err) {
          if (ctx.aborted) throw err
          ctx.report.notes.push(`${size} members: ${err instanceof Error ? err.message : String(err)}`)
          failures.push({ size, startedMembers: 0, error: err instanceof Error ? err.message : String(err) })
        } finally {
          ctx.report.figures = [...samples.flatMap(s => figures(s)), ...failures.map(failed)]
        }
        ctx.progress.tick(`${size} members: done`)
        await ctx.sleep(Math.min(10_000, size * 50))
        continue
      }
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
          windowS,
          perProcess: 1,
          connections: []
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

/**
 * One size with `perProcess` members to a process: hosts start one after another, each
 * seeded with the first member of the first host and of the host before it, and each waits
 * until everyone started so far agrees; then the idle window.
 */
async function hostedSize (ctx: BenchContext, size: number, perProcess: number, windowS: number, settleS: number): Promise<ScaleSample> {
  const cluster = ctx.cluster(`scale${size}h`)
  const hosts: MemberHost[] = []
  const all: HostedMember[] = []
  try {
    while (all.length < size) {
      checkAborted(ctx)
      const count = Math.min(perProcess, size - all.length)
      const seeds = [...new Set([hosts[0]?.members[0]?.address, hosts.at(-1)?.members[0]?.address].filter((a): a is string => a !== undefined))]
      const host = ctx.host({ cluster, count, prefix: `h${hosts.length}`, seeds })
      hosts.push(host)
      await host.waitReady(60_000 + count * 2000)
      all.push(...host.members)
      await waitUntil(() => hostedAgreed(all, all.length) || ctx.aborted, 30_000 + all.length * 100, () => `${all.length} members to agree (${all.filter(m => m.lastView()?.size === all.length).length} see a view of all)`, 20)
      checkAborted(ctx)
      ctx.progress.tick(`${size} members: ${all.length} up`)
    }
    const lastReady = Math.max(...(hosts.at(-1)?.members ?? []).map(m => m.ready()?.ts as number))
    const agreedAt = Math.max(...all.map(m => m.lastView()?.ts ?? Number.NaN))
    await ctx.sleep(settleS * 1000)
    checkAborted(ctx)
    const marks = all.map(m => m.events.length)
    const before = await Promise.all(hosts.map(async h => await h.stats()))
    await ctx.sleep(windowS * 1000)
    checkAborted(ctx)
    const after = await Promise.all(hosts.map(async h => await h.stats()))
    const during = all.map((m, i) => m.events.slice(marks[i]))
    const perMember = (pick: (h: number) => number): number[] => hosts.flatMap((h, i) => h.members.map(() => pick(i) / h.members.length))
    return {
      size,
      agreeAfterLastMs: agreedAt - lastReady,
      cpuPercent: perMember(i => (((after[i]?.cpuS ?? Number.NaN) - (before[i]?.cpuS ?? Number.NaN)) / windowS) * 100),
      rssMiB: perMember(i => after[i]?.rssMiB ?? Number.NaN),
      suspicions: during.flat().filter(e => e.type === 'suspect').length,
      viewChanges: during.flat().filter(e => e.type === 'view').length,
      windowS,
      perProcess,
      connections: after.flatMap(s => [...s.members.values()].map(m => m.connections))
    }
  } finally {
    await Promise.all(hosts.map(async h => { h.kill('SIGKILL'); await h.exited }))
  }
}

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
  if (s.connections.length > 0) {
    const c = summarize(s.connections)
    // The partial-mesh target of docs/design.md: 2·log₂N + K (2 monitors) + a few (4).
    const bound = 2 * Math.log2(s.size) + 2 + 4
    out.push({ figure: `${s.size} members: connections per member`, unit: '', median: c.median, p99: c.max, n: c.n, target: `≤ ${bound.toFixed(0)} (2·log₂N + K + 4)`, met: c.max <= bound })
  }
  if (s.perProcess > 1) {
    for (const f of out) (f as { figure: string }).figure = f.figure.replace(' members:', ` members (${s.perProcess} a process):`)
  }
  return out
}
