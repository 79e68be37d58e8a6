/** The direct stream's send queue (src/transport/frame-queue.ts): order, coalescing, end. */
import { describe, expect, it } from 'vitest'
import * as lp from 'it-length-prefixed'
import { COALESCE_BYTES, FrameQueue } from '../src/transport/frame-queue.js'

const frame = (n: number, size = 3): ReturnType<typeof lp.encode.single> => lp.encode.single(new Uint8Array(size).fill(n))

describe('FrameQueue', () => {
  it('writes the frames queued while the writer was busy as one chunk, in order, and decodes back to them', async () => {
    const q = new FrameQueue()
    const it = q[Symbol.asyncIterator]()
    for (let i = 0; i < 5; i++) q.push(frame(i))
    expect(q.readableLength).toBe(5 * 4)
    const chunk = (await it.next()).value as Uint8Array
    expect(q.readableLength).toBe(0)
    const decoded: number[] = []
    for await (const f of lp.decode([chunk])) decoded.push(f.subarray()[0] as number)
    expect(decoded).toEqual([0, 1, 2, 3, 4])
    q.push(frame(9))
    expect([...((await it.next()).value as Uint8Array)]).toEqual([3, 9, 9, 9])
    q.end()
    expect((await it.next()).done).toBe(true)
  })

  it('keeps a chunk under COALESCE_BYTES unless one frame alone is larger', async () => {
    const q = new FrameQueue()
    const big = COALESCE_BYTES / 2
    const frames = [frame(1, big), frame(2, big), frame(3, COALESCE_BYTES * 2)]
    for (const f of frames) q.push(f)
    const it = q[Symbol.asyncIterator]()
    const sizes: number[] = []
    for (let i = 0; i < 3; i++) sizes.push(((await it.next()).value as Uint8Array).byteLength)
    expect(sizes[0]).toBeLessThanOrEqual(COALESCE_BYTES)
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(frames.reduce((a, f) => a + f.byteLength, 0))
    expect(sizes[2]).toBe(frames[2]?.byteLength)
  })

  it('wakes an idle writer at the end of the turn for a few frames, at once for a burst', async () => {
    const q = new FrameQueue()
    const it = q[Symbol.asyncIterator]()
    const order: string[] = []
    // The writer is idle (waiting); a few frames wait for the end of the turn.
    const first = it.next().then(r => { order.push(`write ${(r.value as Uint8Array).byteLength / 4}`) })
    await Promise.resolve()
    setImmediate(() => order.push('turn ends'))
    for (let i = 0; i < 3; i++) q.push(frame(i))
    await first
    expect(order).toEqual(['turn ends', 'write 3'])
    // A burst of 16 wakes it before the turn ends: the far side can start on them.
    order.length = 0
    const second = it.next().then(r => { order.push(`write ${(r.value as Uint8Array).byteLength / 4}`) })
    await Promise.resolve()
    setImmediate(() => order.push('turn ends'))
    for (let i = 0; i < 16; i++) q.push(frame(i))
    await second
    expect(order).toEqual(['write 16'])
    q.end()
  })

  it('ends a waiting writer, and takes no frames after the end', async () => {
    const q = new FrameQueue()
    const it = q[Symbol.asyncIterator]()
    const pending = it.next()
    q.end()
    q.push(frame(1))
    expect((await pending).done).toBe(true)
    expect(q.readableLength).toBe(0)
  })
})
