/**
 * The simulation's pending events, ordered by (time, sequence number): a binary min-heap, so
 * scheduling and taking the next event cost O(log n) however many timers and messages a large
 * simulated cluster has in flight. The order is total (sequence numbers are unique), so a run
 * is the same for the same seed, as with any other ordered structure.
 */
export interface Scheduled { readonly at: number, readonly seq: number, readonly run: () => void }

export class EventQueue {
  private readonly heap: Scheduled[] = []

  get size (): number { return this.heap.length }

  /** The next event, without taking it. */
  peek (): Scheduled | undefined { return this.heap[0] }

  push (item: Scheduled): void {
    const h = this.heap
    h.push(item)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(item, h[parent] as Scheduled)) break
      h[i] = h[parent] as Scheduled
      i = parent
    }
    h[i] = item
  }

  /** Takes the next event. */
  pop (): Scheduled | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (top === undefined || last === undefined || h.length === 0) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const child = r < h.length && before(h[r] as Scheduled, h[l] as Scheduled) ? r : l
      if (!before(h[child] as Scheduled, last)) break
      h[i] = h[child] as Scheduled
      i = child
    }
    h[i] = last
    return top
  }
}

function before (a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
