/**
 * The driver of one member's membership core: the code that turns the core's effects into
 * sends, dials, hang-ups, durable writes, timers and events, and the core's state into what the
 * application sees (mastership per masters(N) with its reason, merges, split-brain reports).
 * The real member (member.ts, over libp2p) and the simulation (testing/simulation.ts, over a
 * simulated network on a manual clock) both run their members through it, so what the
 * simulation proves is what a member does.
 *
 * Contract:
 *  - Inputs are serial: one input runs to the end (the core's step, then its effects in order,
 *    then the mastership watchers) before the next starts; inputs that arrive meanwhile (an
 *    effect's event handler calling back) queue behind it.
 *  - One timer for the core, set to its next deadline after every input (the core says when it
 *    next has work: Membership.nextDeadline), capped at MAX_SLEEP_MS; while alone, also the next
 *    seed re-dial (a failed dial is not retried by the transport).
 *  - A `persist` effect comes first in its batch; if the write fails, nothing after it is
 *    carried out and the member never acts as master again (it can no longer keep its promises).
 *  - Mastership is evaluated against the clock at each call (`rank`): a process that resumes
 *    from a pause longer than its lease learns it is not master before any of its work runs.
 */
import type { Membership } from '../core/membership.js'
import type { Effect, WaitingReason } from '../core/effects.js'
import type { ProtocolMessage } from '../core/messages.js'
import type { Basis } from '../core/quorum.js'
import type { MemberRecord } from '../core/member.js'
import { diffMembers, type View } from '../core/view.js'
import { tokenString } from '../core/fencing.js'
import { ANNOUNCE_INTERVAL_MS, ANNOUNCE_TO_VIEW_EVERY, DualMasterDetector, MASTERSHIP_SERVICE, type DualMasterDetected } from '../policies/dual-master.js'
import type { MastershipChange, MastershipReason, ViewChange } from './changes.js'

/** The longest the core's timer sleeps, whatever its deadlines say. */
export const MAX_SLEEP_MS = 1000

/** A one-shot timer; the function cancels it. */
export type SetTimer = (fn: () => void, ms: number) => () => void

/** What the driver needs from the member it drives (a process over libp2p, or a simulated node). */
export interface DriverEnv {
  /** This member's monotonic clock, in milliseconds. */
  now: () => number
  setTimer: SetTimer
  send: (to: string, msg: ProtocolMessage, opts: { addrs: readonly string[], onlyIfConnected: boolean, probe: boolean }) => void
  /** A message of one of Conclave's own services (here: the dual-master detector's), only over an open connection. */
  sendService: (to: string, service: string, data: unknown) => void
  dial: (peer: string, addrs: readonly string[]) => void
  hangup: (peer: string) => void
  /**
   * Dials every seed again (the member knows its seed addresses). `probe`: the member was in a
   * group before (it is alone after an exclusion or a partition), so a seed may be across a cut
   * that can heal at any moment: the dial gives up soon, as a discovery probe does, so that the
   * next round dials afresh instead of waiting behind a SYN lost to the cut (and probes to the
   * same peer, which join a pending dial, are not held up by it either).
   */
  dialSeeds: (probe: boolean) => void
  /** Writes durable state; false when the write failed. */
  persist: (maxEpoch: number, basis: Basis) => boolean
  events: DriverEvents
}

/** What the driver reports; the member turns these into its public events. */
export interface DriverEvents {
  view: (change: ViewChange) => void
  excluded: (by: string, previous: View | undefined) => void
  suspect: (peer: string, reason: 'silence' | 'disconnect') => void
  refuted: (peer: string) => void
  waiting: (e: { readonly reason: WaitingReason, readonly joiners: number, readonly expect: number | undefined }) => void
  merge: (view: View, rejoined: readonly MemberRecord[]) => void
  splitBrain: (e: DualMasterDetected) => void
  /** As coordinator, a joiner or merging group was not admitted: the view is at maxMembers. */
  limit: (e: { readonly members: number, readonly refused: string }) => void
  /** Input the core dropped. */
  dropped: (reason: string) => void
  /** The group installed a view without this member, which was leaving. */
  left: () => void
  /** A watcher threw; `call` runs each one so that a throw is reported and goes no further. */
  call: (event: 'mastership', fn: () => void) => void
}

interface Watcher {
  readonly masters: number
  last: boolean
  /** The epoch of the view in which this watcher last saw a promotion. */
  grantedIn: number | undefined
  readonly listener: (change: MastershipChange) => void
}

export class MemberDriver {
  private core: Membership | undefined
  private cancelTimer: (() => void) | undefined
  private timerAt = Number.POSITIVE_INFINITY
  private stopped = false
  private busy = false
  private readonly pending: Array<() => void> = []
  /** Set by stop(), or by a failed durable write: no longer master, whatever the rank. */
  private leaving = false
  private halted = false
  private readonly watchers = new Set<Watcher>()
  /** K for the core: masters + 1, raised by routes and watchers that ask for more masters. */
  private monitorsWanted: number
  /** Members this member judged dead (to tell a failover from a handover). */
  private readonly deadSeen = new Set<string>()
  /** Why the installed view came about: the reason of a first promotion in it. */
  private installReason: MastershipReason = 'elected'
  /** Members of earlier views, by id, with their incarnation: who comes back in a merge. Bounded. */
  private readonly formerMembers = new Map<string, number>()
  /** Peers with an open connection: where a master announces itself (policies/dual-master.ts). */
  private readonly connectedPeers = new Set<string>()
  private readonly dualMasters: DualMasterDetector
  private cancelAnnounce: (() => void) | undefined
  private lastSeedDial = Number.NEGATIVE_INFINITY
  /** This member has been in a group with others (see `dialSeeds`' probe). */
  private wasMember = false
  /** When the core's timer last fired: the cap on its sleep counts from there, not from the last input. */
  private lastTick = Number.NEGATIVE_INFINITY
  private leftWaiter: (() => void) | undefined
  /** How often the core's timer fired (each is a wake-up of the process). */
  timerFires = 0

  constructor (private readonly env: DriverEnv, private readonly opts: { readonly masters: number, readonly discoveryIntervalMs: number }) {
    this.monitorsWanted = opts.masters + 1
    this.dualMasters = new DualMasterDetector({
      view: () => this.core?.view,
      viewHasMasters: () => this.core?.quorumProblem === undefined,
      masters: opts.masters,
      rank: () => this.rank,
      send: (peer, data) => { if (this.connectedPeers.has(peer)) this.env.sendService(peer, MASTERSHIP_SERVICE, data) },
      report: event => { this.env.events.splitBrain(event) },
      clock: () => this.env.now()
    })
    // A master announces itself to everyone on promotion, then once a second to connected
    // peers outside its view (the other side of a healed partition) and every
    // ANNOUNCE_TO_VIEW_EVERY seconds to its own view (a frame per member costs idle CPU); no
    // timer while not master.
    this.watchMastership(opts.masters, c => {
      if (c.isMaster && this.cancelAnnounce === undefined) {
        this.dualMasters.announce(this.connectedPeers)
        this.announceEvery(0)
      } else if (!c.isMaster) this.stopAnnouncing()
    })
  }

  /** The core, once attached. */
  get membership (): Membership | undefined { return this.core }

  /** Starts driving `core`: dials the seeds and feeds it its start. */
  start (core: Membership): void {
    this.core = core
    this.lastTick = this.env.now()
    // K only ever rises: to what the watchers need, or to what the core was configured with.
    this.monitorsWanted = Math.max(this.monitorsWanted, core.monitorCount)
    core.setMonitors(this.monitorsWanted)
    this.dialSeeds(this.env.now())
    this.feed(now => core.start(now))
  }

  // ─── mastership ────────────────────────────────────────────────────────

  /**
   * This member's rank in the settled view, if it may act on it now (lease live, not leaving);
   * otherwise undefined. Computed against the clock at the call.
   */
  get rank (): number | undefined {
    return this.leaving ? undefined : this.core?.actingRank(this.env.now())
  }

  isMaster (masters: number): boolean {
    const rank = this.rank
    return rank !== undefined && rank < masters
  }

  /**
   * Calls `listener` whenever this member starts or stops being one of the first `masters`
   * members (serially, after the change). A master needs a lease, and a lease needs heartbeats
   * with every member: rank N − 1 must monitor everyone, and so must the next in line, so this
   * raises K to masters + 1 if need be. Returns a function that stops watching.
   */
  watchMastership (masters: number, listener: (change: MastershipChange) => void): () => void {
    if (masters + 1 > this.monitorsWanted) {
      this.monitorsWanted = masters + 1
      this.core?.setMonitors(this.monitorsWanted)
    }
    const watcher: Watcher = { masters, last: this.isMaster(masters), grantedIn: undefined, listener }
    this.watchers.add(watcher)
    return () => { this.watchers.delete(watcher) }
  }

  /** The N of every masters(N) watched, ascending. */
  mastershipLevels (): number[] {
    return [...new Set([...this.watchers].map(w => w.masters))].sort((a, b) => a - b)
  }

  /** Marks this member as not master (stop() begins): its work stops before the group hears. */
  beginLeave (): void {
    this.leaving = true
    this.evaluateMastership('leaving')
  }

  /** Asks the group for a view without this member; resolves when it is installed, or after `timeoutMs`. */
  async leave (timeoutMs: number): Promise<void> {
    const core = this.core
    if (core === undefined || core.status === 'left') return
    await new Promise<void>(resolve => {
      const cancel = this.env.setTimer(done, timeoutMs)
      this.leftWaiter = done
      function done (): void { cancel(); resolve() }
      this.feed(now => core.leave(now))
    })
    this.leftWaiter = undefined
  }

  /** Stops every timer; inputs after this are ignored. Idempotent. */
  close (): void {
    if (this.stopped) return
    this.stopped = true
    this.cancelTimer?.()
    this.cancelTimer = undefined
    this.evaluateMastership('leaving')
    this.stopAnnouncing()
  }

  /** Unexpected-master announcements seen so far (policies/dual-master.ts). */
  get splitBrainsDetected (): number { return this.dualMasters.detected }

  // ─── inputs ────────────────────────────────────────────────────────────

  connected (peer: string): void {
    this.connectedPeers.add(peer)
    this.feed(now => this.core?.connectedTo(peer, now))
    // A new connection may be the other side of a healed partition: tell it who we are.
    this.dualMasters.announce([peer])
  }

  disconnected (peer: string): void {
    this.connectedPeers.delete(peer)
    this.feed(now => this.core?.disconnectedFrom(peer, now))
  }

  dialFailed (peer: string): void {
    this.feed(now => this.core?.dialFailed(peer, now))
  }

  seedsUnreachable (): void {
    this.feed(now => this.core?.seedsUnreachable(now))
  }

  /** A seed of this cluster answered speaking another wire version (see Joiner.otherVersionSeen). */
  otherVersionSeen (): void {
    this.feed(now => this.core?.otherVersionSeen(now))
  }

  receive (from: string, msg: ProtocolMessage): void {
    this.feed(now => this.core?.receive(from, msg, now))
  }

  /** A dual-master detector message; false when it is malformed (the caller counts it). */
  mastershipMessage (from: string, data: unknown): boolean {
    return this.dualMasters.onMessage(from, data)
  }

  // ─── the loop ──────────────────────────────────────────────────────────

  /** Runs one core input and carries out its effects; inputs that arrive meanwhile queue. */
  feed (input: (now: number) => Effect[] | undefined): void {
    if (this.core === undefined || this.stopped) return
    this.pending.push(() => {
      const effects = input(this.env.now()) ?? []
      let reason: MastershipReason | undefined
      for (const e of effects) {
        // Nothing that relies on a write that failed may go out (see `persist`).
        if (this.halted) break
        this.carryOut(e)
        if (e.type === 'install') reason = this.installReason = this.viewReason(e.view, e.previous)
        else if (e.type === 'excluded') reason = 'excluded'
      }
      this.evaluateMastership(reason)
    })
    if (this.busy) return
    this.busy = true
    try {
      for (let job = this.pending.shift(); job !== undefined; job = this.pending.shift()) job()
    } finally {
      this.busy = false
    }
    this.arm()
  }

  private carryOut (e: Effect): void {
    const env = this.env
    switch (e.type) {
      case 'send':
        env.send(e.to, e.msg, { addrs: e.addrs, onlyIfConnected: e.onlyIfConnected, probe: e.probe === true })
        break
      case 'dial':
        env.dial(e.peer, e.addrs)
        break
      case 'hangup':
        env.hangup(e.peer)
        break
      case 'persist':
        if (!env.persist(e.maxEpoch, e.basis)) {
          this.halted = true
          this.leaving = true
        }
        break
      case 'install': {
        const core = this.core as Membership
        if (e.view.members.length > 1) this.wasMember = true
        const { joined, left } = diffMembers(e.previous, e.view)
        const isCoordinator = core.isCoordinator(env.now())
        env.events.view({ view: e.view, previous: e.previous, joined, left, isCoordinator, quorum: core.quorumProblem ?? 'ok' })
        this.noteMerge(e.view, e.previous, joined)
        break
      }
      case 'excluded':
        env.events.excluded(e.by, e.previous)
        break
      case 'suspect':
        env.events.suspect(e.peer, e.reason)
        break
      case 'refuted':
        env.events.refuted(e.peer)
        break
      case 'left':
        this.leftWaiter?.()
        env.events.left()
        break
      case 'drop':
        env.events.dropped(e.reason)
        break
      case 'dead':
        this.deadSeen.add(e.peer)
        break
      case 'waiting':
        env.events.waiting({ reason: e.reason, joiners: e.joiners, expect: e.expect })
        break
      case 'limit':
        env.events.limit({ members: e.members, refused: e.refused })
        break
    }
  }

  /**
   * Sets the one timer to the core's next deadline, or to the next seed re-dial while we have no
   * group; called after every input, since input moves deadlines. An idle member therefore wakes
   * about once per heartbeat period instead of at a fixed tick rate.
   */
  private arm (): void {
    const core = this.core
    if (core === undefined || this.stopped) return
    const now = this.env.now()
    // Capped from the last tick: a stream of input must not put the next tick off for good.
    let due = Math.min(core.nextDeadline(now), Math.max(now, this.lastTick + MAX_SLEEP_MS))
    if (this.alone(core)) due = Math.min(due, Math.max(now, this.lastSeedDial + this.opts.discoveryIntervalMs))
    if (this.cancelTimer !== undefined && due === this.timerAt) return
    this.cancelTimer?.()
    this.timerAt = due
    // Node's timers have whole-millisecond resolution and may fire up to 1 ms early against
    // performance.now(): round up, so that what is due is due when the timer runs.
    this.cancelTimer = this.env.setTimer(() => this.onTimer(), Math.ceil(due - now) + 1)
  }

  private onTimer (): void {
    this.cancelTimer = undefined
    this.timerFires++
    const due = this.timerAt
    this.timerAt = Number.POSITIVE_INFINITY
    const now = this.env.now()
    this.lastTick = now
    // Late by more than the lag threshold: this process was paused (see Membership.tick).
    this.feed(n => this.core?.tick(n, Math.max(0, n - due - 2)))
    const core = this.core
    // Trap 6: a failed seed dial is not retried by libp2p; re-dial while we have no group.
    if (core !== undefined && this.alone(core) && now >= this.lastSeedDial + this.opts.discoveryIntervalMs) this.dialSeeds(now)
    this.arm()
  }

  private alone (core: Membership): boolean {
    return core.status === 'joining' || core.view?.members.length === 1
  }

  private dialSeeds (now: number): void {
    this.lastSeedDial = now
    this.env.dialSeeds(this.wasMember)
  }

  // ─── what the application sees ─────────────────────────────────────────

  /** Tells every watcher whose masters(N) status changed, with the reason. */
  private evaluateMastership (hint: MastershipReason | undefined): void {
    const rank = this.rank
    const core = this.core
    const view = core?.view
    const epoch = view?.id.epoch ?? 0
    for (const w of [...this.watchers]) {
      const now = rank !== undefined && rank < w.masters
      if (now === w.last) continue
      w.last = now
      // A first promotion in a view keeps the view's reason even when the lease came a moment
      // later (a joiner needs one heartbeat echo); a later one in the same view is a renewal.
      const reason = hint ?? (this.leaving
        ? 'leaving'
        : now ? (w.grantedIn === epoch ? 'lease-renewed' : this.installReason) : 'lease-expired')
      if (now) w.grantedIn = epoch
      const change: MastershipChange = { isMaster: now, epoch, token: now && core !== undefined ? tokenString({ epoch, holder: core.id }) : undefined, rank, masters: w.masters, reason, view }
      this.env.events.call('mastership', () => w.listener(change))
    }
  }

  /** Why a new view changed our rank: an older member failed, left, or something else. */
  private viewReason (view: View, previous: View | undefined): MastershipReason {
    if (this.core?.quorumProblem !== undefined) return 'no-quorum'
    if (previous === undefined) return 'elected'
    const self = this.core?.id
    const myOldRank = previous.members.findIndex(m => m.id === self)
    const gone = previous.members.slice(0, Math.max(0, myOldRank)).filter(m => !view.members.some(n => n.id === m.id))
    const reason: MastershipReason = gone.length === 0 ? 'view' : gone.some(m => this.deadSeen.has(m.id)) ? 'failover' : 'handover'
    for (const m of previous.members) if (!view.members.some(n => n.id === m.id)) this.deadSeen.delete(m.id)
    return reason
  }

  /** Reports `merge` when members of an earlier view (the same processes) came back. */
  private noteMerge (view: View, previous: View | undefined, joined: readonly MemberRecord[]): void {
    const self = this.core?.id
    for (const m of previous?.members ?? []) {
      if (m.id === self) continue
      this.formerMembers.delete(m.id)
      this.formerMembers.set(m.id, m.incarnation)
    }
    if (this.formerMembers.size > 1024) this.formerMembers.delete(this.formerMembers.keys().next().value as string)
    const rejoined = joined.filter(m => this.formerMembers.get(m.id) === m.incarnation)
    if (rejoined.length > 0) this.env.events.merge(view, rejoined)
  }

  private announceEvery (round: number): void {
    this.cancelAnnounce = this.env.setTimer(() => {
      const all = (round + 1) % ANNOUNCE_TO_VIEW_EVERY === 0
      const view = this.core?.view
      this.dualMasters.announce(all ? this.connectedPeers : [...this.connectedPeers].filter(p => view === undefined || !view.members.some(m => m.id === p)))
      this.announceEvery(round + 1)
    }, ANNOUNCE_INTERVAL_MS)
  }

  private stopAnnouncing (): void {
    this.cancelAnnounce?.()
    this.cancelAnnounce = undefined
  }
}
