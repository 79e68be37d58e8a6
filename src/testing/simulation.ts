/**
 * A deterministic simulation of many members on a manual clock (after etcd-raft's rafttest
 * network). Each member runs the same code as a real one: its membership core through the
 * member driver (runtime/driver.ts: effects, timers, mastership and its reasons, merges, the
 * dual-master detector); only the network and the clocks are simulated.
 *
 * Faults: per-message delay, loss (a retransmission on streams; a lost datagram), duplication
 * and reordering (datagrams; streams are FIFO per connection, see sim-network.ts); partitions
 * into sides, cuts of single links, one way or both (so partitions need not be transitive);
 * crashes; hangs (SIGSTOP: the process keeps its connections but processes nothing; on resume
 * its due timers run before its queued input, as in Node's event loop); graceful leaves;
 * restarts under the same id with empty or durable state; per-member clocks with an offset and
 * a rate, and wall-clock steps.
 *
 * A hook runs after every step so tests can check invariants continuously (invariants.ts).
 */
import { foundingRule, Membership, type Founding } from '../core/membership.js'
import { DEFAULT_TIMING, type Timing } from '../core/timing.js'
import type { View } from '../core/view.js'
import type { ProtocolMessage } from '../core/messages.js'
import type { Basis, QuorumRule } from '../core/quorum.js'
import type { MastershipChange } from '../runtime/changes.js'
import { MemberDriver, type DriverEnv } from '../runtime/driver.js'
import { MASTERSHIP_SERVICE } from '../policies/dual-master.js'
import { seededRandom } from './random.js'
import { SimNetwork, type Endpoint, type Payload } from './sim-network.js'
import { EventQueue } from './event-queue.js'

export interface SimulationOptions {
  readonly seed: number
  readonly timing?: Partial<Timing>
  /** Probability that one message is lost (a datagram), or retransmitted (on a stream). @default 0 */
  readonly lossRate?: number
  /** Probability that one message arrives twice. @default 0 */
  readonly duplicateRate?: number
  /** One-way delay range in ms. @default [0.2, 3] */
  readonly delayMs?: readonly [number, number]
  /** Delay before peers notice a crashed process's connection closing. @default 60 */
  readonly crashNoticeMs?: number
  /** How long a dial to an unresponsive (hung or unreachable) process takes to fail. @default 1000 */
  readonly dialTimeoutMs?: number
  /** Split-brain policy and static quorum of every node (unless addNode says otherwise). @default allow */
  readonly quorum?: QuorumRule
  /**
   * Members' wall clocks start here (Unix ms), and their epoch floor follows them, as a real
   * member's does. Without it the floor is 0 and epochs count from 1. @default none
   */
  readonly wallClock?: number
}

export type NodeState = 'up' | 'hung' | 'crashed' | 'stopped'

/** A member's clocks: monotonic = offset + rate × simulated time; wall = that + wallOffset (+ wallClock). */
export interface NodeClock {
  readonly offsetMs?: number
  /** 1 ± a few 1e-4 for real oscillators. @default 1 */
  readonly rate?: number
  readonly wallOffsetMs?: number
}

export interface NodeOptions {
  readonly monitors?: number
  readonly quorum?: QuorumRule
  readonly founding?: Founding
  /** Durable state to start from (as a `stateDir` would give). */
  readonly restored?: { readonly maxEpoch: number, readonly basis: Basis }
  /** Whether this node keeps durable state (its `persist` effects are recorded in `persisted`). */
  readonly durable?: boolean
  readonly clock?: NodeClock
  /** masters(N) of the node's driver. @default 1 */
  readonly masters?: number
  /** The largest view it proposes as coordinator (MembershipConfig.maxMembers). @default no limit */
  readonly maxMembers?: number
}

export interface SimNode {
  readonly id: string
  readonly driver: MemberDriver
  readonly core: Membership
  state: NodeState
  /** Every view this node installed, in order, with the time. */
  readonly installs: Array<{ at: number, view: View }>
  /** Its coordinator grants and demotions (what a route sees), with the time. */
  readonly mastership: Array<{ at: number, change: MastershipChange }>
  readonly seeds: readonly string[]
  left: boolean
  /** How many times this node's core timer fired (its wake-ups, which cost CPU in a real process). */
  readonly timerFires: number
  /** Input the core dropped, by reason. */
  readonly drops: Record<string, number>
  /** The `waiting` effects this node produced (it found no group and may not found one). */
  readonly waits: Array<{ at: number, reason: string, joiners: number }>
  /** What it last wrote to durable state (with `durable`). */
  persisted: { maxEpoch: number, basis: Basis } | undefined
  /** The `limit` effects it produced: joiners or merging groups refused at maxMembers. */
  readonly limits: Array<{ at: number, members: number, refused: string }>
  /** Dual-master reports it made. */
  readonly splitBrains: number
  readonly incarnation: number
  /** The memberships it promised (acked), by epoch: sorted member ids, space-separated. */
  readonly promised: ReadonlyMap<number, string>
  /** Epochs it promised twice, to different memberships (must stay empty). */
  readonly promiseConflicts: readonly string[]
  /** Whether it started from durable state (a restart with `durable`). */
  readonly restoredFromState: boolean
  /** Its monotonic clock now: what its core's time-dependent answers are asked at (actingRank, isCoordinator). */
  now: () => number
}

/** One simulated process: its driver, its clock, its input queue and its network endpoint. */
class SimProcess implements SimNode, Endpoint {
  state: NodeState = 'up'
  left = false
  readonly installs: Array<{ at: number, view: View }> = []
  readonly mastership: Array<{ at: number, change: MastershipChange }> = []
  readonly drops: Record<string, number> = {}
  readonly waits: Array<{ at: number, reason: string, joiners: number }> = []
  readonly limits: Array<{ at: number, members: number, refused: string }> = []
  persisted: { maxEpoch: number, basis: Basis } | undefined
  splitBrains = 0
  readonly promised = new Map<number, string>()
  readonly promiseConflicts: string[] = []
  /** Proposals received, by proposer and epoch: what an ack to it promises. */
  private readonly proposals = new Map<string, string>()
  /** Input that arrived while hung. */
  readonly backlog: Array<() => void> = []
  /** Timers that came due while hung: they run first on resume. */
  readonly overdue: Array<() => void> = []
  readonly driver: MemberDriver
  private coreRef: Membership | undefined
  private readonly offset: number
  private readonly rate: number
  wallOffset: number

  constructor (
    private readonly sim: Simulation,
    readonly id: string,
    readonly seeds: readonly string[],
    readonly incarnation: number,
    clock: NodeClock,
    masters: number,
    readonly restoredFromState: boolean
  ) {
    this.offset = clock.offsetMs ?? 0
    this.rate = clock.rate ?? 1
    this.wallOffset = clock.wallOffsetMs ?? 0
    const env: DriverEnv = {
      now: () => this.now(),
      setTimer: (fn, ms) => sim.timer(this, fn, ms / this.rate),
      send: (to, msg, o) => { sim.sendFrom(this, to, msg, o.onlyIfConnected, o.probe) },
      sendService: (to, service, data) => { sim.net.send(this, to, { kind: 'service', service, data }, { onlyIfConnected: true, dialTimeoutMs: sim.dialTimeoutMs }) },
      dial: (peer) => { sim.net.dial(this, peer, sim.dialTimeoutMs) },
      hangup: peer => { sim.net.hangup(this, peer) },
      dialSeeds: probe => { for (const seed of this.seeds) if (seed !== this.id) sim.net.dial(this, seed, probe ? Math.min(300, sim.dialTimeoutMs) : sim.dialTimeoutMs) },
      persist: (maxEpoch, basis) => { this.persisted = { maxEpoch, basis }; return true },
      events: {
        view: c => { this.installs.push({ at: sim.now, view: c.view }) },
        excluded: () => {},
        suspect: () => {},
        refuted: () => {},
        waiting: e => { this.waits.push({ at: sim.now, reason: e.reason, joiners: e.joiners }) },
        merge: () => {},
        splitBrain: () => { this.splitBrains++ },
        limit: e => { this.limits.push({ at: sim.now, members: e.members, refused: e.refused }) },
        dropped: reason => { this.drops[reason] = (this.drops[reason] ?? 0) + 1 },
        left: () => { sim.stopped(this) },
        call: (_event, fn) => { fn() }
      }
    }
    this.driver = new MemberDriver(env, { masters, discoveryIntervalMs: sim.timing.discoveryIntervalMs })
    this.driver.watchMastership(1, change => { this.mastership.push({ at: sim.now, change }) })
  }

  get core (): Membership { return this.coreRef as Membership }
  get timerFires (): number { return this.driver.timerFires }

  /** This process's monotonic clock. */
  now (): number { return this.offset + this.rate * this.sim.now }
  /** Its wall clock. */
  wall (): number { return this.sim.wallClock + this.wallOffset + this.now() }

  attach (core: Membership): void {
    this.coreRef = core
    this.driver.start(core)
  }

  alive (): boolean { return this.state !== 'crashed' && !this.left }
  responsive (): boolean { return this.state === 'up' && !this.left }

  input (fn: () => void): void {
    if (!this.alive()) return
    if (this.state === 'hung') this.backlog.push(fn)
    else fn()
  }

  /** Remembers what an ack of ours promises (for invariants.ts: one epoch, one membership). */
  noteSent (to: string, msg: ProtocolMessage): void {
    if (msg.t !== 'ack') return
    const ids = this.proposals.get(`${to} ${msg.epoch}`)
    if (ids === undefined) return
    const before = this.promised.get(msg.epoch)
    if (before !== undefined && before !== ids) this.promiseConflicts.push(`epoch ${msg.epoch}: {${before}} then {${ids}}`)
    this.promised.set(msg.epoch, ids)
  }

  deliver (from: string, payload: Payload): void {
    if (payload.kind === 'protocol' && payload.msg.t === 'propose') {
      this.proposals.set(`${from} ${payload.msg.epoch}`, payload.msg.members.map(m => m.id).sort().join(' '))
      if (this.proposals.size > 256) this.proposals.delete(this.proposals.keys().next().value as string)
    }
    if (payload.kind === 'protocol') this.driver.receive(from, payload.msg)
    else if (payload.service === MASTERSHIP_SERVICE && !this.driver.mastershipMessage(from, payload.data)) {
      this.drops['mastership-invalid'] = (this.drops['mastership-invalid'] ?? 0) + 1
    }
  }

  connected (peer: string): void { this.driver.connected(peer) }
  disconnected (peer: string): void { this.driver.disconnected(peer) }
  dialFailed (peer: string): void { this.driver.dialFailed(peer) }
}

export class Simulation {
  readonly timing: Timing
  readonly nodes = new Map<string, SimNode>()
  /** Every process that ran under each id, in order (restarts keep the id). */
  readonly lives = new Map<string, SimNode[]>()
  readonly random: () => number
  now = 0
  /** Called after every processed event; throw from it to fail a test. */
  onStep: ((sim: Simulation) => void) | undefined
  /** Called for every protocol message a node sends (before loss or partitions apply). */
  onSend: ((from: string, to: string, msg: ProtocolMessage) => void) | undefined
  lossRate: number
  duplicateRate: number
  readonly crashNoticeMs: number
  readonly dialTimeoutMs: number
  readonly wallClock: number
  readonly net: SimNetwork
  private readonly delay: readonly [number, number]
  private readonly hasWallClock: boolean
  private readonly queue = new EventQueue()
  private seq = 0
  private groups: ((a: string, b: string) => boolean) | undefined
  /** Directed cuts, `from>to`. */
  private readonly cuts = new Set<string>()
  private incarnation = 0
  private readonly quorum: QuorumRule | undefined

  constructor (options: SimulationOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing }
    this.random = seededRandom(options.seed)
    this.lossRate = options.lossRate ?? 0
    this.duplicateRate = options.duplicateRate ?? 0
    this.delay = options.delayMs ?? [0.2, 3]
    this.crashNoticeMs = options.crashNoticeMs ?? 60
    this.dialTimeoutMs = options.dialTimeoutMs ?? 1000
    this.quorum = options.quorum
    this.hasWallClock = options.wallClock !== undefined
    this.wallClock = options.wallClock ?? 0
    const sim = this
    this.net = new SimNetwork({
      get now () { return sim.now },
      after: (ms, fn) => { this.after(ms, fn) },
      random: () => this.random(),
      delay: () => this.oneWay(),
      blocked: (a, b) => this.blocked(a, b),
      endpoint: id => {
        const n = this.nodes.get(id) as SimProcess | undefined
        return n !== undefined && n.alive() ? n : undefined
      },
      get lossRate () { return sim.lossRate },
      get duplicateRate () { return sim.duplicateRate },
      get crashNoticeMs () { return sim.crashNoticeMs }
    })
  }

  /** Starts a member that knows `seeds` (ids of other nodes). */
  addNode (id: string, seeds: readonly string[] = [], opts: NodeOptions = {}): SimNode {
    const quorum = opts.quorum ?? this.quorum
    const incarnation = ++this.incarnation
    const node = new SimProcess(this, id, seeds, incarnation, opts.clock ?? {}, opts.masters ?? 1, opts.restored !== undefined)
    const core = new Membership({
      self: { id, name: id, incarnation, joinEpoch: 0, addrs: [`sim://${id}`], meta: {} },
      timing: this.timing,
      hasSeeds: seeds.filter(s => s !== id).length > 0,
      founding: opts.founding ?? foundingRule(quorum ?? { splitBrain: 'allow', quorum: 1 }),
      random: this.random,
      ...(this.hasWallClock ? { epochFloor: () => Math.max(node.wall(), (opts.restored?.maxEpoch ?? 0) + 1) } : {}),
      ...(opts.monitors !== undefined ? { monitors: opts.monitors } : {}),
      ...(opts.maxMembers !== undefined ? { maxMembers: opts.maxMembers } : {}),
      ...(opts.restored !== undefined ? { restored: opts.restored } : {}),
      ...(opts.durable === true ? { durable: true } : {}),
      ...(quorum !== undefined ? { quorum } : {})
    })
    this.nodes.set(id, node)
    this.lives.set(id, [...(this.lives.get(id) ?? []), node])
    node.attach(core)
    // As the shell does: when every seed has failed once, the core hears that none answers.
    const targets = seeds.filter(s => s !== id)
    let pending = targets.length
    for (const seed of targets) {
      this.net.dial(node, seed, this.dialTimeoutMs, ok => {
        if (!ok && --pending === 0) node.input(() => node.driver.seedsUnreachable())
        if (ok) pending = Number.POSITIVE_INFINITY
      })
    }
    return node
  }

  /**
   * Kills the process under `id` and starts a new one under the same id, with the same seeds:
   * `durable` gives it what the old one last wrote (a `stateDir`), `empty` nothing (a kept peer
   * key without state). A node that is not crashed yet is crashed first. `seeds`: its new seed
   * list, if not the old one.
   */
  restart (id: string, state: 'durable' | 'empty', opts: NodeOptions = {}, seeds?: readonly string[]): SimNode {
    const old = this.must(id) as SimProcess
    if (old.alive()) this.crash(id)
    const restored = state === 'durable' ? old.persisted : undefined
    return this.addNode(id, seeds ?? old.seeds, {
      ...opts,
      durable: state === 'durable',
      ...(restored !== undefined ? { restored } : {})
    })
  }

  crash (id: string): void {
    const node = this.must(id) as SimProcess
    if (node.state === 'crashed') return
    node.state = 'crashed'
    node.driver.close()
    this.net.crash(node)
  }

  hang (id: string): void {
    const node = this.must(id) as SimProcess
    if (node.state === 'up') node.state = 'hung'
  }

  resume (id: string): void {
    const node = this.must(id) as SimProcess
    if (node.state !== 'hung') return
    node.state = 'up'
    // Node's event loop runs due timers before it reads queued sockets.
    for (const timer of node.overdue.splice(0)) {
      if (node.state !== 'up') return
      timer()
    }
    for (const input of node.backlog.splice(0)) {
      if (node.state !== 'up') break
      input()
    }
  }

  /**
   * A graceful stop, as Member.stop() does it: no longer master, then a leave the group answers
   * with a view without this node; after `leaveTimeoutMs` (2 s) without one, the process stops anyway.
   */
  leave (id: string, leaveTimeoutMs = 2000): void {
    const node = this.must(id) as SimProcess
    node.input(() => {
      node.driver.beginLeave()
      node.driver.feed(now => node.core.leave(now))
      if (!node.left) this.timer(node, () => { if (!node.left) this.stopped(node) }, leaveTimeoutMs)
    })
  }

  /** Steps the wall clock of `id` by `deltaMs` (an NTP step; negative: back). Monotonic time does not move. */
  stepWallClock (id: string, deltaMs: number): void {
    (this.must(id) as SimProcess).wallOffset += deltaMs
  }

  /** Cuts every link between different groups; traffic between them is silently dropped. */
  partition (groups: ReadonlyArray<readonly string[]>): void {
    const side = new Map<string, number>()
    groups.forEach((g, i) => { for (const id of g) side.set(id, i) })
    this.groups = (a, b) => side.get(a) !== undefined && side.get(b) !== undefined && side.get(a) !== side.get(b)
  }

  /**
   * Cuts single links: each pair `[a, b]` stops a's packets to b, and b's to a too unless
   * `oneWay`. Cuts add up, with each other and with `partition`; `heal` lifts them all. With
   * these, partitions need not be transitive: a bridge (`{1,2} | 3 | {4,5}`, where 3 reaches
   * everyone), a ring (each reaches only its neighbours), a member that cannot send.
   */
  cut (pairs: ReadonlyArray<readonly [string, string]>, opts: { oneWay?: boolean } = {}): void {
    for (const [a, b] of pairs) {
      this.cuts.add(`${a}>${b}`)
      if (opts.oneWay !== true) this.cuts.add(`${b}>${a}`)
    }
  }

  heal (): void {
    this.groups = undefined
    this.cuts.clear()
  }

  /** Whether packets from `a` to `b` are dropped. */
  blocked (a: string, b: string): boolean {
    return this.groups?.(a, b) === true || (this.cuts.size > 0 && this.cuts.has(`${a}>${b}`))
  }

  /**
   * Hands node `to` a message as if `from` had sent it over an authenticated connection: a peer
   * outside the simulation (a stranger, a fuzzer) or one of the nodes. Replies to a peer that is
   * not a node go nowhere.
   */
  inject (from: string, to: string, msg: ProtocolMessage): void {
    this.after(this.oneWay(), () => {
      const node = this.nodes.get(to) as SimProcess | undefined
      node?.input(() => node.driver.receive(from, msg))
    })
  }

  runFor (ms: number): void { this.runUntil(this.now + ms) }

  runUntil (t: number): void {
    for (let guard = 0; guard < 10_000_000; guard++) {
      const next = this.queue.peek()
      if (next === undefined || next.at > t) break
      this.queue.pop()
      this.now = next.at
      next.run()
      this.onStep?.(this)
    }
    this.now = Math.max(this.now, t)
  }

  /** Runs until `predicate` holds or `limitMs` passes; returns whether it held. */
  runUntilTrue (predicate: () => boolean, limitMs: number): boolean {
    const end = this.now + limitMs
    while (this.now < end) {
      if (predicate()) return true
      this.runFor(Math.min(10, end - this.now))
    }
    return predicate()
  }

  /** Nodes that are running (not crashed, stopped or hung). */
  upNodes (): SimNode[] {
    return [...this.nodes.values()].filter(n => n.state === 'up' && !n.left)
  }

  /** Whether all running nodes installed the same view containing exactly the running nodes. */
  converged (): boolean {
    const up = this.upNodes()
    const first = up[0]?.core.view
    if (first === undefined) return false
    const ids = new Set(up.map(n => n.id))
    if (first.members.length !== ids.size || !first.members.every(m => ids.has(m.id))) return false
    return up.every(n => {
      const v = n.core.view
      return v !== undefined && v.id.epoch === first.id.epoch &&
        v.members.every((m, i) => m.id === first.members[i]?.id) && v.members.length === first.members.length
    })
  }

  // ─── for the processes ─────────────────────────────────────────────────

  /** A timer of `node`, `ms` of simulated time from now: it does not run while the node is hung. */
  timer (node: SimProcess, fn: () => void, ms: number): () => void {
    let cancelled = false
    this.after(Math.max(0, ms), () => {
      if (cancelled || !node.alive()) return
      if (node.state === 'hung') node.overdue.push(() => { if (!cancelled) fn() })
      else fn()
    })
    return () => { cancelled = true }
  }

  sendFrom (node: SimProcess, to: string, msg: ProtocolMessage, onlyIfConnected: boolean, probe: boolean): void {
    this.onSend?.(node.id, to, msg)
    node.noteSent(to, msg)
    if (msg.t === 'hb') { this.net.datagram(node, to, { kind: 'protocol', msg }); return }
    this.net.send(node, to, { kind: 'protocol', msg }, { onlyIfConnected, dialTimeoutMs: probe ? Math.min(300, this.dialTimeoutMs) : this.dialTimeoutMs })
  }

  /** A node left the group gracefully: its process stops and closes its connections. */
  stopped (node: SimProcess): void {
    if (node.left) return
    node.left = true
    node.state = 'stopped'
    node.driver.close()
    this.net.stop(node)
  }

  // ─── internals ─────────────────────────────────────────────────────────

  private must (id: string): SimNode {
    const node = this.nodes.get(id)
    if (node === undefined) throw new Error(`no node ${id}`)
    return node
  }

  private after (ms: number, run: () => void): void {
    this.queue.push({ at: this.now + ms, seq: this.seq++, run })
  }

  private oneWay (): number {
    const [min, max] = this.delay
    return min + this.random() * (max - min)
  }
}
