/**
 * Merging (docs/design.md, "Joining, leaving, rejoining, merging"): how two groups that cannot
 * see each other, the sides of a healed partition or two groups founded at once, become one.
 * Part of the membership core: pure, time passed in; the coordinator does the talking.
 *
 *  - A coordinator greets the members it removed within `rememberRemovedMs`, every
 *    `discoveryIntervalMs`: a healed link carries nothing on its own, and either side seeing a
 *    foreign view starts a merge. (A greeting that must dial gives up soon: see the `probe` flag.)
 *  - When a coordinator meets a disjoint group, the winner (`mergeWinner`: the quorate side, then
 *    the larger, then the lower coordinator id) waits; the loser's coordinator asks the winner to
 *    admit its whole view, whose members join as the youngest (JGroups' merge, with the winning
 *    coordinator keeping its place). A member that is not coordinator passes what it met to its own.
 */
import type { MemberRecord } from './member.js'
import type { View } from './view.js'
import { isQuorate } from './quorum.js'
import type { ViewSummary } from './messages.js'
import type { CoreContext } from './context.js'
import type { ViewAgreement } from './agreement.js'
import { NEVER } from './failure-detector.js'

export interface MergerHost extends CoreContext {
  readonly agreement: ViewAgreement
}

export class Merger {
  /** Members removed from our views, for discovery after a heal. */
  private readonly removed = new Map<string, { record: MemberRecord, at: number }>()
  private lastDiscovery = NEVER
  /** The merge we asked for: the winning group's coordinator, since when, last sent. */
  private merge: { leader: string, at: number, lastSent: number } | undefined

  constructor (private readonly core: MergerHost) {}

  /** A view was installed: its members are no longer "removed"; the previous view's missing ones are. */
  installed (previous: View | undefined, ids: ReadonlySet<string>, now: number): void {
    this.merge = undefined
    for (const m of previous?.members ?? []) {
      if (!ids.has(m.id) && m.id !== this.core.me.id) this.removed.set(m.id, { record: m, at: now })
    }
    for (const id of ids) this.removed.delete(id)
  }

  /** Any merge we asked for is void (we were removed from our group). */
  reset (): void {
    this.merge = undefined
  }

  /** A member met a view disjoint from ours: a merge to negotiate (the coordinator does). */
  onForeign (theirs: ViewSummary, now: number): void {
    const core = this.core
    const view = core.view
    if (view === undefined || core.status !== 'member' || !disjoint(theirs, view)) return
    const leader = theirs.members[0]
    if (leader === undefined) return
    for (const m of theirs.members) core.learn(m)
    if (view.members[0]?.id !== core.me.id) {
      core.send(view.members[0]?.id ?? '', { t: 'foreign', view: theirs }, true)
      return
    }
    if (mergeWinner(core.summary(view), theirs) === 'mine') {
      // Make sure the other coordinator knows of us; it asks to merge in.
      if (core.allow(leader.id, now, core.timing.retryIntervalMs)) core.send(leader.id, core.helloMessage(), false)
    } else if (this.merge === undefined || this.merge.leader !== leader.id) {
      this.merge = { leader: leader.id, at: now, lastSent: now }
      core.agreement.raiseMaxEpoch(theirs.epoch)
      core.send(leader.id, { t: 'merge', view: core.summary(view) }, false)
    }
  }

  /** The coordinator of a group that lost the merge asks us to admit its whole view. */
  onMerge (from: string, theirs: ViewSummary, now: number): void {
    const core = this.core
    const view = core.view
    if (!theirs.members.some(m => m.id === from)) { core.dropped('spoofed-merge'); return }
    if (view === undefined || core.status !== 'member' || view.members[0]?.id !== core.me.id) return
    if (!disjoint(theirs, view) || mergeWinner(core.summary(view), theirs) !== 'mine') return
    // All of it or none: a group admitted in part would leave the rest to found again.
    if (view.members.length + theirs.members.length > core.maxMembers) { core.refuseAtLimit(from, view.members.length, now); return }
    core.agreement.raiseMaxEpoch(theirs.epoch)
    // The other side joins as the youngest: our coordinator keeps its place (JGroups merge).
    core.agreement.admitAll(theirs.members, now)
  }

  /** The coordinator's chores: resend a merge request, greet removed members. */
  tick (now: number): void {
    const core = this.core
    const view = core.view
    if (view === undefined || view.members[0]?.id !== core.me.id || core.status !== 'member') return
    const t = core.timing
    if (this.merge !== undefined) {
      if (now > this.merge.at + 10 * t.retryIntervalMs + t.joinTimeoutMs) {
        this.merge = undefined
      } else if (now >= this.merge.lastSent + t.retryIntervalMs) {
        this.merge.lastSent = now
        core.send(this.merge.leader, { t: 'merge', view: core.summary(view) }, false)
      }
    }
    if (now >= this.lastDiscovery + t.discoveryIntervalMs) {
      this.lastDiscovery = now
      // A healed partition leaves no trace on a silent link: greet removed members again so
      // that either side sees a foreign view and the two groups merge.
      const hello = core.helloMessage()
      for (const [id, r] of this.removed) {
        if (now - r.at > t.rememberRemovedMs) this.removed.delete(id)
        else if (id !== core.me.id) core.emit({ type: 'send', to: id, msg: hello, addrs: core.recordOf(id)?.addrs ?? r.record.addrs, onlyIfConnected: false, probe: true })
      }
    }
  }

  /** Offers the coordinator's deadlines to `at` (see Membership.nextDeadline). */
  deadlines (at: (when: number) => void): void {
    const t = this.core.timing
    if (this.merge !== undefined) {
      at(this.merge.at + 10 * t.retryIntervalMs + t.joinTimeoutMs + 1)
      at(this.merge.lastSent + t.retryIntervalMs)
    }
    if (this.removed.size > 0) at(this.lastDiscovery + t.discoveryIntervalMs)
  }
}

/** Whether no member of `a` is in `b`. */
export function disjoint (a: ViewSummary, b: View): boolean {
  const ids = new Set(b.members.map(m => m.id))
  return a.members.every(m => !ids.has(m.id))
}

/**
 * Which of two disjoint groups absorbs the other after a partition heals: the one that holds a
 * majority of its basis (at most one side can: see quorum.ts), so the majority side's master
 * keeps its place even if the other side grew by joiners meanwhile; then the larger one; on a
 * tie, the one whose coordinator has the lower id. Deterministic, so both coordinators reach
 * the same answer without talking.
 */
export function mergeWinner (mine: ViewSummary, theirs: ViewSummary): 'mine' | 'theirs' {
  const majority = (v: ViewSummary): boolean => isQuorate(v.members.map(m => m.id), v.basis ?? [])
  const mineHolds = majority(mine)
  if (mineHolds !== majority(theirs)) return mineHolds ? 'mine' : 'theirs'
  if (mine.members.length !== theirs.members.length) return mine.members.length > theirs.members.length ? 'mine' : 'theirs'
  const a = mine.members[0]?.id ?? ''
  const b = theirs.members[0]?.id ?? ''
  return a <= b ? 'mine' : 'theirs'
}
