/**
 * The membership core under a deterministic simulation: scripted scenarios and randomized
 * fault schedules over many seeds, with safety invariants checked after every step.
 */
import { describe, expect, it } from 'vitest'
import { Simulation } from '../src/testing/simulation.js'
import { checkInvariants } from '../src/testing/invariants.js'
import { seededRandom } from '../src/testing/random.js'

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${String(i + 1).padStart(2, '0')}`)

/** Starts `n` members one after another, each seeded with the first. */
function cluster (sim: Simulation, n: number, gapMs = 50): string[] {
  const names = ids(n)
  sim.addNode(names[0] as string)
  for (const id of names.slice(1)) {
    sim.runFor(gapMs)
    sim.addNode(id, [names[0] as string])
  }
  return names
}

function viewIds (sim: Simulation, id: string): string[] {
  return sim.nodes.get(id)?.core.view?.members.map(m => m.id) ?? []
}

describe('membership core in simulation', () => {
  it('members that join one after another agree on one view, oldest first', () => {
    const sim = new Simulation({ seed: 1 })
    checkInvariants(sim)
    const names = cluster(sim, 5)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    for (const id of names) expect(viewIds(sim, id)).toEqual(names)
    const coordinators = names.filter(id => sim.nodes.get(id)?.core.isCoordinator(sim.now))
    expect(coordinators).toEqual(['n01'])
  })

  it('a joiner never displaces an older member, whatever its id', () => {
    const sim = new Simulation({ seed: 2 })
    checkInvariants(sim)
    sim.addNode('zz')
    sim.runFor(50)
    sim.addNode('aa', ['zz'])
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    expect(viewIds(sim, 'aa')).toEqual(['zz', 'aa'])
  })

  it('a crashed coordinator is replaced by the next-oldest, with a higher epoch', () => {
    const sim = new Simulation({ seed: 3 })
    checkInvariants(sim)
    const names = cluster(sim, 4)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const before = sim.nodes.get('n02')?.core.view?.id.epoch ?? 0
    sim.crash('n01')
    const t0 = sim.now
    expect(sim.runUntilTrue(() => sim.converged(), 3000)).toBe(true)
    // crash detection rides on the connection close plus a refused re-dial: well under a second
    expect(sim.now - t0).toBeLessThan(500)
    expect(viewIds(sim, 'n03')).toEqual(names.slice(1))
    expect(sim.nodes.get('n02')?.core.isCoordinator(sim.now)).toBe(true)
    expect(sim.nodes.get('n02')?.core.view?.id.epoch).toBeGreaterThan(before)
  })

  it('a hung coordinator is excluded by silence, and rejoins as the youngest when it resumes', () => {
    const sim = new Simulation({ seed: 4 })
    checkInvariants(sim)
    cluster(sim, 3)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.hang('n01')
    const t0 = sim.now
    expect(sim.runUntilTrue(() => sim.converged(), 3000)).toBe(true)
    expect(viewIds(sim, 'n02')).toEqual(['n02', 'n03'])
    const detection = sim.now - t0
    expect(detection).toBeGreaterThan(sim.timing.suspectAfterMs)
    expect(detection).toBeLessThan(2 * (sim.timing.suspectAfterMs + sim.timing.verifyTimeoutMs))
    sim.resume('n01')
    // on resume, before anything else, its lease has lapsed
    expect(sim.nodes.get('n01')?.core.isCoordinator(sim.now)).toBe(false)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    expect(viewIds(sim, 'n01')).toEqual(['n02', 'n03', 'n01'])
  })

  it('a graceful leave of the coordinator hands over without waiting for any timeout', () => {
    const sim = new Simulation({ seed: 5 })
    checkInvariants(sim)
    cluster(sim, 3)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.leave('n01')
    const t0 = sim.now
    expect(sim.runUntilTrue(() => sim.nodes.get('n02')?.core.isCoordinator(sim.now) === true, 1000)).toBe(true)
    // two network round trips, far below any failure-detection timeout
    expect(sim.now - t0).toBeLessThan(sim.timing.verifyTimeoutMs)
    expect(sim.nodes.get('n01')?.core.status).toBe('left')
    expect(sim.runUntilTrue(() => sim.converged(), 1000)).toBe(true)
  })

  it('a non-coordinator leaving is removed at once', () => {
    const sim = new Simulation({ seed: 6 })
    checkInvariants(sim)
    cluster(sim, 3)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.leave('n02')
    const t0 = sim.now
    expect(sim.runUntilTrue(() => sim.nodes.get('n02')?.core.status === 'left' && sim.converged(), 1000)).toBe(true)
    expect(sim.now - t0).toBeLessThan(sim.timing.verifyTimeoutMs)
    expect(viewIds(sim, 'n01')).toEqual(['n01', 'n03'])
  })

  it('members started together, each seeded with the others, form one group', () => {
    for (let seed = 10; seed < 30; seed++) {
      const sim = new Simulation({ seed })
      checkInvariants(sim)
      const names = ids(4)
      for (const id of names) sim.addNode(id, names.filter(x => x !== id))
      expect(sim.runUntilTrue(() => sim.converged(), 10_000), `seed ${seed}`).toBe(true)
    }
  })

  it('a lone member whose seeds refuse forms its own group at once', () => {
    const sim = new Simulation({ seed: 7 })
    sim.addNode('a', ['nobody'])
    expect(sim.runUntilTrue(() => sim.nodes.get('a')?.core.isCoordinator(sim.now) === true, 1000)).toBe(true)
    expect(sim.now).toBeLessThan(50)
  })

  it('a restarted member (new incarnation, same id) rejoins as the youngest', () => {
    const sim = new Simulation({ seed: 8 })
    checkInvariants(sim)
    cluster(sim, 3)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.crash('n01')
    sim.runFor(20)
    sim.nodes.delete('n01')
    sim.addNode('n01', ['n02'])
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    expect(viewIds(sim, 'n02')).toEqual(['n02', 'n03', 'n01'])
  })

  it('partitioned sides each elect a coordinator and merge into one view after the heal', () => {
    const sim = new Simulation({ seed: 9 })
    checkInvariants(sim)
    cluster(sim, 5)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const before = sim.nodes.get('n01')?.core.view?.id.epoch ?? 0
    sim.partition([['n01', 'n02', 'n03'], ['n04', 'n05']])
    sim.runFor(3000)
    expect(viewIds(sim, 'n01')).toEqual(['n01', 'n02', 'n03'])
    expect(viewIds(sim, 'n04')).toEqual(['n04', 'n05'])
    sim.heal()
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    // the larger side's coordinator keeps its place; the other side rejoins as youngest
    expect(viewIds(sim, 'n05').slice(0, 3)).toEqual(['n01', 'n02', 'n03'])
    expect(sim.nodes.get('n05')?.core.view?.id.epoch).toBeGreaterThan(before)
  })
})

describe('masters(N) in simulation', () => {
  const acting = (sim: Simulation, n: number): string[] =>
    sim.upNodes().filter(x => { const r = x.core.actingRank(sim.now); return r !== undefined && r < n }).map(x => x.id)

  it('with N = 2 exactly the two oldest act once settled; after kills and leaves, successive coordinators have strictly higher epochs', () => {
    const sim = new Simulation({ seed: 77 })
    checkInvariants(sim)
    cluster(sim, 6)
    expect(sim.runUntilTrue(() => sim.converged() && acting(sim, 2).length === 2, 5000)).toBe(true)
    expect(acting(sim, 2)).toEqual(['n01', 'n02'])
    const grants: Array<{ id: string, epoch: number }> = []
    const record = (): void => {
      const c = sim.upNodes().find(x => x.core.isCoordinator(sim.now))
      if (c !== undefined && grants.at(-1)?.id !== c.id) grants.push({ id: c.id, epoch: c.core.view?.id.epoch ?? 0 })
    }
    record()
    const inner = sim.onStep
    sim.onStep = s => { inner?.(s); record() }
    for (const [fault, id] of [['crash', 'n01'], ['leave', 'n02'], ['hang', 'n03'], ['crash', 'n04']] as const) {
      if (fault === 'crash') sim.crash(id)
      else if (fault === 'leave') sim.leave(id)
      else sim.hang(id)
      expect(sim.runUntilTrue(() => sim.converged() && acting(sim, 2).length === 2, 5000), `${fault} ${id}`).toBe(true)
    }
    expect(grants.map(g => g.id)).toEqual(['n01', 'n02', 'n03', 'n04', 'n05'])
    for (let i = 1; i < grants.length; i++) expect(grants[i]?.epoch).toBeGreaterThan(grants[i - 1]?.epoch ?? 0)
    expect(acting(sim, 2)).toEqual(['n05', 'n06'])
  })
})

describe('membership core under random faults', () => {
  type Fault = 'crash' | 'hang' | 'leave' | 'partition' | 'join'

  function randomRun (seed: number, size: number, lossRate: number): void {
    const rnd = seededRandom(seed * 7919)
    const sim = new Simulation({ seed, lossRate, delayMs: [0.2, 8] })
    checkInvariants(sim)
    let names = cluster(sim, size, 20)
    expect(sim.runUntilTrue(() => sim.converged(), 10_000), `seed ${seed}: initial convergence`).toBe(true)
    let extra = 0
    const hung: string[] = []
    for (let step = 0; step < 8; step++) {
      sim.runFor(100 + rnd() * 1500)
      const up = sim.upNodes().map(n => n.id)
      const faults: Fault[] = ['crash', 'hang', 'leave', 'partition', 'join']
      const fault = faults[Math.floor(rnd() * faults.length)] as Fault
      const victim = up[Math.floor(rnd() * up.length)]
      if (victim === undefined || up.length < 3) break
      switch (fault) {
        case 'crash': sim.crash(victim); break
        case 'hang': sim.hang(victim); hung.push(victim); break
        case 'leave': sim.leave(victim); break
        case 'partition': {
          const cut = up.filter(() => rnd() < 0.4)
          sim.partition([cut, up.filter(id => !cut.includes(id))])
          sim.runFor(200 + rnd() * 2000)
          sim.heal()
          break
        }
        case 'join': {
          const id = `x${++extra}`
          sim.addNode(id, [up[Math.floor(rnd() * up.length)] as string])
          names = [...names, id]
          break
        }
      }
      if (hung.length > 0 && rnd() < 0.5) sim.resume(hung.shift() as string)
    }
    // the faults stop: every hung member resumes, the network heals and stops losing
    for (const id of hung) sim.resume(id)
    sim.heal()
    sim.lossRate = 0
    const ok = sim.runUntilTrue(() => sim.converged(), 15_000)
    if (!ok) {
      const states = [...sim.nodes.values()].map(n => `${n.id}:${n.state}:${n.core.status}:e${n.core.view?.id.epoch}:[${n.core.view?.members.map(m => m.id).join(',')}]`)
      expect.fail(`seed ${seed}: no convergence 15 s after the faults stopped: ${states.join(' ')}`)
    }
    // a member that just resumed renews the coordinator's lease with its next heartbeat
    const one = (): boolean => sim.upNodes().filter(n => n.core.isCoordinator(sim.now)).length === 1
    expect(sim.runUntilTrue(one, 2 * sim.timing.heartbeatIntervalMs + sim.timing.leaseMs), `seed ${seed}: one coordinator`).toBe(true)
  }

  it('5 members, no loss: 40 random schedules', () => {
    for (let seed = 100; seed < 140; seed++) randomRun(seed, 5, 0)
  })

  it('8 members, 2 % message loss: 25 random schedules', () => {
    for (let seed = 200; seed < 225; seed++) randomRun(seed, 8, 0.02)
  })

  it('20 members, 1 % message loss: 5 random schedules', () => {
    for (let seed = 300; seed < 305; seed++) randomRun(seed, 20, 0.01)
  })

  it('with members only joining and crashing, no member coordinates while an older member of its group runs', () => {
    for (let seed = 400; seed < 420; seed++) {
      const sim = new Simulation({ seed })
      checkInvariants(sim)
      const inner = sim.onStep
      sim.onStep = s => {
        inner?.(s)
        for (const x of s.upNodes()) {
          if (!x.core.isCoordinator(s.now)) continue
          for (const y of s.upNodes()) {
            const order = y.core.view?.members.map(m => m.id) ?? []
            const yi = order.indexOf(y.id)
            const xi = order.indexOf(x.id)
            if (y !== x && xi >= 0 && yi >= 0 && yi < xi) {
              throw new Error(`seed ${seed}: ${x.id} coordinates while ${y.id}, older in ${y.id}'s view, runs`)
            }
          }
        }
      }
      const started: string[] = []
      const rnd = seededRandom(seed)
      sim.addNode('m0')
      started.push('m0')
      for (let i = 1; i < 10; i++) {
        sim.runFor(rnd() * 300)
        if (rnd() < 0.25 && sim.upNodes().length > 2) sim.crash(sim.upNodes()[Math.floor(rnd() * sim.upNodes().length)]?.id as string)
        // a static seed list, as deployed: every member started before (some of them dead)
        const id = `m${i}`
        const seeds = [...started]
        started.push(id)
        sim.addNode(id, seeds)
      }
      expect(sim.runUntilTrue(() => sim.converged(), 10_000), `seed ${seed}`).toBe(true)
    }
  })
})
