/**
 * Views: immutable, numbered member lists. The order defines the coordinator
 * (`members[0]`) and the masters (`members.slice(0, n)`), as in JGroups' View.
 *
 * Invariant: `members` is sorted by age (see member.ts) and ids are unique.
 */
import { sortByAge, type MemberRecord } from './member.js'
import type { Basis } from './quorum.js'

export interface ViewId {
  /** Grows with every view the group installs; also a fencing token. */
  readonly epoch: number
  /** Id of `members[0]`. */
  readonly coordinator: string
}

export interface View {
  readonly id: ViewId
  readonly members: readonly MemberRecord[]
  /**
   * The memberships a majority is counted against under the `majority` split-brain policy
   * (core/quorum.ts): the last quorate membership its members knew of and the views they
   * promised since, minus graceful leavers. Empty for a founding view.
   */
  readonly basis: Basis
}

/** The basis defaults to none: a group's founding view. */
export function makeView (epoch: number, members: readonly MemberRecord[], basis: Basis = []): View {
  const sorted = sortByAge(members)
  const first = sorted[0]
  if (first === undefined) throw new Error('a view needs at least one member')
  return Object.freeze({
    id: Object.freeze({ epoch, coordinator: first.id }),
    members: Object.freeze(sorted),
    basis: Object.freeze(basis.map(c => Object.freeze({ ids: Object.freeze([...c.ids]), epoch: c.epoch, settled: c.settled })))
  })
}

/** The ids of a view's members, in view order. */
export function memberIds (view: View): string[] {
  return view.members.map(m => m.id)
}

export function coordinatorOf (view: View): MemberRecord {
  return view.members[0] as MemberRecord
}

export function mastersOf (view: View, n: number): readonly MemberRecord[] {
  return view.members.slice(0, n)
}

export function hasMember (view: View | undefined, id: string): boolean {
  return view !== undefined && view.members.some(m => m.id === id)
}

export function memberOf (view: View | undefined, id: string): MemberRecord | undefined {
  return view?.members.find(m => m.id === id)
}

/** Same epoch and the same members in the same order. */
export function sameView (a: View | undefined, b: View | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  if (a.id.epoch !== b.id.epoch || a.members.length !== b.members.length) return false
  return a.members.every((m, i) => m.id === b.members[i]?.id)
}

/** Members of `next` that were not in `prev`, and members of `prev` missing from `next`. */
export function diffMembers (prev: View | undefined, next: View): { joined: MemberRecord[], left: MemberRecord[] } {
  const before = new Set(prev?.members.map(m => m.id) ?? [])
  const after = new Set(next.members.map(m => m.id))
  return {
    joined: next.members.filter(m => !before.has(m.id)),
    left: (prev?.members ?? []).filter(m => !after.has(m.id))
  }
}
