/**
 * The member's reliable messaging: view-synchronous broadcast (broadcast.ts) and acknowledged
 * sends (unicast.ts) behind one small surface, with the real timers. The member hands it the
 * views it installs, the frames of its types, and reconnections; it hands back deliveries and
 * the moment a view's flush is complete (when the member emits that view's event).
 */
import { DEFAULT_BROADCAST_LIMITS, ReliableBroadcast, type BroadcastLimits, type StreamPosition } from './broadcast.js'
import { ReliableUnicast } from './unicast.js'
import type { MessagingFrame } from './wire.js'
import type { View } from '../core/view.js'

export interface MessagingHost {
  readonly self: () => string
  now: () => number
  encode: (msg: MessagingFrame) => Uint8Array
  sendFrame: (to: string, frame: Uint8Array) => void
  /** The same frame on the direct stream and, where the peer takes them, as a datagram (see io.ts). */
  sendControl: (to: string, frame: Uint8Array) => void
  /** `seq`: the broadcast's number in its sender's stream of that view (0 for a direct message). */
  deliver: (from: string, payload: Uint8Array, epoch: number, channel: 'direct' | 'group', seq: number) => void
  viewReady: (epoch: number) => void
  countDrop: (reason: string, from: string | undefined) => void
}

export interface MessagingOptions {
  /** The largest frame the transport carries (the envelope included). */
  readonly maxFrameBytes: number
  readonly broadcast?: Partial<Omit<BroadcastLimits, 'maxFrameBytes'>>
}

export class Messaging {
  private readonly rb: ReliableBroadcast
  private readonly uc: ReliableUnicast
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly immediates = new Set<NodeJS.Immediate>()

  constructor (private readonly host: MessagingHost, options: MessagingOptions) {
    const setTimer = (ms: number, fn: () => void): () => void => {
      const t = setTimeout(() => { this.timers.delete(t); fn() }, ms)
      this.timers.add(t)
      return () => { clearTimeout(t); this.timers.delete(t) }
    }
    const soon = (fn: () => void): void => {
      const i = setImmediate(() => { this.immediates.delete(i); fn() })
      this.immediates.add(i)
    }
    const limits = { ...DEFAULT_BROADCAST_LIMITS, ...options.broadcast, maxFrameBytes: options.maxFrameBytes }
    this.rb = new ReliableBroadcast({
      get self () { return host.self() },
      now: host.now,
      encode: host.encode,
      sendFrame: host.sendFrame,
      sendControl: host.sendControl,
      deliver: (from, bin, epoch, seq) => { host.deliver(from, bin, epoch, 'group', seq) },
      viewReady: host.viewReady,
      countDrop: host.countDrop,
      setTimer,
      soon
    }, limits)
    this.uc = new ReliableUnicast({
      now: host.now,
      encode: host.encode,
      sendFrame: host.sendFrame,
      sendControl: host.sendControl,
      deliver: (from, bin, epoch) => { host.deliver(from, bin, epoch, 'direct', 0) },
      countDrop: host.countDrop,
      setTimer,
      soon
    }, { maxFrameBytes: options.maxFrameBytes, resendAfterMs: limits.resendAfterMs })
  }

  broadcast (bin: Uint8Array): Promise<void> | undefined { return this.rb.broadcast(bin) }

  send (to: string, incarnation: number, bin: Uint8Array, epoch: number, timeoutMs: number): Promise<void> {
    return this.uc.send(to, incarnation, bin, epoch, timeoutMs)
  }

  install (view: View): void {
    this.uc.install(new Map(view.members.map(m => [m.id, m.incarnation])))
    this.rb.install({ epoch: view.id.epoch, members: view.members.map(m => m.id) })
  }

  /** This member was excluded from its group: broadcasts wait for its next view. */
  suspend (): void { this.rb.suspend() }

  /** A frame from `from`; `viaDatagram` for the datagram copy of a control frame (io.ts `sendControl`). */
  receive (from: string, msg: MessagingFrame, inView: boolean, viaDatagram = false): void {
    if (msg.t === 'uc' || msg.t === 'uca') this.uc.receive(from, msg, inView)
    else this.rb.receive(from, msg, viaDatagram)
  }

  connected (peer: string): void {
    this.rb.connected(peer)
    this.uc.connected(peer)
  }

  /** Where this member stands in the broadcast stream (state transfer's cut). */
  position (): StreamPosition | undefined { return this.rb.position() }

  /** Counters for metrics and tests. */
  get stats (): { readonly sent: number, readonly resent: number, readonly delivered: number, readonly unackedBytes: number } {
    return { sent: this.rb.sent, resent: this.rb.resent, delivered: this.rb.delivered, unackedBytes: this.rb.unackedBytes }
  }

  /** Sends what is queued, rejects what waits with `reason`, and ends every timer. */
  stop (reason: Error): void {
    this.rb.stop(reason)
    this.uc.stop(reason)
    for (const t of this.timers) clearTimeout(t)
    for (const i of this.immediates) clearImmediate(i)
    this.timers.clear()
    this.immediates.clear()
  }
}
