/**
 * Seeds from DNS on 127.0.0.1: parsing, resolution against a DNS server this test runs and
 * changes (discovery/seed-set.ts), and members that find each other only through it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseSeed } from '../src/discovery/seed-spec.js'
import { SeedSet, pick, withoutOwn, type SeedResolutionFailure } from '../src/discovery/seed-set.js'
import { advertisedAddresses } from '../src/transport/advertise.js'
import { TestDnsServer } from '../src/testing/dns-server.js'
import { InvalidOptionError, Member, type MemberOptions } from '../src/index.js'
import { freePort, waitUntil } from '../src/testing/member-process.js'

let dns: TestDnsServer
beforeAll(async () => { dns = await TestDnsServer.start() })
afterAll(async () => { await dns.stop() })

const members: Member[] = []
afterEach(async () => { await Promise.all(members.splice(0).map(async m => await m.stop())) })

describe('seed strings', () => {
  it('names addresses, host names and SRV names', () => {
    expect(parseSeed('10.0.0.5:7000', 's')).toEqual({ kind: 'address', text: '10.0.0.5:7000', address: '/ip4/10.0.0.5/tcp/7000' })
    expect(parseSeed('[fd00::5]:7000', 's')).toMatchObject({ kind: 'address', address: '/ip6/fd00::5/tcp/7000' })
    expect(parseSeed('localhost:7000', 's')).toMatchObject({ kind: 'address', address: '/ip4/127.0.0.1/tcp/7000' })
    expect(parseSeed('/ip4/10.0.0.5/tcp/7000', 's')).toMatchObject({ kind: 'address' })
    expect(parseSeed('orders.default.svc.cluster.local:7000', 's')).toMatchObject({ kind: 'host', host: 'orders.default.svc.cluster.local', port: 7000, family: 0 })
    expect(parseSeed('/dns4/orders.test/tcp/7000', 's')).toMatchObject({ kind: 'host', family: 4 })
    expect(parseSeed('/dns6/orders.test/tcp/7000', 's')).toMatchObject({ kind: 'host', family: 6 })
    expect(parseSeed('_conclave._tcp.orders.default.svc.cluster.local', 's')).toMatchObject({ kind: 'srv', name: '_conclave._tcp.orders.default.svc.cluster.local' })
  })

  it('refuses what is none of them, naming the option', () => {
    for (const bad of ['', 'orders.test', 'orders.test:0', 'orders.test:70000', 'bad name:7000', '_conclave.orders.test', '/ip4/orders.test/tcp/7000', '/ip6/10.0.0.1/tcp/7000', '[orders]:7000', 7000]) {
      expect(() => parseSeed(bad, 'seeds[3]'), String(bad)).toThrow(InvalidOptionError)
      try { parseSeed(bad, 'seeds[3]') } catch (err) { expect((err as InvalidOptionError).message).toContain('seeds[3]') }
    }
  })
})

describe('advertised addresses', () => {
  const id = '/p2p/12D3KooWA'
  it('drops wildcards, and loopback while another address exists', () => {
    expect(advertisedAddresses([`/ip4/127.0.0.1/tcp/7000${id}`, `/ip4/10.1.2.3/tcp/7000${id}`], [])).toEqual([`/ip4/10.1.2.3/tcp/7000${id}`])
    expect(advertisedAddresses([`/ip4/127.0.0.1/tcp/7000${id}`], [])).toEqual([`/ip4/127.0.0.1/tcp/7000${id}`])
    expect(advertisedAddresses([`/ip4/0.0.0.0/tcp/7000${id}`, `/ip4/127.0.0.1/tcp/7000${id}`], [])).toEqual([`/ip4/127.0.0.1/tcp/7000${id}`])
  })
  it('with advertise, exactly those, a missing port taken from the listen addresses', () => {
    const listen = [`/ip4/127.0.0.1/tcp/7000${id}`, `/ip4/172.17.0.2/tcp/7000${id}`]
    expect(advertisedAddresses(listen, [{ ip: '10.1.2.3' }])).toEqual([`/ip4/10.1.2.3/tcp/7000${id}`])
    expect(advertisedAddresses(listen, [{ ip: '10.1.2.3', port: 31000 }, { ip: 'fd00::3' }])).toEqual([`/ip4/10.1.2.3/tcp/31000${id}`, `/ip6/fd00::3/tcp/7000${id}`])
  })
  it('a bad advertise option is a named error', () => {
    for (const bad of ['0.0.0.0', '::', 'pod-1.orders:7000', '10.1.2.3:0', '10.1.2.3:99999', 'x', 12, ['10.1.2.3', '']]) {
      expect(() => new Member({ cluster: 'adv', advertise: bad as string }), JSON.stringify(bad)).toThrow(/advertise/)
    }
    const m = new Member({ cluster: 'adv', advertise: ['10.1.2.3', '[fd00::3]:7000', '/ip4/10.1.2.4/tcp/7001'] })
    expect(m).toBeDefined()
  })
  it('bad dns options are named errors', () => {
    for (const [dnsOpt, option] of [[{ servers: [] }, 'dns.servers'], [{ servers: ['dns.example'] }, 'dns.servers[0]'], [{ refreshMs: 0 }, 'dns.refreshMs'], [{ timeoutMs: 'x' }, 'dns.timeoutMs'], [{ server: ['1.1.1.1'] }, 'dns.server']] as const) {
      expect(() => new Member({ cluster: 'd', dns: dnsOpt as never }), option).toThrow(option)
    }
  })
})

describe('resolution', () => {
  const servers = (): { servers: string[], refreshMs: number, timeoutMs: number } => ({ servers: [dns.address], refreshMs: 100, timeoutMs: 1000 })

  it('a host name gives every A and AAAA record with its port; answers change, and a removed name has none', async () => {
    dns.set('orders.test', { a: ['10.0.0.2', '10.0.0.1'], aaaa: ['fd00::1'] })
    const resolved: Array<readonly string[]> = []
    const failed: SeedResolutionFailure[] = []
    const set = new SeedSet([parseSeed('orders.test:7000', 's'), parseSeed('10.9.9.9:7000', 's')], servers(), { resolved: (_s, a) => resolved.push(a), failed: f => failed.push(f) })
    await set.refresh()
    expect(set.addresses()).toEqual(['/ip4/10.0.0.1/tcp/7000', '/ip4/10.0.0.2/tcp/7000', '/ip6/fd00::1/tcp/7000', '/ip4/10.9.9.9/tcp/7000'])
    await set.refresh()
    expect(resolved).toHaveLength(1) // the same answer is not reported again
    dns.set('orders.test', { a: ['10.0.0.3'] })
    await set.refresh()
    expect(set.addresses()).toEqual(['/ip4/10.0.0.3/tcp/7000', '/ip4/10.9.9.9/tcp/7000'])
    dns.remove('orders.test')
    await set.refresh()
    expect(set.addresses()).toEqual(['/ip4/10.9.9.9/tcp/7000'])
    expect(failed.map(f => f.code)).toEqual(['ENOTFOUND'])
    set.stop()
  })

  it('an SRV name gives each target\'s addresses with the target\'s port', async () => {
    dns.set('_conclave._tcp.orders.test', { srv: [{ target: 'm1.orders.test', port: 7001 }, { target: 'm2.orders.test', port: 7002 }, { target: 'gone.orders.test', port: 7003 }] })
    dns.set('m1.orders.test', { a: ['10.0.1.1'] })
    dns.set('m2.orders.test', { a: ['10.0.1.2'] })
    const set = new SeedSet([parseSeed('_conclave._tcp.orders.test', 's')], servers())
    await set.refresh()
    expect(set.addresses()).toEqual(['/ip4/10.0.1.1/tcp/7001', '/ip4/10.0.1.2/tcp/7002'])
    set.stop()
  })

  it('a server that does not answer: the failure is reported, the last answer kept, nothing thrown', async () => {
    dns.set('kept.test', { a: ['10.0.2.1'] })
    const failed: SeedResolutionFailure[] = []
    const spec = parseSeed('kept.test:7000', 's')
    const good = new SeedSet([spec], servers())
    await good.refresh()
    expect(good.addresses()).toEqual(['/ip4/10.0.2.1/tcp/7000'])
    good.stop()
    // A port where nothing answers: c-ares times out (or is refused); either keeps the answer.
    const silent = await TestDnsServer.start()
    const deadAddress = silent.address
    await silent.stop()
    const set = new SeedSet([spec], { servers: [deadAddress], refreshMs: 100, timeoutMs: 200 }, { failed: f => failed.push(f) })
    await set.refresh()
    expect(set.addresses()).toEqual([])
    expect(failed).toHaveLength(1)
    expect(failed[0]?.code).toMatch(/^E[A-Z]+$/)
    expect(failed[0]?.code).not.toBe('ENOTFOUND')
    set.stop()
  })

  it('1,000 A records: all kept, a bounded number dialled per round', async () => {
    const ips = Array.from({ length: 1000 }, (_, i) => `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`)
    dns.set('big.test', { a: ips })
    const set = new SeedSet([parseSeed('big.test:7000', 's')], servers())
    await set.refresh()
    expect(set.addresses()).toHaveLength(1000)
    const round = pick(set.addresses(), 16)
    expect(round).toHaveLength(16)
    expect(new Set(round).size).toBe(16)
    set.stop()
  })

  it('never lists this node\'s own addresses', () => {
    const own = ['/ip4/10.0.0.7/tcp/7000/p2p/12D3KooWA']
    expect(withoutOwn(['/ip4/10.0.0.7/tcp/7000', '/ip4/10.0.0.8/tcp/7000', '/ip4/127.0.0.1/tcp/7000', '/ip4/127.0.0.1/tcp/7001'], own)).toEqual(['/ip4/10.0.0.8/tcp/7000', '/ip4/127.0.0.1/tcp/7001'])
  })
})

describe('members that find each other through DNS', () => {
  /** The SRV name of this test's cluster, listing the given members' ports on 127.0.0.1. */
  function publish (name: string, list: readonly Member[]): void {
    dns.set(name, { srv: list.map((m, i) => ({ target: `${name}-m${i}`, port: Number(/\/tcp\/(\d+)/.exec(m.addresses[0] as string)?.[1]) })) })
    list.forEach((_m, i) => { dns.set(`${name}-m${i}`, { a: ['127.0.0.1'] }) })
  }

  it('an empty name lets the first member found the group; later ones join through the records; a group founded apart is found and merges', async () => {
    const srv = `_conclave._tcp.c${process.pid}.test`
    const opts = (name: string): MemberOptions => ({ cluster: `dns-${process.pid}`, name, seeds: [srv], dns: { servers: [dns.address], refreshMs: 100, timeoutMs: 500 } })
    const resolveFailures: string[] = []
    const a = new Member(opts('a'))
    a.on('seed-resolve-failed', f => resolveFailures.push(f.code))
    members.push(a)
    await a.start()
    await a.waitForView(v => v.members.length === 1, { timeoutMs: 10_000 })
    await waitUntil(() => resolveFailures.includes('ENOTFOUND'), 5000, 'a to report that the name does not exist')
    publish(srv, [a])
    const b = new Member(opts('b'))
    members.push(b)
    await b.start()
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    // c starts while the records list nobody else (another pod's view of a DNS not yet updated):
    // it founds a group of its own.
    dns.set(srv, { srv: [] })
    const c = new Member(opts('c'))
    members.push(c)
    await c.start()
    await c.waitForView(v => v.members.length === 1, { timeoutMs: 10_000 })
    // Now every member is listed: a, the coordinator, dials the address it does not know, and
    // the groups merge into one.
    publish(srv, [a, b, c])
    for (const m of [a, b, c]) await m.waitForView(v => v.members.length === 3, { timeoutMs: 15_000 })
    expect(new Set([a, b, c].map(m => m.view?.members[0]?.id))).toEqual(new Set([a.id]))
  })

  it('records pointing at a closed port and at another cluster\'s member: the joiner founds its own group, is refused by the other, and leaves it untouched', async () => {
    const srv = `_conclave._tcp.e${process.pid}.test`
    const foreign = new Member({ cluster: `other-${process.pid}`, name: 'x' })
    members.push(foreign)
    await foreign.start()
    const closed = await freePort()
    dns.set(srv, { srv: [{ target: `e${process.pid}-closed.test`, port: closed }, { target: `e${process.pid}-x.test`, port: Number(/\/tcp\/(\d+)/.exec(foreign.addresses[0] as string)?.[1]) }] })
    dns.set(`e${process.pid}-closed.test`, { a: ['127.0.0.1'] })
    dns.set(`e${process.pid}-x.test`, { a: ['127.0.0.1'] })
    const rejected: Array<{ cluster: string }> = []
    const b = new Member({ cluster: `mine-${process.pid}`, name: 'b', seeds: [srv], dns: { servers: [dns.address], refreshMs: 100, timeoutMs: 500 } })
    b.on('seed-rejected', r => rejected.push(r))
    members.push(b)
    await b.start()
    // Nothing of its own cluster answers (one seed refuses the connection, the other is foreign):
    // under allow, it founds a group of its own after the join timeout.
    await b.waitForView(v => v.members.length === 1 && v.members[0]?.id === b.id, { timeoutMs: 10_000 })
    expect(rejected).toEqual([expect.objectContaining({ cluster: `other-${process.pid}` })])
    expect(b.dropped['seed-foreign-cluster']).toBeGreaterThan(0)
    expect(foreign.view?.members.map(m => m.id)).toEqual([foreign.id])
    expect(foreign.dropped['handshake-foreign-cluster']).toBeGreaterThan(0)
  })

  it('a member keeps running while its DNS server is down, reports it, and joins once the server answers', async () => {
    const srv = `_conclave._tcp.d${process.pid}.test`
    const cluster = `dns2-${process.pid}`
    const a = new Member({ cluster, name: 'a' })
    members.push(a)
    await a.start()
    const first = await TestDnsServer.start()
    const port = Number(first.address.split(':')[1])
    await first.stop() // down: queries to it go unanswered
    const failures: string[] = []
    const waiting: string[] = []
    const b = new Member({ cluster, name: 'b', seeds: [srv], splitBrain: 'majority', dns: { servers: [`127.0.0.1:${port}`], refreshMs: 100, timeoutMs: 300 } })
    b.on('seed-resolve-failed', f => failures.push(f.code))
    b.on('waiting', w => waiting.push(w.reason))
    members.push(b)
    await b.start()
    await waitUntil(() => failures.length > 0 && waiting.length > 0, 10_000, 'b to report the failure and wait')
    expect(failures[0]).not.toBe('ENOTFOUND')
    expect(b.view).toBeUndefined() // under majority, a member with seeds does not found a group alone
    const back = await TestDnsServer.start('127.0.0.1', port)
    try {
      back.set(srv, { srv: [{ target: 'a.back.test', port: Number(/\/tcp\/(\d+)/.exec(a.addresses[0] as string)?.[1]) }] })
      back.set('a.back.test', { a: ['127.0.0.1'] })
      await waitUntil(() => b.view?.members.length === 2, 15_000, 'b to join a once the server answers')
      expect(a.view?.members.length).toBe(2)
    } finally {
      await back.stop()
    }
  })
})
