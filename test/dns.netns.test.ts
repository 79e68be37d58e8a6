/**
 * Discovery where users deploy: member processes on test hosts (network namespaces,
 * testing/netns.ts) that find each other only through a DNS server this test runs on another
 * test host and changes while they run, as a Kubernetes headless service's records change.
 * Every member listens on 0.0.0.0 and advertises its host's address. Needs root and iproute2
 * (netns-gate.ts); all traffic stays inside the namespaces.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { MemberProcess, agreed, waitUntil } from '../src/testing/member-process.js'
import { restartTimeline, rollingRestart } from '../src/testing/rolling-restart.js'
import { NetnsLab, type TestHost } from '../src/testing/netns.js'
import { netnsGate } from './netns-gate.js'

const unavailable = await netnsGate('DNS discovery tests')

const PORT = 7000
const NAME = 'orders.conclave.test'
const DNS_SERVER = fileURLToPath(new URL('../dist/src/testing/dns-server.js', import.meta.url))

let lab: NetnsLab | undefined
const dnsProcs: ChildProcess[] = []
let procs: MemberProcess[] = []

afterEach(async () => {
  await Promise.all(procs.map(async p => { if (p.running) await p.stop(3000) }))
  procs = []
  for (const p of dnsProcs.splice(0)) p.kill('SIGKILL')
  await lab?.destroy()
  lab = undefined
})

/** The DNS server as a process on `host`; `set` replaces the name's A records. */
async function startDns (host: TestHost): Promise<{ set: (ips: readonly string[]) => Promise<void>, address: string }> {
  const child = spawn(lab?.execPrefix(host)[0] as string, [...(lab?.execPrefix(host).slice(1) ?? []), process.execPath, DNS_SERVER, '--listen', `${host.address}:53`], { stdio: ['pipe', 'pipe', 'inherit'] })
  dnsProcs.push(child)
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const waiters: Array<(line: string) => void> = []
  lines.on('line', line => { waiters.shift()?.(line) })
  const next = async (): Promise<string> => await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the DNS server did not answer')) }, 10_000)
    waiters.push(line => { clearTimeout(timer); resolve(line) })
  })
  const ready = JSON.parse(await next()) as { address: string }
  return {
    address: ready.address,
    set: async ips => {
      const ok = next()
      child.stdin?.write(JSON.stringify({ set: NAME, a: ips }) + '\n')
      await ok
    }
  }
}

/** A member on `host` listening on 0.0.0.0, advertising the host's address, with the DNS name as its only seed. */
function memberOn (cluster: string, name: string, host: TestHost, dnsAddress: string): MemberProcess {
  const p = new MemberProcess({
    cluster,
    name,
    listen: `0.0.0.0:${PORT}`,
    seeds: [`${NAME}:${PORT}`],
    extraArgs: ['--advertise', host.address, '--dns-server', dnsAddress],
    prefix: lab?.execPrefix(host)
  })
  procs.push(p)
  return p
}

/** A member's events, one per line, and its stderr: what a failed wait says. */
const story = (p: MemberProcess): string => `${p.name}:\n${p.events.map(e => `  ${JSON.stringify(e)}`).join('\n')}\n${p.stderr.slice(-2000)}`

const names = (p: MemberProcess): string[] => (p.lastView()?.members ?? []).map(m => m.name).sort()

describe.skipIf(unavailable !== undefined)('members that find each other only through DNS', () => {
  it('scale up by adding records, scale down, and a member back at a new address; every member advertises only its own address', async () => {
    lab = await NetnsLab.create(6)
    const [dnsHost, ...hosts] = lab.hosts as [TestHost, ...TestHost[]]
    const dns = await startDns(dnsHost)
    const member = (name: string, host: TestHost): MemberProcess => memberOn('dns', name, host, dns.address)
    const everyone = (list: MemberProcess[], expected: string[]): boolean => list.every(p => JSON.stringify(names(p)) === JSON.stringify([...expected].sort()))

    // The first member's record names only itself: it founds the group.
    await dns.set([hosts[0]?.address as string])
    const m1 = await member('m1', hosts[0] as TestHost).waitReady()
    expect(m1.ready()?.listen).toEqual([expect.stringMatching(new RegExp(`^/ip4/${hosts[0]?.address}/tcp/${PORT}/p2p/`))])
    await waitUntil(() => everyone([m1], ['m1']), 10_000, 'm1 alone')

    // Scale up: each new member's record is added as it starts (publishNotReadyAddresses).
    await dns.set(hosts.slice(0, 2).map(h => h.address))
    const m2 = await member('m2', hosts[1] as TestHost).waitReady()
    await dns.set(hosts.slice(0, 3).map(h => h.address))
    const m3 = await member('m3', hosts[2] as TestHost).waitReady()
    await waitUntil(() => everyone([m1, m2, m3], ['m1', 'm2', 'm3']), 15_000, 'three members')
    for (const [p, h] of [[m2, hosts[1]], [m3, hosts[2]]] as const) {
      expect(p.ready()?.listen).toEqual([expect.stringMatching(new RegExp(`^/ip4/${h?.address}/tcp/${PORT}/p2p/`))])
    }

    // Scale down: m3 leaves and its record goes.
    await m3.stop(5000)
    await dns.set(hosts.slice(0, 2).map(h => h.address))
    await waitUntil(() => everyone([m1, m2], ['m1', 'm2']), 10_000, 'two members after scale down')

    // m2's pod dies and comes back at another address under the same name.
    m2.kill('SIGKILL')
    await dns.set([hosts[0]?.address as string, hosts[4]?.address as string])
    const m2b = await member('m2', hosts[4] as TestHost).waitReady()
    await waitUntil(() => everyone([m1, m2b], ['m1', 'm2']) && m1.lastView()?.members.every(m => m.id !== m2.ready()?.id) === true, 15_000, 'm2 back at its new address, the old one gone')
    expect(m2b.ready()?.listen).toEqual([expect.stringMatching(new RegExp(`^/ip4/${hosts[4]?.address}/tcp/${PORT}/p2p/`))])
  })

  it('a rolling restart of 5 members found through DNS, standbys first and the master last: the master moves once, never two at once', async () => {
    lab = await NetnsLab.create(6)
    const [dnsHost, ...hosts] = lab.hosts as [TestHost, ...TestHost[]]
    const dns = await startDns(dnsHost)
    await dns.set(hosts.map(h => h.address))
    const hostOf = new Map<MemberProcess, TestHost>()
    const start = (name: string, host: TestHost): MemberProcess => {
      const p = memberOn('dns-rolling', name, host, dns.address)
      hostOf.set(p, host)
      return p
    }
    const group: MemberProcess[] = []
    for (const [i, host] of hosts.entries()) {
      group.push(await start(`m${i}`, host).waitReady())
      await waitUntil(() => agreed(group, group.length), 15_000, `${group.length} members`)
    }
    const master = group.find(p => p.lastView()?.isCoordinator === true)
    // Each replacement starts on its predecessor's host (the pod's address), seeded by the name only.
    let generation = 0
    const result = await rollingRestart(group, old => start(`${old.name}.${++generation}`, hostOf.get(old) as TestHost), { order: 'master-last' })
    const { intervals, figures } = restartTimeline(result)
    expect(figures.moves).toBe(1)
    expect(figures.overlapMs).toBe(0)
    expect(figures.longestGapMs).toBeLessThan(1000)
    expect(intervals[0]?.name).toBe(master?.name)
    expect(result.group.every(p => p.name.includes('.'))).toBe(true)
  })

  it('groups founded apart while the records named only some members merge once the records name everyone', async () => {
    lab = await NetnsLab.create(6)
    const [dnsHost, staleHost, ...hosts] = lab.hosts as [TestHost, TestHost, ...TestHost[]]
    // Two servers for one name, as a stale secondary: a and b ask one, c and d the other, so
    // each pair founds its group without the other's coordinator seeing its records.
    const dns = await startDns(dnsHost)
    const stale = await startDns(staleHost)
    const h = (i: number): TestHost => hosts[i] as TestHost
    await dns.set([h(0).address])
    await stale.set([h(2).address])
    const a = await memberOn('dns-merge', 'a', h(0), dns.address).waitReady()
    const b = await memberOn('dns-merge', 'b', h(1), dns.address).waitReady()
    await waitUntil(() => names(a).join() === 'a,b' && names(b).join() === 'a,b', 10_000, () => `group {a, b}\n${story(a)}\n${story(b)}`)
    const c = await memberOn('dns-merge', 'c', h(2), stale.address).waitReady()
    const d = await memberOn('dns-merge', 'd', h(3), stale.address).waitReady()
    await waitUntil(() => names(c).join() === 'c,d' && names(d).join() === 'c,d', 10_000, () => `group {c, d}\n${story(c)}\n${story(d)}`)
    expect(names(a).join()).toBe('a,b')
    // Two groups of two: neither is alone, so only the coordinators' dials of the addresses no
    // member of their view has (after each re-resolution) can bring them together.
    const everyone = hosts.slice(0, 4).map(x => x.address)
    await dns.set(everyone)
    await stale.set(everyone)
    await waitUntil(() => [a, b, c, d].every(p => names(p).join() === 'a,b,c,d'), 20_000, () => `one group of four\n${[a, b, c, d].map(story).join('\n')}`)
    expect(new Set([a, b, c, d].map(p => p.lastView()?.coordinator)).size).toBe(1)
  })
})
