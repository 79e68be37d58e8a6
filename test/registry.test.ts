/**
 * The endpoint registry and observers, with real libp2p members and observers in one process
 * on 127.0.0.1: endpoints travel with the view, change at run time, follow the master across a
 * graceful stop; observers see it all and are never in a view, never master.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMember, Member, InvalidOptionError, expandEndpoints, expandTemplate } from '../src/index.js'
import { createObserver, type Observer } from '../src/registry/observer.js'
import { REGISTRY_SERVICE } from '../src/registry/registry.js'
import { Codec } from '../src/transport/codec.js'
import { createLibp2pTransport } from '../src/transport/libp2p.js'
import { waitUntil } from '../src/testing/member-process.js'

const running: Array<{ stop: () => Promise<void> }> = []
let n = 0
const cluster = (): string => `reg-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all(running.splice(0).map(async m => await m.stop()))
})

async function member (clusterName: string, name: string, seeds: string[], endpoints: Record<string, string> = {}): Promise<Member> {
  const m = await createMember({ cluster: clusterName, name, seeds, listen: '127.0.0.1:0', endpoints })
  running.push(m)
  return m
}

async function observer (clusterName: string, seeds: string[]): Promise<Observer> {
  const o = await createObserver({ cluster: clusterName, seeds, renewIntervalMs: 200 })
  running.push(o)
  return o
}

const hostPort = (m: Member): string => {
  const match = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')
  return `${match?.[1]}:${match?.[2]}`
}

async function trio (): Promise<[string, Member, Member, Member]> {
  const c = cluster()
  const a = await member(c, 'a', [], { http: 'http://127.0.0.1:9090/' })
  const b = await member(c, 'b', [hostPort(a)], { http: 'http://127.0.0.1:9191/' })
  // one at a time, so the age order (and the view order) is a, b, c
  await waitUntil(() => b.view?.members.length === 2, 15_000, 'b to join')
  const d = await member(c, 'c', [hostPort(a)], { http: 'http://127.0.0.1:9292/', admin: 'http://127.0.0.1:9293/' })
  await waitUntil(() => [a, b, d].every(m => m.endpoints('http').length === 3), 15_000, 'everyone to know three http endpoints')
  return [c, a, b, d]
}

describe('members', () => {
  it('publish endpoints with the view, in view order; the master endpoint is the coordinator\'s', async () => {
    const [, a, b, c] = await trio()
    for (const m of [a, b, c]) {
      expect(m.endpoints('http')).toEqual(['http://127.0.0.1:9090/', 'http://127.0.0.1:9191/', 'http://127.0.0.1:9292/'])
      expect(m.endpoints('admin')).toEqual(['http://127.0.0.1:9293/'])
      expect(m.endpoints('nobody-offers-this')).toEqual([])
      expect(m.masterEndpoint('http')).toBe('http://127.0.0.1:9090/')
      expect(m.masterEndpoint('admin')).toBeUndefined() // the coordinator does not offer it
    }
    const snap = b.registry()
    expect(snap.members.map(e => [e.name, e.rank])).toEqual([['a', 0], ['b', 1], ['c', 2]])
    await waitUntil(() => b.registry().members[0]?.masterEpoch !== undefined, 5000, 'the master to report its epoch')
    // a has been master since it founded the group: its grant's epoch is its founding view's,
    // which is also its age (joinEpoch); later views that only added members granted nothing.
    expect(b.registry().members[0]?.masterEpoch).toBe(a.view?.members[0]?.joinEpoch)
    expect(b.registry().members[0]?.masterEpoch).toBeLessThan(a.epoch)
    expect(b.registry().members.slice(1).every(e => e.masterEpoch === undefined)).toBe(true)
    expect(snap.members.every(e => typeof e.startedAt === 'number' && e.startedAt <= Date.now())).toBe(true)
  })

  it('change endpoints at run time, and everyone sees the change', async () => {
    const [, a, b, c] = await trio()
    a.setEndpoint('http', 'http://127.0.0.1:9999/x')
    await waitUntil(() => [b, c].every(m => m.masterEndpoint('http') === 'http://127.0.0.1:9999/x'), 5000, 'the new URL')
    c.removeEndpoint('admin')
    await waitUntil(() => [a, b].every(m => m.endpoints('admin').length === 0), 5000, 'the removal')
    expect(a.ownEndpoints).toEqual({ http: 'http://127.0.0.1:9999/x' })
  })

  it('after a graceful stop of the coordinator, the master endpoint is the successor\'s', async () => {
    const [, a, b, c] = await trio()
    await a.stop()
    await waitUntil(() => [b, c].every(m => m.view?.members.length === 2), 10_000, 'a view of two')
    expect(b.masterEndpoint('http')).toBe('http://127.0.0.1:9191/')
    expect(c.endpoints('http')).toEqual(['http://127.0.0.1:9191/', 'http://127.0.0.1:9292/'])
  })
})

describe('observers', () => {
  it('see the view and endpoints; follow the master across a graceful stop; are never in a view', async () => {
    const [c, a, b, d] = await trio()
    const o = await observer(c, [hostPort(b)])
    await o.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })
    await waitUntil(() => o.endpoints('http').length === 3, 5000, 'the observer to know the endpoints')
    expect(o.masterEndpoint('http')).toBe('http://127.0.0.1:9090/')
    expect(o.registry().members.map(e => e.name)).toEqual(['a', 'b', 'c'])
    for (const m of [a, b, d]) expect(m.view?.members.some(x => x.id === o.id)).toBe(false)
    const changes: string[] = []
    o.onRegistryChange(() => { changes.push(o.masterEndpoint('http') ?? 'none') })
    await a.stop()
    await waitUntil(() => o.masterEndpoint('http') === 'http://127.0.0.1:9191/', 10_000, 'the observer to follow the master')
    expect(o.view?.members.map(m => m.name)).toEqual(['b', 'c'])
    expect(changes).toContain('http://127.0.0.1:9191/')
  })

  it('an observer started before any member is never master: the members found their own group', async () => {
    const c = cluster()
    const first = await member(c, 'first', [])
    const o = await observer(c, [hostPort(first)])
    await o.waitForView(() => true, { timeoutMs: 10_000 })
    const second = await member(c, 'second', [hostPort(first)])
    await o.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    await first.stop()
    await o.waitForView(v => v.members.length === 1, { timeoutMs: 10_000 })
    expect(o.view?.members.map(m => m.name)).toEqual(['second'])
    expect(second.isCoordinator).toBe(true)
    expect(second.view?.members.map(m => m.id)).not.toContain(o.id)
  })

  it('drop malformed registry messages and count them, keeping the view', async () => {
    const [c, , b] = await trio()
    const o = await observer(c, [hostPort(b)])
    const view = await o.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })
    // A foreign process sends garbage on the registry channel, to a member and to the observer.
    const codec = new Codec(c, 1 << 20)
    const t = createLibp2pTransport({ cluster: c, listen: ['/ip4/127.0.0.1/tcp/0'], maxFrameBytes: 1 << 20, onDrop: () => {} })
    await t.start({ onConnected: () => {}, onDisconnected: () => {}, onDialFailed: () => {}, onDirect: () => {}, onGroup: () => {} })
    running.push(t)
    const bad = [{ k: 'snap', epoch: -1, members: [], recs: {} }, { k: 'rec', r: { i: 1, v: 1, e: { http: 'not a url' }, s: 1, m: null } }, { k: 'what' }, 'text', null]
    for (const d of bad) {
      t.send(b.id, codec.encode({ t: 'svc', s: REGISTRY_SERVICE, d }), { addresses: [...b.addresses] })
      t.send(o.id, codec.encode({ t: 'svc', s: REGISTRY_SERVICE, d }), { addresses: [...(o as unknown as { transport: { addresses: string[] } }).transport.addresses] })
    }
    await waitUntil(() => (b.dropped['registry-invalid'] ?? 0) >= 4 && (o.dropped['registry-invalid'] ?? 0) >= 5, 10_000, 'the garbage to be counted')
    expect(o.view).toBe(view)
    expect(b.endpoints('http')).toHaveLength(3)
  })
})

describe('bad input', () => {
  it('rejects an endpoint that is not a URL, at the option and at run time', async () => {
    expect(() => new Member({ cluster: 'x', endpoints: { http: 'localhost' } })).toThrow(InvalidOptionError)
    expect(() => new Member({ cluster: 'x', endpoints: { 'bad name!': 'http://a/' } })).toThrow(/endpoints\.bad name!/)
    const m = await member(cluster(), 'solo', [])
    let caught: unknown
    try { m.setEndpoint('http', '::nope') } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(InvalidOptionError)
    expect((caught as InvalidOptionError).option).toBe('endpoints.http')
    expect(m.ownEndpoints).toEqual({})
  })

  it('rejects observers without seeds or with a bad cluster name', async () => {
    await expect(createObserver({ cluster: 'x', seeds: [] })).rejects.toThrow(/seeds/)
    await expect(createObserver({ cluster: 'no spaces', seeds: ['127.0.0.1:1'] })).rejects.toThrow(/cluster/)
  })

  it('expands {{placeholders}} from flags, then the environment, then defaults; a missing one is a named error', () => {
    const env = { PORT: '9191', HOST: '10.0.0.2' }
    expect(expandTemplate('e', 'http://{{HOST}}:{{PORT}}/', {}, env)).toBe('http://10.0.0.2:9191/')
    expect(expandTemplate('e', 'http://{{HOST}}:{{PORT}}/', { PORT: '9090' }, env)).toBe('http://10.0.0.2:9090/')
    expect(expandTemplate('e', 'http://{{ HOST:-127.0.0.1 }}:{{PORT}}/', {}, { PORT: '1' })).toBe('http://127.0.0.1:1/')
    expect(expandEndpoints('endpoints', { http: 'http://h:{{PORT}}' }, {}, env)).toEqual({ http: 'http://h:9191/' })
    expect(() => expandTemplate('endpoints.http', 'http://h:{{NOPE}}', {}, {})).toThrow(/endpoints\.http.*NOPE/)
    expect(() => expandEndpoints('endpoints', { http: 'http://h:{{PORT}}' }, { PORT: 'abc' }, {})).toThrow(InvalidOptionError)
  })
})
