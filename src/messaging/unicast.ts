/**
 * Acknowledged point-to-point messages (`member.send`): FIFO to one member, resent when a
 * stream breaks, delivered once, and the sender's promise settles when the receiver confirms
 * (or the receiver leaves the view, or the send times out).
 *
 * A sender numbers its messages to one receiver within a session (a random number drawn when
 * it starts talking to that incarnation of the receiver), so a receiver tells a resend from a
 * new message and a new session from an old one. The receiver acknowledges what it delivered
 * once per turn of the event loop. Resends: on a new direct stream, and after `resendAfterMs`
 * without an ack while something is outstanding. No I/O here; see broadcast.ts for the env.
 */
import { randomInt } from 'node:crypto'
import { NotDeliveredError, TimeoutError } from '../errors.js'
import type { MessagingIo } from './io.js'
import type { MessagingFrame, UnicastAck, UnicastData } from './wire.js'
import { BIN_HEADER, FRAME_OVERHEAD, MAX_BATCH_MESSAGES } from './wire.js'

export interface UnicastEnv extends MessagingIo {
  deliver: (from: string, payload: Uint8Array, epoch: number) => void
}

export interface UnicastLimits {
  readonly maxFrameBytes: number
  readonly resendAfterMs: number
}

interface Entry {
  readonly n: number
  readonly bin: Uint8Array
  readonly epoch: number
  readonly deadline: number
  readonly timeoutMs: number
  resolve: (() => void) | undefined
  reject: ((err: Error) => void) | undefined
}

class OutPeer {
  readonly session = randomInt(2 ** 47)
  nextN = 1
  /** Unacknowledged, in order; settled ones (timed out) stay until acked, for the sequence. */
  readonly queue: Entry[] = []
  sentUpTo = 0
  progressAt: number
  constructor (readonly incarnation: number, now: number) { this.progressAt = now }
}

interface InPeer { session: number, next: number, ackDue: boolean }

const SWEEP_MS = 100

export class ReliableUnicast {
  private readonly out = new Map<string, OutPeer>()
  private readonly inbound = new Map<string, InPeer>()
  private members = new Map<string, number>()
  private flushScheduled = false
  private readonly dirtyOut = new Set<string>()
  private readonly dirtyAcks = new Set<string>()
  private sweepCancel: (() => void) | undefined
  private stopped = false

  constructor (private readonly env: UnicastEnv, private readonly limits: UnicastLimits) {}

  /** Queues `bin` to `to` (a member of the view, of `incarnation`); settles on its ack. */
  send (to: string, incarnation: number, bin: Uint8Array, epoch: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const now = this.env.now()
      let p = this.out.get(to)
      if (p !== undefined && p.incarnation !== incarnation) { this.fail(to, p); p = undefined }
      if (p === undefined) this.out.set(to, p = new OutPeer(incarnation, now))
      if (p.queue.length === 0) p.progressAt = now
      p.queue.push({ n: p.nextN++, bin, epoch, deadline: now + timeoutMs, timeoutMs, resolve, reject })
      this.dirtyOut.add(to)
      this.schedule()
      this.ensureSweep()
    })
  }

  private schedule (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    this.env.soon(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  private flush (): void {
    if (this.stopped) return
    for (const to of this.dirtyOut) {
      const p = this.out.get(to)
      if (p !== undefined) this.sendFrom(to, p, p.sentUpTo + 1)
    }
    this.dirtyOut.clear()
    for (const from of this.dirtyAcks) {
      const st = this.inbound.get(from)
      if (st === undefined || !st.ackDue) continue
      st.ackDue = false
      this.env.sendFrame(from, this.env.encode({ t: 'uca', i: st.session, n: st.next - 1 }))
    }
    this.dirtyAcks.clear()
  }

  /** Sends the queued messages numbered `fromN` and later, in frames of one epoch each. */
  private sendFrom (to: string, p: OutPeer, fromN: number): void {
    const first = p.queue[0]
    if (first === undefined) return
    let i = Math.max(0, fromN - first.n)
    while (i < p.queue.length) {
      const start = p.queue[i] as Entry
      const batch: Uint8Array[] = []
      let bytes = FRAME_OVERHEAD
      while (i < p.queue.length && batch.length < MAX_BATCH_MESSAGES) {
        const e = p.queue[i] as Entry
        if (batch.length > 0 && (e.epoch !== start.epoch || bytes + e.bin.byteLength + BIN_HEADER > this.limits.maxFrameBytes)) break
        batch.push(e.bin)
        bytes += e.bin.byteLength + BIN_HEADER
        i++
      }
      this.env.sendFrame(to, this.env.encode({ t: 'uc', i: p.session, e: start.epoch, n: start.n, m: batch }))
    }
    p.sentUpTo = Math.max(p.sentUpTo, (p.queue[p.queue.length - 1] as Entry).n)
  }

  receive (from: string, msg: MessagingFrame, inView: boolean): void {
    if (this.stopped) return
    if (msg.t === 'uca') { this.onAck(from, msg); return }
    if (msg.t !== 'uc') return
    if (!inView) { this.env.countDrop('uc-not-in-view', from); return }
    this.onData(from, msg)
  }

  private onData (from: string, msg: UnicastData): void {
    let st = this.inbound.get(from)
    // A new session starts where its first frame to arrive starts (a stream keeps order, and a
    // sender resends from its oldest unacknowledged message).
    if (st === undefined || st.session !== msg.i) this.inbound.set(from, st = { session: msg.i, next: msg.n, ackDue: false })
    for (let k = 0; k < msg.m.length; k++) {
      const n = msg.n + k
      if (n < st.next) continue // a resend
      if (n > st.next) break // a gap: the sender resends from what we acknowledge
      st.next++
      this.env.deliver(from, msg.m[k] as Uint8Array, msg.e)
      if (this.stopped || this.inbound.get(from) !== st) return
    }
    st.ackDue = true
    this.dirtyAcks.add(from)
    this.schedule()
  }

  private onAck (from: string, msg: UnicastAck): void {
    const p = this.out.get(from)
    if (p === undefined || p.session !== msg.i) return
    if (msg.n > p.sentUpTo) { this.env.countDrop('uc-ack-ahead', from); return }
    let moved = false
    while (p.queue.length > 0 && (p.queue[0] as Entry).n <= msg.n) {
      const e = p.queue.shift() as Entry
      e.resolve?.()
      moved = true
    }
    if (moved) p.progressAt = this.env.now()
  }

  /** A direct stream to `peer` opened again: its unacknowledged messages go again. */
  connected (peer: string): void {
    const p = this.out.get(peer)
    if (p !== undefined && !this.stopped && p.queue.length > 0) this.sendFrom(peer, p, 1)
  }

  /** The installed view's members (id → incarnation): sends to those gone fail, their state goes. */
  install (members: ReadonlyMap<string, number>): void {
    this.members = new Map(members)
    for (const [id, p] of [...this.out]) {
      if (members.get(id) !== p.incarnation) { this.fail(id, p); this.out.delete(id) }
    }
    for (const id of [...this.inbound.keys()]) if (!members.has(id)) this.inbound.delete(id)
  }

  private fail (id: string, p: OutPeer): void {
    for (const e of p.queue.splice(0)) e.reject?.(new NotDeliveredError(id, 'left'))
    this.out.delete(id)
  }

  private ensureSweep (): void {
    if (this.sweepCancel !== undefined || this.stopped) return
    this.sweepCancel = this.env.setTimer(SWEEP_MS, () => {
      this.sweepCancel = undefined
      if (this.stopped) return
      this.sweep()
      if (this.out.size > 0) this.ensureSweep()
    })
  }

  private sweep (): void {
    const now = this.env.now()
    for (const [to, p] of [...this.out]) {
      if (p.queue.length === 0) { this.out.delete(to); continue }
      for (const e of p.queue) {
        if (e.reject !== undefined && now >= e.deadline) {
          const reject = e.reject
          e.resolve = e.reject = undefined
          reject(new TimeoutError(`confirmation of a message to ${to}`, e.timeoutMs))
        }
      }
      if (now - p.progressAt >= this.limits.resendAfterMs) {
        p.progressAt = now
        this.sendFrom(to, p, 1)
      }
    }
  }

  stop (reason: Error): void {
    if (this.stopped) return
    this.flush()
    this.stopped = true
    for (const p of this.out.values()) for (const e of p.queue.splice(0)) e.reject?.(reason)
    this.out.clear()
    this.inbound.clear()
    this.sweepCancel?.()
    this.sweepCancel = undefined
  }
}
