/**
 * rpc: request('master') from a member that is not the master (3 agent processes; the agents
 * serve "whoami").
 *   - throughput: `count` requests with `inflight` outstanding at a time; requests answered per
 *     second from the first request to the last answer.
 *   - latency: `rate` requests per second for `seconds` (after one second of uncounted warm-up
 *     at the same rate); round trip, median and p99.
 */
import { fileURLToPath } from 'node:url'
import type { MemberEvent, MemberProcess } from '../../testing/member-process.js'
import { checkAborted } from '../context.js'
import { grow } from '../cluster.js'
import { int, type Scenario } from '../scenario.js'

const AGENT = fileURLToPath(new URL('../agent.js', import.meta.url))

interface Requested extends MemberEvent {
  count: number
  ok: number
  errors: Record<string, number>
  latency: { median: number, p99: number, max: number, n: number }
  startedAt: number
  endedAt: number
}

async function run (client: MemberProcess, cmd: Record<string, unknown>, timeoutMs: number): Promise<Requested> {
  const mark = client.events.length
  client.command({ cmd: 'request', target: 'master', ...cmd })
  return await client.waitFor(e => e.type === 'requested' || e.type === 'error', timeoutMs, mark) as Requested
}

export const rpc: Scenario = {
  name: 'rpc',
  summary: "request('master') from another member: req/s with requests in flight, and round trip at a fixed rate",
  flags: {
    count: { default: '100000', describe: 'requests in the throughput run', parse: int(1, 10_000_000) },
    inflight: { default: '32', describe: 'requests outstanding at a time in the throughput run', parse: int(1, 1024) },
    rate: { default: '1000', describe: 'requests per second in the latency run', parse: int(1, 100_000) },
    seconds: { default: '10', describe: 'length of the latency run', parse: int(1, 3600) }
  },
  smoke: { count: '200', rate: '100', seconds: '1' },
  async run (ctx, flags) {
    const count = flags.count as number
    const inflight = flags.inflight as number
    const rate = flags.rate as number
    const seconds = flags.seconds as number
    const group: MemberProcess[] = []
    ctx.progress.start('rpc', 2)
    await grow(ctx, ctx.cluster('rpc'), group, 3, { script: AGENT, stdin: true })
    const client = group[group.length - 1] as MemberProcess
    await ctx.sleep(1000) // let the joins' connection set-up settle
    checkAborted(ctx)

    await run(client, { count: Math.min(count, 5000), inflight }, 60_000) // warm-up, not counted
    const thr = await run(client, { count, inflight }, 300_000)
    checkAborted(ctx)
    const reqPerS = thr.ok / ((thr.endedAt - thr.startedAt) / 1000)
    ctx.progress.tick('throughput')

    await ctx.sleep(1000)
    await run(client, { count: rate, rate }, 60_000) // warm-up, not counted
    const lat = await run(client, { count: rate * seconds, rate }, seconds * 1000 + 60_000)
    checkAborted(ctx)
    ctx.progress.tick('latency')

    ctx.report.settings = { count, inflight, rate, seconds }
    ctx.report.samples = { throughput: thr, latency: lat }
    ctx.report.figures = [
      { figure: `request('master'), ${inflight} in flight: throughput`, unit: 'req/s', value: reqPerS, target: '≥ 30000 req/s', met: reqPerS >= 30_000 && thr.ok === count },
      { figure: `request('master'), ${inflight} in flight: answered`, unit: '%', value: (thr.ok / count) * 100 },
      { figure: `request('master') at ${rate} req/s: round trip`, unit: 'ms', median: lat.latency.median, p99: lat.latency.p99, n: lat.latency.n, target: 'p99 ≤ 2 ms', met: lat.latency.p99 <= 2 && lat.ok === lat.count },
      { figure: `request('master') at ${rate} req/s: answered`, unit: '%', value: (lat.ok / lat.count) * 100 }
    ]
  }
}
