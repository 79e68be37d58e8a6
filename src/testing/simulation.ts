/**
 * A deterministic simulation of many members on a manual clock (after etcd-raft's rafttest
 * network): a seeded network with per-message delay and loss, partitions, crashes, hangs
 * (SIGSTOP: the process keeps its connections but processes nothing; on resume its timers run
 * before its queued input, as in Node's event loop) and graceful leaves.
 *
 * The simulation plays the shell's part: it carries out the core's effects. A hook runs after
 * every step so tests can check invariants continuously.
 */
import { foundingRule, Membership, type Effect, type Founding } from '../core/membership.js'
import { DEFAULT_TIMING, type Timing } from '../core/timing.js'
import type { View } from '../core/view.js'
import type { ProtocolMessage } from '../core/messages.js'
import { seededRandom } from './random.js'
import type { Basis, QuorumRule } from '../core/quorum.js'

export interface SimulationOptions {
  readonly seed: number
  readonly timing?: Partial<Timing>
  /** Probability that one direct message is lost. @default 0 */
  readonly lossRate?: number
  /** One-way delay range in ms. @default [0.2, 3] */
  readonly delayMs?: readonly [number, number]
  /** Delay before peers notice a crashed process's connection closing. @default 60 */
  readonly crashNoticeMs?: number
  /** How long a dial to an unresponsive (hung or unreachable) process takes to fail. @default 1000 */
  readonly dialTimeoutMs?: number
  /** Split-brain policy and static quorum of every node (unless addNode says otherwise). @default allow */
  readonly quorum?: QuorumRule
}

export type NodeState = 'up' | 'hung' | 'crashed' | 'stopped'

export interface SimNode {
  readonly id: string
  readonly core: Membership
  state: NodeState
  /** Every view this node installed, in order, with the time. */
  readonly installs: Array<{ at: number, view: View }>
  /** Input that arrived while hung. */
  readonly backlog: Array<() => void>
  readonly seeds: readonly string[]
  left: boolean
  lastSeedDial: number
  /** When this node's timer is due (the shell's single timer), if armed. */
  timerAt: number | undefined
  /** The deadline of a timer that came due while the node was hung: it runs first on resume. */
  overdue: number | undefined
  /** How many times this node's timer fired (its wake-ups, which cost CPU in a real process). */
  timerFires: number
  /** Input the core dropped, by reason. */
  readonly drops: Record<string, number>
  /** The `waiting` effects this node produced (it found no group and may not found one). */
  readonly waits: Array<{ at: number, reason: string, joiners: number }>
}

interface Scheduled { at: number, seq: number, run: () => void }

/** The longest a timer sleeps, whatever the deadlines say (the shell's cap too). */
const MAX_SLEEP_MS = 1000

export class Simulation {
  readonly timing: Timing
  readonly nodes = new Map<string, SimNode>()
  readonly random: () => number
  now = 0
  /** Called after every processed event; throw from it to fail a test. */
  onStep: ((sim: Simulation) => void) | undefined
  /** Called for every message a node sends (before loss or partitions apply). */
  onSend: ((from: string, to: string, msg: ProtocolMessage) => void) | undefined
  lossRate: number
  private readonly delay: readonly [number, number]
  private readonly crashNoticeMs: number
  private readonly dialTimeoutMs: number
  private queue: Scheduled[] = []
  private seq = 0
  private readonly links = new Set<string>()
  private groups: ((a: string, b: string) => boolean) | undefined
  /** Directed cuts, `from>to`. */
  private readonly cuts = new Set<string>()
  private incarnation = 0
  private readonly quorum: QuorumRule | undefined

  constructor (options: SimulationOptions) {
    this.timing = { ...DEFAULT_TIMING, ...options.timing }
    this.random = seededRandom(options.seed)
    this.lossRate = options.lossRate ?? 0
    this.delay = options.delayMs ?? [0.2, 3]
    this.crashNoticeMs = options.crashNoticeMs ?? 60
    this.dialTimeoutMs = options.dialTimeoutMs ?? 1000
    this.quorum = options.quorum
  }

  /** Starts a member that knows `seeds` (ids of other nodes); `monitors` is its K (default 2). */
  addNode (id: string, seeds: readonly string[] = [], opts: { monitors?: number, quorum?: QuorumRule, founding?: Founding, restored?: { maxEpoch: number, basis: Basis } } = {}): SimNode {
    const quorum = opts.quorum ?? this.quorum
    const core = new Membership({
      self: { id, name: id, incarnation: ++this.incarnation, joinEpoch: 0, addrs: [`sim://${id}`], meta: {} },
      timing: this.timing,
      hasSeeds: seeds.length > 0,
      founding: opts.founding ?? foundingRule(quorum ?? { splitBrain: 'allow', quorum: 1 }),
      random: this.random,
      ...(opts.monitors !== undefined ? { monitors: opts.monitors } : {}),
      ...(opts.restored !== undefined ? { restored: opts.restored } : {}),
      ...(quorum !== undefined ? { quorum } : {})
    })
    const node: SimNode = { id, core, state: 'up', installs: [], backlog: [], seeds, left: false, lastSeedDial: this.now, timerAt: undefined, overdue: undefined, timerFires: 0, drops: {}, waits: [] }
    this.nodes.set(id, node)
    this.apply(node, core.start(this.now))
    let pending = seeds.length
    for (const seed of seeds) {
      this.connect(id, seed, ok => {
        if (!ok && --pending === 0) this.input(node, () => this.apply(node, core.seedsUnreachable(this.now)))
        if (ok) pending = Number.POSITIVE_INFINITY
      })
    }
    this.arm(node)
    return node
  }

  crash (id: string): void {
    const node = this.must(id)
    node.state = 'crashed'
    for (const key of [...this.links]) {
      const [a, b] = key.split('|') as [string, string]
      if (a !== id && b !== id) continue
      this.links.delete(key)
      const other = a === id ? b : a
      this.after(this.crashNoticeMs, () => this.toNode(other, n => n.core.disconnectedFrom(id, this.now)))
    }
  }

  hang (id: string): void { this.must(id).state = 'hung' }

  resume (id: string): void {
    const node = this.must(id)
    if (node.state !== 'hung') return
    node.state = 'up'
    // Node's event loop runs due timers before it reads queued sockets.
    if (node.overdue !== undefined) {
      const due = node.overdue
      node.overdue = undefined
      this.fire(node, due)
    }
    const backlog = node.backlog.splice(0)
    for (const input of backlog) {
      if (node.state !== 'up') break
      input()
    }
  }

  leave (id: string): void {
    const node = this.must(id)
    this.input(node, () => this.apply(node, node.core.leave(this.now)))
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

  /**
   * Hands node `to` a message as if `from` had sent it over an authenticated connection: a peer
   * outside the simulation (a stranger, a fuzzer) or one of the nodes. Replies to a peer that is
   * not a node go nowhere.
   */
  inject (from: string, to: string, msg: ProtocolMessage): void {
    this.after(this.oneWay(), () => this.toNode(to, n => n.core.receive(from, msg, this.now)))
  }

  runFor (ms: number): void { this.runUntil(this.now + ms) }

  runUntil (t: number): void {
    for (let guard = 0; guard < 10_000_000; guard++) {
      const next = this.queue[0]
      if (next === undefined || next.at > t) break
      this.queue.shift()
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

  // ─── internals ───────────────────────────────────────────────────────────

  private must (id: string): SimNode {
    const node = this.nodes.get(id)
    if (node === undefined) throw new Error(`no node ${id}`)
    return node
  }

  private after (ms: number, run: () => void): void {
    const item = { at: this.now + ms, seq: this.seq++, run }
    // binary insertion keeps the queue ordered by (at, seq)
    let lo = 0
    let hi = this.queue.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const q = this.queue[mid] as Scheduled
      if (q.at < item.at || (q.at === item.at && q.seq < item.seq)) lo = mid + 1
      else hi = mid
    }
    this.queue.splice(lo, 0, item)
  }

  /**
   * As the shell does: one timer per node, set to the core's next deadline (or the next seed
   * re-dial while alone), and moved whenever input changes that deadline.
   */
  private arm (node: SimNode): void {
    if (node.state === 'crashed' || node.left || node.overdue !== undefined) return
    let due = Math.min(node.core.nextDeadline(this.now), this.now + MAX_SLEEP_MS)
    if (this.alone(node) && node.seeds.length > 0) due = Math.min(due, Math.max(this.now, node.lastSeedDial + this.timing.discoveryIntervalMs))
    if (node.timerAt === due) return
    node.timerAt = due
    this.after(due - this.now, () => {
      if (node.timerAt !== due) return // replaced by an earlier one
      node.timerAt = undefined
      if (node.state === 'crashed' || node.left) return
      if (node.state === 'hung') { node.overdue = due; return }
      this.fire(node, due)
    })
  }

  private fire (node: SimNode, due: number): void {
    node.timerFires++
    this.apply(node, node.core.tick(this.now, this.now - due))
    // As the shell does: re-dial seeds while joining or alone (a failed dial is not retried).
    if (this.alone(node) && this.now >= node.lastSeedDial + this.timing.discoveryIntervalMs) {
      node.lastSeedDial = this.now
      for (const seed of node.seeds) if (seed !== node.id) this.connect(node.id, seed)
    }
    this.arm(node)
  }

  private alone (node: SimNode): boolean {
    return node.core.status === 'joining' || node.core.view?.members.length === 1
  }

  /** Delivers input to a node now, or queues it while the node is hung. */
  private input (node: SimNode, run: () => void): void {
    if (node.state === 'crashed' || node.left) return
    if (node.state === 'hung') node.backlog.push(run)
    else run()
  }

  private toNode (id: string, fn: (n: SimNode) => Effect[]): void {
    const node = this.nodes.get(id)
    if (node === undefined) return
    this.input(node, () => this.apply(node, fn(node)))
  }

  private linkKey (a: string, b: string): string { return a < b ? `${a}|${b}` : `${b}|${a}` }

  /** Whether packets from `a` to `b` are dropped. */
  private blocked (a: string, b: string): boolean {
    return this.groups?.(a, b) === true || (this.cuts.size > 0 && this.cuts.has(`${a}>${b}`))
  }

  /** A connection needs packets both ways (a one-way cut fails the handshake). */
  private reachable (from: string, to: string): boolean {
    const target = this.nodes.get(to)
    return target !== undefined && target.state !== 'crashed' && !target.left && !this.blocked(from, to) && !this.blocked(to, from)
  }

  private oneWay (): number {
    const [min, max] = this.delay
    return min + this.random() * (max - min)
  }

  /** Opens a connection; both sides see `connectedTo`, or the dialler sees a failure. */
  private connect (from: string, to: string, done?: (ok: boolean) => void): void {
    const key = this.linkKey(from, to)
    if (this.links.has(key)) { done?.(true); return }
    const target = this.nodes.get(to)
    if (target === undefined || target.state === 'crashed' || target.left) {
      this.after(1, () => { done?.(false); this.toNode(from, n => n.core.dialFailed(to, this.now)) })
      return
    }
    if (!this.reachable(from, to) || target.state === 'hung') {
      this.after(this.dialTimeoutMs, () => { done?.(false); this.toNode(from, n => n.core.dialFailed(to, this.now)) })
      return
    }
    this.links.add(key)
    const d = this.oneWay() * 3
    this.after(d, () => {
      done?.(true)
      this.toNode(to, n => n.core.connectedTo(from, this.now))
      this.toNode(from, n => n.core.connectedTo(to, this.now))
    })
  }

  private deliver (from: string, to: string, msg: ProtocolMessage, onlyIfConnected: boolean): void {
    this.onSend?.(from, to, msg)
    const key = this.linkKey(from, to)
    if (!this.links.has(key)) {
      if (onlyIfConnected) return
      this.connect(from, to)
      if (!this.links.has(key)) return
    }
    if (this.blocked(from, to) || this.random() < this.lossRate) return
    // per-link FIFO is not modelled; the protocol must cope with reordering too
    // Sent bytes still arrive after the sender closes or dies (TCP flushes); a cut link drops them.
    this.after(this.oneWay(), () => {
      if (this.blocked(from, to)) return
      this.toNode(to, n => n.core.receive(from, msg, this.now))
    })
  }

  private apply (node: SimNode, effects: readonly Effect[]): void {
    this.applyEffects(node, effects)
    // Input may make work due sooner: re-arm the timer, as the shell does after every input.
    if (node.state === 'up') this.arm(node)
  }

  private applyEffects (node: SimNode, effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'send': this.deliver(node.id, e.to, e.msg, e.onlyIfConnected); break
        case 'dial': this.connect(node.id, e.peer); break
        case 'install': node.installs.push({ at: this.now, view: e.view }); break
        case 'drop': node.drops[e.reason] = (node.drops[e.reason] ?? 0) + 1; break
        case 'waiting': node.waits.push({ at: this.now, reason: e.reason, joiners: e.joiners }); break
        case 'left': {
          node.left = true
          node.state = 'stopped'
          // a stopped process closes its connections: peers see that at once
          for (const key of [...this.links]) {
            const [a, b] = key.split('|') as [string, string]
            if (a !== node.id && b !== node.id) continue
            this.links.delete(key)
            const other = a === node.id ? b : a
            this.after(1, () => this.toNode(other, n => n.core.disconnectedFrom(node.id, this.now)))
          }
          break
        }
        default: break
      }
    }
  }
}
