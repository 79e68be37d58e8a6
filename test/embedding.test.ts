/**
 * Embedding the library as a user writes it (issue: "an API a Node user can trust"): misspelt
 * options, the README's `await createMember()` then `on(...)` pattern, what happens after
 * `stop()`, payloads that would not arrive as sent, `send` outside the view, Member as a real
 * EventEmitter, and summaries for loggers. Real libp2p members on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { EventEmitter, once, on } from 'node:events'
import { inspect } from 'node:util'
import {
  Member, createMember, InvalidOptionError, InvalidPayloadError, NotInViewError, NotRunningError,
  type CoordinatorChange, type MastershipChange, type ViewChange
} from '../src/index.js'
import { waitUntil } from '../src/testing/member-process.js'

const members: Member[] = []
let n = 0
const cluster = (): string => `embed-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all(members.splice(0).map(async m => await m.stop()))
})

async function member (clusterName: string, name: string, seeds: string[] = []): Promise<Member> {
  const m = await createMember({ cluster: clusterName, name, seeds, listen: '127.0.0.1:0' })
  members.push(m)
  return m
}

function thrown (fn: () => unknown): unknown {
  try { fn() } catch (err) { return err }
  return undefined
}

describe('a misspelt option is refused, not ignored', () => {
  it('`seed` instead of `seeds` throws InvalidOptionError naming it, with the likely key', () => {
    const err = thrown(() => new Member({ cluster: 'x', seed: ['127.0.0.1:7000'] } as never))
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as InvalidOptionError).option).toBe('seed')
    expect((err as InvalidOptionError).message).toContain('did you mean "seeds"?')
  })

  it('refuses unknown keys at every level, with a hint only where one is near', () => {
    const cases: Array<[Record<string, unknown>, string, string | undefined]> = [
      [{ cluster: 'x', splitbrain: 'majority' }, 'splitbrain', 'splitBrain'],
      [{ cluster: 'x', master: 2 }, 'master', 'masters'],
      [{ cluster: 'x', timing: { leaseMS: 100 } }, 'timing.leaseMS', 'timing.leaseMs'],
      [{ cluster: 'x', bootstrap: { expected: 3 } }, 'bootstrap.expected', 'bootstrap.expect'],
      [{ cluster: 'x', zookeeper: 'zk:2181' }, 'zookeeper', undefined]
    ]
    for (const [options, option, hint] of cases) {
      const err = thrown(() => new Member(options as never)) as InvalidOptionError
      expect(err).toBeInstanceOf(InvalidOptionError)
      expect(err.option).toBe(option)
      if (hint === undefined) expect(err.message).not.toContain('did you mean')
      else expect(err.message).toContain(`did you mean "${hint}"?`)
    }
  })

  it('refuses an unknown key of the second argument (MemberInit) too', () => {
    const err = thrown(() => new Member({ cluster: 'x' }, { clok: () => 0 } as never)) as InvalidOptionError
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect(err.option).toBe('init.clok')
    expect(err.message).toContain('did you mean "init.clock"?')
  })
})

describe('the README pattern sees the first events', () => {
  it('`const m = await createMember(...)`, then `m.on(...)`: the founder\'s view, coordinator and elected mastership arrive', async () => {
    const m = await createMember({ cluster: cluster(), name: 'founder', listen: '127.0.0.1:0' })
    members.push(m)
    const views: ViewChange[] = []
    const coordinator: CoordinatorChange[] = []
    const mastership: MastershipChange[] = []
    m.on('view', v => views.push(v))
    m.on('coordinator', c => coordinator.push(c))
    m.on('mastership', c => mastership.push(c))
    await waitUntil(() => mastership.length > 0, 5000, 'the first mastership event')
    expect(views[0]?.view.members.map(x => x.id)).toEqual([m.id])
    expect(coordinator[0]?.isCoordinator).toBe(true)
    expect(mastership[0]).toMatchObject({ isMaster: true, reason: 'elected', epoch: m.epoch })
  })

  it('`events.once(member, "mastership")` right after createMember resolves with the promotion', async () => {
    const m = await createMember({ cluster: cluster(), name: 'founder', listen: '127.0.0.1:0' })
    members.push(m)
    const [change] = await once(m, 'mastership', { signal: AbortSignal.timeout(5000) }) as [MastershipChange]
    expect(change.isMaster).toBe(true)
  })
})

describe('after stop()', () => {
  it('a pending waitForView rejects with NotRunningError', async () => {
    const m = await member(cluster(), 'alone')
    const pending = m.waitForView(v => v.members.length === 5)
    const outcome = pending.then(() => 'resolved', (err: unknown) => err)
    await m.stop()
    expect(await outcome).toBeInstanceOf(NotRunningError)
  })

  it('waitForView, with or without timeoutMs, rejects at once', async () => {
    const m = await member(cluster(), 'alone')
    await m.stop()
    await expect(m.waitForView(() => true, { timeoutMs: 60_000 })).rejects.toBeInstanceOf(NotRunningError)
    await expect(m.waitForView(() => true)).rejects.toBeInstanceOf(NotRunningError)
  })

  it('iterators started after stop end at once', async () => {
    const m = await member(cluster(), 'alone')
    await m.stop()
    const drain = async (it: AsyncIterable<unknown>): Promise<number> => {
      let count = 0
      for await (const _ of it) count++
      return count
    }
    expect(await drain(m.views())).toBe(0)
    expect(await drain(m.messages())).toBe(0)
    expect(await drain(m.mastershipChanges())).toBe(0)
  })

  it('an iterator running when the member stops ends', async () => {
    const m = await member(cluster(), 'alone')
    const seen: number[] = []
    const drained = (async () => { for await (const change of m.views()) seen.push(change.view.members.length) })()
    await m.waitForView(v => v.members.length === 1)
    await m.stop()
    await drained // ends: a hang here fails the test by its timeout
    expect(seen[0]).toBe(1) // the founding view, held until the start's caller had run
  })

  it('methods that would start work throw NotRunningError; start() rejects', async () => {
    const m = await member(cluster(), 'alone')
    await m.stop()
    const calls: Array<[string, () => unknown]> = [
      ['route', () => m.route({ name: 'r', start: () => {}, stop: () => {} })],
      ['schedule', () => m.schedule('job', { everyMs: 1000 }, () => {})],
      ['setEndpoint', () => { m.setEndpoint('http', 'http://127.0.0.1:1/') }],
      ['removeEndpoint', () => { m.removeEndpoint('http') }],
      ['watchMastership', () => m.watchMastership(1, () => {})],
      ['filter', () => m.filter([1, 2, 3])],
      ['send', () => { m.send('someone', 1) }],
      ['broadcast', () => { m.broadcast(1) }]
    ]
    for (const [name, call] of calls) expect(thrown(call), name).toBeInstanceOf(NotRunningError)
    await expect(m.start()).rejects.toBeInstanceOf(NotRunningError)
  })

  it('a member stopped before it started cannot be started', async () => {
    const m = new Member({ cluster: cluster() })
    await m.stop()
    await expect(m.start()).rejects.toBeInstanceOf(NotRunningError)
    await expect(m.waitForView(() => true)).rejects.toBeInstanceOf(NotRunningError)
  })
})

describe('messages', () => {
  it('send() to an id outside the view throws NotInViewError', async () => {
    const m = await member(cluster(), 'alone')
    const err = thrown(() => { m.send('12D3KooWNotAMemberOfThisView', { hello: 1 }) })
    expect(err).toBeInstanceOf(NotInViewError)
    expect((err as NotInViewError).code).toBe('ERR_NOT_IN_VIEW')
    expect((err as NotInViewError).memberId).toBe('12D3KooWNotAMemberOfThisView')
  })

  it('payloads that would not arrive as sent throw InvalidPayloadError naming where; faithful ones arrive', async () => {
    const name = cluster()
    const a = await member(name, 'a')
    const b = await member(name, 'b', [a.addresses[0] as string])
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const circular: Record<string, unknown> = { a: 1 }
    circular.self = circular
    class Quote { price = 1 }
    const bad: Array<[unknown, string]> = [
      [circular, 'payload.self'],
      [{ items: [1, () => 2] }, 'payload.items[1]'],
      [{ s: Symbol('x') }, 'payload.s'],
      [new Map([['a', 1]]), 'payload'],
      [{ set: new Set([1]) }, 'payload.set'],
      [{ q: new Quote() }, 'payload.q'],
      [{ e: new Error('x') }, 'payload.e'],
      [2n ** 70n, 'payload']
    ]
    for (const [payload, path] of bad) {
      const sent = thrown(() => { a.send(b.id, payload) }) as InvalidPayloadError
      expect(sent, path).toBeInstanceOf(InvalidPayloadError)
      expect(sent.path).toBe(path)
      expect(sent.code).toBe('ERR_INVALID_PAYLOAD')
      expect(thrown(() => { a.broadcast(payload) }), path).toBeInstanceOf(InvalidPayloadError)
    }
    const got = once(b, 'message', { signal: AbortSignal.timeout(10_000) })
    const payload = { n: 1.5, s: 'x', b: true, nil: null, big: 12n, at: new Date(5), bytes: new Uint8Array([1, 2]), list: [1, 'two', { three: 3 }], bare: Object.assign(Object.create(null) as object, { k: 'v' }) }
    a.send(b.id, payload)
    const [message] = await got as [{ payload: typeof payload }]
    expect(message.payload.big).toBe(12n)
    expect(message.payload.at).toEqual(new Date(5))
    expect([...message.payload.bytes]).toEqual([1, 2])
    expect(message.payload.list).toEqual([1, 'two', { three: 3 }])
    expect(message.payload.bare).toEqual({ k: 'v' })
  })
})

describe('Member is an EventEmitter', () => {
  it('has the whole EventEmitter API and works with events.once/on and their signal', async () => {
    const m = await member(cluster(), 'alone')
    expect(m).toBeInstanceOf(EventEmitter)
    const listener = (): void => {}
    m.addListener('suspect', listener)
    m.prependListener('suspect', listener)
    expect(m.listenerCount('suspect')).toBe(2)
    m.removeAllListeners('suspect')
    expect(m.listenerCount('suspect')).toBe(0)
    const aborted = AbortSignal.abort(new Error('gone'))
    await expect(once(m, 'merge', { signal: aborted })).rejects.toMatchObject({ name: 'AbortError' })
    const controller = new AbortController()
    const iterator = on(m, 'excluded', { signal: controller.signal })
    controller.abort()
    await expect(iterator.next()).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('keeps internal hooks and mutable counters off the public surface', async () => {
    const m = await member(cluster(), 'alone')
    for (const key of ['registerService', 'sendService', 'countDrop', 'onBeforeLeave']) expect(key in m, key).toBe(false)
    const dropped = m.dropped as Record<string, number>
    expect(() => { dropped.forged = 1 }).toThrow(TypeError)
    expect(m.dropped.forged).toBeUndefined()
  })

  it('a throwing listener does not keep the event from later listeners', async () => {
    const m = await member(cluster(), 'alone')
    const errors: unknown[] = []
    const later: string[] = []
    m.on('listener-error', e => errors.push(e.error))
    m.on('refuted', () => { throw new Error('boom') })
    m.on('refuted', e => later.push(e.id))
    await new Promise(resolve => setImmediate(resolve)) // past the start's held events
    m.emit('refuted', { id: 'x' })
    expect(later).toEqual(['x'])
    expect(errors).toHaveLength(1)
  })
})

describe('routes', () => {
  it('a second route of the same name is refused like a second job of the same name; remove() frees the name', async () => {
    const m = await member(cluster(), 'alone')
    const starts: string[] = []
    const first = m.route({ name: 'orders', start: () => { starts.push('first') }, stop: () => {} })
    const dup = thrown(() => m.route({ name: 'orders', start: () => { starts.push('second') } })) as InvalidOptionError
    expect(dup).toBeInstanceOf(InvalidOptionError)
    expect(dup.option).toBe('route.name')
    expect(dup.received).toBe('orders')
    m.schedule('nightly', { everyMs: 60_000 }, () => {})
    expect((thrown(() => m.schedule('nightly', { everyMs: 60_000 }, () => {})) as InvalidOptionError).option).toBe('name')
    await waitUntil(() => first.running, 5000, 'the first route to start')
    const removing = first.remove()
    // the name is held until the route has stopped: the new one cannot start beside the old
    expect((thrown(() => m.route({ name: 'orders', start: () => {} })) as InvalidOptionError).option).toBe('route.name')
    await removing
    await first.remove() // idempotent, and it does not free the name of the route that follows
    const second = m.route({ name: 'orders', start: () => { starts.push('second') } })
    await first.remove()
    expect((thrown(() => m.route({ name: 'orders', start: () => {} })) as InvalidOptionError).option).toBe('route.name')
    await waitUntil(() => second.running, 5000, 'the second route to start')
    expect(starts).toEqual(['first', 'second'])
    // names are per member: another member may use it
    const other = await member(cluster(), 'other')
    expect(other.route({ name: 'orders', start: () => {} }).name).toBe('orders')
  })

  it('unknown keys of a route definition are refused with a hint', async () => {
    const m = await member(cluster(), 'alone')
    const cases: Array<[Record<string, unknown>, string, string | undefined]> = [
      [{ name: 'r', start: () => {}, stopTimeout: 100 }, 'route.stopTimeout', 'route.stopTimeoutMs'],
      [{ name: 'r', start: () => {}, master: 2 }, 'route.master', 'route.masters'],
      [{ name: 'r', start: () => {}, onStop: () => {} }, 'route.onStop', 'route.stop'],
      [{ name: 'r', start: () => {}, zookeeperPath: '/r' }, 'route.zookeeperPath', undefined],
      [{ name: 'r', start: () => {}, retry: { initialMs: 10, maxMS: 100 } }, 'route.retry.maxMS', 'route.retry.maxMs']
    ]
    for (const [def, option, hint] of cases) {
      const err = thrown(() => m.route(def as never)) as InvalidOptionError
      expect(err, option).toBeInstanceOf(InvalidOptionError)
      expect(err.option).toBe(option)
      if (hint === undefined) expect(err.message).not.toContain('did you mean')
      else expect(err.message).toContain(`did you mean "${hint}"?`)
    }
    // a refused definition does not hold its name
    expect(m.route({ name: 'r', start: () => {} }).name).toBe('r')
  })
})

describe('summaries for loggers', () => {
  it('JSON.stringify and util.inspect of a member, a route and a job give small summaries', async () => {
    const m = await member(cluster(), 'alone')
    const summary = JSON.parse(JSON.stringify(m)) as Record<string, unknown>
    expect(summary).toMatchObject({ id: m.id, name: 'alone', state: 'running', members: 1, coordinator: m.id, master: true, epoch: m.epoch })
    expect(inspect(m)).toContain(m.id)
    expect(inspect(m).length).toBeLessThan(1000)
    const job = m.schedule('job', { everyMs: 60_000 }, () => {})
    expect(JSON.parse(JSON.stringify(job))).toMatchObject({ name: 'job', cancelled: false })
    expect(inspect(job)).toMatch(/^ScheduledJob \{/)
    expect(inspect(job).length).toBeLessThan(300)
    await job.cancel()
    const route = m.route({ name: 'worker', start: () => {} })
    await waitUntil(() => route.running, 5000, 'the route to start')
    expect(JSON.parse(JSON.stringify(route))).toEqual({ name: 'worker', masters: 1, running: true, epoch: m.epoch, removed: false })
    expect(JSON.parse(JSON.stringify({ route }))).toEqual({ route: route.toJSON() })
    expect(inspect(route)).toMatch(/^Route \{/)
    expect(inspect(route).length).toBeLessThan(300)
    await route.remove()
    expect(route.toJSON()).toEqual({ name: 'worker', masters: 1, running: false, epoch: undefined, removed: true })
    expect(JSON.stringify(new Member({ cluster: 'x' }))).toContain('"state":"new"')
  })
})
