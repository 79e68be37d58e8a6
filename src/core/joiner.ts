/**
 * Joining (docs/design.md, "Joining, leaving, rejoining, merging"): what a member does while it
 * has no view: greet its contacts, ask the group it learned of to admit it, and found a group
 * of its own when the founding rule allows (founding.ts). Part of the membership core: pure,
 * time passed in.
 *
 *  - A joiner greets every connection with `hello`; a member answers with its view, so the
 *    joiner learns of the group and asks to join: the coordinator first, then the member that
 *    told it, then every other member in turn (members forward joins to their coordinator).
 *  - A group that never admits it is forgotten after 5 × joinTimeoutMs, so it cannot wait forever.
 *  - Among joiners that know of no group, the lowest id founds (JGroups' cold start), with a
 *    hard deadline (3 × joinTimeoutMs) against a silent lower id, where founding alone is allowed.
 */
import { withJoinEpoch, type MemberRecord } from './member.js'
import { makeView, type View } from './view.js'
import { combine, pending, type Basis } from './quorum.js'
import { MAX_EPOCH } from './epochs.js'
import type { Founding } from './founding.js'
import type { ProtocolMessage, ViewSummary } from './messages.js'
import type { CoreContext } from './context.js'
import type { ViewAgreement } from './agreement.js'
import { NEVER } from './failure-detector.js'
import type { WaitingReason } from './effects.js'

/** What joining needs of the rest of the core beyond the shared context. */
export interface JoinerHost extends CoreContext {
  readonly agreement: ViewAgreement
  /** Sets this member's own record (its joinEpoch, on founding). */
  setMe: (me: MemberRecord) => void
  install: (view: View, now: number) => void
}

export class Joiner {
  private startedAt = 0
  /** The group we learned of and are asking to join, who told us, and since when. */
  private learned: { view: ViewSummary, via: string, at: number } | undefined
  private lastJoinSent = NEVER
  private lastGreeting = NEVER
  private joinAttempt = 0
  private seedsExhausted = false
  /**
   * Until then a seed of this cluster answered speaking another wire version: a group of that
   * version lives here, and founding one of ours would give the cluster two sets of masters.
   */
  private otherVersionUntil = NEVER
  /** Connected peers that greeted us knowing of no group either. */
  private readonly joiningPeers = new Set<string>()
  /** The last `waiting` effect, so that it is emitted once per change. */
  private lastWaiting: string | undefined

  constructor (
    private readonly core: JoinerHost,
    private readonly founding: Founding,
    private readonly epochFloor: () => number
  ) {}

  /** The group this joiner is joining, to greet with (so a joiner's joiner learns of it too). */
  get joiningView (): ViewSummary | undefined { return this.learned?.view }

  start (now: number, hasSeeds: boolean): void {
    this.startedAt = now
    if (!hasSeeds) this.formSingleton(now, [])
  }

  /** The shell tried every seed at least once and none answered. */
  seedsUnreachable (now: number): void {
    this.seedsExhausted = true
    this.tick(now)
  }

  disconnectedFrom (peer: string): void {
    this.joiningPeers.delete(peer)
  }

  /**
   * A seed of this cluster refused us for speaking another wire version. While they keep
   * answering (seeds are dialled every discovery round), this member founds no group; once
   * none has for 3 join timeouts (that version's members are gone), it may again.
   */
  otherVersionSeen (now: number): void {
    this.otherVersionUntil = now + 3 * this.core.timing.joinTimeoutMs
    this.maybeFound(now)
  }

  /** A view was installed: joining is over. */
  joined (): void {
    this.learned = undefined
    this.joiningPeers.clear()
  }

  /** We were removed from the group `theirs` (told by `by`): ask it to admit us again. */
  rejoin (by: string, theirs: ViewSummary, now: number): void {
    this.startedAt = now
    this.learned = { view: theirs, via: by, at: now }
    this.joinAttempt = 0
    this.sendJoin(now)
  }

  /**
   * A `hello` while joining: `theirs` is the sender's view (or the group it is joining), or
   * undefined from a joiner that knows of none.
   */
  onHello (from: string, theirs: ViewSummary | undefined, now: number): void {
    if (theirs === undefined) {
      this.joiningPeers.add(from)
      this.maybeFound(now)
      return
    }
    this.joiningPeers.delete(from)
    for (const m of theirs.members) this.core.learn(m)
    const fresh = this.learned === undefined || theirs.epoch >= this.learned.view.epoch
    if (!fresh) return
    this.learned = { view: theirs, via: from, at: this.learned?.at ?? now }
    this.joinAttempt = 0
    this.sendJoin(now)
    // Connect to the whole group now, so the full mesh (and the heartbeat echoes a
    // successor's lease needs) exists by the time we are admitted, not after.
    const self = this.core.me.id
    for (const m of theirs.members) {
      if (m.id !== self && !this.core.connected.has(m.id)) this.core.emit({ type: 'dial', peer: m.id, addrs: m.addrs })
    }
  }

  tick (now: number): void {
    if (this.core.status !== 'joining') return
    const t = this.core.timing
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
      for (const peer of this.core.connected) this.core.send(peer, this.core.helloMessage(), true)
    }
    this.maybeFound(now)
  }

  /** Offers joining's deadlines to `at` (see Membership.nextDeadline). */
  deadlines (now: number, at: (when: number) => void): void {
    const t = this.core.timing
    if (this.learned !== undefined) {
      at(this.learned.at + 5 * t.joinTimeoutMs + 1)
      at(this.lastJoinSent + t.retryIntervalMs)
      return
    }
    const lowerJoiner = this.lowerJoiner()
    if (this.core.connected.size > 0) at(this.lastGreeting + t.retryIntervalMs)
    if (this.otherVersionUntil > now) at(this.otherVersionUntil)
    if (this.mayFoundAlone()) {
      if (!this.seedsExhausted && !lowerJoiner) at(this.startedAt + t.joinTimeoutMs)
      at(this.startedAt + 3 * t.joinTimeoutMs)
    } else if (!this.seedsExhausted && this.startedAt + t.joinTimeoutMs > now) {
      // Only to say that we wait (a `waiting` effect): founding waits for input, not time.
      at(this.startedAt + t.joinTimeoutMs)
    }
  }

  private lowerJoiner (): boolean {
    const self = this.core.me.id
    for (const p of this.joiningPeers) if (p < self) return true
    return false
  }

  /**
   * Founds a group when no group was found and the founding rule allows it (see `Founding`).
   * JGroups' rule for a cold start: among joiners that know of no group, the lowest id founds
   * it and the others join; a hard deadline stops a silent lower id from blocking us.
   */
  private maybeFound (now: number): void {
    if (this.core.status !== 'joining' || this.learned !== undefined) return
    const t = this.core.timing
    const lowerJoiner = this.lowerJoiner()
    const discoveryOver = this.seedsExhausted || now >= this.startedAt + t.joinTimeoutMs
    const founding = this.founding
    if (now < this.otherVersionUntil) {
      this.waiting('incompatible', typeof founding === 'object' ? founding.expect : undefined)
      return
    }
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
      this.formSingleton(now, [pending([this.core.me.id, ...this.joiningPeers].sort(), 0)])
    } else if (discoveryOver) {
      this.waiting('expecting', founding.expect)
    }
  }

  /** Whether this member founds a group of its own once discovery is over (see `Founding`). */
  private mayFoundAlone (): boolean {
    return this.founding === 'alone' || this.core.agreement.knowledge().length > 0
  }

  private waiting (reason: WaitingReason, expect: number | undefined): void {
    const key = `${reason}:${this.joiningPeers.size}`
    if (key === this.lastWaiting) return
    this.lastWaiting = key
    this.core.emit({ type: 'waiting', reason, joiners: this.joiningPeers.size, expect })
  }

  /** `contacts`: the founders' candidate under `{ expect }` (its epoch becomes the view's). */
  private formSingleton (now: number, contacts: Basis): void {
    const a = this.core.agreement
    const epoch = Math.max(a.maxEpoch + 1, a.promised + 1, a.installedEpoch + 1, Math.floor(this.epochFloor()))
    if (epoch > MAX_EPOCH) { this.core.dropped('epochs-exhausted'); return }
    a.maxEpoch = epoch
    const me = withJoinEpoch(this.core.me, epoch)
    this.core.setMe(me)
    // A member that was part of a group keeps counting against that group's majority: cut
    // off, it founds a group of one that holds no majority of anything it knew.
    this.core.install(makeView(epoch, [me], combine(a.knowledge(), contacts.map(c => ({ ...c, epoch })))), now)
  }

  private sendJoin (now: number): void {
    const learned = this.learned
    if (learned === undefined) return
    const self = this.core.me.id
    const msg: ProtocolMessage = { t: 'join', from: this.core.me, maxEpoch: this.core.agreement.maxEpoch }
    // Try the coordinator, then the member that told us of the group, then every other member
    // in turn (members forward to their coordinator): the coordinator we know of may be dead.
    const order = [learned.view.members[0]?.id, learned.via, ...learned.view.members.slice(1).map(m => m.id)]
      .filter((id, i, all): id is string => id !== undefined && id !== self && all.indexOf(id) === i)
    const target = order[this.joinAttempt % Math.max(1, order.length)]
    this.joinAttempt++
    if (target === undefined) return
    this.core.send(target, msg, false)
    this.lastJoinSent = now
  }
}
