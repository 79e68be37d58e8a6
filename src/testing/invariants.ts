/**
 * Safety invariants of the membership protocol, checked after every step of a simulation.
 * Each returns a description of the violation, or undefined.
 */
import type { SimNode, Simulation } from './simulation.js'
import type { View } from '../core/view.js'

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

/** Whether `x`'s view holds `y` as the process it is now (its id and incarnation): a restarted process is not its predecessor. */
function counts (x: SimNode, y: SimNode): boolean {
  const inc = y.core.self.incarnation
  return x.core.view?.members.some(m => m.id === y.id && m.incarnation === inc) === true
}

/**
 * No two running members both believe they are coordinator while either counts the other
 * as a member. (Two coordinators of disjoint groups — a partition under the `allow` policy —
 * are not a violation.)
 */
export function oneCoordinatorPerGroup (sim: Simulation): string | undefined {
  const believers = sim.upNodes().filter(n => n.core.isCoordinator(n.now()))
  for (let i = 0; i < believers.length; i++) {
    for (let j = i + 1; j < believers.length; j++) {
      const x = believers[i]
      const y = believers[j]
      if (x === undefined || y === undefined) continue
      const xHasY = counts(x, y)
      const yHasX = counts(y, x)
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
    const rank = n.core.actingRank(n.now())
    if (rank !== undefined) acting.push({ id: `${n.id}/${n.core.self.incarnation}`, rank, members: new Set(n.core.view?.members.map(m => `${m.id}/${m.incarnation}`)) })
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
    const rank = n.core.actingRank(n.now())
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
    if (!node.core.isCoordinator(node.now())) continue
    if (node.core.view?.members[0]?.id !== node.id) return `${node.id} coordinates a view it does not lead`
  }
  return undefined
}

/** How far each invariant below has looked, per node (they run after every step: incremental). */
const checked = new WeakMap<object, number>()

/**
 * On every member, one epoch names one membership: it never promises one epoch to two
 * memberships, and every view it installs is the membership it promised at that epoch (when it
 * promised one; a view handed on by another member is one all its members promised).
 */
export function oneMembershipPerEpoch (sim: Simulation): string | undefined {
  for (const lives of sim.lives.values()) {
    for (const node of lives) {
      const conflict = node.promiseConflicts[0]
      if (conflict !== undefined) return `${node.id} promised ${conflict}`
      const from = checked.get(node.installs) ?? 0
      for (let i = from; i < node.installs.length; i++) {
        const view = (node.installs[i] as { view: View }).view
        const promised = node.promised.get(view.id.epoch)
        const ids = view.members.map(m => m.id).sort().join(' ')
        if (promised !== undefined && promised !== ids) return `${node.id} promised epoch ${view.id.epoch} to {${promised}} but installed {${ids}}`
      }
      checked.set(node.installs, node.installs.length)
    }
  }
  return undefined
}

/**
 * With durable state, epochs never go back across a restart: a process restarted from what its
 * predecessor under the same id wrote installs only epochs above every one that predecessor
 * installed or promised, whatever the wall clock did meanwhile.
 */
export function epochsGrowAcrossRestarts (sim: Simulation): string | undefined {
  for (const [id, lives] of sim.lives) {
    let highest = 0
    for (const node of lives) {
      if (node.restoredFromState) {
        const first = node.installs[0]?.view.id.epoch
        if (first !== undefined && first <= highest) return `${id} restarted from durable state installed epoch ${first}, not above ${highest} of its earlier run`
      } else {
        highest = 0
      }
      for (const { view } of node.installs) highest = Math.max(highest, view.id.epoch)
      for (const e of node.promised.keys()) highest = Math.max(highest, e)
    }
  }
  return undefined
}

/** The grants seen so far, per simulation: highest epoch and its holder, and the highest of anyone else. */
const grants = new WeakMap<Simulation, { top: number, holder: string, other: number, seen: WeakMap<object, number> }>()

/**
 * Fencing order, under `majority`: each coordinator grant a member reports (the `mastership`
 * its routes see) carries an epoch above that of every earlier grant to another member, so a
 * store that refuses lower tokens refuses every deposed master. (Under `allow` the sides of a
 * partition grant independently; their tokens still differ, see core/fencing.ts.)
 */
export function fencingTokensGrow (sim: Simulation): string | undefined {
  let g = grants.get(sim)
  if (g === undefined) { g = { top: 0, holder: '', other: 0, seen: new WeakMap() }; grants.set(sim, g) }
  for (const lives of sim.lives.values()) {
    for (const node of lives) {
      const from = g.seen.get(node.mastership) ?? 0
      for (let i = from; i < node.mastership.length; i++) {
        const { change } = node.mastership[i] as { change: { isMaster: boolean, epoch: number } }
        if (!change.isMaster) continue
        const e = change.epoch
        const beatenBy = node.id === g.holder ? g.other : g.top
        if (e <= beatenBy) return `${node.id} was granted epoch ${e} after another member's grant at ${beatenBy}`
        if (e > g.top) {
          if (node.id !== g.holder) g.other = g.top
          g.top = e
          g.holder = node.id
        } else if (node.id !== g.holder) g.other = Math.max(g.other, e)
      }
      g.seen.set(node.mastership, node.mastership.length)
    }
  }
  return undefined
}

export const ALL_INVARIANTS = [epochsNeverDecrease, oneCoordinatorPerGroup, atMostNMasters, coordinatorIsOldest, oneMembershipPerEpoch]

/** Under `majority`: the above, plus no two masters anywhere and grants in epoch order. */
export const MAJORITY_INVARIANTS = [...ALL_INVARIANTS, atMostNMastersGlobally, fencingTokensGrow]

/** Installs a step hook that throws on the first violated invariant. */
export function checkInvariants (sim: Simulation, invariants = ALL_INVARIANTS): void {
  sim.onStep = s => {
    for (const inv of invariants) {
      const problem = inv(s)
      if (problem !== undefined) throw new Error(`invariant ${inv.name} broken: ${problem}`)
    }
  }
}
