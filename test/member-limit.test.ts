/**
 * The member limit in simulation (MembershipConfig.maxMembers, the shell's maxConnections + 1):
 * a coordinator at its limit admits no joiner and no merging group, says so (a `limit` effect,
 * a counted `member-limit` drop), and touches nothing in its view; room made by a leave or a
 * crash lets a waiting joiner in. Invariants after every step.
 */
import { describe, expect, it } from 'vitest'
import { Simulation, type SimNode } from '../src/testing/simulation.js'
import { ALL_INVARIANTS, checkInvariants } from '../src/testing/invariants.js'

const ids = (n: SimNode): string => (n.core.view?.members ?? []).map(m => m.id).join(',')

describe('member limit', () => {
  it('a coordinator at its limit admits nobody more, says whom it refused, and admits a waiting joiner once a member leaves', () => {
    const sim = new Simulation({ seed: 41 })
    checkInvariants(sim, ALL_INVARIANTS)
    const n1 = sim.addNode('n1', [], { maxMembers: 3 })
    sim.runFor(20)
    sim.addNode('n2', ['n1'], { maxMembers: 3 })
    sim.runFor(20)
    sim.addNode('n3', ['n1'], { maxMembers: 3 })
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const n4 = sim.addNode('n4', ['n1'], { maxMembers: 3 })
    sim.runFor(5000)
    expect(ids(n1)).toBe('n1,n2,n3')
    expect(n4.core.view).toBeUndefined()
    expect(n4.core.status).toBe('joining')
    expect(n1.limits.length).toBeGreaterThan(0)
    expect(n1.limits.every(l => l.refused === 'n4' && l.members === 3)).toBe(true)
    // At most one report a second, and every refusal counted.
    expect(n1.limits.length).toBeLessThanOrEqual(6)
    expect(n1.drops['member-limit']).toBeGreaterThanOrEqual(n1.limits.length)
    // Nothing in the view was touched: one view installed since n3 joined.
    expect(n1.installs.at(-1)?.view.members).toHaveLength(3)

    sim.leave('n2')
    expect(sim.runUntilTrue(() => ids(n1) === 'n1,n3,n4' && ids(n4) === 'n1,n3,n4', 10_000)).toBe(true)
  })

  it('a crash makes room too; the limit counts live members, not the view being replaced', () => {
    const sim = new Simulation({ seed: 42 })
    checkInvariants(sim, ALL_INVARIANTS)
    const n1 = sim.addNode('n1', [], { maxMembers: 2 })
    sim.runFor(20)
    const n2 = sim.addNode('n2', ['n1'], { maxMembers: 2 })
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const n3 = sim.addNode('n3', ['n1', 'n2'], { maxMembers: 2 })
    sim.runFor(3000)
    expect(n3.core.view).toBeUndefined()
    expect(ids(n2)).toBe('n1,n2')
    sim.crash('n2')
    expect(sim.runUntilTrue(() => ids(n1) === 'n1,n3' && ids(n3) === 'n1,n3', 10_000)).toBe(true)
    expect(n1.limits.map(l => l.refused)).toContain('n3')
  })

  it('two groups whose union exceeds the limit do not merge, or half merge; each keeps its view and says so', () => {
    const sim = new Simulation({ seed: 43 })
    checkInvariants(sim, ALL_INVARIANTS)
    const opts = { maxMembers: 3 }
    const n1 = sim.addNode('n1', [], opts)
    sim.runFor(20)
    sim.addNode('n2', ['n1'], opts)
    sim.runFor(20)
    const n3 = sim.addNode('n3', ['n1'], opts)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    // Cut n3 off; it goes on alone (allow) and a new member joins it there.
    sim.partition([['n1', 'n2'], ['n3', 'n4']])
    expect(sim.runUntilTrue(() => ids(n1) === 'n1,n2' && ids(n3) === 'n3', 10_000)).toBe(true)
    const n4 = sim.addNode('n4', ['n3'], opts)
    expect(sim.runUntilTrue(() => ids(n4) === 'n3,n4', 5000)).toBe(true)
    // The heal: the groups meet (the coordinators greet removed members) but 2 + 2 > 3.
    sim.heal()
    sim.runFor(8000)
    expect([ids(n1), ids(n3), ids(n4)]).toEqual(['n1,n2', 'n3,n4', 'n3,n4'])
    const refusals = [...n1.limits, ...n3.limits]
    expect(refusals.length).toBeGreaterThan(0)
    expect(refusals.every(l => l.members === 2)).toBe(true)
  })
})
