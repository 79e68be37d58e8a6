/** Per-peer token buckets (security/rate-limit.ts), on a manual clock. */
import { describe, expect, it } from 'vitest'
import { TokenBuckets, peerLimits } from '../src/security/rate-limit.js'

describe('TokenBuckets', () => {
  it('allows a burst, then the rate, per peer', () => {
    const b = new TokenBuckets(10, 5)
    const taken = Array.from({ length: 8 }, () => b.take('p', 0))
    expect(taken).toEqual([true, true, true, true, true, false, false, false])
    expect(b.take('q', 0)).toBe(true) // another peer has its own bucket
    expect(b.take('p', 100)).toBe(true) // 100 ms at 10/s: one token back
    expect(b.take('p', 100)).toBe(false)
    // Over a long quiet spell the bucket refills to the burst, no further.
    expect(Array.from({ length: 7 }, () => b.take('p', 60_000)).filter(Boolean)).toHaveLength(5)
  })

  it('tracks a bounded number of peers, evicting the least recently seen', () => {
    const b = new TokenBuckets(1, 1, 3)
    for (const p of ['a', 'b', 'c']) expect(b.take(p, 0)).toBe(true)
    expect(b.take('a', 0)).toBe(false) // a is now the most recent
    expect(b.take('d', 0)).toBe(true) // evicts b
    expect(b.size).toBe(3)
    expect(b.take('b', 0)).toBe(true) // b forgot its spent token
    expect(b.take('a', 0)).toBe(false) // a was kept
  })

  it('sustains 10 000 steps of a legitimate pace without a drop, and cuts a flood to the rate', () => {
    const limits = peerLimits(200)
    let ok = 0
    for (let i = 0; i < 10_000; i++) if (limits.joins.take('joiner', i * 200)) ok++ // one join per retry interval
    expect(ok).toBe(10_000)
    let flood = 0
    for (let i = 0; i < 100_000; i++) if (limits.outsider.take('flooder', i / 100)) flood++ // 100 frames per ms for 1 s
    expect(flood).toBeGreaterThanOrEqual(400)
    expect(flood).toBeLessThanOrEqual(400 + 200 + 1) // the burst plus one second at 200/s
  })
})
