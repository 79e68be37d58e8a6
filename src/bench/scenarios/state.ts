/**
 * state: state transfer of a streamed snapshot (agent `--state-mb`) from the coordinator to a
 * joiner, two agent processes. Each round a fresh joiner starts; from its first request to the
 * end of its restore gives MB/s; each side's peak RSS is read from the process (maxRSS).
 */
import { fileURLToPath } from 'node:url'
import type { MemberEvent, MemberProcess } from '../../testing/member-process.js'
import { checkAborted } from '../context.js'
import { grow } from '../cluster.js'
import { int, type Scenario } from '../scenario.js'
import { medianP99, summarize } from '../stats.js'

const AGENT = fileURLToPath(new URL('../agent.js', import.meta.url))

interface StateEvent extends MemberEvent { restored: boolean, bytes: number, ms: number, attempts: number, maxRssBytes: number }

export const state: Scenario = {
  name: 'state',
  summary: 'state transfer of a streamed snapshot to a joiner: MB/s and peak RSS on both sides',
  flags: {
    mb: { default: '100', describe: 'snapshot size in MiB', parse: int(1, 100_000) },
    rounds: { default: '5', describe: 'joiners to time', parse: int(1, 1000) }
  },
  smoke: { mb: '8', rounds: '1' },
  async run (ctx, flags) {
    const mb = flags.mb as number
    const rounds = flags.rounds as number
    const extraArgs = ['--state-mb', String(mb)]
    const cluster = ctx.cluster('state')
    const group: MemberProcess[] = []
    ctx.progress.start('state', rounds)
    await grow(ctx, cluster, group, 1, { script: AGENT, stdin: true, extraArgs })
    const provider = group[0] as MemberProcess
    const samples: Array<{ ms: number, mbPerS: number, joinerMaxRssMb: number, restored: boolean }> = []
    for (let i = 0; i < rounds; i++) {
      checkAborted(ctx)
      const members = [provider]
      await grow(ctx, cluster, members, 2, { script: AGENT, stdin: true, extraArgs })
      const joiner = members[1] as MemberProcess
      const ev = await joiner.waitFor(e => e.type === 'state' || e.type === 'state-error', 600_000) as StateEvent
      if (ev.type !== 'state') throw new Error(`state transfer failed: ${JSON.stringify(ev)}`)
      samples.push({ ms: ev.ms, mbPerS: (ev.bytes / (1024 * 1024)) / (ev.ms / 1000), joinerMaxRssMb: ev.maxRssBytes / (1024 * 1024), restored: ev.restored && ev.bytes === mb * 1024 * 1024 })
      await joiner.stop()
      ctx.progress.tick(`${samples.at(-1)?.mbPerS.toFixed(0)} MB/s`)
      await ctx.sleep(500)
    }
    const mark = provider.events.length
    provider.command({ cmd: 'rss' })
    const rss = await provider.waitFor(e => e.type === 'rss', 10_000, mark) as MemberEvent & { maxRssBytes: number }
    const rate = summarize(samples.map(s => s.mbPerS))
    const joinerRss = Math.max(...samples.map(s => s.joinerMaxRssMb))
    ctx.report.settings = { mb, rounds }
    ctx.report.samples = { rounds: samples, providerMaxRssBytes: rss.maxRssBytes }
    ctx.report.figures = [
      { figure: `state transfer, ${mb} MiB streamed: throughput, median of ${samples.length}`, unit: 'MB/s', value: rate.median, target: '≥ 200 MB/s', met: rate.median >= 200 && samples.every(s => s.restored) },
      { figure: 'state transfer: throughput, slowest round', unit: 'MB/s', value: rate.min },
      { figure: `state transfer, ${mb} MiB: transfer time`, unit: 'ms', ...medianP99(summarize(samples.map(s => s.ms))) },
      { figure: 'state transfer: provider peak RSS', unit: 'MB', value: rss.maxRssBytes / (1024 * 1024) },
      { figure: 'state transfer: joiner peak RSS (largest of the rounds)', unit: 'MB', value: joinerRss }
    ]
  }
}
