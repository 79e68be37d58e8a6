/**
 * Reliable broadcast between member processes (the benchmark agent, dist/src/bench/agent.js):
 * three senders blast while a receiver is SIGKILLed and a new member joins. Every member that
 * stays delivers each sender's messages in order, none lost, none twice, each tagged with the
 * view it was sent in; the joiner gets a gap-free tail of each stream.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { agreed, MemberProcess, waitUntil, type MemberEvent } from '../src/testing/member-process.js'

const AGENT = fileURLToPath(new URL('../dist/src/bench/agent.js', import.meta.url))
const procs: MemberProcess[] = []
afterEach(async () => { await Promise.all(procs.splice(0).map(async p => await p.stop())) })

interface Digest { count: number, first: number, last: number, gaps: number, wrongView: number }

async function start (cluster: string, name: string, seeds: readonly MemberProcess[]): Promise<MemberProcess> {
  const p = new MemberProcess({ cluster, name, seeds: seeds.map(s => s.address as string), script: AGENT, stdin: true })
  procs.push(p)
  await p.waitReady(30_000)
  return p
}

async function digestOf (p: MemberProcess): Promise<Record<string, Digest>> {
  const mark = p.events.length
  p.command({ cmd: 'digest' })
  const e = await p.waitFor(ev => ev.type === 'digest', 10_000, mark) as MemberEvent & { senders: Record<string, Digest> }
  return e.senders
}

describe('reliable broadcast between processes', () => {
  it('3 senders x 10,000 while a receiver is SIGKILLed and a member joins: in order, complete, once, in the view sent in', async () => {
    const cluster = `rbp-${process.pid}`
    const group: MemberProcess[] = []
    for (const name of ['a', 'b', 'c', 'd']) {
      group.push(await start(cluster, name, group.slice(0, 1)))
      await waitUntil(() => agreed(group, group.length), 20_000, `${group.length} members to agree`)
    }
    const [a, b, c, d] = group as [MemberProcess, MemberProcess, MemberProcess, MemberProcess]
    const senders = [a, b, c]
    const COUNT = 10_000
    const marks = senders.map(s => s.events.length)
    // paced so the blast outlasts the kill and the join (about 5 s each)
    for (const s of senders) s.command({ cmd: 'blast', count: COUNT, size: 100, rate: 2000 })
    await new Promise(resolve => setTimeout(resolve, 1000))
    d.kill('SIGKILL')
    const j = await start(cluster, 'j', [a])
    const survivors = [a, b, c, j]
    await waitUntil(() => agreed(survivors, 4), 20_000, 'the four to agree')
    await Promise.all(senders.map(async (s, i) => await s.waitFor(e => e.type === 'blasted', 60_000, marks[i])))
    const ids = senders.map(s => s.id as string)
    let digests: Array<Record<string, Digest>> = []
    const deadline = Date.now() + 30_000
    for (;;) {
      digests = await Promise.all(survivors.map(digestOf))
      const complete = digests.every((dg, k) => ids.every(id => id === survivors[k]?.id || dg[id]?.last === COUNT - 1))
      if (complete || Date.now() > deadline) break
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    for (const [k, dg] of digests.entries()) {
      const who = survivors[k] as MemberProcess
      for (const id of ids) {
        if (id === who.id) continue
        const got = dg[id] as Digest
        expect(got, `${who.id} heard ${id}`).toBeDefined()
        expect(got.gaps, `${who.id}: ${id}'s stream has no loss, duplicate or reorder`).toBe(0)
        expect(got.wrongView, `${who.id}: ${id}'s messages delivered in the view sent in`).toBe(0)
        expect(got.last).toBe(COUNT - 1)
        if (who === j) expect(got.count).toBe(COUNT - got.first) // a gap-free tail from its join on
        else expect([got.first, got.count]).toEqual([0, COUNT])
      }
    }
  }, 180_000)
})
