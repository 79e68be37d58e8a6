/**
 * The scheduler's claim protocol on a manual clock: fake hosts (SchedulerHost) on an in-memory
 * bus that can drop, delay and duplicate service messages. No real time passes; every wait is a
 * timer on the ManualClock, and after every timer the invariants are checked: each host's loop
 * holds at most one timer, and whenever a tick fires every member of the firer's view has
 * recorded it. Real libp2p members are in scheduler.test.ts, real processes in
 * scheduler.process.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { installScheduler, schedule, SCHEDULER_SERVICE, type ScheduledJob, type ScheduleEvent, type ScheduleOptions, type SchedulerClock, type SchedulerHost, type SchedulerHub, type SchedulerView } from '../src/policies/scheduler.js'
import { ManualClock } from '../src/testing/manual-clock.js'
import { seededRandom } from '../src/testing/random.js'

const EVERY = 100
/** A tick time: the clock starts half a period before it. */
const T0 = 1_700_000_000_000
const JOB = 'job'

interface Sent { readonly from: string, readonly to: string, readonly at: number, readonly msg: Readonly<Record<string, unknown>> }
/** What becomes of one message: delivered after the bus's delay or after `number` ms, lost, or delivered twice. */
type Fate = 'deliver' | 'drop' | 'twice' | number

/** The hosts' direct streams: every message is a timer on the shared clock. */
class Bus {
  readonly hosts = new Map<string, FakeHost>()
  readonly sent: Sent[] = []
  fate: (m: Sent) => Fate = () => 'deliver'

  constructor (readonly clock: ManualClock, private readonly delayMs = 1) {}

  send (from: string, to: string, data: unknown): void {
    const m: Sent = { from, to, at: this.clock.now(), msg: structuredClone(data) as Record<string, unknown> }
    this.sent.push(m)
    const fate = this.fate(m)
    if (fate === 'drop') return
    const delay = typeof fate === 'number' ? fate : this.delayMs
    this.deliver(m, delay)
    if (fate === 'twice') this.deliver(m, delay + 1)
  }

  /** The claims sent, optionally only those to `to` for `tick`. */
  claims (to?: string, tick?: number): Sent[] {
    return this.sent.filter(m => m.msg.type === 'claim' && (to === undefined || m.to === to) && (tick === undefined || m.msg.tick === tick))
  }

  private deliver (m: Sent, delay: number): void {
    this.clock.setTimer(() => {
      const host = this.hosts.get(m.to)
      if (host?.alive === true) host.receive(m.from, structuredClone(m.msg))
    }, delay)
  }
}

/** A host's view of the shared clock that counts the timers it holds (the scheduler's own). */
class HostClock implements SchedulerClock {
  pending = 0
  constructor (private readonly base: ManualClock) {}
  readonly now = (): number => this.base.now()
  readonly setTimer = (fn: () => void, ms: number): (() => void) => {
    let live = true
    this.pending++
    const clear = this.base.setTimer(() => { live = false; this.pending--; fn() }, ms)
    return () => {
      if (!live) return
      live = false
      this.pending--
      clear()
    }
  }
}

interface Watcher { readonly masters: number, last: boolean, readonly listener: (c: { isMaster: boolean, reason: string }) => void }

/**
 * A member as the scheduler sees it. The test installs its views and sets its lease; rank is
 * its index in the view while it is alive, leased and not leaving, read at each access.
 */
class FakeHost implements SchedulerHost {
  view: SchedulerView | undefined
  alive = true
  leased = true
  leaving = false
  readonly options = { leaveTimeoutMs: 500 }
  readonly drops: string[] = []
  readonly clock: HostClock
  readonly hub: SchedulerHub
  /** When each epoch was installed here. */
  readonly installedAt = new Map<number, number>()
  private readonly watchers = new Set<Watcher>()
  private readonly viewHooks = new Set<(c: { view: SchedulerView, previous: SchedulerView | undefined }) => void>()
  private readonly leaveHooks = new Set<() => Promise<void>>()
  private readonly services = new Map<string, (from: string, data: unknown) => void>()

  constructor (readonly id: string, private readonly bus: Bus) {
    bus.hosts.set(id, this)
    this.clock = new HostClock(bus.clock)
    this.hub = installScheduler(this, this.clock)
  }

  get rank (): number | undefined {
    if (!this.alive || !this.leased || this.leaving || this.view === undefined) return undefined
    const i = this.view.members.findIndex(m => m.id === this.id)
    return i < 0 ? undefined : i
  }

  get epoch (): number { return this.view?.id.epoch ?? 0 }

  watchMastership (masters: number, listener: Watcher['listener']): () => void {
    const w: Watcher = { masters, last: this.isMaster(masters), listener }
    this.watchers.add(w)
    return () => { this.watchers.delete(w) }
  }

  onViewChange (listener: (c: { view: SchedulerView, previous: SchedulerView | undefined }) => void): () => void {
    this.viewHooks.add(listener)
    return () => { this.viewHooks.delete(listener) }
  }

  onBeforeLeave (hook: () => Promise<void>): () => void {
    this.leaveHooks.add(hook)
    return () => { this.leaveHooks.delete(hook) }
  }

  registerService (name: string, handler: (from: string, data: unknown) => void): () => void {
    this.services.set(name, handler)
    return () => { this.services.delete(name) }
  }

  sendService (to: string, name: string, data: unknown): void {
    expect(name).toBe(SCHEDULER_SERVICE)
    if (this.alive) this.bus.send(this.id, to, data)
  }

  countDrop (reason: string): void { this.drops.push(reason) }

  receive (from: string, data: unknown): void { this.services.get(SCHEDULER_SERVICE)?.(from, data) }

  /** Installs view `epoch` (members in rank order), then reports mastership, as Member does. */
  install (epoch: number, ids: readonly string[]): void {
    const previous = this.view
    this.view = { id: { epoch }, members: ids.map(id => ({ id })) }
    this.installedAt.set(epoch, this.bus.clock.now())
    for (const hook of [...this.viewHooks]) hook({ view: this.view, previous })
    this.evaluate('view')
  }

  /** The lease lapses or returns; `notify`: the member tells its watchers (it does at its next input). */
  setLease (live: boolean, notify: boolean): void {
    this.leased = live
    if (notify) this.evaluate(live ? 'lease-renewed' : 'lease-expired')
  }

  /** SIGKILL: nothing goes in or out any more. (Its loop stays on the clock, never firing.) */
  kill (): void { this.alive = false }

  /** A graceful leave: not master from now on, then the policies' hooks. */
  async leave (): Promise<void> {
    this.leaving = true
    this.evaluate('leaving')
    await Promise.allSettled([...this.leaveHooks].map(async hook => await hook()))
  }

  private isMaster (masters: number): boolean {
    const rank = this.rank
    return rank !== undefined && rank < masters
  }

  private evaluate (reason: string): void {
    for (const w of [...this.watchers]) {
      const now = this.isMaster(w.masters)
      if (now === w.last) continue
      w.last = now
      w.listener({ isMaster: now, reason })
    }
  }
}

interface Fire { readonly who: string, readonly tick: number, readonly epoch: number, readonly at: number }

/** `ids` hosts in one view (epoch 1, in this order), the job scheduled on those in `withJob`. */
function cluster (ids: readonly string[], opts: ScheduleOptions = {}, withJob: readonly string[] = ids): {
  clock: ManualClock
  bus: Bus
  host: (id: string) => FakeHost
  jobs: Map<string, ScheduledJob>
  fires: Fire[]
  events: Array<{ who: string, e: ScheduleEvent }>
  violations: string[]
  run: (ms: number) => Promise<void>
  runTo: (at: number) => Promise<void>
} {
  const clock = new ManualClock(T0 - EVERY / 2)
  const bus = new Bus(clock)
  const hosts = new Map(ids.map(id => [id, new FakeHost(id, bus)]))
  const host = (id: string): FakeHost => {
    const h = bus.hosts.get(id)
    if (h === undefined) throw new Error(`no host ${id}`)
    return h
  }
  for (const h of hosts.values()) h.install(1, ids)
  const fires: Fire[] = []
  const events: Array<{ who: string, e: ScheduleEvent }> = []
  const violations: string[] = []
  const jobs = new Map<string, ScheduledJob>()
  for (const id of withJob) {
    const h = host(id)
    const job = schedule(h, JOB, { everyMs: EVERY }, t => {
      fires.push({ who: id, tick: t.tick, epoch: t.epoch, at: clock.now() })
      // the claim held: every member of the firer's view recorded the tick before it fired
      for (const m of h.view?.members ?? []) {
        const known = host(m.id).hub.lastFired(JOB)
        if (known === undefined || known < t.tick) violations.push(`${id} fired ${t.tick} before ${m.id} recorded it`)
      }
    }, opts)
    job.on('event', e => events.push({ who: id, e }))
    jobs.set(id, job)
  }
  // at most one timer per loop (each host runs one job), checked after every timer
  const check = (): void => {
    for (const h of bus.hosts.values()) if (h.clock.pending > 1) violations.push(`${h.id} holds ${h.clock.pending} timers at ${clock.now()}`)
  }
  return {
    clock,
    bus,
    host,
    jobs,
    fires,
    events,
    violations,
    run: async ms => await clock.advance(ms, check),
    runTo: async at => await clock.advanceTo(at, check)
  }
}

const ticksOf = (fires: readonly Fire[]): number[] => fires.map(f => f.tick)
const duplicates = (ticks: readonly number[]): number[] => ticks.filter((t, i) => ticks.indexOf(t) !== i)

describe('scheduler on a manual clock', () => {
  for (const missed of ['skip', 'latest'] as const) {
    for (const seed of [1, 2, 3]) {
      it(`fires each tick once across a failover, on a bus that loses, delays and duplicates (missed: ${missed}, seed ${seed})`, async () => {
        const c = cluster(['a', 'b', 'c'], { missed, ackTimeoutMs: 20 })
        const random = seededRandom(seed)
        c.bus.fate = () => {
          const r = random()
          return r < 0.1 ? 'drop' : r < 0.2 ? 'twice' : 1 + Math.floor(random() * 15)
        }
        await c.run(2000)
        const killedAt = c.clock.now()
        c.host('a').kill()
        // the survivors install the view without a a moment apart, as after a real failover
        await c.run(30)
        c.host('c').install(2, ['b', 'c'])
        await c.run(5)
        c.host('b').install(2, ['b', 'c'])
        await c.run(2000)

        expect(c.violations).toEqual([])
        const ticks = ticksOf(c.fires)
        expect(duplicates(ticks), 'ticks fired twice').toEqual([])
        expect([...ticks].sort((x, y) => x - y)).toEqual(ticks) // in order, one firer at a time
        const byA = c.fires.filter(f => f.who === 'a')
        const byB = c.fires.filter(f => f.who === 'b')
        expect(c.fires.filter(f => f.who === 'c')).toEqual([])
        expect(byA.every(f => f.at < killedAt && f.epoch === 1)).toBe(true)
        expect(byB.every(f => f.epoch === 2)).toBe(true)
        // lost frames are resent within the tick: most ticks still fire
        expect(byA.length).toBeGreaterThanOrEqual(15)
        expect(byB.length).toBeGreaterThanOrEqual(15)
        expect(c.fires.every(f => f.at >= f.tick && f.at < f.tick + EVERY)).toBe(true)
        for (const job of c.jobs.values()) await job.cancel()
      })
    }
  }

  it('resends a lost claim to the member that missed it, and fires only once every member acked', async () => {
    const c = cluster(['a', 'b', 'c'], { ackTimeoutMs: 30 })
    let lost = 0
    c.bus.fate = m => (m.msg.type === 'claim' && m.to === 'c' && m.msg.tick === T0 && lost++ === 0 ? 'drop' : 'deliver')
    await c.runTo(T0 + 2 * EVERY + 50)

    const toC = c.bus.claims('c', T0)
    expect(toC.map(m => m.at)).toEqual([T0, T0 + 30])
    expect(c.bus.claims('b', T0)).toHaveLength(1) // b acked the first: not asked again
    const fire = c.fires.find(f => f.tick === T0)
    expect(fire?.at).toBe(T0 + 30 + 2) // the resend's round trip
    expect(ticksOf(c.fires)).toEqual([T0, T0 + EVERY, T0 + 2 * EVERY])
    expect(c.violations).toEqual([])
    for (const job of c.jobs.values()) await job.cancel()
  })

  for (const missed of ['skip', 'latest'] as const) {
    it(`gives up a claim not acked by every member when the next tick comes due: that tick is lost, the next fires on time (missed: ${missed})`, async () => {
      const c = cluster(['a', 'b', 'c'], { missed, ackTimeoutMs: 30 })
      c.bus.fate = m => (m.msg.type === 'claim' && m.to === 'c' && m.msg.tick === T0 ? 'drop' : 'deliver')
      await c.runTo(T0 + 2 * EVERY + 50)

      expect(c.bus.claims('c', T0).map(m => m.at)).toEqual([T0, T0 + 30, T0 + 60, T0 + 90])
      expect(c.fires.map(f => [f.tick, f.at])).toEqual([[T0 + EVERY, T0 + EVERY + 2], [T0 + 2 * EVERY, T0 + 2 * EVERY + 2]])
      // claimed where acked, never fired; not reported as skipped (it was not passed over)
      expect(c.host('b').hub.lastFired(JOB)).toBeGreaterThanOrEqual(T0)
      expect(c.events.filter(x => x.e.type === 'skipped')).toEqual([])
      expect(c.violations).toEqual([])
      for (const job of c.jobs.values()) await job.cancel()
    })
  }

  it('records and acks a claim only from the coordinator of its epoch; other input is dropped and counted', async () => {
    const c = cluster(['a', 'b', 'c'])
    await c.runTo(T0 + 10)
    const receiver = c.host('c')
    const before = receiver.hub.dropped
    const far = T0 + 3_600_000
    // same epoch, another member; an epoch c never installed; a stranger
    c.host('b').sendService('c', SCHEDULER_SERVICE, { type: 'claim', job: JOB, tick: far, epoch: 1 })
    c.host('b').sendService('c', SCHEDULER_SERVICE, { type: 'claim', job: JOB, tick: far, epoch: 7 })
    c.bus.send('x', 'c', { type: 'claim', job: JOB, tick: far, epoch: 1 })
    // unasked answers, garbage
    c.host('b').sendService('c', SCHEDULER_SERVICE, { type: 'state', job: 'other', lastFired: far })
    for (const g of [null, 7, [], {}, { type: 'claim', job: JOB }, { type: 'claim', job: JOB, tick: 'soon', epoch: 1 }, { type: 'claimed', job: JOB }, { type: 'nope', job: JOB }, { type: 'query', job: 'x'.repeat(300) }]) {
      c.host('b').sendService('c', SCHEDULER_SERVICE, g)
    }
    await c.run(10)

    expect(receiver.hub.lastFired(JOB)).toBe(T0)
    expect(receiver.hub.lastFired('other')).toBeUndefined()
    expect(c.bus.sent.filter(m => m.from === 'c' && m.msg.type === 'claimed' && m.msg.tick === far)).toEqual([])
    expect(receiver.hub.dropped - before).toBe(13)
    expect(receiver.drops.filter(r => r === 'scheduler-claim-not-coordinator')).toHaveLength(2)
    expect(receiver.drops.filter(r => r === 'scheduler-claim-epoch-unknown')).toHaveLength(1)
    expect(receiver.drops.filter(r => r === 'scheduler-state-unasked')).toHaveLength(1)
    expect(receiver.drops.filter(r => r === 'scheduler-malformed')).toHaveLength(9)
    // the coordinator's ticks go on
    await c.runTo(T0 + 3 * EVERY + 10)
    expect(ticksOf(c.fires)).toEqual([T0, T0 + EVERY, T0 + 2 * EVERY, T0 + 3 * EVERY])
    for (const job of c.jobs.values()) await job.cancel()
  })

  it('does not ack a claim for an epoch it has not installed, and acks the resend once it has', async () => {
    const c = cluster(['a', 'b', 'c'], { ackTimeoutMs: 20 })
    await c.runTo(T0 + EVERY - 10)
    // d joins (it runs no job: its hub acks all the same); c installs the view last
    const d = new FakeHost('d', c.bus)
    for (const id of ['a', 'b']) c.host(id).install(2, ['a', 'b', 'c', 'd'])
    d.install(2, ['a', 'b', 'c', 'd'])
    await c.run(45)
    const cInstalled = c.clock.now()
    c.host('c').install(2, ['a', 'b', 'c', 'd'])
    await c.runTo(T0 + 2 * EVERY + 50)

    const t1 = T0 + EVERY
    expect(c.bus.claims('c', t1).map(m => [m.at, m.msg.epoch])).toEqual([[t1, 2], [t1 + 20, 2], [t1 + 40, 2]])
    expect(c.host('c').drops.filter(r => r === 'scheduler-claim-epoch-unknown')).toHaveLength(2)
    expect(c.bus.claims('d', t1)).toHaveLength(1)
    const fire = c.fires.find(f => f.tick === t1)
    expect(fire?.at).toBeGreaterThan(cInstalled)
    expect(fire?.epoch).toBe(2)
    expect(ticksOf(c.fires)).toEqual([T0, t1, T0 + 2 * EVERY])
    expect(d.hub.lastFired(JOB)).toBe(T0 + 2 * EVERY)
    expect(c.violations).toEqual([])
    for (const job of c.jobs.values()) await job.cancel()
  })

  for (const notify of [false, true]) {
    it(`does not fire a tick when demoted while it waits for the acks (${notify ? 'the demotion reported' : 'the lease lapsed, found at the next resend'})`, async () => {
      const c = cluster(['a', 'b', 'c'], { ackTimeoutMs: 20 })
      c.bus.fate = m => (m.msg.type === 'claim' && m.to === 'c' && m.msg.tick === T0 ? 'drop' : 'deliver')
      await c.runTo(T0 + 5)
      c.host('a').setLease(false, notify)
      await c.run(40)
      expect(c.host('a').clock.pending, 'the wait was given up').toBe(notify ? 0 : 1)
      c.host('a').setLease(true, notify)
      await c.runTo(T0 + 3 * EVERY + 10)

      expect(ticksOf(c.fires)).toEqual([T0 + EVERY, T0 + 2 * EVERY, T0 + 3 * EVERY])
      // the claim was given up at once on the report, else at the first resend after the lapse
      const resentAfterLapse = c.bus.claims('c', T0).filter(m => m.at > T0 + 5)
      expect(resentAfterLapse).toEqual([])
      expect(c.violations).toEqual([])
      for (const job of c.jobs.values()) await job.cancel()
    })
  }

  // Under 'latest' a successor fires the newest tick that passed before its takeover, unless it
  // knows that tick was claimed. Here it cannot learn it from c (its answers are lost): only its
  // own record, which the firer waited for, keeps it from firing the tick again.
  for (const acked of [true, false]) {
    it(`missed: 'latest', a lost claim, then the firer dies${acked ? ' after the resend got through and it fired' : ' before every member acked'}: the tick fires at most once`, async () => {
      const c = cluster(['a', 'b', 'c'], { missed: 'latest', ackTimeoutMs: 20 })
      let lost = 0
      c.bus.fate = m => {
        if (m.msg.type === 'claim' && m.to === 'b' && m.msg.tick === T0 && (!acked || lost++ === 0)) return 'drop'
        if (m.msg.type === 'state' && m.to === 'b') return 'drop'
        return 'deliver'
      }
      await c.runTo(T0 + 35)
      c.host('a').kill()
      await c.run(15)
      for (const id of ['b', 'c']) c.host(id).install(2, ['b', 'c'])
      await c.runTo(T0 + 3 * EVERY + 10)

      const ofT0 = c.fires.filter(f => f.tick === T0)
      if (acked) {
        expect(ofT0.map(f => f.who)).toEqual(['a'])
        expect(c.bus.claims('b', T0).map(m => m.at)).toEqual([T0, T0 + 20])
      } else {
        // a never had b's ack, so it never fired T0; b knows of no claim and catches T0 up: once
        expect(ofT0.map(f => f.who)).toEqual(['b'])
      }
      const ticks = ticksOf(c.fires)
      expect(duplicates(ticks)).toEqual([])
      expect(c.fires.filter(f => f.who === 'b').map(f => f.tick)).toEqual(acked ? [T0 + EVERY, T0 + 2 * EVERY, T0 + 3 * EVERY] : [T0, T0 + EVERY, T0 + 2 * EVERY, T0 + 3 * EVERY])
      expect(c.violations).toEqual([])
      for (const job of c.jobs.values()) await job.cancel()
    })
  }

  it('stops waiting for a member that leaves the view, and waits for one that joins it', async () => {
    const c = cluster(['a', 'b', 'c'], { ackTimeoutMs: 20 })
    c.bus.fate = m => (m.msg.type === 'claim' && m.to === 'c' ? 'drop' : 'deliver')
    await c.runTo(T0 + 30)
    expect(c.fires).toEqual([])
    // c is excluded: a fires at once, on the view without it
    for (const id of ['a', 'b']) c.host(id).install(2, ['a', 'b'])
    await c.run(1)
    expect(c.fires.map(f => [f.tick, f.at, f.epoch])).toEqual([[T0, T0 + 30, 2]])
    // d joins while a waits for b: a sends d the claim too, and fires once d acked
    c.bus.fate = m => (m.msg.type === 'claim' && m.to === 'b' && m.at < T0 + EVERY + 10 ? 'drop' : 'deliver')
    const d = new FakeHost('d', c.bus)
    await c.runTo(T0 + EVERY + 5)
    for (const h of [c.host('a'), c.host('b'), d]) h.install(3, ['a', 'b', 'd'])
    await c.runTo(T0 + 2 * EVERY - 10)
    expect(c.bus.claims('d', T0 + EVERY).map(m => [m.at, m.msg.epoch])).toEqual([[T0 + EVERY + 5, 3]])
    expect(c.fires.find(f => f.tick === T0 + EVERY)?.at).toBe(T0 + EVERY + 22) // b's resend
    expect(d.hub.lastFired(JOB)).toBe(T0 + EVERY)
    expect(c.violations).toEqual([])
    for (const job of c.jobs.values()) await job.cancel()
  })

  it('remembers at most 10,000 jobs it does not run, forgetting the least recently claimed', async () => {
    const c = cluster(['a', 'b', 'c'])
    c.bus.fate = () => 'drop'
    const receiver = c.host('c')
    for (let i = 0; i <= 10_000; i++) receiver.receive('a', { type: 'claim', job: `other-${i}`, tick: T0, epoch: 1 })
    expect(receiver.hub.lastFired('other-0')).toBeUndefined()
    receiver.receive('a', { type: 'claim', job: 'other-1', tick: T0 + EVERY, epoch: 1 }) // raised: now the most recent
    receiver.receive('a', { type: 'claim', job: 'one-more', tick: T0, epoch: 1 })
    expect(receiver.hub.lastFired('other-1')).toBe(T0 + EVERY)
    expect(receiver.hub.lastFired('other-2')).toBeUndefined()
    expect(receiver.hub.lastFired('other-3')).toBe(T0)
    expect(receiver.hub.lastFired('one-more')).toBe(T0)
    // the job it runs is never forgotten
    receiver.receive('a', { type: 'claim', job: JOB, tick: T0, epoch: 1 })
    for (let i = 0; i < 10_000; i++) receiver.receive('a', { type: 'claim', job: `late-${i}`, tick: T0, epoch: 1 })
    expect(receiver.hub.lastFired(JOB)).toBe(T0)
    for (const job of c.jobs.values()) await job.cancel()
  })

  it('a member that runs no job acks claims: the ticks fire on time', async () => {
    const c = cluster(['a', 'b', 'c'], {}, ['a'])
    await c.runTo(T0 + 9 * EVERY + 10)
    expect(c.fires.map(f => f.at - f.tick)).toEqual(new Array(10).fill(2))
    expect(c.bus.claims().length).toBe(20)
    expect(c.host('c').hub.lastFired(JOB)).toBe(T0 + 9 * EVERY)
    await c.jobs.get('a')?.cancel()
  })

  it('cancel() and a graceful leave leave no timer, also while a claim waits for acks', async () => {
    const c = cluster(['a', 'b', 'c'], { ackTimeoutMs: 20 })
    c.bus.fate = m => (m.msg.type === 'claim' && m.to === 'c' ? 'drop' : 'deliver')
    await c.runTo(T0 + 10)
    expect(c.host('a').clock.pending, 'the claim\'s resend timer').toBe(1)
    await c.jobs.get('a')?.cancel()
    expect(c.host('a').clock.pending).toBe(0)
    expect(c.fires).toEqual([])

    // b takes over a's place on a view without a, then leaves gracefully mid-claim
    for (const id of ['b', 'c']) c.host(id).install(2, ['b', 'c'])
    await c.runTo(T0 + EVERY + 10)
    expect(c.host('b').clock.pending).toBe(1)
    await c.host('b').leave()
    expect(c.host('b').clock.pending).toBe(0)
    await c.jobs.get('c')?.cancel()
    await c.run(1000)
    expect(c.clock.pending, 'no timer left on the clock').toBe(0)
    expect(c.fires).toEqual([])
    expect(c.violations).toEqual([])
  })
})
