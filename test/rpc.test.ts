/**
 * Request/response between real libp2p members in one process on 127.0.0.1: results, handler
 * context, remote errors, payload rules, lifecycle.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMember, InvalidOptionError, InvalidPayloadError, MessageTooLargeError, NotInViewError, NotRunningError, RemoteError, type Member } from '../src/index.js'

const members: Member[] = []
let n = 0
afterEach(async () => { await Promise.all(members.splice(0).map(async m => await m.stop())) })

const hostPort = (m: Member): string => {
  const match = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')
  return `${match?.[1]}:${match?.[2]}`
}

async function pair (): Promise<[Member, Member]> {
  const cluster = `rpc-${process.pid}-${++n}`
  const a = await createMember({ cluster, name: 'a', listen: '127.0.0.1:0' })
  members.push(a)
  const b = await createMember({ cluster, name: 'b', listen: '127.0.0.1:0', seeds: [hostPort(a)] })
  members.push(b)
  await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
  await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
  return [a, b]
}

describe('request/response', () => {
  it('answers a request to a member id and to the master, with from and the master\'s epoch', async () => {
    const [a, b] = await pair()
    a.handle('who', (p, ctx) => ({ p, from: ctx.from, epoch: ctx.epoch, me: 'a' }))
    b.handle('who', (p, ctx) => ({ p, from: ctx.from, epoch: ctx.epoch, me: 'b' }))
    expect(await b.request(a.id, 'who', 1)).toEqual({ p: 1, from: b.id, epoch: a.epoch, me: 'a' })
    expect(await b.request('master', 'who', 2)).toEqual({ p: 2, from: b.id, epoch: a.epoch, me: 'a' })
    expect(await a.request('master', 'who', 3)).toEqual({ p: 3, from: a.id, epoch: a.epoch, me: 'a' })
    const all = await a.requestAll('who', 4, { timeoutMs: 5000 })
    expect(all.map(e => e.ok && (e.value as { me: string }).me)).toEqual(['a', 'b'])
  })

  it('a throwing handler and an unknown method give a RemoteError naming them', async () => {
    const [a, b] = await pair()
    a.handle('boom', async () => { throw new TypeError('bad input') })
    const err = await b.request(a.id, 'boom', null).catch(e => e) as RemoteError
    expect(err).toBeInstanceOf(RemoteError)
    expect(err).toMatchObject({ remoteName: 'TypeError', remoteMessage: 'bad input', memberId: a.id, method: 'boom' })
    const unknown = await b.request(a.id, 'nope', null).catch(e => e) as RemoteError
    expect(unknown).toMatchObject({ name: 'RemoteError', remoteName: 'UnknownMethodError' })
    expect(a.dropped['rpc-unknown-method']).toBe(1)
  })

  it('payload rules, not-in-view, options, handle twice', async () => {
    const [a, b] = await pair()
    a.handle('x', () => 1)
    expect(() => a.handle('x', () => 2)).toThrow(InvalidOptionError)
    await expect(b.request(a.id, 'x', () => 1)).rejects.toBeInstanceOf(InvalidPayloadError)
    await expect(b.request(a.id, 'x', 'y'.repeat(2 * 1024 * 1024))).rejects.toBeInstanceOf(MessageTooLargeError)
    await expect(b.request('12D3KooWnotamember', 'x', 1)).rejects.toBeInstanceOf(NotInViewError)
    await expect(b.request(a.id, 'x', 1, { timeoutMS: 5 } as never)).rejects.toThrow(/did you mean "timeoutMs"/)
    await expect(b.requestAll('x', 1, { mode: 'some' as never })).rejects.toMatchObject({ option: 'mode' })
  })

  it('pending requests reject with NotRunningError at stop, and later calls too', async () => {
    const [a, b] = await pair()
    a.handle('hang', async () => await new Promise(() => {}))
    const pending = b.request(a.id, 'hang', null, { timeoutMs: 20_000 })
    const caught = pending.catch(e => e)
    await b.stop()
    expect(await caught).toBeInstanceOf(NotRunningError)
    await expect(b.request(a.id, 'hang', null)).rejects.toBeInstanceOf(NotRunningError)
    expect(() => b.handle('y', () => 1)).toThrow(NotRunningError)
  })

  it('requestAll modes: first and majority do not wait for a slow member, whose slot is cancelled; all waits; a timeout marks it', async () => {
    const [a, b] = await pair()
    const c = await createMember({ cluster: a.options.cluster, name: 'c', listen: '127.0.0.1:0', seeds: [hostPort(a)] })
    members.push(c)
    for (const m of [a, b, c]) await m.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })
    let release: () => void = () => {}
    const slow = new Promise<void>(resolve => { release = resolve })
    a.handle('q', () => 'a')
    b.handle('q', () => 'b')
    c.handle('q', async () => { await slow; return 'c' })
    const ok = (e: { ok: boolean }): boolean => e.ok
    const first = await a.requestAll('q', null, { mode: 'first' })
    expect(first.filter(ok).length).toBeGreaterThanOrEqual(1)
    expect(first.find(e => e.id === c.id)).toMatchObject({ ok: false, reason: 'cancelled' })
    const majority = await a.requestAll('q', null, { mode: 'majority' })
    expect(majority.filter(ok).map(e => e.ok && e.value).sort()).toEqual(['a', 'b'])
    expect(majority.find(e => e.id === c.id)).toMatchObject({ ok: false, reason: 'cancelled' })
    const timedOut = await a.requestAll('q', null, { mode: 'all', timeoutMs: 300 })
    expect(timedOut.find(e => e.id === c.id)).toMatchObject({ ok: false, reason: 'timeout' })
    const all = a.requestAll('q', null, { mode: 'all', timeoutMs: 10_000 })
    setTimeout(release, 200)
    expect((await all).map(e => e.ok && e.value)).toEqual(a.view?.members.map(m => m.name))
  })
})
