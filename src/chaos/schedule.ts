/**
 * The random choices of a chaos run, as pure functions of a seeded random source: which fault
 * comes next and the shape of each (which hosts, which sides, how much loss), so that one seed
 * names one schedule.
 */
import type { FaultType } from './faults.js'

/**
 * The next fault type: the selected types in shuffled rounds, each type once per round, so a
 * short run meets every selected type early and a long one meets them equally often.
 */
export function faultBag (types: readonly FaultType[], rnd: () => number): () => FaultType {
  if (types.length === 0) throw new RangeError('faultBag: no fault types selected')
  let round: FaultType[] = []
  return () => {
    if (round.length === 0) round = shuffle(types, rnd)
    return round.shift() as FaultType
  }
}

/** Two sides (sometimes three, from 5 hosts up), each non-empty: a random clean cut of `n` hosts. */
export function randomSplit (n: number, rnd: () => number): number[][] {
  const order = shuffle(hosts(n), rnd)
  if (n >= 5 && rnd() < 0.25) {
    const a = 1 + Math.floor(rnd() * (n - 2))
    const b = a + 1 + Math.floor(rnd() * (n - a - 1))
    return [order.slice(0, a), order.slice(a, b), order.slice(b)].filter(s => s.length > 0)
  }
  const cut = 1 + Math.floor(rnd() * (n - 1))
  return [order.slice(0, cut), order.slice(cut)]
}

/** A bridge on `n` ≥ 3 hosts: one host in the middle, the others in two non-empty groups. */
export function randomBridge (n: number, rnd: () => number): { readonly groups: [number[], number[]], readonly middle: number } {
  if (n < 3) throw new RangeError(`a bridge needs at least 3 hosts, got ${n}`)
  const [middle, ...rest] = shuffle(hosts(n), rnd) as [number, ...number[]]
  const cut = 1 + Math.floor(rnd() * (rest.length - 1))
  return { groups: [rest.slice(0, cut).sort(byIndex), rest.slice(cut).sort(byIndex)], middle }
}

/** The hosts of a ring in random order (each reaches its two neighbours). */
export function randomRing (n: number, rnd: () => number): number[] {
  if (n < 4) throw new RangeError(`a ring needs at least 4 hosts, got ${n}`)
  return shuffle(hosts(n), rnd)
}

/** Loss on 1 host, or up to a minority of them, of 10 to 40 % of their packets. */
export function randomLoss (n: number, rnd: () => number): { readonly hosts: number[], readonly percent: number } {
  const count = 1 + Math.floor(rnd() * Math.max(1, Math.floor((n - 1) / 2)))
  const percent = 10 + Math.floor(rnd() * 31)
  return { hosts: shuffle(hosts(n), rnd).slice(0, count).sort(byIndex), percent }
}

/** Fisher–Yates over a copy. */
export function shuffle<T> (items: readonly T[], rnd: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    const t = out[i] as T
    out[i] = out[j] as T
    out[j] = t
  }
  return out
}

const hosts = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
const byIndex = (a: number, b: number): number => a - b
