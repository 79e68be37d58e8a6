/**
 * broadcast: 100-byte reliable broadcasts from 1 member to 4 (5 agent processes).
 *   - throughput: the sender broadcasts `count` messages as fast as it can; per receiver,
 *     messages received per second from the first send to its last receipt. The figure is the
 *     slowest receiver (what all four sustain), with how many arrived.
 *   - latency: `rate` msg/s for `seconds` (after a pause and one second of uncounted warm-up);
 *     receive time minus send time, median and p99, and the 20 slowest deliveries per receiver.
 */
import { fileURLToPath } from 'node:url'
import { waitUntil, type MemberEvent, type MemberProcess } from '../../testing/member-process.js'
import { checkAborted, type BenchContext } from '../context.js'
import { grow } from '../cluster.js'
import { int, type Scenario } from '../scenario.js'

const AGENT = fileURLToPath(new URL('../agent.js', import.meta.url))

interface Report { received: number, firstAt: number, lastAt: number, latency: { median: number, p99: number, max: number, n: number } }

/** Asks every receiver for its report and collects them. */
async function reports (ctx: BenchContext, receivers: readonly MemberProcess[]): Promise<Report[]> {
  const marks = receivers.map(p => p.events.length)
  for (const p of receivers) p.command({ cmd: 'report' })
  return await Promise.all(receivers.map(async (p, i) => await p.waitFor(e => e.type === 'report', 10_000, marks[i]) as unknown as Report))
}

/** Waits until the receivers' counts stop growing for `quietMs` (or `count` each arrived). */
async function drained (ctx: BenchContext, receivers: readonly MemberProcess[], count: number, quietMs: number, timeoutMs: number): Promise<void> {
  // The agents print nothing per message: peek at their counts a few times per quiet period.
  const end = Date.now() + timeoutMs
  let lastProgress = Date.now()
  let seen = -1
  while (Date.now() < end && !ctx.aborted) {
    const marks = receivers.map(p => p.events.length)
    for (const p of receivers) p.command({ cmd: 'peek' })
    await ctx.sleep(quietMs / 4)
    const total = receivers.reduce((a, p, i) => a + p.events.slice(marks[i]).filter((e: MemberEvent) => e.type === 'peek').reduce((x, e) => x + Number(e.received), 0), 0)
    if (total >= count * receivers.length) return
    if (total !== seen) { seen = total; lastProgress = Date.now() } else if (Date.now() - lastProgress >= quietMs) return
  }
}

export const broadcast: Scenario = {
  name: 'broadcast',
  summary: '100 B reliable broadcasts from 1 member to 4: sustained msg/s, and latency at a fixed rate',
  flags: {
    count: { default: '20000', describe: 'messages in the throughput blast', parse: int(1, 10_000_000) },
    size: { default: '100', describe: 'message size, bytes', parse: int(24, 1_000_000) },
    rate: { default: '1000', describe: 'messages per second in the latency run', parse: int(1, 1_000_000) },
    seconds: { default: '10', describe: 'length of the latency run', parse: int(1, 3600) },
    receivers: { default: '4', describe: 'receiving members', parse: int(1, 20) }
  },
  smoke: { count: '200', rate: '100', seconds: '1', receivers: '1' },
  async run (ctx, flags) {
    const count = flags.count as number
    const size = flags.size as number
    const rate = flags.rate as number
    const seconds = flags.seconds as number
    const group: MemberProcess[] = []
    ctx.progress.start('broadcast', 2)
    await grow(ctx, ctx.cluster('broadcast'), group, 1 + (flags.receivers as number), { script: AGENT, stdin: true })
    const [sender, ...receivers] = group as [MemberProcess, ...MemberProcess[]]
    await ctx.sleep(1000) // let the joins' connection set-up settle
    checkAborted(ctx)
    await reports(ctx, receivers) // reset the counters

    // throughput
    const mark = sender.events.length
    sender.command({ cmd: 'blast', count, size, rate: 0 })
    const blasted = await sender.waitFor(e => e.type === 'blasted', 120_000, mark)
    await drained(ctx, receivers, count, 2000, 120_000)
    checkAborted(ctx)
    const thr = await reports(ctx, receivers)
    const perReceiver = thr.map(r => r.received === 0 ? 0 : r.received / ((r.lastAt - (blasted.startedAt as number)) / 1000))
    ctx.progress.tick('throughput')

    // latency at a fixed rate, after the throughput blast's garbage is collected and one
    // second of warm-up traffic at the same rate (not counted), as any latency benchmark does
    await ctx.sleep(2000)
    const warmMark = sender.events.length
    sender.command({ cmd: 'blast', count: rate, size, rate })
    await sender.waitFor(e => e.type === 'blasted', 60_000, warmMark)
    await drained(ctx, receivers, rate, 1000, 30_000)
    checkAborted(ctx)
    await reports(ctx, receivers) // reset the counters
    const total = rate * seconds
    const mark2 = sender.events.length
    sender.command({ cmd: 'blast', count: total, size, rate })
    await sender.waitFor(e => e.type === 'blasted', seconds * 1000 + 60_000, mark2)
    await drained(ctx, receivers, total, 1000, 60_000)
    checkAborted(ctx)
    const lat = await reports(ctx, receivers)
    ctx.progress.tick('latency')

    const slowest = Math.min(...perReceiver)
    const sendRate = count / (((blasted.endedAt as number) - (blasted.startedAt as number)) / 1000)
    const delivered = Math.min(...thr.map(r => r.received)) / count
    const p99 = Math.max(...lat.map(r => r.latency.p99))
    const median = Math.max(...lat.map(r => r.latency.median))
    const latDelivered = Math.min(...lat.map(r => r.received)) / total
    ctx.report.settings = { count, size, rate, seconds, receivers: receivers.length }
    ctx.report.samples = { throughput: thr, latency: lat, perReceiverMsgPerS: perReceiver, senderMsgPerS: sendRate }
    ctx.report.figures = [
      { figure: `broadcast ${size} B, 1 → ${receivers.length}: sustained (slowest receiver)`, unit: 'msg/s', value: slowest, target: '≥ 100000 msg/s', met: slowest >= 100_000 && delivered === 1 },
      { figure: 'broadcast: messages delivered to every receiver in the blast', unit: '%', value: delivered * 100 },
      { figure: 'broadcast: sender publish rate', unit: 'msg/s', value: sendRate },
      { figure: `broadcast at ${rate} msg/s: latency (worst receiver)`, unit: 'ms', median, p99, n: lat.reduce((a, r) => a + r.latency.n, 0), target: 'p99 ≤ 5 ms', met: p99 <= 5 && latDelivered === 1 },
      { figure: `broadcast at ${rate} msg/s: delivered`, unit: '%', value: latDelivered * 100 }
    ]
  }
}
