/**
 * A manual clock (the scheduler's SchedulerClock) for deterministic tests: time moves only when
 * the test advances it. Due timers run in time order, ties in the order they were set, and after
 * each one the microtask queue drains, so whatever promise chain a timer resumed has run before
 * the next timer fires, as it would have in real time. `pending` tells a test which timers are
 * left, e.g. none after a job was cancelled.
 */
import type { SchedulerClock } from '../policies/scheduler.js'

interface Timer { readonly at: number, readonly seq: number, readonly fn: () => void }

export class ManualClock implements SchedulerClock {
  private time: number
  private seq = 0
  private readonly timers = new Map<number, Timer>()

  /** `start`: the initial wall-clock time, Unix ms. */
  constructor (start = 0) {
    this.time = start
  }

  readonly now = (): number => this.time

  readonly setTimer = (fn: () => void, ms: number): (() => void) => {
    const seq = ++this.seq
    this.timers.set(seq, { at: this.time + Math.max(0, ms), seq, fn })
    return () => { this.timers.delete(seq) }
  }

  /** How many timers are set and not yet run or cleared. */
  get pending (): number { return this.timers.size }

  /** When the earliest pending timer is due, if any. */
  get nextAt (): number | undefined { return this.earliest()?.at }

  /**
   * Moves time forward by `ms`, running every timer due up to then (also those the run timers
   * set), each at its own time; `onStep` runs after each, for invariant checks.
   */
  async advance (ms: number, onStep?: () => void): Promise<void> {
    const until = this.time + ms
    await settle()
    for (let t = this.earliest(); t !== undefined && t.at <= until; t = this.earliest()) {
      this.timers.delete(t.seq)
      this.time = Math.max(this.time, t.at)
      t.fn()
      await settle()
      onStep?.()
    }
    this.time = until
    await settle()
  }

  /** Moves time to `at` (Unix ms), like advance. */
  async advanceTo (at: number, onStep?: () => void): Promise<void> {
    await this.advance(Math.max(0, at - this.time), onStep)
  }

  private earliest (): Timer | undefined {
    let first: Timer | undefined
    for (const t of this.timers.values()) if (first === undefined || t.at < first.at || (t.at === first.at && t.seq < first.seq)) first = t
    return first
  }
}

/** Lets every queued microtask run (the queue drains before the next macrotask). */
async function settle (): Promise<void> {
  await new Promise<void>(resolve => setImmediate(resolve))
}
