/**
 * View agreement (docs/design.md, "Agreement"): the coordinator-driven two-phase install, after
 * JGroups GMS with Paxos-style promises. Part of the membership core: pure, time passed in.
 *
 *   leader ── propose(E, members, ts) ──▶ every member of the next view
 *   leader ◀── ack(E, echo=ts, known) ──── each member (only for E above all it installed or promised)
 *   leader ── commit(E, basis) ──────────▶ members (+ removed members, as a notice)
 *
 * Owns what a member promised and installed (epochs), the memberships a majority is counted
 * against (its knowledge, core/quorum.ts), the changes waiting for the next view (joins, leaves,
 * graceful leavers), and the proposal in flight. An installed view is settled: every member of
 * it promised it before anyone installed it, so any member may hand it on to one that missed
 * the commit.
 */
import { withJoinEpoch, type MemberRecord } from './member.js'
import { hasMember, makeView, memberIds, type View } from './view.js'
import { combine, noQuorumReason, passedOn, pending, withoutLeavers, type Basis, type Candidate, type NoQuorumReason, type QuorumRule } from './quorum.js'
import { EPOCH_RESERVATION, MAX_EPOCH } from './epochs.js'
import type { Effect } from './effects.js'
import type { ProtocolMessage, ViewSummary } from './messages.js'
import type { CoreContext } from './context.js'
import type { FailureDetector } from './failure-detector.js'
import { NEVER } from './failure-detector.js'

/** Promises remembered (see `promises`): far more than the epochs a member promises between two installs. */
const MAX_PROMISES_KEPT = 32

interface Proposal {
  epoch: number
  members: MemberRecord[]
  /** What the proposer and the ackers so far know a majority must be counted against (quorum.ts). */
  basis: Basis
  /** Members leaving gracefully in this change: not counted in the basis. */
  leavers: ReadonlySet<string>
  removed: MemberRecord[]
  acks: Set<string>
  ts: number
  lastSent: number
  retryAt?: number
}

/** What agreement needs of the rest of the core beyond the shared context. */
export interface AgreementHost extends CoreContext {
  readonly detector: FailureDetector
  /** Installs a settled view (the facade updates every part). */
  install: (view: View, now: number) => void
  /** This member is out of the group it was leaving. */
  finishLeave: () => void
  /** A settled view newer than ours, from one of our members. */
  onNewerView: (from: string, theirs: ViewSummary, now: number) => void
  /** Our group removed us while we were a member. */
  excluded: (by: string, theirs: ViewSummary, now: number) => void
  /** A view of another group: a merge to negotiate (merger.ts). */
  foreign: (theirs: ViewSummary, now: number) => void
}

export class ViewAgreement {
  /** Highest epoch this member acked, and who proposed it. */
  promised = 0
  private promisedProposer: string | undefined
  private promisedAt = NEVER
  /** Our rank (index) in the view we promised. */
  private promisedRank = 0
  /**
   * Our recent promises, by epoch: proposer and member ids. A commit from outside our view is
   * installed only if it is one of them (identity: nobody can hand us a view we never agreed).
   */
  private readonly promises = new Map<number, { readonly proposer: string, readonly ids: string }>()
  /** Highest epoch this member ever installed; kept across exclusion, so views never go back. */
  installedEpoch = 0
  /** Highest epoch seen anywhere; new proposals go above it. */
  maxEpoch = 0
  /**
   * What the views this member installed pass on (quorum.ts), kept across exclusion: a member
   * that rejoins or founds a group brings it along, so a cut-off member cannot found a
   * "majority" of one.
   */
  private knownBasis: Basis = []
  /** Views of other proposers we promised and have not seen installed (quorum.ts: pending candidates). */
  private promisedViews: Candidate[] = []
  /** Why the installed view may not have masters, or undefined when it may. */
  noQuorum: NoQuorumReason | undefined
  /** The epoch reserved by the last `persist` (durable state). */
  private reservedEpoch = 0
  /** Bumped whenever knowledge() may have changed; compared with the persisted one. */
  private knowledgeVersion = 0
  private persistedVersion = 0

  readonly pendingJoins = new Map<string, MemberRecord>()
  readonly pendingLeaves = new Set<string>()
  /**
   * Members that proposed a view without themselves (a graceful leave) and may not have seen it
   * installed: they never act again, so they stop counting towards a majority (quorum.ts) even
   * if a view of their survivors forms without their commit.
   */
  private readonly gracefulLeavers = new Set<string>()
  private selfCheck: { inView: MemberRecord | undefined, me: MemberRecord, same: boolean } | undefined
  private proposal: Proposal | undefined
  private lastLeaveSent = NEVER

  constructor (
    private readonly core: AgreementHost,
    private readonly quorumRule: QuorumRule,
    private readonly random: () => number,
    private readonly durable: boolean,
    restored: { readonly maxEpoch: number, readonly basis: Basis } | undefined
  ) {
    if (restored !== undefined) {
      this.maxEpoch = Math.min(MAX_EPOCH, restored.maxEpoch)
      this.reservedEpoch = this.maxEpoch
      this.knownBasis = combine(restored.basis)
    }
  }

  // ─── what we promised ──────────────────────────────────────────────────

  /** Whether a promised view, not yet installed, may rank us lower than the installed one. */
  promisedRankNow (now: number): number | undefined {
    return this.promised > this.installedEpoch && now - this.promisedAt < this.promiseHold() ? this.promisedRank : undefined
  }

  /**
   * How long a promise to another proposer binds us: until the lease that proposer may have
   * built on our ack must have ended.
   */
  private promiseHold (): number {
    return this.core.timing.leaseMs + this.core.timing.verifyTimeoutMs
  }

  /**
   * Whether we acked a view led by someone else that we have not installed. Until the other
   * proposer's lease built on that ack must have ended, we neither lead nor coordinate: its
   * commit may still arrive, and it may already coordinate a view that includes us.
   */
  private promisedElsewhere (now: number): boolean {
    return this.promised > this.installedEpoch && this.promisedRank !== 0 &&
      now - this.promisedAt < this.promiseHold()
  }

  /**
   * Whether we acked another member's proposal, not yet installed, recently enough that its
   * proposer may hold a lease built on that ack (the commit echoes the proposal's time). Until
   * that lease must have ended, we back no other proposer and install no older view: two
   * groups that both count us (a merge racing a merge, say) must not both get leases out of
   * us at once. Our own proposals grant nobody a lease, so they do not count.
   */
  supportPledged (now: number): boolean {
    return this.promised > this.installedEpoch && this.promisedProposer !== undefined && this.promisedProposer !== this.core.me.id &&
      now - this.promisedAt < this.promiseHold()
  }

  /** What a majority must be counted against, as far as we know (quorum.ts). */
  knowledge (): Basis {
    return combine(this.knownBasis, this.promisedViews)
  }

  raiseMaxEpoch (epoch: number): void {
    this.maxEpoch = Math.max(this.maxEpoch, epoch)
  }

  // ─── proposing ─────────────────────────────────────────────────────────

  /** Whether I lead: the coordinator, or the oldest member not judged dead. */
  leads (now: number): boolean {
    const view = this.core.view
    const status = this.core.status
    if (view === undefined || (status !== 'member' && status !== 'leaving')) return false
    if (this.promisedElsewhere(now)) return false
    const self = this.core.me.id
    for (const m of view.members) {
      if (m.id === self) return true
      if (!this.core.detector.isDead(m.id)) return false
    }
    return false
  }

  /** A member we judged dead spoke: withdraw a proposal that would exclude it. */
  revived (peer: string): void {
    if (this.proposal !== undefined && this.proposal.removed.some(m => m.id === peer)) this.proposal = undefined
  }

  /** We judged `peer` dead: re-propose without it if we lead, else report it to our coordinator. */
  dead (peer: string, now: number): void {
    if (this.proposal?.members.some(m => m.id === peer) === true) this.proposal = undefined
    if (!this.proposeIfNeeded(now)) {
      const leader = this.core.view?.members[0]
      if (leader !== undefined && leader.id !== peer && leader.id !== this.core.me.id) {
        this.core.send(leader.id, { t: 'suspect', id: peer }, true)
      }
    }
  }

  /** Starts a proposal if I lead and the next view differs from the installed one. */
  proposeIfNeeded (now: number): boolean {
    if (this.proposal !== undefined || !this.leads(now)) return false
    const view = this.core.view as View
    const me = this.core.me
    const leaving = this.core.status === 'leaving'
    const detector = this.core.detector
    // Runs on every tick of the coordinator: the common case (nothing to change) must not
    // allocate (idle CPU is mostly garbage collection and per-tick work).
    if (this.pendingJoins.size === 0 && this.pendingLeaves.size === 0 && !leaving &&
        !detector.anyDead(view) && this.selfUnchangedIn(view)) return true
    const next = new Map<string, MemberRecord>()
    for (const m of view.members) {
      const gone = detector.isDead(m.id) || this.pendingLeaves.has(m.id) || (m.id === me.id && leaving)
      if (!gone) next.set(m.id, m.id === me.id ? { ...me, joinEpoch: m.joinEpoch } : m)
    }
    let joiners = 0
    for (const j of this.pendingJoins.values()) {
      const existing = next.get(j.id)
      if (existing !== undefined && existing.incarnation >= j.incarnation) continue
      if (existing === undefined && next.size >= this.core.maxMembers) {
        this.pendingJoins.delete(j.id)
        this.core.refuseAtLimit(j.id, view.members.length, now)
        continue
      }
      next.set(j.id, j) // a newer incarnation replaces the old one and rejoins as youngest
      joiners++
    }
    const removedCount = view.members.filter(m => !next.has(m.id)).length
    const selfChanged = next.get(me.id) !== undefined && !this.selfUnchangedIn(view)
    if (joiners === 0 && removedCount === 0 && !selfChanged) return true
    if (next.size === 0) {
      this.core.finishLeave()
      return true
    }
    const epoch = Math.max(this.maxEpoch, this.promised, view.id.epoch) + 1
    if (epoch > MAX_EPOCH) { this.core.dropped('epochs-exhausted'); return true }
    this.maxEpoch = epoch
    const members = [...next.values()].map(m => (m.joinEpoch === 0 || this.pendingJoins.get(m.id) === m) ? withJoinEpoch(m, epoch) : m)
    // Graceful leavers consented to leaving: they stop counting towards a majority (quorum.ts).
    const leavers = new Set([...this.pendingLeaves, ...this.gracefulLeavers])
    if (leaving) leavers.add(me.id)
    const p: Proposal = {
      epoch,
      members,
      basis: this.knowledge(),
      leavers,
      removed: view.members.filter(m => !next.has(m.id)),
      acks: new Set(),
      ts: now,
      lastSent: now
    }
    this.proposal = p
    if (next.has(me.id)) {
      this.promise(epoch, members, me.id, now)
      p.acks.add(me.id)
    }
    this.sendProposal(p, now, false)
    this.maybeCommit(p, now)
    return true
  }

  /** Whether `view` holds our record as it is now (records are immutable: cached by identity). */
  private selfUnchangedIn (view: View): boolean {
    const me = this.core.me
    const inView = view.members.find(m => m.id === me.id)
    const cached = this.selfCheck
    if (cached !== undefined && inView === cached.inView && me === cached.me) return cached.same
    const same = sameRecordContent(inView, me)
    this.selfCheck = { inView, me, same }
    return same
  }

  private sendProposal (p: Proposal, now: number, onlyMissing: boolean): void {
    p.lastSent = now
    const self = this.core.me.id
    for (const m of p.members) {
      if (m.id === self || (onlyMissing && p.acks.has(m.id))) continue
      this.core.send(m.id, { t: 'propose', epoch: p.epoch, members: p.members, ts: p.ts }, false)
    }
  }

  /**
   * A joiner that died after asking to join would block every later view: joiners have no
   * failure detector yet, so one that has not acked within the detection window is dropped
   * (it asks again if it lives). Returns whether any was dropped.
   */
  private dropSilentJoiners (p: Proposal): boolean {
    let dropped = false
    for (const m of p.members) {
      if (!p.acks.has(m.id) && this.pendingJoins.has(m.id)) {
        this.pendingJoins.delete(m.id)
        dropped = true
      }
    }
    return dropped
  }

  onAck (from: string, msg: Extract<ProtocolMessage, { t: 'ack' }>, now: number): void {
    const p = this.proposal
    if (p === undefined || msg.epoch !== p.epoch || !p.members.some(m => m.id === from)) return
    p.acks.add(from)
    // What any member of the next view knows counts in its basis.
    if (msg.known !== undefined) p.basis = combine(p.basis, msg.known)
    this.core.detector.echoed(from, msg.echo)
    this.maybeCommit(p, now)
  }

  private maybeCommit (p: Proposal, now: number): void {
    if (p.members.some(m => !p.acks.has(m.id))) return
    this.proposal = undefined
    const self = this.core.me.id
    const detector = this.core.detector
    // Our own knowledge may have grown since we proposed (a view installed meanwhile).
    const basis = withoutLeavers(combine(p.basis, this.knowledge()), p.leavers)
    const view = makeView(p.epoch, p.members, basis)
    const msg: ProtocolMessage = { t: 'commit', epoch: p.epoch, members: p.members, basis }
    for (const m of p.members) if (m.id !== self) this.core.send(m.id, msg, false)
    for (const m of p.removed) if (m.id !== self) this.core.send(m.id, msg, true)
    for (const m of p.members) {
      // the ack echoed our proposal's timestamp: that renews the lease for new members too
      if (m.id === self) continue
      if (!detector.has(m.id)) detector.track(m.id, now, p.ts)
      else detector.echoed(m.id, p.ts)
    }
    if (view.members.some(m => m.id === self)) {
      this.core.install(view, now)
    } else {
      this.core.finishLeave()
    }
  }

  onNack (from: string, epoch: number, theirs: ViewSummary | undefined, now: number): void {
    const p = this.proposal
    if (p === undefined || !p.members.some(m => m.id === from)) return
    if (theirs !== undefined && !hasMember(this.core.view, from)) {
      // Refused by a member of another group (a merge partner whose group changed since it
      // asked, or a joiner admitted elsewhere), whatever the epoch it names: it refuses for
      // what our proposal says of its group, and its view is not ours to adopt. Forget what we
      // were admitting from that group and negotiate again with the group as it is now.
      this.proposal = undefined
      for (const m of theirs.members) this.pendingJoins.delete(m.id)
      this.maxEpoch = Math.max(this.maxEpoch, epoch)
      this.core.foreign(theirs, now)
      return
    }
    if (epoch < p.epoch) return
    this.maxEpoch = Math.max(this.maxEpoch, epoch)
    const mine = this.core.view?.id.epoch ?? 0
    if (theirs !== undefined && theirs.epoch > mine) {
      // The group moved on without us seeing it: a settled view we missed.
      this.proposal = undefined
      this.core.onNewerView(from, theirs, now)
      return
    }
    // A member behind us refused a proposer it does not know yet: hand it our view first.
    if (theirs !== undefined && theirs.epoch < mine) this.resendCommit(from, now)
    // Someone else proposed a higher epoch: back off with jitter, then retry above it. Two
    // members that judged each other dead both lead; each acker stays pledged to the proposer it
    // acked for `promiseHold` (supportPledged), and retries sooner than that renew the pledges,
    // so the two could lock each other out for good. The oldest retries at once; any other waits
    // out the pledges, so the oldest gets every ack (and its mastership stays where it was).
    if (p.retryAt === undefined) {
      p.retryAt = now + this.core.timing.retryIntervalMs * (0.5 + this.random()) + (this.core.myRank > 0 ? this.promiseHold() : 0)
    }
  }

  // ─── following ─────────────────────────────────────────────────────────

  onPropose (from: string, msg: Extract<ProtocolMessage, { t: 'propose' }>, now: number): void {
    const core = this.core
    if (!msg.members.some(m => core.isMe(m))) { core.dropped('not-in-proposal'); return }
    const installed = this.installedEpoch
    // Follow only our own group: a proposer from our view (the coordinator, or the next in line
    // taking over), or a view our coordinator is joining (a merge it asked for). A proposer from
    // elsewhere — say a side of a healed partition that still counts us — is refused with our
    // view, from which it learns where we are.
    const view = core.view
    const leader = view?.members[0]?.id
    if (view !== undefined && core.status !== 'joining' && !hasMember(view, from) &&
        (leader === undefined || !msg.members.some(m => m.id === leader))) {
      core.send(from, { t: 'nack', epoch: Math.max(installed, this.promised), view: core.summary(view) }, false)
      return
    }
    // A merge proposer is in the view it proposes (only a leaving coordinator proposes one
    // without itself, and it is one of ours); a proposal from outside that leaves its author
    // out is a claim about others that is not its to make.
    if (view !== undefined && core.status !== 'joining' && !hasMember(view, from) && !msg.members.some(m => m.id === from)) {
      core.dropped('stranger-proposal')
      core.send(from, { t: 'nack', epoch: Math.max(installed, this.promised), view: core.summary(view) }, false)
      return
    }
    // Nor may a merge drop a member of ours that we have not judged dead: that member's lease
    // may still be live (only silence longer than the lease removes a member), and promising the
    // merged view would let a successor act beside it. The merge proposer learns our view as it
    // is now and merges it whole.
    if (view !== undefined && core.status !== 'joining' && !hasMember(view, from) &&
        view.members.some(m => !msg.members.some(x => x.id === m.id) && !this.core.detector.isDead(m.id) && !this.leftGracefully(m.id))) {
      core.dropped('merge-drops-member')
      core.send(from, { t: 'nack', epoch: Math.max(installed, this.promised), view: core.summary(view) }, false)
      return
    }
    const duplicate = msg.epoch === this.promised && this.promisedProposer === from
    if (!duplicate && (msg.epoch <= installed || msg.epoch <= this.promised || (this.supportPledged(now) && this.promisedProposer !== from))) {
      core.send(from, { t: 'nack', epoch: Math.max(installed, this.promised), ...(view !== undefined ? { view: core.summary(view) } : {}) }, false)
      return
    }
    this.maxEpoch = Math.max(this.maxEpoch, msg.epoch)
    for (const m of msg.members) core.learn(m)
    // What we knew before this promise: the proposal itself need not count against itself.
    const known = this.knowledge()
    this.promise(msg.epoch, msg.members, from, now)
    if (!msg.members.some(m => m.id === from)) this.gracefulLeavers.add(from)
    core.send(from, { t: 'ack', epoch: msg.epoch, echo: msg.ts, ...(known.length > 0 ? { known } : {}) }, false)
  }

  private promise (epoch: number, members: readonly MemberRecord[], proposer: string, now: number): void {
    this.promised = epoch
    this.promisedAt = now
    this.promisedProposer = proposer
    this.promises.set(epoch, { proposer, ids: idKey(members) })
    if (this.promises.size > MAX_PROMISES_KEPT) this.promises.delete(this.promises.keys().next().value as number)
    const self = this.core.me.id
    this.promisedRank = Math.max(0, makeView(epoch, members).members.findIndex(m => m.id === self))
    // Another proposer may install this view without us hearing of it: it counts (quorum.ts).
    if (proposer !== self) {
      this.promisedViews.push(pending(members.map(m => m.id), epoch))
      this.knowledgeVersion++
    }
  }

  onCommit (from: string, epoch: number, members: readonly MemberRecord[], basis: Basis | undefined, now: number): void {
    const core = this.core
    if (epoch <= this.installedEpoch || (epoch < this.promised && this.supportPledged(now))) return
    if (members.some(m => core.isMe(m))) {
      // A commit is the proposer's word that every member acked: ours too. So it is installed
      // when it is what we promised (to that proposer, or the same members — a resend), or
      // when a member of our own group passes on a view it installed (as a hello would).
      const promised = this.promises.get(epoch)
      const ours = promised !== undefined && (promised.proposer === from || promised.ids === idKey(members))
      if (!ours && !hasMember(core.view, from)) { core.dropped('unpromised-commit'); return }
      this.maxEpoch = Math.max(this.maxEpoch, epoch)
      if (core.status === 'joining' || core.status === 'member' || core.status === 'leaving') {
        core.install(makeView(epoch, members, basis), now)
      }
      return
    }
    if (!hasMember(core.view, from)) { core.dropped('foreign-exclusion'); return }
    this.maxEpoch = Math.max(this.maxEpoch, epoch)
    if (core.status === 'leaving') { core.finishLeave(); return }
    if (core.status === 'member') core.excluded(from, { epoch, members }, now)
  }

  /** Installed views are settled, so any member may hand its view to one that missed it. */
  resendCommit (to: string, now: number): void {
    const view = this.core.view
    if (view === undefined) return
    if (!this.core.allow(`commit:${to}`, now, this.core.timing.retryIntervalMs)) return
    this.core.send(to, { t: 'commit', epoch: view.id.epoch, members: view.members, basis: view.basis }, true)
  }

  // ─── joins and leaves, on the coordinator ──────────────────────────────

  /** A joiner asked to be admitted (directly, or forwarded by a member): we coordinate. */
  admit (record: MemberRecord, now: number): void {
    const view = this.core.view as View
    const current = view.members.find(m => m.id === record.id)
    if (current !== undefined && current.incarnation >= record.incarnation) {
      // Already admitted: it missed the commit.
      this.core.send(record.id, { t: 'commit', epoch: view.id.epoch, members: view.members, basis: view.basis }, false)
      return
    }
    this.pendingJoins.set(record.id, withJoinEpoch(record, 0))
    this.proposeIfNeeded(now)
  }

  /** The whole view of a group that lost a merge joins ours, as the youngest. */
  admitAll (records: readonly MemberRecord[], now: number): void {
    for (const m of records) {
      this.core.learn(m)
      this.pendingJoins.set(m.id, withJoinEpoch(m, 0))
    }
    this.proposeIfNeeded(now)
  }

  onLeave (from: string, now: number): void {
    if (!hasMember(this.core.view, from)) return
    this.pendingLeaves.add(from)
    if (this.proposal?.members.some(m => m.id === from) === true) this.proposal = undefined
    this.proposeIfNeeded(now)
  }

  /** Asks the coordinator to remove us (a graceful leave of a member that does not coordinate). */
  sendLeave (now: number): void {
    const view = this.core.view
    const leader = view?.members[0]
    if (leader === undefined) return
    this.lastLeaveSent = now
    this.core.send(leader.id, { t: 'leave', epoch: view?.id.epoch ?? 0 }, false)
  }

  private resendsLeave (): boolean {
    return this.core.status === 'leaving' && this.proposal === undefined && this.core.view?.members[0]?.id !== this.core.me.id
  }

  // ─── timers ────────────────────────────────────────────────────────────

  /** Proposal retries and drops, leave resends, and any change that is due. */
  tick (now: number): void {
    const t = this.core.timing
    const p = this.proposal
    if (p !== undefined) {
      if (p.retryAt !== undefined) {
        if (now >= p.retryAt) {
          this.proposal = undefined
          this.proposeIfNeeded(now)
        }
      } else if (now >= p.ts + t.suspectAfterMs + t.verifyTimeoutMs && this.dropSilentJoiners(p)) {
        this.proposal = undefined
        this.proposeIfNeeded(now)
      } else if (now >= p.lastSent + t.retryIntervalMs) {
        this.sendProposal(p, now, true)
      }
    }
    if (this.resendsLeave() && now >= this.lastLeaveSent + t.retryIntervalMs) this.sendLeave(now)
    this.proposeIfNeeded(now)
  }

  /** Offers agreement's deadlines to `at` (see Membership.nextDeadline). */
  deadlines (now: number, at: (when: number) => void): void {
    const t = this.core.timing
    const p = this.proposal
    if (p !== undefined) {
      if (p.retryAt !== undefined) at(p.retryAt)
      else {
        at(p.lastSent + t.retryIntervalMs)
        const silentJoiner = p.members.some(m => !p.acks.has(m.id) && this.pendingJoins.has(m.id))
        if (silentJoiner && p.ts + t.suspectAfterMs + t.verifyTimeoutMs > now) at(p.ts + t.suspectAfterMs + t.verifyTimeoutMs)
      }
    }
    if (this.resendsLeave()) at(this.lastLeaveSent + t.retryIntervalMs)
    // A promise to another leader ends: we may lead, and our acting rank may change.
    if (this.promised > this.installedEpoch && this.promisedAt + this.promiseHold() > now) {
      at(this.promisedAt + this.promiseHold())
    }
  }

  // ─── installing ────────────────────────────────────────────────────────

  /** The epochs and knowledge of a view being installed; the facade updates the other parts. */
  installing (view: View): void {
    const inView = memberIds(view)
    this.noQuorum = noQuorumReason(this.quorumRule, inView, view.basis)
    this.knownBasis = combine(this.knownBasis, passedOn(inView, view.id.epoch, view.basis))
    this.promisedViews = this.promisedViews.filter(c => c.epoch > view.id.epoch)
    this.knowledgeVersion++
    this.installedEpoch = view.id.epoch
    this.maxEpoch = Math.max(this.maxEpoch, view.id.epoch)
  }

  /** After the detector dropped the gone: forget changes the view settled. */
  installed (view: View, ids: ReadonlySet<string>): void {
    for (const id of [...this.pendingLeaves]) if (!ids.has(id)) this.pendingLeaves.delete(id)
    // A graceful leaver matters while some candidate still counts it; back in a view, it is not leaving.
    const counted = new Set(this.knowledge().flatMap(c => c.ids))
    for (const id of [...this.gracefulLeavers]) if (ids.has(id) || !counted.has(id)) this.gracefulLeavers.delete(id)
    if (this.proposal !== undefined && this.proposal.epoch <= view.id.epoch) this.proposal = undefined
  }

  /** Whether `id` left gracefully (its removal is no verdict on its health). */
  leftGracefully (id: string): boolean {
    return this.pendingLeaves.has(id) || this.gracefulLeavers.has(id)
  }

  /** We were removed from our group: what we coordinated or waited for is void. */
  reset (): void {
    this.proposal = undefined
    this.pendingJoins.clear()
    this.pendingLeaves.clear()
  }

  /** Forgets the proposal in flight (leaving for good). */
  abandon (): void {
    this.proposal = undefined
  }

  /**
   * With durable state: a `persist` effect, when the highest epoch passed the reservation or the
   * knowledge changed, to go before every other effect of this input (they may rely on it).
   */
  persistence (): Effect | undefined {
    if (!this.durable || (this.maxEpoch <= this.reservedEpoch && this.knowledgeVersion === this.persistedVersion)) return undefined
    if (this.maxEpoch > this.reservedEpoch) this.reservedEpoch = Math.min(MAX_EPOCH, this.maxEpoch + EPOCH_RESERVATION)
    this.persistedVersion = this.knowledgeVersion
    return { type: 'persist', maxEpoch: this.reservedEpoch, basis: this.knowledge() }
  }
}

/** The member ids of a list of records, as one comparable key. */
function idKey (members: readonly MemberRecord[]): string {
  return members.map(m => m.id).sort().join(' ')
}

function sameRecordContent (a: MemberRecord | undefined, b: MemberRecord): boolean {
  if (a === undefined) return false
  return a.name === b.name && a.incarnation === b.incarnation &&
    JSON.stringify(a.addrs) === JSON.stringify(b.addrs) && JSON.stringify(a.meta) === JSON.stringify(b.meta)
}
