/**
 * The membership state machine: pure and synchronous. Time comes in as arguments, messages
 * and connection changes as calls; what to do comes out as `Effect`s that the caller carries
 * out. No I/O, no timers, no randomness of its own (etcd-raft's RawNode shape).
 *
 * This class is the facade: it owns the state the parts share (this member's record and status,
 * the installed view, connections, the address book), dispatches each input to the part it
 * concerns, and orchestrates what spans them (installing a view, being excluded, leaving).
 * The parts, each with its own deadlines:
 *  - failure-detector.ts: health, O(N·K) heartbeats, verification, the lease's echoes;
 *  - agreement.ts: promises, proposals, commits, epochs, what a majority counts (the basis);
 *  - joiner.ts: finding and joining a group, and founding one (founding.ts);
 *  - merger.ts: discovery of removed members and merging groups that meet.
 * Protocol details and failure cases: docs/design.md.
 *
 * Invariants: the installed epoch only grows; a member acts on a rank only in an installed
 * (settled) view, with a live lease, and with no promise outstanding that ranks it lower.
 */
import { withJoinEpoch, type MemberRecord } from './member.js'
import { hasMember, makeView, type View } from './view.js'
import { ALLOW_ALL, type Basis, type NoQuorumReason, type QuorumRule } from './quorum.js'
import { lagThresholdMs, type Timing } from './timing.js'
import type { ProtocolMessage, ViewSummary } from './messages.js'
import type { Effect, MemberStatus } from './effects.js'
import { epochLimit, withinEpochLimit } from './epochs.js'
import { validFounding, type Founding } from './founding.js'
import type { CoreContext } from './context.js'
import { FailureDetector, NEVER } from './failure-detector.js'
import { ViewAgreement } from './agreement.js'
import { Joiner } from './joiner.js'
import { Merger, disjoint } from './merger.js'

export type { Effect, MemberStatus } from './effects.js'
export { foundingRule, type Founding } from './founding.js'
export { EPOCH_WINDOW, MAX_EPOCH, EPOCH_RESERVATION } from './epochs.js'
export { mergeWinner } from './merger.js'

export interface MembershipConfig {
  /** This member's record; `joinEpoch` is ignored (assigned on admission). */
  readonly self: MemberRecord
  readonly timing: Timing
  /** Whether the shell will try seeds. Without seeds, a member forms its own group at once. */
  readonly hasSeeds: boolean
  /** Whether and when a member with seeds may found a group when it finds none (see `Founding`). @default 'alone' */
  readonly founding?: Founding
  /**
   * What this member knew before it started (durable state, state/durable-state.ts): the
   * highest epoch it may have used, and the memberships a majority must be counted against.
   * New epochs go above `maxEpoch`; the basis makes a group it founds count them.
   */
  readonly restored?: { readonly maxEpoch: number, readonly basis: Basis }
  /** Whether the shell keeps durable state: the core then asks for writes (`persist` effects). @default false */
  readonly durable?: boolean
  /** Uniform in [0, 1): used only for back-off jitter. Injected for deterministic tests. */
  readonly random: () => number
  /**
   * The lowest epoch a newly founded group may start at. The shell passes the wall clock in
   * milliseconds, so epochs (fencing tokens) keep growing even across a restart of the whole
   * cluster, as long as a group installs fewer than one view per millisecond on average
   * (durable state keeps them growing whatever the clock does). It is also the reference of
   * the epoch window while this member has installed no view (`EPOCH_WINDOW`).
   * @default () => 0
   */
  readonly epochFloor?: () => number
  /**
   * K, the number of monitors: the first K members of the view not judged dead heartbeat every
   * member, the rest heartbeat only them. A member may act on rank r (coordinator, masters(N))
   * only while it monitors everyone, so K must exceed every rank that acts: masters + 1 keeps
   * the next in line watching too. Members may use different K; each pair heartbeats when
   * either side's K says so. @default 2
   */
  readonly monitors?: number
  /** Split-brain policy and static quorum: when a view may have masters (core/quorum.ts). @default allow, no quorum */
  readonly quorum?: QuorumRule
  /**
   * The largest view this member proposes as coordinator. Every member holds a connection to
   * every other, so the shell passes its connection budget plus one. A joiner or a merging
   * group that would take the view beyond it is not admitted (it keeps waiting, as for an
   * unreachable coordinator) and a `limit` effect says so; nothing in the view is touched.
   * @default no limit
   */
  readonly maxMembers?: number
}

export class Membership implements CoreContext {
  readonly maxMembers: number
  readonly timing: Timing
  private readonly hasSeeds: boolean
  private readonly epochFloor: () => number
  private _me: MemberRecord
  private _status: MemberStatus = 'idle'
  private _view: View | undefined
  /** Our index in the installed view (-1 when not in one). */
  private _myRank = -1
  private out: Effect[] = []
  private readonly _connected = new Set<string>()
  /** Address book: the newest record seen for each id. */
  private readonly known = new Map<string, MemberRecord>()
  /** When we last sent something rate-limited, by key (kind and peer). */
  private readonly lastSentTo = new Map<string, number>()

  readonly detector: FailureDetector
  readonly agreement: ViewAgreement
  readonly joiner: Joiner
  readonly merger: Merger

  constructor (config: MembershipConfig) {
    this.timing = config.timing
    this.maxMembers = config.maxMembers ?? Number.POSITIVE_INFINITY
    if (!(this.maxMembers >= 2)) throw new RangeError(`maxMembers must be at least 2, got ${String(config.maxMembers)}`)
    this.hasSeeds = config.hasSeeds
    this.epochFloor = config.epochFloor ?? (() => 0)
    this._me = withJoinEpoch(config.self, 0)
    this.detector = new FailureDetector(this, positiveInteger(config.monitors ?? 2), {
      dead: (peer, now) => this.agreement.dead(peer, now),
      revived: peer => this.agreement.revived(peer)
    })
    this.agreement = new ViewAgreement(this, config.quorum ?? ALLOW_ALL, config.random, config.durable ?? false, config.restored)
    this.joiner = new Joiner(this, validFounding(config.founding ?? 'alone'), this.epochFloor)
    this.merger = new Merger(this)
  }

  // ─── shared state (CoreContext) ────────────────────────────────────────

  get me (): MemberRecord { return this._me }
  get status (): MemberStatus { return this._status }
  /** The installed (settled) view, or undefined while joining. */
  get view (): View | undefined { return this._view }
  get myRank (): number { return this._myRank }
  get connected (): ReadonlySet<string> { return this._connected }

  send (to: string, msg: ProtocolMessage, onlyIfConnected: boolean): void {
    if (to === this._me.id || to === '') return
    this.out.push({ type: 'send', to, msg, addrs: this.addrsOf(to), onlyIfConnected })
  }

  emit (effect: Effect): void { this.out.push(effect) }

  /** Counts dropped input (an effect among the others of this input; nothing is flushed here). */
  dropped (reason: string): void {
    this.out.push({ type: 'drop', reason })
  }

  learn (m: MemberRecord): void {
    if (m.id === this._me.id) return
    const prev = this.known.get(m.id)
    if (prev === undefined || prev.incarnation <= m.incarnation) this.known.set(m.id, m)
  }

  recordOf (id: string): MemberRecord | undefined { return this.known.get(id) }
  addrsOf (id: string): readonly string[] { return this.known.get(id)?.addrs ?? [] }

  /**
   * Whether a record is this very process: same id and same incarnation. A view that lists our
   * id with an older incarnation lists a previous run of this process, which is gone: we are
   * not in it, and must not install it or promise it.
   */
  isMe (m: MemberRecord): boolean {
    return m.id === this._me.id && m.incarnation === this._me.incarnation
  }

  summary (view: View): ViewSummary {
    return { epoch: view.id.epoch, members: view.members, basis: view.basis }
  }

  /**
   * A member (also one that is leaving) greets with its installed view; a joiner with the group
   * it is joining, so that a joiner whose only contact is another joiner still finds the group.
   */
  helloMessage (): ProtocolMessage {
    const view = this._view
    const summary = view !== undefined && this.active()
      ? this.summary(view)
      : this._status === 'joining' ? this.joiner.joiningView : undefined
    return { t: 'hello', from: this._me, maxEpoch: this.agreement.maxEpoch, ...(summary !== undefined ? { view: summary } : {}) }
  }

  /** Says (at most once a second) that `refused` was not admitted: the view is at `maxMembers`. */
  refuseAtLimit (refused: string, members: number, now: number): void {
    this.dropped('member-limit')
    if (this.allow('member-limit', now, 1000)) this.emit({ type: 'limit', limit: this.maxMembers, members, refused })
  }

  allow (key: string, now: number, intervalMs: number): boolean {
    if (now < (this.lastSentTo.get(key) ?? NEVER) + intervalMs) return false
    this.lastSentTo.set(key, now)
    return true
  }

  setMe (me: MemberRecord): void { this._me = me }

  // ─── what the shell asks ───────────────────────────────────────────────

  get id (): string { return this._me.id }
  get self (): MemberRecord { return this._me }
  /** Highest epoch this member has seen. */
  get highestEpoch (): number { return this.agreement.maxEpoch }
  /** Why the installed view may not have masters under the split-brain policy (undefined: it may). */
  get quorumProblem (): NoQuorumReason | undefined { return this.agreement.noQuorum }
  /** K, the number of monitors (see `MembershipConfig.monitors`). */
  get monitorCount (): number { return this.detector.monitorCount }

  /** Changes K; takes effect at the next tick (a route asking for more masters raises it). */
  setMonitors (k: number): void {
    this.detector.setMonitors(positiveInteger(k))
  }

  /** Coordinator of a settled view, with a live lease and no promise to another leader. */
  isCoordinator (now: number): boolean {
    return this.actingRank(now) === 0
  }

  /**
   * This member's rank in its installed view, if it may act on that rank now: the view is
   * settled, the lease is live, and no outstanding promise ranks it lower (while a promised
   * view is pending, the worse of the two ranks counts). Undefined when it may not act at all.
   * Masters(N) are the members whose acting rank is below N.
   */
  actingRank (now: number): number | undefined {
    const view = this._view
    if (this._status !== 'member' || view === undefined || this.agreement.noQuorum !== undefined) return undefined
    let rank = this._myRank
    if (rank < 0) return undefined
    const promised = this.agreement.promisedRankNow(now)
    if (promised !== undefined) rank = Math.max(rank, promised)
    return now < this.detector.leaseExpiry() ? rank : undefined
  }

  /** When the lease ends (see failure-detector.ts). */
  leaseExpiry (): number { return this.detector.leaseExpiry() }

  /** Whether the member with this id is currently suspected (being verified) or judged dead. */
  isSuspected (id: string): boolean { return this.detector.isSuspected(id) }

  // ─── inputs ────────────────────────────────────────────────────────────

  start (now: number): Effect[] {
    if (this._status !== 'idle') return []
    this._status = 'joining'
    this.joiner.start(now, this.hasSeeds)
    return this.flush()
  }

  /** Begins a graceful leave. A `left` effect follows once the group has a view without us. */
  leave (now: number): Effect[] {
    if (this._status === 'left' || this._status === 'leaving') return []
    const view = this._view
    if (this._status !== 'member' || view === undefined || view.members.length === 1) {
      this.finishLeave()
      return this.flush()
    }
    this._status = 'leaving'
    if (view.members[0]?.id === this._me.id) {
      this.agreement.proposeIfNeeded(now)
    } else {
      this.agreement.sendLeave(now)
    }
    return this.flush()
  }

  /** Updates this member's own record (addresses, metadata). Carried by the next view change. */
  updateSelf (patch: { addrs?: readonly string[], meta?: MemberRecord['meta'] }): void {
    this._me = { ...this._me, ...patch }
  }

  connectedTo (peer: string, now: number): Effect[] {
    if (peer === this._me.id) return []
    this._connected.add(peer)
    this.send(peer, this.helloMessage(), false)
    this.lastSentTo.set(peer, now)
    this.detector.connectedTo(peer, now)
    return this.flush()
  }

  disconnectedFrom (peer: string, now: number): Effect[] {
    this._connected.delete(peer)
    this.joiner.disconnectedFrom(peer)
    this.detector.disconnectedFrom(peer, now, this.active())
    return this.flush()
  }

  dialFailed (peer: string, now: number): Effect[] {
    this.detector.dialFailed(peer, now)
    return this.flush()
  }

  /** The shell tried every seed at least once and none answered. */
  seedsUnreachable (now: number): Effect[] {
    this.joiner.seedsUnreachable(now)
    return this.flush()
  }

  /** A seed of this cluster speaks another wire version: no group is founded next to it. */
  otherVersionSeen (now: number): Effect[] {
    this.joiner.otherVersionSeen(now)
    return this.flush()
  }

  receive (from: string, input: ProtocolMessage, now: number): Effect[] {
    if (this._status === 'idle' || this._status === 'left') { this.dropped('not-running'); return this.flush() }
    // Applied in every state: a joiner's first epoch comes from what it hears (epochs.ts).
    const bounded = withinEpochLimit(input, epochLimit(this.agreement.installedEpoch, this.epochFloor()), this.agreement.installedEpoch)
    if (bounded === undefined) { this.dropped('epoch-out-of-range'); return this.flush() }
    if (bounded.ignored) this.dropped('epoch-claim-ignored')
    const msg = bounded.msg
    this.detector.heard(from, now)
    const agreement = this.agreement
    switch (msg.t) {
      case 'hello': this.onHello(from, msg, now); break
      case 'join': this.onJoin(from, msg.from, msg.maxEpoch, now); break
      case 'merge': this.merger.onMerge(from, msg.view, now); break
      case 'propose': agreement.onPropose(from, msg, now); break
      case 'ack': agreement.onAck(from, msg, now); break
      case 'nack': agreement.onNack(from, msg.epoch, msg.view, now); break
      case 'commit': agreement.onCommit(from, msg.epoch, msg.members, msg.basis, now); break
      case 'leave': agreement.onLeave(from, now); break
      case 'hb': this.onHeartbeat(from, msg, now); break
      case 'probe':
        this.send(from, { t: 'probe-ack', nonce: msg.nonce, epoch: this._view?.id.epoch ?? 0 }, false)
        this.replyNotMember(from, now)
        break
      case 'probe-ack': break // liveness already recorded above
      case 'not-member': this.onNotMember(from, msg.view, now); break
      case 'suspect':
        // A report, not a fact: the leader verifies with its own probe.
        if (agreement.leads(now)) this.detector.onSuspectReport(msg.id, now)
        break
      case 'foreign': this.merger.onForeign(msg.view, now); break
    }
    return this.flush()
  }

  /**
   * Runs the timers. `lateByMs` is how long after its deadline (see `nextDeadline`) the caller's
   * timer fired: a timer much later than asked means this process was paused or its event loop
   * blocked, and messages from others may sit unread, so the failure detector passes no
   * judgement on this tick; `nextDeadline` then asks for another one soon.
   */
  tick (now: number, lateByMs = 0): Effect[] {
    const lagged = lateByMs > lagThresholdMs(this.timing)
    this.detector.lagged = lagged
    switch (this._status) {
      case 'joining': this.joiner.tick(now); break
      case 'member':
      case 'leaving':
        if (this._view === undefined) break
        this.detector.tick(now, lagged)
        this.agreement.tick(now)
        this.merger.tick(now)
        break
      default: break
    }
    return this.flush()
  }

  /**
   * The earliest time after `now` at which `tick` has work to do: the minimum of the parts'
   * deadlines (a heartbeat, a silence or verification deadline, a re-dial, a resend, the end of
   * the lease or of a promise). The shell sleeps until then instead of ticking at a fixed rate:
   * an idle member wakes a few times per heartbeat period, not 40 times a second. Input can only
   * make work due sooner through a state change, so the shell asks again after every input.
   * Work that is due but waits on a condition is looked at again `tickIntervalMs` later.
   * Infinity: nothing is scheduled.
   */
  nextDeadline (now: number): number {
    const t = this.timing
    if (this.detector.lagged) return now + t.tickIntervalMs
    let next = Number.POSITIVE_INFINITY
    const at = (when: number): void => {
      const w = when > now ? when : now + t.tickIntervalMs
      if (w < next) next = w
    }
    if (this._status === 'joining') {
      this.joiner.deadlines(now, at)
      return next
    }
    const view = this._view
    if (view === undefined || !this.active()) return next
    this.detector.deadlines(view, at)
    this.agreement.deadlines(now, at)
    // The lease ends: nothing for the core to do, but the shell tells the application.
    const lease = this.detector.leaseExpiry()
    if (lease > now && lease < Number.POSITIVE_INFINITY) at(lease)
    if (view.members[0]?.id === this._me.id && this._status === 'member') this.merger.deadlines(at)
    return next
  }

  // ─── what spans the parts ──────────────────────────────────────────────

  /** Installs a settled view: every part learns of it, in an order that keeps effects causal. */
  install (view: View, now: number): void {
    const previous = this._view
    const self = view.members.find(m => m.id === this._me.id)
    if (self !== undefined) this._me = { ...this._me, joinEpoch: self.joinEpoch }
    this._view = view
    this._myRank = view.members.findIndex(m => m.id === this._me.id)
    this.agreement.installing(view)
    this.detector.invalidateLease()
    if (this._status === 'joining') this._status = 'member'
    this.joiner.joined()
    const ids = new Set(view.members.map(m => m.id))
    for (const m of view.members) {
      this.learn(m)
      this.agreement.pendingJoins.delete(m.id)
    }
    this.detector.trackView(view, now)
    this.detector.untrackGone(ids, id => this.agreement.leftGracefully(id))
    this.agreement.installed(view, ids)
    this.merger.installed(previous, ids, now)
    this.out.push({ type: 'install', view, previous })
    // New members need our timestamps to echo (the lease), and everyone learns the epoch.
    this.detector.heartbeatPlanned(now)
    // Tell connected processes outside the view who we are now: a joiner whose only contact
    // was joining too learns of the group, and another group learns of a merge partner.
    for (const peer of this._connected) if (!ids.has(peer)) this.send(peer, this.helloMessage(), true)
  }

  foreign (theirs: ViewSummary, now: number): void {
    const view = this._view
    if (view !== undefined && disjoint(theirs, view)) this.merger.onForeign(theirs, now)
  }

  finishLeave (): void {
    this._status = 'left'
    this.agreement.abandon()
    this.out.push({ type: 'left' })
  }

  /** A settled view newer than ours, from one of our members: adopt it, or learn we were excluded. */
  onNewerView (from: string, theirs: ViewSummary, now: number): void {
    if (!this.active()) return
    const a = this.agreement
    if (theirs.epoch <= a.installedEpoch || (theirs.epoch < a.promised && a.supportPledged(now))) return
    if (theirs.members.some(m => this.isMe(m))) {
      this.install(makeView(theirs.epoch, theirs.members, theirs.basis), now)
    } else if (this._status === 'leaving') {
      this.finishLeave()
    } else if (this.outnumbers(theirs)) {
      // Their view leaves us out, but more of our view remains without them than their view
      // holds: they cut themselves off (a member that could not receive excluded everyone
      // before we excluded it). Rejoining them would move the group to the smaller side, one
      // member at a time. We exclude them instead, and the merge of the two groups (the larger
      // side's coordinator stays) brings them back, as after any partition.
      for (const m of theirs.members) this.detector.seceded(m.id, now)
    } else {
      this.excluded(from, theirs, now)
    }
  }

  /** Whether the members of our view outside `theirs` (we among them) are more than `theirs` holds. */
  private outnumbers (theirs: ViewSummary): boolean {
    const view = this._view
    if (view === undefined) return false
    const theirIds = new Set(theirs.members.map(m => m.id))
    return view.members.filter(m => !theirIds.has(m.id)).length > theirIds.size
  }

  /** We were removed from the group (false suspicion, or a pause): rejoin as the youngest. */
  excluded (by: string, theirs: ViewSummary, now: number): void {
    const previous = this._view
    this.out.push({ type: 'excluded', by, previous })
    // Members of our old view that the group's view lacks are gone too, and those that went
    // silent on us may be across a cut (their connections would hold our join behind TCP's
    // backed-off retransmissions): drop those connections; the rejoin dials afresh. The same
    // holds for the member that told us and for the group's coordinator, even though we hear
    // them: they excluded us because they did not hear us (a one-way cut), so what we send on
    // the old connection may wait for TCP's next backed-off retransmission.
    const silent = new Set(this.detector.silent(now))
    const deaf = new Set([by, theirs.members[0]?.id])
    for (const m of previous?.members ?? []) {
      if (m.id === this._me.id) continue
      const gone = !theirs.members.some(t => t.id === m.id) && !this.agreement.pendingLeaves.has(m.id)
      if (gone || silent.has(m.id) || deaf.has(m.id)) this.out.push({ type: 'hangup', peer: m.id })
    }
    this._view = undefined
    this._myRank = -1
    this._status = 'joining'
    this._me = withJoinEpoch(this._me, 0)
    this.detector.forgetAll()
    this.agreement.reset()
    this.merger.reset()
    this.joiner.rejoin(by, theirs, now)
  }

  private onHello (from: string, msg: Extract<ProtocolMessage, { t: 'hello' }>, now: number): void {
    if (msg.from.id !== from) { this.dropped('spoofed-hello'); return }
    const current = this._view?.members.find(m => m.id === from)
    // The process restarted under the same id: the incarnation in our view is gone.
    if (current !== undefined && msg.from.incarnation > current.incarnation) this.detector.supersede(from, now)
    this.learn(msg.from)
    this.agreement.raiseMaxEpoch(msg.maxEpoch)
    const theirs = msg.view
    if (this._status === 'joining') {
      this.joiner.onHello(from, theirs, now)
      return
    }
    if (this._status === 'member' && theirs === undefined && !hasMember(this._view, from)) {
      // A joiner that knows of no group yet: tell it of ours (rate-limited; it greets again
      // until it has heard of a group).
      if (this.allow(`greet:${from}`, now, this.timing.retryIntervalMs)) this.send(from, this.helloMessage(), true)
      return
    }
    if (this._status !== 'member' || theirs === undefined) return
    const view = this._view as View
    if (theirs.epoch > view.id.epoch && hasMember(view, from)) { this.onNewerView(from, theirs, now); return }
    if (disjoint(theirs, view)) this.merger.onForeign(theirs, now)
  }

  private onJoin (from: string, record: MemberRecord, maxEpoch: number, now: number): void {
    // The joiner speaks for itself; a member may forward a joiner's request.
    if (record.id !== from && !hasMember(this._view, from)) { this.dropped('spoofed-join'); return }
    const view = this._view
    if (view === undefined || this._status !== 'member') return
    this.agreement.raiseMaxEpoch(maxEpoch)
    this.learn(record)
    if (view.members[0]?.id !== this._me.id) {
      const leader = view.members[0]
      if (leader !== undefined && from === record.id) this.send(leader.id, { t: 'join', from: record, maxEpoch }, true)
      return
    }
    this.agreement.admit(record, now)
  }

  private onHeartbeat (from: string, msg: Extract<ProtocolMessage, { t: 'hb' }>, now: number): void {
    if (!this.detector.onHeartbeat(from, msg, now)) {
      this.agreement.raiseMaxEpoch(msg.epoch)
      if (this._status === 'joining' && msg.epoch > this.agreement.installedEpoch) {
        // Only members get heartbeats: we were admitted and lost the commit. Our older epoch
        // in reply makes the sender resend it. (A reply, so that nobody answers it.)
        if (msg.reply !== true) this.send(from, { t: 'hb', epoch: this.agreement.installedEpoch, ts: now, echo: NEVER, reply: true }, true)
      } else {
        this.replyNotMember(from, now)
      }
      return
    }
    // A member still on an older view lost a commit: installed views are settled, so resend ours.
    if (this._view !== undefined && msg.epoch < this._view.id.epoch) this.agreement.resendCommit(from, now)
  }

  private onNotMember (from: string, theirs: ViewSummary, now: number): void {
    const view = this._view
    if (view === undefined) return
    if (theirs.epoch < view.id.epoch && hasMember(view, from)) {
      // One of our members never installed our view: it lost the commit.
      this.agreement.resendCommit(from, now)
      return
    }
    if (theirs.epoch <= view.id.epoch) return
    if (!theirs.members.some(m => m.id === from) || theirs.members.some(m => this.isMe(m))) return
    // Only our own group can tell us we were left out of it. Another group (the other side of
    // a healed partition, whose notices may arrive late) is a merge to negotiate, not a verdict.
    if (!hasMember(view, from)) {
      if (disjoint(theirs, view)) this.merger.onForeign(theirs, now)
      return
    }
    this.onNewerView(from, theirs, now)
  }

  private replyNotMember (to: string, now: number): void {
    const view = this._view
    if (view === undefined || this._status !== 'member' || hasMember(view, to)) return
    if (!this.allow(`nm:${to}`, now, this.timing.retryIntervalMs)) return
    this.send(to, { t: 'not-member', view: this.summary(view) }, true)
  }

  private active (): boolean {
    return this._status === 'member' || this._status === 'leaving'
  }

  private flush (): Effect[] {
    const out = this.out
    this.out = []
    const persist = this.agreement.persistence()
    if (persist !== undefined) out.unshift(persist)
    return out
  }
}

function positiveInteger (k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`monitors must be an integer of at least 1, got ${k}`)
  return k
}
