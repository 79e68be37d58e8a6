/**
 * Real processes on 127.0.0.1: `conclave member --json` children, killed, paused and stopped.
 * Assertions are on behaviour (views, order, who coordinates); waits are bounded generously.
 * Timing figures belong to bench/failover.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { MemberProcess, agreed, type MemberEvent, type ViewEvent } from '../src/testing/member-process.js'

const spawned: MemberProcess[] = []
let clusterNo = 0

afterEach(async () => {
  await Promise.all(spawned.splice(0).map(async p => {
    if (p.child.signalCode === null && p.running) p.kill('SIGCONT')
    await p.stop(3000)
  }))
})

function spawnMember (cluster: string, name: string, seeds: string[] = []): MemberProcess {
  const p = new MemberProcess({ cluster, name, seeds })
  spawned.push(p)
  return p
}

/** Starts a, then b and c one after another through a, and waits until all three agree. */
async function threeMembers (): Promise<{ cluster: string, a: MemberProcess, b: MemberProcess, c: MemberProcess }> {
  const cluster = `proc-${process.pid}-${++clusterNo}`
  const a = await spawnMember(cluster, 'a').waitReady()
  const seed = [a.address as string]
  const b = await spawnMember(cluster, 'b', seed).waitReady()
  await b.waitFor(isViewOf(2), 10_000)
  const c = await spawnMember(cluster, 'c', seed).waitReady()
  await waitAgreed([a, b, c], 3)
  return { cluster, a, b, c }
}

const isViewOf = (n: number) => (e: MemberEvent): boolean => e.type === 'view' && (e as ViewEvent).members.length === n
const names = (p: MemberProcess): string[] => p.lastView()?.members.map(m => m.name) ?? []

async function waitAgreed (procs: MemberProcess[], size: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  await new Promise<void>((resolve, reject) => {
    const poll = (): void => {
      if (agreed(procs, size)) { resolve(); return }
      if (Date.now() > end) {
        reject(new Error(`no agreement on ${size} members: ${procs.map(p => `${p.name}=[${names(p).join(',')}]@${p.lastView()?.epoch}`).join(' ')}`))
        return
      }
      setTimeout(poll, 20)
    }
    poll()
  })
}

describe('real processes on loopback', () => {
  it('three members join and agree on one view, oldest first, with one coordinator', async () => {
    const { a, b, c } = await threeMembers()
    expect(names(a)).toEqual(['a', 'b', 'c'])
    expect([a, b, c].map(p => p.lastView()?.isCoordinator)).toEqual([true, false, false])
    expect(a.lastView()?.coordinator).toBe(a.id)
  })

  it('SIGKILL of the coordinator: the survivors agree on the next-oldest, with a higher epoch', async () => {
    const { a, b, c } = await threeMembers()
    const before = b.lastView()?.epoch ?? 0
    a.kill('SIGKILL')
    await waitAgreed([b, c], 2)
    expect(names(b)).toEqual(['b', 'c'])
    expect(b.lastView()?.isCoordinator).toBe(true)
    expect(c.lastView()?.isCoordinator).toBe(false)
    expect(b.lastView()?.epoch).toBeGreaterThan(before)
  })

  it('SIGSTOP of the coordinator: it is excluded; after SIGCONT it knows at once it is not coordinator and rejoins as youngest', async () => {
    const { a, b, c } = await threeMembers()
    a.kill('SIGSTOP')
    await waitAgreed([b, c], 2)
    expect(names(c)).toEqual(['b', 'c'])
    expect(b.lastView()?.isCoordinator).toBe(true)
    const mark = a.events.length
    a.kill('SIGCONT')
    await waitAgreed([a, b, c], 3)
    expect(names(a)).toEqual(['b', 'c', 'a'])
    const afterResume = a.events.slice(mark)
    // its first word after the pause: no longer coordinator (the lease lapsed while it was frozen)
    const firstCoordinatorEvent = afterResume.find(e => e.type === 'coordinator')
    expect(firstCoordinatorEvent?.isCoordinator).toBe(false)
    expect(afterResume.some(e => e.type === 'view' && (e as ViewEvent).isCoordinator)).toBe(false)
    expect(afterResume.some(e => e.type === 'coordinator' && e.isCoordinator === true)).toBe(false)
  })

  it('graceful stop of the coordinator: the successor takes over before the leaver is gone, with no failure detection', async () => {
    const { a, b, c } = await threeMembers()
    const mark = b.events.length
    await a.stop()
    expect((await a.exited).code).toBe(0)
    const left = a.events.find(e => e.type === 'left')
    expect(left).toBeDefined()
    await waitAgreed([b, c], 2)
    const handover = b.events.slice(mark).find(isViewOf(2)) as ViewEvent
    expect(handover.coordinator).toBe(b.id)
    // the group installed the successor's view while the leaver was still leaving: its event
    // follows the install by the survivors' flush (one hop), so it may come just after the
    // leaver's last word, but far sooner than a failure detection could (silence 500 ms, then
    // a probe of 250 ms)
    expect(handover.ts).toBeLessThanOrEqual((left as MemberEvent).ts + 250)
    // no suspicion: the handover did not wait for the leaver's connection to close or go silent
    expect([b, c].some(p => p.events.slice(mark).some(e => e.type === 'suspect'))).toBe(false)
    // and the successor coordinates (at once, or after its first heartbeat echo from c if c
    // joined only a moment ago: the lease needs one; the benchmark measures how long)
    await b.waitFor(e => (e.type === 'view' && (e as ViewEvent).isCoordinator) || (e.type === 'coordinator' && e.isCoordinator === true), 2000, mark)
  })

  it('a restarted member rejoins as the youngest, behind members that started after it', async () => {
    const { cluster, a, b, c } = await threeMembers()
    b.kill('SIGKILL')
    await waitAgreed([a, c], 2)
    const b2 = await spawnMember(cluster, 'b', [a.address as string]).waitReady()
    await waitAgreed([a, c, b2], 3)
    expect(names(a)).toEqual(['a', 'c', 'b'])
    expect(a.lastView()?.isCoordinator).toBe(true)
  })

  it('a busy machine and pauses past the suspicion threshold exclude nobody: probes verify first', async () => {
    const { a, b, c } = await threeMembers()
    const epoch = a.lastView()?.epoch
    const marks = [a, b, c].map(p => p.events.length)
    // two CPU burners on a 2-core machine, for the whole test
    const burners = [0, 1].map(() => spawn(process.execPath, ['-e', 'const end = Date.now() + 8000; while (Date.now() < end) {}'], { stdio: 'ignore' }))
    try {
      // freeze the coordinator and then followers, 520 ms at a time: past the 500 ms suspicion
      // threshold, so the others probe; the probe is answered when the process runs again,
      // inside the 250 ms it has, so the suspicion is refuted and nobody is excluded
      for (const p of [a, c, a, b, c]) {
        p.kill('SIGSTOP')
        await new Promise(resolve => setTimeout(resolve, 520))
        p.kill('SIGCONT')
        await new Promise(resolve => setTimeout(resolve, 300))
      }
      // and let the burners keep the cores busy a while longer
      await new Promise(resolve => setTimeout(resolve, 2000))
    } finally {
      for (const burner of burners) burner.kill('SIGKILL')
    }
    const suspicions = [a, b, c].flatMap((p, i) => p.events.slice(marks[i]).filter(e => e.type === 'suspect'))
    const refutations = [a, b, c].flatMap((p, i) => p.events.slice(marks[i]).filter(e => e.type === 'refuted'))
    expect(suspicions.length).toBeGreaterThan(0) // the pauses were long enough to be noticed
    expect(refutations.length).toBe(suspicions.length) // and every suspicion was disproved
    for (const [i, p] of [a, b, c].entries()) {
      const events = p.events.slice(marks[i])
      expect(events.filter(e => e.type === 'view' || e.type === 'excluded'), p.name).toEqual([])
      expect(p.lastView()?.epoch).toBe(epoch)
    }
  })
})
