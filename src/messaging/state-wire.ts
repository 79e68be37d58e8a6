/**
 * The frames of state transfer (state-transfer.ts), on the `state` service channel of the
 * direct stream, where the sender is the authenticated peer. Short arrays, `x` the joiner's
 * transfer id (one counter per joiner), `k` a chunk number from 1:
 *
 *  - request `[0, x, joinEpoch]`        joiner → provider: the state, at or after joinEpoch's view
 *  - refusal `[1, x, reason]`           provider → joiner: not from me (REFUSALS)
 *  - begin   `[2, x, position, mode]`   provider → joiner: the snapshot's cut of the broadcast
 *                                       stream; mode 0: one msgpack value, 1: a byte stream
 *  - chunk   `[3, x, k, bytes]`
 *  - end     `[4, x, k, bytes]`         the last chunk was k, the snapshot had `bytes` bytes
 *  - ack     `[5, x, k]`                joiner → provider: chunks up to k consumed (the window)
 *  - abort   `[6, x]`                   either way: this transfer is over
 *
 * Decoding never throws: a frame that does not fit comes back undefined, to be counted.
 */
import type { StreamPosition } from './broadcast.js'

export const STATE_SERVICE = 'state'

export const REQUEST = 0
export const REFUSAL = 1
export const BEGIN = 2
export const CHUNK = 3
export const END = 4
export const ACK = 5
export const ABORT = 6

/** Why a member does not serve a state request. */
export const REFUSALS = ['no-state', 'not-in-view', 'busy', 'stopping', 'snapshot-error'] as const
export type StateRefusal = typeof REFUSALS[number]

export type StateFrame =
  | { readonly kind: typeof REQUEST, readonly x: number, readonly joinEpoch: number }
  | { readonly kind: typeof REFUSAL, readonly x: number, readonly reason: StateRefusal }
  | { readonly kind: typeof BEGIN, readonly x: number, readonly position: StreamPosition, readonly stream: boolean }
  | { readonly kind: typeof CHUNK, readonly x: number, readonly k: number, readonly bytes: Uint8Array }
  | { readonly kind: typeof END, readonly x: number, readonly k: number, readonly bytes: number }
  | { readonly kind: typeof ACK, readonly x: number, readonly k: number }
  | { readonly kind: typeof ABORT, readonly x: number }

/** At most this many senders in a position (the view's size bound). */
const MAX_POSITION_SENDERS = 1024

export function encodeStateFrame (f: StateFrame): unknown[] {
  switch (f.kind) {
    case REQUEST: return [REQUEST, f.x, f.joinEpoch]
    case REFUSAL: return [REFUSAL, f.x, f.reason]
    case BEGIN: return [BEGIN, f.x, f.position, f.stream ? 1 : 0]
    case CHUNK: return [CHUNK, f.x, f.k, f.bytes]
    case END: return [END, f.x, f.k, f.bytes]
    case ACK: return [ACK, f.x, f.k]
    case ABORT: return [ABORT, f.x]
  }
}

export function decodeStateFrame (d: unknown): StateFrame | undefined {
  if (!Array.isArray(d) || !count(d[1])) return undefined
  const x = d[1]
  switch (d[0]) {
    case REQUEST: return d.length === 3 && count(d[2]) ? { kind: REQUEST, x, joinEpoch: d[2] } : undefined
    case REFUSAL: return d.length === 3 && (REFUSALS as readonly unknown[]).includes(d[2]) ? { kind: REFUSAL, x, reason: d[2] as StateRefusal } : undefined
    case BEGIN: {
      const position = d.length === 4 && (d[3] === 0 || d[3] === 1) ? streamPosition(d[2]) : undefined
      return position === undefined ? undefined : { kind: BEGIN, x, position, stream: d[3] === 1 }
    }
    case CHUNK: return d.length === 4 && count(d[2]) && d[2] >= 1 && d[3] instanceof Uint8Array ? { kind: CHUNK, x, k: d[2], bytes: d[3] } : undefined
    case END: return d.length === 4 && count(d[2]) && count(d[3]) ? { kind: END, x, k: d[2], bytes: d[3] } : undefined
    case ACK: return d.length === 3 && count(d[2]) ? { kind: ACK, x, k: d[2] } : undefined
    case ABORT: return d.length === 2 ? { kind: ABORT, x } : undefined
    default: return undefined
  }
}

function streamPosition (v: unknown): StreamPosition | undefined {
  if (!isRecord(v) || !count(v.epoch) || !isRecord(v.delivered) || !isRecord(v.own)) return undefined
  const own = v.own
  if (!count(own.epoch) || !count(own.seq)) return undefined
  const entries = Object.entries(v.delivered)
  if (entries.length > MAX_POSITION_SENDERS || !entries.every(([id, n]) => id.length <= 1024 && count(n))) return undefined
  return { epoch: v.epoch, delivered: Object.fromEntries(entries) as Record<string, number>, own: { epoch: own.epoch, seq: own.seq } }
}

function count (v: unknown): v is number { return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 }
function isRecord (v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) }
