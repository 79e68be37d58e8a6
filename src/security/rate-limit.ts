/**
 * Per-peer token buckets: how a member keeps one peer from flooding it (docs/security.md).
 *
 * Each peer gets `burst` tokens, refilled at `perSecond`; a frame that finds no token is
 * dropped and counted. The peers tracked are bounded (`maxPeers`): a flood of fresh peer ids
 * evicts the least recently seen, which at worst hands an evicted peer a fresh burst.
 */
interface Bucket { tokens: number, at: number }

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()

  constructor (readonly perSecond: number, readonly burst: number, readonly maxPeers = 4096) {}

  /** Takes a token for `peer` at `now` (ms); false when it has none left. */
  take (peer: string, now: number): boolean {
    let b = this.buckets.get(peer)
    if (b === undefined) {
      b = { tokens: this.burst, at: now }
      if (this.buckets.size >= this.maxPeers) this.buckets.delete(this.buckets.keys().next().value as string)
    } else {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perSecond / 1000)
      b.at = now
      this.buckets.delete(peer) // re-inserted below: most recently seen last
    }
    this.buckets.set(peer, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Forgets `peer` (it left, or was removed). */
  forget (peer: string): void { this.buckets.delete(peer) }

  get size (): number { return this.buckets.size }
}

/**
 * A member's limits:
 *  - peers outside its view (joiners, observers, strangers, the other side of a healed
 *    partition): every frame, before decoding;
 *  - join requests from peers outside its view (after decoding);
 *  - protocol messages from members of its view. Application messages between members are the
 *    application's own traffic and are not limited.
 */
export interface PeerLimits {
  readonly outsider: TokenBuckets
  readonly joins: TokenBuckets
  readonly members: TokenBuckets
}

/**
 * Rates far above what the protocol sends (a joiner asks every `retryIntervalMs`; members
 * exchange a heartbeat and a reply every heartbeat interval), so only a flood hits them.
 */
export function peerLimits (retryIntervalMs: number): PeerLimits {
  const joinsPerSecond = Math.max(10, 2 * 1000 / retryIntervalMs)
  return {
    outsider: new TokenBuckets(200, 400),
    joins: new TokenBuckets(joinsPerSecond, 2 * joinsPerSecond),
    members: new TokenBuckets(2000, 4000)
  }
}
