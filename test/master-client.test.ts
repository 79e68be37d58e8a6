/**
 * The master-following client against a scripted EndpointSource and real HTTP servers on
 * 127.0.0.1: it follows the master's URL, retries only requests marked safe, within a budget,
 * and says clearly when there is no master.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { followMaster, InvalidOptionError, NoMasterError, type MasterClient } from '../src/index.js'
import { makeView, type View } from '../src/core/view.js'
import type { EndpointSource, RegistrySnapshot } from '../src/registry/source.js'
import { RegistryTable } from '../src/registry/table.js'

/** A source whose view and endpoints a test sets by hand. */
class ScriptedSource implements EndpointSource {
  readonly cluster = 'scripted'
  view: View | undefined
  private readonly table = new RegistryTable()
  private readonly listeners = new Set<() => void>()
  private version = 0

  /** Members in view order, each with its endpoints. */
  set (members: Array<[string, Record<string, string>]>): void {
    this.view = makeView(++this.version, members.map(([id], i) => ({ id, name: id, incarnation: 1, joinEpoch: i, addrs: [], meta: {} })))
    for (const [id, e] of members) this.table.merge(id, { i: 1, v: this.version, e, s: 0, m: null })
    for (const l of [...this.listeners]) l()
  }

  get listenerCount (): number { return this.listeners.size }
  registry (): RegistrySnapshot { return this.table.snapshot(this.cluster, this.view) }
  endpoints (service: string): string[] { return this.table.endpoints(this.view, service) }
  masterEndpoint (service: string): string | undefined { return this.table.masterEndpoint(this.view, service) }
  onRegistryChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}

const servers: Server[] = []
const clients: MasterClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await Promise.all(servers.splice(0).map(async s => { s.closeAllConnections(); if (s.listening) { s.close(); await once(s, 'close') } }))
})

/** An HTTP server answering `status` with its name; returns its URL. */
async function server (name: string, status = 200): Promise<{ url: string, server: Server, hits: () => number }> {
  let hits = 0
  const s = createServer((_req, res) => { hits++; res.writeHead(status, { 'content-type': 'text/plain' }).end(name) })
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  servers.push(s)
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}/`, server: s, hits: () => hits }
}

function client (source: EndpointSource, opts = {}): MasterClient {
  const c = followMaster(source, 'http', opts)
  clients.push(c)
  return c
}

async function kill (s: Server): Promise<void> {
  s.closeAllConnections()
  s.close()
  await once(s, 'close')
}

describe('following the master', () => {
  it('resolves the master URL, sends requests there, and reports changes', async () => {
    const a = await server('a')
    const b = await server('b')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }], ['b', { http: b.url }]])
    const c = client(source)
    expect(c.url).toBe(a.url)
    expect(await (await c.fetch('/x')).text()).toBe('a')
    expect(c.lastUrl).toBe(a.url)
    const changes: Array<string | undefined> = []
    c.on('change', ch => changes.push(ch.url))
    source.set([['b', { http: b.url }]])
    expect(c.url).toBe(b.url)
    expect(await (await c.fetch('/x')).text()).toBe('b')
    source.set([['b', { http: b.url }]]) // same master: no change event
    expect(changes).toEqual([b.url])
  })

  it('retries a safe request on the new master when the old one dies mid-traffic; an unsafe one fails', async () => {
    const a = await server('a')
    const b = await server('b')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }], ['b', { http: b.url }]])
    const c = client(source)
    await kill(a.server)
    await expect(c.fetch('/order', { method: 'POST', body: 'x' })).rejects.toThrow(TypeError) // fetch's network error
    // the view without "a" arrives 150 ms after the failure
    const switched = new Promise<void>(resolve => setTimeout(() => { source.set([['b', { http: b.url }]]); resolve() }, 150))
    const t0 = Date.now()
    const res = await c.fetch('/order', { retrySafe: true })
    await switched
    expect(await res.text()).toBe('b')
    expect(c.lastUrl).toBe(b.url)
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it('retries on 503 from a master stepping down, and gives the last answer when the budget runs out', async () => {
    const a = await server('a', 503)
    const b = await server('b')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }], ['b', { http: b.url }]])
    const c = client(source)
    expect((await c.fetch('/')).status).toBe(503) // not marked safe: the first answer stands
    const t0 = Date.now()
    const last = await c.fetch('/', { retrySafe: true, retryBudgetMs: 300 })
    const took = Date.now() - t0
    expect(last.status).toBe(503)
    expect(a.hits()).toBeGreaterThan(2) // retried with back-off, bounded
    expect(a.hits()).toBeLessThan(40)
    expect(took).toBeGreaterThanOrEqual(250)
    expect(took).toBeLessThan(3000)
    setTimeout(() => source.set([['b', { http: b.url }]]), 100)
    expect(await (await c.fetch('/', { retrySafe: true })).text()).toBe('b')
  })

  it('gives up when the failure continues past the budget, with the network error', async () => {
    const a = await server('a')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }]])
    const c = client(source)
    await kill(a.server)
    const t0 = Date.now()
    await expect(c.fetch('/', { retrySafe: true, retryBudgetMs: 200 })).rejects.toThrow(TypeError)
    expect(Date.now() - t0).toBeLessThan(3000)
  })
})

describe('no master', () => {
  it('says why: no view, nobody offers the service, or the coordinator does not', async () => {
    const source = new ScriptedSource()
    const c = client(source, { noMasterTimeoutMs: 100 })
    await expect(c.fetch('/')).rejects.toThrow(/no view of cluster "scripted" yet/)
    source.set([['a', { other: 'http://127.0.0.1:1/' }]])
    await expect(c.fetch('/')).rejects.toThrow(/no member of the view .* offers it/)
    source.set([['a', {}], ['b', { http: 'http://127.0.0.1:1/' }]])
    const err = await c.waitForMaster().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NoMasterError)
    expect((err as NoMasterError).code).toBe('ERR_NO_MASTER')
    expect((err as Error).message).toMatch(/no master for service "http": the coordinator \(a\) does not offer it/)
  })

  it('waitForMaster resolves when a master appears later', async () => {
    const source = new ScriptedSource()
    const c = client(source, { noMasterTimeoutMs: 5000 })
    setTimeout(() => source.set([['a', { http: 'http://127.0.0.1:9/' }]]), 50)
    expect(await c.waitForMaster()).toBe('http://127.0.0.1:9/')
  })

  it('close() rejects pending waits and unsubscribes from the source', async () => {
    const source = new ScriptedSource()
    const c = client(source)
    expect(source.listenerCount).toBe(1)
    const pending = c.waitForMaster()
    c.close()
    await expect(pending).rejects.toThrow(NoMasterError)
    expect(source.listenerCount).toBe(0)
    c.close() // idempotent
  })
})

describe('bad input', () => {
  const source = new ScriptedSource()
  const cases: Array<[string, () => unknown, string]> = [
    ['a bad service name', () => followMaster(source, 'no spaces'), 'service'],
    ['a negative noMasterTimeoutMs', () => followMaster(source, 'http', { noMasterTimeoutMs: -1 }), 'noMasterTimeoutMs'],
    ['a retryBudgetMs that is not a number', () => followMaster(source, 'http', { retryBudgetMs: '5' as never }), 'retryBudgetMs']
  ]
  for (const [label, make, option] of cases) {
    it(`rejects ${label}`, () => {
      let caught: unknown
      try { make() } catch (err) { caught = err }
      expect(caught).toBeInstanceOf(InvalidOptionError)
      expect((caught as InvalidOptionError).option).toBe(option)
    })
  }
})
