/**
 * The bootstrap rule in simulation: under `majority` (or a static quorum) a member that has
 * seeds never founds a group on its own, so one started while cut off has no masters until it
 * is part of a quorate group; `{ expect: N }` founds with N members in contact, counting them;
 * knowledge restored from durable state makes a group founded alone count what it knew; and
 * epochs from the network are bounded in every state, joining included. Invariants after every step.
 */
import { describe, expect, it } from 'vitest'
import { Simulation } from '../src/testing/simulation.js'
import { ALL_INVARIANTS, atMostNMastersGlobally, checkInvariants } from '../src/testing/invariants.js'
import { EPOCH_WINDOW, MAX_EPOCH } from '../src/core/membership.js'
import type { QuorumRule } from '../src/core/quorum.js'
import type { MemberRecord } from '../src/core/member.js'

const MAJORITY: QuorumRule = { splitBrain: 'majority', quorum: 1 }

function trio (sim: Simulation): void {
  sim.addNode('n1')
  sim.runFor(20)
  sim.addNode('n2', ['n1'])
  sim.runFor(20)
  sim.addNode('n3', ['n1'])
  expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
}

const acting = (sim: Simulation): string[] => sim.upNodes().filter(n => n.core.actingRank(sim.now) === 0).map(n => n.id)

describe('bootstrap: who may found a group', () => {
  it('majority: a member with seeds started while cut off founds nothing, has no master, waits, and joins after the heal', () => {
    const sim = new Simulation({ seed: 301, quorum: MAJORITY })
    checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
    trio(sim)
    sim.partition([['n1', 'n2', 'n3'], ['n4']])
    const n4 = sim.addNode('n4', ['n1', 'n2', 'n3'])
    sim.runFor(8000)
    expect(n4.core.status).toBe('joining')
    expect(n4.core.view).toBeUndefined()
    expect(n4.installs).toHaveLength(0)
    expect(n4.waits.map(w => w.reason)).toEqual(['may-not-found'])
    expect(acting(sim)).toEqual(['n1'])
    // Waiting costs no busy timer: the node wakes only to re-dial its seeds.
    const fires = n4.timerFires
    sim.runFor(5000)
    expect(n4.timerFires - fires).toBeLessThanOrEqual(12)
    sim.heal()
    expect(sim.runUntilTrue(() => sim.converged(), 3000)).toBe(true)
    expect(n4.core.view?.members.map(m => m.id)).toEqual(['n1', 'n2', 'n3', 'n4'])
    expect(acting(sim)).toEqual(['n1'])
  })

  it('allow: the same member founds a group of one, as documented (each side has a master)', () => {
    const sim = new Simulation({ seed: 302 })
    checkInvariants(sim)
    trio(sim)
    sim.partition([['n1', 'n2', 'n3'], ['n4']])
    const n4 = sim.addNode('n4', ['n1', 'n2', 'n3'])
    expect(sim.runUntilTrue(() => n4.core.view !== undefined, 5000)).toBe(true)
    expect(n4.core.view?.members.map(m => m.id)).toEqual(['n4'])
    expect(acting(sim).sort()).toEqual(['n1', 'n4'])
    sim.heal()
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    expect(acting(sim)).toEqual(['n1'])
  })

  it('a static quorum is a reason too: with quorum 2 a member with seeds does not found alone', () => {
    const sim = new Simulation({ seed: 303, quorum: { splitBrain: 'allow', quorum: 2 } })
    checkInvariants(sim)
    const lone = sim.addNode('n1', ['n9'])
    sim.runFor(5000)
    expect(lone.core.view).toBeUndefined()
    expect(lone.waits).toHaveLength(1)
  })

  it('expect 3: members with seeds wait until three are in contact; the founder has no master until a majority of them joined', () => {
    const sim = new Simulation({ seed: 304, quorum: MAJORITY })
    checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
    const all = ['n1', 'n2', 'n3']
    const founding = { expect: 3 } as const
    const actingViews: number[] = []
    const check = sim.onStep
    sim.onStep = s => {
      check?.(s)
      for (const n of s.upNodes()) if (n.core.actingRank(s.now) === 0) actingViews.push(n.core.view?.members.length ?? 0)
    }
    sim.addNode('n1', all, { founding })
    sim.addNode('n2', all, { founding })
    sim.runFor(4000)
    for (const id of ['n1', 'n2']) {
      expect(sim.nodes.get(id)?.core.view, id).toBeUndefined()
      expect(sim.nodes.get(id)?.waits.at(-1)).toMatchObject({ reason: 'expecting', joiners: 1 })
    }
    sim.addNode('n3', all, { founding })
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const view = sim.nodes.get('n3')?.core.view
    expect(view?.members.map(m => m.id)).toEqual(['n1', 'n2', 'n3'])
    // The founding view lists all three it expected: alone, n1 was not quorate.
    const founded = sim.nodes.get('n1')?.installs[0]?.view
    expect(founded?.members.map(m => m.id)).toEqual(['n1'])
    expect(founded?.basis.map(c => [...c.ids])).toEqual([all])
    expect(sim.nodes.get('n1')?.core.isCoordinator(sim.now) || sim.runUntilTrue(() => acting(sim).length === 1, 1000)).toBe(true)
    expect(acting(sim)).toEqual(['n1'])
    expect(actingViews.length).toBeGreaterThan(0)
    expect(Math.min(...actingViews)).toBeGreaterThanOrEqual(2)
  })

  it('a member that knows its last basis (durable state) founds alone when cut off, but without a majority: no master', () => {
    const sim = new Simulation({ seed: 305, quorum: MAJORITY })
    checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
    trio(sim)
    const basis = [{ ids: ['n1', 'n2', 'n3', 'n4'], epoch: sim.nodes.get('n1')?.core.view?.id.epoch ?? 1, settled: true }]
    sim.partition([['n1', 'n2', 'n3'], ['n4']])
    const n4 = sim.addNode('n4', ['n1'], { restored: { maxEpoch: 50, basis } })
    expect(sim.runUntilTrue(() => n4.core.view !== undefined, 5000)).toBe(true)
    expect(n4.core.view?.members.map(m => m.id)).toEqual(['n4'])
    expect(n4.core.quorumProblem).toBe('no-majority')
    // New epochs go above the restored one.
    expect(n4.core.view?.id.epoch).toBeGreaterThan(50)
    sim.runFor(2000)
    expect(acting(sim)).toEqual(['n1'])
  })
})

describe('bootstrap: epochs from the network are bounded while joining too', () => {
  const stranger: MemberRecord = { id: 'zz-stranger', name: 'zz', incarnation: 1, joinEpoch: 1, addrs: [], meta: {} }

  it('a hello near 2^53 does not make a joiner found its group there; the group keeps counting one up', () => {
    const sim = new Simulation({ seed: 306 })
    checkInvariants(sim)
    const far = Number.MAX_SAFE_INTEGER - 2
    const n1 = sim.addNode('n1', ['n9'])
    // While n1 looks for a group: a maxEpoch claim and a view, both far beyond the window.
    sim.inject('zz-stranger', 'n1', { t: 'hello', from: stranger, maxEpoch: far })
    sim.inject('zz-stranger', 'n1', { t: 'hello', from: stranger, maxEpoch: 1, view: { epoch: far, members: [stranger] } })
    sim.inject('zz-stranger', 'n1', { t: 'hb', epoch: far, ts: 1, echo: 0 })
    expect(sim.runUntilTrue(() => n1.core.view !== undefined, 5000)).toBe(true)
    expect(n1.core.view?.id.epoch).toBeLessThan(EPOCH_WINDOW)
    expect(n1.drops['epoch-claim-ignored']).toBe(1)
    expect(n1.drops['epoch-out-of-range']).toBe(2)
    const first = n1.core.view?.id.epoch as number
    sim.addNode('n2', ['n1'])
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    expect(n1.core.view?.id.epoch).toBe(first + 1)
  })

  it('within the window a claim is taken; nothing goes above MAX_EPOCH, where integers are still exact', () => {
    const sim = new Simulation({ seed: 307 })
    checkInvariants(sim)
    const n1 = sim.addNode('n1', ['n9'])
    sim.inject('zz-stranger', 'n1', { t: 'hello', from: stranger, maxEpoch: EPOCH_WINDOW - 5 })
    expect(sim.runUntilTrue(() => n1.core.view !== undefined, 5000)).toBe(true)
    expect(n1.core.view?.id.epoch).toBe(EPOCH_WINDOW - 4)
    // A member whose epochs were pushed to the cap (restored here) founds at it and then stops
    // proposing rather than go past it: n2 is never admitted, and no view repeats an epoch.
    const capped = new Simulation({ seed: 308 })
    checkInvariants(capped)
    const top = capped.addNode('n1', [], { restored: { maxEpoch: MAX_EPOCH - 1, basis: [] } })
    expect(top.core.view?.id.epoch).toBe(MAX_EPOCH)
    capped.addNode('n2', ['n1'], { restored: { maxEpoch: MAX_EPOCH - 1, basis: [] } })
    capped.runFor(3000)
    expect(top.core.view?.members.map(m => m.id)).toEqual(['n1'])
    expect(top.drops['epochs-exhausted']).toBeGreaterThan(0)
    expect(MAX_EPOCH + 1).not.toBe(MAX_EPOCH)
  })
})
