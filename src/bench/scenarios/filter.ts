/**
 * filter: the in-process cost of the master-only filter on a master, per item, for each
 * variant (and the bare isMaster() check for scale). Median of 5 timed passes after a warm-up.
 */
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createMember } from '../../member.js'
import { masterOnly, masterOnlySync, masterOnlyStream } from '../../policies/filter.js'
import { summarize } from '../stats.js'
import { checkAborted } from '../context.js'
import { int, type Scenario } from '../scenario.js'

export const filter: Scenario = {
  name: 'filter',
  summary: 'items per second through the master-only filter on a master, in-process',
  flags: {
    items: { default: '2000000', describe: 'items per timed pass', parse: int(1000, 100_000_000) },
    passes: { default: '5', describe: 'timed passes per variant (after one warm-up)', parse: int(1, 100) }
  },
  smoke: { items: '10000', passes: '1' },
  async run (ctx, flags) {
    const count = flags.items as number
    const passes = flags.passes as number
    const member = await createMember({ cluster: ctx.cluster('filter'), name: 'solo' })
    const items = Array.from({ length: count }, (_, i) => i)
    const rates: Record<string, number[]> = {}
    ctx.report.settings = { items: count, passes }
    ctx.report.samples = { itemsPerSecond: rates }
    const variants: Array<[string, () => Promise<number> | number]> = [
      ['isMaster() check alone', () => { let c = 0; for (const _ of items) if (member.isMaster()) c++; return c }],
      ['masterOnlySync (generator)', () => { let c = 0; for (const _ of masterOnlySync(member, items)) c++; return c }],
      ['masterOnly (async iterator)', async () => { let c = 0; for await (const _ of masterOnly(member, items)) c++; return c }],
      ['masterOnlyStream (Node Transform)', async () => {
        let c = 0
        await pipeline(Readable.from(items), masterOnlyStream(member), new Writable({ objectMode: true, write (_x, _e, done) { c++; done() } }))
        return c
      }]
    ]
    ctx.progress.start('filter', variants.length)
    try {
      for (const [label, run] of variants) {
        checkAborted(ctx)
        await run() // warm-up
        const samples: number[] = []
        for (let i = 0; i < passes; i++) {
          const t0 = performance.now()
          const passed = await run()
          if (passed !== count) throw new Error(`${label}: passed ${passed} of ${count} items on a master`)
          samples.push(count / ((performance.now() - t0) / 1000))
        }
        rates[label] = samples
        ctx.progress.tick(label)
      }
    } finally {
      await member.stop()
    }
    ctx.report.figures = Object.entries(rates).map(([label, samples]) => {
      const s = summarize(samples)
      const isFilter = label !== 'isMaster() check alone'
      return { figure: `filter: ${label}`, unit: 'M items/s', value: s.median / 1e6, n: s.n, ...(isFilter ? { target: '≥ 5 M items/s', met: s.median >= 5e6 } : {}) }
    })
  }
}
