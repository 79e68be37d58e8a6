/**
 * Split-brain policies: whether a view may have masters at all. Pure functions of the view.
 *
 * Every view carries a *basis*: the memberships a majority is counted against. It is a list of
 * candidates, as in Raft's joint consensus: a view is *quorate* when it holds a strict majority
 * of every candidate. A candidate is either *settled* (the members of a view that was installed
 * and was quorate) or *pending* (the members of a view some member promised but did not see
 * installed: it may have been installed elsewhere, so it must count too).
 *
 * How the basis of a new view is formed: every member keeps its *knowledge*, what the last view
 * it installed passes on (its own members, settled, if it was quorate; else its basis unchanged)
 * plus the views it promised since. Every ack carries the acker's knowledge; the proposer
 * combines them with its own: the newest settled candidate and every candidate at least as new
 * (older ones were superseded by a quorate view that counted them). Members leaving gracefully
 * are taken out (they consented, as in a Raft configuration change; a crashed or cut-off member
 * did not, and keeps counting). Joiners are not in the basis of the view that admits them; they
 * count from the next view on. The basis travels in the view, so every member of a view reaches
 * the same verdict, and a member cut off keeps its knowledge: alone, it founds a group of one
 * that holds no majority of anything it knew.
 *
 * Why two sides never both hold a majority: a view is installed only when every one of its
 * members promised it, so a side of a partition installs only views of members it can reach,
 * and every member of a view reported what it knew. A quorate view holds a majority of the last
 * quorate membership any of its members knew of, and of every membership one of them promised,
 * so two quorate views share a member or one of them counted the other; the shared member moved
 * from one to the other, and before it could, the first side's masters lost their lease (they
 * need its heartbeat echoes): the usual self-demotion.
 */

export type SplitBrainPolicy = 'allow' | 'majority'

export interface QuorumRule {
  /** `allow`: every view may have masters (JGroups). `majority`: only a quorate view. */
  readonly splitBrain: SplitBrainPolicy
  /** A static quorum: masters only while the view has at least this many members. 1: none. */
  readonly quorum: number
}

export const ALLOW_ALL: QuorumRule = Object.freeze({ splitBrain: 'allow', quorum: 1 })

/** Why a view may not have masters. */
export type NoQuorumReason = 'no-majority' | 'below-quorum'

/** A membership a majority is counted against: member ids, the epoch of their view, and whether that view was installed quorate. */
export interface Candidate {
  readonly ids: readonly string[]
  readonly epoch: number
  readonly settled: boolean
}

/** The candidates a view must hold a majority of; empty: none (a founding view). */
export type Basis = readonly Candidate[]

/**
 * The most candidates a basis keeps. In practice a basis holds one or two; a long run of
 * proposals that never settle could grow it, and then the oldest pending ones go first.
 */
export const MAX_CANDIDATES = 16

/** Whether `members` hold a strict majority of `ids` (an empty membership is held by anyone). */
export function holdsMajority (members: readonly string[], ids: readonly string[]): boolean {
  if (ids.length === 0) return true
  const present = new Set(members)
  let count = 0
  for (const id of ids) if (present.has(id)) count++
  return 2 * count > ids.length
}

/** Whether `members` hold a majority of every candidate of `basis`. */
export function isQuorate (members: readonly string[], basis: Basis): boolean {
  return basis.every(c => holdsMajority(members, c.ids))
}

/** Undefined when the view may have masters under `rule`; otherwise why not. */
export function noQuorumReason (rule: QuorumRule, members: readonly string[], basis: Basis): NoQuorumReason | undefined {
  if (rule.splitBrain === 'majority' && !isQuorate(members, basis)) return 'no-majority'
  if (members.length < rule.quorum) return 'below-quorum'
  return undefined
}

/**
 * What a view passes on: its own members, settled, if it is quorate; else its basis unchanged.
 * Independent of any member's policy, so that members with different settings agree on it.
 */
export function passedOn (members: readonly string[], epoch: number, basis: Basis): Basis {
  return isQuorate(members, basis) ? [{ ids: [...members], epoch, settled: true }] : basis
}

/** A pending candidate: a view this member promised and has not seen installed. */
export function pending (members: readonly string[], epoch: number): Candidate {
  return { ids: [...members], epoch, settled: false }
}

/**
 * The union of what several members know: the newest settled candidate and every candidate at
 * least as new; the same membership at the same epoch once (settled if either says so).
 */
export function combine (...bases: Basis[]): Basis {
  const all = bases.flat()
  let newestSettled = 0
  for (const c of all) if (c.settled && c.epoch > newestSettled) newestSettled = c.epoch
  const byKey = new Map<string, Candidate>()
  for (const c of all) {
    if (c.epoch < newestSettled) continue
    const key = `${c.epoch}:${[...c.ids].sort().join(',')}`
    const seen = byKey.get(key)
    if (seen === undefined || (c.settled && !seen.settled)) byKey.set(key, c)
  }
  // Settled first, then the newest pending: the cap drops the oldest pending ones.
  const kept = [...byKey.values()].sort((a, b) => Number(b.settled) - Number(a.settled) || b.epoch - a.epoch)
  return kept.slice(0, MAX_CANDIDATES)
}

/** `basis` without the members that left gracefully. */
export function withoutLeavers (basis: Basis, leftGracefully: ReadonlySet<string>): Basis {
  if (leftGracefully.size === 0) return basis
  return basis.map(c => ({ ...c, ids: c.ids.filter(id => !leftGracefully.has(id)) }))
}
