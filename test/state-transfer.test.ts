/**
 * State transfer between real libp2p members in one process on 127.0.0.1: a joiner restores
 * the coordinator's snapshot taken at a cut of the broadcast stream and then delivers exactly
 * the broadcasts after it; streams in chunks with bounded memory; restarts from the next member
 * when the provider leaves mid-stream; a restore that throws makes the joiner leave.
 */
import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMember, InvalidOptionError, StateTransferError, type Member, type MemberOptions, type StateRestored } from '../src/index.js'
import { internalsOf } from '../src/internal/member-internals.js'
import { hostPort, memberPool } from './fixtures/in-process.js'
import { waitUntil } from '../src/testing/member-process.js'

const pool = memberPool('st')

async function start (options: Omit<MemberOptions, 'listen' | 'cluster' | 'name' | 'seeds'> & { cluster: string, name: string, seeds?: string[] }): Promise<Member> {
  const { cluster, name, seeds, ...rest } = options
  return await pool.member(cluster, name, seeds ?? [], rest)
}

/**
 * A replicated log of counters: every member broadcasts `{ n }` with n = 1, 2, … and applies its
 * own at once; `last[sender]` is the last n applied of each sender, and an n that does not follow
 * it is counted as a break (a broadcast lost, delivered twice, or from before the cut).
 */
class Counters {
  last: Record<string, number> = {}
  breaks = 0
  sent = 0
  constructor (private readonly self: () => string) {}
  apply (from: string, k: number): void {
    if (k !== (this.last[from] ?? 0) + 1) this.breaks++
    this.last[from] = k
  }

  async broadcastOne (m: Member): Promise<void> {
    const k = ++this.sent
    this.apply(this.self(), k)
    await m.broadcast({ n: k })
  }

  handlers (): NonNullable<MemberOptions['state']> {
    return {
      snapshot: () => ({ ...this.last }),
      restore: (state: unknown) => { this.last = { ...(state as Record<string, number>) } }
    }
  }
}

async function replicated (cluster: string, name: string, seeds: string[]): Promise<{ m: Member, c: Counters }> {
  let self = ''
  const c = new Counters(() => self)
  const m = await start({ cluster, name, seeds, state: c.handlers() })
  self = m.id
  m.on('message', msg => {
    const k = (msg.payload as { n?: number } | null)?.n
    if (msg.channel === 'group' && typeof k === 'number') c.apply(msg.from, k)
  })
  return { m, c }
}

describe('state transfer', () => {
  it('a joiner restores a snapshot taken at a cut of the broadcast stream, then delivers every broadcast after it once: none before it, none twice', async () => {
    const cluster = pool.cluster()
    const a = await replicated(cluster, 'a', [])
    expect(await a.m.waitForState()).toMatchObject({ restored: false, from: undefined })
    const b = await replicated(cluster, 'b', [hostPort(a.m)])
    await b.m.waitForState({ timeoutMs: 10_000 })
    await a.m.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    // a and b broadcast all along, also while c joins and restores.
    let on = true
    const blast = async (x: { m: Member, c: Counters }): Promise<void> => {
      while (on) { await x.c.broadcastOne(x.m); if (x.c.sent % 20 === 0) await sleep(5) }
    }
    const blasting = Promise.all([blast(a), blast(b)])
    await sleep(300)
    const c = await replicated(cluster, 'c', [hostPort(a.m)])
    const restored: StateRestored = await c.m.waitForState({ timeoutMs: 20_000 })
    expect(restored).toMatchObject({ restored: true, from: a.m.id, attempts: 1 })
    expect(restored.bytes).toBeGreaterThan(0)
    await sleep(300)
    on = false
    await blasting
    // Everyone converges on the same counters: c's restored state plus its deliveries.
    await waitUntil(() => [a, b, c].every(x => x.c.last[a.m.id] === a.c.sent && x.c.last[b.m.id] === b.c.sent), 20_000, 'every broadcast delivered')
    expect(c.c.last).toEqual(a.c.last)
    expect([a.c.breaks, b.c.breaks, c.c.breaks]).toEqual([0, 0, 0])
    // The snapshot was taken while broadcasts flowed: c did get some only after the cut.
    expect(restored.ms).toBeLessThan(20_000)
  }, 60_000)

  it('streams a large state in chunks with bounded memory on both sides (256 MB: peak RSS grows by less than half of it)', async () => {
    const cluster = pool.cluster()
    const MB = 1024 * 1024
    const total = Number(process.env.STATE_TEST_MB ?? 256) * MB
    const sent = createHash('sha256')
    const got = createHash('sha256')
    let gotBytes = 0
    let peakRss = 0
    const sample = (): void => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }
    const a = await start({
      cluster,
      name: 'a',
      state: {
        // A generator: the state is produced as it is sent, never held whole.
        snapshot: () => (function * () {
          let seed = 1
          for (let off = 0; off < total; off += MB) {
            const chunk = new Uint8Array(MB)
            for (let i = 0; i < MB; i += 4096) chunk[i] = (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff
            sent.update(chunk)
            yield chunk
          }
        })(),
        restore: () => { throw new Error('a founder never restores') }
      }
    })
    global.gc?.()
    const rssBefore = process.memoryUsage().rss
    const timer = setInterval(sample, 20)
    const b = await start({
      cluster,
      name: 'b',
      seeds: [hostPort(a)],
      state: {
        snapshot: () => new Uint8Array(0),
        restore: async (stream: unknown) => {
          for await (const chunk of stream as AsyncIterable<Uint8Array>) { got.update(chunk); gotBytes += chunk.byteLength }
        }
      }
    })
    const restored = await b.waitForState({ timeoutMs: 60_000 })
    clearInterval(timer)
    sample()
    expect(restored).toMatchObject({ restored: true, from: a.id, bytes: total })
    expect(gotBytes).toBe(total)
    expect(got.digest('hex')).toBe(sent.digest('hex'))
    // Both sides in this process: what they hold at once is the window and garbage not yet
    // collected (about 60 MB here whatever the size), not the state.
    expect(peakRss - rssBefore).toBeLessThan(total / 2)
  }, 120_000)

  it('restarts from the next member when the provider leaves mid-stream: restore is called again after its stream throws', async () => {
    const cluster = pool.cluster()
    const MB = 1024 * 1024
    const stream = (tag: number): Iterable<Uint8Array> => (function * () {
      for (let i = 0; i < 20; i++) yield new Uint8Array(MB).fill(tag)
    })()
    const a = await start({ cluster, name: 'a', state: { snapshot: () => stream(1), restore: () => {} } })
    const b = await start({
      cluster,
      name: 'b',
      seeds: [hostPort(a)],
      state: {
        snapshot: () => stream(2),
        restore: async (s: unknown) => { for await (const _ of s as AsyncIterable<Uint8Array>) { /* drain */ } }
      }
    })
    await b.waitForState({ timeoutMs: 20_000 })
    const calls: Array<{ tags: number[], error?: string }> = []
    let leaving: Promise<void> | undefined
    const c = await start({
      cluster,
      name: 'c',
      seeds: [hostPort(a)],
      state: {
        snapshot: () => new Uint8Array(0),
        restore: async (s: unknown) => {
          const call: { tags: number[], error?: string } = { tags: [] }
          calls.push(call)
          try {
            for await (const chunk of s as AsyncIterable<Uint8Array>) {
              call.tags.push(chunk[0] as number)
              // The provider (a, the coordinator) leaves after the first chunks of its stream.
              if (calls.length === 1 && call.tags.length === 3) leaving = a.stop()
              await sleep(calls.length === 1 ? 30 : 0)
            }
          } catch (err) {
            call.error = (err as Error).name + ':' + ((err as StateTransferError).reason ?? '')
            throw err
          }
        }
      }
    })
    const restored = await c.waitForState({ timeoutMs: 30_000 })
    await leaving
    expect(restored).toMatchObject({ restored: true, from: b.id, attempts: 2, bytes: 20 * MB })
    expect(calls).toHaveLength(2)
    expect(calls[0]?.error).toBe('StateTransferError:interrupted')
    expect(calls[0]?.tags.every(t => t === 1)).toBe(true)
    // b's 1 MiB chunks arrive as the transfer's 256 KiB ones.
    expect(calls[1]?.tags).toEqual(new Array(80).fill(2))
    expect(c.stopped).toBe(false)
  }, 60_000)

  it('a restore that throws fails the joiner: StateTransferError, the event, and it leaves the group', async () => {
    const cluster = pool.cluster()
    const a = await start({ cluster, name: 'a', state: { snapshot: () => ({ x: 1 }), restore: () => {} } })
    const b = await start({ cluster, name: 'b', seeds: [hostPort(a)], state: { snapshot: () => null, restore: () => { throw new RangeError('bad state') } } })
    const events: unknown[] = []
    b.on('state-transfer-failed', e => events.push(e.error))
    const err = await b.waitForState({ timeoutMs: 20_000 }).catch(e => e as StateTransferError)
    expect(err).toBeInstanceOf(StateTransferError)
    expect(err).toMatchObject({ reason: 'restore-failed', code: 'ERR_STATE_TRANSFER' })
    expect((err as Error).cause).toBeInstanceOf(RangeError)
    expect(events).toEqual([err])
    await waitUntil(() => b.stopped, 10_000, 'b to leave')
    // Asked again after it left: the same error, not a generic one.
    await expect(b.waitForState()).rejects.toBe(err)
    await waitUntil(() => a.view?.members.length === 1, 10_000, 'a to see b leave')
  }, 30_000)

  it('bad options and hostile state frames: a named error at the call; frames dropped and counted, the view unchanged', async () => {
    const cluster = pool.cluster()
    await expect(createMember({ cluster, state: 'yes' as never })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(createMember({ cluster, state: { snapshot: () => 1 } as never })).rejects.toMatchObject({ option: 'state.restore' })
    await expect(createMember({ cluster, state: { snapshot: () => 1, restore: () => {}, restor: 1 } as never })).rejects.toThrow(/state\.restor/)
    const a = await start({ cluster, name: 'a', state: { snapshot: () => ({}), restore: () => {} } })
    const b = await start({ cluster, name: 'b', seeds: [hostPort(a)] })
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    await expect(b.waitForState()).rejects.toMatchObject({ option: 'state' })
    const epoch = a.epoch
    const send = internalsOf(b).sendService
    for (const junk of [null, 'x', [9, 1], [0, -1, 1], [3, 1, 1, 'not bytes'], [2, 1, { epoch: 'x' }, 0], [5, 7, 3], [1, 4, 'no-state']]) send(a.id, 'state', junk)
    await waitUntil(() => (a.dropped['state-malformed'] ?? 0) >= 6 && (a.dropped['state-unexpected'] ?? 0) >= 2, 10_000, 'drops counted')
    expect(a.epoch).toBe(epoch)
    expect(a.view?.members.length).toBe(2)
  }, 30_000)
})
