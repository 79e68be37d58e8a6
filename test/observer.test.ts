/**
 * An observer's lifetime as an embedder sees it: misspelt options are refused, waits and
 * iterators end when it stops, it is never restarted, and a stop() during start() leaves
 * nothing listening. Real libp2p on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import { createMember, createObserver, InvalidOptionError, Observer, NotRunningError, type Member, type View } from '../src/index.js'

const running: Array<{ stop: () => Promise<void> }> = []
let n = 0
const cluster = (): string => `obs-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all(running.splice(0).map(async m => await m.stop()))
})

/** A seed nobody listens on (a closed port of 127.0.0.1): the observer waits for ever. */
const NOBODY = '127.0.0.1:1'

async function observer (seeds: string[] = [NOBODY], c = cluster()): Promise<Observer> {
  const o = await createObserver({ cluster: c, seeds, renewIntervalMs: 100 })
  running.push(o)
  return o
}

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise(resolve => s.close(resolve))
  return port
}

/** Whether 127.0.0.1:port can be bound now (nobody listens on it). */
async function bindable (port: number): Promise<boolean> {
  const s = createServer()
  return await new Promise(resolve => {
    s.once('error', () => { resolve(false) })
    s.listen(port, '127.0.0.1', () => { s.close(() => { resolve(true) }) })
  })
}

describe('observer options', () => {
  it('an unknown key is refused with the key it was likely meant to be', () => {
    const cases: Array<[Record<string, unknown>, string, string | undefined]> = [
      [{ cluster: 'x', seed: [NOBODY] }, 'seed', 'seeds'],
      [{ cluster: 'x', seeds: [NOBODY], renewInterval: 100 }, 'renewInterval', 'renewIntervalMs'],
      [{ cluster: 'x', seeds: [NOBODY], clusterkey: 'k' }, 'clusterkey', 'clusterKey'],
      // member options that mean nothing to an observer are refused, not ignored
      [{ cluster: 'x', seeds: [NOBODY], masters: 2 }, 'masters', undefined],
      [{ cluster: 'x', seeds: [NOBODY], endpoints: {} }, 'endpoints', undefined]
    ]
    for (const [options, option, hint] of cases) {
      let caught: unknown
      try { new Observer(options as never) } catch (err) { caught = err } // eslint-disable-line no-new
      expect(caught, option).toBeInstanceOf(InvalidOptionError)
      expect((caught as InvalidOptionError).option).toBe(option)
      if (hint === undefined) expect((caught as Error).message).not.toContain('did you mean')
      else expect((caught as Error).message).toContain(`did you mean "${hint}"?`)
    }
  })
})

describe('after stop()', () => {
  it('a pending waitForView rejects with NotRunningError, with or without a timeout', async () => {
    const o = await observer()
    const pending = [o.waitForView(), o.waitForView(v => v.members.length > 3, { timeoutMs: 60_000 })].map(async p => await p.then(() => 'resolved', (err: unknown) => err))
    await o.stop()
    for (const outcome of await Promise.all(pending)) expect(outcome).toBeInstanceOf(NotRunningError)
  })

  it('start(), waitForView() and onRegistryChange() throw NotRunningError; stop() is idempotent', async () => {
    const o = await observer()
    await o.stop()
    expect(o.stopped).toBe(true)
    expect(o.running).toBe(false)
    await expect(o.start()).rejects.toBeInstanceOf(NotRunningError)
    await expect(o.waitForView()).rejects.toBeInstanceOf(NotRunningError)
    expect(() => o.onRegistryChange(() => {})).toThrow(NotRunningError)
    await o.stop()
  })

  it('an observer stopped before it started cannot be started', async () => {
    const o = new Observer({ cluster: cluster(), seeds: [NOBODY] })
    await o.stop()
    await expect(o.start()).rejects.toBeInstanceOf(NotRunningError)
  })

  it('views() running when it stops ends; started after, ends at once', async () => {
    const m: Member = await createMember({ cluster: cluster(), listen: '127.0.0.1:0' })
    running.push(m)
    const o = await observer([m.addresses[0] as string], m.cluster)
    const seen: View[] = []
    const drained = (async () => { for await (const { view } of o.views()) seen.push(view) })()
    await o.waitForView(v => v.members.length === 1, { timeoutMs: 10_000 })
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(seen[0]?.members.map(x => x.id)).toEqual([m.id])
    await o.stop()
    await drained // ends: a hang here fails the test by its timeout
    let after = 0
    for await (const _ of o.views()) after++
    expect(after).toBe(0)
  })

  it('stop() during start() makes start() reject, and leaves nothing listening', async () => {
    const port = await freePort()
    const o = new Observer({ cluster: cluster(), seeds: [NOBODY], listen: `127.0.0.1:${port}` })
    const onStop: string[] = []
    o.onStop(() => onStop.push('stopped'))
    const starting = o.start()
    const stopping = o.stop()
    await expect(starting).rejects.toBeInstanceOf(NotRunningError)
    await stopping
    expect(o.running).toBe(false)
    expect(o.stopped).toBe(true)
    expect(onStop).toEqual(['stopped'])
    expect(await bindable(port)).toBe(true)
    await expect(o.waitForView()).rejects.toBeInstanceOf(NotRunningError)
    await expect(o.start()).rejects.toBeInstanceOf(NotRunningError)
  })

  it('a stop() leaves its listen port free', async () => {
    const port = await freePort()
    const o = await createObserver({ cluster: cluster(), seeds: [NOBODY], listen: `127.0.0.1:${port}`, renewIntervalMs: 50 })
    expect(await bindable(port)).toBe(false)
    await o.stop()
    expect(await bindable(port)).toBe(true)
  })
})
