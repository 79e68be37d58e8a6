/** The simulation's event queue: events come out in (time, sequence) order, however they went in. */
import { describe, expect, it } from 'vitest'
import { EventQueue, type Scheduled } from '../src/testing/event-queue.js'
import { seededRandom } from '../src/testing/random.js'

describe('EventQueue', () => {
  it('pops in (at, seq) order through interleaved pushes and pops, ties by sequence', () => {
    const random = seededRandom(11)
    const q = new EventQueue()
    const popped: Scheduled[] = []
    let seq = 0
    let now = 0
    for (let round = 0; round < 2000; round++) {
      const pushes = Math.floor(random() * 4)
      // Coarse times make many ties, which must come out in sequence order.
      for (let i = 0; i < pushes; i++) q.push({ at: now + Math.floor(random() * 20), seq: seq++, run: () => {} })
      if (random() < 0.6) {
        const next = q.pop()
        if (next !== undefined) { popped.push(next); now = next.at }
      }
    }
    for (let next = q.pop(); next !== undefined; next = q.pop()) popped.push(next)
    expect(popped).toHaveLength(seq)
    expect(q.size).toBe(0)
    for (let i = 1; i < popped.length; i++) {
      const a = popped[i - 1] as Scheduled
      const b = popped[i] as Scheduled
      expect(a.at < b.at || (a.at === b.at && a.seq < b.seq), `${a.at}/${a.seq} before ${b.at}/${b.seq}`).toBe(true)
    }
  })

  it('peek shows what pop takes; an empty queue gives undefined', () => {
    const q = new EventQueue()
    expect(q.peek()).toBeUndefined()
    expect(q.pop()).toBeUndefined()
    q.push({ at: 5, seq: 1, run: () => {} })
    q.push({ at: 3, seq: 2, run: () => {} })
    expect(q.peek()?.seq).toBe(2)
    expect(q.pop()?.seq).toBe(2)
    expect(q.pop()?.seq).toBe(1)
    expect(q.pop()).toBeUndefined()
  })
})
