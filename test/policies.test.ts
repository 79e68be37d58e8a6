/**
 * Route policy, stream filter and mastership stream, with real libp2p members in one process
 * on 127.0.0.1. Process-level faults (SIGKILL, SIGSTOP) are in mastership.process.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Readable } from 'node:stream'
import { createMember, InvalidOptionError, type Member } from '../src/index.js'
import { addRoute, type RouteEvent } from '../src/policies/route-policy.js'
import { masterOnly, masterOnlySync, masterOnlyStamped, masterOnlyStream, mastershipChanges } from '../src/policies/filter.js'
import { waitUntil } from '../src/testing/member-process.js'

const members: Member[] = []
let n = 0
const cluster = (): string => `pol-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all(members.splice(0).map(async m => await m.stop()))
})

async function member (c: string, name: string, seeds: string[] = [], masters?: number): Promise<Member> {
  const m = await createMember({ cluster: c, name, seeds, listen: '127.0.0.1:0', ...(masters !== undefined ? { masters } : {}) })
  members.push(m)
  return m
}
const hostPort = (m: Member): string => /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')?.slice(1).join(':') ?? ''

async function trio (masters?: number): Promise<[Member, Member, Member]> {
  const c = cluster()
  const a = await member(c, 'a', [], masters)
  const b = await member(c, 'b', [hostPort(a)], masters)
  await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
  const cc = await member(c, 'c', [hostPort(a)], masters)
  await Promise.all([a, b, cc].map(async m => await m.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })))
  // every member's lease holds (each has heard every other)
  await waitUntil(() => a.isCoordinator && b.rank === 1 && cc.rank === 2, 5000, 'leases')
  return [a, b, cc]
}

describe('route policy', () => {
  it('runs on the master only, with the epoch; on a graceful leave the old master stops before the successor starts', async () => {
    const [a, b, c] = await trio()
    const log: Array<{ who: string, e: RouteEvent }> = []
    const tokens: Array<{ who: string, epoch: number, token: string }> = []
    const routes = [a, b, c].map(m => {
      const r = addRoute(m, { name: 'r', start: ctx => { tokens.push({ who: m.id, epoch: ctx.epoch, token: ctx.token }) }, stop: () => {} })
      r.on('event', e => log.push({ who: m.name, e }))
      return r
    })
    await waitUntil(() => routes[0]?.running === true, 5000, 'a to start')
    // The grant's fencing token names the epoch and the holder (core/fencing.ts).
    expect(tokens).toEqual([{ who: a.id, epoch: a.epoch, token: `${String(a.epoch).padStart(16, '0')}.${a.id}` }])
    expect(routes.map(r => r.running)).toEqual([true, false, false])
    expect(routes[0]?.epoch).toBe(a.epoch)
    const before = a.epoch
    await a.stop()
    await waitUntil(() => routes[1]?.running === true, 5000, 'b to start')
    const aStopped = log.find(x => x.who === 'a' && x.e.type === 'stopped')?.e as Extract<RouteEvent, { type: 'stopped' }>
    const bStarted = log.find(x => x.who === 'b' && x.e.type === 'started')?.e as Extract<RouteEvent, { type: 'started' }>
    expect(aStopped.reason).toBe('leaving')
    expect(aStopped.at).toBeLessThan(bStarted.at)
    expect(bStarted.epoch).toBeGreaterThan(before)
    expect(routes[2]?.running).toBe(false)
  })

  it('with masters: 2, exactly the two oldest run it', async () => {
    const ms = await trio(2)
    const routes = ms.map(m => addRoute(m, { name: 'two', start: () => {} }))
    await waitUntil(() => routes.filter(r => r.running).length === 2, 5000, 'two routes')
    expect(routes.map(r => r.running)).toEqual([true, true, false])
    expect(ms.map(m => m.isMaster())).toEqual([true, true, false])
    // a per-route N overrides the member's
    const one = ms.map(m => addRoute(m, { name: 'one', masters: 1, start: () => {} }))
    await waitUntil(() => one[0]?.running === true, 5000, 'route with masters 1')
    expect(one.map(r => r.running)).toEqual([true, false, false])
  })

  it('prepare runs on every member (hot standby); start gets an AbortSignal that fires on demotion', async () => {
    const [a, b, c] = await trio()
    const prepared: string[] = []
    let signal: AbortSignal | undefined
    for (const m of [a, b, c]) {
      addRoute(m, { name: 'warm', prepare: () => { prepared.push(m.name) }, start: ctx => { if (m === a) signal = ctx.signal } })
    }
    await waitUntil(() => prepared.length === 3 && signal !== undefined, 5000, 'prepare and start')
    expect(prepared.sort()).toEqual(['a', 'b', 'c'])
    expect(signal?.aborted).toBe(false)
    const stopping = a.stop()
    expect(signal?.aborted).toBe(true) // aborted synchronously when stop() begins, before any await
    await stopping
  })

  it('a start that throws is reported and retried with back-off until it succeeds', async () => {
    const a = await member(cluster(), 'solo')
    let attempts = 0
    const events: RouteEvent[] = []
    const r = addRoute(a, {
      name: 'flaky',
      retry: { initialMs: 20, maxMs: 100 },
      start: () => { if (++attempts < 4) throw new Error(`attempt ${attempts}`) }
    })
    r.on('event', e => events.push(e))
    await waitUntil(() => r.running, 5000, 'the fourth attempt')
    const errors = events.filter((e): e is Extract<RouteEvent, { type: 'error' }> => e.type === 'error')
    expect(errors.map(e => e.retryInMs)).toEqual([20, 40, 80])
    expect(errors.every(e => e.phase === 'start')).toBe(true)
    expect(a.running).toBe(true)
  })

  it('a stop that hangs is bounded and reported; a stop that throws is reported; the member still leaves', async () => {
    const a = await member(cluster(), 'solo')
    const hang = addRoute(a, { name: 'hang', stopTimeoutMs: 100, start: () => {}, stop: async () => await new Promise(() => {}) })
    const boom = addRoute(a, { name: 'boom', start: () => {}, stop: () => { throw new Error('boom') } })
    const events: RouteEvent[] = []
    hang.on('event', e => events.push(e))
    boom.on('event', e => events.push(e))
    await waitUntil(() => hang.running && boom.running, 5000, 'both running')
    const t0 = Date.now()
    await a.stop()
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(events.some(e => e.type === 'stop-timeout' && e.route === 'hang')).toBe(true)
    expect(events.some(e => e.type === 'error' && e.route === 'boom' && e.phase === 'stop')).toBe(true)
    expect(hang.running || boom.running).toBe(false)
  })

  it('rejects bad definitions with named errors', () => {
    const fake = { options: { masters: 1 } } as unknown as Member
    for (const [def, option] of [
      [{ name: '', start: () => {} }, 'route.name'],
      [{ name: 'x' }, 'route.start'],
      [{ name: 'x', start: () => {}, masters: 0 }, 'route.masters'],
      [{ name: 'x', start: () => {}, masters: 1.5 }, 'route.masters'],
      [{ name: 'x', start: () => {}, masters: -2 }, 'route.masters'],
      [{ name: 'x', start: () => {}, stopTimeoutMs: 0 }, 'route.stopTimeoutMs']
    ] as const) {
      let caught: unknown
      try { addRoute(fake, def as never) } catch (err) { caught = err }
      expect(caught, option).toBeInstanceOf(InvalidOptionError)
      expect((caught as InvalidOptionError).option).toBe(option)
    }
  })
})

describe('stream filter', () => {
  it('passes items on the master only, stamped with the epoch, in every variant', async () => {
    const [a, b] = await trio()
    const items = [1, 2, 3, 4]
    const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => { const out: T[] = []; for await (const x of it) out.push(x); return out }
    expect(await collect(masterOnly(a, items))).toEqual(items)
    expect(await collect(masterOnly(b, items))).toEqual([])
    expect(await collect(masterOnly(b, items, { masters: 2 }))).toEqual(items)
    expect([...masterOnlySync(a, items)]).toEqual(items)
    expect([...masterOnlySync(b, items)]).toEqual([])
    expect(await collect(masterOnlyStamped(a, items))).toEqual(items.map(item => ({ item, epoch: a.epoch, token: `${String(a.epoch).padStart(16, '0')}.${a.id}` })))
    const streamed = await collect(Readable.from(items).pipe(masterOnlyStream(a, { stamped: true })))
    expect(streamed).toEqual(items.map(item => ({ item, epoch: a.epoch, token: `${String(a.epoch).padStart(16, '0')}.${a.id}` })))
    expect(await collect(Readable.from(items).pipe(masterOnlyStream(b)))).toEqual([])
  })

  it('stops passing the moment the member leaves, mid-stream', async () => {
    const a = await member(cluster(), 'solo')
    const passed: number[] = []
    async function * source (): AsyncGenerator<number> {
      for (let i = 0; i < 100; i++) {
        if (i === 50) await a.stop()
        yield i
      }
    }
    for await (const x of masterOnly(a, source())) passed.push(x)
    expect(passed).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('closes its source when the consumer stops early', async () => {
    const a = await member(cluster(), 'solo')
    let closed = false
    async function * source (): AsyncGenerator<number> {
      try { for (let i = 0; ; i++) yield i } finally { closed = true }
    }
    for await (const x of masterOnly(a, source())) if (x === 3) break
    expect(closed).toBe(true)
    let syncClosed = false
    function * syncSource (): Generator<number> {
      try { for (let i = 0; ; i++) yield i } finally { syncClosed = true }
    }
    for await (const x of masterOnly(a, syncSource())) if (x === 3) break
    expect(syncClosed).toBe(true)
  })

  it('the mastership stream yields promotions and demotions', async () => {
    const [a, b] = await trio()
    const seen: Array<{ isMaster: boolean, reason: string }> = []
    const ac = new AbortController()
    const watching = (async () => {
      for await (const c of mastershipChanges(b, { signal: ac.signal })) {
        seen.push({ isMaster: c.isMaster, reason: c.reason })
        if (seen.length === 2) ac.abort()
      }
    })()
    await a.stop()
    await waitUntil(() => seen.length === 1, 5000, 'b promoted')
    await b.stop()
    await watching
    expect(seen).toEqual([{ isMaster: true, reason: 'handover' }, { isMaster: false, reason: 'leaving' }])
  })

  it('rejects a bad masters count', () => {
    const fake = { options: { masters: 1 } } as unknown as Member
    expect(() => masterOnlyStream(fake, { masters: 0 })).toThrow(InvalidOptionError)
    expect(() => [...masterOnlySync(fake, [1], { masters: -1 })]).toThrow(/masters/)
  })
})
