/**
 * The frames of reliable messaging (broadcast.ts, unicast.ts), all on the direct stream, where
 * the sender is the authenticated peer:
 *
 *  - `rb`  { e, s, m }  broadcasts s, s+1, … (encoded payloads `m`) sent in the view of epoch `e`
 *  - `rba` { e, s, f? } the receiver holds every broadcast of the peer's in `e` up to `s`; with
 *                       `f`, it holds the peer's flush too, or has finished with `e` (send no more)
 *  - `rbn` { e, s }     the receiver misses the peer's broadcasts in `e` from `s` on: resend
 *  - `rbf` { e, n }     the peer sent `n` broadcasts in `e` and will send no more in it (the flush)
 *  - `uc`  { i, e, n, m } messages n, n+1, … of the sender's session `i` to this receiver
 *  - `uca` { i, n }     the receiver got every message of session `i` up to `n`
 *
 * Sequence numbers start at 1. Payloads are msgpack encoded once by the sender and carried as
 * binary, so one batch frame is encoded once for every receiver.
 */
export interface BroadcastData { readonly t: 'rb', readonly e: number, readonly s: number, readonly m: readonly Uint8Array[] }
export interface BroadcastAck { readonly t: 'rba', readonly e: number, readonly s: number, readonly f?: true }
export interface BroadcastNak { readonly t: 'rbn', readonly e: number, readonly s: number }
export interface BroadcastFlush { readonly t: 'rbf', readonly e: number, readonly n: number }
export interface UnicastData { readonly t: 'uc', readonly i: number, readonly e: number, readonly n: number, readonly m: readonly Uint8Array[] }
export interface UnicastAck { readonly t: 'uca', readonly i: number, readonly n: number }

export type MessagingFrame = BroadcastData | BroadcastAck | BroadcastNak | BroadcastFlush | UnicastData | UnicastAck

export const MESSAGING_TYPES = ['rb', 'rba', 'rbn', 'rbf', 'uc', 'uca'] as const

/**
 * Bytes a data frame needs beyond its payloads' (the envelope without the cluster name, the
 * epoch, the sequence number, the array), and per payload (msgpack's binary header).
 */
export const FRAME_OVERHEAD = 64
export const BIN_HEADER = 5

/** At most this many messages in one data frame (a bound on the decoder's work per frame). */
export const MAX_BATCH_MESSAGES = 10_000

export function isMessagingFrame (msg: { readonly t: string }): msg is MessagingFrame {
  return (MESSAGING_TYPES as readonly string[]).includes(msg.t)
}

/** Validates a decoded map of one of MESSAGING_TYPES; undefined when a field is missing or out of range. */
export function validateMessaging (t: MessagingFrame['t'], r: Record<string, unknown>): MessagingFrame | undefined {
  switch (t) {
    case 'rb': return count(r.e) && seq(r.s) && bins(r.m) ? { t, e: r.e, s: r.s, m: r.m } : undefined
    case 'rba':
      if (!count(r.e) || !count(r.s) || (r.f !== undefined && r.f !== true)) return undefined
      return r.f === true ? { t, e: r.e, s: r.s, f: true } : { t, e: r.e, s: r.s }
    case 'rbn': return count(r.e) && seq(r.s) ? { t, e: r.e, s: r.s } : undefined
    case 'rbf': return count(r.e) && count(r.n) ? { t, e: r.e, n: r.n } : undefined
    case 'uc': return count(r.i) && count(r.e) && seq(r.n) && bins(r.m) ? { t, i: r.i, e: r.e, n: r.n, m: r.m } : undefined
    case 'uca': return count(r.i) && count(r.n) ? { t, i: r.i, n: r.n } : undefined
  }
}

function count (v: unknown): v is number { return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 }
function seq (v: unknown): v is number { return count(v) && v >= 1 }
function bins (v: unknown): v is Uint8Array[] {
  return Array.isArray(v) && v.length > 0 && v.length <= MAX_BATCH_MESSAGES && v.every(b => b instanceof Uint8Array)
}

/**
 * The frames a view change waits for, which may also arrive as a datagram (io.ts `sendControl`):
 * a flush, a chase (nak), a final ack. Each is idempotent and none depends on arriving in order.
 */
export function isControlFrame (msg: { readonly t: string }): msg is BroadcastFlush | BroadcastNak | BroadcastAck {
  return msg.t === 'rbf' || msg.t === 'rbn' || (msg.t === 'rba' && (msg as BroadcastAck).f === true)
}
