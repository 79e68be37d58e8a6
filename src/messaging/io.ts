/** What the messaging layers need of the member: time, frames out, drop counting, timers. No I/O of their own. */
import type { MessagingFrame } from './wire.js'

export interface MessagingIo {
  now: () => number
  /** Encodes a frame once, to be sent to several members. */
  encode: (msg: MessagingFrame) => Uint8Array
  /** Queues an encoded frame on the direct stream to `to`. */
  sendFrame: (to: string, frame: Uint8Array) => void
  countDrop: (reason: string, from: string | undefined) => void
  setTimer: (ms: number, fn: () => void) => () => void
  /** Runs `fn` after the current turn of the event loop (where messages of one turn batch up). */
  soon: (fn: () => void) => void
}
