/**
 * Broadcast batching: frames broadcast in one turn of the event loop leave as one group
 * message. Each gossipsub message costs a signature, a verification per receiver and a message
 * id (about 0.5 ms a hop here, VERSIONS.md trap 8), so a burst sent one frame per message is
 * capped near a thousand per second; batched, the cost is paid once per batch.
 *
 * Order is kept (a batch is flushed before anything later) and a batch never exceeds
 * `maxBytes` or `maxFrames`. A broadcast after a quiet spell leaves at the end of the current
 * turn of the event loop (setImmediate). During a stream, batches leave at most every
 * `lingerMs`, so a steady 1,000 msg/s becomes about 200 group messages a second instead of
 * 1,000, for at most `lingerMs` of added latency (Nagle's trade, bounded).
 */
export class Batcher {
  private frames: Uint8Array[] = []
  private bytes = 0
  private scheduled: { immediate?: NodeJS.Immediate, timeout?: NodeJS.Timeout } | undefined
  private lastFlush = Number.NEGATIVE_INFINITY

  constructor (
    private readonly flushBatch: (frames: Uint8Array[]) => void,
    private readonly maxBytes: number,
    private readonly maxFrames = 1000,
    private readonly lingerMs = 5,
    private readonly now: () => number = () => performance.now()
  ) {}

  /** Queues one encoded frame; it leaves at the end of this turn, or sooner if the batch is full. */
  add (frame: Uint8Array): void {
    // Room for the batch's own framing (a few bytes per entry, and the envelope).
    if (this.frames.length > 0 && (this.bytes + frame.byteLength + 64 > this.maxBytes || this.frames.length >= this.maxFrames)) this.flush()
    this.frames.push(frame)
    this.bytes += frame.byteLength + 8
    if (this.scheduled === undefined) {
      const wait = this.lastFlush + this.lingerMs - this.now()
      this.scheduled = wait > 0 ? { timeout: setTimeout(() => this.flush(), wait) } : { immediate: setImmediate(() => this.flush()) }
    }
  }

  /** Sends what is queued now. Also called on stop, so nothing queued is left behind. */
  flush (): void {
    if (this.scheduled?.immediate !== undefined) clearImmediate(this.scheduled.immediate)
    if (this.scheduled?.timeout !== undefined) clearTimeout(this.scheduled.timeout)
    this.scheduled = undefined
    if (this.frames.length === 0) return
    this.lastFlush = this.now()
    const batch = this.frames
    this.frames = []
    this.bytes = 0
    this.flushBatch(batch)
  }
}
