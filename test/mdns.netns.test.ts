/**
 * Multicast DNS discovery (the `mdns` option, `--mdns`): member processes on test hosts
 * (network namespaces, testing/netns.ts) with no seeds at all find each other by mDNS on the
 * lab's switch; the multicast never leaves the namespaces. Needs root and iproute2.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { LocalDiscovery, MAX_DISCOVERED, mdnsServiceTag } from '../src/discovery/local-discovery.js'
import { InvalidOptionError, Member } from '../src/index.js'
import { MemberProcess, waitUntil } from '../src/testing/member-process.js'
import { NetnsLab, type TestHost } from '../src/testing/netns.js'
import { netnsGate } from './netns-gate.js'

const unavailable = await netnsGate('mDNS discovery tests')

const PORT = 7000

let lab: NetnsLab | undefined
let procs: MemberProcess[] = []

afterEach(async () => {
  await Promise.all(procs.map(async p => { if (p.running) await p.stop(3000) }))
  procs = []
  await lab?.destroy()
  lab = undefined
})

function memberOn (cluster: string, name: string, host: TestHost, mdns = true): MemberProcess {
  const p = new MemberProcess({
    cluster,
    name,
    listen: `0.0.0.0:${PORT}`,
    extraArgs: ['--advertise', host.address, ...(mdns ? ['--mdns'] : [])],
    prefix: lab?.execPrefix(host)
  })
  procs.push(p)
  return p
}

const names = (p: MemberProcess): string => (p.lastView()?.members ?? []).map(m => m.name).sort().join()

describe('what multicast discovery keeps', () => {
  it('TCP addresses heard within three intervals; each offered for dialling once an interval', () => {
    let now = 0
    const d = new LocalDiscovery(1000, () => now)
    const a = '/ip4/10.0.0.1/tcp/7000'
    const b = '/ip4/10.0.0.2/tcp/7000'
    expect(d.heard([a, '/ip4/10.0.0.9/udp/53', '/dns4/x.test/tcp/1', 'garbage'])).toEqual([a])
    d.dialed([a])
    now = 500
    expect(d.heard([a, b])).toEqual([b])
    d.dialed([b])
    now = 1000
    expect(d.heard([a])).toEqual([a])
    expect(d.addresses().sort()).toEqual([a, b])
    now = 3501 // b last heard at 500: more than three intervals ago
    expect(d.addresses()).toEqual([a])
    now = 4001
    expect(d.addresses()).toEqual([])
  })

  it('at most MAX_DISCOVERED addresses', () => {
    const d = new LocalDiscovery(1000, () => 0)
    const many = Array.from({ length: MAX_DISCOVERED + 10 }, (_, i) => `/ip4/10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}/tcp/7000`)
    expect(d.heard(many)).toHaveLength(MAX_DISCOVERED)
    expect(d.addresses()).toHaveLength(MAX_DISCOVERED)
  })

  it('a service name per cluster that fits a DNS label', () => {
    const tag = mdnsServiceTag('a.very.long.cluster-name_with.dots.that.would.not.fit.a.dns.label.x')
    expect(tag).toMatch(/^_conclave-[0-9a-f]{16}\._udp\.local$/)
    expect(mdnsServiceTag('orders')).not.toBe(mdnsServiceTag('orders2'))
  })

  it('bad mdns options are named errors', () => {
    for (const [mdns, option] of [['yes', 'mdns'], [{ intervalMs: 5 }, 'mdns.intervalMs'], [{ interval: 1000 }, 'mdns.interval']] as const) {
      let err: unknown
      try { new Member({ cluster: 'x', mdns: mdns as never }) } catch (e) { err = e }
      expect(err).toBeInstanceOf(InvalidOptionError)
      expect((err as InvalidOptionError).option).toBe(option)
    }
    expect(() => new Member({ cluster: 'x', mdns: false })).not.toThrow()
    expect(() => new Member({ cluster: 'x', mdns: { intervalMs: 500 } })).not.toThrow()
  })
})

describe.skipIf(unavailable !== undefined)('members that find each other by multicast DNS', () => {
  it('members started one after another join one group; a member of another cluster and one without --mdns stay out', async () => {
    lab = await NetnsLab.create(5)
    const h = (i: number): TestHost => lab?.hosts[i] as TestHost
    const a = await memberOn('mdns', 'a', h(0)).waitReady()
    await waitUntil(() => names(a) === 'a', 10_000, 'a founds')
    const b = await memberOn('mdns', 'b', h(1)).waitReady()
    const c = await memberOn('mdns', 'c', h(2)).waitReady()
    await waitUntil(() => [a, b, c].every(p => names(p) === 'a,b,c'), 15_000, 'one group of three')
    expect(new Set([a, b, c].map(p => p.lastView()?.coordinator)).size).toBe(1)
    // Another cluster on the same segment, and a member of this cluster with mDNS off.
    const other = await memberOn('mdns-other', 'x', h(3)).waitReady()
    const quiet = await memberOn('mdns', 'q', h(4), false).waitReady()
    await waitUntil(() => names(other) === 'x' && names(quiet) === 'q', 10_000, 'x and q alone')
    // Three query intervals: time enough for any of them to be found, were it findable.
    await new Promise(resolve => setTimeout(resolve, 6000))
    expect([a, b, c].map(names)).toEqual(['a,b,c', 'a,b,c', 'a,b,c'])
    expect(names(other)).toBe('x')
    expect(names(quiet)).toBe('q')
  })

  it('members started at the same instant end in one group', async () => {
    lab = await NetnsLab.create(3)
    const all = await Promise.all(lab.hosts.map(async (host, i) => await memberOn('mdns-burst', `m${i}`, host).waitReady()))
    await waitUntil(() => all.every(p => names(p) === 'm0,m1,m2'), 20_000, 'one group of three')
    expect(new Set(all.map(p => p.lastView()?.coordinator)).size).toBe(1)
  })
})
