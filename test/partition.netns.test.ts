/**
 * Real partitions: member processes on separate test hosts (Linux network namespaces made by
 * the test, testing/netns.ts), links cut and restored on a private switch. Needs root and
 * iproute2; elsewhere the tests are skipped with the reason printed, or fail under
 * CONCLAVE_REQUIRE_NETNS=1 (netns-gate.ts). All traffic stays in the namespaces. Waits are
 * bounded generously; the timing figures come from `conclave chaos`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { MemberProcess, agreed, waitUntil, type MemberEvent, type ViewEvent } from '../src/testing/member-process.js'
import { NetnsLab } from '../src/testing/netns.js'
import { netnsGate } from './netns-gate.js'

const unavailable = await netnsGate('partition tests')

const PORT = 7100
let lab: NetnsLab | undefined
let procs: MemberProcess[] = []

afterEach(async () => {
  await Promise.all(procs.map(async p => { if (p.running) { p.kill('SIGCONT'); await p.stop(3000) } }))
  procs = []
  await lab?.destroy()
  lab = undefined
})

/** Starts `n` members, one per host, the first founding the group; waits until all agree. */
async function cluster (n: number, policy: 'allow' | 'majority'): Promise<MemberProcess[]> {
  lab = await NetnsLab.create(n)
  const hosts = lab.hosts
  const seed = `${hosts[0]?.address}:${PORT}`
  for (let i = 0; i < n; i++) {
    const host = hosts[i] as { ns: string, address: string }
    const p = new MemberProcess({
      cluster: 'netns',
      name: `m${i}`,
      listen: `${host.address}:${PORT}`,
      seeds: i === 0 ? [] : [seed],
      extraArgs: ['--split-brain', policy],
      prefix: lab.execPrefix(host)
    })
    procs.push(p)
    await p.waitReady()
    if (i === 0) await p.waitFor(e => e.type === 'view', 10_000)
  }
  await waitUntil(() => agreed(procs, n), 20_000, `${n} members agreeing`, 20)
  return procs
}

const lastOf = (p: MemberProcess, type: string): MemberEvent | undefined => {
  for (let i = p.events.length - 1; i >= 0; i--) if (p.events[i]?.type === type) return p.events[i]
  return undefined
}
/** Master status from the member's own events: its last `master` line. */
const isMaster = (p: MemberProcess): boolean => lastOf(p, 'master')?.isMaster === true
const sideAgrees = (side: MemberProcess[]): boolean => agreed(side, side.length)
const quorumOf = (p: MemberProcess): unknown => (p.lastView() as (ViewEvent & { quorum?: string }) | undefined)?.quorum
const eventsSince = (p: MemberProcess, from: number, type: string): MemberEvent[] => p.events.filter(e => e.ts >= from && e.type === type)

describe.skipIf(unavailable !== undefined)('real partitions between network namespaces', () => {
  it('majority, 3 members: the isolated master demotes itself, the other two elect one; after the heal it keeps its place', async () => {
    const [m0, m1, m2] = await cluster(3, 'majority') as [MemberProcess, MemberProcess, MemberProcess]
    await waitUntil(() => isMaster(m0), 5000, 'm0 master')
    const cutAt = Date.now()
    await lab?.partition([[0], [1, 2]])
    await waitUntil(() => sideAgrees([m1, m2]) && isMaster(m1) && !isMaster(m0), 15_000, 'm1 master of {m1, m2}, m0 demoted')
    await waitUntil(() => m0.lastView()?.members.length === 1, 15_000, 'm0 alone')
    expect(quorumOf(m0)).toBe('no-majority')
    expect(quorumOf(m1)).toBe('ok')
    // m0 stopped before m1 started: never two masters
    const demoted = eventsSince(m0, cutAt, 'master').find(e => e.isMaster === false)
    const promoted = eventsSince(m1, cutAt, 'master').find(e => e.isMaster === true)
    expect(demoted).toBeDefined()
    expect(promoted).toBeDefined()
    expect((demoted as MemberEvent).ts).toBeLessThanOrEqual((promoted as MemberEvent).ts)
    expect(isMaster(m2)).toBe(false)

    const healAt = Date.now()
    await lab?.heal()
    await waitUntil(() => agreed([m0, m1, m2], 3), 15_000, 'one view of 3 after the heal')
    expect(m0.lastView()?.members.map(m => m.name)).toEqual(['m1', 'm2', 'm0'])
    await waitUntil(() => isMaster(m1), 5000, 'm1 still master')
    expect(eventsSince(m1, healAt, 'master').filter(e => e.isMaster === false)).toEqual([])
    expect(isMaster(m0) || isMaster(m2)).toBe(false)
    // m1 and m2 see m0 back; m0 sees them
    await waitUntil(() => eventsSince(m1, healAt, 'merge').length > 0 && eventsSince(m0, healAt, 'merge').length > 0, 5000, 'merge events')
    const rejoined = (eventsSince(m1, healAt, 'merge')[0]?.rejoined as Array<{ name: string }>).map(r => r.name)
    expect(rejoined).toEqual(['m0'])
    // The merged view comes after every view either side installed during the cut.
    const cutEpochs = [m0, m1, m2].flatMap(p => p.events.filter(e => e.type === 'view' && e.ts >= cutAt && e.ts < healAt).map(e => e.epoch as number))
    expect(cutEpochs.length).toBeGreaterThan(0)
    expect(m1.lastView()?.epoch).toBeGreaterThan(Math.max(...cutEpochs))
  })

  it('majority, 5 members split 2–2–1: no side has a master; the heal brings back one', async () => {
    const all = await cluster(5, 'majority')
    await waitUntil(() => isMaster(all[0] as MemberProcess), 5000, 'm0 master')
    const sides = [[0, 1], [2, 3], [4]]
    await lab?.partition(sides)
    const groups = sides.map(side => side.map(i => all[i] as MemberProcess))
    await waitUntil(() => groups.every(sideAgrees), 20_000, 'each side agreeing on its own view')
    await waitUntil(() => all.every(p => !isMaster(p)), 5000, 'no master anywhere')
    for (const p of all) expect(quorumOf(p)).toBe('no-majority')
    // and none comes up while the split lasts (a second of watching, beyond the lease)
    await new Promise(resolve => setTimeout(resolve, 1000))
    expect(all.filter(isMaster).map(p => p.name)).toEqual([])

    await lab?.heal()
    await waitUntil(() => agreed(all, 5), 20_000, 'one view of 5 after the heal')
    await waitUntil(() => all.filter(isMaster).length === 1, 5000, 'one master')
    expect(all.map(quorumOf)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])
  })

  it('allow, 3 members: each side has a master while cut; the heal merges them, reports the split brain and leaves one', async () => {
    const [m0, m1, m2] = await cluster(3, 'allow') as [MemberProcess, MemberProcess, MemberProcess]
    await waitUntil(() => isMaster(m0), 5000, 'm0 master')
    await lab?.partition([[0], [1, 2]])
    await waitUntil(() => sideAgrees([m1, m2]) && isMaster(m1) && isMaster(m0) && m0.lastView()?.members.length === 1, 15_000, 'a master per side')
    const healAt = Date.now()
    await lab?.heal()
    await waitUntil(() => agreed([m0, m1, m2], 3), 15_000, 'one view after the heal')
    await waitUntil(() => [m0, m1, m2].filter(isMaster).length === 1, 5000, 'one master')
    expect(m0.lastView()?.members[0]?.name).toBe('m1')
    const reports = [m0, m1, m2].flatMap(p => eventsSince(p, healAt, 'split-brain'))
    expect(reports.length).toBeGreaterThan(0)
    expect(reports.every(r => r.foreign === true)).toBe(true)
  })
})
