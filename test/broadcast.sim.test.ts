/**
 * The reliable broadcast layer alone (src/messaging/broadcast.ts), several instances wired by
 * an in-memory network under a manual clock, with loss (stream breaks), duplication, datagrams
 * lost and reordered, links that get stuck, crashes, partitions and merges; the views are
 * driven by the test (fixed cases) or by a random schedule (thousands in a scratch run:
 * SIM_SCHEDULES=N SIM_SEED=S). Invariants checked on every run: per-sender FIFO, no duplicates,
 * delivery only in the view a message was sent in and only from its members, every installed
 * view emitted in order without a flush given up, and view synchrony: every message of a
 * sender that survives into the next view delivered before that view's event.
 */
import { describe, expect, it } from 'vitest'
import { ReliableBroadcast, DEFAULT_BROADCAST_LIMITS, type BroadcastLimits } from '../src/messaging/broadcast.js'
import type { MessagingFrame } from '../src/messaging/wire.js'
import { Codec } from '../src/transport/codec.js'
import { seededRandom } from '../src/testing/random.js'

const codec = new Codec('sim', 1 << 22)

interface Delivery { from: string, n: number, epoch: number, sentIn: number }
type Event = { kind: 'deliver', d: Delivery } | { kind: 'view', epoch: number }

class Net {
  now = 0
  private readonly timers: Array<{ at: number, fn: () => void, cancelled: boolean }> = []
  private readonly soonQueue: Array<() => void> = []
  /** Per directed link, frames in flight (a stream: order kept unless the link breaks). */
  private readonly links = new Map<string, Uint8Array[]>()
  readonly nodes = new Map<string, SimNode>()
  /** Probability that a frame is lost by a stream break (the stream then reconnects). */
  loss = 0
  dup = 0
  cut = new Set<string>()
  /** Directed links whose stream moves nothing (a connection behind TCP retransmissions); datagrams still pass. */
  stuck = new Set<string>()
  /** Probability that a datagram is lost. */
  datagramLoss = 0
  /** Datagrams of one step arrive in random order. */
  reorderDatagrams = false
  /** Datagrams in flight: delivered at the next step, ahead of what the streams hold. */
  private datagrams: Array<{ from: string, to: string, frame: Uint8Array }> = []
  constructor (readonly random: () => number) {}

  setTimer (ms: number, fn: () => void): () => void {
    const t = { at: this.now + ms, fn, cancelled: false }
    this.timers.push(t)
    return () => { t.cancelled = true }
  }

  soon (fn: () => void): void { this.soonQueue.push(fn) }

  send (from: string, to: string, frame: Uint8Array): void {
    const key = `${from}>${to}`
    if (this.cut.has(key)) return
    let q = this.links.get(key)
    if (q === undefined) this.links.set(key, q = [])
    q.push(frame)
    if (this.random() < this.dup) q.push(frame)
  }

  sendDatagram (from: string, to: string, frame: Uint8Array): void {
    if (this.cut.has(`${from}>${to}`)) return
    if (this.random() < this.datagramLoss) return
    this.datagrams.push({ from, to, frame })
  }

  /** Delivers one frame per link in flight, runs due soon() work and timers; one step of time. */
  step (ms = 1): void {
    const datagrams = this.datagrams.splice(0)
    if (this.reorderDatagrams) {
      for (let i = datagrams.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1))
        ;[datagrams[i], datagrams[j]] = [datagrams[j] as typeof datagrams[number], datagrams[i] as typeof datagrams[number]]
      }
    }
    for (const d of datagrams) {
      const node = this.nodes.get(d.to)
      if (node === undefined || node.crashed) continue
      const decoded = codec.decode(d.frame)
      if (!decoded.ok) throw new Error('undecodable datagram in the simulation')
      node.rb.receive(d.from, decoded.msg as MessagingFrame, true)
    }
    for (const [key, q] of this.links) {
      if (this.stuck.has(key)) continue
      const frame = q.shift()
      if (frame === undefined) continue
      const [from, to] = key.split('>') as [string, string]
      if (this.random() < this.loss) {
        // The stream broke: this frame and those queued behind it are gone; the link reconnects.
        q.length = 0
        this.nodes.get(from)?.rb.connected(to)
        this.nodes.get(to)?.rb.connected(from)
        continue
      }
      const node = this.nodes.get(to)
      if (node === undefined || node.crashed) continue
      const decoded = codec.decode(frame)
      if (!decoded.ok) throw new Error('undecodable frame in the simulation')
      node.rb.receive(from, decoded.msg as MessagingFrame)
    }
    for (let i = 0; i < 10 && this.soonQueue.length > 0; i++) for (const fn of this.soonQueue.splice(0)) fn()
    this.now += ms
    const due = this.timers.filter(t => t.at <= this.now && !t.cancelled)
    for (const t of due) { t.cancelled = true; t.fn() }
    for (let i = this.timers.length - 1; i >= 0; i--) if ((this.timers[i] as { cancelled: boolean }).cancelled) this.timers.splice(i, 1)
  }

  idle (): boolean {
    return [...this.links.values()].every(q => q.length === 0) && this.soonQueue.length === 0 && this.datagrams.length === 0
  }
}

class SimNode {
  readonly rb: ReliableBroadcast
  readonly events: Event[] = []
  crashed = false
  sent = 0
  epoch = -1
  readonly drops: Record<string, number> = {}
  /** The views this node installed, in order. */
  readonly installed: number[] = []
  /** For each view event, the newest view this node had installed when it emitted it. */
  readonly newestAt = new Map<number, number>()
  /** The numbers this node broadcast in each view. */
  readonly sentIn = new Map<number, number[]>()
  constructor (readonly id: string, readonly net: Net, limits: Partial<BroadcastLimits> = {}) {
    this.rb = new ReliableBroadcast({
      self: id,
      now: () => net.now,
      encode: msg => codec.encode(msg),
      sendFrame: (to, frame) => { if (!this.crashed) net.send(id, to, frame) },
      sendControl: (to, frame) => {
        if (this.crashed) return
        net.send(id, to, frame)
        net.sendDatagram(id, to, frame)
      },
      deliver: (from, bin, epoch) => {
        const [n, sentIn] = JSON.parse(Buffer.from(bin).toString()) as [number, number]
        this.events.push({ kind: 'deliver', d: { from, n, epoch, sentIn } })
      },
      viewReady: epoch => {
        this.events.push({ kind: 'view', epoch })
        this.newestAt.set(epoch, this.installed.at(-1) as number)
      },
      countDrop: reason => { this.drops[reason] = (this.drops[reason] ?? 0) + 1 },
      setTimer: (ms, fn) => net.setTimer(ms, fn),
      soon: fn => { net.soon(fn) }
    }, { ...DEFAULT_BROADCAST_LIMITS, maxFrameBytes: 4096, resendAfterMs: 200, flushTimeoutMs: 3000, ...limits })
    net.nodes.set(id, this)
  }

  broadcast (): Promise<void> | undefined {
    const n = ++this.sent
    const list = this.sentIn.get(this.epoch) ?? []
    list.push(n)
    this.sentIn.set(this.epoch, list)
    return this.rb.broadcast(Buffer.from(JSON.stringify([n, this.epoch])))
  }

  install (epoch: number, members: string[]): void {
    this.epoch = epoch
    this.installed.push(epoch)
    this.rb.install({ epoch, members })
  }
}

/** Checks the invariants on one node's event log; returns the deliveries by sender. */
function check (node: SimNode, views: Map<number, string[]>): Map<string, number[]> {
  const bySender = new Map<string, number[]>()
  let deliveryEpoch: number | undefined
  for (const ev of node.events) {
    if (ev.kind === 'view') { deliveryEpoch = ev.epoch; continue }
    const { from, n, epoch, sentIn } = ev.d
    expect(epoch, `${node.id}: a message of ${from} delivered in the view it was sent in`).toBe(sentIn)
    expect(epoch, `${node.id}: delivered only in its delivery view`).toBe(deliveryEpoch)
    expect(views.get(epoch)?.includes(from), `${node.id}: ${from} is a member of view ${epoch}`).toBe(true)
    const list = bySender.get(from) ?? []
    if (list.length > 0) expect(n, `${node.id}: FIFO from ${from}, no duplicates`).toBeGreaterThan(list[list.length - 1] as number)
    list.push(n)
    bySender.set(from, list)
  }
  return bySender
}

describe('reliable broadcast (simulated network)', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`delivers every message in order, once, in its view, across view changes, with stream breaks and duplicates (seed ${seed})`, () => {
      const net = new Net(seededRandom(seed))
      net.loss = 0.02
      net.dup = 0.05
      const ids = ['a', 'b', 'c', 'd']
      const nodes = ids.map(id => new SimNode(id, net))
      const views = new Map<number, string[]>()
      const install = (epoch: number, members: string[]): void => {
        views.set(epoch, members)
        for (const id of members) net.nodes.get(id)?.install(epoch, members)
      }
      install(1, ['a', 'b', 'c'])
      for (let t = 0; t < 400; t++) {
        for (const id of ['a', 'b', 'c']) if (net.random() < 0.5) net.nodes.get(id)?.broadcast()
        if (t === 150) install(2, ['a', 'b', 'c', 'd']) // d joins
        if (t === 300) {
          // c crashes; the others install a view without it
          (net.nodes.get('c') as SimNode).crashed = true
          install(3, ['a', 'b', 'd'])
        }
        net.step()
      }
      for (let t = 0; t < 20_000 && !(net.idle() && nodes.every(n => n.rb.unackedBytes === 0 || n.crashed)); t++) net.step()
      for (const node of nodes.filter(n => !n.crashed)) {
        const got = check(node, views)
        // Every view this node was in ends in its delivery view.
        expect(node.events.filter(e => e.kind === 'view').map(e => (e as { epoch: number }).epoch)).toEqual(node.id === 'd' ? [2, 3] : [1, 2, 3])
        // A survivor's messages: all of them (they sent nothing while crashed), in order, none lost.
        for (const s of nodes.filter(n => !n.crashed && n.id !== node.id)) {
          const list = got.get(s.id) ?? []
          const firstN = node.id === 'd' ? Math.min(...list) : 1
          expect(list, `${node.id} got all of ${s.id}'s`).toEqual(Array.from({ length: s.sent - firstN + 1 }, (_, i) => firstN + i))
        }
      }
      // Virtual synchrony: what a survivor sent in view 1 was delivered by b before view 2's event.
      const b = net.nodes.get('b') as SimNode
      const view2At = b.events.findIndex(e => e.kind === 'view' && e.epoch === 2)
      const aInView1 = b.events.filter((e, i) => e.kind === 'deliver' && e.d.from === 'a' && e.d.sentIn === 1 && i > view2At)
      expect(aInView1).toEqual([])
    })
  }

  it('completes a view change over a stuck stream: the flush and its ack pass as datagrams', () => {
    const net = new Net(seededRandom(11))
    const a = new SimNode('a', net)
    const b = new SimNode('b', net)
    const c = new SimNode('c', net)
    for (const n of [a, b, c]) n.install(1, ['a', 'b', 'c'])
    for (let i = 0; i < 5; i++) a.broadcast()
    for (let t = 0; t < 200 && !net.idle(); t++) net.step()
    expect(check(b, new Map([[1, ['a', 'b', 'c']]])).get('a')).toEqual([1, 2, 3, 4, 5])
    // a's stream to b and b's to a carry nothing from now on; c is excluded.
    net.stuck.add('a>b').add('b>a')
    c.crashed = true
    for (const n of [a, b]) n.install(2, ['a', 'b'])
    for (let t = 0; t < 50; t++) net.step()
    // Both emit view 2 long before the stall timer or the flush timeout (3000 ms here).
    for (const n of [a, b]) expect(n.events.filter(e => e.kind === 'view').map(e => (e as { epoch: number }).epoch)).toEqual([1, 2])
    // What goes in view 2 waits for the stream, and arrives once it moves again.
    a.broadcast()
    for (let t = 0; t < 50; t++) net.step()
    expect(b.events.filter(e => e.kind === 'deliver' && e.d.epoch === 2)).toEqual([])
    net.stuck.clear()
    for (let t = 0; t < 200 && !net.idle(); t++) net.step()
    expect(check(b, new Map([[1, ['a', 'b', 'c']], [2, ['a', 'b']]])).get('a')).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('a flush that overtakes its data as a datagram waits for the data, and lost datagrams cost nothing', () => {
    for (const seed of [21, 22, 23]) {
      const net = new Net(seededRandom(seed))
      net.datagramLoss = 0.5
      const nodes = ['a', 'b', 'c'].map(id => new SimNode(id, net))
      for (const n of nodes) n.install(1, ['a', 'b', 'c'])
      // The flush of view 1 is sent while a's data still sits in the streams.
      for (let i = 0; i < 30; i++) for (const n of nodes) n.broadcast()
      for (const n of nodes) n.install(2, ['a', 'b', 'c'])
      for (let t = 0; t < 5000 && !net.idle(); t++) net.step()
      const views = new Map([[1, ['a', 'b', 'c']], [2, ['a', 'b', 'c']]])
      for (const n of nodes) {
        const got = check(n, views)
        for (const s of nodes.filter(o => o !== n)) expect(got.get(s.id), `${n.id} got all of ${s.id}'s`).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
        expect(n.events.filter(e => e.kind === 'view').map(e => (e as { epoch: number }).epoch)).toEqual([1, 2])
      }
    }
  })

  it('holds broadcasts back while its window is full, and lets them go as acknowledgements come', async () => {
    const net = new Net(seededRandom(9))
    const a = new SimNode('a', net, { windowBytes: 100 })
    const b = new SimNode('b', net)
    a.install(1, ['a', 'b'])
    b.install(1, ['a', 'b'])
    const promises: Array<Promise<void> | undefined> = []
    for (let i = 0; i < 200; i++) promises.push(a.broadcast())
    const waiting = promises.filter(p => p !== undefined)
    expect(waiting.length).toBeGreaterThan(150) // 6–10 B each: 10–16 fit the window
    expect(a.rb.unackedBytes).toBeLessThanOrEqual(100)
    let settled = 0
    for (const p of waiting) void p?.then(() => { settled++ })
    for (let t = 0; t < 2000 && b.events.filter(e => e.kind === 'deliver').length < 200; t++) { net.step(); await Promise.resolve() }
    await Promise.resolve()
    expect(settled).toBe(waiting.length)
    expect(check(b, new Map([[1, ['a', 'b']]])).get('a')).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
  })

  it('drops a forged sequence number far ahead and a frame from outside the view, without blocking later delivery', () => {
    const net = new Net(seededRandom(3))
    const a = new SimNode('a', net)
    const b = new SimNode('b', net)
    a.install(1, ['a', 'b'])
    b.install(1, ['a', 'b'])
    const bin = Buffer.from(JSON.stringify([99, 1]))
    b.rb.receive('a', { t: 'rb', e: 1, s: 1_000_000, m: [bin] }) // a gap nobody can fill
    b.rb.receive('mallory', { t: 'rb', e: 1, s: 1, m: [bin] }) // not in the view
    for (let i = 0; i < 5; i++) a.broadcast()
    for (let t = 0; t < 500; t++) net.step()
    expect(check(b, new Map([[1, ['a', 'b']]])).get('a')).toEqual([1, 2, 3, 4, 5])
  })

  it('gives a flush up after flushTimeoutMs when a survivor never sends its own', () => {
    const net = new Net(seededRandom(4))
    const a = new SimNode('a', net)
    const b = new SimNode('b', net, { flushTimeoutMs: 1000 })
    a.install(1, ['a', 'b'])
    b.install(1, ['a', 'b'])
    net.cut.add('a>b') // a's frames never reach b (its flush included)
    a.install(2, ['a', 'b'])
    b.install(2, ['a', 'b'])
    for (let t = 0; t < 900; t++) net.step()
    expect(b.events.filter(e => e.kind === 'view').length).toBe(1)
    for (let t = 0; t < 200; t++) net.step()
    expect(b.events.filter(e => e.kind === 'view').map(e => (e as { epoch: number }).epoch)).toEqual([1, 2])
  })

  it('an excluded member emits what it installed, and its next view at once (nobody owes it a flush)', () => {
    const net = new Net(seededRandom(6))
    const a = new SimNode('a', net)
    const b = new SimNode('b', net)
    a.install(1, ['a', 'b'])
    b.install(1, ['a', 'b'])
    net.cut.add('a>b')
    b.install(2, ['a', 'b']) // waits for a's flush, which never comes
    b.rb.suspend() // then b learns it was excluded
    expect(b.events.map(e => e.kind === 'view' ? e.epoch : 'msg')).toEqual([1, 2])
    b.install(4, ['a', 'b']) // rejoined
    expect(b.events.map(e => e.kind === 'view' ? e.epoch : 'msg')).toEqual([1, 2, 4])
    expect(b.broadcast()).toBeUndefined() // admitted in its new view
  })

  it('holds frames of a view it has not installed yet, and delivers them once it has', () => {
    const net = new Net(seededRandom(5))
    const a = new SimNode('a', net)
    const b = new SimNode('b', net)
    a.install(1, ['a', 'b'])
    b.install(1, ['a', 'b'])
    a.install(2, ['a', 'b']) // a is ahead: its view-2 broadcasts reach b before b installs view 2
    for (let i = 0; i < 3; i++) a.broadcast()
    for (let t = 0; t < 50; t++) net.step()
    expect(b.events.filter(e => e.kind === 'deliver')).toEqual([])
    b.install(2, ['a', 'b'])
    for (let t = 0; t < 50; t++) net.step()
    expect(b.events.map(e => e.kind === 'view' ? `view ${e.epoch}` : `${e.d.from}${e.d.n}@${e.d.epoch}`)).toEqual(['view 1', 'view 2', 'a1@2', 'a2@2', 'a3@2'])
  })
})

/**
 * A random schedule of joins, crashes, partitions (each side installs a view of its own, the
 * links between the sides cut both ways) and merges, under stream breaks, duplicated frames,
 * and datagrams lost and reordered; then the sides heal and merge into one last view.
 */
function randomRun (seed: number, steps: number): { nodes: SimNode[], views: Map<number, string[]>, finalEpoch: number, events: string[] } {
  const net = new Net(seededRandom(seed))
  net.loss = 0.01
  net.dup = 0.03
  net.datagramLoss = 0.2
  net.reorderDatagrams = true
  const ids = ['a', 'b', 'c', 'd', 'e']
  const nodes = ids.map(id => new SimNode(id, net))
  const node = (id: string): SimNode => net.nodes.get(id) as SimNode
  const views = new Map<number, string[]>()
  const events: string[] = []
  let epoch = 0
  let groups: string[][] = []
  const install = (members: string[]): number => {
    epoch++
    views.set(epoch, members)
    for (const id of members) node(id).install(epoch, members)
    events.push(`${epoch}: ${members.join('')}`)
    return epoch
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(net.random() * xs.length)] as T
  groups.push(['a', 'b', 'c'])
  install(['a', 'b', 'c'])
  for (let t = 0; t < steps; t++) {
    for (const g of groups) for (const id of g) if (net.random() < 0.3) node(id).broadcast()
    const r = net.random()
    const outside = ids.filter(id => !node(id).crashed && !groups.flat().includes(id))
    if (r < 0.01 && outside.length > 0) {
      const g = pick(groups)
      g.push(pick(outside))
      install([...g])
    } else if (r < 0.02) {
      const g = pick(groups)
      if (g.length >= 2 && groups.flat().length >= 3) {
        const victim = pick(g)
        node(victim).crashed = true
        g.splice(g.indexOf(victim), 1)
        events.push(`crash ${victim}`)
        install([...g])
      }
    } else if (r < 0.03 && groups.length === 1 && (groups[0] as string[]).length >= 2) {
      const g = groups[0] as string[]
      const cutAt = 1 + Math.floor(net.random() * (g.length - 1))
      const sides = [g.slice(0, cutAt), g.slice(cutAt)]
      for (const x of sides[0] as string[]) for (const y of sides[1] as string[]) net.cut.add(`${x}>${y}`).add(`${y}>${x}`)
      groups = sides
      events.push('partition')
      for (const side of sides) install([...side])
    } else if (r < 0.04 && groups.length === 2) {
      net.cut.clear()
      groups = [groups.flat()]
      events.push('heal')
      install([...(groups[0] as string[])])
    }
    net.step()
  }
  if (groups.length > 1) { net.cut.clear(); groups = [groups.flat()]; events.push('heal') }
  const finalEpoch = install([...(groups[0] as string[])])
  for (let t = 0; t < 30_000 && !(net.idle() && nodes.every(n => n.rb.unackedBytes === 0 || n.crashed)); t++) net.step()
  return { nodes, views, finalEpoch, events }
}

/** The delivery guarantees on every node that is still up, after a random run. */
function checkRun (run: ReturnType<typeof randomRun>, seed: number): void {
  const { nodes, views, finalEpoch, events } = run
  const byId = new Map(nodes.map(n => [n.id, n]))
  // Members of the last view: the nodes still up that ever joined.
  for (const p of nodes.filter(n => !n.crashed && n.installed.length > 0)) {
    const where = `seed ${seed}, ${p.id} (${events.join(', ')})`
    const got = check(p, views) // in its view, in its delivery view, from a member, FIFO, once
    // Every view it installed becomes its delivery view, in order; none is skipped or given up.
    expect(p.events.filter(e => e.kind === 'view').map(e => (e as { epoch: number }).epoch), where).toEqual(p.installed)
    expect(p.installed.at(-1), where).toBe(finalEpoch)
    expect(p.drops['flush-timeout'], where).toBeUndefined()
    // View synchrony: for each change V → W of p, p delivered in V every broadcast that a
    // member of V sent in V if that member installed W and is in the newest view p had
    // installed when it emitted W's event (a sender already gone from it is not waited for:
    // its broadcasts that arrived are delivered, the rest are lost with it).
    for (let i = 0; i + 1 < p.installed.length; i++) {
      const v = p.installed[i] as number
      const w = p.installed[i + 1] as number
      for (const sid of views.get(v) ?? []) {
        const s = byId.get(sid) as SimNode
        const newest = views.get(p.newestAt.get(w) as number) ?? []
        if (sid === p.id || !s.installed.includes(w) || !(views.get(w) ?? []).includes(sid) || !newest.includes(sid)) continue
        const inV = (got.get(sid) ?? []).filter(n => p.events.some(e => e.kind === 'deliver' && e.d.from === sid && e.d.n === n && e.d.epoch === v))
        expect(inV, `${where}: ${sid}'s broadcasts of view ${v}`).toEqual(s.sentIn.get(v) ?? [])
      }
    }
  }
}

describe('reliable broadcast under random schedules (simulated network)', () => {
  // A fixed set here; SIM_SCHEDULES=N runs N more seeds from SIM_SEED (a scratch run).
  const extra = Number(process.env.SIM_SCHEDULES ?? 0)
  const first = Number(process.env.SIM_SEED ?? 1000)
  const seeds = [...Array.from({ length: 20 }, (_, i) => 100 + i), ...Array.from({ length: extra }, (_, i) => first + i)]
  it(`joins, crashes, partitions and merges with loss, duplication and reordered datagrams: the delivery guarantees hold (${seeds.length} schedules)`, () => {
    for (const seed of seeds) {
      const run = randomRun(seed, 600)
      if (process.env.SIM_PRINT !== undefined) console.log(seed, run.events.join(' | '), run.nodes.map(n => n.events.filter(e => e.kind === 'deliver').length).join(','))
      checkRun(run, seed)
    }
  }, 600_000)
})
