/**
 * A master-following client against real server processes (examples/http-server) on
 * 127.0.0.1: it follows the master across a SIGKILL and a graceful stop, and an observer that
 * started before any server never becomes master and is never in a view.
 */
import { afterEach, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { MemberProcess, freePort, waitUntil } from '../src/testing/member-process.js'
import { createObserver, followMaster, type Observer } from '../src/index.js'

const SERVER = fileURLToPath(new URL('../dist/examples/http-server.js', import.meta.url))
const procs: MemberProcess[] = []
const observers: Observer[] = []

afterEach(async () => {
  await Promise.all(observers.splice(0).map(async o => await o.stop()))
  await Promise.all(procs.splice(0).map(async p => { if (p.running) p.kill('SIGKILL'); await p.exited }))
})


const viewSize = (p: MemberProcess): number => (([...p.events].reverse().find(e => e.type === 'view')?.members as unknown[] | undefined) ?? []).length

async function servers (cluster: string, count: number, firstListen?: string): Promise<MemberProcess[]> {
  const group: MemberProcess[] = []
  for (let i = 0; i < count; i++) {
    const port = await freePort()
    const p = new MemberProcess({ cluster, name: `s${i + 1}`, seeds: group.map(g => g.address as string), script: SERVER, extraArgs: ['--port', String(port)], ...(i === 0 && firstListen !== undefined ? { listen: firstListen } : {}) })
    procs.push(p)
    await p.waitReady()
    group.push(p)
    await waitUntil(() => group.every(g => viewSize(g) === group.length), 15_000, 'the servers to agree')
  }
  return group
}

it('the client follows the master across a SIGKILL and a graceful stop; no safe call fails', async () => {
  const cluster = `client-${process.pid}`
  const [s1, s2, s3] = await servers(cluster, 3) as [MemberProcess, MemberProcess, MemberProcess]
  const observer = await createObserver({ cluster, seeds: [s2.address as string, s3.address as string], renewIntervalMs: 200 })
  observers.push(observer)
  const client = followMaster(observer, 'http', { retryBudgetMs: 5000 })
  await client.waitForMaster()
  const answers: string[] = []
  const failures: unknown[] = []
  let stop = false
  const loop = (async () => {
    while (!stop) {
      try {
        const res = await client.fetch('/', { retrySafe: true })
        answers.push((await res.json() as { server: string }).server)
      } catch (err) { failures.push(err) }
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  })()
  try {
    await waitUntil(() => answers.includes('s1'), 10_000, 'answers from s1')
    s1.kill('SIGKILL')
    await waitUntil(() => answers.at(-1) === 's2', 10_000, 'answers from s2 after the kill')
    expect(client.url).toBe((s2.ready()?.endpoints as Record<string, string> | undefined)?.http)
    expect(client.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    await s2.stop() // graceful: its route closes the port before the group hears of the leave
    await waitUntil(() => answers.at(-1) === 's3', 10_000, 'answers from s3 after the graceful stop')
  } finally {
    stop = true
    await loop
    client.close()
  }
  expect(failures).toEqual([])
  // answers move forward only: s1, then s2, then s3
  const order = answers.filter((a, i) => a !== answers[i - 1])
  expect(order).toEqual(['s1', 's2', 's3'])
}, 90_000)

it('an observer running before any server is never master, never in a view, and finds the master', async () => {
  const cluster = `oldest-${process.pid}`
  const listenPort = await freePort()
  const observer = await createObserver({ cluster, seeds: [`127.0.0.1:${listenPort}`], renewIntervalMs: 200 })
  observers.push(observer)
  // the observer is the oldest process of the cluster; the servers come later
  const [s1, s2] = await servers(cluster, 2, `127.0.0.1:${listenPort}`) as [MemberProcess, MemberProcess]
  const view = await observer.waitForView(v => v.members.length === 2, { timeoutMs: 15_000 })
  expect(view.members.map(m => m.name)).toEqual(['s1', 's2'])
  expect(view.members.some(m => m.id === observer.id)).toBe(false)
  for (const p of [s1, s2]) {
    const last = [...p.events].reverse().find(e => e.type === 'view')
    expect(last?.members).toEqual(['s1', 's2'])
  }
  const client = followMaster(observer, 'http')
  try {
    const res = await client.fetch('/', { retrySafe: true })
    expect((await res.json() as { server: string }).server).toBe('s1')
  } finally { client.close() }
}, 60_000)
