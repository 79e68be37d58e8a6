/**
 * A rolling restart of five `conclave member` processes on 127.0.0.1, standbys first and the
 * master last (testing/rolling-restart.ts): mastership moves once, two processes never hold it
 * at once, and the one gap is the graceful handover. The gap's figures come from
 * `conclave bench rolling`; here it is bounded generously.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { MemberProcess, agreed, waitUntil } from '../src/testing/member-process.js'
import { restartTimeline, rollingRestart } from '../src/testing/rolling-restart.js'

let procs: MemberProcess[] = []
afterEach(async () => {
  await Promise.all(procs.map(async p => { await p.stop(3000) }))
  procs = []
})

describe('rolling restart', () => {
  it('5 members, standbys first and the master last: mastership moves once, never two masters', async () => {
    const cluster = `rolling-${process.pid}`
    let generation = 0
    const spawn = (name: string, seeds: string[]): MemberProcess => {
      const p = new MemberProcess({ cluster, name, seeds })
      procs.push(p)
      return p
    }
    const group: MemberProcess[] = []
    for (let i = 0; i < 5; i++) {
      const p = await spawn(`m${i}`, group.slice(0, 3).map(q => q.address as string)).waitReady()
      group.push(p)
      await waitUntil(() => agreed(group, group.length), 15_000, `${group.length} members`)
    }
    const master = group.find(p => p.lastView()?.isCoordinator === true)
    const result = await rollingRestart(group, (old, seeds) => spawn(`${old.name}.${++generation}`, seeds), { order: 'master-last' })
    const { intervals, figures } = restartTimeline(result)
    expect(figures.moves).toBe(1)
    expect(figures.overlapMs).toBe(0)
    expect(figures.longestGapMs).toBeLessThan(1000)
    // The master kept its place until its own turn, then the oldest standby took over.
    expect(intervals[0]?.name).toBe(master?.name)
    expect(result.group[0]?.lastView()?.isCoordinator).toBe(true)
    expect(result.group.map(p => p.name).every(n => n.includes('.'))).toBe(true)
  })
})
