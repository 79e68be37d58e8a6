/**
 * Failure detection and the lease (docs/design.md, "Failure detection"): per-member health,
 * O(N·K) heartbeats, verification of suspects, and the echoes the coordinator's lease is made
 * of. Part of the membership core: pure, time passed in, effects through the core's context.
 *
 *  - Two signals, verified before a verdict: a closed connection is re-dialled (refused: dead);
 *    silence for `suspectAfterMs` is probed (unanswered for `verifyTimeoutMs`: dead). Anything
 *    heard from a member refutes its suspicion (SWIM's refutation, without incarnations: the
 *    judge is the one who probed).
 *  - Monitoring is O(N·K): the first K members of the view not judged dead (the monitors: the
 *    masters and the next in line) exchange heartbeats with everyone, the others only with the
 *    monitors. On each monitored pair the older member sends every period and the younger
 *    answers at once, so one round trip renews the older member's lease.
 *  - The lease: every other member echoed one of our heartbeats sent less than `leaseMs` ago.
 *    It ends before any member can exclude us (timing.ts), so a paused master knows on resume.
 */
import type { MemberRecord } from './member.js'
import type { View } from './view.js'
import type { ProtocolMessage } from './messages.js'
import type { CoreContext } from './context.js'

export const NEVER = Number.NEGATIVE_INFINITY

export interface Health {
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
  /** It installed a view of its own without us (see `seceded`): dead to this view for good. */
  seceded: boolean
  lastDial: number
}

/** What the detector tells the rest of the core. */
export interface DetectorEvents {
  /** We judged `peer` dead (after verification, or superseded). */
  dead: (peer: string, now: number) => void
  /** A member we had judged dead spoke. */
  revived: (peer: string) => void
}

export class FailureDetector {
  private readonly health = new Map<string, Health>()
  /**
   * Candidates for `deadlines` beyond the monitors, so that a member that is not a monitor
   * offers O(K) deadlines per input instead of scanning the whole view: members whose
   * verification started (added in `startVerify`, the only place `verify` is set), and view
   * members with no connection (kept from `trackView`, `connectedTo`, `disconnectedFrom`).
   * Both may hold stale ids; `deadlines` checks each and drops those that no longer qualify.
   */
  private readonly verifying = new Set<string>()
  private readonly unconnected = new Set<string>()
  private viewIndex: { readonly view: View, readonly index: ReadonlyMap<string, number> } | undefined
  /**
   * For a member that is not a monitor: the earliest re-dial due among the members in
   * `unconnected` beyond the monitors (their only deadline: they are not heartbeat partners),
   * or undefined to recompute. Cleared whenever it could move earlier (a member added to
   * `unconnected`, a dial, a verification ended, a view or a death that moves ranks), when the
   * member whose re-dial it is connects, and at every tick.
   */
  private redialDue: number | undefined
  private leaseCache: number | undefined
  private nonce = 0
  /** Set by a tick that came late (a pause): the next tick must follow soon. */
  lagged = false

  constructor (private readonly core: CoreContext, private monitors: number, private readonly events: DetectorEvents) {}

  /** K, the number of monitors. */
  get monitorCount (): number { return this.monitors }
  setMonitors (k: number): void { this.monitors = k }

  has (id: string): boolean { return this.health.has(id) }
  isDead (id: string): boolean { return this.health.get(id)?.dead === true }

  /** Whether the member with this id is currently suspected (being verified) or judged dead. */
  isSuspected (id: string): boolean {
    const h = this.health.get(id)
    return h !== undefined && (h.dead || h.verify !== undefined)
  }

  /** Whether any member of the view is judged dead. */
  anyDead (view: View): boolean {
    return view.members.some(m => this.health.get(m.id)?.dead === true)
  }

  /** Starts tracking a new member, with `echo` as its lease base (a proposal's time it acked). */
  track (id: string, now: number, echo: number): void {
    this.health.set(id, newHealth(now, echo))
    if (!this.core.connected.has(id)) this.unconnected.add(id)
    this.redialDue = undefined
  }

  /** Raises `id`'s echo (the lease base). */
  echoed (id: string, echo: number): void {
    const h = this.health.get(id)
    if (h !== undefined) this.setEcho(h, echo)
  }

  /**
   * Members we have not heard from when we should have: judged dead, being verified, or
   * monitored and silent for more than 1.5 heartbeat periods. Their connections may be ones
   * across a cut (see `declareDead`).
   */
  silent (now: number): string[] {
    const out: string[] = []
    const limit = 1.5 * this.core.timing.heartbeatIntervalMs
    for (const [id, h] of this.health) {
      if (h.superseded) continue
      if (h.dead || h.verify !== undefined || (h.planned && now - h.lastHeard > limit)) out.push(id)
    }
    return out
  }

  forgetAll (): void {
    this.health.clear()
    this.verifying.clear()
    this.unconnected.clear()
    this.redialDue = undefined
    this.leaseCache = undefined
  }

  invalidateLease (): void { this.leaseCache = undefined }

  /**
   * When the lease ends: the oldest echo among the other members, plus leaseMs. Cached (the
   * per-item stream filter asks on every item); a view change, or a raise of the oldest echo,
   * clears the cache.
   */
  leaseExpiry (): number {
    if (this.leaseCache !== undefined) return this.leaseCache
    const view = this.core.view
    if (view === undefined) return NEVER
    let expiry = Number.POSITIVE_INFINITY
    for (const m of view.members) {
      if (m.id === this.core.me.id) continue
      const h = this.health.get(m.id)
      expiry = Math.min(expiry, (h?.echo ?? NEVER) + this.core.timing.leaseMs)
    }
    this.leaseCache = expiry
    return expiry
  }

  private setEcho (h: Health, echo: number): void {
    if (echo > h.echo) {
      // Echoes only grow: raising one that was above the minimum leaves the lease where it is
      // (O(1) per heartbeat, where recomputing the minimum is O(N)).
      if (this.leaseCache !== undefined && h.echo + this.core.timing.leaseMs <= this.leaseCache) this.leaseCache = undefined
      h.echo = echo
    }
  }

  // ─── inputs ────────────────────────────────────────────────────────────

  /** Anything from `peer` (a member we track) arrived. */
  heard (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h !== undefined) this.heardFrom(peer, h, now)
  }

  connectedTo (peer: string, now: number): void {
    this.unconnected.delete(peer)
    const h = this.health.get(peer)
    // Its re-dial may have been the earliest: recompute rather than wake for nothing.
    if (h !== undefined && this.redialDue !== undefined && h.lastDial + this.core.timing.retryIntervalMs <= this.redialDue) this.redialDue = undefined
    const view = this.core.view
    if (h !== undefined && view !== undefined) {
      this.heardFrom(peer, h, now)
      // Start the echo exchange now: the lease needs it, and the install-time heartbeat was
      // dropped if this connection did not exist yet.
      this.heartbeat(peer, h, view.id.epoch, now)
    }
  }

  disconnectedFrom (peer: string, now: number, active: boolean): void {
    const h = this.health.get(peer)
    if (h !== undefined) { this.unconnected.add(peer); this.redialDue = undefined }
    if (h !== undefined && !h.dead && active) this.startVerify(peer, h, 'redial', now)
  }

  dialFailed (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h?.verify?.kind === 'redial' && !this.core.connected.has(peer)) this.declareDead(peer, now)
  }

  /**
   * A heartbeat from a member we track: record its timestamp and echo, and answer at once (the
   * sender's lease is renewed one round trip after its heartbeat left, and it hears from us as
   * often as it asks). Replies are not answered (no ping-pong loop). False: not a member we track.
   */
  onHeartbeat (from: string, msg: Extract<ProtocolMessage, { t: 'hb' }>, now: number): boolean {
    const h = this.health.get(from)
    if (h === undefined) return false
    h.lastTs = Math.max(h.lastTs, msg.ts)
    this.setEcho(h, msg.echo)
    const view = this.core.view
    if (msg.reply !== true && view !== undefined) {
      h.lastSent = now
      this.core.send(from, { t: 'hb', epoch: view.id.epoch, ts: now, echo: h.lastTs, reply: true }, true)
    }
    return true
  }

  /** A report (never a fact) that `peer` seems dead: a leader verifies with its own probe. */
  onSuspectReport (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h === undefined || h.dead || h.verify !== undefined) return
    this.startVerify(peer, h, 'probe', now)
  }

  /** The same id started again: the incarnation in our view is gone for good. */
  supersede (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h === undefined) return
    h.superseded = true
    this.declareDead(peer, now)
  }

  /**
   * The member installed a view of its own that leaves us out, and we outnumber it (see
   * Membership.onNewerView): it is gone from this view, whatever it sends us from now on.
   */
  seceded (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h === undefined) return
    h.seceded = true
    this.declareDead(peer, now)
  }

  // ─── a new view ────────────────────────────────────────────────────────

  /**
   * Tracks the members of a newly installed view: new ones get a fresh silence baseline, and
   * those we keep the connection to (the older ones, see `dials`) are dialled if need be.
   */
  trackView (view: View, now: number): void {
    this.redialDue = undefined
    const self = this.core.me.id
    for (let i = 0; i < view.members.length; i++) {
      const m = view.members[i] as MemberRecord
      if (m.id === self) continue
      if (!this.health.has(m.id)) this.health.set(m.id, newHealth(now, NEVER))
      const h = this.health.get(m.id) as Health
      if (!this.core.connected.has(m.id)) this.unconnected.add(m.id)
      if (!this.core.connected.has(m.id) && this.dials(i)) {
        h.lastDial = now
        this.core.emit({ type: 'dial', peer: m.id, addrs: m.addrs })
      }
    }
  }

  /**
   * Stops tracking members no longer in the view. Those removed without leaving (`graceful`
   * says who left) were judged dead, by us or by the member that led the change: their
   * connection, if it still looks open, may be one across a partition (see the `hangup` effect).
   */
  untrackGone (ids: ReadonlySet<string>, graceful: (id: string) => boolean): void {
    for (const [id, h] of [...this.health]) {
      if (ids.has(id)) continue
      if (!h.superseded && !graceful(id)) this.core.emit({ type: 'hangup', peer: id })
      this.health.delete(id)
      this.verifying.delete(id)
      this.unconnected.delete(id)
    }
  }

  /** Heartbeats every member we monitor now, whatever their schedule (a new view, say). */
  heartbeatPlanned (now: number): void {
    const view = this.core.view
    if (view === undefined) return
    const cutoff = this.monitorCutoff(view)
    for (let i = 0; i < view.members.length; i++) {
      const m = view.members[i] as MemberRecord
      if (m.id === this.core.me.id) continue
      const h = this.health.get(m.id)
      if (h === undefined || h.dead) continue
      this.plan(h, i, cutoff, now)
      if (h.planned) this.heartbeat(m.id, h, view.id.epoch, now)
    }
  }

  // ─── timers ────────────────────────────────────────────────────────────

  /** Heartbeats, re-dials, silence and verification deadlines of the members of the view. */
  tick (now: number, lagged: boolean): void {
    this.redialDue = undefined
    const view = this.core.view
    if (view === undefined) return
    const t = this.core.timing
    const self = this.core.me.id
    const myRank = this.core.myRank
    const cutoff = this.monitorCutoff(view)
    const members = view.members
    const round = this.heartbeatRound(view, now)
    let verdicts = 0
    for (let i = 0; i < members.length; i++) {
      const m = members[i] as MemberRecord
      if (m.id === self) continue
      const h = this.health.get(m.id)
      if (h === undefined || h.dead) continue
      this.plan(h, i, cutoff, now)
      if (!this.core.connected.has(m.id) && h.verify === undefined && this.dials(i) && now >= h.lastDial + t.retryIntervalMs) {
        h.lastDial = now
        this.core.emit({ type: 'dial', peer: m.id, addrs: m.addrs })
      }
      // In a round, heartbeats that would be due within half a period leave now too: one wake-up
      // per period, not one per member whose schedule drifted (a connect, a reply).
      const due = round && i > myRank ? h.lastSent + t.heartbeatIntervalMs / 2 : this.heartbeatDue(h, i)
      if (h.planned && now >= due) this.heartbeat(m.id, h, view.id.epoch, now)
      // After a pause, messages from others may sit unread: judge on the next tick.
      if (lagged) continue
      if (h.verify !== undefined) {
        if (now >= this.verifyDeadline(h.verify)) { this.declareDead(m.id, now); verdicts++ }
      } else if (h.planned && now >= h.lastHeard + t.suspectAfterMs) {
        this.startVerify(m.id, h, 'probe', now)
      }
    }
    // A verdict moves the monitor cutoff: whom we now monitor starts being watched at once, not
    // at a later tick (with no deadline of its own, that tick might not come soon).
    const current = this.core.view
    if (verdicts > 0 && current !== undefined) this.replan(current, now)
  }

  /** Re-decides whom we monitor, after verdicts moved the cutoff. */
  private replan (view: View, now: number): void {
    const cutoff = this.monitorCutoff(view)
    const self = this.core.me.id
    for (let i = 0; i < view.members.length; i++) {
      const id = (view.members[i] as MemberRecord).id
      if (id === self) continue
      const h = this.health.get(id)
      if (h !== undefined && !h.dead) this.plan(h, i, cutoff, now)
    }
  }

  /**
   * Offers the detector's deadlines to `at` (see Membership.nextDeadline). A monitor offers one
   * per member of the view. Any other member monitors only the monitors (view indexes up to
   * the cutoff, see `plan`), so beyond them only a verification or a re-dial can be due: it
   * offers those from `verifying` and `unconnected` instead of scanning the view, which keeps
   * an input O(K) on most members of a large view.
   */
  deadlines (view: View, at: (when: number) => void): void {
    const members = view.members
    const cutoff = this.monitorCutoff(view)
    if (this.core.myRank <= cutoff) {
      for (let i = 0; i < members.length; i++) this.offer((members[i] as MemberRecord).id, i, at)
      return
    }
    for (let i = 0; i <= cutoff && i < members.length; i++) this.offer((members[i] as MemberRecord).id, i, at)
    const index = this.indexOf(view)
    for (const id of this.verifying) {
      const i = index.get(id)
      if (i === undefined || this.health.get(id)?.verify === undefined) { this.verifying.delete(id); continue }
      if (i > cutoff) this.offer(id, i, at)
    }
    if (this.redialDue === undefined) {
      let due = Number.POSITIVE_INFINITY
      const retry = this.core.timing.retryIntervalMs
      for (const id of this.unconnected) {
        const i = index.get(id)
        if (i === undefined || this.core.connected.has(id)) { this.unconnected.delete(id); continue }
        const h = this.health.get(id)
        if (i > cutoff && h !== undefined && !h.dead && h.verify === undefined && this.dials(i)) due = Math.min(due, h.lastDial + retry)
      }
      this.redialDue = due
    }
    if (this.redialDue !== Number.POSITIVE_INFINITY) at(this.redialDue)
  }

  /** The deadlines of the member `id` at view index `i`. */
  private offer (id: string, i: number, at: (when: number) => void): void {
    if (id === this.core.me.id) return
    const h = this.health.get(id)
    if (h === undefined || h.dead) return
    const t = this.core.timing
    if (!this.core.connected.has(id) && h.verify === undefined && this.dials(i)) at(h.lastDial + t.retryIntervalMs)
    if (h.verify !== undefined) at(this.verifyDeadline(h.verify))
    if (!h.planned) return
    at(this.heartbeatDue(h, i))
    if (h.verify === undefined) at(h.lastHeard + t.suspectAfterMs)
  }

  /** Each member's index in `view` (built once per view). */
  private indexOf (view: View): ReadonlyMap<string, number> {
    if (this.viewIndex?.view !== view) this.viewIndex = { view, index: new Map(view.members.map((m, i) => [m.id, i])) }
    return this.viewIndex.index
  }

  // ─── internals ─────────────────────────────────────────────────────────

  private heardFrom (peer: string, h: Health, now: number): void {
    // A superseded incarnation's messages now come from the new one; a member that seceded
    // speaks for its own group, which a merge, not this view, takes back.
    if (h.superseded || h.seceded) return
    h.lastHeard = now
    if (h.verify !== undefined || h.dead) {
      h.verify = undefined
      this.redialDue = undefined
      if (h.dead) {
        h.dead = false
        this.events.revived(peer)
      }
      this.core.emit({ type: 'refuted', peer })
    }
  }

  private startVerify (peer: string, h: Health, kind: 'probe' | 'redial', now: number): void {
    if (h.verify !== undefined) return
    h.verify = { kind, since: now }
    this.verifying.add(peer)
    this.core.emit({ type: 'suspect', peer, reason: kind === 'probe' ? 'silence' : 'disconnect' })
    if (kind === 'probe') {
      this.core.send(peer, { t: 'probe', nonce: ++this.nonce }, false)
    } else {
      h.lastDial = now
      this.redialDue = undefined
      this.core.emit({ type: 'dial', peer, addrs: this.core.addrsOf(peer) })
    }
  }

  private declareDead (peer: string, now: number): void {
    const h = this.health.get(peer)
    if (h === undefined || h.dead) return
    h.dead = true
    h.verify = undefined
    this.redialDue = undefined
    this.core.emit({ type: 'dead', peer })
    // Our own verdict, leader or not: a connection that carried nothing for the whole detection
    // window may be one across a cut whose queued frames wait behind TCP's backed-off
    // retransmissions; what we send next (a report, a join, a reply after the heal) must go on a
    // fresh one. Not for a superseded incarnation: its id's connection is the new process's.
    if (!h.superseded) this.core.emit({ type: 'hangup', peer })
    this.events.dead(peer, now)
  }

  /**
   * Whether we keep up the connection to the member at view index `index`: the younger side of
   * a pair dials, the older waits (trap 5: someone must dial, and only one side should). A
   * joiner connects to everyone (a few at a time, see transport/dial-slots.ts); if all of them
   * dialled it back at once, it would face 49 handshakes as the admitting view lands. Dials to
   * verify a closed connection, and sends, go either way.
   */
  private dials (index: number): boolean {
    return index < this.core.myRank
  }

  /** Whether a heartbeat to some younger member we monitor is due now. */
  private heartbeatRound (view: View, now: number): boolean {
    for (let i = this.core.myRank + 1; i < view.members.length; i++) {
      const h = this.health.get((view.members[i] as MemberRecord).id)
      if (h !== undefined && !h.dead && h.planned && now >= h.lastSent + this.core.timing.heartbeatIntervalMs) return true
    }
    return false
  }

  private heartbeat (peer: string, h: Health, epoch: number, now: number): void {
    h.lastSent = now
    this.core.send(peer, { t: 'hb', epoch, ts: now, echo: h.lastTs }, true)
  }

  /**
   * The view index of the K-th member not judged dead (we count ourselves as live): members up
   * to it are the monitors. Judging an older member dead moves the cutoff down the view, so the
   * next in line starts monitoring everyone before it has to take over.
   */
  private monitorCutoff (view: View): number {
    const members = view.members
    const self = this.core.me.id
    let live = 0
    for (let i = 0; i < members.length; i++) {
      const id = (members[i] as MemberRecord).id
      if (id !== self && this.health.get(id)?.dead === true) continue
      if (++live >= this.monitors) return i
    }
    return members.length - 1
  }

  /**
   * Whether we monitor the member at view index `index`: it is a monitor, or we are. A member
   * we start monitoring gets a fresh silence baseline: we never expected to hear from it before.
   */
  private plan (h: Health, index: number, cutoff: number, now: number): void {
    const planned = this.core.myRank <= cutoff || index <= cutoff
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
    const period = this.core.timing.heartbeatIntervalMs
    if (index > this.core.myRank) return h.lastSent + (h.echo >= h.lastSent ? period : period / 2)
    return Math.max(h.lastSent + period, h.lastHeard + 1.5 * period)
  }

  private verifyDeadline (verify: NonNullable<Health['verify']>): number {
    return verify.since + (verify.kind === 'probe' ? this.core.timing.verifyTimeoutMs : this.core.timing.redialTimeoutMs)
  }
}

function newHealth (now: number, echo: number): Health {
  return { lastHeard: now, lastTs: NEVER, echo, dead: false, superseded: false, seceded: false, lastDial: NEVER, lastSent: NEVER, planned: false }
}
