/**
 * The public API with several real libp2p members in one process on 127.0.0.1: lifecycle,
 * events, iterators, waiters, messaging, option errors, and hostile input at the real ports.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Member, createMember, InvalidOptionError, NotRunningError, TimeoutError, type Message, type ViewChange } from '../src/index.js'
import { createLibp2pTransport } from '../src/transport/libp2p.js'
import { Codec } from '../src/transport/codec.js'
import { waitUntil } from '../src/testing/member-process.js'

const members: Member[] = []
let n = 0
const cluster = (): string => `api-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all(members.splice(0).map(async m => await m.stop()))
})

async function member (clusterName: string, name: string, seeds: string[] = [], timing: { joinTimeoutMs?: number } = {}): Promise<Member> {
  const m = await createMember({ cluster: clusterName, name, seeds, listen: '127.0.0.1:0', timing })
  members.push(m)
  return m
}

const hostPort = (m: Member): string => {
  const match = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')
  return `${match?.[1]}:${match?.[2]}`
}

describe('options are validated with named errors', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['cluster', { cluster: 'has space' }, 'cluster'],
    ['cluster type', { cluster: 42 }, 'cluster'],
    ['listen', { cluster: 'x', listen: 'nonsense' }, 'listen[0]'],
    ['seed port', { cluster: 'x', seeds: ['127.0.0.1:0'] }, 'seeds[0]'],
    ['seed port range', { cluster: 'x', seeds: ['127.0.0.1:70000'] }, 'seeds[0]'],
    ['metadata value', { cluster: 'x', metadata: { a: {} } }, 'metadata.a'],
    ['timing key', { cluster: 'x', timing: { nope: 1 } }, 'timing.nope'],
    ['timing value', { cluster: 'x', timing: { heartbeatIntervalMs: -5 } }, 'timing.heartbeatIntervalMs'],
    ['lease margin', { cluster: 'x', timing: { leaseMs: 2000 } }, 'timing.leaseMs'],
    ['maxMessageBytes', { cluster: 'x', maxMessageBytes: 10 }, 'maxMessageBytes'],
    ['masters zero', { cluster: 'x', masters: 0 }, 'masters'],
    ['masters negative', { cluster: 'x', masters: -3 }, 'masters'],
    ['masters fractional', { cluster: 'x', masters: 1.5 }, 'masters'],
    ['masters string', { cluster: 'x', masters: '2' }, 'masters'],
    ['splitBrain', { cluster: 'x', splitBrain: 'minority' }, 'splitBrain'],
    ['quorum zero', { cluster: 'x', quorum: 0 }, 'quorum'],
    ['quorum beyond any view', { cluster: 'x', quorum: 5000 }, 'quorum'],
    ['masters beyond the quorum', { cluster: 'x', quorum: 2, masters: 3 }, 'masters'],
    ['maxConnections zero', { cluster: 'x', maxConnections: 0 }, 'maxConnections'],
    ['maxConnections fractional', { cluster: 'x', maxConnections: 2.5 }, 'maxConnections'],
    ['maxConnections beyond any view', { cluster: 'x', maxConnections: 1024 }, 'maxConnections']
  ]
  for (const [label, options, option] of cases) {
    it(`rejects a bad ${label}`, () => {
      let caught: unknown
      try { new Member(options as never) } catch (err) { caught = err }
      expect(caught).toBeInstanceOf(InvalidOptionError)
      const err = caught as InvalidOptionError
      expect(err.option).toBe(option)
      expect(err.code).toBe('ERR_INVALID_OPTION')
      expect(err.message).toContain(`"${option}"`)
      expect(err.message).toMatch(/expected .+, received .+/)
    })
  }

  it('accepts host:port, localhost and multiaddrs', () => {
    const m = new Member({ cluster: 'x', listen: 'localhost:0', seeds: ['127.0.0.1:7000', '/ip4/127.0.0.1/tcp/7001'] })
    expect(m.options.listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
    expect(m.options.seeds.map(s => s.kind === 'address' ? s.address : s.text)).toEqual(['/ip4/127.0.0.1/tcp/7000', '/ip4/127.0.0.1/tcp/7001'])
  })
})

describe('a member in one process', () => {
  it('founds a group alone, is coordinator, and stops cleanly (idempotently)', async () => {
    const before = Date.now()
    const a = await member(cluster(), 'a')
    expect(a.view?.members.map(m => m.name)).toEqual(['a'])
    expect(a.isCoordinator).toBe(true)
    // A founded group's first epoch is the wall clock in ms (fencing tokens keep growing across restarts).
    expect(a.epoch).toBeGreaterThanOrEqual(before)
    expect(a.epoch).toBeLessThanOrEqual(Date.now())
    await Promise.all([a.stop(), a.stop()])
    expect(a.isCoordinator).toBe(false)
    expect(() => a.broadcast('x')).toThrow(NotRunningError)
  })

  it('emits view and coordinator events, yields views, and resolves waitForView', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const changes: ViewChange[] = []
    a.on('view', v => changes.push(v))
    const ac = new AbortController()
    const iterated: number[] = []
    const iterating = (async () => {
      for await (const change of a.views({ signal: ac.signal })) {
        iterated.push(change.view.members.length)
        if (change.view.members.length === 3) break
      }
    })()
    const b = await member(c, 'b', [hostPort(a)])
    await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const cc = await member(c, 'c', [hostPort(a)])
    const view = await a.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })
    await iterating
    expect(view.members.map(m => m.name)).toEqual(['a', 'b', 'c'])
    // The founding view too: listeners attached right after createMember resolved see it.
    expect(changes.map(ch => ch.joined.map(m => m.name))).toEqual([['a'], ['b'], ['c']])
    expect(changes.every(ch => ch.isCoordinator)).toBe(true)
    expect(iterated).toEqual([1, 2, 3])
    await cc.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })

    // graceful leave of the coordinator: b is told by a coordinator event
    const promoted = new Promise<boolean>(resolve => b.once('coordinator', e => resolve(e.isCoordinator)))
    await a.stop()
    expect(await promoted).toBe(true)
    expect(b.view?.members.map(m => m.name)).toEqual(['b', 'c'])
  })

  it('waitForView rejects with TimeoutError, and with the abort reason', async () => {
    const a = await member(cluster(), 'a')
    await expect(a.waitForView(v => v.members.length === 5, { timeoutMs: 50 })).rejects.toBeInstanceOf(TimeoutError)
    const ac = new AbortController()
    const waiting = a.waitForView(v => v.members.length === 5, { signal: ac.signal })
    ac.abort(new Error('enough'))
    await expect(waiting).rejects.toThrow('enough')
  })

  it('delivers send() to one member and broadcast() to all others', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    const cc = await member(c, 'c', [hostPort(a)])
    await Promise.all([a, b, cc].map(async m => await m.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })))
    const got = (m: Member, count: number): Promise<Message[]> => new Promise(resolve => {
      const list: Message[] = []
      const on = (msg: Message): void => { list.push(msg); if (list.length === count) { m.off('message', on); resolve(list) } }
      m.on('message', on)
    })
    const atB = got(b, 2)
    const atC = got(cc, 1)
    await a.send(b.id, { hello: 'b', n: 1 })
    await a.broadcast({ all: true }) // reliable: once is enough
    const [bMsgs, cMsgs] = await Promise.all([atB, atC])
    expect(bMsgs.find(m => m.channel === 'direct')).toMatchObject({ from: a.id, payload: { hello: 'b', n: 1 } })
    expect(bMsgs.find(m => m.channel === 'group')).toMatchObject({ from: a.id, payload: { all: true } })
    expect(cMsgs[0]).toMatchObject({ from: a.id, channel: 'group', payload: { all: true } })
  })

  it('a burst of broadcasts in one turn arrives complete and in order (batched)', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const seen: number[] = []
    const all = new Promise<void>(resolve => {
      b.on('message', m => { if (typeof m.payload === 'number') { seen.push(m.payload); if (seen.length === 5000) resolve() } })
    })
    for (let i = 0; i < 5000; i++) void a.broadcast(i) // one synchronous burst, within the send window
    await all
    expect(seen).toEqual(Array.from({ length: 5000 }, (_, i) => i))
  })

  it('survives garbage at its TCP port and malformed frames on its protocols, without changing the view', async () => {
    const c = cluster()
    const a = await member(c, 'a')
    const b = await member(c, 'b', [hostPort(a)])
    await a.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
    const epoch = a.epoch
    const viewChanges: ViewChange[] = []
    a.on('view', v => viewChanges.push(v))

    // raw bytes at the TCP port
    const [host, port] = hostPort(a).split(':') as [string, string]
    await Promise.all(Array.from({ length: 5 }, async () => await new Promise<void>(resolve => {
      const sock = connect(Number(port), host, () => { sock.end(randomBytes(4096)) })
      sock.on('error', () => resolve())
      sock.on('close', () => resolve())
    })))

    // a real libp2p peer of the same cluster sending malformed, foreign and unknown frames
    const drops: string[] = []
    const intruder = createLibp2pTransport({ cluster: c, listen: ['/ip4/127.0.0.1/tcp/0'] })
    await intruder.start({ onConnected: () => {}, onDisconnected: () => {}, onDialFailed: () => {}, onDirect: () => {}, onGroup: () => {} })
    a.on('dropped', d => drops.push(d.reason))
    const foreign = new Codec('another-cluster', 1 << 20)
    const wrongVersion = new Codec(c, 1 << 20)
    const frames: Uint8Array[] = [
      randomBytes(100),
      new Uint8Array([0xc1]),
      foreign.encode({ t: 'leave', epoch: 99 }),
      wrongVersion.encode({ t: 'propose', epoch: 'x', members: [], ts: 0 } as never),
      new Codec(c, 1 << 20).encode({ t: 'bogus' } as never),
      // a forged commit that would remove b if it were believed: it is not from a member
      new Codec(c, 1 << 20).encode({ t: 'commit', epoch: epoch + 100, members: [{ id: intruder.id, name: 'x', incarnation: 1, joinEpoch: 1, addrs: [], meta: {} }] })
    ]
    for (let i = 0; i < 20; i++) for (const f of frames) intruder.send(a.id, f, { addresses: a.addresses })
    for (const f of frames) intruder.publish(f)
    const deadline = Date.now() + 5000
    while (drops.length < 20 * 4 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    await intruder.stop()

    expect(drops.length).toBeGreaterThanOrEqual(20 * 4)
    expect(drops).toEqual(expect.arrayContaining(['malformed', 'foreign-cluster', 'unknown-type']))
    expect(viewChanges).toEqual([])
    expect(a.epoch).toBe(epoch)
    expect(a.view?.members.map(m => m.name)).toEqual(['a', 'b'])
    // still working: a third member joins
    const cc = await member(c, 'c', [hostPort(a)])
    await cc.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })
    await b.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })
  })

  it('more than ten members on one IP agree, and a broadcast reaches all of them', async () => {
    const c = cluster()
    const first = await member(c, 'm00')
    const rest: Member[] = []
    const otherCoordinators: string[] = []
    for (let i = 1; i < 12; i++) {
      // Twelve libp2p nodes share one event loop here: a joiner may wait more than the default
      // second for its seed's greeting, and would then found a group of its own (as it should
      // in a deployment). The longer join timeout keeps this test about agreement and reach.
      const m = await member(c, `m${String(i).padStart(2, '0')}`, [hostPort(first)], { joinTimeoutMs: 5000 })
      m.on('coordinator', ch => { if (ch.isCoordinator) otherCoordinators.push(m.name) })
      rest.push(m)
    }
    const all = [first, ...rest]
    await Promise.all(all.map(async m => await m.waitForView(v => v.members.length === 12, { timeoutMs: 20_000 })))
    expect(new Set(all.map(m => m.epoch)).size).toBe(1)
    // Under load the coordinator's lease may wait for a new member's first heartbeat echo, so
    // wait for it; nobody else may coordinate meanwhile.
    await waitUntil(() => first.isCoordinator, 5000, 'm00 to hold its lease')
    expect(all.filter(m => m.isCoordinator).map(m => m.name)).toEqual(['m00'])
    expect(otherCoordinators).toEqual([])
    const heard = new Set<string>()
    const listeners = rest.map(m => {
      const on = (msg: Message): void => { if (msg.channel === 'group') heard.add(m.name) }
      m.on('message', on)
      return on
    })
    await first.broadcast('to everyone')
    await waitUntil(() => heard.size === rest.length, 10_000, 'every member to hear the broadcast')
    rest.forEach((m, i) => m.off('message', listeners[i] as (msg: Message) => void))
    expect(heard.size).toBe(rest.length)
  })
})

describe('maxConnections: the limit a coordinator admits up to', () => {
  it('real members: the coordinator at its limit refuses the next joiner with a connection-limit event and admits it once a member leaves', async () => {
    const c = cluster()
    const made = async (name: string, seeds: string[]): Promise<Member> => {
      const m = await createMember({ cluster: c, name, seeds, listen: '127.0.0.1:0', maxConnections: 2 })
      members.push(m)
      return m
    }
    const a = await made('a', [])
    await a.start()
    const limits: Array<{ limit: number, members: number, refused: string | undefined }> = []
    a.on('connection-limit', e => limits.push(e))
    const b = await made('b', [hostPort(a)])
    const d = await made('c', [hostPort(a)])
    await Promise.all([b.start(), d.start()])
    await waitUntil(() => a.view?.members.length === 3 && b.view?.members.length === 3 && d.view?.members.length === 3, 10_000, 'a view of 3')
    const e = await made('e', [hostPort(a)])
    void e.start().catch(() => {})
    await waitUntil(() => limits.length > 0, 10_000, 'a connection-limit event')
    expect(limits[0]).toEqual({ limit: 2, members: 3, refused: e.id })
    expect(a.dropped['member-limit']).toBeGreaterThan(0)
    expect(e.view).toBeUndefined()
    expect(a.view?.members.map(m => m.name)).toEqual(['a', 'b', 'c'])
    await d.stop()
    await waitUntil(() => e.view?.members.map(m => m.name).join() === 'a,b,e', 10_000, 'e admitted after c left')
  }, 30_000)
})
