/**
 * The membership state machine: pure and synchronous. Time comes in as arguments, messages
 * and connection changes as calls; what to do comes out as `Effect`s that the caller carries
 * out. No I/O, no timers, no randomness of its own (etcd-raft's RawNode shape).
 *
 * Protocol (details and failure cases in docs/design.md):
 *  - Views are installed by a coordinator-driven two-phase protocol. The proposer sends
 *    `propose(E)` to every member of the next view; a member acks only an epoch above every
 *    epoch it installed or promised; when all have acked, the proposer sends `commit(E)` and
 *    everyone installs. An installed view is therefore settled: all its members promised it.
 *  - The proposer is the coordinator (`members[0]`), or, when every older member is dead in
 *    its own judgement, the oldest live member (JGroups' takeover by the next in line).
 *  - Failure detection: a closed connection is verified by a re-dial (fast for a crash); silence
 *    is verified by a probe (for a hang). Receipt of anything from a member refutes suspicion.
 *  - Monitoring is O(N·K), not all-to-all: the first K members of the view not judged dead (the
 *    monitors: the masters and the next in line) exchange heartbeats with everyone, the others
 *    only with the monitors. On each monitored pair the older member sends a heartbeat every
 *    period and the younger answers each at once, so one round trip renews the lease.
 *  - The coordinator holds a lease renewed by heartbeat echoes from every other member; it
 *    ends before any member can exclude it (timing.ts), so a paused coordinator knows on resume
 *    that it is no longer coordinator before it does anything.
 *
 * Invariants: the installed epoch only grows; a member acts as coordinator only on an
 * installed (settled) view, with no promise outstanding to a view led by someone else.
 */
import { withJoinEpoch, type MemberRecord } from './member.js'
import { hasMember, makeView, memberIds, type View } from './view.js'
import { ALLOW_ALL, combine, isQuorate, noQuorumReason, passedOn, pending, withoutLeavers, type Basis, type Candidate, type NoQuorumReason, type QuorumRule } from './quorum.js'
import { lagThresholdMs, type Timing } from './timing.js'
import type { ProtocolMessage, ViewSummary } from './messages.js'

export type MemberStatus = 'idle' | 'joining' | 'member' | 'leaving' | 'left'

export type Effect =
  /**
   * `probe`: a discovery greeting to a member removed earlier, which may be across a
   * partition: if it needs a new connection, the dial gives up soon (its SYN is lost while the
   * partition lasts) so that the next greeting, half a second later, dials afresh, and a healed
   * link is found within about that, not after TCP's backed-off SYN retries.
   */
  | { readonly type: 'send', readonly to: string, readonly msg: ProtocolMessage, readonly addrs: readonly string[], readonly onlyIfConnected: boolean, readonly probe?: true }
  | { readonly type: 'dial', readonly peer: string, readonly addrs: readonly string[] }
  | { readonly type: 'install', readonly view: View, readonly previous: View | undefined }
  | { readonly type: 'excluded', readonly by: string, readonly previous: View | undefined }
  | { readonly type: 'suspect', readonly peer: string, readonly reason: 'silence' | 'disconnect' }
  | { readonly type: 'refuted', readonly peer: string }
  | { readonly type: 'dead', readonly peer: string }
  /**
   * Close the connection to `peer`, a member removed without leaving (judged dead). A connection across a partition
   * survives it, with its queued frames stuck behind TCP's backed-off retransmissions for
   * seconds after the heal; a fresh connection (the discovery greeting dials one) gets
   * through at once.
   */
  | { readonly type: 'hangup', readonly peer: string }
  | { readonly type: 'left' }
  | { readonly type: 'drop', readonly reason: string }
  /**
   * This member found no group to join and its founding rule does not let it found one now
   * (`MembershipConfig.founding`): it keeps looking. `joiners`: members in contact that know of no
   * group either. Emitted when either changes.
   */
  | { readonly type: 'waiting', readonly reason: 'may-not-found' | 'expecting', readonly joiners: number, readonly expect: number | undefined }
  /**
   * Store this durably before carrying out the effects after it (only with `durable`): no
   * epoch this member uses or promises exceeds `maxEpoch`, and `basis` is what it knows a
   * majority must be counted against. Always the first effect of its batch.
   */
  | { readonly type: 'persist', readonly maxEpoch: number, readonly basis: Basis }

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
}

interface Health {
  lastHeard: number
  /** Newest `ts` this member sent us; echoed back in our heartbeats. */
  lastTs: number
  /** Newest of our own timestamps this member echoed: the lease base. */
  echo: number
  verify?: { kind: 'probe' | 'redial', since: number }
  /** When we last sent this member a heartbeat (or a reply to one). */
  lastSent: number
  /** Whether we monitor this member: it is a monitor, or we are (see `monitorCutoff`). */
  planned: boolean
  dead: boolean
  /** The same id started again (a newer incarnation): this one is dead for good. */
  superseded: boolean
  lastDial: number
}

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

const NEVER = Number.NEGATIVE_INFINITY
/**
 * How far above our own reference a peer may name an epoch, in every state: the reference is
 * our installed epoch, or our epoch floor (the wall clock) when that is higher, as it is for a
 * member that has installed nothing yet. Epochs only grow, and every proposal goes above the
 * highest seen: one unchecked claim near 2^53 would leave no epoch to propose (and past 2^53,
 * `epoch + 1` no longer changes the number). Two groups that merge are never 2^31 views apart,
 * and a group's epochs start at its founder's wall clock, so a joiner refuses a real group only
 * if that founder's clock ran more than 2^31 ms (24 days) ahead of its own.
 */
export const EPOCH_WINDOW = 2 ** 31
/**
 * No epoch above this is accepted or proposed, whatever the window says: far below 2^53, where
 * integer arithmetic ends, yet centuries of views above today's wall clock in milliseconds.
 * A member that keeps pushing the window up view after view (only a member can) stops here.
 */
export const MAX_EPOCH = 2 ** 50
/**
 * How far above the highest epoch seen a `persist` reserves: new epochs up to the reservation
 * need no write, so a member writes once per this many views, not at every one.
 */
export const EPOCH_RESERVATION = 1024
/** Promises remembered (see `promises`): far more than the epochs a member promises between two installs. */
const MAX_PROMISES_KEPT = 32

export class Membership {
  private readonly timing: Timing
  private readonly random: () => number
  private readonly hasSeeds: boolean
  private readonly founding: Founding
  private readonly epochFloor: () => number
  private monitors: number
  private readonly quorumRule: QuorumRule
  /**
   * What the views this member installed pass on (quorum.ts), kept across exclusion: a member
   * that rejoins or founds a group brings it along, so a cut-off member cannot found a
   * "majority" of one.
   */
  private knownBasis: Basis = []
  /** Views of other proposers we promised and have not seen installed (quorum.ts: pending candidates). */
  private promisedViews: Candidate[] = []
  /** Why the installed view may not have masters, or undefined when it may. */
  private noQuorum: NoQuorumReason | undefined
  private me: MemberRecord
  private _status: MemberStatus = 'idle'
  private _view: View | undefined
  private out: Effect[] = []

  /** Highest epoch this member acked, and who proposed it. */
  private promised = 0
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
  private installedEpoch = 0
  /** Highest epoch seen anywhere; new proposals go above it. */
  private maxEpoch = 0

  private readonly health = new Map<string, Health>()
  private leaseCache: number | undefined
  /** Our index in the installed view (-1 when not in one). */
  private myRank = -1
  private readonly connected = new Set<string>()
  /** Address book: the newest record seen for each id. */
  private readonly known = new Map<string, MemberRecord>()
  private readonly pendingJoins = new Map<string, MemberRecord>()
  private readonly pendingLeaves = new Set<string>()
  /**
   * Members that proposed a view without themselves (a graceful leave) and may not have seen it
   * installed: they never act again, so they stop counting towards a majority (quorum.ts) even
   * if a view of their survivors forms without their commit.
   */
  private gracefulLeavers = new Set<string>()
  private selfCheck: { inView: MemberRecord | undefined, me: MemberRecord, same: boolean } | undefined
  private proposal: Proposal | undefined

  // joining
  private startedAt = 0
  private learned: { view: ViewSummary, via: string, at: number } | undefined
  private lastJoinSent = NEVER
  private lastGreeting = NEVER
  private joinAttempt = 0
  private seedsExhausted = false
  private readonly joiningPeers = new Set<string>()

  // coordinator chores
  private readonly removed = new Map<string, { record: MemberRecord, at: number }>()
  private lastDiscovery = NEVER
  private merge: { leader: string, at: number, lastSent: number } | undefined
  /** Rate limits for replies, by kind and peer. */
  private readonly lastHelloTo = new Map<string, number>()

  // member chores
  /** Set by a tick that came late (a pause): the next tick must follow soon. */
  private lagged = false
  private lastLeaveSent = NEVER
  private nonce = 0
  /** The last `waiting` effect, so that it is emitted once per change. */
  private lastWaiting: string | undefined
  private readonly durable: boolean
  /** The epoch reserved by the last `persist` (durable state). */
  private reservedEpoch = 0
  /** Bumped whenever knowledge() may have changed; compared with the persisted one. */
  private knowledgeVersion = 0
  private persistedVersion = 0

  constructor (config: MembershipConfig) {
    this.timing = config.timing
    this.random = config.random
    this.hasSeeds = config.hasSeeds
    this.founding = validFounding(config.founding ?? 'alone')
    this.epochFloor = config.epochFloor ?? (() => 0)
    this.durable = config.durable ?? false
    if (config.restored !== undefined) {
      this.maxEpoch = Math.min(MAX_EPOCH, config.restored.maxEpoch)
      this.reservedEpoch = this.maxEpoch
      this.knownBasis = combine(config.restored.basis)
    }
    this.monitors = positiveInteger(config.monitors ?? 2)
    this.quorumRule = config.quorum ?? ALLOW_ALL
    this.me = withJoinEpoch(config.self, 0)
  }

  get id (): string { return this.me.id }
  get status (): MemberStatus { return this._status }
  /** The installed (settled) view, or undefined while joining. */
  get view (): View | undefined { return this._view }
  get self (): MemberRecord { return this.me }
  /** Highest epoch this member has seen. */
  get highestEpoch (): number { return this.maxEpoch }

  /** Why the installed view may not have masters under the split-brain policy (undefined: it may). */
  get quorumProblem (): NoQuorumReason | undefined { return this.noQuorum }

  /** K, the number of monitors (see `MembershipConfig.monitors`). */
  get monitorCount (): number { return this.monitors }

  /** Changes K; takes effect at the next tick (a route asking for more masters raises it). */
  setMonitors (k: number): void {
    this.monitors = positiveInteger(k)
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
    if (this._status !== 'member' || view === undefined || this.noQuorum !== undefined) return undefined
    let rank = this.myRank
    if (rank < 0) return undefined
    if (this.promised > this.installedEpoch && now - this.promisedAt < this.timing.leaseMs + this.timing.verifyTimeoutMs) {
      rank = Math.max(rank, this.promisedRank)
    }
    return now < this.leaseExpiry() ? rank : undefined
  }

  /**
   * Whether we acked a view led by someone else that we have not installed. Until the other
   * proposer's lease built on that ack must have ended, we neither lead nor coordinate: its
   * commit may still arrive, and it may already coordinate a view that includes us.
   */
  private promisedElsewhere (now: number): boolean {
    return this.promised > this.installedEpoch && this.promisedRank !== 0 &&
      now - this.promisedAt < this.timing.leaseMs + this.timing.verifyTimeoutMs
  }

  /**
   * Whether we acked another member's proposal, not yet installed, recently enough that its
   * proposer may hold a lease built on that ack (the commit echoes the proposal's time). Until
   * that lease must have ended, we back no other proposer and install no older view: two
   * groups that both count us (a merge racing a merge, say) must not both get leases out of
   * us at once. Our own proposals grant nobody a lease, so they do not count.
   */
  private supportPledged (now: number): boolean {
    return this.promised > this.installedEpoch && this.promisedProposer !== undefined && this.promisedProposer !== this.me.id &&
      now - this.promisedAt < this.timing.leaseMs + this.timing.verifyTimeoutMs
  }

  /**
   * When the lease ends: the oldest echo among the other members, plus leaseMs. Cached (the
   * per-item stream filter asks on every item); any echo or view change clears the cache.
   */
  leaseExpiry (): number {
    if (this.leaseCache !== undefined) return this.leaseCache
    const view = this._view
    if (view === undefined) return NEVER
    let expiry = Number.POSITIVE_INFINITY
    for (const m of view.members) {
      if (m.id === this.me.id) continue
      const h = this.health.get(m.id)
      expiry = Math.min(expiry, (h?.echo ?? NEVER) + this.timing.leaseMs)
    }
    this.leaseCache = expiry
    return expiry
  }

  private setEcho (h: Health, echo: number): void {
    if (echo > h.echo) {
      h.echo = echo
      this.leaseCache = undefined
    }
  }

  /** Whether the member with this id is currently suspected (being verified) or judged dead. */
  isSuspected (id: string): boolean {
    const h = this.health.get(id)
    return h !== undefined && (h.dead || h.verify !== undefined)
  }

  // ─── inputs ──────────────────────────────────────────────────────────────

  start (now: number): Effect[] {
    if (this._status !== 'idle') return []
    this._status = 'joining'
    this.startedAt = now
    if (!this.hasSeeds) this.formSingleton(now, [])
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
    if (view.members[0]?.id === this.me.id) {
      this.proposeIfNeeded(now)
    } else {
      this.sendLeave(now)
    }
    return this.flush()
  }

  /** Updates this member's own record (addresses, metadata). Carried by the next view change. */
  updateSelf (patch: { addrs?: readonly string[], meta?: MemberRecord['meta'] }): void {
    this.me = { ...this.me, ...patch }
  }

  connectedTo (peer: string, now: number): Effect[] {
    if (peer === this.me.id) return []
    this.connected.add(peer)
    this.sendRaw(peer, this.helloMessage(), false)
    this.lastHelloTo.set(peer, now)
    const h = this.health.get(peer)
    if (h !== undefined && this._view !== undefined) {
      this.heardFrom(peer, h, now)
      // Start the echo exchange now: the lease needs it, and the install-time heartbeat was
      // dropped if this connection did not exist yet.
      this.heartbeat(peer, h, this._view.id.epoch, now)
    }
    return this.flush()
  }

  disconnectedFrom (peer: string, now: number): Effect[] {
    this.connected.delete(peer)
    this.joiningPeers.delete(peer)
    const h = this.health.get(peer)
    if (h !== undefined && !h.dead && this.active()) this.startVerify(peer, h, 'redial', now)
    return this.flush()
  }

  dialFailed (peer: string, now: number): Effect[] {
    const h = this.health.get(peer)
    if (h?.verify?.kind === 'redial' && !this.connected.has(peer)) this.declareDead(peer, now)
    return this.flush()
  }

  /** The highest epoch accepted from the network now (see EPOCH_WINDOW and MAX_EPOCH). */
  private epochLimit (): number {
    return Math.min(MAX_EPOCH, Math.max(this.installedEpoch, this.epochFloor()) + EPOCH_WINDOW)
  }

  /**
   * A message whose epochs lie within the window; a `maxEpoch` claim beyond it is ignored (its
   * sender may still join), anything else is refused. Applied in every state: a joiner's first
   * epoch comes from what it hears.
   */
  private withinEpochWindow (msg: ProtocolMessage): ProtocolMessage | undefined {
    const limit = this.epochLimit()
    if ('epoch' in msg && msg.epoch > limit) return undefined
    if ('view' in msg && msg.view !== undefined && msg.view.epoch > limit) return undefined
    if ('maxEpoch' in msg && msg.maxEpoch > limit) {
      this.out.push({ type: 'drop', reason: 'epoch-claim-ignored' })
      return { ...msg, maxEpoch: this.installedEpoch }
    }
    return msg
  }

  /** The shell tried every seed at least once and none answered. */
  seedsUnreachable (now: number): Effect[] {
    this.seedsExhausted = true
    this.tickJoining(now)
    return this.flush()
  }

  receive (from: string, input: ProtocolMessage, now: number): Effect[] {
    if (this._status === 'idle' || this._status === 'left') { this.dropped('not-running'); return this.flush() }
    const msg = this.withinEpochWindow(input)
    if (msg === undefined) { this.dropped('epoch-out-of-range'); return this.flush() }
    const h = this.health.get(from)
    if (h !== undefined) this.heardFrom(from, h, now)
    switch (msg.t) {
      case 'hello': this.onHello(from, msg, now); break
      case 'join': this.onJoin(from, msg.from, msg.maxEpoch, now); break
      case 'merge': this.onMerge(from, msg.view, now); break
      case 'propose': this.onPropose(from, msg, now); break
      case 'ack': this.onAck(from, msg, now); break
      case 'nack': this.onNack(from, msg.epoch, msg.view, now); break
      case 'commit': this.onCommit(from, msg.epoch, msg.members, msg.basis, now); break
      case 'leave': this.onLeave(from, now); break
      case 'hb': this.onHeartbeat(from, msg, now); break
      case 'probe':
        this.sendRaw(from, { t: 'probe-ack', nonce: msg.nonce, epoch: this._view?.id.epoch ?? 0 }, false)
        this.replyNotMember(from, now)
        break
      case 'probe-ack': break // liveness already recorded above
      case 'not-member': this.onNotMember(from, msg.view, now); break
      case 'suspect': this.onSuspectReport(msg.id, now); break
      case 'foreign': this.onForeign(msg.view, now); break
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
    this.lagged = lagged
    switch (this._status) {
      case 'joining': this.tickJoining(now); break
      case 'member':
      case 'leaving': this.tickMember(now, lagged); break
      default: break
    }
    return this.flush()
  }

  // ─── joining ─────────────────────────────────────────────────────────────

  private tickJoining (now: number): void {
    if (this._status !== 'joining') return
    const t = this.timing
    if (this.learned !== undefined) {
      // A group we learned of that never admits us is forgotten, so we cannot wait forever.
      if (now > this.learned.at + 5 * t.joinTimeoutMs) {
        this.learned = undefined
        this.startedAt = now
      } else {
        if (now >= this.lastJoinSent + t.retryIntervalMs) this.sendJoin(now)
        return
      }
    }
    // Greet our contacts again: a member answers a joiner's greeting with its view, so a lost
    // first greeting does not leave us to found a group of our own next to the real one.
    if (now >= this.lastGreeting + t.retryIntervalMs) {
      this.lastGreeting = now
      for (const peer of this.connected) this.sendRaw(peer, this.helloMessage(), true)
    }
    this.maybeFound(now)
  }

  /**
   * Founds a group when no group was found and the founding rule allows it (see `Founding`).
   * JGroups' rule for a cold start: among joiners that know of no group, the lowest id founds
   * it and the others join; a hard deadline stops a silent lower id from blocking us.
   */
  private maybeFound (now: number): void {
    if (this._status !== 'joining' || this.learned !== undefined) return
    const t = this.timing
    const lowerJoiner = [...this.joiningPeers].some(p => p < this.me.id)
    const discoveryOver = this.seedsExhausted || now >= this.startedAt + t.joinTimeoutMs
    const founding = this.founding
    if (this.mayFoundAlone()) {
      if ((discoveryOver && !lowerJoiner) || now >= this.startedAt + 3 * t.joinTimeoutMs) this.formSingleton(now, [])
      return
    }
    if (typeof founding !== 'object') {
      if (discoveryOver) this.waiting('may-not-found', undefined)
      return
    }
    // { expect: N }: found with N in contact, counting them all, or keep waiting for them.
    if (this.joiningPeers.size + 1 >= founding.expect && !lowerJoiner) {
      this.formSingleton(now, [pending([this.me.id, ...this.joiningPeers].sort(), 0)])
    } else if (discoveryOver) {
      this.waiting('expecting', founding.expect)
    }
  }

  /** Whether this member founds a group of its own once discovery is over (see `Founding`). */
  private mayFoundAlone (): boolean {
    return this.founding === 'alone' || this.knowledge().length > 0
  }

  private waiting (reason: 'may-not-found' | 'expecting', expect: number | undefined): void {
    const key = `${reason}:${this.joiningPeers.size}`
    if (key === this.lastWaiting) return
    this.lastWaiting = key
    this.out.push({ type: 'waiting', reason, joiners: this.joiningPeers.size, expect })
  }

  /** `contacts`: the founders' candidate under `{ expect }` (its epoch becomes the view's). */
  private formSingleton (now: number, contacts: Basis): void {
    const epoch = Math.max(this.maxEpoch + 1, this.promised + 1, this.installedEpoch + 1, Math.floor(this.epochFloor()))
    if (epoch > MAX_EPOCH) { this.dropped('epochs-exhausted'); return }
    this.maxEpoch = epoch
    this.me = withJoinEpoch(this.me, epoch)
    // A member that was part of a group keeps counting against that group's majority: cut
    // off, it founds a group of one that holds no majority of anything it knew.
    this.install(makeView(epoch, [this.me], combine(this.knowledge(), contacts.map(c => ({ ...c, epoch })))), now)
  }

  private sendJoin (now: number): void {
    const learned = this.learned
    if (learned === undefined) return
    const msg: ProtocolMessage = { t: 'join', from: this.me, maxEpoch: this.maxEpoch }
    // Try the coordinator, then the member that told us of the group, then every other member
    // in turn (members forward to their coordinator): the coordinator we know of may be dead.
    const order = [learned.view.members[0]?.id, learned.via, ...learned.view.members.slice(1).map(m => m.id)]
      .filter((id, i, all): id is string => id !== undefined && id !== this.me.id && all.indexOf(id) === i)
    const target = order[this.joinAttempt % Math.max(1, order.length)]
    this.joinAttempt++
    if (target === undefined) return
    this.sendRaw(target, msg, false)
    this.lastJoinSent = now
  }

  // ─── member timers ───────────────────────────────────────────────────────

  private tickMember (now: number, lagged: boolean): void {
    const view = this._view
    if (view === undefined) return
    const t = this.timing
    const cutoff = this.monitorCutoff(view)
    const members = view.members
    const round = this.heartbeatRound(view, now)
    for (let i = 0; i < members.length; i++) {
      const m = members[i] as MemberRecord
      if (m.id === this.me.id) continue
      const h = this.health.get(m.id)
      if (h === undefined || h.dead) continue
      this.plan(h, i, cutoff, now)
      if (!this.connected.has(m.id) && h.verify === undefined && this.dials(i) && now >= h.lastDial + t.retryIntervalMs) {
        h.lastDial = now
        this.out.push({ type: 'dial', peer: m.id, addrs: m.addrs })
      }
      // In a round, heartbeats that would be due within half a period leave now too: one wake-up
      // per period, not one per member whose schedule drifted (a connect, a reply).
      const due = round && i > this.myRank ? h.lastSent + t.heartbeatIntervalMs / 2 : this.heartbeatDue(h, i)
      if (h.planned && now >= due) this.heartbeat(m.id, h, view.id.epoch, now)
      // After a pause, messages from others may sit unread: judge on the next tick.
      if (lagged) continue
      if (h.verify !== undefined) {
        if (now >= this.verifyDeadline(h.verify)) this.declareDead(m.id, now)
      } else if (h.planned && now >= h.lastHeard + t.suspectAfterMs) {
        this.startVerify(m.id, h, 'probe', now)
      }
    }
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
    this.tickCoordinatorChores(now)
  }

  private resendsLeave (): boolean {
    return this._status === 'leaving' && this.proposal === undefined && this._view?.members[0]?.id !== this.me.id
  }

  /**
   * The earliest time after `now` at which `tick` has work to do: a heartbeat, a silence or
   * verification deadline, a re-dial, a resend, the end of the lease or of a promise. The shell
   * sleeps until then instead of ticking at a fixed rate: an idle member wakes a few times per
   * heartbeat period, not 40 times a second. Input can only make work due sooner through a
   * state change, so the shell asks again after every input. Work that is due but waits on a
   * condition is looked at again `tickIntervalMs` later. Infinity: nothing is scheduled.
   */
  nextDeadline (now: number): number {
    const t = this.timing
    if (this.lagged) return now + t.tickIntervalMs
    let next = Number.POSITIVE_INFINITY
    const at = (when: number): void => {
      const w = when > now ? when : now + t.tickIntervalMs
      if (w < next) next = w
    }
    if (this._status === 'joining') {
      if (this.learned !== undefined) {
        at(this.learned.at + 5 * t.joinTimeoutMs + 1)
        at(this.lastJoinSent + t.retryIntervalMs)
      } else {
        const lowerJoiner = [...this.joiningPeers].some(p => p < this.me.id)
        if (this.connected.size > 0) at(this.lastGreeting + t.retryIntervalMs)
        if (this.mayFoundAlone()) {
          if (!this.seedsExhausted && !lowerJoiner) at(this.startedAt + t.joinTimeoutMs)
          at(this.startedAt + 3 * t.joinTimeoutMs)
        } else if (!this.seedsExhausted && this.startedAt + t.joinTimeoutMs > now) {
          // Only to say that we wait (a `waiting` effect): founding waits for input, not time.
          at(this.startedAt + t.joinTimeoutMs)
        }
      }
      return next
    }
    const view = this._view
    if (view === undefined || !this.active()) return next
    const members = view.members
    for (let i = 0; i < members.length; i++) {
      const id = (members[i] as MemberRecord).id
      if (id === this.me.id) continue
      const h = this.health.get(id)
      if (h === undefined || h.dead) continue
      if (!this.connected.has(id) && h.verify === undefined && this.dials(i)) at(h.lastDial + t.retryIntervalMs)
      if (h.verify !== undefined) at(this.verifyDeadline(h.verify))
      if (!h.planned) continue
      at(this.heartbeatDue(h, i))
      if (h.verify === undefined) at(h.lastHeard + t.suspectAfterMs)
    }
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
    if (this.promised > this.installedEpoch && this.promisedAt + t.leaseMs + t.verifyTimeoutMs > now) {
      at(this.promisedAt + t.leaseMs + t.verifyTimeoutMs)
    }
    // The lease ends: nothing for the core to do, but the shell tells the application.
    const lease = this.leaseExpiry()
    if (lease > now && lease < Number.POSITIVE_INFINITY) at(lease)
    if (members[0]?.id === this.me.id && this._status === 'member') {
      if (this.merge !== undefined) {
        at(this.merge.at + 10 * t.retryIntervalMs + t.joinTimeoutMs + 1)
        at(this.merge.lastSent + t.retryIntervalMs)
      }
      if (this.removed.size > 0) at(this.lastDiscovery + t.discoveryIntervalMs)
    }
    return next
  }

  /**
   * Whether we keep up the connection to the member at view index `index`: the younger side of
   * a pair dials, the older waits (trap 5: someone must dial, and only one side should). A
   * joiner connects to everyone (a few at a time, see transport/dial-slots.ts); if all of them
   * dialled it back at once, it would face 49 handshakes as the admitting view lands. Dials to
   * verify a closed connection, and sends, go either way.
   */
  private dials (index: number): boolean {
    return index < this.myRank
  }

  /** Whether a heartbeat to some younger member we monitor is due now. */
  private heartbeatRound (view: View, now: number): boolean {
    for (let i = this.myRank + 1; i < view.members.length; i++) {
      const h = this.health.get((view.members[i] as MemberRecord).id)
      if (h !== undefined && !h.dead && h.planned && now >= h.lastSent + this.timing.heartbeatIntervalMs) return true
    }
    return false
  }

  /** Heartbeats every member we monitor now, whatever their schedule (a new view, say). */
  private heartbeatPlanned (now: number): void {
    const view = this._view
    if (view === undefined) return
    const cutoff = this.monitorCutoff(view)
    for (let i = 0; i < view.members.length; i++) {
      const m = view.members[i] as MemberRecord
      if (m.id === this.me.id) continue
      const h = this.health.get(m.id)
      if (h === undefined || h.dead) continue
      this.plan(h, i, cutoff, now)
      if (h.planned) this.heartbeat(m.id, h, view.id.epoch, now)
    }
  }

  private heartbeat (peer: string, h: Health, epoch: number, now: number): void {
    h.lastSent = now
    this.sendRaw(peer, { t: 'hb', epoch, ts: now, echo: h.lastTs }, true)
  }

  /**
   * The view index of the K-th member not judged dead (we count ourselves as live): members up
   * to it are the monitors. Judging an older member dead moves the cutoff down the view, so the
   * next in line starts monitoring everyone before it has to take over.
   */
  private monitorCutoff (view: View): number {
    const members = view.members
    let live = 0
    for (let i = 0; i < members.length; i++) {
      const id = (members[i] as MemberRecord).id
      if (id !== this.me.id && this.health.get(id)?.dead === true) continue
      if (++live >= this.monitors) return i
    }
    return members.length - 1
  }

  /**
   * Whether we monitor the member at view index `index`: it is a monitor, or we are. A member
   * we start monitoring gets a fresh silence baseline: we never expected to hear from it before.
   */
  private plan (h: Health, index: number, cutoff: number, now: number): void {
    const planned = this.myRank <= cutoff || index <= cutoff
    if (planned && !h.planned) h.lastHeard = Math.max(h.lastHeard, now)
    h.planned = planned
  }

  /**
   * When we next heartbeat a monitored member: every period if it is younger than us, and half a
   * period after a heartbeat it has not answered yet (heartbeats are datagrams: a lost one or a
   * lost reply would otherwise cost the lease a whole period of its margin). If it is older, it
   * is the one that sends, and we send only when it has gone quiet for 1.5 periods (its K may be
   * smaller than ours, or a heartbeat was lost), so the pair never goes silent while both live.
   */
  private heartbeatDue (h: Health, index: number): number {
    const period = this.timing.heartbeatIntervalMs
    if (index > this.myRank) return h.lastSent + (h.echo >= h.lastSent ? period : period / 2)
    return Math.max(h.lastSent + period, h.lastHeard + 1.5 * period)
  }

  private verifyDeadline (verify: NonNullable<Health['verify']>): number {
    return verify.since + (verify.kind === 'probe' ? this.timing.verifyTimeoutMs : this.timing.redialTimeoutMs)
  }

  private tickCoordinatorChores (now: number): void {
    const view = this._view
    if (view === undefined || view.members[0]?.id !== this.me.id || this._status !== 'member') return
    const t = this.timing
    if (this.merge !== undefined) {
      if (now > this.merge.at + 10 * t.retryIntervalMs + t.joinTimeoutMs) {
        this.merge = undefined
      } else if (now >= this.merge.lastSent + t.retryIntervalMs) {
        this.merge.lastSent = now
        this.sendRaw(this.merge.leader, { t: 'merge', view: this.summary(view) }, false)
      }
    }
    if (now >= this.lastDiscovery + t.discoveryIntervalMs) {
      this.lastDiscovery = now
      // A healed partition leaves no trace on a silent link: greet removed members again so
      // that either side sees a foreign view and the two groups merge.
      const hello = this.helloMessage()
      for (const [id, r] of this.removed) {
        if (now - r.at > t.rememberRemovedMs) this.removed.delete(id)
        else if (id !== this.me.id) this.out.push({ type: 'send', to: id, msg: hello, addrs: this.known.get(id)?.addrs ?? r.record.addrs, onlyIfConnected: false, probe: true })
      }
    }
  }

  // ─── failure detection ───────────────────────────────────────────────────

  private heardFrom (peer: string, h: Health, now: number): void {
    if (h.superseded) return // messages now come from the new incarnation
    h.lastHeard = now
    if (h.verify !== undefined || h.dead) {
      h.verify = undefined
      if (h.dead) {
        h.dead = false
        // A member we judged dead spoke: withdraw a proposal that would exclude it.
        if (this.proposal !== undefined && this.proposal.removed.some(m => m.id === peer)) this.proposal = undefined
      }
      this.out.push({ type: 'refuted', peer })
    }
  }

  private startVerify (peer: string, h: Health, kind: 'probe' | 'redial', now: number): void {
    if (h.verify !== undefined) return
    h.verify = { kind, since: now }
    this.out.push({ type: 'suspect', peer, reason: kind === 'probe' ? 'silence' : 'disconnect' })
    const record = this.known.get(peer)
    if (kind === 'probe') {
      this.sendRaw(peer, { t: 'probe', nonce: ++this.nonce }, false)
    } else {
      h.lastDial = now
      this.out.push({ type: 'dial', peer, addrs: record?.addrs ?? [] })
    }
  }

  private declareDead (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h === undefined || h.dead) return
    h.dead = true
    h.verify = undefined
    this.out.push({ type: 'dead', peer })
    // Our own verdict, leader or not: a connection that carried nothing for the whole detection
    // window may be one across a cut whose queued frames wait behind TCP's backed-off
    // retransmissions; what we send next (a report, a join, a reply after the heal) must go on a
    // fresh one. Not for a superseded incarnation: its id's connection is the new process's.
    if (!h.superseded) this.out.push({ type: 'hangup', peer })
    if (this.proposal?.members.some(m => m.id === peer) === true) this.proposal = undefined
    if (!this.proposeIfNeeded(now)) {
      const leader = this._view?.members[0]
      if (leader !== undefined && leader.id !== peer && leader.id !== this.me.id) {
        this.sendRaw(leader.id, { t: 'suspect', id: peer }, true)
      }
    }
  }

  private onSuspectReport (peer: string, now: number): void {
    // A report, not a fact: the coordinator verifies with its own probe.
    const h = this.health.get(peer)
    if (h === undefined || h.dead || h.verify !== undefined || !this.leads(now)) return
    this.startVerify(peer, h, 'probe', now)
  }

  // ─── proposing ───────────────────────────────────────────────────────────

  /** Whether I lead: the coordinator, or the oldest member not judged dead. */
  private leads (now: number): boolean {
    const view = this._view
    if (view === undefined || (this._status !== 'member' && this._status !== 'leaving')) return false
    if (this.promisedElsewhere(now)) return false
    for (const m of view.members) {
      if (m.id === this.me.id) return true
      if (this.health.get(m.id)?.dead !== true) return false
    }
    return false
  }

  /** Starts a proposal if I lead and the next view differs from the installed one. */
  private proposeIfNeeded (now: number): boolean {
    if (this.proposal !== undefined || !this.leads(now)) return false
    const view = this._view as View
    // Runs on every tick of the coordinator: the common case (nothing to change) must not
    // allocate (idle CPU is mostly garbage collection and per-tick work).
    if (this.pendingJoins.size === 0 && this.pendingLeaves.size === 0 && this._status !== 'leaving' &&
        !view.members.some(m => this.health.get(m.id)?.dead === true) && this.selfUnchangedIn(view)) return true
    const next = new Map<string, MemberRecord>()
    for (const m of view.members) {
      const gone = this.health.get(m.id)?.dead === true || this.pendingLeaves.has(m.id) ||
        (m.id === this.me.id && this._status === 'leaving')
      if (!gone) next.set(m.id, m.id === this.me.id ? { ...this.me, joinEpoch: m.joinEpoch } : m)
    }
    let joiners = 0
    for (const j of this.pendingJoins.values()) {
      const existing = next.get(j.id)
      if (existing !== undefined && existing.incarnation >= j.incarnation) continue
      next.set(j.id, j) // a newer incarnation replaces the old one and rejoins as youngest
      joiners++
    }
    const removedCount = view.members.filter(m => !next.has(m.id)).length
    const selfChanged = next.get(this.me.id) !== undefined && !this.selfUnchangedIn(view)
    if (joiners === 0 && removedCount === 0 && !selfChanged) return true
    if (next.size === 0) {
      this.finishLeave()
      return true
    }
    const epoch = Math.max(this.maxEpoch, this.promised, view.id.epoch) + 1
    if (epoch > MAX_EPOCH) { this.dropped('epochs-exhausted'); return true }
    this.maxEpoch = epoch
    const members = [...next.values()].map(m => (m.joinEpoch === 0 || this.pendingJoins.get(m.id) === m) ? withJoinEpoch(m, epoch) : m)
    // Graceful leavers consented to leaving: they stop counting towards a majority (quorum.ts).
    const leavers = new Set([...this.pendingLeaves, ...this.gracefulLeavers])
    if (this._status === 'leaving') leavers.add(this.me.id)
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
    if (next.has(this.me.id)) {
      this.promise(epoch, members, this.me.id, now)
      p.acks.add(this.me.id)
    }
    this.sendProposal(p, now, false)
    this.maybeCommit(p, now)
    return true
  }

  /** Whether `view` holds our record as it is now (records are immutable: cached by identity). */
  private selfUnchangedIn (view: View): boolean {
    const inView = view.members.find(m => m.id === this.me.id)
    const cached = this.selfCheck
    if (cached !== undefined && inView === cached.inView && this.me === cached.me) return cached.same
    const same = sameRecordContent(inView, this.me)
    this.selfCheck = { inView, me: this.me, same }
    return same
  }

  private sendProposal (p: Proposal, now: number, onlyMissing: boolean): void {
    p.lastSent = now
    for (const m of p.members) {
      if (m.id === this.me.id || (onlyMissing && p.acks.has(m.id))) continue
      this.sendRaw(m.id, { t: 'propose', epoch: p.epoch, members: p.members, ts: p.ts }, false)
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

  private onAck (from: string, msg: Extract<ProtocolMessage, { t: 'ack' }>, now: number): void {
    const p = this.proposal
    if (p === undefined || msg.epoch !== p.epoch || !p.members.some(m => m.id === from)) return
    p.acks.add(from)
    // What any member of the next view knows counts in its basis.
    if (msg.known !== undefined) p.basis = combine(p.basis, msg.known)
    const h = this.health.get(from)
    if (h !== undefined) this.setEcho(h, msg.echo)
    this.maybeCommit(p, now)
  }

  private maybeCommit (p: Proposal, now: number): void {
    if (p.members.some(m => !p.acks.has(m.id))) return
    this.proposal = undefined
    // Our own knowledge may have grown since we proposed (a view installed meanwhile).
    const basis = withoutLeavers(combine(p.basis, this.knowledge()), p.leavers)
    const view = makeView(p.epoch, p.members, basis)
    const msg: ProtocolMessage = { t: 'commit', epoch: p.epoch, members: p.members, basis }
    for (const m of p.members) if (m.id !== this.me.id) this.sendRaw(m.id, msg, false)
    for (const m of p.removed) if (m.id !== this.me.id) this.sendRaw(m.id, msg, true)
    for (const m of p.members) {
      // the ack echoed our proposal's timestamp: that renews the lease for new members too
      const h = this.health.get(m.id)
      if (h === undefined && m.id !== this.me.id) this.health.set(m.id, this.newHealth(now, p.ts))
      else if (h !== undefined) this.setEcho(h, p.ts)
    }
    if (view.members.some(m => m.id === this.me.id)) {
      this.install(view, now)
    } else {
      this.finishLeave()
    }
  }

  private onNack (from: string, epoch: number, theirs: ViewSummary | undefined, now: number): void {
    const p = this.proposal
    if (p === undefined || epoch < p.epoch || !p.members.some(m => m.id === from)) return
    this.maxEpoch = Math.max(this.maxEpoch, epoch)
    const mine = this._view?.id.epoch ?? 0
    if (theirs !== undefined && theirs.epoch > mine) {
      // The group moved on without us seeing it: a settled view we missed.
      this.proposal = undefined
      this.onNewerView(from, theirs, now)
      return
    }
    // A member behind us refused a proposer it does not know yet: hand it our view first.
    if (theirs !== undefined && theirs.epoch < mine) this.resendCommit(from, now)
    // Someone else proposed a higher epoch: back off with jitter, then retry above it.
    if (p.retryAt === undefined) p.retryAt = now + this.timing.retryIntervalMs * (0.5 + this.random())
  }

  private onPropose (from: string, msg: Extract<ProtocolMessage, { t: 'propose' }>, now: number): void {
    if (!msg.members.some(m => this.isMe(m))) { this.dropped('not-in-proposal'); return }
    const installed = this.installedEpoch
    // Follow only our own group: a proposer from our view (the coordinator, or the next in line
    // taking over), or a view our coordinator is joining (a merge it asked for). A proposer from
    // elsewhere — say a side of a healed partition that still counts us — is refused with our
    // view, from which it learns where we are.
    const view = this._view
    const leader = view?.members[0]?.id
    if (view !== undefined && this._status !== 'joining' && !hasMember(view, from) &&
        (leader === undefined || !msg.members.some(m => m.id === leader))) {
      this.sendRaw(from, { t: 'nack', epoch: Math.max(installed, this.promised), view: this.summary(view) }, false)
      return
    }
    // A merge proposer is in the view it proposes (only a leaving coordinator proposes one
    // without itself, and it is one of ours); a proposal from outside that leaves its author
    // out is a claim about others that is not its to make. (It may not drop members of ours
    // either, but whom it may drop cannot be told here: only monitors judge members dead.)
    if (view !== undefined && this._status !== 'joining' && !hasMember(view, from) && !msg.members.some(m => m.id === from)) {
      this.dropped('stranger-proposal')
      this.sendRaw(from, { t: 'nack', epoch: Math.max(installed, this.promised), view: this.summary(view) }, false)
      return
    }
    const duplicate = msg.epoch === this.promised && this.promisedProposer === from
    if (!duplicate && (msg.epoch <= installed || msg.epoch <= this.promised || (this.supportPledged(now) && this.promisedProposer !== from))) {
      this.sendRaw(from, { t: 'nack', epoch: Math.max(installed, this.promised), view: this.summaryOrUndefined() }, false)
      return
    }
    this.maxEpoch = Math.max(this.maxEpoch, msg.epoch)
    for (const m of msg.members) this.learn(m)
    // What we knew before this promise: the proposal itself need not count against itself.
    const known = this.knowledge()
    this.promise(msg.epoch, msg.members, from, now)
    if (!msg.members.some(m => m.id === from)) this.gracefulLeavers.add(from)
    this.sendRaw(from, { t: 'ack', epoch: msg.epoch, echo: msg.ts, ...(known.length > 0 ? { known } : {}) }, false)
  }

  private promise (epoch: number, members: readonly MemberRecord[], proposer: string, now: number): void {
    this.promised = epoch
    this.promisedAt = now
    this.promisedProposer = proposer
    this.promises.set(epoch, { proposer, ids: idKey(members) })
    if (this.promises.size > MAX_PROMISES_KEPT) this.promises.delete(this.promises.keys().next().value as number)
    this.promisedRank = Math.max(0, makeView(epoch, members).members.findIndex(m => m.id === this.me.id))
    // Another proposer may install this view without us hearing of it: it counts (quorum.ts).
    if (proposer !== this.me.id) {
      this.promisedViews.push(pending(members.map(m => m.id), epoch))
      this.knowledgeVersion++
    }
  }

  /** What a majority must be counted against, as far as we know (quorum.ts). */
  private knowledge (): Basis {
    return combine(this.knownBasis, this.promisedViews)
  }

  private onCommit (from: string, epoch: number, members: readonly MemberRecord[], basis: Basis | undefined, now: number): void {
    if (epoch <= this.installedEpoch || (epoch < this.promised && this.supportPledged(now))) return
    if (members.some(m => this.isMe(m))) {
      // A commit is the proposer's word that every member acked: ours too. So it is installed
      // when it is what we promised (to that proposer, or the same members — a resend), or
      // when a member of our own group passes on a view it installed (as a hello would).
      const promised = this.promises.get(epoch)
      const ours = promised !== undefined && (promised.proposer === from || promised.ids === idKey(members))
      if (!ours && !hasMember(this._view, from)) { this.dropped('unpromised-commit'); return }
      this.maxEpoch = Math.max(this.maxEpoch, epoch)
      if (this._status === 'joining' || this._status === 'member' || this._status === 'leaving') {
        this.install(makeView(epoch, members, basis), now)
      }
      return
    }
    if (!hasMember(this._view, from)) { this.dropped('foreign-exclusion'); return }
    this.maxEpoch = Math.max(this.maxEpoch, epoch)
    if (this._status === 'leaving') { this.finishLeave(); return }
    if (this._status === 'member') this.excluded(from, { epoch, members }, now)
  }

  private install (view: View, now: number): void {
    const previous = this._view
    const self = view.members.find(m => m.id === this.me.id)
    if (self !== undefined) this.me = { ...this.me, joinEpoch: self.joinEpoch }
    this._view = view
    this.myRank = view.members.findIndex(m => m.id === this.me.id)
    const inView = memberIds(view)
    this.noQuorum = noQuorumReason(this.quorumRule, inView, view.basis)
    this.knownBasis = combine(this.knownBasis, passedOn(inView, view.id.epoch, view.basis))
    this.promisedViews = this.promisedViews.filter(c => c.epoch > view.id.epoch)
    this.knowledgeVersion++
    this.leaseCache = undefined
    this.installedEpoch = view.id.epoch
    this.maxEpoch = Math.max(this.maxEpoch, view.id.epoch)
    if (this._status === 'joining') this._status = 'member'
    this.learned = undefined
    this.joiningPeers.clear()
    this.merge = undefined
    const ids = new Set(view.members.map(m => m.id))
    for (let i = 0; i < view.members.length; i++) {
      const m = view.members[i] as MemberRecord
      this.learn(m)
      this.pendingJoins.delete(m.id)
      if (m.id === this.me.id) continue
      if (!this.health.has(m.id)) this.health.set(m.id, this.newHealth(now, NEVER))
      const h = this.health.get(m.id) as Health
      if (!this.connected.has(m.id) && this.dials(i)) {
        h.lastDial = now
        this.out.push({ type: 'dial', peer: m.id, addrs: m.addrs })
      }
    }
    for (const [id, h] of [...this.health]) {
      if (ids.has(id)) continue
      // Removed without leaving: judged dead (by us or by the member that led the change). Its
      // connection, if it still looks open, may be one across a partition (see 'hangup').
      if (!h.superseded && !this.pendingLeaves.has(id) && !this.gracefulLeavers.has(id)) this.out.push({ type: 'hangup', peer: id })
      this.health.delete(id)
    }
    for (const id of [...this.pendingLeaves]) if (!ids.has(id)) this.pendingLeaves.delete(id)
    // A graceful leaver matters while some candidate still counts it; back in a view, it is not leaving.
    const counted = new Set(this.knowledge().flatMap(c => c.ids))
    for (const id of [...this.gracefulLeavers]) if (ids.has(id) || !counted.has(id)) this.gracefulLeavers.delete(id)
    for (const m of previous?.members ?? []) {
      if (!ids.has(m.id) && m.id !== this.me.id) this.removed.set(m.id, { record: m, at: now })
    }
    for (const id of ids) this.removed.delete(id)
    if (this.proposal !== undefined && this.proposal.epoch <= view.id.epoch) this.proposal = undefined
    this.out.push({ type: 'install', view, previous })
    // New members need our timestamps to echo (the lease), and everyone learns the epoch.
    this.heartbeatPlanned(now)
    // Tell connected processes outside the view who we are now: a joiner whose only contact
    // was joining too learns of the group, and another group learns of a merge partner.
    for (const peer of this.connected) if (!ids.has(peer)) this.sendRaw(peer, this.helloMessage(), true)
  }

  private newHealth (now: number, echo: number): Health {
    return { lastHeard: now, lastTs: NEVER, echo, dead: false, superseded: false, lastDial: NEVER, lastSent: NEVER, planned: false }
  }

  // ─── join, leave, merge ──────────────────────────────────────────────────

  private onJoin (from: string, record: MemberRecord, maxEpoch: number, now: number): void {
    // The joiner speaks for itself; a member may forward a joiner's request.
    if (record.id !== from && !hasMember(this._view, from)) { this.dropped('spoofed-join'); return }
    const view = this._view
    if (view === undefined || this._status !== 'member') return
    this.maxEpoch = Math.max(this.maxEpoch, maxEpoch)
    this.learn(record)
    if (view.members[0]?.id !== this.me.id) {
      const leader = view.members[0]
      if (leader !== undefined && from === record.id) this.sendRaw(leader.id, { t: 'join', from: record, maxEpoch }, true)
      return
    }
    const current = view.members.find(m => m.id === record.id)
    if (current !== undefined && current.incarnation >= record.incarnation) {
      // Already admitted: it missed the commit.
      this.sendRaw(record.id, { t: 'commit', epoch: view.id.epoch, members: view.members, basis: view.basis }, false)
      return
    }
    this.pendingJoins.set(record.id, withJoinEpoch(record, 0))
    this.proposeIfNeeded(now)
  }

  private onLeave (from: string, now: number): void {
    if (!hasMember(this._view, from)) return
    this.pendingLeaves.add(from)
    if (this.proposal?.members.some(m => m.id === from) === true) this.proposal = undefined
    this.proposeIfNeeded(now)
  }

  private sendLeave (now: number): void {
    const leader = this._view?.members[0]
    if (leader === undefined) return
    this.lastLeaveSent = now
    this.sendRaw(leader.id, { t: 'leave', epoch: this._view?.id.epoch ?? 0 }, false)
  }

  private finishLeave (): void {
    this._status = 'left'
    this.proposal = undefined
    this.out.push({ type: 'left' })
  }

  private onHello (from: string, msg: Extract<ProtocolMessage, { t: 'hello' }>, now: number): void {
    if (msg.from.id !== from) { this.dropped('spoofed-hello'); return }
    const current = this._view?.members.find(m => m.id === from)
    const h = this.health.get(from)
    if (current !== undefined && h !== undefined && msg.from.incarnation > current.incarnation) {
      // The process restarted under the same id: the incarnation in our view is gone.
      h.superseded = true
      this.declareDead(from, now)
    }
    this.learn(msg.from)
    this.maxEpoch = Math.max(this.maxEpoch, msg.maxEpoch)
    const theirs = msg.view
    if (this._status === 'joining') {
      if (theirs === undefined) {
        this.joiningPeers.add(from)
        this.maybeFound(now)
        return
      }
      this.joiningPeers.delete(from)
      for (const m of theirs.members) this.learn(m)
      const fresh = this.learned === undefined || theirs.epoch >= this.learned.view.epoch
      if (fresh) {
        this.learned = { view: theirs, via: from, at: this.learned?.at ?? now }
        this.joinAttempt = 0
        this.sendJoin(now)
        // Connect to the whole group now, so the full mesh (and the heartbeat echoes a
        // successor's lease needs) exists by the time we are admitted, not after.
        for (const m of theirs.members) {
          if (m.id !== this.me.id && !this.connected.has(m.id)) this.out.push({ type: 'dial', peer: m.id, addrs: m.addrs })
        }
      }
      return
    }
    if (this._status === 'member' && theirs === undefined && !hasMember(this._view, from)) {
      // A joiner that knows of no group yet: tell it of ours (rate-limited; it greets again
      // until it has heard of a group).
      const key = `greet:${from}`
      if (now >= (this.lastHelloTo.get(key) ?? NEVER) + this.timing.retryIntervalMs) {
        this.lastHelloTo.set(key, now)
        this.sendRaw(from, this.helloMessage(), true)
      }
      return
    }
    if (this._status !== 'member' || theirs === undefined) return
    const view = this._view as View
    if (theirs.epoch > view.id.epoch && hasMember(view, from)) { this.onNewerView(from, theirs, now); return }
    if (disjoint(theirs, view)) this.onForeign(theirs, now)
  }

  /** A settled view newer than ours, from one of our members: adopt it, or learn we were excluded. */
  private onNewerView (from: string, theirs: ViewSummary, now: number): void {
    if (this._status !== 'member' && this._status !== 'leaving') return
    if (theirs.epoch <= this.installedEpoch || (theirs.epoch < this.promised && this.supportPledged(now))) return
    if (theirs.members.some(m => this.isMe(m))) {
      this.install(makeView(theirs.epoch, theirs.members, theirs.basis), now)
    } else if (this._status === 'leaving') {
      this.finishLeave()
    } else {
      this.excluded(from, theirs, now)
    }
  }

  private onNotMember (from: string, theirs: ViewSummary, now: number): void {
    const view = this._view
    if (view === undefined) return
    if (theirs.epoch < view.id.epoch && hasMember(view, from)) {
      // One of our members never installed our view: it lost the commit.
      this.resendCommit(from, now)
      return
    }
    if (theirs.epoch <= view.id.epoch) return
    if (!theirs.members.some(m => m.id === from) || theirs.members.some(m => this.isMe(m))) return
    // Only our own group can tell us we were left out of it. Another group (the other side of
    // a healed partition, whose notices may arrive late) is a merge to negotiate, not a verdict.
    if (!hasMember(view, from)) {
      if (disjoint(theirs, view)) this.onForeign(theirs, now)
      return
    }
    this.onNewerView(from, theirs, now)
  }

  private replyNotMember (to: string, now: number): void {
    const view = this._view
    if (view === undefined || this._status !== 'member' || hasMember(view, to)) return
    const last = this.lastHelloTo.get(`nm:${to}`) ?? NEVER
    if (now - last < this.timing.retryIntervalMs) return
    this.lastHelloTo.set(`nm:${to}`, now)
    this.sendRaw(to, { t: 'not-member', view: this.summary(view) }, true)
  }

  /** We were removed from the group (false suspicion, or a pause): rejoin as the youngest. */
  private excluded (by: string, theirs: ViewSummary, now: number): void {
    const previous = this._view
    this.out.push({ type: 'excluded', by, previous })
    // Members of our old view that the group's view lacks are gone too: drop their connections.
    for (const m of previous?.members ?? []) {
      if (m.id !== this.me.id && !theirs.members.some(t => t.id === m.id) && !this.pendingLeaves.has(m.id)) this.out.push({ type: 'hangup', peer: m.id })
    }
    this._view = undefined
    this.myRank = -1
    this.leaseCache = undefined
    this._status = 'joining'
    this.me = withJoinEpoch(this.me, 0)
    this.health.clear()
    this.proposal = undefined
    this.pendingJoins.clear()
    this.pendingLeaves.clear()
    this.merge = undefined
    this.startedAt = now
    this.learned = { view: theirs, via: by, at: now }
    this.joinAttempt = 0
    this.sendJoin(now)
  }

  private onForeign (theirs: ViewSummary, now: number): void {
    const view = this._view
    if (view === undefined || this._status !== 'member' || !disjoint(theirs, view)) return
    const leader = theirs.members[0]
    if (leader === undefined) return
    for (const m of theirs.members) this.learn(m)
    if (view.members[0]?.id !== this.me.id) {
      this.sendRaw(view.members[0]?.id ?? '', { t: 'foreign', view: theirs }, true)
      return
    }
    if (mergeWinner(this.summary(view), theirs) === 'mine') {
      // Make sure the other coordinator knows of us; it asks to merge in.
      const last = this.lastHelloTo.get(leader.id) ?? NEVER
      if (now - last >= this.timing.retryIntervalMs) {
        this.lastHelloTo.set(leader.id, now)
        this.sendRaw(leader.id, this.helloMessage(), false)
      }
    } else if (this.merge === undefined || this.merge.leader !== leader.id) {
      this.merge = { leader: leader.id, at: now, lastSent: now }
      this.maxEpoch = Math.max(this.maxEpoch, theirs.epoch)
      this.sendRaw(leader.id, { t: 'merge', view: this.summary(view) }, false)
    }
  }

  private onMerge (from: string, theirs: ViewSummary, now: number): void {
    const view = this._view
    if (!theirs.members.some(m => m.id === from)) { this.dropped('spoofed-merge'); return }
    if (view === undefined || this._status !== 'member' || view.members[0]?.id !== this.me.id) return
    if (!disjoint(theirs, view) || mergeWinner(this.summary(view), theirs) !== 'mine') return
    this.maxEpoch = Math.max(this.maxEpoch, theirs.epoch)
    // The other side joins as the youngest: our coordinator keeps its place (JGroups merge).
    for (const m of theirs.members) {
      this.learn(m)
      this.pendingJoins.set(m.id, withJoinEpoch(m, 0))
    }
    this.proposeIfNeeded(now)
  }

  private onHeartbeat (from: string, msg: Extract<ProtocolMessage, { t: 'hb' }>, now: number): void {
    const { epoch, ts, echo } = msg
    const h = this.health.get(from)
    if (h === undefined) {
      this.maxEpoch = Math.max(this.maxEpoch, epoch)
      if (this._status === 'joining' && epoch > this.installedEpoch) {
        // Only members get heartbeats: we were admitted and lost the commit. Our older epoch
        // in reply makes the sender resend it. (A reply, so that nobody answers it.)
        if (msg.reply !== true) this.sendRaw(from, { t: 'hb', epoch: this.installedEpoch, ts: now, echo: NEVER, reply: true }, true)
      } else {
        this.replyNotMember(from, now)
      }
      return
    }
    h.lastTs = Math.max(h.lastTs, ts)
    this.setEcho(h, echo)
    // Answer at once: the sender's lease is renewed one round trip after its heartbeat left,
    // and it hears from us as often as it asks. Replies are not answered (no ping-pong loop).
    if (msg.reply !== true && this._view !== undefined) {
      h.lastSent = now
      this.sendRaw(from, { t: 'hb', epoch: this._view.id.epoch, ts: now, echo: h.lastTs, reply: true }, true)
    }
    // A member still on an older view lost a commit: installed views are settled, so resend ours.
    if (this._view !== undefined && epoch < this._view.id.epoch) this.resendCommit(from, now)
  }

  /** Installed views are settled, so any member may hand its view to one that missed it. */
  private resendCommit (to: string, now: number): void {
    const view = this._view
    if (view === undefined) return
    const key = `commit:${to}`
    if (now - (this.lastHelloTo.get(key) ?? NEVER) < this.timing.retryIntervalMs) return
    this.lastHelloTo.set(key, now)
    this.sendRaw(to, { t: 'commit', epoch: view.id.epoch, members: view.members, basis: view.basis }, true)
  }

  // ─── helpers ─────────────────────────────────────────────────────────────

  /**
   * Whether a record is this very process: same id and same incarnation. A view that lists our
   * id with an older incarnation lists a previous run of this process, which is gone: we are
   * not in it, and must not install it or promise it.
   */
  private isMe (m: MemberRecord): boolean {
    return m.id === this.me.id && m.incarnation === this.me.incarnation
  }

  private active (): boolean {
    return this._status === 'member' || this._status === 'leaving'
  }

  private learn (m: MemberRecord): void {
    if (m.id === this.me.id) return
    const prev = this.known.get(m.id)
    if (prev === undefined || prev.incarnation <= m.incarnation) this.known.set(m.id, m)
  }

  /**
   * A member (also one that is leaving) greets with its installed view; a joiner with the group
   * it is joining, so that a joiner whose only contact is another joiner still finds the group.
   */
  private helloMessage (): ProtocolMessage {
    const view = this._view
    const summary = view !== undefined && (this._status === 'member' || this._status === 'leaving')
      ? this.summary(view)
      : this._status === 'joining' ? this.learned?.view : undefined
    return { t: 'hello', from: this.me, maxEpoch: this.maxEpoch, ...(summary !== undefined ? { view: summary } : {}) }
  }

  private summary (view: View): ViewSummary {
    return { epoch: view.id.epoch, members: view.members, basis: view.basis }
  }

  private summaryOrUndefined (): ViewSummary | undefined {
    return this._view === undefined ? undefined : this.summary(this._view)
  }

  private sendRaw (to: string, msg: ProtocolMessage, onlyIfConnected: boolean): void {
    if (to === this.me.id || to === '') return
    const addrs = this.known.get(to)?.addrs ?? []
    this.out.push({ type: 'send', to, msg, addrs, onlyIfConnected })
  }

  /** Counts dropped input (an effect among the others of this input; nothing is flushed here). */
  private dropped (reason: string): void {
    this.out.push({ type: 'drop', reason })
  }

  private flush (): Effect[] {
    const out = this.out
    this.out = []
    if (this.durable && (this.maxEpoch > this.reservedEpoch || this.knowledgeVersion !== this.persistedVersion)) {
      if (this.maxEpoch > this.reservedEpoch) this.reservedEpoch = Math.min(MAX_EPOCH, this.maxEpoch + EPOCH_RESERVATION)
      this.persistedVersion = this.knowledgeVersion
      out.unshift({ type: 'persist', maxEpoch: this.reservedEpoch, basis: this.knowledge() })
    }
    return out
  }
}


/** The member ids of a list of records, as one comparable key. */
function idKey (members: readonly MemberRecord[]): string {
  return members.map(m => m.id).sort().join(' ')
}

function disjoint (a: ViewSummary, b: View): boolean {
  const ids = new Set(b.members.map(m => m.id))
  return a.members.every(m => !ids.has(m.id))
}

function sameRecordContent (a: MemberRecord | undefined, b: MemberRecord): boolean {
  if (a === undefined) return false
  return a.name === b.name && a.incarnation === b.incarnation &&
    JSON.stringify(a.addrs) === JSON.stringify(b.addrs) && JSON.stringify(a.meta) === JSON.stringify(b.meta)
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

function validFounding (f: Founding): Founding {
  if (f === 'alone' || f === 'never') return f
  if (typeof f === 'object' && f !== null && Number.isInteger(f.expect) && f.expect >= 1) return f
  throw new RangeError(`founding must be 'alone', 'never' or { expect: N } with an integer N of at least 1, got ${JSON.stringify(f)}`)
}

function positiveInteger (k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`monitors must be an integer of at least 1, got ${k}`)
  return k
}
