/**
 * The send queue of one direct stream: length-prefixed frames in send order, drained by the
 * stream's sink. Every frame queued while the sink was busy leaves in one write (up to
 * COALESCE_BYTES), so a burst of small frames (a turn's acks, replies, heartbeats replies)
 * costs one yamux frame, one noise encryption and one socket write instead of one each: on
 * libp2p's stream path the per-write cost, not the bytes, bounds small-message rates.
 *
 * An idle sink is woken at the end of the event-loop turn (setImmediate), not at the first
 * frame: the frames of one socket read are handled one per microtask hop (the decoder is an
 * async iterator), and a reply to each would otherwise leave in a write of its own. A long
 * burst wakes it sooner (EARLY_WAKE_FRAMES).
 */
export const COALESCE_BYTES = 1024 * 1024
/**
 * With this many frames waiting, an idle sink is woken at once instead of at the end of the
 * turn: while this process goes on producing (a batch of replies, of new requests), the far
 * side already works on the first ones, so two processes overlap instead of taking turns.
 */
const EARLY_WAKE_FRAMES = 16

/** A frame as it-length-prefixed encodes it: its parts (prefix, then body), iterable. */
type Encoded = Iterable<Uint8Array> & { readonly byteLength: number }

export class FrameQueue implements AsyncIterable<Uint8Array> {
  private items: Encoded[] = []
  private head = 0
  private bytes = 0
  private ended = false
  private wake: (() => void) | undefined
  private waking: NodeJS.Immediate | undefined

  /** Bytes waiting to be written. */
  get readableLength (): number { return this.bytes }

  push (frame: Encoded): void {
    if (this.ended) return
    this.items.push(frame)
    this.bytes += frame.byteLength
    if (this.wake === undefined) return
    if (this.items.length - this.head >= EARLY_WAKE_FRAMES) {
      if (this.waking !== undefined) clearImmediate(this.waking)
      this.wakeNow()
    } else if (this.waking === undefined) this.waking = setImmediate(this.wakeNow)
  }

  private readonly wakeNow = (): void => {
    this.waking = undefined
    this.wake?.()
  }

  /** No more frames: the iterator ends at once, and frames still queued are dropped (the stream is closing). */
  end (): void {
    this.ended = true
    if (this.waking !== undefined) clearImmediate(this.waking)
    this.wakeNow()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.ended) return
      if (this.head < this.items.length) {
        yield this.take()
        continue
      }
      await new Promise<void>(resolve => { this.wake = resolve })
      this.wake = undefined
    }
  }

  /** The queued frames, concatenated, up to COALESCE_BYTES (at least one frame). */
  private take (): Uint8Array {
    const parts: Uint8Array[] = []
    let size = 0
    while (this.head < this.items.length) {
      const item = this.items[this.head] as Encoded
      if (size > 0 && size + item.byteLength > COALESCE_BYTES) break
      for (const part of item) parts.push(part)
      size += item.byteLength
      this.items[this.head++] = undefined as unknown as Encoded
    }
    if (this.head === this.items.length) { this.items = []; this.head = 0 }
    this.bytes -= size
    return parts.length === 1 ? parts[0] as Uint8Array : Buffer.concat(parts, size)
  }
}
