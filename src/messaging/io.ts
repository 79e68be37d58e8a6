/** What the messaging layers need of the member: time, frames out, drop counting, timers. No I/O of their own. */
import type { MessagingFrame } from './wire.js'

export interface MessagingIo {
  now: () => number
  /** Encodes a frame once, to be sent to several members. */
  encode: (msg: MessagingFrame) => Uint8Array
  /** Queues an encoded frame on the direct stream to `to`. */
  sendFrame: (to: string, frame: Uint8Array) => void
  /**
   * Sends a small control frame a view change waits for (flush, flush ack, flush chase): on the
   * direct stream and, where the peer takes datagrams, also as a datagram. After a cut heals, a
   * stream's connection can sit behind TCP retransmissions (backed off to hundreds of ms) of what
   * was written during the cut, while datagrams pass at once; the view change then waits for
   * whichever copy arrives first. Every control frame is idempotent, so the second copy is harmless.
   */
  sendControl: (to: string, frame: Uint8Array) => void
  countDrop: (reason: string, from: string | undefined) => void
  setTimer: (ms: number, fn: () => void) => () => void
  /** Runs `fn` after the current turn of the event loop (where messages of one turn batch up). */
  soon: (fn: () => void) => void
}
