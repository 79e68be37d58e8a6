/**
 * Mastership across real process faults, with the examples as the members: the route example
 * (work only on the master) and the filtered-stream example (items pass only on the master).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { MemberProcess, waitUntil, type MemberEvent } from '../src/testing/member-process.js'
import { wallClockMs } from '../src/clock.js'

const ROUTE = fileURLToPath(new URL('../dist/examples/master-route.js', import.meta.url))
const FILTER = fileURLToPath(new URL('../dist/examples/filtered-stream.js', import.meta.url))
const spawned: MemberProcess[] = []
let n = 0

afterEach(async () => {
  await Promise.all(spawned.splice(0).map(async p => { if (p.running) p.kill('SIGCONT'); await p.stop(3000) }))
})

async function three (script: string): Promise<MemberProcess[]> {
  const cluster = `mp-${process.pid}-${++n}`
  const procs: MemberProcess[] = []
  for (const name of ['a', 'b', 'c']) {
    const seeds = procs.map(p => p.address as string)
    const p = new MemberProcess({ cluster, name, seeds, script })
    spawned.push(p)
    await p.waitReady()
    procs.push(p)
    // wait until this member is in a view with all started so far
    await waitUntil(() => procs.every(q => lastOf(q, 'view')?.members !== undefined && (lastOf(q, 'view')?.members as string[]).length === procs.length), 10_000, `${name} to join`)
  }
  return procs
}

const lastOf = (p: MemberProcess, type: string): MemberEvent | undefined => [...p.events].reverse().find(e => e.type === type)
const after = (p: MemberProcess, ts: number, type: string): MemberEvent[] => p.events.filter(e => e.type === type && e.ts >= ts)
const routeStarts = (p: MemberProcess): MemberEvent[] => p.events.filter(e => e.type === 'route' && e.event === 'started')

describe('mastership with real processes', () => {
  it('SIGKILL of the master: the next-oldest starts the route, with a higher epoch', async () => {
    const [a, b, c] = await three(ROUTE) as [MemberProcess, MemberProcess, MemberProcess]
    await waitUntil(() => after(a, 0, 'work').length > 0, 5000, 'a to work')
    const epoch = routeStarts(a)[0]?.epoch as number
    expect(routeStarts(b)).toEqual([])
    a.kill('SIGKILL')
    await waitUntil(() => routeStarts(b).length > 0, 5000, 'b to start the route')
    expect(routeStarts(b)[0]?.epoch).toBeGreaterThan(epoch)
    expect(routeStarts(c)).toEqual([])
  })

  it('graceful stop of the master: its route stops before the successor\'s starts (no overlap)', async () => {
    const [a, b] = await three(ROUTE) as [MemberProcess, MemberProcess, MemberProcess]
    await waitUntil(() => after(a, 0, 'work').length > 0, 5000, 'a to work')
    await a.stop()
    await waitUntil(() => routeStarts(b).length > 0, 5000, 'b to start the route')
    const stopped = a.events.find(e => e.type === 'route' && e.event === 'stopped') as MemberEvent
    const lastWork = after(a, 0, 'work').at(-1) as MemberEvent
    const started = routeStarts(b)[0] as MemberEvent
    expect(stopped.reason).toBe('leaving')
    expect(lastWork.ts).toBeLessThan(started.ts)
    expect(stopped.ts).toBeLessThan(started.ts)
  })

  it('SIGSTOP of the master until it is excluded, then SIGCONT: from the resume on it does no work, under its old epoch or any', async () => {
    const [a, b, c] = await three(ROUTE) as [MemberProcess, MemberProcess, MemberProcess]
    await waitUntil(() => after(a, 0, 'work').length > 0, 5000, 'a to work')
    const oldEpoch = routeStarts(a)[0]?.epoch as number
    a.kill('SIGSTOP')
    await waitUntil(() => routeStarts(b).length > 0, 5000, 'b to take over')
    const resumed = wallClockMs()
    a.kill('SIGCONT')
    await waitUntil(() => (lastOf(c, 'view')?.members as string[]).length === 3 && (lastOf(a, 'view')?.members as string[] | undefined)?.at(-1) === 'a', 10_000, 'a to rejoin')
    await new Promise(resolve => setTimeout(resolve, 500)) // let any wrongly running timer show itself
    const sinceResume = a.events.filter(e => e.ts >= resumed)
    // the first thing it says after the pause: no longer master, its lease having lapsed
    expect(sinceResume[0]).toMatchObject({ type: 'master', isMaster: false, reason: 'lease-expired' })
    expect(sinceResume.filter(e => e.type === 'work')).toEqual([])
    expect(sinceResume.some(e => e.type === 'route' && e.event === 'stopped')).toBe(true)
    expect(sinceResume.filter(e => e.type === 'route' && e.event === 'started')).toEqual([])
    expect(routeStarts(b)[0]?.epoch).toBeGreaterThan(oldEpoch)
    expect((lastOf(a, 'view')?.members as string[])).toEqual(['b', 'c', 'a'])
  })

  it('SIGSTOP + SIGCONT of the master: its filter passes nothing after the resume', async () => {
    const [a, b] = await three(FILTER) as [MemberProcess, MemberProcess, MemberProcess]
    await waitUntil(() => after(a, 0, 'item').length > 5, 5000, 'a to pass items')
    expect(after(b, 0, 'item')).toEqual([])
    a.kill('SIGSTOP')
    await waitUntil(() => after(b, 0, 'item').length > 0, 5000, 'b to pass items')
    const resumed = wallClockMs()
    a.kill('SIGCONT')
    await waitUntil(() => a.events.some(e => e.type === 'master' && e.ts >= resumed), 5000, 'a to notice')
    await new Promise(resolve => setTimeout(resolve, 1000)) // a's source keeps producing every 20 ms
    expect(after(a, resumed, 'item')).toEqual([])
    const bEpoch = after(b, 0, 'item')[0]?.epoch as number
    expect(bEpoch).toBeGreaterThan(after(a, 0, 'item')[0]?.epoch as number)
  })
})
