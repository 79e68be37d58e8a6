/**
 * Fencing tokens: what a master hands to a store so that the store can refuse a deposed master
 * (Kleppmann's fencing token; JGroups' ViewId pairs a counter with its creator for the same
 * reason). A token names one grant: the epoch of the view in which mastership was granted, and
 * the member it was granted to.
 *
 * The epoch alone does not name a grant: under `allow` the two sides of a partition install
 * views independently and may reach the same epoch, and the masters of masters(N) share their
 * view's epoch. The holder's id tells such grants apart, so no two grants to different members
 * carry the same token. A lease that lapses and comes back in the same view re-grants the same
 * token to the same member: no one else was granted in between.
 *
 * Order: by epoch, then by holder id (by UTF-16 code units; ids are base58, so bytewise too).
 * A store keeps the highest token it accepted and refuses a write with a lower one (an equal one
 * is the same grant). Within one group each new master's epoch is higher than every earlier
 * master's, so the epoch decides; the holder decides only between grants that may coexist (the
 * sides of an `allow` split, the masters of one view), and then the store, not Conclave, picks
 * the one that goes on.
 */

/** The widest epoch (core/membership.ts MAX_EPOCH is 2^50, 16 decimal digits). */
const EPOCH_DIGITS = 16

export interface FencingToken {
  readonly epoch: number
  /** The member id the grant went to. */
  readonly holder: string
}

/** Negative, zero or positive as `a` is lower than, the same grant as, or higher than `b`. */
export function compareTokens (a: FencingToken, b: FencingToken): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1
  return a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0
}

/**
 * The token as one string that sorts bytewise exactly as `compareTokens` (the epoch zero-padded
 * to 16 digits, `.`, the holder): a store compares it as text in the C collation, e.g.
 * `UPDATE fence SET token = $1 WHERE name = $2 AND token <= $1 COLLATE "C"`.
 */
export function tokenString (t: FencingToken): string {
  return `${String(t.epoch).padStart(EPOCH_DIGITS, '0')}.${t.holder}`
}

/** Reads `tokenString`'s form back; undefined when `text` is not one. */
export function parseToken (text: string): FencingToken | undefined {
  const m = /^(\d{16})\.(.+)$/.exec(text)
  if (m === null) return undefined
  const epoch = Number(m[1])
  return Number.isSafeInteger(epoch) ? { epoch, holder: m[2] as string } : undefined
}
