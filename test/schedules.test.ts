/**
 * Random fault schedules in simulation (testing/schedules.ts) on a fixed set of seeds: crashes
 * and restarts (durable, empty, new id) with clocks set back, hangs, leaves, joins, clean, bridge
 * and ring partitions, one-way loss, cut links, loss and duplication bursts, wall-clock steps,
 * clocks at their own rates. Every invariant is checked after every step (under majority also:
 * no two masters anywhere, grants in epoch order); after the faults stop, all running members
 * agree on one view with one coordinator (none if the view has no quorum). Thousands more seeds:
 * `node dist/bench/simulate.js`.
 */
import { describe, expect, it } from 'vitest'
import { runSchedule } from '../src/testing/schedules.js'

function runAll (splitBrain: 'allow' | 'majority', seeds: readonly number[], extra: { members?: number, durable?: boolean } = {}): void {
  for (const seed of seeds) {
    const r = runSchedule({ seed, splitBrain, ...extra })
    expect(r.problem, `seed ${seed} (${splitBrain}); faults: ${r.faults.join('; ')}`).toBeUndefined()
    expect(r.faults.length).toBeGreaterThan(0)
  }
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i)

describe('random fault schedules', () => {
  it('majority, 5 members, durable state: 60 seeds', () => { runAll('majority', range(1, 60)) })
  it('majority, without durable state: 30 seeds', () => { runAll('majority', range(5001, 30), { durable: false }) })
  it('majority, 8 members: 15 seeds', () => { runAll('majority', range(7001, 15), { members: 8 }) })
  it('allow, 5 members: 60 seeds', () => { runAll('allow', range(1, 60)) })
})
