/**
 * Reliable, view-synchronous broadcast (docs/design.md, "Reliable messaging"): FIFO per sender,
 * delivered only between members of the view it was sent in, and a view event for V' only
 * after every message that a member surviving into V' sent in V has been delivered.
 *
 * How:
 *  - A sender numbers its broadcasts per view (epoch, seq from 1) and sends them in batches on
 *    the direct stream to every other member of its installed view. It keeps each one until
 *    every receiver still in the newest view has acknowledged it (resends on a reconnect, on a
 *    receiver's nak, and after a stall), and it admits new broadcasts only while what it keeps
 *    stays under a window: that is the back-pressure.
 *  - When the sender installs a newer view it closes the old one: a flush frame tells the
 *    survivors how many it sent in it. Its later broadcasts carry the new epoch.
 *  - A receiver delivers the broadcasts of the view it is in (its delivery view) in sequence
 *    order per sender, holds those of a newer installed view, and moves on to the next view
 *    (emitting its view event, then delivering what it held) once it has every surviving
 *    sender's flush and the messages the flush counts. Senders that left or were excluded are
 *    not waited for; a flush that cannot finish (a survivor that never sends its flush) is
 *    given up after `flushTimeoutMs`, counted, so delivery never blocks for ever.
 *  - Frames from a member outside the view they name, for a view this member did not install,
 *    or out of sequence beyond what can be resent, are dropped and counted.
 *
 * No I/O here: the member gives it a way to encode and send frames, timers, and callbacks.
 */
import type { MessagingIo } from './io.js'
import type { BroadcastAck, BroadcastData, BroadcastFlush, BroadcastNak, MessagingFrame } from './wire.js'
import { BIN_HEADER, FRAME_OVERHEAD, MAX_BATCH_MESSAGES } from './wire.js'

export interface BroadcastEnv extends MessagingIo {
  readonly self: string
  /** Broadcast `seq` of `from`'s, sent in the view of `epoch`, to hand to the application. */
  deliver: (from: string, payload: Uint8Array, epoch: number, seq: number) => void
  /** The view of `epoch` is now this member's delivery view (its view event may be emitted). */
  viewReady: (epoch: number) => void
}

export interface BroadcastLimits {
  /** Largest data frame: a batch never grows past it (a single message always goes). */
  readonly maxFrameBytes: number
  /** Bytes a sender keeps unacknowledged before broadcast() waits. */
  readonly windowBytes: number
  /** Bytes a receiver holds for views it has installed but does not deliver yet. */
  readonly holdBytes: number
  /** How long a view change may wait for survivors' flushes before it is given up. */
  readonly flushTimeoutMs: number
  /** With no ack progress for this long, the sender resends what a receiver has not acknowledged. */
  readonly resendAfterMs: number
  /** A receiver acknowledges after this many messages from a sender, or after ackDelayMs. */
  readonly ackEvery: number
  readonly ackDelayMs: number
}

export const DEFAULT_BROADCAST_LIMITS: Omit<BroadcastLimits, 'maxFrameBytes'> = {
  windowBytes: 8 * 1024 * 1024,
  holdBytes: 64 * 1024 * 1024,
  flushTimeoutMs: 5000,
  resendAfterMs: 1000,
  ackEvery: 512,
  ackDelayMs: 10
}

/** The view facts this layer needs: its epoch and members (ids, this member included). */
export interface ViewMembers {
  readonly epoch: number
  readonly members: readonly string[]
}

/** See `ReliableBroadcast.position`. */
export interface StreamPosition {
  readonly epoch: number
  readonly delivered: Readonly<Record<string, number>>
  readonly own: { readonly epoch: number, readonly seq: number }
}

interface Waiting { readonly bin: Uint8Array, readonly resolve: () => void, readonly reject: (err: Error) => void }

class OutEpoch {
  nextSeq = 1
  /** seq of buf[0] */
  base = 1
  readonly buf: Uint8Array[] = []
  bytes = 0
  /** Highest seq handed to the transport. */
  sentUpTo = 0
  /** Receiver → highest seq it holds. */
  readonly acked = new Map<string, number>()
  /** Receiver → when its ack last moved (or when it last had nothing outstanding). */
  readonly progressAt = new Map<string, number>()
  /** Receivers that confirmed the flush (ack with `f`). */
  readonly flushAcked = new Set<string>()
  /** The last nak from each receiver, so that a duplicate copy resends nothing. */
  readonly lastNak = new Map<string, { readonly s: number, readonly at: number }>()
  closed = false
  /** Receivers that count: members of this view still in the newest view. */
  live: Set<string>
  constructor (readonly epoch: number, receivers: readonly string[], now: number) {
    this.live = new Set(receivers)
    for (const r of receivers) { this.acked.set(r, 0); this.progressAt.set(r, now) }
  }

  get lastSeq (): number { return this.nextSeq - 1 }
}

class InState {
  /** Next seq expected from the sender. */
  next = 1
  /** Accepted in sequence, not delivered yet (a view not yet the delivery view). */
  held: Uint8Array[] = []
  heldBytes = 0
  /** The sender's flush: how many it sent in this view. */
  flushN: number | undefined
  unacked = 0
  lastNakAt = Number.NEGATIVE_INFINITY
}

/** How long a view change waits for a survivor's flush before asking for it (see `chase`). */
const FLUSH_CHASE_MS = 100

interface PendingView { readonly epoch: number, readonly members: ReadonlySet<string> }

export class ReliableBroadcast {
  private readonly views = new Map<number, ReadonlySet<string>>()
  private latest: PendingView | undefined
  /** The view whose broadcasts are delivered now; undefined before the first view. */
  private delivery: PendingView | undefined
  /** Installed views not yet the delivery view, oldest first. */
  private readonly pending: PendingView[] = []
  private flushDeadline = Number.POSITIVE_INFINITY
  private readonly out = new Map<number, OutEpoch>()
  private current: OutEpoch | undefined
  /** Broadcasts accepted by the sender but waiting for window space or for a view. */
  private readonly waiting: Waiting[] = []
  private readonly inbound = new Map<number, Map<string, InState>>()
  private heldBytes = 0
  /** Frames for views newer than every installed one, by epoch (bounded by holdBytes too). */
  private readonly future = new Map<number, Array<{ from: string, msg: BroadcastData | BroadcastFlush }>>()
  private futureBytes = 0
  private flushScheduled = false
  private ackTimerCancel: (() => void) | undefined
  private readonly dirtyAcks = new Set<InState>()
  private readonly ackTargets = new WeakMap<InState, { epoch: number, from: string }>()
  private sweepCancel: (() => void) | undefined
  private chaseCancel: (() => void) | undefined
  private deadlineCancel: (() => void) | undefined
  private stopped = false
  /** Broadcasts handed to the transport (first sends, not resends). */
  sent = 0
  resent = 0
  delivered = 0

  constructor (private readonly env: BroadcastEnv, private readonly limits: BroadcastLimits) {}

  /** Bytes kept for possible resends. */
  get unackedBytes (): number {
    let n = 0
    for (const o of this.out.values()) n += o.bytes
    return n
  }

  // ─── sending ────────────────────────────────────────────────────────────

  /**
   * Queues an encoded payload. Resolves at once when it is admitted (numbered and queued for the
   * transport), later when the window is full or there is no view yet; rejects only on stop.
   */
  broadcast (bin: Uint8Array): Promise<void> | undefined {
    if (this.waiting.length === 0 && this.canAdmit(bin)) {
      this.admit(bin)
      return undefined
    }
    return new Promise<void>((resolve, reject) => { this.waiting.push({ bin, resolve, reject }) })
  }

  private canAdmit (bin: Uint8Array): boolean {
    const o = this.current
    if (o === undefined || this.stopped) return false
    const kept = this.unackedBytes
    return kept === 0 || kept + bin.byteLength <= this.limits.windowBytes
  }

  private admit (bin: Uint8Array): void {
    const o = this.current as OutEpoch
    o.nextSeq++
    if (o.live.size > 0) {
      o.buf.push(bin)
      o.bytes += bin.byteLength
    } else {
      // alone in the view: nobody to send to or to resend for
      o.base = o.nextSeq
      o.sentUpTo = o.lastSeq
    }
    this.scheduleFlush()
  }

  private admitWaiting (): void {
    while (this.waiting.length > 0) {
      const w = this.waiting[0] as Waiting
      if (!this.canAdmit(w.bin)) return
      this.waiting.shift()
      this.admit(w.bin)
      w.resolve()
    }
  }

  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    this.env.soon(() => {
      this.flushScheduled = false
      this.flushOut()
    })
  }

  /** Sends what was admitted and not sent yet, in batches, to every receiver of its view. */
  flushOut (): void {
    if (this.stopped) return
    for (const o of this.out.values()) {
      if (o.sentUpTo >= o.lastSeq) continue
      const from = o.sentUpTo + 1
      const to = o.lastSeq
      this.sent += to - from + 1
      this.sendRange(o, from, to, [...o.live])
      o.sentUpTo = to
    }
  }

  private sendRange (o: OutEpoch, from: number, to: number, receivers: readonly string[]): void {
    if (receivers.length === 0) return
    let seq = from
    while (seq <= to) {
      const start = seq
      const batch: Uint8Array[] = []
      let bytes = FRAME_OVERHEAD
      while (seq <= to && batch.length < MAX_BATCH_MESSAGES) {
        const bin = o.buf[seq - o.base] as Uint8Array
        if (batch.length > 0 && bytes + bin.byteLength + BIN_HEADER > this.limits.maxFrameBytes) break
        batch.push(bin)
        bytes += bin.byteLength + BIN_HEADER
        seq++
      }
      const frame = this.env.encode({ t: 'rb', e: o.epoch, s: start, m: batch })
      for (const r of receivers) this.env.sendFrame(r, frame)
    }
  }

  private resendTo (o: OutEpoch, to: string, fromSeq: number): void {
    const from = Math.max(fromSeq, o.base)
    if (from <= o.sentUpTo) {
      this.resent += o.sentUpTo - from + 1
      this.sendRange(o, from, o.sentUpTo, [to])
    }
    if (o.closed && !o.flushAcked.has(to)) this.env.sendControl(to, this.env.encode({ t: 'rbf', e: o.epoch, n: o.lastSeq }))
  }

  /** A direct stream to `peer` opened again: what it may have lost with the old one goes again. */
  connected (peer: string): void {
    if (this.stopped) return
    for (const o of this.out.values()) {
      if (!o.live.has(peer)) continue
      const acked = o.acked.get(peer) ?? 0
      if (acked < o.sentUpTo || (o.closed && !o.flushAcked.has(peer))) this.resendTo(o, peer, acked + 1)
    }
  }

  private onAck (from: string, msg: BroadcastAck): void {
    const o = this.out.get(msg.e)
    if (o === undefined || !o.acked.has(from)) return
    if (msg.s > o.sentUpTo) { this.env.countDrop('rb-ack-ahead', from); return }
    if (msg.s > (o.acked.get(from) ?? 0)) {
      o.acked.set(from, msg.s)
      o.progressAt.set(from, this.env.now())
    }
    // With `f` the receiver needs nothing more of this view from us: it stops counting.
    if (msg.f === true) { o.flushAcked.add(from); o.live.delete(from) }
    this.trim(o)
    this.admitWaiting()
  }

  private onNak (from: string, msg: BroadcastNak): void {
    const o = this.out.get(msg.e)
    if (o === undefined || !o.live.has(from)) return
    // A chase arrives twice (stream and datagram): the second copy of one nak resends nothing.
    const now = this.env.now()
    const last = o.lastNak.get(from)
    if (last !== undefined && last.s === msg.s && now - last.at < FLUSH_CHASE_MS) return
    o.lastNak.set(from, { s: msg.s, at: now })
    this.resendTo(o, from, msg.s)
  }

  /** Drops what every live receiver holds; forgets a closed view everyone finished with. */
  private trim (o: OutEpoch): void {
    let min = o.sentUpTo
    for (const r of o.live) min = Math.min(min, o.acked.get(r) ?? 0)
    const drop = min - o.base + 1
    if (drop > 0) {
      for (let i = 0; i < drop; i++) o.bytes -= (o.buf[i] as Uint8Array).byteLength
      o.buf.splice(0, drop)
      o.base += drop
    }
    if (o.live.size === 0) {
      o.buf.length = 0
      o.bytes = 0
      o.base = o.sentUpTo + 1
    }
    if (o.closed && o.buf.length === 0 && o.sentUpTo === o.lastSeq && [...o.live].every(r => o.flushAcked.has(r))) this.out.delete(o.epoch)
  }

  // ─── views ──────────────────────────────────────────────────────────────

  /**
   * The member installed a view. The first one becomes the delivery view at once; a later one
   * closes this member's sending in the previous view and waits for the survivors' flushes.
   */
  install (view: ViewMembers): void {
    if (this.stopped) return
    const members = new Set(view.members)
    const v: PendingView = { epoch: view.epoch, members }
    this.views.set(view.epoch, members)
    this.latest = v
    const now = this.env.now()
    // Close the view this member was sending in: the survivors learn how many it sent.
    const prev = this.current
    if (prev !== undefined) {
      this.flushOut()
      prev.closed = true
      const flush = this.env.encode({ t: 'rbf', e: prev.epoch, n: prev.lastSeq })
      for (const r of prev.live) if (members.has(r)) this.env.sendControl(r, flush)
    }
    for (const o of this.out.values()) {
      for (const r of [...o.live]) if (!members.has(r)) o.live.delete(r)
      this.trim(o)
    }
    const receivers = view.members.filter(id => id !== this.env.self)
    this.current = new OutEpoch(view.epoch, receivers, now)
    this.out.set(view.epoch, this.current)
    this.ensureSweep()
    if (this.delivery === undefined) {
      this.delivery = v
      this.env.viewReady(v.epoch)
    } else {
      this.pending.push(v)
      if (this.pending.length === 1) this.armDeadline(now)
    }
    this.releaseFuture(view.epoch)
    this.forgetSkipped()
    this.advance()
    this.admitWaiting()
  }

  /**
   * This member was excluded: its views are over for it. Nothing is admitted until it is in a
   * view again; views it installed and has not emitted yet are emitted now, with what it holds
   * for them (nobody will send it their flushes: it is no longer among the survivors); the
   * next view it installs starts afresh, as its first did.
   */
  suspend (): void {
    if (this.stopped) return
    const o = this.current
    if (o !== undefined) {
      this.flushOut()
      o.closed = true
      o.live.clear()
      this.trim(o)
    }
    this.current = undefined
    this.deadlineCancel?.()
    this.deadlineCancel = undefined
    this.flushDeadline = Number.POSITIVE_INFINITY
    while (this.pending.length > 0 && !this.stopped && this.delivery !== undefined) {
      const next = this.pending.shift() as PendingView
      this.finishEpoch(this.delivery.epoch)
      this.delivery = next
      this.env.viewReady(next.epoch)
      this.deliverHeld(next.epoch)
    }
    if (this.delivery !== undefined) this.finishEpoch(this.delivery.epoch)
    this.delivery = undefined
  }

  private armDeadline (now: number): void {
    this.flushDeadline = now + this.limits.flushTimeoutMs
    this.deadlineCancel?.()
    this.deadlineCancel = this.env.setTimer(this.limits.flushTimeoutMs + 1, () => { this.deadlineCancel = undefined; this.advance() })
  }

  /** Moves the delivery view on while the survivors' flushes of the current one are complete. */
  private advance (): void {
    while (!this.stopped && this.pending.length > 0) {
      const d = this.delivery as PendingView
      const next = this.pending[0] as PendingView
      const latest = this.latest as PendingView
      const states = this.inbound.get(d.epoch)
      const missing: string[] = []
      for (const id of d.members) {
        if (id === this.env.self || !next.members.has(id) || !latest.members.has(id)) continue
        const st = states?.get(id)
        if (st === undefined || st.flushN === undefined || st.next - 1 < st.flushN) missing.push(id)
      }
      if (missing.length > 0) {
        if (this.env.now() < this.flushDeadline) { this.chase(d.epoch); return }
        this.env.countDrop('flush-timeout', undefined)
      }
      this.finishEpoch(d.epoch)
      this.pending.shift()
      this.delivery = next
      if (this.pending.length > 0) this.armDeadline(this.env.now())
      else { this.deadlineCancel?.(); this.deadlineCancel = undefined; this.flushDeadline = Number.POSITIVE_INFINITY }
      this.env.viewReady(next.epoch)
      this.deliverHeld(next.epoch)
    }
  }

  /** Tells each sender of `epoch` this member is done with it, and forgets the epoch. */
  private finishEpoch (epoch: number): void {
    const states = this.inbound.get(epoch)
    if (states !== undefined) {
      for (const [from, st] of states) {
        this.dirtyAcks.delete(st)
        this.heldBytes -= st.heldBytes
        this.env.sendControl(from, this.env.encode({ t: 'rba', e: epoch, s: st.next - 1, f: true }))
      }
      this.inbound.delete(epoch)
    }
    this.views.delete(epoch)
  }

  private deliverHeld (epoch: number): void {
    const states = this.inbound.get(epoch)
    if (states === undefined) return
    for (const [from, st] of states) {
      const held = st.held
      const first = st.next - held.length
      st.held = []
      this.heldBytes -= st.heldBytes
      st.heldBytes = 0
      for (let i = 0; i < held.length; i++) {
        if (this.stopped || this.delivery?.epoch !== epoch) return
        this.delivered++
        this.env.deliver(from, held[i] as Uint8Array, epoch, first + i)
      }
    }
  }

  /** Views skipped over (installed elsewhere, never here) take their held frames with them. */
  private forgetSkipped (): void {
    const latest = this.latest?.epoch ?? 0
    for (const [epoch, frames] of this.future) {
      if (epoch >= latest) continue
      for (const f of frames) { this.futureBytes -= frameBytes(f.msg); this.env.countDrop('rb-not-in-view', f.from) }
      this.future.delete(epoch)
    }
  }

  private releaseFuture (epoch: number): void {
    const frames = this.future.get(epoch)
    if (frames === undefined) return
    this.future.delete(epoch)
    for (const f of frames) {
      this.futureBytes -= frameBytes(f.msg)
      this.receive(f.from, f.msg)
    }
  }

  // ─── receiving ──────────────────────────────────────────────────────────

  /** A frame of this layer from an authenticated peer. */
  receive (from: string, msg: MessagingFrame, viaDatagram = false): void {
    if (this.stopped) return
    switch (msg.t) {
      case 'rb': this.onData(from, msg); break
      case 'rbf': this.onFlush(from, msg, viaDatagram); break
      case 'rba': this.onAck(from, msg); break
      case 'rbn': this.onNak(from, msg); break
      default: break
    }
  }

  /** Where a data or flush frame for `epoch` from `from` stands: its state, or why it is dropped. */
  private stateFor (from: string, epoch: number, msg: BroadcastData | BroadcastFlush): InState | 'done' | 'held' | 'drop' {
    const d = this.delivery
    if (d !== undefined && epoch < d.epoch) return 'done'
    const members = this.views.get(epoch)
    if (members === undefined) {
      if (epoch > (this.latest?.epoch ?? -1)) {
        const size = frameBytes(msg)
        if (this.futureBytes + size > this.limits.holdBytes) return 'drop'
        let list = this.future.get(epoch)
        if (list === undefined) this.future.set(epoch, list = [])
        list.push({ from, msg })
        this.futureBytes += size
        return 'held'
      }
      this.env.countDrop('rb-not-in-view', from)
      return 'drop'
    }
    if (!members.has(from) || from === this.env.self) { this.env.countDrop('rb-not-in-view', from); return 'drop' }
    let states = this.inbound.get(epoch)
    if (states === undefined) this.inbound.set(epoch, states = new Map())
    let st = states.get(from)
    if (st === undefined) {
      states.set(from, st = new InState())
      this.ackTargets.set(st, { epoch, from })
    }
    return st
  }

  private onData (from: string, msg: BroadcastData): void {
    const st = this.stateFor(from, msg.e, msg)
    if (st === 'held' || st === 'drop') return
    if (st === 'done') {
      // A resend of a view this member finished: tell the sender to stop.
      this.env.sendControl(from, this.env.encode({ t: 'rba', e: msg.e, s: msg.s + msg.m.length - 1, f: true }))
      return
    }
    if (st.flushN !== undefined && msg.s + msg.m.length - 1 > st.flushN) { this.env.countDrop('rb-beyond-flush', from); return }
    const live = this.delivery?.epoch === msg.e
    let accepted = 0
    for (let i = 0; i < msg.m.length; i++) {
      const seq = msg.s + i
      if (seq < st.next) continue // a duplicate (a resend)
      if (seq > st.next) { this.nak(from, msg.e, st); break }
      const bin = msg.m[i] as Uint8Array
      if (!live) {
        if (this.heldBytes + bin.byteLength > this.limits.holdBytes) break // resent later
        st.held.push(bin)
        st.heldBytes += bin.byteLength
        this.heldBytes += bin.byteLength
      }
      st.next++
      accepted++
      if (live) {
        this.delivered++
        this.env.deliver(from, bin, msg.e, seq)
        if (this.stopped || this.delivery?.epoch !== msg.e) break
      }
    }
    st.unacked += accepted
    this.ackLater(st, accepted === 0)
    if (st.flushN !== undefined) this.advance()
  }

  /** A flush that came as a datagram may overtake data still on the stream: only the chase naks for it. */
  private onFlush (from: string, msg: BroadcastFlush, viaDatagram: boolean): void {
    const st = this.stateFor(from, msg.e, msg)
    if (st === 'held' || st === 'drop') return
    if (st === 'done') {
      this.env.sendControl(from, this.env.encode({ t: 'rba', e: msg.e, s: msg.n, f: true }))
      return
    }
    if (msg.n < st.next - 1) { this.env.countDrop('rb-flush-behind', from); return }
    st.flushN = msg.n
    if (st.next - 1 < msg.n && !viaDatagram) this.nak(from, msg.e, st)
    this.ackLater(st, true)
    this.advance()
  }

  /**
   * A flush still incomplete after FLUSH_CHASE_MS asks the survivors it lacks for their flush
   * and what it counts (a nak resends both): a flush frame lost with a stream that broke
   * during the view change (its connection re-dialled) would otherwise wait for the sender's
   * stall timer. The chase and the flush go as control frames (`sendControl`): a stream whose
   * connection is stuck behind TCP retransmissions after a healed cut does not hold them.
   */
  private chase (epoch: number): void {
    if (this.chaseCancel !== undefined) return
    this.chaseCancel = this.env.setTimer(FLUSH_CHASE_MS, () => {
      this.chaseCancel = undefined
      if (this.stopped || this.delivery?.epoch !== epoch || this.pending.length === 0) return
      const next = this.pending[0] as PendingView
      const latest = this.latest as PendingView
      const states = this.inbound.get(epoch)
      for (const id of this.views.get(epoch) ?? []) {
        if (id === this.env.self || !next.members.has(id) || !latest.members.has(id)) continue
        const st = states?.get(id)
        if (st !== undefined && st.flushN !== undefined && st.next - 1 >= st.flushN) continue
        this.env.sendControl(id, this.env.encode({ t: 'rbn', e: epoch, s: st?.next ?? 1 }))
      }
      this.advance()
    })
  }

  private nak (from: string, epoch: number, st: InState): void {
    const now = this.env.now()
    if (now - st.lastNakAt < this.limits.ackDelayMs * 10) return
    st.lastNakAt = now
    this.env.sendFrame(from, this.env.encode({ t: 'rbn', e: epoch, s: st.next }))
  }

  private ackLater (st: InState, now: boolean): void {
    if (now || st.unacked >= this.limits.ackEvery) { this.sendAck(st); return }
    this.dirtyAcks.add(st)
    if (this.ackTimerCancel === undefined) {
      this.ackTimerCancel = this.env.setTimer(this.limits.ackDelayMs, () => {
        this.ackTimerCancel = undefined
        for (const s of [...this.dirtyAcks]) this.sendAck(s)
      })
    }
  }

  private sendAck (st: InState): void {
    this.dirtyAcks.delete(st)
    st.unacked = 0
    const target = this.ackTargets.get(st)
    if (target === undefined || this.stopped) return
    const f = st.flushN !== undefined && st.next - 1 >= st.flushN
    const frame = this.env.encode({ t: 'rba', e: target.epoch, s: st.next - 1, ...(f ? { f: true as const } : {}) })
    if (f) this.env.sendControl(target.from, frame)
    else this.env.sendFrame(target.from, frame)
  }

  /**
   * Where this member stands in the broadcast stream: its delivery view, the last broadcast it
   * delivered of each sender in it, and the last one it sent itself (in its newest view). A
   * state snapshot taken now reflects exactly the broadcasts up to this point.
   */
  position (): StreamPosition | undefined {
    const d = this.delivery
    if (d === undefined) return undefined
    const delivered: Record<string, number> = {}
    for (const [from, st] of this.inbound.get(d.epoch) ?? []) delivered[from] = st.next - 1
    const own = this.current
    return { epoch: d.epoch, delivered, own: own === undefined ? { epoch: d.epoch, seq: 0 } : { epoch: own.epoch, seq: own.lastSeq } }
  }

  // ─── timers and stop ────────────────────────────────────────────────────

  private ensureSweep (): void {
    if (this.sweepCancel !== undefined || this.stopped) return
    const every = Math.max(50, Math.floor(this.limits.resendAfterMs / 2))
    const tick = (): void => {
      this.sweepCancel = undefined
      if (this.stopped) return
      this.sweep()
      this.sweepCancel = this.env.setTimer(every, tick)
    }
    this.sweepCancel = this.env.setTimer(every, tick)
  }

  /** Resends to receivers whose acks have not moved for resendAfterMs while something is outstanding. */
  private sweep (): void {
    const now = this.env.now()
    for (const o of this.out.values()) {
      for (const r of o.live) {
        const acked = o.acked.get(r) ?? 0
        const outstanding = acked < o.sentUpTo || (o.closed && !o.flushAcked.has(r))
        if (!outstanding) { o.progressAt.set(r, now); continue }
        if (now - (o.progressAt.get(r) ?? now) < this.limits.resendAfterMs) continue
        o.progressAt.set(r, now)
        this.resendTo(o, r, acked + 1)
      }
    }
  }

  /** Sends what is queued (a graceful leave), then rejects waiting broadcasts and ends every timer. */
  stop (reason: Error): void {
    if (this.stopped) return
    this.flushOut()
    this.stopped = true
    for (const w of this.waiting.splice(0)) w.reject(reason)
    this.sweepCancel?.()
    this.deadlineCancel?.()
    this.ackTimerCancel?.()
    this.chaseCancel?.()
    this.sweepCancel = this.deadlineCancel = this.ackTimerCancel = this.chaseCancel = undefined
    this.out.clear()
    this.inbound.clear()
    this.future.clear()
    this.dirtyAcks.clear()
  }
}

function frameBytes (msg: BroadcastData | BroadcastFlush): number {
  if (msg.t === 'rbf') return 16
  let n = 16
  for (const b of msg.m) n += b.byteLength
  return n
}
