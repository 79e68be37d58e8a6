/**
 * Security with real libp2p members on 127.0.0.1: the cluster key (no key and a wrong key never
 * connect; the key never shows), cluster isolation with shared seeds (the handshake), and a
 * keyed observer.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { inspect } from 'node:util'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClusterKey, KeyFormatError, Member, createMember, createObserver, InvalidOptionError, type MemberOptions, type Observer } from '../src/index.js'
import { waitUntil } from '../src/testing/member-process.js'

const members: Member[] = []
const observers: Observer[] = []
let n = 0
const cluster = (): string => `sec-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all([...members.splice(0).map(async m => await m.stop()), ...observers.splice(0).map(async o => await o.stop())])
})

async function member (options: MemberOptions): Promise<Member> {
  const m = await createMember({ listen: '127.0.0.1:0', ...options })
  members.push(m)
  return m
}

const hostPort = (m: Member): string => {
  const match = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')
  return `${match?.[1]}:${match?.[2]}`
}

/** A keyed two-member cluster, settled. */
async function keyedPair (key: ClusterKey): Promise<{ name: string, a: Member, b: Member }> {
  const name = cluster()
  const a = await member({ cluster: name, name: 'a', clusterKey: key })
  const b = await member({ cluster: name, name: 'b', clusterKey: key, seeds: [hostPort(a)] })
  await waitUntil(() => a.view?.members.length === 2 && b.view?.members.length === 2, 10_000, 'the keyed pair to form')
  return { name, a, b }
}

describe('the cluster key', () => {
  it('parses what keygen writes, and refuses anything else without echoing it', () => {
    const key = ClusterKey.generate()
    const again = ClusterKey.parse(key.fileContents())
    expect(again.fingerprint).toBe(key.fingerprint)
    expect(ClusterKey.parse(key.fileBytes()).fingerprint).toBe(key.fingerprint)
    const secret = key.fileContents().split('\n')[2] as string
    for (const bad of ['', 'hello', key.fileContents().replace('/base16/', '/base64/'), key.fileContents().slice(0, 60), `${key.fileContents()}extra`]) {
      let caught: unknown
      try { ClusterKey.parse(bad) } catch (err) { caught = err }
      expect(caught).toBeInstanceOf(KeyFormatError)
      expect(caught).toBeInstanceOf(InvalidOptionError)
      expect((caught as InvalidOptionError).option).toBe('clusterKey')
      expect((caught as Error).message).not.toContain(secret.slice(0, 16))
      expect(inspect(caught)).not.toContain(secret.slice(0, 16))
    }
    expect(() => new Member({ cluster: 'x', clusterKey: 'not a key' })).toThrow(InvalidOptionError)
  })

  it('never shows in options, inspect, JSON or the error of a bad file', () => {
    const key = ClusterKey.generate()
    const secret = key.fileContents().split('\n')[2] as string
    const m = new Member({ cluster: 'x', clusterKey: key.fileContents() })
    for (const text of [inspect(m.options, { depth: 10 }), JSON.stringify(m.options), String(m.options.clusterKey), inspect(key)]) {
      expect(text).not.toContain(secret)
      expect(text).not.toContain(secret.slice(0, 16))
    }
    expect(String(key)).toBe(`[cluster key ${key.fingerprint}]`)
    const dir = mkdtempSync(join(tmpdir(), 'conclave-key-'))
    try {
      const path = join(dir, 'k')
      key.write(path)
      expect(ClusterKey.read(path).fingerprint).toBe(key.fingerprint)
      expect(() => { key.write(path) }).toThrow() // never overwrites
      expect(readFileSync(path, 'utf8')).toBe(key.fileContents())
      let caught: unknown
      try { ClusterKey.read(join(dir, 'missing')) } catch (err) { caught = err }
      expect((caught as InvalidOptionError).option).toBe('--key-file')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a member without the key, or with another key, never joins: the cluster view does not change', async () => {
    const key = ClusterKey.generate()
    const { name, a, b } = await keyedPair(key)
    const epoch = a.view?.id.epoch
    let changes = 0
    a.on('view', () => { changes++ })
    b.on('view', () => { changes++ })
    const tries: Array<MemberOptions['clusterKey']> = [undefined, ClusterKey.generate(), undefined, ClusterKey.generate()]
    for (const clusterKey of tries) {
      const outsider = await member({ cluster: name, name: 'outsider', seeds: [hostPort(a), hostPort(b)], ...(clusterKey !== undefined ? { clusterKey } : {}) })
      // With every seed failing (no connection completes), the outsider founds a group of its own.
      await waitUntil(() => outsider.view !== undefined, 10_000, 'the outsider to give up on the seeds')
      expect(outsider.view?.members.map(m => m.name)).toEqual(['outsider'])
      await outsider.stop()
    }
    expect(changes).toBe(0)
    expect(a.view?.id.epoch).toBe(epoch)
    expect(a.view?.members.map(m => m.name).sort()).toEqual(['a', 'b'])
    // A member with the key still joins.
    const c = await member({ cluster: name, name: 'c', clusterKey: key, seeds: [hostPort(a)] })
    await waitUntil(() => c.view?.members.length === 3 && a.view?.members.length === 3, 10_000, 'the keyed member to join')
  }, 60_000)

  it('an observer needs the key too', async () => {
    const key = ClusterKey.generate()
    const { name, a } = await keyedPair(key)
    const keyless = await createObserver({ cluster: name, seeds: [hostPort(a)], renewIntervalMs: 200 })
    observers.push(keyless)
    const keyed = await createObserver({ cluster: name, seeds: [hostPort(a)], renewIntervalMs: 200, clusterKey: key })
    observers.push(keyed)
    const view = await keyed.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    expect(view.members.length).toBe(2)
    // By now the keyless observer has had as many tries; it has seen nothing.
    await expect(keyless.waitForView(() => true, { timeoutMs: 1500 })).rejects.toThrow(/did not happen/)
  }, 30_000)
})

describe('cluster isolation', () => {
  it('a member of another cluster given our seeds is told so in the handshake and founds its own group', async () => {
    const ours = cluster()
    const a = await member({ cluster: ours, name: 'a' })
    const b = await member({ cluster: ours, name: 'b', seeds: [hostPort(a)] })
    await waitUntil(() => a.view?.members.length === 2 && b.view?.members.length === 2, 10_000, 'the pair to form')
    const epoch = a.view?.id.epoch
    const rejected: Array<{ address: string, cluster: string }> = []
    const stranger = await member({ cluster: `${ours}-other`, name: 'stranger', seeds: [hostPort(a)] })
    stranger.on('seed-rejected', r => rejected.push(r))
    await waitUntil(() => stranger.view !== undefined && rejected.length > 0, 10_000, 'the stranger to be turned away')
    expect(rejected[0]?.cluster).toBe(ours)
    expect(stranger.view?.members.map(m => m.name)).toEqual(['stranger'])
    await waitUntil(() => (a.dropped['handshake-foreign-cluster'] ?? 0) > 0, 5_000, 'the seed to count the foreign handshake')
    expect(stranger.dropped['seed-foreign-cluster']).toBeGreaterThan(0)
    expect(a.view?.id.epoch).toBe(epoch)
    expect(a.view?.members.map(m => m.name).sort()).toEqual(['a', 'b'])
  }, 30_000)

  it('two clusters given one shared seed list each form only their own view', async () => {
    const red = cluster()
    const blue = `${red}-blue`
    const r1 = await member({ cluster: red, name: 'r1' })
    const b1 = await member({ cluster: blue, name: 'b1' })
    const shared = [hostPort(r1), hostPort(b1)]
    const r2 = await member({ cluster: red, name: 'r2', seeds: shared })
    const b2 = await member({ cluster: blue, name: 'b2', seeds: shared })
    const r3 = await member({ cluster: red, name: 'r3', seeds: shared })
    const b3 = await member({ cluster: blue, name: 'b3', seeds: shared })
    const reds = [r1, r2, r3]
    const blues = [b1, b2, b3]
    await waitUntil(() => [...reds, ...blues].every(m => m.view?.members.length === 3), 20_000, 'both clusters to form')
    for (const m of reds) expect(m.view?.members.map(x => x.name).sort()).toEqual(['r1', 'r2', 'r3'])
    for (const m of blues) expect(m.view?.members.map(x => x.name).sort()).toEqual(['b1', 'b2', 'b3'])
    // No member of one ever counted a member of the other in any view.
    expect(r2.view?.members.some(m => blues.some(b => b.id === m.id))).toBe(false)
  }, 40_000)
})
