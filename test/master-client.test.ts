/**
 * The master-following client against a scripted EndpointSource and real HTTP servers on
 * 127.0.0.1: it follows the master's URL, retries only requests marked safe, within a budget,
 * and says clearly when there is no master.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { createMember, createObserver, followMaster, InvalidOptionError, NoMasterError, NotRunningError, type MasterClient, type MasterChange } from '../src/index.js'
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

  private readonly stopListeners = new Set<() => void>()
  stopped = false
  /** The source stops, as a member or observer does. */
  stop (): void {
    this.stopped = true
    for (const l of [...this.stopListeners]) l()
  }

  onStop (listener: () => void): () => void {
    this.stopListeners.add(listener)
    return () => { this.stopListeners.delete(listener) }
  }

  get stopListenerCount (): number { return this.stopListeners.size }
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

})

/** An HTTP server that answers every request with the path it was asked for. */
async function echoServer (): Promise<{ origin: string, paths: string[] }> {
  const paths: string[] = []
  const s = createServer((req, res) => { paths.push(req.url ?? ''); res.end(req.url) })
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  servers.push(s)
  return { origin: `http://127.0.0.1:${(s.address() as { port: number }).port}`, paths }
}

describe('paths', () => {
  it('resolve against the master\'s URL exactly as new URL(path, url) does', async () => {
    const { origin } = await echoServer()
    const source = new ScriptedSource()
    const base = `${origin}/api/`
    source.set([['a', { http: base }]])
    const c = client(source)
    const cases: Array<[string, string]> = [
      ['x', '/api/x'], ['/x', '/x'], ['x/y?q=1#frag', '/api/x/y?q=1'], ['', '/api/'], ['../up', '/up'], ['?only=query', '/api/?only=query'], ['./a%20b', '/api/a%20b']
    ]
    for (const [path, expected] of cases) {
      expect(new URL(path, base).pathname + new URL(path, base).search, path).toBe(expected) // the rule, as the URL parser has it
      expect(await (await c.fetch(path)).text(), path).toBe(expected)
    }
    // without a trailing slash the last segment is replaced, as new URL does
    source.set([['a', { http: `${origin}/api` }]])
    expect(await (await c.fetch('x')).text()).toBe('/x')
  })

  it('an absolute or protocol-relative URL is refused before anything is sent: it would leave the master', async () => {
    const { origin, paths } = await echoServer()
    const source = new ScriptedSource()
    source.set([['a', { http: `${origin}/api/` }]])
    const c = client(source)
    const leaving: unknown[] = [
      'https://elsewhere.invalid/x', `${origin}/api/x`, 'HTTP://elsewhere.invalid/', 'mailto:ops@elsewhere.invalid', 'http:x', 'javascript:alert(1)',
      '//elsewhere.invalid/x', '\\\\elsewhere.invalid\\x', '/\\elsewhere.invalid', ' //elsewhere.invalid/', '/\t/elsewhere.invalid/', '\n//elsewhere.invalid',
      new URL('/x', origin), 42
    ]
    for (const path of leaving) {
      const err = await c.fetch(path as string).catch((e: unknown) => e)
      expect(err, String(path)).toBeInstanceOf(InvalidOptionError)
      expect((err as InvalidOptionError).option).toBe('path')
    }
    expect(paths).toEqual([])
    // "a:b" is a URL of scheme "a" to the URL parser, so refused; "./a:b" is the path
    await expect(c.fetch('a:b')).rejects.toBeInstanceOf(InvalidOptionError)
    expect(await (await c.fetch('./a:b')).text()).toBe('/api/a:b')
    expect(await (await c.fetch('/a:b')).text()).toBe('/a:b')
    expect(await (await c.fetch('x//y')).text()).toBe('/api/x//y')
  })
})

describe('the client\'s lifetime', () => {
  it('close() rejects pending waits with NotRunningError and unsubscribes from the source', async () => {
    const source = new ScriptedSource()
    const c = client(source)
    expect(source.listenerCount).toBe(1)
    expect(source.stopListenerCount).toBe(1)
    const pending = c.waitForMaster()
    const waiting = c.fetch('/')
    c.close()
    await expect(pending).rejects.toBeInstanceOf(NotRunningError)
    await expect(waiting).rejects.toBeInstanceOf(NotRunningError)
    expect(source.listenerCount).toBe(0)
    expect(source.stopListenerCount).toBe(0)
    expect(c.closed).toBe(true)
    c.close() // idempotent
  })

  it('after close(), fetch and waitForMaster reject with NotRunningError and iterators end, also with a master known', async () => {
    const a = await server('a')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }]])
    const c = client(source)
    const seen: MasterChange[] = []
    const running = (async () => { for await (const change of c.changes()) seen.push(change) })()
    c.close()
    await running // ends: a hang here fails the test by its timeout
    await expect(c.fetch('/')).rejects.toBeInstanceOf(NotRunningError)
    await expect(c.fetch('/', { retrySafe: true })).rejects.toBeInstanceOf(NotRunningError)
    await expect(c.waitForMaster()).rejects.toBeInstanceOf(NotRunningError)
    const later: MasterChange[] = []
    for await (const change of c.changes()) later.push(change)
    expect([seen, later]).toEqual([[], []])
    expect(a.hits()).toBe(0)
  })

  it('close() aborts a request waiting for its response, and a safe request between retries', async () => {
    let held = 0
    const hanging = createServer(() => { held++ }) // never answers
    hanging.listen(0, '127.0.0.1')
    await once(hanging, 'listening')
    servers.push(hanging)
    const source = new ScriptedSource()
    source.set([['a', { http: `http://127.0.0.1:${(hanging.address() as { port: number }).port}/` }]])
    const c = client(source)
    const inFlight = c.fetch('/slow')
    for (let i = 0; i < 200 && held === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(held).toBe(1)
    c.close()
    const err = await inFlight.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NotRunningError)
    expect((err as Error).cause).toMatchObject({ name: 'AbortError' })

    const down = await server('down', 503)
    const source2 = new ScriptedSource()
    source2.set([['a', { http: down.url }]])
    const c2 = client(source2)
    const retrying = c2.fetch('/', { retrySafe: true, retryBudgetMs: 60_000 })
    for (let i = 0; i < 200 && down.hits() < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(down.hits()).toBeGreaterThanOrEqual(2)
    const t0 = Date.now()
    c2.close()
    await expect(retrying).rejects.toBeInstanceOf(NotRunningError)
    expect(Date.now() - t0).toBeLessThan(1000) // at once, not at the end of the 60 s budget
  })

  it('a response returned before close() can still be read', async () => {
    const a = await server('a')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }]])
    const c = client(source)
    const res = await c.fetch('/')
    c.close()
    expect(await res.text()).toBe('a')
  })

  it('when the source stops the client closes: requests reject with NotRunningError, iterators end', async () => {
    const a = await server('a')
    const source = new ScriptedSource()
    source.set([['a', { http: a.url }]])
    const c = client(source)
    const running = (async () => { for await (const _ of c.changes()) { /* none */ } })()
    source.stop()
    await running
    expect(c.closed).toBe(true)
    await expect(c.fetch('/')).rejects.toBeInstanceOf(NotRunningError)
    expect(source.listenerCount).toBe(0)
    // a stopped source cannot be followed
    let caught: unknown
    try { followMaster(source, 'http') } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(NotRunningError)
  })

  it('a real member and a real observer as sources: their stop closes the client', async () => {
    const a = await server('a')
    const m = await createMember({ cluster: `mc-${process.pid}`, listen: '127.0.0.1:0', endpoints: { http: a.url } })
    const o = await createObserver({ cluster: `mc-${process.pid}`, seeds: [m.addresses[0] as string], renewIntervalMs: 100 })
    try {
      const viaMember = client(m)
      const viaObserver = client(o)
      expect(await viaMember.waitForMaster({ timeoutMs: 10_000 })).toBe(a.url)
      expect(await viaObserver.waitForMaster({ timeoutMs: 10_000 })).toBe(a.url)
      expect(await (await viaObserver.fetch('/')).text()).toBe('a')
      const observerChanges = (async () => { for await (const _ of viaObserver.changes()) { /* none */ } })()
      await o.stop()
      await observerChanges
      expect(viaObserver.closed).toBe(true)
      await expect(viaObserver.fetch('/')).rejects.toBeInstanceOf(NotRunningError)
      expect(() => followMaster(o, 'http')).toThrow(NotRunningError)
      expect(viaMember.closed).toBe(false)
      const memberChanges = (async () => { for await (const _ of viaMember.changes()) { /* none */ } })()
      await m.stop()
      await memberChanges
      expect(viaMember.closed).toBe(true)
      await expect(viaMember.fetch('/')).rejects.toBeInstanceOf(NotRunningError)
      expect(() => followMaster(m, 'http')).toThrow(NotRunningError)
    } finally {
      await o.stop()
      await m.stop()
    }
  })
})

describe('bad input', () => {
  const source = new ScriptedSource()
  const cases: Array<[string, () => unknown, string]> = [
    ['a bad service name', () => followMaster(source, 'no spaces'), 'service'],
    ['a negative noMasterTimeoutMs', () => followMaster(source, 'http', { noMasterTimeoutMs: -1 }), 'noMasterTimeoutMs'],
    ['a retryBudgetMs that is not a number', () => followMaster(source, 'http', { retryBudgetMs: '5' as never }), 'retryBudgetMs'],
    ['an unknown option', () => followMaster(source, 'http', { retryBudget: 5 } as never), 'retryBudget'],
    ['an option of fetch given to the client', () => followMaster(source, 'http', { retrySafe: true } as never), 'retrySafe']
  ]
  for (const [label, make, option] of cases) {
    it(`rejects ${label}`, () => {
      let caught: unknown
      try { make() } catch (err) { caught = err }
      expect(caught).toBeInstanceOf(InvalidOptionError)
      expect((caught as InvalidOptionError).option).toBe(option)
    })
  }

  it('names the option an unknown key was likely meant to be', () => {
    let caught: unknown
    try { followMaster(source, 'http', { noMasterTimeout: 100 } as never) } catch (err) { caught = err }
    expect((caught as Error).message).toContain('did you mean "noMasterTimeoutMs"?')
  })
})
