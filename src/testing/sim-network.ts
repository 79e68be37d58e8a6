/**
 * The simulated network of testing/simulation.ts: TCP-like connections and UDP-like datagrams
 * between simulated processes, on the simulation's event queue. It models what the real
 * transport does to the protocol, faults included:
 *
 *  - A connection joins two processes (incarnations: a restarted process has none of its
 *    predecessor's connections). Each direction is FIFO. A process sends to a peer on one
 *    channel, the oldest of its open connections to it, and stays on it until it closes: a new
 *    connection the peer dialled does not take over (as libp2p keeps a stream on its connection).
 *  - A link cut (partition, cut) drops packets. A direction that has data in flight across a
 *    cut is stuck: what was sent, and everything sent after it, waits for a retransmission that
 *    gets through, at TCP's backed-off times (200 ms, then doubling), so after a long cut it is
 *    delivered seconds after the heal, unless the connection is closed first.
 *  - Closing: a hang-up (abort), a crash or a stop sends one reset, which is lost across a cut;
 *    the far side then learns only when data it sends reaches the closed end (a reset in reply).
 *  - Message loss on a stream is a retransmission: a 200 ms delay for it and what follows.
 *    Datagrams (heartbeats sent `unreliable`) are independent: lost, duplicated and reordered.
 *  - A dial needs packets both ways; it fails at once against a closed port and after its
 *    timeout against a cut link or a process that does not answer (hung).
 */
import type { ProtocolMessage } from '../core/messages.js'

export type Payload =
  | { readonly kind: 'protocol', readonly msg: ProtocolMessage }
  | { readonly kind: 'service', readonly service: string, readonly data: unknown }

/** A simulated process as the network sees it. */
export interface Endpoint {
  readonly id: string
  /** Not crashed or stopped: its kernel answers. */
  alive: () => boolean
  /** Running (not hung): it completes handshakes. */
  responsive: () => boolean
  /** Input to the process (queued while it is hung). */
  input: (fn: () => void) => void
  deliver: (from: string, payload: Payload) => void
  connected: (peer: string) => void
  disconnected: (peer: string) => void
  dialFailed: (peer: string) => void
}

/** What the network needs from the simulation. */
export interface NetHost {
  readonly now: number
  after: (ms: number, fn: () => void) => void
  random: () => number
  /** One-way delay of one packet. */
  delay: () => number
  /** Whether packets from `from` to `to` are dropped now. */
  blocked: (from: string, to: string) => boolean
  /** The running process under this id, if any. */
  endpoint: (id: string) => Endpoint | undefined
  readonly lossRate: number
  readonly duplicateRate: number
  readonly crashNoticeMs: number
}

/** The first retransmission timeout; each next one doubles, up to RTO_MAX_MS (Linux's bounds, near enough). */
export const RTO_MS = 200
const RTO_MAX_MS = 60_000

type Side = 0 | 1

interface Direction {
  /** Data waiting for a retransmission that gets through (the direction is stuck). */
  readonly held: Payload[]
  lastArrival: number
  stuckSince: number | undefined
  attempt: number
}

interface Conn {
  readonly id: number
  readonly ends: readonly [Endpoint, Endpoint]
  readonly open: [boolean, boolean]
  readonly dirs: readonly [Direction, Direction]
}

export class SimNetwork {
  /** Every connection with an open end, by each of its processes and the peer's id. */
  private readonly byEnd = new Map<Endpoint, Map<string, Conn[]>>()
  private nextId = 0
  /** Per process, per peer: the connection it sends on. */
  private readonly channels = new Map<Endpoint, Map<string, Conn>>()
  /** Dials in progress, `from>to`, and the stream payloads waiting for them. */
  private readonly dialing = new Map<string, Payload[]>()
  /** Callers waiting for a dial in progress, `from>to`. */
  private readonly dialWaiters = new Map<string, Array<(ok: boolean) => void>>()
  /** A serial per process: dials are keyed by process, not id (a restarted process has its own). */
  private readonly serials = new WeakMap<Endpoint, number>()
  private nextSerial = 0

  constructor (private readonly host: NetHost) {}

  /** Open connections (from either end's view), for tests of the model itself. */
  openConnections (a: string, b: string): number {
    let n = 0
    for (const [ep, peers] of this.byEnd) {
      if (ep.id !== a) continue
      for (const c of peers.get(b) ?? []) if (c.open[c.ends[0] === ep ? 0 : 1]) n++
    }
    return n
  }

  /** Ensures a connection from `ep` to `peer` (dialling if it has none open). */
  dial (ep: Endpoint, peer: string, timeoutMs: number, done?: (ok: boolean) => void): void {
    if (this.openEnd(ep, peer) !== undefined) { done?.(true); return }
    const key = this.dialKey(ep, peer)
    if (this.dialing.has(key)) { if (done !== undefined) this.whenDialled(ep, peer, done); return }
    this.dialing.set(key, [])
    const h = this.host
    const fail = (after: number): void => {
      h.after(after, () => {
        this.dialing.delete(key)
        this.dialWaiters.get(key)?.forEach(w => w(false))
        this.dialWaiters.delete(key)
        done?.(false)
        if (ep.alive()) ep.input(() => ep.dialFailed(peer))
      })
    }
    const target = h.endpoint(peer)
    const reachable = !h.blocked(ep.id, peer) && !h.blocked(peer, ep.id)
    if (target === undefined || !target.alive()) { fail(reachable ? 1 : timeoutMs); return }
    if (!reachable || !target.responsive()) { fail(timeoutMs); return }
    h.after(h.delay() * 3, () => {
      const queued = this.dialing.get(key) ?? []
      this.dialing.delete(key)
      if (!ep.alive() || !target.alive() || h.endpoint(peer) !== target) {
        this.dialWaiters.get(key)?.forEach(w => w(false))
        this.dialWaiters.delete(key)
        done?.(false)
        if (ep.alive()) ep.input(() => ep.dialFailed(peer))
        return
      }
      // Usable only once established: nobody sends on a connection still being set up.
      const conn: Conn = { id: this.nextId++, ends: [ep, target], open: [true, true], dirs: [newDirection(), newDirection()] }
      this.index(conn)
      this.established(conn, 1)
      this.established(conn, 0)
      done?.(true)
      this.dialWaiters.get(key)?.forEach(w => w(true))
      this.dialWaiters.delete(key)
      for (const p of queued) this.push(conn, 0, p)
    })
  }

  private dialKey (ep: Endpoint, peer: string): string {
    let serial = this.serials.get(ep)
    if (serial === undefined) { serial = this.nextSerial++; this.serials.set(ep, serial) }
    return `${serial}>${peer}`
  }

  private whenDialled (ep: Endpoint, peer: string, done: (ok: boolean) => void): void {
    const key = this.dialKey(ep, peer)
    const list = this.dialWaiters.get(key) ?? []
    list.push(done)
    this.dialWaiters.set(key, list)
  }

  /** Sends on the stream to `peer`, dialling first unless `onlyIfConnected`. False: dropped. */
  send (ep: Endpoint, peer: string, payload: Payload, opts: { onlyIfConnected: boolean, dialTimeoutMs: number }): boolean {
    const conn = this.channel(ep, peer)
    if (conn !== undefined) {
      this.push(conn, conn.ends[0] === ep ? 0 : 1, payload)
      return true
    }
    if (opts.onlyIfConnected) return false
    const key = this.dialKey(ep, peer)
    this.dial(ep, peer, opts.dialTimeoutMs)
    this.dialing.get(key)?.push(payload)
    return true
  }

  /**
   * A datagram: only between peers that both have a connection open to each other (the
   * session's keys are handed over a connection and forgotten when it closes); lost,
   * duplicated or reordered.
   */
  datagram (ep: Endpoint, peer: string, payload: Payload): boolean {
    const conn = this.openEnd(ep, peer)
    if (conn === undefined) return false
    const h = this.host
    const target = conn.ends[conn.ends[0] === ep ? 1 : 0]
    const copies = h.random() < h.duplicateRate ? 2 : 1
    for (let i = 0; i < copies; i++) {
      if (h.blocked(ep.id, peer) || h.random() < h.lossRate) continue
      h.after(h.delay(), () => {
        if (h.blocked(ep.id, peer) || !target.alive() || h.endpoint(peer) !== target || this.openEnd(target, ep.id) === undefined) return
        target.input(() => target.deliver(ep.id, payload))
      })
    }
    return true
  }

  /** `ep` aborts its connections to `peer` (one reset each, lost across a cut). */
  hangup (ep: Endpoint, peer: string): void {
    for (const conn of [...this.byEnd.get(ep)?.get(peer) ?? []]) {
      const side = this.sideOf(conn, ep, peer)
      if (side === undefined || !conn.open[side]) continue
      this.close(conn, side)
      this.reset(conn, side, this.host.delay())
    }
  }

  /** `ep` crashed: its kernel resets every connection (each reset lost across a cut). */
  crash (ep: Endpoint): void {
    for (const conn of this.connsOf(ep)) {
      const side = conn.ends[0] === ep ? 0 : 1
      if (!conn.open[side]) continue
      conn.open[side] = false
      this.reset(conn, side, this.host.crashNoticeMs)
      if (!conn.open[0] && !conn.open[1]) this.unindex(conn)
    }
    this.channels.delete(ep)
  }

  /**
   * `ep` stopped gracefully: what it sent last still arrives (a member waits for its last frames
   * to leave before it closes), then the far side hears of the close, unless a cut drops it.
   */
  stop (ep: Endpoint): void {
    for (const conn of this.connsOf(ep)) {
      const side = conn.ends[0] === ep ? 0 : 1
      if (!conn.open[side]) continue
      conn.open[side] = false
      this.reset(conn, side, Math.max(1, conn.dirs[side].lastArrival - this.host.now) + 20)
      if (!conn.open[0] && !conn.open[1]) this.unindex(conn)
    }
    this.channels.delete(ep)
  }

  // ─── internals ─────────────────────────────────────────────────────────

  private index (conn: Conn): void {
    for (const side of [0, 1] as const) {
      const ep = conn.ends[side]
      const peer = conn.ends[side === 0 ? 1 : 0].id
      let peers = this.byEnd.get(ep)
      if (peers === undefined) { peers = new Map(); this.byEnd.set(ep, peers) }
      peers.set(peer, [...(peers.get(peer) ?? []), conn])
    }
  }

  private unindex (conn: Conn): void {
    for (const side of [0, 1] as const) {
      const ep = conn.ends[side]
      const peer = conn.ends[side === 0 ? 1 : 0].id
      const peers = this.byEnd.get(ep)
      const list = peers?.get(peer)?.filter(c => c !== conn) ?? []
      if (list.length > 0) peers?.set(peer, list)
      else peers?.delete(peer)
      if (peers !== undefined && peers.size === 0) this.byEnd.delete(ep)
    }
  }

  private connsOf (ep: Endpoint): Conn[] {
    return [...this.byEnd.get(ep)?.values() ?? []].flat()
  }

  private sideOf (conn: Conn, ep: Endpoint, peer: string): Side | undefined {
    if (conn.ends[0] === ep && conn.ends[1].id === peer) return 0
    if (conn.ends[1] === ep && conn.ends[0].id === peer) return 1
    return undefined
  }

  /** The oldest connection `ep` has open to `peer`. */
  private openEnd (ep: Endpoint, peer: string): Conn | undefined {
    for (const conn of this.byEnd.get(ep)?.get(peer) ?? []) {
      if (conn.open[conn.ends[0] === ep ? 0 : 1]) return conn
    }
    return undefined
  }

  private channel (ep: Endpoint, peer: string): Conn | undefined {
    let mine = this.channels.get(ep)
    const current = mine?.get(peer)
    if (current !== undefined) return current
    const conn = this.openEnd(ep, peer)
    if (conn === undefined) return undefined
    if (mine === undefined) { mine = new Map(); this.channels.set(ep, mine) }
    mine.set(peer, conn)
    return conn
  }

  /** One side's end is open and connected: tell its process if it is its first to that peer. */
  private established (conn: Conn, side: Side): void {
    const ep = conn.ends[side]
    const peer = conn.ends[side === 0 ? 1 : 0].id
    if (this.countOpen(ep, peer) === 1) ep.input(() => ep.connected(peer))
  }

  private countOpen (ep: Endpoint, peer: string): number {
    let n = 0
    for (const conn of this.byEnd.get(ep)?.get(peer) ?? []) if (conn.open[conn.ends[0] === ep ? 0 : 1]) n++
    return n
  }

  /** Closes `side`'s end; its process hears of it if that was its last connection to the peer. */
  private close (conn: Conn, side: Side): void {
    if (!conn.open[side]) return
    conn.open[side] = false
    const ep = conn.ends[side]
    const peer = conn.ends[side === 0 ? 1 : 0].id
    if (this.channels.get(ep)?.get(peer) === conn) this.channels.get(ep)?.delete(peer)
    if (!conn.open[0] && !conn.open[1]) this.unindex(conn)
    if (ep.alive() && this.countOpen(ep, peer) === 0) ep.input(() => ep.disconnected(peer))
  }

  /** A reset from `side` to the other end: it closes that end, unless the cut drops it. */
  private reset (conn: Conn, side: Side, after: number): void {
    const from = conn.ends[side].id
    const to = conn.ends[side === 0 ? 1 : 0].id
    if (this.host.blocked(from, to)) return
    this.host.after(after, () => { this.close(conn, side === 0 ? 1 : 0) })
  }

  private push (conn: Conn, side: Side, item: Payload): void {
    const h = this.host
    const dir = conn.dirs[side]
    const from = conn.ends[side].id
    const to = conn.ends[side === 0 ? 1 : 0].id
    if (dir.held.length > 0) { dir.held.push(item); return }
    if (h.blocked(from, to)) {
      dir.held.push(item)
      dir.stuckSince = h.now
      dir.attempt = 0
      this.retransmitLater(conn, side)
      return
    }
    const retransmitted = h.random() < h.lossRate ? RTO_MS : 0
    const arrival = Math.max(h.now + h.delay() + retransmitted, dir.lastArrival)
    dir.lastArrival = arrival
    h.after(arrival - h.now, () => this.arrive(conn, side, item))
    if (h.random() < h.duplicateRate) {
      dir.lastArrival = arrival + 0.01
      h.after(arrival + 0.01 - h.now, () => this.arrive(conn, side, item))
    }
  }

  private retransmitLater (conn: Conn, side: Side): void {
    const dir = conn.dirs[side]
    const since = dir.stuckSince as number
    dir.attempt++
    const at = since + Math.min(RTO_MAX_MS, RTO_MS * (2 ** dir.attempt - 1))
    this.host.after(Math.max(0, at - this.host.now), () => {
      if (!conn.open[side] || dir.held.length === 0) { dir.held.length = 0; return }
      const from = conn.ends[side].id
      const to = conn.ends[side === 0 ? 1 : 0].id
      if (this.host.blocked(from, to)) { this.retransmitLater(conn, side); return }
      const items = dir.held.splice(0)
      dir.stuckSince = undefined
      for (const item of items) {
        const arrival = Math.max(this.host.now + this.host.delay(), dir.lastArrival)
        dir.lastArrival = arrival
        this.host.after(arrival - this.host.now, () => this.arrive(conn, side, item))
      }
    })
  }

  /** Data from `side` reaches the other end: its process gets it, or a closed end answers with a reset. */
  private arrive (conn: Conn, side: Side, item: Payload): void {
    const other: Side = side === 0 ? 1 : 0
    const receiver = conn.ends[other]
    if (!conn.open[other] || !receiver.alive()) {
      if (conn.open[side]) this.reset(conn, other, this.host.delay())
      return
    }
    const from = conn.ends[side].id
    receiver.input(() => receiver.deliver(from, item))
  }
}

function newDirection (): Direction {
  return { held: [], lastArrival: 0, stuckSince: undefined, attempt: 0 }
}
