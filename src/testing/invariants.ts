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

/**
 * Masters(N) for every N at once: no acting member's view holds more than N members that
 * act on a rank below N. This is what the lease guarantees: a master that was paused, or is
 * cut off, stops acting before its successor in the same group starts. A group, here, is
 * the members that count each other as members. (Under the `allow` policy the two sides of
 * a partition each have their own masters, and a member may briefly be counted by both;
 * preventing that is the `majority` policy's job.)
 */
export function atMostNMasters (sim: Simulation): string | undefined {
  const acting: Array<{ id: string, rank: number, members: Set<string> }> = []
  for (const n of sim.upNodes()) {
    const rank = n.core.actingRank(sim.now)
    if (rank !== undefined) acting.push({ id: n.id, rank, members: new Set(n.core.view?.members.map(m => m.id)) })
  }
  // Only a member that acts is a witness: its lease needs echoes from every member of its
  // view, so that view is current. A bystander's view may be stale in a partition.
  for (const x of acting) {
    // ranks compare only within one group: members that count each other as members
    const ranks = acting.filter(y => x.members.has(y.id) && y.members.has(x.id)).map(y => y.rank).sort((a, b) => a - b)
    // more than N ranks below N, for some N, exactly when the i-th smallest rank is below i
    const i = ranks.findIndex((r, k) => r < k)
    if (i >= 0) return `at ${sim.now.toFixed(1)} ms ${x.id}'s group has ${i + 1} members acting on ranks below ${(ranks[i] as number) + 1}: [${ranks.join(', ')}]`
  }
  return undefined
}

/**
 * Under the `majority` policy, for every N at once: no more than N running members in the
 * whole cluster act on a rank below N at the same time, whatever views they hold, across
 * partitions too. (Under `allow` this fails during a partition by design.)
 */
export function atMostNMastersGlobally (sim: Simulation): string | undefined {
  const ranks: Array<{ id: string, rank: number }> = []
  for (const n of sim.upNodes()) {
    const rank = n.core.actingRank(sim.now)
    if (rank !== undefined) ranks.push({ id: n.id, rank })
  }
  ranks.sort((a, b) => a.rank - b.rank)
  const i = ranks.findIndex((r, k) => r.rank < k)
  if (i >= 0) return `at ${sim.now.toFixed(1)} ms ${i + 1} members act on ranks below ${(ranks[i]?.rank ?? 0) + 1}: ${ranks.map(r => `${r.id}@${r.rank}`).join(', ')}`
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

export const ALL_INVARIANTS = [epochsNeverDecrease, oneCoordinatorPerGroup, atMostNMasters, coordinatorIsOldest]

/** Installs a step hook that throws on the first violated invariant. */
export function checkInvariants (sim: Simulation, invariants = ALL_INVARIANTS): void {
  sim.onStep = s => {
    for (const inv of invariants) {
      const problem = inv(s)
      if (problem !== undefined) throw new Error(`invariant ${inv.name} broken: ${problem}`)
    }
  }
}
