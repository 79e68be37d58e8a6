/**
 * Cluster scheduler: the tick math as tables, then real libp2p members in one process on
 * 127.0.0.1 — exactly once on the coordinator, a graceful handover, the missed-tick policies,
 * cancel and stop, hostile service messages, acks from members without jobs, option errors, and
 * a cron spec. The claim protocol under loss, on a manual clock, is in scheduler.manual.test.ts;
 * the SIGKILL failover across processes in scheduler.process.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMember, InvalidOptionError, Member } from '../src/index.js'
import { cronSeries, everySeries, planTicks, schedule, SCHEDULER_SERVICE, type ScheduledJob, type ScheduleEvent, type TickContext } from '../src/policies/scheduler.js'
import { waitUntil } from '../src/testing/member-process.js'
import { internalsOf } from '../src/internal/member-internals.js'

const members: Member[] = []
const jobs: ScheduledJob[] = []
let n = 0
const cluster = (): string => `sched-${process.pid}-${++n}`

afterEach(async () => {
  await Promise.all(jobs.splice(0).map(async j => await j.cancel()))
  await Promise.all(members.splice(0).map(async m => await m.stop()))
})

async function member (c: string, name: string, seeds: string[] = []): Promise<Member> {
  const m = await createMember({ cluster: c, name, seeds, listen: '127.0.0.1:0' })
  members.push(m)
  return m
}
const hostPort = (m: Member): string => /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')?.slice(1).join(':') ?? ''

async function trio (): Promise<[Member, Member, Member]> {
  const c = cluster()
  const a = await member(c, 'a')
  const b = await member(c, 'b', [hostPort(a)])
  await b.waitForView(v => v.members.length === 2, { timeoutMs: 10_000 })
  const cc = await member(c, 'c', [hostPort(a)])
  await Promise.all([a, b, cc].map(async m => await m.waitForView(v => v.members.length === 3, { timeoutMs: 10_000 })))
  await waitUntil(() => a.isCoordinator && b.rank === 1 && cc.rank === 2, 5000, 'leases')
  return [a, b, cc]
}

interface Fire { readonly who: string, readonly tick: number, readonly epoch: number, readonly firedAt: number }

/** Schedules the same job on each member; every fire is logged with the member's name. */
function scheduleAll (ms: readonly Member[], spec: Parameters<typeof schedule>[2], opts: Parameters<typeof schedule>[4] = {}): { fires: Fire[], events: Array<{ who: string, e: ScheduleEvent }>, jobs: ScheduledJob[] } {
  const fires: Fire[] = []
  const events: Array<{ who: string, e: ScheduleEvent }> = []
  const mine = ms.map(m => {
    const job = schedule(m, 'job', spec, (t: TickContext) => { fires.push({ who: m.name, tick: t.tick, epoch: t.epoch, firedAt: t.firedAt }) }, opts)
    job.on('event', e => events.push({ who: m.name, e }))
    jobs.push(job)
    return job
  })
  return { fires, events, jobs: mine }
}

const ticksOf = (fires: readonly Fire[]): number[] => fires.map(f => f.tick).sort((x, y) => x - y)
const gaps = (ticks: readonly number[], step: number): number[] => ticks.slice(1).map((t, i) => (t - (ticks[i] as number)) / step)

describe('tick math (pure)', () => {
  it('everyMs: the next tick and the due ticks are multiples of everyMs since the epoch', () => {
    const s = everySeries(100)
    const cases: Array<[number, number]> = [[0, 100], [1, 100], [99, 100], [100, 200], [1_700_000_000_050, 1_700_000_000_100], [-50, 0]]
    for (const [after, next] of cases) expect(s.next(after), `next(${after})`).toBe(next)
    const due: Array<[number, number, object]> = [
      [100, 150, { count: 0 }],
      [100, 200, { count: 1, first: 200, last: 200 }],
      [100, 450, { count: 3, first: 200, last: 400, beforeLast: 300 }],
      [150, 150, { count: 0 }],
      [0, 1e6, { count: 10_000, first: 100, last: 1e6, beforeLast: 1e6 - 100 }]
    ]
    for (const [a, b, expected] of due) expect(s.due(a, b), `due(${a}, ${b})`).toEqual(expected)
  })

  it('cron: croner computes the ticks, in UTC unless a time zone is given', () => {
    const t = Date.UTC(2024, 0, 1, 0, 0, 5, 0)
    const everySecond = cronSeries('* * * * * *')
    expect(everySecond.next(t)).toBe(t + 1000)
    expect(everySecond.next(t - 1)).toBe(t)
    expect(everySecond.due(t, t + 3500)).toEqual({ count: 3, first: t + 1000, last: t + 3000, beforeLast: t + 2000 })
    expect(everySecond.due(t, t + 999)).toEqual({ count: 0 })
    // past the counting cap the newest ticks still come out right
    const long = everySecond.due(t, t + 2_000_000)
    expect(long.count).toBe(1000)
    expect(long.first).toBe(t + 1000)
    expect(long.last).toBe(t + 2_000_000)
    expect(long.beforeLast).toBe(t + 1_999_000)
    expect(cronSeries('0 0 * * *').next(t)).toBe(Date.UTC(2024, 0, 2))
    expect(cronSeries('0 0 * * *', 'Europe/Berlin').next(t)).toBe(Date.UTC(2024, 0, 1, 23))
  })

  it('planTicks: a tick that came due while the master waited fires; other due ticks follow the missed policy', () => {
    const one = { count: 1, first: 500, last: 500 }
    const three = { count: 3, first: 300, last: 500, beforeLast: 400 }
    const cases: Array<[string, Parameters<typeof planTicks>, object]> = [
      ['nothing due', [{ count: 0 }, 450, 'skip'], {}],
      ['the tick the timer waited for', [one, 450, 'skip'], { fire: 500 }],
      ['the tick the timer waited for, latest', [one, 450, 'latest'], { fire: 500 }],
      ['a tick that came due while fn ran, skip', [one, undefined, 'skip'], { skipped: { ticks: 1, from: 500, to: 500 } }],
      ['a tick that came due while fn ran, latest', [one, undefined, 'latest'], { fire: 500 }],
      ['a tick that passed before the promotion, skip', [one, 520, 'skip'], { skipped: { ticks: 1, from: 500, to: 500 } }],
      ['a tick that passed before the promotion, latest', [one, 520, 'latest'], { fire: 500 }],
      ['promoted at 450: 500 came due during the query and fires, older ones are skipped', [three, 450, 'skip'], { fire: 500, skipped: { ticks: 2, from: 300, to: 400 } }],
      ['the timer waited since 250 but three came due (a blocked loop), skip', [three, 250, 'skip'], { skipped: { ticks: 3, from: 300, to: 500 } }],
      ['the same under latest: the newest fires once', [three, 250, 'latest'], { fire: 500, skipped: { ticks: 2, from: 300, to: 400 } }],
      ['several passed while fn ran, latest', [three, undefined, 'latest'], { fire: 500, skipped: { ticks: 2, from: 300, to: 400 } }]
    ]
    for (const [label, args, expected] of cases) expect(planTicks(...args), label).toEqual(expected)
  })
})

describe('cluster scheduler', () => {
  it('fires every tick exactly once cluster-wide, consecutively, on the coordinator only', async () => {
    const [a, b, c] = await trio()
    const { fires, events, jobs: [, jb, jc] } = scheduleAll([a, b, c], { everyMs: 100 })
    const started = Date.now()
    await waitUntil(() => Date.now() - started >= 3000 && fires.length >= 25, 10_000, '3 s of ticks')
    await Promise.all(jobs.map(async j => await j.cancel()))
    const ticks = ticksOf(fires)
    expect(new Set(ticks).size).toBe(ticks.length)
    expect(gaps(ticks, 100).every(g => g === 1), `gaps: ${gaps(ticks, 100).join(',')}`).toBe(true)
    expect(ticks.length).toBeGreaterThanOrEqual(25)
    expect(new Set(fires.map(f => f.who))).toEqual(new Set(['a']))
    expect(fires.every(f => f.epoch === a.epoch)).toBe(true)
    expect(fires.every(f => f.firedAt >= f.tick)).toBe(true)
    // the others recorded every claim before it fired
    const last = ticks[ticks.length - 1] as number
    expect(jb?.lastFired).toBeGreaterThanOrEqual(last)
    expect(jc?.lastFired).toBeGreaterThanOrEqual(last)
    expect(events.filter(x => x.e.type === 'fired').length).toBe(fires.length)
    expect(events.filter(x => x.e.type !== 'fired')).toEqual([])
    // after cancel nothing fires
    const count = fires.length
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(fires.length).toBe(count)
  })

  // Under 'latest' a successor fires the newest tick that passed before its takeover, unless it
  // learned that tick was claimed: this is where the claim/query protocol is load-bearing.
  for (const missed of ['skip', 'latest'] as const) {
    it(`on a graceful stop of the coordinator the successor continues: no tick twice, a small gap (missed: ${missed})`, async () => {
      const [a, b, c] = await trio()
      const { fires } = scheduleAll([a, b, c], { everyMs: 100 }, { missed })
      await waitUntil(() => fires.length >= 10, 10_000, 'ticks on a')
      await a.stop()
      const aStopped = Date.now()
      const aFires = fires.filter(f => f.who === 'a')
      await waitUntil(() => fires.filter(f => f.who === 'b').length >= 10, 10_000, 'ticks on b')
      await Promise.all(jobs.map(async j => await j.cancel()))
      const ticks = ticksOf(fires)
      expect(new Set(ticks).size, 'a tick fired twice').toBe(ticks.length)
      const bFires = fires.filter(f => f.who === 'b')
      expect(fires.filter(f => f.who === 'c')).toEqual([])
      // a fired nothing once its stop began: all its fires came before the successor's first
      expect(fires.filter(f => f.who === 'a')).toEqual(aFires)
      const lastA = Math.max(...aFires.map(f => f.tick))
      const firstB = Math.min(...bFires.map(f => f.tick))
      expect(firstB).toBeGreaterThan(lastA)
      expect(Math.max(...aFires.map(f => f.firedAt))).toBeLessThan(Math.min(...bFires.map(f => f.firedAt)))
      expect((firstB - lastA) / 100 - 1, 'missing ticks at the handover').toBeLessThanOrEqual(10)
      expect(bFires.every(f => f.epoch > (aFires[0]?.epoch ?? 0))).toBe(true)
      expect(Math.min(...bFires.map(f => f.firedAt)) - aStopped).toBeLessThan(2000)
    })
  }

  for (const missed of ['skip', 'latest'] as const) {
    it(`missed: '${missed}' — ticks that pass during a long fn ${missed === 'skip' ? 'are skipped' : 'fire once, the newest'}`, async () => {
      const a = await member(cluster(), 'solo')
      const fires: Array<TickContext & { endedAt: number }> = []
      const events: ScheduleEvent[] = []
      const job = schedule(a, 'slow', { everyMs: 100 }, async t => {
        if (fires.length === 0) await new Promise(resolve => setTimeout(resolve, 350))
        fires.push({ ...t, endedAt: Date.now() })
      }, { missed })
      jobs.push(job)
      job.on('event', e => events.push(e))
      await waitUntil(() => fires.length >= 3, 5000, 'three fires')
      await job.cancel()
      const [first, second] = fires as [TickContext & { endedAt: number }, TickContext & { endedAt: number }]
      const skipped = events.find(e => e.type === 'skipped') as Extract<ScheduleEvent, { type: 'skipped' }>
      expect(skipped).toBeDefined()
      expect(skipped.from).toBe(first.tick + 100)
      expect(skipped.ticks).toBe((skipped.to - skipped.from) / 100 + 1)
      expect(second.tick).toBe(skipped.to + 100)
      if (missed === 'skip') {
        // the ticks that passed during the long fn are dropped; the next fires at its time
        expect(skipped.ticks).toBeGreaterThanOrEqual(3)
        expect(second.tick).toBeGreaterThan(first.endedAt)
      } else {
        // the newest tick that passed during the long fn fires at once, late
        expect(skipped.ticks).toBeGreaterThanOrEqual(2)
        expect(second.tick).toBeLessThanOrEqual(first.endedAt)
        expect(second.firedAt).toBeGreaterThanOrEqual(first.endedAt)
      }
      expect(events.filter(e => e.type === 'skipped')).toHaveLength(1)
    })
  }

  it('cancel aborts a running tick and waits for it; stop ends firing; the name is free again', async () => {
    const a = await member(cluster(), 'solo')
    let signal: AbortSignal | undefined
    let ended = 0
    const job = schedule(a, 'hang', { everyMs: 50 }, async t => {
      signal = t.signal
      await new Promise(resolve => t.signal.addEventListener('abort', resolve, { once: true }))
      await new Promise(resolve => setTimeout(resolve, 50))
      ended = Date.now()
    })
    await waitUntil(() => signal !== undefined, 5000, 'a fire')
    await job.cancel()
    expect(signal?.aborted).toBe(true)
    expect(ended).toBeGreaterThan(0)
    const fires: number[] = []
    const again = schedule(a, 'hang', { everyMs: 50 }, t => { fires.push(t.tick) })
    jobs.push(again)
    await waitUntil(() => fires.length >= 2, 5000, 'fires of the new job')
    await a.stop()
    const count = fires.length
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(fires.length).toBe(count)
  })

  it('a graceful leave waits for a running fn, but a hung one only up to leaveTimeoutMs', async () => {
    const a = await createMember({ cluster: cluster(), name: 'solo', listen: '127.0.0.1:0', leaveTimeoutMs: 500 })
    members.push(a)
    let release = (): void => {}
    const released = new Promise<void>(resolve => { release = resolve })
    let signal: AbortSignal | undefined
    const job = schedule(a, 'stuck', { everyMs: 50 }, async t => { signal = t.signal; await released })
    await waitUntil(() => signal !== undefined, 5000, 'a fire')
    const t0 = Date.now()
    await a.stop()
    const took = Date.now() - t0
    expect(signal?.aborted).toBe(true)
    expect(took).toBeGreaterThanOrEqual(450)
    expect(took).toBeLessThan(3000)
    release()
    await job.cancel()
  })

  it('reports fn errors as events and keeps firing', async () => {
    const a = await member(cluster(), 'solo')
    const events: ScheduleEvent[] = []
    const job = schedule(a, 'fails', { everyMs: 50 }, t => { if (t.tick % 100 === 0) throw new Error('boom'); return Promise.reject(new Error('async boom')) })
    jobs.push(job)
    job.on('event', e => events.push(e))
    await waitUntil(() => events.filter(e => e.type === 'error').length >= 4, 5000, 'errors')
    const errors = events.filter((e): e is Extract<ScheduleEvent, { type: 'error' }> => e.type === 'error')
    expect(errors.map(e => (e.error as Error).message)).toContain('boom')
    expect(errors.map(e => (e.error as Error).message)).toContain('async boom')
    expect(errors.every(e => e.job === 'fails' && e.tick > 0)).toBe(true)
  })

  it('ignores malformed scheduler messages and claims from a member that did not coordinate their epoch', async () => {
    const [a, b, c] = await trio()
    const { fires, jobs: [ja] } = scheduleAll([a, b, c], { everyMs: 100 })
    await waitUntil(() => fires.length >= 3, 10_000, 'first ticks')
    const far = Date.now() + 3_600_000
    const garbage: unknown[] = [null, 7, 'claim', [], {}, { type: 'claim' }, { type: 'claim', job: 'job', tick: 'soon', epoch: 1 },
      { type: 'claim', job: '', tick: far, epoch: a.epoch }, { type: 'claim', job: 'job', tick: Number.NaN, epoch: a.epoch },
      { type: 'state', job: 'job', lastFired: 'x' }, { type: 'claimed', job: 'job' }, { type: 'nope', job: 'job' },
      { type: 'query', job: 'x'.repeat(10_000) },
      // claims from a member that did not coordinate the epoch (an older one, the current one)
      // must not hold back the ticks
      { type: 'claim', job: 'job', tick: far, epoch: a.epoch - 1 }, { type: 'claim', job: 'job', tick: far, epoch: a.epoch }]
    for (const g of garbage) internalsOf(c).sendService(a.id, SCHEDULER_SERVICE, g)
    const before = fires.length
    await waitUntil(() => fires.length >= before + 5, 5000, 'ticks after the garbage')
    expect(a.dropped['service-error']).toBeUndefined()
    expect((a.dropped['scheduler-claim-not-coordinator'] ?? 0) + (a.dropped['scheduler-claim-epoch-unknown'] ?? 0)).toBe(2)
    expect(ja?.lastFired).toBeLessThan(far)
    expect(new Set(fires.map(f => f.who))).toEqual(new Set(['a']))
  })

  it('members that run no scheduled job ack claims all the same: the ticks fire on time', async () => {
    const [a] = await trio()
    const { fires } = scheduleAll([a], { everyMs: 100 })
    await waitUntil(() => fires.length >= 8, 5000, 'ticks with acks from b and c')
    await Promise.all(jobs.map(async j => await j.cancel()))
    const ticks = ticksOf(fires)
    expect(gaps(ticks, 100).every(g => g === 1), `gaps: ${gaps(ticks, 100).join(',')}`).toBe(true)
    expect(fires.every(f => f.firedAt - f.tick < 100)).toBe(true)
  })

  it('fires a cron spec (every second) on the coordinator only', async () => {
    const [a, b, c] = await trio()
    const { fires } = scheduleAll([a, b, c], { cron: '* * * * * *' })
    await waitUntil(() => fires.length >= 3, 10_000, 'three cron ticks')
    await Promise.all(jobs.map(async j => await j.cancel()))
    const ticks = ticksOf(fires)
    expect(new Set(fires.map(f => f.who))).toEqual(new Set(['a']))
    expect(ticks.every(t => t % 1000 === 0)).toBe(true)
    expect(new Set(ticks).size).toBe(ticks.length)
    expect(gaps(ticks, 1000).every(g => g === 1)).toBe(true)
  })
})

describe('bad input', () => {
  const fn = (): void => {}
  const cases: Array<[string, () => unknown, string]> = [
    ['an empty name', () => [''], 'name'],
    ['a name that is not a string', () => [42], 'name'],
    ['no spec', () => ['j', null], 'spec'],
    ['an empty spec', () => ['j', {}], 'spec'],
    ['both everyMs and cron', () => ['j', { everyMs: 100, cron: '* * * * *' }], 'spec'],
    ['everyMs below 10', () => ['j', { everyMs: 5 }], 'spec.everyMs'],
    ['everyMs not an integer', () => ['j', { everyMs: 100.5 }], 'spec.everyMs'],
    ['everyMs negative', () => ['j', { everyMs: -100 }], 'spec.everyMs'],
    ['everyMs above 2^31', () => ['j', { everyMs: 2 ** 31 + 1 }], 'spec.everyMs'],
    ['everyMs a string', () => ['j', { everyMs: '100' }], 'spec.everyMs'],
    ['a cron expression with too few fields', () => ['j', { cron: 'nope' }], 'spec.cron'],
    ['a cron field out of range', () => ['j', { cron: '61 * * * *' }], 'spec.cron'],
    ['a cron spec that is not a string', () => ['j', { cron: 5 }], 'spec.cron'],
    ['a cron expression that never runs again', () => ['j', { cron: '0 0 0 1 1 * 2001' }], 'spec.cron'],
    ['an unknown time zone', () => ['j', { cron: '* * * * *', timezone: 'Mars/Olympus' }], 'spec.timezone'],
    ['fn not a function', () => ['j', { everyMs: 100 }, 'fn'], 'fn'],
    ['an unknown missed policy', () => ['j', { everyMs: 100 }, fn, { missed: 'sometimes' }], 'missed'],
    ['a masters option (only the coordinator fires)', () => ['j', { everyMs: 100 }, fn, { masters: 2 }], 'masters'],
    ['an unknown option', () => ['j', { everyMs: 100 }, fn, { mised: 'latest' }], 'mised'],
    ['ackTimeoutMs 0', () => ['j', { everyMs: 100 }, fn, { ackTimeoutMs: 0 }], 'ackTimeoutMs'],
    ['ackTimeoutMs NaN', () => ['j', { everyMs: 100 }, fn, { ackTimeoutMs: Number.NaN }], 'ackTimeoutMs']
  ]
  for (const [label, args, option] of cases) {
    it(`rejects ${label}`, () => {
      const m = new Member({ cluster: 'x' })
      const [name, spec = { everyMs: 100 }, f = fn, opts] = args() as [string, never, never, never]
      let caught: unknown
      try { schedule(m, name, spec, f, opts) } catch (err) { caught = err }
      expect(caught).toBeInstanceOf(InvalidOptionError)
      expect((caught as InvalidOptionError).option).toBe(option)
      expect((caught as InvalidOptionError).message).toContain(`"${option}"`)
    })
  }

  it('rejects a duplicate job name on the same member, and accepts it on another', async () => {
    const m = new Member({ cluster: 'x' })
    const first = schedule(m, 'dup', { everyMs: 100 }, fn)
    let caught: unknown
    try { schedule(m, 'dup', { cron: '* * * * *' }, fn) } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(InvalidOptionError)
    expect((caught as InvalidOptionError).option).toBe('name')
    const other = schedule(new Member({ cluster: 'x' }), 'dup', { everyMs: 100 }, fn)
    await Promise.all([first.cancel(), other.cancel()])
    const again = schedule(m, 'dup', { everyMs: 100 }, fn)
    await again.cancel()
  })
})
