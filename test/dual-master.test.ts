/**
 * The dual-master detector on its own (policies/dual-master.ts): what it reports, what it
 * ignores, and that an announcement is confirmed by a fresh answer before it counts.
 */
import { describe, expect, it } from 'vitest'
import { DualMasterDetector, CONFIRM_TIMEOUT_MS, type DualMasterDetected } from '../src/policies/dual-master.js'
import { makeView } from '../src/core/view.js'

const rec = (id: string, joinEpoch: number): { id: string, name: string, incarnation: number, joinEpoch: number, addrs: string[], meta: Record<string, never> } =>
  ({ id, name: id, incarnation: 1, joinEpoch, addrs: [], meta: {} })

function setup (opts: { hasMasters?: boolean, rank?: number } = {}) {
  const view = makeView(10, [rec('a', 1), rec('b', 2), rec('c', 3)])
  let now = 1000
  const sent: Array<{ to: string, data: Record<string, unknown> }> = []
  const reports: DualMasterDetected[] = []
  const detector = new DualMasterDetector({
    view: () => view,
    viewHasMasters: () => opts.hasMasters ?? true,
    masters: 1,
    rank: () => opts.rank,
    send: (to, data) => { sent.push({ to, data: data as Record<string, unknown> }) },
    report: e => { reports.push(e) },
    clock: () => now
  })
  return { detector, sent, reports, advance: (ms: number) => { now += ms } }
}

describe('dual-master detector', () => {
  it('a master of another group: asks it, and reports once it confirms within the timeout', () => {
    const { detector, sent, reports } = setup()
    expect(detector.onMessage('x', { k: 'am', epoch: 7, rank: 0 })).toBe(true)
    expect(reports).toEqual([])
    const ask = sent.find(s => s.to === 'x' && s.data.k === 'ask')
    expect(ask).toBeDefined()
    expect(detector.onMessage('x', { k: 'yes', nonce: ask?.data.nonce, epoch: 7, rank: 0 })).toBe(true)
    expect(reports).toEqual([{ master: 'x', epoch: 7, rank: 0, foreign: true, expected: ['a'] }])
    expect(detector.detected).toBe(1)
    // once per announcer and epoch
    detector.onMessage('x', { k: 'am', epoch: 7, rank: 0 })
    expect(sent.filter(s => s.data.k === 'ask')).toHaveLength(1)
  })

  it('an announcement that is old news (no answer, or a late one) is not reported', () => {
    const { detector, sent, reports, advance } = setup()
    detector.onMessage('x', { k: 'am', epoch: 7, rank: 0 })
    const nonce = sent[0]?.data.nonce
    advance(CONFIRM_TIMEOUT_MS + 1)
    detector.onMessage('x', { k: 'yes', nonce, epoch: 7, rank: 0 })
    expect(reports).toEqual([])
    detector.onMessage('x', { k: 'yes', nonce: 12345, epoch: 7, rank: 0 })
    expect(reports).toEqual([])
  })

  it('a member of our view claiming another rank at our epoch is reported; other epochs are ignored', () => {
    const { detector, sent, reports } = setup()
    detector.onMessage('b', { k: 'am', epoch: 9, rank: 0 })
    detector.onMessage('a', { k: 'am', epoch: 10, rank: 0 })
    expect(sent).toEqual([])
    detector.onMessage('b', { k: 'am', epoch: 10, rank: 0 })
    const ask = sent.find(s => s.to === 'b')
    detector.onMessage('b', { k: 'yes', nonce: ask?.data.nonce, epoch: 10, rank: 0 })
    expect(reports.map(r => [r.master, r.foreign])).toEqual([['b', false]])
  })

  it('a view without masters (no quorum) expects the other side\'s master', () => {
    const { detector, sent, reports } = setup({ hasMasters: false })
    detector.onMessage('x', { k: 'am', epoch: 7, rank: 0 })
    expect(sent).toEqual([])
    expect(reports).toEqual([])
  })

  it('answers "are you master?" only while master; malformed messages are refused', () => {
    const follower = setup()
    follower.detector.onMessage('x', { k: 'ask', nonce: 1 })
    expect(follower.sent).toEqual([])
    const master = setup({ rank: 0 })
    master.detector.onMessage('x', { k: 'ask', nonce: 1 })
    expect(master.sent).toEqual([{ to: 'x', data: { k: 'yes', nonce: 1, epoch: 10, rank: 0 } }])
    master.detector.announce(['p', 'q'])
    expect(master.sent.slice(1).map(s => s.to)).toEqual(['p', 'q'])
    for (const bad of [null, 7, { k: 'am', epoch: -1, rank: 0 }, { k: 'am', epoch: 1, rank: 'zero' }, { k: 'ask' }, { k: 'what', epoch: 1, rank: 0 }]) {
      expect(master.detector.onMessage('x', bad)).toBe(false)
    }
  })
})
