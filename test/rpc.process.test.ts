/**
 * Request/response between member processes (the benchmark agent, dist/src/bench/agent.js, which
 * serves "whoami" with its id and the fencing epoch of its view): requests to the master across
 * a SIGKILL of the master, with and without retry; a hung master (SIGSTOP) never answers as
 * master after its resume; requestAll with a hung member resolves within its timeout, that
 * member marked.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { agreed, MemberProcess, waitUntil, type MemberEvent } from '../src/testing/member-process.js'

const AGENT = fileURLToPath(new URL('../dist/src/bench/agent.js', import.meta.url))
const procs: MemberProcess[] = []
afterEach(async () => {
  await Promise.all(procs.splice(0).map(async p => { if (p.running) p.kill('SIGCONT'); await p.stop(3000) }))
})

interface Requested extends MemberEvent {
  count: number
  ok: number
  errors: Record<string, number>
  servedBy: Record<string, { count: number, epochs: number[] }>
}
interface Entry { id: string, ok: boolean, reason?: string, error?: string }

let n = 0
async function group (size: number): Promise<MemberProcess[]> {
  const cluster = `rpcp-${process.pid}-${++n}`
  const started: MemberProcess[] = []
  for (let i = 0; i < size; i++) {
    const p = new MemberProcess({ cluster, name: String.fromCharCode(97 + i), seeds: started.slice(0, 1).map(s => s.address as string), script: AGENT, stdin: true })
    procs.push(p)
    started.push(await p.waitReady(30_000))
    await waitUntil(() => agreed(started, started.length), 20_000, `${started.length} members to agree`)
  }
  return started
}

async function ask<T extends MemberEvent> (p: MemberProcess, cmd: Record<string, unknown>, reply: string, timeoutMs: number): Promise<T> {
  const mark = p.events.length
  p.command(cmd)
  return await p.waitFor(e => e.type === reply, timeoutMs, mark) as T
}

/** Requests to the master from `client` at 500/s while the master `a` is SIGKILLed 1 s in. */
async function acrossKill (retry: boolean): Promise<{ r: Requested, a: MemberProcess, b: MemberProcess }> {
  const [a, b, c] = await group(3) as [MemberProcess, MemberProcess, MemberProcess]
  expect(c.lastView()?.coordinator).toBe(a.id)
  const mark = c.events.length
  c.command({ cmd: 'request', target: 'master', count: 1500, rate: 500, retry, timeoutMs: 5000 })
  await new Promise(resolve => setTimeout(resolve, 1000))
  a.kill('SIGKILL')
  const r = await c.waitFor(e => e.type === 'requested', 30_000, mark) as Requested
  return { r, a, b }
}

describe('request/response between processes', () => {
  it('request("master") across a SIGKILL of the master: answered by the old master, then by the next with a higher epoch; only requests in flight at the kill fail, with TargetLostError', async () => {
    const { r, a, b } = await acrossKill(false)
    const before = r.servedBy[a.id as string]
    const after = r.servedBy[b.id as string]
    expect(before?.count).toBeGreaterThan(100)
    expect(after?.count).toBeGreaterThan(100)
    expect(Math.min(...(after?.epochs ?? []))).toBeGreaterThan(Math.max(...(before?.epochs ?? [])))
    expect(Object.keys(r.servedBy).sort()).toEqual([a.id, b.id].sort())
    // The requests lost with the master: rejected by name, never left hanging, never a timeout.
    expect(Object.keys(r.errors).filter(name => name !== 'TargetLostError')).toEqual([])
    expect(r.ok + (r.errors.TargetLostError ?? 0)).toBe(1500)
  }, 90_000)

  it('with retry: every request is answered, the lost ones by the next master', async () => {
    const { r, a, b } = await acrossKill(true)
    expect(r.errors).toEqual({})
    expect(r.ok).toBe(1500)
    expect(r.servedBy[a.id as string]?.count).toBeGreaterThan(100)
    expect(r.servedBy[b.id as string]?.count).toBeGreaterThan(100)
  }, 90_000)

  it('a master SIGSTOPped until it is excluded never answers a request as master after SIGCONT', async () => {
    const [a, b, c] = await group(3) as [MemberProcess, MemberProcess, MemberProcess]
    const mark = c.events.length
    c.command({ cmd: 'request', target: 'master', count: 4000, rate: 500, retry: true, timeoutMs: 10_000 })
    await new Promise(resolve => setTimeout(resolve, 1000))
    a.kill('SIGSTOP')
    await waitUntil(() => c.lastView()?.coordinator === b.id && b.lastView()?.coordinator === b.id, 20_000, 'b to take over')
    // c sends to b once its view names b; b's first answers follow that view by a few requests.
    let servedB = 0
    for (let i = 0; i < 50 && servedB === 0; i++) {
      servedB = (await ask<MemberEvent & { count: number }>(b, { cmd: 'served' }, 'served', 10_000)).count
      if (servedB === 0) await new Promise(resolve => setTimeout(resolve, 100))
    }
    expect(servedB).toBeGreaterThan(0)
    const resumedAt = Date.now()
    a.kill('SIGCONT')
    const r = await c.waitFor(e => e.type === 'requested', 60_000, mark) as Requested
    const servedA = await ask<MemberEvent & { count: number, lastAt: number }>(a, { cmd: 'served' }, 'served', 10_000)
    // a answered before its stop only: the requests it found queued at its resume were refused
    // (its lease had lapsed) and went to b; every request was answered once.
    expect(servedA.lastAt).toBeLessThan(resumedAt)
    expect(r.errors).toEqual({})
    expect(r.ok).toBe(4000)
    // Answers of a that c took: all it ran, but for a reply still queued in a at the SIGSTOP
    // (c had sent that request to b by the time it arrived).
    const taken = r.servedBy[a.id as string]?.count ?? 0
    expect(taken).toBeGreaterThan(0)
    expect(servedA.count - taken).toBeGreaterThanOrEqual(0)
    expect(servedA.count - taken).toBeLessThanOrEqual(5)
  }, 120_000)

  it('requestAll with a hung member (SIGSTOP): resolves within the timeout, that member marked; majority and first do not wait for it', async () => {
    const [a, b, c] = await group(3) as [MemberProcess, MemberProcess, MemberProcess]
    const all0 = await ask<MemberEvent & { ms: number, entries: Entry[] }>(a, { cmd: 'requestAll', mode: 'all', timeoutMs: 5000 }, 'requestedAll', 10_000)
    expect(all0.entries.map(e => e.ok)).toEqual([true, true, true])
    c.kill('SIGSTOP')
    const all = await ask<MemberEvent & { ms: number, entries: Entry[] }>(a, { cmd: 'requestAll', mode: 'all', timeoutMs: 1500 }, 'requestedAll', 10_000)
    expect(all.ms).toBeLessThan(1500 + 500)
    const byId = new Map(all.entries.map(e => [e.id, e]))
    expect(byId.get(a.id as string)?.ok).toBe(true)
    expect(byId.get(b.id as string)?.ok).toBe(true)
    const hung = byId.get(c.id as string)
    expect(hung?.ok).toBe(false)
    expect(['timeout', 'suspected', 'left']).toContain(hung?.reason)
    // The same view, c still in it or not: a strict majority answers without c.
    const majority = await ask<MemberEvent & { ms: number, entries: Entry[] }>(a, { cmd: 'requestAll', mode: 'majority', timeoutMs: 5000 }, 'requestedAll', 10_000)
    expect(majority.entries.filter(e => e.ok).length).toBeGreaterThanOrEqual(2)
    expect(majority.ms).toBeLessThan(1000)
    const first = await ask<MemberEvent & { ms: number, entries: Entry[] }>(a, { cmd: 'requestAll', mode: 'first', timeoutMs: 5000 }, 'requestedAll', 10_000)
    expect(first.entries.some(e => e.ok)).toBe(true)
    expect(first.ms).toBeLessThan(1000)
  }, 90_000)
})
