/**
 * O(N·K) monitoring in simulation: who heartbeats whom, what it costs, and that failures are
 * still found when the members that watch everyone are the ones that fail.
 */
import { describe, expect, it } from 'vitest'
import { Simulation } from '../src/testing/simulation.js'
import { checkInvariants } from '../src/testing/invariants.js'
import type { ProtocolMessage } from '../src/core/messages.js'

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${String(i + 1).padStart(2, '0')}`)

function cluster (sim: Simulation, n: number, opts: (id: string) => { monitors?: number } = () => ({})): string[] {
  const names = ids(n)
  sim.addNode(names[0] as string, [], opts(names[0] as string))
  for (const id of names.slice(1)) {
    sim.runFor(20)
    sim.addNode(id, [names[0] as string], opts(id))
  }
  return names
}

/** Counts heartbeats by (sender, receiver) from now on. */
function countHeartbeats (sim: Simulation): Map<string, number> {
  const counts = new Map<string, number>()
  sim.onSend = (from: string, to: string, msg: ProtocolMessage) => {
    if (msg.t === 'hb') counts.set(`${from}>${to}`, (counts.get(`${from}>${to}`) ?? 0) + 1)
  }
  return counts
}

function suspicionsDuring (sim: Simulation, ms: number): number {
  let suspicions = 0
  const before = [...sim.nodes.values()].map(n => n.installs.length)
  const probes = countProbes(sim)
  sim.runFor(ms)
  suspicions += probes.n
  const views = [...sim.nodes.values()].reduce((sum, n, i) => sum + n.installs.length - (before[i] ?? 0), 0)
  return suspicions + views
}

function countProbes (sim: Simulation): { n: number } {
  const c = { n: 0 }
  const inner = sim.onSend
  sim.onSend = (from, to, msg) => { inner?.(from, to, msg); if (msg.t === 'probe') c.n++ }
  return c
}

describe('O(N·K) monitoring', () => {
  it('50 members agree; idle, only pairs with a monitor heartbeat, at about one round trip per period', () => {
    const sim = new Simulation({ seed: 51 })
    checkInvariants(sim)
    const names = cluster(sim, 50)
    expect(sim.runUntilTrue(() => sim.converged(), 20_000)).toBe(true)
    sim.runFor(2000)
    const counts = countHeartbeats(sim)
    const windowMs = 10_000
    sim.runFor(windowMs)
    const monitors = new Set(names.slice(0, 2))
    for (const key of counts.keys()) {
      const [from, to] = key.split('>') as [string, string]
      expect(monitors.has(from) || monitors.has(to), `${key} heartbeats, but neither is a monitor`).toBe(true)
    }
    const periods = windowMs / sim.timing.heartbeatIntervalMs
    // Monitored pairs: 49 + 48. Each sends one heartbeat and one reply per period.
    const pairs = 49 + 48
    const total = [...counts.values()].reduce((a, b) => a + b, 0)
    expect(total).toBeGreaterThan(pairs * 2 * periods * 0.9)
    expect(total).toBeLessThan(pairs * 2 * periods * 1.1)
    // All-to-all would have been 50 · 49 heartbeats per period.
    expect(total).toBeLessThan(50 * 49 * periods / 10)
    // A member that is not a monitor sends about one heartbeat per period to each monitor.
    expect(counts.get('n30>n01')).toBeGreaterThan(periods * 0.9)
    expect(counts.get('n30>n01')).toBeLessThan(periods * 1.1)
    expect(counts.get('n30>n31')).toBeUndefined()
  })

  it('an idle member wakes a few times per heartbeat period, not at a fixed tick rate', () => {
    const sim = new Simulation({ seed: 52 })
    cluster(sim, 5)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.runFor(2000)
    const before = [...sim.nodes.values()].map(n => n.timerFires)
    sim.runFor(10_000)
    const perSecond = [...sim.nodes.values()].map((n, i) => (n.timerFires - (before[i] ?? 0)) / 10)
    // A 25 ms tick would be 40 per second; the monitors wake once per period to send, the
    // others only when a heartbeat arrives (their timers keep moving later).
    for (const rate of perSecond) expect(rate).toBeLessThanOrEqual(1000 / sim.timing.heartbeatIntervalMs + 1)
    // The idle cluster stays quiet: no probes, no view changes.
    expect(suspicionsDuring(sim, 5000)).toBe(0)
  })

  it('both monitors hang at once: the next in line finds them silent and takes over', () => {
    const sim = new Simulation({ seed: 53 })
    checkInvariants(sim)
    cluster(sim, 6)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.hang('n01')
    sim.hang('n02')
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    expect(sim.nodes.get('n03')?.core.view?.members.map(m => m.id)).toEqual(['n03', 'n04', 'n05', 'n06'])
    expect(sim.runUntilTrue(() => sim.nodes.get('n03')?.core.isCoordinator(sim.now) === true, 1000)).toBe(true)
  })

  it('the three oldest hang at once with K = 2: the cutoff moves down the view until someone leads', () => {
    const sim = new Simulation({ seed: 54 })
    checkInvariants(sim)
    cluster(sim, 6)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    for (const id of ['n01', 'n02', 'n03']) sim.hang(id)
    expect(sim.runUntilTrue(() => sim.converged(), 8000)).toBe(true)
    expect(sim.nodes.get('n04')?.core.view?.members.map(m => m.id)).toEqual(['n04', 'n05', 'n06'])
  })

  it('a hung member that is not a monitor is excluded by the coordinator', () => {
    const sim = new Simulation({ seed: 55 })
    checkInvariants(sim)
    cluster(sim, 6)
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    sim.hang('n05')
    const t0 = sim.now
    expect(sim.runUntilTrue(() => sim.converged(), 3000)).toBe(true)
    expect(sim.nodes.get('n01')?.core.view?.members.map(m => m.id)).not.toContain('n05')
    expect(sim.now - t0).toBeLessThan(sim.timing.suspectAfterMs + sim.timing.verifyTimeoutMs + 200)
  })

  it('a member with a larger K than the others monitors everyone and may act on its rank', () => {
    const sim = new Simulation({ seed: 56 })
    checkInvariants(sim)
    cluster(sim, 5, id => id === 'n03' ? { monitors: 3 } : {})
    expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
    const n03 = sim.nodes.get('n03')
    expect(sim.runUntilTrue(() => n03?.core.actingRank(sim.now) === 2, 1000)).toBe(true)
    // n04 and n05 answer n03's heartbeats although by their K it is no monitor: no false suspicions
    expect(suspicionsDuring(sim, 5000)).toBe(0)
    expect(n03?.core.actingRank(sim.now)).toBe(2)
    // members that monitor nobody but the monitors cannot act on their rank (no lease)
    expect(sim.nodes.get('n04')?.core.actingRank(sim.now)).toBeUndefined()
  })

  it('at 1 % message loss the coordinator\'s lease holds through a minute of idle: an unanswered heartbeat is resent', () => {
    const sim = new Simulation({ seed: 57 })
    checkInvariants(sim)
    cluster(sim, 20)
    expect(sim.runUntilTrue(() => sim.converged(), 10_000)).toBe(true)
    sim.runFor(1000)
    sim.lossRate = 0.01
    const coordinator = sim.nodes.get('n01')
    let lapses = 0
    let was = true
    const inner = sim.onStep
    sim.onStep = s => {
      inner?.(s)
      const now = coordinator?.core.isCoordinator(s.now) === true
      if (was && !now) lapses++
      was = now
    }
    const views = coordinator?.installs.length
    sim.runFor(60_000)
    expect(lapses).toBe(0)
    expect(coordinator?.installs.length).toBe(views)
  })
})
