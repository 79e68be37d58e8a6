/**
 * Safety invariants of the membership protocol, checked after every step of a simulation.
 * Each returns a description of the violation, or undefined.
 */
import type { Simulation } from './simulation.js'

/** Per-node installed epochs only grow (also across exclusion and rejoin). */
export function epochsNeverDecrease (sim: Simulation): string | undefined {
  for (const node of sim.nodes.values()) {
    for (let i = 1; i < node.installs.length; i++) {
      const a = node.installs[i - 1]?.view.id.epoch ?? 0
      const b = node.installs[i]?.view.id.epoch ?? 0
      if (b <= a) return `${node.id} installed epoch ${b} after ${a}`
    }
  }
  return undefined
}

/**
 * No two running members both believe they are coordinator while either counts the other
 * as a member. (Two coordinators of disjoint groups — a partition under the `allow` policy —
 * are not a violation.)
 */
export function oneCoordinatorPerGroup (sim: Simulation): string | undefined {
  const believers = sim.upNodes().filter(n => n.core.isCoordinator(sim.now))
  for (let i = 0; i < believers.length; i++) {
    for (let j = i + 1; j < believers.length; j++) {
      const x = believers[i]
      const y = believers[j]
      if (x === undefined || y === undefined) continue
      const xHasY = x.core.view?.members.some(m => m.id === y.id) === true
      const yHasX = y.core.view?.members.some(m => m.id === x.id) === true
      if (xHasY || yHasX) {
        return `at ${sim.now.toFixed(1)} ms both ${x.id} (epoch ${x.core.view?.id.epoch}) and ${y.id} (epoch ${y.core.view?.id.epoch}) believe they coordinate`
      }
    }
  }
  return undefined
}

/** A coordinator is the oldest member of its own installed view. */
export function coordinatorIsOldest (sim: Simulation): string | undefined {
  for (const node of sim.upNodes()) {
    if (!node.core.isCoordinator(sim.now)) continue
    if (node.core.view?.members[0]?.id !== node.id) return `${node.id} coordinates a view it does not lead`
  }
  return undefined
}

export const ALL_INVARIANTS = [epochsNeverDecrease, oneCoordinatorPerGroup, coordinatorIsOldest]

/** Installs a step hook that throws on the first violated invariant. */
export function checkInvariants (sim: Simulation, invariants = ALL_INVARIANTS): void {
  sim.onStep = s => {
    for (const inv of invariants) {
      const problem = inv(s)
      if (problem !== undefined) throw new Error(`invariant ${inv.name} broken: ${problem}`)
    }
  }
}
