/**
 * The bootstrap rule: when a member that finds no group may found one (docs/design.md,
 * "Bootstrap"). Pure; the joining part of the core (joiner.ts) applies it.
 */
import type { QuorumRule } from './quorum.js'

/**
 * Who may found a new group (docs/design.md, "Bootstrap"):
 *  - `'alone'`: a member that finds no group founds one of its own after discovery (JGroups).
 *  - `'never'`: a member that has never been part of a group only joins one; until it can, it
 *    has no view (and so no masters). Founding alone while cut off from the seeds would make a
 *    group of one that is vacuously quorate (it knows no membership to count against).
 *  - `{ expect: N }`: when N members that know of no group are in contact (this one included),
 *    the lowest id founds; the founding view counts all of them in its basis, so it may have
 *    masters only once a majority of them have joined (Akka's required contact points, Consul's
 *    bootstrap-expect).
 * A member that has been part of a group (it knows a basis, also restored from durable state)
 * may always found: its group counts the memberships it knew and is not quorate alone.
 */
export type Founding = 'alone' | 'never' | { readonly expect: number }

/**
 * The founding rule a member follows (the shell and the simulation both use it): `{ expect }`
 * when asked for; otherwise `'never'` where a view may lack masters for want of quorum
 * (`majority`, or a static quorum above 1), since a group founded alone by a member that knows
 * nothing would be vacuously quorate; `'alone'` under `allow`, where every group has masters.
 */
export function foundingRule (rule: QuorumRule, expect?: number): Founding {
  if (expect !== undefined) return { expect }
  return rule.splitBrain === 'majority' || rule.quorum > 1 ? 'never' : 'alone'
}

/** Throws a RangeError for a rule that is none of the three forms. */
export function validFounding (f: Founding): Founding {
  if (f === 'alone' || f === 'never') return f
  if (typeof f === 'object' && f !== null && Number.isInteger(f.expect) && f.expect >= 1) return f
  throw new RangeError(`founding must be 'alone', 'never' or { expect: N } with an integer N of at least 1, got ${JSON.stringify(f)}`)
}
