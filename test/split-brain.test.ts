/**
 * Split-brain policies in simulation: `majority` never lets two members act as master at once
 * anywhere in the cluster, across partitions, heals, crashes and hangs; `allow` elects one
 * master per side and exactly one after the merge; a static quorum holds masters back in small
 * views. Invariants are checked after every step.
 */
import { describe, expect, it } from 'vitest'
import { Simulation } from '../src/testing/simulation.js'
import { ALL_INVARIANTS, atMostNMastersGlobally, checkInvariants } from '../src/testing/invariants.js'
import { seededRandom } from '../src/testing/random.js'
import type { QuorumRule } from '../src/core/quorum.js'

const MAJORITY: QuorumRule = { splitBrain: 'majority', quorum: 1 }
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${String(i + 1).padStart(2, '0')}`)

function cluster (sim: Simulation, n: number): string[] {
  const names = ids(n)
  sim.addNode(names[0] as string)
  for (const id of names.slice(1)) {
    sim.runFor(20)
    sim.addNode(id, [names[0] as string])
  }
  expect(sim.runUntilTrue(() => sim.converged(), 10_000)).toBe(true)
  return names
}

const masters = (sim: Simulation, among?: readonly string[]): string[] =>
  sim.upNodes().filter(n => (among === undefined || among.includes(n.id)) && n.core.isCoordinator(sim.now)).map(n => n.id)

/** Whether `group` installed one view holding exactly `group`. */
function agree (sim: Simulation, group: readonly string[]): boolean {
  const views = group.map(id => sim.nodes.get(id)?.core.view)
  const first = views[0]
  return first !== undefined && first.members.length === group.length && group.every(id => first.members.some(m => m.id === id)) &&
    views.every(v => v?.id.epoch === first.id.epoch)
}

describe('split brain: majority', () => {
  it('3 | 2: the minority side, holding the old master, has none; the majority elects one; after the heal its master keeps its place', () => {
    const sim = new Simulation({ seed: 61, quorum: MAJORITY })
    checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
    cluster(sim, 5)
    expect(masters(sim)).toEqual(['n01'])
    const epochBefore = sim.nodes.get('n01')?.core.view?.id.epoch ?? 0
    sim.partition([['n01', 'n02'], ['n03', 'n04', 'n05']])
    expect(sim.runUntilTrue(() => agree(sim, ['n03', 'n04', 'n05']) && agree(sim, ['n01', 'n02']), 5000)).toBe(true)
    sim.runFor(1000)
    expect(masters(sim)).toEqual(['n03'])
    expect(sim.nodes.get('n01')?.core.quorumProblem).toBe('no-majority')
    expect(sim.nodes.get('n03')?.core.quorumProblem).toBeUndefined()
    sim.heal()
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const view = sim.nodes.get('n01')?.core.view
    expect(view?.members.map(m => m.id)).toEqual(['n03', 'n04', 'n05', 'n01', 'n02'])
    expect(view?.id.epoch).toBeGreaterThan(epochBefore)
    expect(sim.runUntilTrue(() => masters(sim).length === 1, 1000)).toBe(true)
    expect(masters(sim)).toEqual(['n03'])
  })

  it('the minority grows by joiners during the partition: the majority side still wins the merge', () => {
    const sim = new Simulation({ seed: 62, quorum: MAJORITY })
    checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
    cluster(sim, 5)
    sim.partition([['n01', 'n02', 'n03'], ['n04', 'n05', 'x1', 'x2', 'x3']])
    expect(sim.runUntilTrue(() => agree(sim, ['n04', 'n05']), 5000)).toBe(true)
    for (const x of ['x1', 'x2', 'x3']) { sim.addNode(x, ['n04']); sim.runFor(50) }
    expect(sim.runUntilTrue(() => agree(sim, ['n04', 'n05', 'x1', 'x2', 'x3']), 5000)).toBe(true)
    // five members, but none of the joiners counts: still a minority of the basis
    expect(sim.nodes.get('n04')?.core.quorumProblem).toBe('no-majority')
    expect(masters(sim)).toEqual(['n01'])
    sim.heal()
    expect(sim.runUntilTrue(() => sim.converged(), 6000)).toBe(true)
    expect(sim.nodes.get('n04')?.core.view?.members[0]?.id).toBe('n01')
    expect(sim.runUntilTrue(() => masters(sim).length === 1, 1000)).toBe(true)
    expect(masters(sim)).toEqual(['n01'])
  })

  it('an even split (2 | 2) and a 2–2–1 split leave no side with a master; the heal restores one', () => {
    for (const [n, sides] of [[4, [['n01', 'n02'], ['n03', 'n04']]], [5, [['n01', 'n02'], ['n03', 'n04'], ['n05']]]] as const) {
      const sim = new Simulation({ seed: 63 + n, quorum: MAJORITY })
      checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
      cluster(sim, n)
      sim.partition(sides)
      expect(sim.runUntilTrue(() => sides.every(side => agree(sim, side)), 5000)).toBe(true)
      sim.runFor(2000)
      expect(masters(sim)).toEqual([])
      for (const side of sides) expect(sim.nodes.get(side[0] as string)?.core.quorumProblem).toBe('no-majority')
      sim.heal()
      expect(sim.runUntilTrue(() => sim.converged() && masters(sim).length === 1, 8000)).toBe(true)
    }
  })

  it('two members: a crash leaves the survivor without a master (no arbiter); a graceful leave does not', () => {
    const crash = new Simulation({ seed: 66, quorum: MAJORITY })
    checkInvariants(crash, [...ALL_INVARIANTS, atMostNMastersGlobally])
    cluster(crash, 2)
    crash.crash('n01')
    expect(crash.runUntilTrue(() => agree(crash, ['n02']), 3000)).toBe(true)
    crash.runFor(1000)
    expect(masters(crash)).toEqual([])
    expect(crash.nodes.get('n02')?.core.quorumProblem).toBe('no-majority')

    const leave = new Simulation({ seed: 67, quorum: MAJORITY })
    checkInvariants(leave, [...ALL_INVARIANTS, atMostNMastersGlobally])
    cluster(leave, 2)
    leave.leave('n01')
    expect(leave.runUntilTrue(() => masters(leave).includes('n02'), 2000)).toBe(true)
  })

  it('crashes one at a time shrink the group down to two with a master throughout', () => {
    const sim = new Simulation({ seed: 68, quorum: MAJORITY })
    checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
    const names = cluster(sim, 5)
    for (const victim of names.slice(0, 3)) {
      sim.crash(victim)
      const rest = sim.upNodes().map(n => n.id)
      expect(sim.runUntilTrue(() => agree(sim, rest) && masters(sim).length === 1, 3000)).toBe(true)
    }
    expect(masters(sim)).toEqual(['n04'])
  })

  it('random partitions, heals, crashes and hangs: never two masters anywhere, for any masters(N)', () => {
    for (let seed = 600; seed < 640; seed++) {
      const rnd = seededRandom(seed * 31)
      const sim = new Simulation({ seed, quorum: MAJORITY, delayMs: [0.2, 8], lossRate: seed % 2 === 0 ? 0.01 : 0 })
      checkInvariants(sim, [...ALL_INVARIANTS, atMostNMastersGlobally])
      const names = cluster(sim, 5 + (seed % 3))
      const hung: string[] = []
      for (let step = 0; step < 10; step++) {
        sim.runFor(100 + rnd() * 1500)
        const up = sim.upNodes().map(n => n.id)
        if (up.length < 3) break
        const roll = rnd()
        if (roll < 0.45) {
          const cut = up.filter(() => rnd() < 0.5)
          const groups = [cut, names.filter(id => !cut.includes(id))]
          sim.partition(rnd() < 0.3 ? [...groups, [groups[1]?.pop() ?? '']] : groups)
          sim.runFor(300 + rnd() * 2500)
          sim.heal()
        } else if (roll < 0.6) {
          sim.crash(up[Math.floor(rnd() * up.length)] as string)
        } else if (roll < 0.8) {
          const victim = up[Math.floor(rnd() * up.length)] as string
          sim.hang(victim)
          hung.push(victim)
        } else if (hung.length > 0) {
          sim.resume(hung.shift() as string)
        }
      }
      for (const id of hung) sim.resume(id)
      sim.heal()
      sim.lossRate = 0
      expect(sim.runUntilTrue(() => sim.converged(), 15_000), `seed ${seed}: converges after the faults`).toBe(true)
    }
  })
})

describe('split brain: allow', () => {
  it('each side of a partition elects one master; after the heal exactly one remains', () => {
    for (let seed = 700; seed < 720; seed++) {
      const rnd = seededRandom(seed)
      const sim = new Simulation({ seed })
      checkInvariants(sim)
      const names = cluster(sim, 6)
      const cut = names.filter(() => rnd() < 0.5)
      const other = names.filter(id => !cut.includes(id))
      if (cut.length === 0 || other.length === 0) continue
      sim.partition([cut, other])
      expect(sim.runUntilTrue(() => agree(sim, cut) && agree(sim, other), 5000), `seed ${seed}`).toBe(true)
      expect(sim.runUntilTrue(() => masters(sim, cut).length === 1 && masters(sim, other).length === 1, 1000), `seed ${seed}: a master per side`).toBe(true)
      sim.heal()
      expect(sim.runUntilTrue(() => sim.converged() && masters(sim).length === 1, 5000), `seed ${seed}: one after the merge`).toBe(true)
    }
  })
})

describe('static quorum', () => {
  it('quorum 3: masters only while the view holds at least 3 members', () => {
    const sim = new Simulation({ seed: 71, quorum: { splitBrain: 'allow', quorum: 3 } })
    checkInvariants(sim)
    sim.addNode('n01')
    sim.runFor(50)
    sim.addNode('n02', ['n01'])
    expect(sim.runUntilTrue(() => agree(sim, ['n01', 'n02']), 3000)).toBe(true)
    sim.runFor(500)
    expect(masters(sim)).toEqual([])
    expect(sim.nodes.get('n01')?.core.quorumProblem).toBe('below-quorum')
    sim.addNode('n03', ['n01'])
    expect(sim.runUntilTrue(() => masters(sim).length === 1, 3000)).toBe(true)
    expect(masters(sim)).toEqual(['n01'])
    sim.crash('n03')
    expect(sim.runUntilTrue(() => agree(sim, ['n01', 'n02']), 3000)).toBe(true)
    expect(masters(sim)).toEqual([])
  })
})
