/**
 * Async iteration over an emitter's events with a bounded buffer, for every iterator of the
 * public API (views, messages, mastership changes, master URL changes, observer views).
 *
 * Node's `events.on` buffers without bound while the consumer is busy (its `highWaterMark`
 * needs an emitter that can pause). Here at most `highWaterMark` events wait; one more and the
 * iterator is over: it yields the ones it buffered, in order, and then throws
 * IteratorOverflowError, so the consumer knows where its stream broke instead of running out
 * of memory or silently missing events. The events themselves still reach listeners.
 */
import type { EventEmitter } from 'node:events'
import { InvalidOptionError, IteratorOverflowError } from '../errors.js'

export const DEFAULT_HIGH_WATER_MARK = 10_000

export interface IterateOptions {
  readonly signal?: AbortSignal
  /** Events buffered for a busy consumer before the iterator fails (default 10,000). */
  readonly highWaterMark?: number
}

export function highWaterMarkOf (opts: IterateOptions): number {
  const hwm = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
  if (!Number.isSafeInteger(hwm) || hwm < 1) throw new InvalidOptionError('highWaterMark', 'a positive integer', hwm)
  return hwm
}

/** Yields the first argument of each `event` until `signal` aborts (then ends quietly). */
export async function * boundedEvents<T> (emitter: Pick<EventEmitter, 'on' | 'off'>, event: string, signal: AbortSignal, highWaterMark: number, what: string): AsyncGenerator<T> {
  if (signal.aborted) return
  const queue: T[] = []
  let head = 0
  let overflowed = false
  let wake: (() => void) | undefined
  const onEvent = (value: T): void => {
    if (overflowed) return
    if (queue.length - head >= highWaterMark) overflowed = true
    else queue.push(value)
    wake?.()
  }
  const onAbort = (): void => { wake?.() }
  emitter.on(event, onEvent)
  signal.addEventListener('abort', onAbort)
  try {
    for (;;) {
      if (head < queue.length) {
        const value = queue[head] as T
        queue[head++] = undefined as T
        if (head > 1024 && head * 2 > queue.length) { queue.splice(0, head); head = 0 }
        yield value
        continue
      }
      if (overflowed) throw new IteratorOverflowError(what, highWaterMark)
      if (signal.aborted) return
      await new Promise<void>(resolve => { wake = resolve })
      wake = undefined
    }
  } finally {
    emitter.off(event, onEvent)
    signal.removeEventListener('abort', onAbort)
  }
}
