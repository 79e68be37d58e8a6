/**
 * Reliable messaging with real libp2p members in one process on 127.0.0.1: broadcasts that
 * arrive complete, in order, once, in the view they were sent in, and before the next view's
 * event; acknowledged sends; what a stranger's messaging frames get.
 */
import { describe, expect, it } from 'vitest'
import { IteratorOverflowError, NotDeliveredError, NotInViewError, NotRunningError, InvalidOptionError, type Message } from '../src/index.js'
import { createLibp2pTransport } from '../src/transport/libp2p.js'
import { Codec, encodePayload } from '../src/transport/codec.js'
import { waitUntil } from '../src/testing/member-process.js'
import { hostPort, memberPool } from './fixtures/in-process.js'

const { cluster, member } = memberPool('msg')

interface Log { events: Array<{ kind: 'view', epoch: number } | { kind: 'msg', m: Message }> }
function record (m: Member): Log {
  const log: Log = { events: [] }
  m.on('view', c => log.events.push({ kind: 'view', epoch: c.view.id.epoch }))
  m.on('message', msg => log.events.push({ kind: 'msg', m: msg }))
  return log
}
const received = (log: Log, from: string): Array<{ i: number, e: number, epoch: number }> =>
  log.events.flatMap(e => e.kind === 'msg' && e.m.from === from ? [{ ...(e.m.payload as { i: number, e: number }), epoch: e.m.epoch }] : [])

describe('reliable messaging between real members', () => {
  it('three senders: every broadcast arrives once, in order, tagged with the view it was sent in — no warm-up needed', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    const d = await member(c, 'd', [hostPort(a)])
    const all = [a, b, d]
    await Promise.all(all.map(async m => await m.waitForView(v => v.members.length === 3, { timeoutMs: 15_000 })))
    const logs = all.map(record)
    const COUNT = 3000
    await Promise.all(all.map(async m => {
      for (let i = 0; i < COUNT; i++) await m.broadcast({ i, e: m.epoch }) // the first one too: no probe, no retry
    }))
    await waitUntil(() => logs.every((l, k) => all.filter((_, j) => j !== k).every(s => received(l, s.id).length === COUNT)), 30_000, 'every broadcast delivered')
    for (const [k, l] of logs.entries()) {
      for (const s of all.filter((_, j) => j !== k)) {
        const got = received(l, s.id)
        expect(got.map(g => g.i)).toEqual(Array.from({ length: COUNT }, (_, i) => i))
        for (const g of got) expect(g.epoch).toBe(g.e)
      }
    }
  })

  it('a join while broadcasting: what was sent in the old view is delivered before the new view\'s event, the rest after it', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const logB = record(b)
    let stop = false
    let sent = 0
    const sending = (async () => {
      while (!stop) {
        for (let k = 0; k < 50; k++) await a.broadcast({ i: sent++, e: a.epoch })
        await new Promise(resolve => setImmediate(resolve))
      }
    })()
    const joiner = await member(c, 'j', [hostPort(a)])
    await joiner.waitForView(v => v.members.length === 3, { timeoutMs: 15_000 })
    const newEpoch = (joiner.view?.id.epoch) as number
    await waitUntil(() => received(logB, a.id).some(g => g.e === newEpoch), 15_000, 'a broadcast of the new view')
    stop = true
    await sending
    await waitUntil(() => received(logB, a.id).length === sent, 15_000, 'all of a\'s broadcasts')
    const viewAt = logB.events.findIndex(e => e.kind === 'view' && e.epoch === newEpoch)
    expect(viewAt).toBeGreaterThan(-1)
    logB.events.forEach((e, idx) => {
      if (e.kind !== 'msg') return
      const p = e.m.payload as { e: number }
      expect(e.m.epoch).toBe(p.e)
      if (p.e < newEpoch) expect(idx, 'old-view broadcast before the new view event').toBeLessThan(viewAt)
      else expect(idx, 'new-view broadcast after the new view event').toBeGreaterThan(viewAt)
    })
    expect(received(logB, a.id).map(g => g.i)).toEqual(Array.from({ length: sent }, (_, i) => i))
  })

  it('send resolves once the receiver has the message, in order and once; to oneself too; bad targets and options throw', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const got: unknown[] = []
    b.on('message', m => { if (m.channel === 'direct') got.push(m.payload) })
    await a.send(b.id, { n: 0 })
    expect(got).toEqual([{ n: 0 }]) // resolved: it is there
    await Promise.all(Array.from({ length: 2000 }, async (_, i) => { await a.send(b.id, { n: i + 1 }) }))
    expect(got).toEqual(Array.from({ length: 2001 }, (_, i) => ({ n: i })))
    const self: Message[] = []
    a.on('message', m => self.push(m))
    await a.send(a.id, 'me')
    expect(self.map(m => [m.from, m.payload, m.channel, m.epoch])).toEqual([[a.id, 'me', 'direct', a.epoch]])
    expect(() => a.send('12D3KooWNotAMember', 1)).toThrow(NotInViewError)
    expect(() => a.send(b.id, 1, { timeoutMs: -1 })).toThrow(InvalidOptionError)
    expect(() => a.send(b.id, 1, { timeout: 5 } as never)).toThrow(/did you mean "timeoutMs"/)
  })

  it('sends outstanding when the receiver leaves settle: confirmed, or NotDeliveredError; after stop, NotRunningError', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const big = 'x'.repeat(2000)
    const outcomes = Array.from({ length: 5000 }, async (_, i) => await a.send(b.id, { i, big }).then(() => 'ok', (err: unknown) => err))
    await b.stop()
    const results = await Promise.all(outcomes)
    for (const r of results) if (r !== 'ok') expect(r).toBeInstanceOf(NotDeliveredError)
    const pending = a.broadcast('last') // alone now: nobody to wait for
    await pending
    await a.stop()
    expect(() => a.send(a.id, 1)).toThrow(NotRunningError)
    expect(() => a.broadcast(1)).toThrow(NotRunningError)
  })

  it('messages() buffers up to highWaterMark for a busy consumer, then yields those and throws IteratorOverflowError', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    expect(() => b.messages({ highWaterMark: 0 })).toThrow(InvalidOptionError)
    expect(() => b.views({ highwatermark: 5 } as never)).toThrow(/did you mean "highWaterMark"/)
    const it = b.messages({ highWaterMark: 10 })[Symbol.asyncIterator]()
    const first = it.next() // subscribes
    let heard = 0
    b.on('message', () => { heard++ })
    for (let i = 0; i < 50; i++) await a.broadcast(i)
    await waitUntil(() => heard === 50, 10_000, 'the 50 broadcasts') // every listener still hears all
    const got = [(await first).value?.payload]
    for (let i = 1; i < 10; i++) got.push((await it.next()).value?.payload)
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => i))
    await expect(it.next()).rejects.toBeInstanceOf(IteratorOverflowError)
  })

  it('messaging frames from a stranger are dropped and counted, never delivered', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const got: unknown[] = []
    a.on('message', m => got.push(m.payload))
    const codec = new Codec(c, 1 << 20)
    const t = createLibp2pTransport({ cluster: c, listen: ['/ip4/127.0.0.1/tcp/0'], maxFrameBytes: 1 << 20, onDrop: () => {} })
    await t.start({ onConnected: () => {}, onDisconnected: () => {}, onDialFailed: () => {}, onDirect: () => {}, onGroup: () => {} })
    try {
      const bin = encodePayload('forged')
      const frames = [
        codec.encode({ t: 'rb', e: a.epoch, s: 1, m: [bin] }),
        codec.encode({ t: 'uc', i: 1, e: a.epoch, n: 1, m: [bin] }),
        codec.encode({ t: 'rbf', e: a.epoch + 5, n: 3 })
      ]
      t.dial({ addresses: [...a.addresses] })
      await waitUntil(() => t.isConnected(a.id), 10_000, 'the connection')
      for (const f of frames) t.send(a.id, f, { addresses: a.addresses })
      await waitUntil(() => (a.dropped['rb-not-in-view'] ?? 0) > 0 && (a.dropped['uc-not-in-view'] ?? 0) > 0, 10_000, 'the drops')
      expect(got).toEqual([])
      expect(a.view?.members).toHaveLength(1)
    } finally {
      await t.stop()
    }
  })
})
