/**
 * State transfer to a joiner (JGroups' STATE_TRANSFER): a member that joins a group asks a
 * member that holds the state (the coordinator first) for a snapshot taken at a cut of the
 * broadcast stream, restores it, then delivers exactly the broadcasts after that cut: none
 * before it, none twice. See docs/design.md, "State transfer".
 *
 * The cut: the provider calls `snapshot()` and reads its stream position (ReliableBroadcast
 * `position`) in one turn of the event loop, once its delivery view is at least the joiner's
 * first view. The position names, per sender, the last broadcast the provider delivered in its
 * delivery view, and the last broadcast the provider sent itself (which its application applied
 * when it sent it). The joiner holds every broadcast it delivers from its first view on until
 * the restore is done, then hands on only those after the position (`admit`), also later ones
 * of views it had not reached yet.
 *
 * Chunks: the snapshot (one msgpack value, or the byte stream of an (async) iterable) goes in
 * chunks of at most `maxChunkBytes`, at most WINDOW_CHUNKS unacknowledged; the joiner
 * acknowledges a chunk when it is consumed (the value's bytes collected, or a stream's chunk
 * taken by `restore`), so memory stays bounded on both sides for a stream.
 *
 * Failures: a provider that leaves the view, refuses, or makes no progress for STALL_MS is given
 * up and the next member is asked (a stream's `restore` is then called again: its iterator
 * throws StateTransferError('interrupted') first). When every member of the view answers that
 * it has no state, the group starts empty. A `restore` that throws fails the joiner: it reports
 * StateTransferError('restore-failed') and leaves, never a member with half a state.
 *
 * No I/O here: the member gives it a way to send frames, timers, and callbacks.
 */
import { StateTransferError } from '../errors.js'
import { checkPayload } from '../transport/payload.js'
import { decodePayload, encodePayload } from '../transport/codec.js'
import type { StreamPosition } from './broadcast.js'
import { ABORT, ACK, BEGIN, CHUNK, decodeStateFrame, encodeStateFrame, END, REFUSAL, REQUEST, type StateFrame, type StateRefusal } from './state-wire.js'

/** What a member gives for state transfer (`MemberOptions.state`). */
export interface StateHandlers {
  /**
   * Called on a member that holds the state, for a joiner. It must capture the state at the
   * call (before its first `await`): the cut of the broadcast stream is taken then. Returns (or
   * resolves to) a msgpack-encodable value, or an iterable / async iterable of Uint8Array
   * chunks for a state too large to hold twice; `restore` then gets the bytes as a stream.
   * What it throws (or its stream throws) is reported as a listener's error is
   * (`listener-error` with event 'state.snapshot'), and the joiner asks another member.
   */
  readonly snapshot: () => unknown
  /**
   * Called on a joiner before it delivers any broadcast: with the value `snapshot` returned,
   * or an AsyncIterable<Uint8Array> of its stream. May be called again when the transfer
   * restarts from another member (the previous stream throws StateTransferError first): start
   * over from empty then. What it throws fails the joiner, which leaves.
   */
  readonly restore: (state: unknown) => unknown
}

/** How a member came by its state (`Member.waitForState`, the `state-restored` event). */
export interface StateRestored {
  /** Whether `restore` ran: false for a founder, or when no member of the view held state. */
  readonly restored: boolean
  /** The member whose snapshot was restored. */
  readonly from: string | undefined
  readonly bytes: number
  /** From the first request to the end of `restore`. */
  readonly ms: number
  /** Transfers started (1 unless a provider was lost or refused). */
  readonly attempts: number
}

export interface StateTransferHost {
  readonly self: () => string
  /** The installed view's member ids, in view order; undefined without one. */
  readonly members: () => readonly string[] | undefined
  readonly position: () => StreamPosition | undefined
  send: (to: string, data: unknown) => void
  countDrop: (reason: string, from: string | undefined) => void
  /** Hands a held broadcast to the application. */
  release: (from: string, bin: Uint8Array, epoch: number) => void
  /** A user callback (snapshot) threw: reported as a listener error is. */
  reportError: (where: string, error: unknown) => void
  restored: (info: StateRestored) => void
  /** The joiner cannot get its state: it reports `error` and leaves. */
  failed: (error: StateTransferError) => void
  now: () => number
  setTimer: (ms: number, fn: () => void) => () => void
  readonly maxChunkBytes: number
}

/** Chunks a provider sends ahead of the joiner's acknowledgements. */
export const WINDOW_CHUNKS = 8
/** A transfer (or a request's answer) without progress for this long is given up. */
export const STALL_MS = 10_000
/** Broadcasts a joiner holds while its state is restored; beyond, the transfer fails. */
export const HOLD_BYTES = 64 * 1024 * 1024
/** Transfers a member serves at once; more are refused as busy. */
const MAX_OUTGOING = 4
/** Rounds through the view's members before a joiner gives up (a busy provider serves others meanwhile): 2 minutes. */
const ROUND_RETRY_MS = 200
const MAX_ROUNDS = 600
const SWEEP_MS = 500

interface Held { readonly from: string, readonly bin: Uint8Array, readonly epoch: number, readonly seq: number }

interface Outgoing {
  readonly to: string
  readonly x: number
  readonly joinEpoch: number
  source: AsyncIterator<Uint8Array> | undefined
  /** Last chunk sent. */
  sent: number
  acked: number
  bytes: number
  ended: boolean
  pumping: boolean
  cancelled: boolean
  progressAt: number
}

interface Attempt {
  readonly x: number
  readonly provider: string
  progressAt: number
  begun: boolean
  stream: boolean
  position: StreamPosition | undefined
  /** Value mode: the bytes so far. */
  readonly parts: Uint8Array[]
  bytes: number
  lastChunk: number
  channel: ChunkChannel | undefined
  /** The provider was given up while `restore` ran: its outcome does not count. */
  interrupted: boolean
  restoring: boolean
}

/** The cut a restored state stands at, and the provider it came from. */
interface Cut { readonly provider: string, readonly position: StreamPosition }

export class StateTransfer {
  /** Whether this member holds the state (founded, restored, or the group had none). */
  private hasState = false
  /** The epoch of this member's first view in its current membership, while it has no state. */
  private joinEpoch: number | undefined
  private attempt: Attempt | undefined
  private nextX = 1
  private asked = new Set<string>()
  private refusedOtherwise = false
  private rounds = 0
  private attempts = 0
  private startedAt = 0
  private roundTimer: (() => void) | undefined
  private held: Held[] = []
  private heldBytes = 0
  /** Held deliveries are released on the next turn after the restore; until then they are held. */
  private holding = true
  private cut: Cut | undefined
  private readonly outgoing = new Map<string, Outgoing>()
  /** Requests waiting for this member's delivery view to reach their join epoch. */
  private readonly waiting = new Map<string, Outgoing>()
  private sweepCancel: (() => void) | undefined
  private stopped = false
  private result: StateRestored | undefined

  constructor (private readonly host: StateTransferHost, private readonly handlers: StateHandlers) {}

  get ready (): StateRestored | undefined { return this.result }

  // ─── the joiner ─────────────────────────────────────────────────────────

  /**
   * A broadcast this member delivers: true to hand it on now; false when it is held (until the
   * restore) or stands at or before the restored cut.
   */
  admit (from: string, bin: Uint8Array, epoch: number, seq: number): boolean {
    if (this.holding) {
      this.heldBytes += bin.byteLength
      this.held.push({ from, bin, epoch, seq })
      if (this.heldBytes > HOLD_BYTES) this.fail(new StateTransferError('held-overflow', `more than ${HOLD_BYTES} bytes of broadcasts arrived while the state was restored`))
      return false
    }
    return this.afterCut(from, epoch, seq)
  }

  private afterCut (from: string, epoch: number, seq: number): boolean {
    const cut = this.cut
    if (cut === undefined) return true
    const p = cut.position
    if (from === cut.provider) return epoch > p.own.epoch || (epoch === p.own.epoch && seq > p.own.seq)
    return epoch > p.epoch || (epoch === p.epoch && seq > (p.delivered[from] ?? 0))
  }

  /** The member installed a view (its own membership continues, or starts with it). */
  viewInstalled (members: readonly string[], epoch: number): void {
    if (this.stopped) return
    this.dropLeftTransfers(new Set(members))
    if (this.hasState) return
    if (this.joinEpoch === undefined) {
      this.joinEpoch = epoch
      this.startedAt = this.host.now()
      if (members.length === 1) { this.done(false, undefined, 0); return }
      this.round()
      return
    }
    const a = this.attempt
    if (a !== undefined && !members.includes(a.provider)) this.giveUp(a)
  }

  /** This member was excluded from its group: what it held belongs to a membership that ended. */
  excluded (): void {
    if (this.stopped || this.hasState) return
    if (this.attempt !== undefined) this.giveUp(this.attempt, false)
    this.roundTimer?.()
    this.roundTimer = undefined
    this.joinEpoch = undefined
    this.held = []
    this.heldBytes = 0
    this.asked.clear()
  }

  /** Asks the next member of the view that was not asked in this round. */
  private round (): void {
    if (this.stopped || this.hasState || this.attempt !== undefined || this.joinEpoch === undefined) return
    const self = this.host.self()
    const members = this.host.members() ?? []
    const next = members.find(id => id !== self && !this.asked.has(id))
    if (next === undefined) {
      // Everyone was asked. No member holds the state: the group starts empty.
      if (!this.refusedOtherwise && this.asked.size > 0) { this.done(false, undefined, 0); return }
      if (++this.rounds >= MAX_ROUNDS) { this.fail(new StateTransferError('no-provider', `no member served the state in ${MAX_ROUNDS} rounds (${(MAX_ROUNDS * ROUND_RETRY_MS) / 1000} s)`)); return }
      this.asked.clear()
      this.refusedOtherwise = false
      this.roundTimer = this.host.setTimer(ROUND_RETRY_MS, () => { this.roundTimer = undefined; this.round() })
      return
    }
    this.asked.add(next)
    const x = this.nextX++
    this.attempts++
    this.attempt = { x, provider: next, progressAt: this.host.now(), begun: false, stream: false, position: undefined, parts: [], bytes: 0, lastChunk: 0, channel: undefined, interrupted: false, restoring: false }
    this.send(next, { kind: REQUEST, x, joinEpoch: this.joinEpoch })
    this.ensureSweep()
  }

  /** Gives the attempt up; the next member is asked (once a running restore has returned). */
  private giveUp (a: Attempt, next = true): void {
    if (this.attempt !== a) return
    this.send(a.provider, { kind: ABORT, x: a.x })
    if (a.restoring) {
      a.interrupted = true
      a.channel?.interrupt(new StateTransferError('interrupted', `the transfer from ${a.provider} was interrupted; restore is called again`))
      return // restoreSettled goes on
    }
    this.attempt = undefined
    if (next) this.round()
  }

  private onJoinerFrame (from: string, f: StateFrame): void {
    const a = this.attempt
    if (a === undefined || a.provider !== from || a.x !== f.x || a.interrupted) { this.host.countDrop('state-unexpected', from); return }
    a.progressAt = this.host.now()
    switch (f.kind) {
      case REFUSAL:
        if (a.begun && f.reason !== 'snapshot-error') { this.host.countDrop('state-unexpected', from); return }
        if (f.reason !== 'no-state') this.refusedOtherwise = true
        if (a.restoring) { this.giveUp(a); return }
        this.attempt = undefined
        this.round()
        return
      case BEGIN:
        if (a.begun) { this.host.countDrop('state-unexpected', from); return }
        a.begun = true
        a.stream = f.stream
        a.position = f.position
        if (f.stream) this.startRestore(a, undefined)
        return
      case CHUNK:
        if (!a.begun || f.k !== a.lastChunk + 1) { this.host.countDrop('state-out-of-order', from); return }
        a.lastChunk = f.k
        a.bytes += f.bytes.byteLength
        if (a.channel !== undefined) a.channel.push(f.k, f.bytes)
        else { a.parts.push(f.bytes); this.send(from, { kind: ACK, x: a.x, k: f.k }) }
        return
      case END:
        if (!a.begun || f.k !== a.lastChunk || f.bytes !== a.bytes) { this.host.countDrop('state-out-of-order', from); this.giveUp(a); return }
        if (a.channel !== undefined) { a.channel.end(); return }
        this.startRestore(a, concat(a.parts, a.bytes))
        a.parts.length = 0
        return
      default:
        this.host.countDrop('state-unexpected', from)
    }
  }

  private startRestore (a: Attempt, bytes: Uint8Array | undefined): void {
    let value: unknown
    if (bytes !== undefined) {
      const decoded = decodePayload(bytes)
      if (!decoded.ok) { this.host.countDrop('state-malformed-snapshot', a.provider); this.giveUp(a); return }
      value = decoded.value
    } else {
      a.channel = new ChunkChannel(k => { if (this.attempt === a && !a.interrupted) this.send(a.provider, { kind: ACK, x: a.x, k }) })
      value = a.channel
    }
    a.restoring = true
    let outcome: Promise<unknown>
    try {
      outcome = Promise.resolve(this.handlers.restore(value))
    } catch (error) {
      outcome = Promise.reject(error)
    }
    outcome.then(
      () => { this.restoreSettled(a, undefined) },
      (error: unknown) => { this.restoreSettled(a, error ?? new Error('restore rejected')) }
    )
  }

  private restoreSettled (a: Attempt, error: unknown): void {
    a.restoring = false
    if (this.stopped || this.attempt !== a) return
    if (a.interrupted) {
      this.attempt = undefined
      this.round()
      return
    }
    if (error !== undefined) {
      this.send(a.provider, { kind: ABORT, x: a.x })
      this.fail(new StateTransferError('restore-failed', `restore threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error }))
      return
    }
    // A stream restore that returned before the end: the rest is not wanted.
    if (a.channel !== undefined && !a.channel.ended) this.send(a.provider, { kind: ABORT, x: a.x })
    this.attempt = undefined
    this.cut = { provider: a.provider, position: a.position as StreamPosition }
    this.done(true, a.provider, a.bytes)
  }

  private done (restored: boolean, from: string | undefined, bytes: number): void {
    this.hasState = true
    this.roundTimer?.()
    this.roundTimer = undefined
    this.result = { restored, from, bytes, ms: Math.max(0, this.host.now() - this.startedAt), attempts: this.attempts }
    this.host.restored(this.result)
    // The held broadcasts go on the next turn, after the code that awaited the restore has run.
    this.host.setTimer(0, () => {
      if (this.stopped) return
      const held = this.held
      this.held = []
      this.heldBytes = 0
      this.holding = false
      for (const h of held) if (this.afterCut(h.from, h.epoch, h.seq)) this.host.release(h.from, h.bin, h.epoch)
    })
  }

  private fail (error: StateTransferError): void {
    if (this.stopped) return
    this.stopAll()
    this.host.failed(error)
  }

  // ─── the provider ───────────────────────────────────────────────────────

  /** A frame on the state channel, from an authenticated peer (`inView`: a member of the installed view). */
  receive (from: string, data: unknown, inView: boolean): void {
    if (this.stopped) return
    const f = decodeStateFrame(data)
    if (f === undefined) { this.host.countDrop('state-malformed', from); return }
    if (!inView) { this.host.countDrop('state-outsider', from); return }
    switch (f.kind) {
      case REQUEST: this.onRequest(from, f.x, f.joinEpoch); return
      case ACK: this.onAck(from, f.x, f.k); return
      case ABORT: {
        const o = this.outgoing.get(from) ?? this.waiting.get(from)
        if (o !== undefined && o.x === f.x) this.cancel(o)
        else if (this.attempt?.provider === from && this.attempt.x === f.x) this.giveUp(this.attempt)
        return
      }
      default: this.onJoinerFrame(from, f)
    }
  }

  private onRequest (from: string, x: number, joinEpoch: number): void {
    const refuse = (reason: StateRefusal): void => { this.send(from, { kind: REFUSAL, x, reason }) }
    if (!this.hasState) { refuse('no-state'); return }
    const prior = this.outgoing.get(from) ?? this.waiting.get(from)
    if (prior !== undefined) {
      if (prior.x === x) return // a duplicate
      this.cancel(prior)
    }
    if (this.outgoing.size + this.waiting.size >= MAX_OUTGOING) { refuse('busy'); return }
    const o: Outgoing = { to: from, x, joinEpoch, source: undefined, sent: 0, acked: 0, bytes: 0, ended: false, pumping: false, cancelled: false, progressAt: this.host.now() }
    this.waiting.set(from, o)
    this.ensureSweep()
    this.serveWaiting()
  }

  /** This member's delivery view moved on: requests waiting for it may be served. */
  deliveryView (): void {
    if (!this.stopped) this.serveWaiting()
  }

  private serveWaiting (): void {
    const pos = this.host.position()
    if (pos === undefined) return
    for (const o of [...this.waiting.values()]) {
      if (pos.epoch < o.joinEpoch) continue
      this.waiting.delete(o.to)
      this.serve(o)
    }
  }

  /** Takes the snapshot and the stream position in one turn, then starts sending. */
  private serve (o: Outgoing): void {
    const position = this.host.position() as StreamPosition
    let taken: unknown
    try {
      taken = this.handlers.snapshot()
    } catch (error) {
      this.snapshotFailed(o, error)
      return
    }
    this.outgoing.set(o.to, o)
    void Promise.resolve(taken).then(value => {
      if (o.cancelled) { closeSource(value); return }
      const stream = isChunkSource(value)
      let bytes: Uint8Array | undefined
      if (!stream) {
        try {
          checkPayload(value)
          bytes = encodePayload(value)
        } catch (error) {
          this.snapshotFailed(o, error)
          return
        }
      }
      o.source = rechunk(stream ? value : [bytes as Uint8Array], this.host.maxChunkBytes)
      o.progressAt = this.host.now()
      this.send(o.to, { kind: BEGIN, x: o.x, position, stream })
      this.pump(o)
    }, error => { this.snapshotFailed(o, error) })
  }

  private snapshotFailed (o: Outgoing, error: unknown): void {
    this.host.reportError('state.snapshot', error)
    if (!o.cancelled) this.send(o.to, { kind: REFUSAL, x: o.x, reason: 'snapshot-error' })
    this.cancel(o)
  }

  private pump (o: Outgoing): void {
    if (o.pumping || o.cancelled || o.ended || o.source === undefined) return
    o.pumping = true
    const source = o.source
    const step = async (): Promise<void> => {
      while (!o.cancelled && !o.ended && o.sent - o.acked < WINDOW_CHUNKS) {
        const r = await source.next()
        if (o.cancelled) return
        if (r.done === true) {
          o.ended = true
          this.send(o.to, { kind: END, x: o.x, k: o.sent, bytes: o.bytes })
          return
        }
        o.sent++
        o.bytes += r.value.byteLength
        this.send(o.to, { kind: CHUNK, x: o.x, k: o.sent, bytes: r.value })
      }
    }
    step().then(
      () => { o.pumping = false },
      error => { o.pumping = false; this.snapshotFailed(o, error) }
    )
  }

  private onAck (from: string, x: number, k: number): void {
    const o = this.outgoing.get(from)
    if (o === undefined || o.x !== x || k > o.sent) { this.host.countDrop('state-unexpected', from); return }
    if (k > o.acked) { o.acked = k; o.progressAt = this.host.now() }
    if (o.ended && o.acked >= o.sent) { this.finish(o); return }
    this.pump(o)
  }

  private finish (o: Outgoing): void {
    this.outgoing.delete(o.to)
    o.cancelled = true
  }

  private cancel (o: Outgoing): void {
    o.cancelled = true
    if (this.outgoing.get(o.to) === o) this.outgoing.delete(o.to)
    if (this.waiting.get(o.to) === o) this.waiting.delete(o.to)
    void o.source?.return?.()?.catch(() => {})
  }

  private dropLeftTransfers (members: ReadonlySet<string>): void {
    for (const o of [...this.outgoing.values(), ...this.waiting.values()]) if (!members.has(o.to)) this.cancel(o)
  }

  // ─── timers and stop ────────────────────────────────────────────────────

  private ensureSweep (): void {
    if (this.sweepCancel !== undefined || this.stopped) return
    this.sweepCancel = this.host.setTimer(SWEEP_MS, () => {
      this.sweepCancel = undefined
      this.sweep()
      if (this.attempt !== undefined || this.outgoing.size > 0 || this.waiting.size > 0) this.ensureSweep()
    })
  }

  /** Gives up transfers that made no progress for STALL_MS (a request waits for a flush at most that long too). */
  private sweep (): void {
    if (this.stopped) return
    const now = this.host.now()
    for (const o of [...this.outgoing.values(), ...this.waiting.values()]) if (now - o.progressAt > STALL_MS) this.cancel(o)
    const a = this.attempt
    if (a !== undefined && !a.interrupted && now - a.progressAt > STALL_MS) {
      this.host.countDrop('state-stalled', a.provider)
      this.refusedOtherwise = true
      this.giveUp(a)
    }
  }

  private send (to: string, f: StateFrame): void {
    if (!this.stopped) this.host.send(to, encodeStateFrame(f))
  }

  private stopAll (): void {
    this.stopped = true
    this.sweepCancel?.()
    this.roundTimer?.()
    this.sweepCancel = this.roundTimer = undefined
    for (const o of [...this.outgoing.values(), ...this.waiting.values()]) this.cancel(o)
    const a = this.attempt
    if (a?.channel !== undefined) a.channel.interrupt(new StateTransferError('interrupted', 'the member stopped'))
    this.attempt = undefined
    this.held = []
    this.heldBytes = 0
  }

  /** Ends every transfer and timer (the member stops). */
  stop (): void {
    if (!this.stopped) this.stopAll()
  }
}

/**
 * The stream a joiner's `restore` reads: chunks as they arrive, each acknowledged when taken
 * (so the provider sends more only as the restore consumes).
 */
class ChunkChannel implements AsyncIterable<Uint8Array> {
  private readonly queue: Array<{ k: number, bytes: Uint8Array }> = []
  private wake: (() => void) | undefined
  private error: Error | undefined
  ended = false
  private iterated = false

  constructor (private readonly ack: (k: number) => void) {}

  push (k: number, bytes: Uint8Array): void {
    this.queue.push({ k, bytes })
    this.wake?.()
  }

  end (): void { this.ended = true; this.wake?.() }
  interrupt (error: Error): void { this.error ??= error; this.wake?.() }

  async * [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    if (this.iterated) throw new TypeError('the state stream can be read once')
    this.iterated = true
    while (true) {
      if (this.error !== undefined) throw this.error
      const next = this.queue.shift()
      if (next !== undefined) { this.ack(next.k); yield next.bytes; continue }
      if (this.ended) return
      await new Promise<void>(resolve => { this.wake = resolve })
      this.wake = undefined
    }
  }
}

/** An object `snapshot` returned as a byte stream rather than a value. */
function isChunkSource (v: unknown): v is AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return false
  return Symbol.asyncIterator in v || (Symbol.iterator in v && typeof (v as { next?: unknown }).next === 'function')
}

function closeSource (v: unknown): void {
  if (isChunkSource(v)) {
    const it = Symbol.asyncIterator in v ? (v as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]() : (v as Iterable<Uint8Array>)[Symbol.iterator]()
    void Promise.resolve(it.return?.()).catch(() => {})
  }
}

/** Cuts (and joins) a snapshot's chunks into chunks of at most `max` bytes, full ones but the last. */
async function * rechunk (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, max: number): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = []
  let n = 0
  for await (const c of source) {
    if (!(c instanceof Uint8Array)) throw new TypeError(`a state stream yields Uint8Array chunks, got ${typeof c}`)
    let off = 0
    while (off < c.byteLength) {
      const take = Math.min(max - n, c.byteLength - off)
      parts.push(c.subarray(off, off + take))
      n += take
      off += take
      if (n === max) { yield concat(parts, n); parts = []; n = 0 }
    }
  }
  if (n > 0) yield concat(parts, n)
}

function concat (parts: readonly Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array
  const out = new Uint8Array(n)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.byteLength }
  return out
}
