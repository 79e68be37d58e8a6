/**
 * Fencing tokens: unique per grant, ordered as grants are, with a string form that sorts the
 * same way; and, in simulation, the two sides of an `allow` split reaching the same epoch still
 * hand out different tokens, so a store that refuses lower tokens lets only one side write.
 */
import { describe, expect, it } from 'vitest'
import { compareTokens, parseToken, tokenString, type FencingToken } from '../src/core/fencing.js'
import { MAX_EPOCH } from '../src/core/membership.js'
import { Simulation } from '../src/testing/simulation.js'
import { checkInvariants } from '../src/testing/invariants.js'

describe('fencing tokens', () => {
  it('order by epoch, then holder; the string form sorts bytewise the same way and reads back', () => {
    const tokens: FencingToken[] = [
      { epoch: 1_764_000_000_000, holder: '12D3KooWB' },
      { epoch: 9, holder: '12D3KooWz' },
      { epoch: 1_764_000_000_000, holder: '12D3KooWA' },
      { epoch: MAX_EPOCH, holder: 'a' },
      { epoch: 10, holder: '12D3KooWa' }
    ]
    const byCompare = [...tokens].sort(compareTokens)
    const byString = [...tokens].sort((a, b) => {
      const x = Buffer.from(tokenString(a))
      const y = Buffer.from(tokenString(b))
      return Buffer.compare(x, y)
    })
    expect(byString).toEqual(byCompare)
    expect(byCompare.map(t => t.epoch)).toEqual([9, 10, 1_764_000_000_000, 1_764_000_000_000, MAX_EPOCH])
    for (const t of tokens) expect(parseToken(tokenString(t))).toEqual(t)
    expect(tokenString({ epoch: 42, holder: 'x' })).toBe('0000000000000042.x')
    expect(parseToken('42.x')).toBeUndefined()
    expect(compareTokens(tokens[0] as FencingToken, { ...tokens[0] as FencingToken })).toBe(0)
  })

  it('allow split: the sides may reach the same epoch, yet their grants never carry the same token; a fenced store takes one writer', () => {
    let sameEpoch = 0
    for (let seed = 401; seed < 421; seed++) {
      const sim = new Simulation({ seed })
      checkInvariants(sim)
      sim.addNode('n1')
      for (const id of ['n2', 'n3']) { sim.runFor(20); sim.addNode(id, ['n1']) }
      expect(sim.runUntilTrue(() => sim.converged(), 5000)).toBe(true)
      sim.partition([['n1', 'n2'], ['n3']])
      const masters = (): Array<{ id: string, epoch: number }> => sim.upNodes()
        .filter(n => n.core.actingRank(sim.now) === 0)
        .map(n => ({ id: n.id, epoch: n.core.view?.id.epoch ?? 0 }))
      expect(sim.runUntilTrue(() => masters().length === 2 && masters().every(m => m.epoch > 0), 5000)).toBe(true)
      const [a, b] = masters() as [{ id: string, epoch: number }, { id: string, epoch: number }]
      if (a.epoch === b.epoch) sameEpoch++
      const ta = tokenString({ epoch: a.epoch, holder: a.id })
      const tb = tokenString({ epoch: b.epoch, holder: b.id })
      expect(ta).not.toBe(tb)
      // A store that refuses tokens lower than the highest it accepted: from the higher
      // token's first write on, the other side's writes all fail, in any interleaving.
      let highest = ''
      const accepted: string[] = []
      for (const t of [ta, tb, ta, tb, ta, ta, tb]) {
        if (t < highest) continue
        highest = t
        accepted.push(t)
      }
      const winner = ta > tb ? ta : tb
      expect(accepted.slice(accepted.indexOf(winner)).every(t => t === winner)).toBe(true)
    }
    // Both sides at one epoch happens (here: each side installs one view after the cut): a store
    // fenced by the epoch alone would take both.
    expect(sameEpoch).toBeGreaterThan(0)
  })

})
