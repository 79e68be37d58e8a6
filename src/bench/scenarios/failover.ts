/**
 * failover: SIGKILL, SIGSTOP and graceful stop (SIGTERM) of the coordinator of N member
 * processes, R rounds each with a random pause before the action. Per round:
 *   first:      signal → the first survivor reporting itself coordinator;
 *   agreed:     signal → every survivor holding the same view;
 *   leaderless: from the moment the old coordinator stopped acting (the signal, or its own
 *               "no longer coordinator" line on a graceful leave) to the first new claim.
 * The cluster is refilled to N after each round; those joins are recorded too.
 */
import { waitUntil, agreed, type MemberEvent, type MemberProcess, type ViewEvent } from '../../testing/member-process.js'
import { wallClockMs } from '../../clock.js'
import { summarize } from '../stats.js'
import { checkAborted, type BenchContext, type Figure } from '../context.js'
import { agreedAt, grow, type JoinSample } from '../cluster.js'
import { int, listOf, within, type Scenario } from '../scenario.js'

type Case = 'kill' | 'stop' | 'graceful'
const CASES: readonly Case[] = ['kill', 'stop', 'graceful']
const SIGNALS: Record<Case, NodeJS.Signals> = { kill: 'SIGKILL', stop: 'SIGSTOP', graceful: 'SIGTERM' }
const LABEL: Record<Case, string> = { kill: 'SIGKILL', stop: 'SIGSTOP', graceful: 'graceful stop' }
/** Targets (issue 2/5), median and p99 of "first", in ms. */
const TARGET: Record<Case, [number, number]> = { kill: [150, 400], stop: [1000, 1500], graceful: [10, 25] }

export interface FailoverRound { case: Case, round: number, pauseMs: number, firstMs?: number, agreedMs?: number, leaderlessMs?: number, error?: string }

const claims = (e: MemberEvent): boolean => (e.type === 'view' && (e as ViewEvent).isCoordinator) || (e.type === 'coordinator' && e.isCoordinator === true)

async function round (ctx: BenchContext, group: MemberProcess[], c: Case, n: number): Promise<{ result: FailoverRound, survivors: MemberProcess[] }> {
  const pauseMs = 200 + Math.random() * 800
  await ctx.sleep(pauseMs)
  checkAborted(ctx)
  const victim = group.find(p => p.lastView()?.isCoordinator === true)
  if (victim === undefined) return { result: { case: c, round: n, pauseMs, error: 'no coordinator before the action' }, survivors: group }
  const survivors = group.filter(p => p !== victim)
  const marks = new Map(survivors.map(p => [p, p.events.length]))
  const victimMark = victim.events.length
  const since = (p: MemberProcess): MemberEvent[] => p.events.slice(marks.get(p))
  const t0 = wallClockMs()
  victim.kill(SIGNALS[c])
  try {
    await waitUntil(() => survivors.some(p => since(p).some(claims)) || ctx.aborted, 10_000, 'a new coordinator')
    checkAborted(ctx)
    const first = Math.min(...survivors.map(p => since(p).find(claims)?.ts ?? Number.POSITIVE_INFINITY))
    await waitUntil(() => (agreed(survivors, survivors.length) && survivors.every(p => since(p).some(e => e.type === 'view'))) || ctx.aborted, 10_000, 'the survivors to agree')
    checkAborted(ctx)
    const stepDown = victim.events.slice(victimMark).find(e => e.type === 'coordinator' && e.isCoordinator === false)?.ts
    const stoppedActing = Math.max(t0, stepDown ?? t0)
    return { result: { case: c, round: n, pauseMs, firstMs: first - t0, agreedMs: agreedAt(survivors) - t0, leaderlessMs: Math.max(0, first - stoppedActing) }, survivors }
  } catch (err) {
    if (ctx.aborted) throw err
    return { result: { case: c, round: n, pauseMs, error: err instanceof Error ? err.message : String(err) }, survivors }
  } finally {
    if (c === 'stop') victim.kill('SIGKILL')
    if (c === 'graceful') await victim.stop(3000)
  }
}

export const failover: Scenario = {
  name: 'failover',
  summary: 'SIGKILL / SIGSTOP / graceful stop of the coordinator: time to a new coordinator',
  flags: {
    rounds: { default: '20', describe: 'rounds per case', parse: int(1, 1000) },
    members: { default: '3', describe: 'cluster size', parse: int(2, 20) },
    cases: { default: CASES.join(','), describe: `which actions: ${CASES.join(', ')}`, parse: listOf(CASES) }
  },
  smoke: { rounds: '1', members: '2', cases: 'kill,graceful' },
  async run (ctx, flags) {
    const rounds = flags.rounds as number
    const size = flags.members as number
    const cases = flags.cases as Case[]
    const report = ctx.report
    const results: FailoverRound[] = []
    const joins: JoinSample[] = []
    report.settings = { rounds, members: size, cases }
    report.samples = { rounds: results, joins }
    const cluster = ctx.cluster('failover')
    let group: MemberProcess[] = []
    ctx.progress.start('failover', rounds * cases.length)
    joins.push(...await grow(ctx, cluster, group, size))
    for (const c of cases) {
      for (let r = 1; r <= rounds; r++) {
        const { result, survivors } = await round(ctx, group, c, r)
        results.push(result)
        group = survivors
        ctx.progress.tick(`${c} ${result.error ?? `${(result.firstMs ?? 0).toFixed(0)} ms`}`)
        joins.push(...await grow(ctx, cluster, group, size))
      }
    }
    report.figures = figures(results, joins, cases)
    report.charts = [{
      name: 'failover',
      spec: {
        title: `Failover: signal → first new coordinator (${size} members)`,
        data: { values: results.filter(r => r.firstMs !== undefined).map(r => ({ case: LABEL[r.case], ms: r.firstMs })) },
        mark: { type: 'tick', thickness: 2 },
        encoding: {
          x: { field: 'ms', type: 'quantitative', title: 'ms (log scale)', scale: { type: 'log' } },
          y: { field: 'case', type: 'nominal', title: null }
        },
        width: 560
      }
    }]
  }
}

function figures (results: readonly FailoverRound[], joins: readonly JoinSample[], cases: readonly Case[]): Figure[] {
  const out: Figure[] = []
  for (const c of cases) {
    const ok = results.filter(r => r.case === c && r.error === undefined)
    const first = summarize(ok.map(r => r.firstMs as number))
    const [m, p] = TARGET[c]
    out.push({ figure: `${LABEL[c]} → first new coordinator`, unit: 'ms', median: first.median, p99: first.p99, n: first.n, target: `≤ ${m} / ${p} ms`, met: first.n > 0 && within(first.median, first.p99, m, p) })
    const all = summarize(ok.map(r => r.agreedMs as number))
    out.push({ figure: `${LABEL[c]} → all survivors agree`, unit: 'ms', median: all.median, p99: all.p99, n: all.n })
    const gap = summarize(ok.map(r => r.leaderlessMs as number))
    out.push({ figure: `${LABEL[c]}: leaderless gap`, unit: 'ms', median: gap.median, p99: gap.p99, n: gap.n })
    const failed = results.filter(r => r.case === c).length - ok.length
    if (failed > 0) out.push({ figure: `${LABEL[c]}: failed rounds`, unit: '', value: failed })
  }
  const ready = summarize(joins.map(j => j.fromReadyMs))
  out.push({ figure: 'join (refills): ready → all agree', unit: 'ms', median: ready.median, p99: ready.p99, n: ready.n, target: '≤ 250 ms', met: ready.n > 0 && ready.median <= 250 })
  return out
}
