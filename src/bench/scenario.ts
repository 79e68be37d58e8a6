/** The shape of a benchmark scenario, and the flag parsers scenarios share. */
import type { BenchContext } from './context.js'

export interface FlagSpec {
  readonly default: string
  readonly describe: string
  /** Parses the flag's text; throws an Error whose message says what was expected. */
  readonly parse: (text: string) => unknown
}

export interface Scenario {
  readonly name: string
  readonly summary: string
  readonly flags: Readonly<Record<string, FlagSpec>>
  /** Flag values for a smoke run: tiny counts, for the test suite. */
  readonly smoke: Readonly<Record<string, string>>
  /** Runs and fills `ctx.report`; returns early (or throws AbortedRun) when ctx is aborted. */
  run: (ctx: BenchContext, flags: Readonly<Record<string, unknown>>) => Promise<void>
}

export function int (min: number, max: number): (text: string) => number {
  return text => {
    const n = Number(text)
    if (!/^\d+$/.test(text) || n < min || n > max) throw new Error(`a whole number from ${min} to ${max}, got "${text}"`)
    return n
  }
}

export function listOf<T extends string> (valid: readonly T[]): (text: string) => T[] {
  return text => {
    const items = text.split(',').map(s => s.trim()).filter(s => s !== '')
    const bad = items.filter(s => !(valid as readonly string[]).includes(s))
    if (items.length === 0 || bad.length > 0) throw new Error(`a comma-separated list of ${valid.join(', ')}, got "${text}"`)
    return items as T[]
  }
}

export function intList (min: number, max: number): (text: string) => number[] {
  const one = int(min, max)
  return text => text.split(',').map(s => one(s.trim()))
}

/** "≤ a / b unit" target check on a median and a p99. */
export function within (median: number, p99: number, maxMedian: number, maxP99?: number): boolean {
  return median <= maxMedian && (maxP99 === undefined || p99 <= maxP99)
}
