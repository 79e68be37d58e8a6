/**
 * Mastership benchmark (real processes on 127.0.0.1, and one in-process figure):
 *  - route:  SIGKILL of the master → the successor's route start(), and → its "master" line,
 *            over N rounds (3 members of examples/master-route, the killed one replaced each round);
 *  - resume: SIGSTOP the master until the group has a new one, SIGCONT, then count the items the
 *            old master's filter passes after the resume (target 0), over N rounds
 *            (3 members of examples/filtered-stream; the resumed one rejoins as youngest);
 *  - scheduler: SIGKILL of the process firing a 100 ms job → the next tick fired by a survivor:
 *            the time from the kill, the ticks missed in between, and tick times fired twice
 *            over the whole run (target 0), over N rounds (3 members of examples/scheduled-job);
 *  - filter: items per second through the filter on a master, in-process.
 *
 *   node dist/bench/mastership.js [--rounds 20] [--cases route,resume,scheduler,filter] [--out FILE]
 */
import { parseArgs } from 'node:util'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { MemberProcess, waitUntil, type MemberEvent } from '../src/testing/member-process.js'
import { wallClockMs } from '../src/clock.js'
import { createMember } from '../src/index.js'
import { masterOnly, masterOnlySync, masterOnlyStream } from '../src/policies/filter.js'
import { fmt, summarize, type Summary } from '../src/bench/stats.js'

const CASES = ['route', 'resume', 'scheduler', 'filter'] as const
type Case = typeof CASES[number]
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    cases: { type: 'string', default: CASES.join(',') },
    out: { type: 'string', default: `bench/results/mastership-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const rounds = Number(values.rounds)
const cases = (values.cases ?? '').split(',') as Case[]
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a positive integer, got ${values.rounds}`)
for (const c of cases) if (!CASES.includes(c)) fail(`--cases: unknown case "${c}"; valid: ${CASES.join(', ')}`)
function fail (msg: string): never {
  process.stderr.write(`mastership bench: ${msg}\n`)
  process.exit(2)
}

const ROUTE = fileURLToPath(new URL('../examples/master-route.js', import.meta.url))
const FILTER = fileURLToPath(new URL('../examples/filtered-stream.js', import.meta.url))
const JOB = fileURLToPath(new URL('../examples/scheduled-job.js', import.meta.url))
const TICK_MS = 100
const all: MemberProcess[] = []
let serial = 0

const viewSize = (p: MemberProcess): number => ([...p.events].reverse().find(e => e.type === 'view')?.members as string[] | undefined)?.length ?? 0

/** Keeps `group` at 3 members of `script`, spawning one at a time; returns the group. */
async function refill (script: string, cluster: string, group: MemberProcess[], extraArgs: readonly string[] = []): Promise<MemberProcess[]> {
  while (group.length < 3) {
    const p = new MemberProcess({ cluster, name: `m${++serial}`, seeds: group.map(q => q.address as string), script, extraArgs })
    all.push(p)
    await p.waitReady(30_000)
    group.push(p)
    await waitUntil(() => group.every(q => viewSize(q) === group.length), 15_000, 'the group to agree')
  }
  return group
}

async function routeCase (): Promise<{ routeStartMs: number[], masterLineMs: number[], failed: number }> {
  const cluster = `bm-route-${process.pid}`
  let group: MemberProcess[] = []
  const routeStartMs: number[] = []
  const masterLineMs: number[] = []
  let failed = 0
  for (let r = 1; r <= rounds; r++) {
    group = await refill(ROUTE, cluster, group)
    await new Promise(resolve => setTimeout(resolve, 200 + Math.random() * 800))
    const master = group.find(p => p.events.some(e => e.type === 'work' && e.ts > wallClockMs() - 500))
    if (master === undefined) { failed++; continue }
    const rest = group.filter(p => p !== master)
    const t0 = wallClockMs()
    master.kill('SIGKILL')
    group = rest
    try {
      await waitUntil(() => rest.some(p => p.events.some(e => e.type === 'route' && e.event === 'started' && e.ts >= t0)), 10_000, 'a successor route start')
      const started = Math.min(...rest.map(p => p.events.find(e => e.type === 'route' && e.event === 'started' && e.ts >= t0)?.ts ?? Infinity))
      const line = Math.min(...rest.map(p => p.events.find(e => e.type === 'master' && e.isMaster === true && e.ts >= t0)?.ts ?? Infinity))
      routeStartMs.push(started - t0)
      masterLineMs.push(line - t0)
    } catch { failed++ }
    process.stderr.write(`\rroute   round ${r}/${rounds}: start ${fmt(routeStartMs.at(-1) ?? NaN)} ms    `)
  }
  process.stderr.write('\n')
  return { routeStartMs, masterLineMs, failed }
}

async function resumeCase (): Promise<{ passedAfterResume: number[], failed: number }> {
  const cluster = `bm-resume-${process.pid}`
  let group: MemberProcess[] = []
  const passedAfterResume: number[] = []
  let failed = 0
  for (let r = 1; r <= rounds; r++) {
    group = await refill(FILTER, cluster, group)
    await new Promise(resolve => setTimeout(resolve, 200 + Math.random() * 800))
    const now = wallClockMs()
    const master = group.find(p => p.events.some(e => e.type === 'item' && e.ts > now - 200))
    if (master === undefined) { failed++; continue }
    const rest = group.filter(p => p !== master)
    master.kill('SIGSTOP')
    const stoppedAt = wallClockMs()
    try {
      await waitUntil(() => rest.some(p => p.events.some(e => e.type === 'item' && e.ts > stoppedAt)), 10_000, 'a new master passing items')
      const resumed = wallClockMs()
      master.kill('SIGCONT')
      // the resumed member rejoins; its source keeps producing an item every 20 ms
      await waitUntil(() => viewSize(master) === 3 && rest.every(p => viewSize(p) === 3), 10_000, 'the resumed member to rejoin')
      await new Promise(resolve => setTimeout(resolve, 300))
      passedAfterResume.push(master.events.filter(e => e.type === 'item' && e.ts >= resumed).length)
      group = [...rest, master]
    } catch {
      failed++
      master.kill('SIGCONT')
      master.kill('SIGKILL')
      group = rest
    }
    process.stderr.write(`\rresume  round ${r}/${rounds}: passed after resume ${passedAfterResume.at(-1) ?? '—'}    `)
  }
  process.stderr.write('\n')
  return { passedAfterResume, failed }
}

async function schedulerCase (): Promise<{ nextTickMs: number[], missedTicks: number[], ticksFired: number, firedTwice: number, failed: number }> {
  const cluster = `bm-sched-${process.pid}`
  let group: MemberProcess[] = []
  const members: MemberProcess[] = []
  const nextTickMs: number[] = []
  const missedTicks: number[] = []
  let failed = 0
  const ticksOf = (p: MemberProcess): MemberEvent[] => p.events.filter(e => e.type === 'tick')
  for (let r = 1; r <= rounds; r++) {
    group = await refill(JOB, cluster, group, ['--every', String(TICK_MS)])
    for (const p of group) if (!members.includes(p)) members.push(p)
    await new Promise(resolve => setTimeout(resolve, 500 + Math.random() * 1000))
    const now = wallClockMs()
    const firing = group.find(p => ticksOf(p).some(e => e.ts > now - 3 * TICK_MS))
    if (firing === undefined) { failed++; continue }
    const rest = group.filter(p => p !== firing)
    const t0 = wallClockMs()
    firing.kill('SIGKILL')
    group = rest
    try {
      await waitUntil(() => rest.some(p => ticksOf(p).some(e => e.ts >= t0)), 10_000, 'a survivor to fire')
      const next = rest.flatMap(ticksOf).filter(e => e.ts >= t0).reduce((a, b) => (b.ts < a.ts ? b : a))
      const lastBefore = Math.max(...ticksOf(firing).map(e => e.tick as number))
      nextTickMs.push(next.ts - t0)
      missedTicks.push(((next.tick as number) - lastBefore) / TICK_MS - 1)
    } catch { failed++ }
    process.stderr.write(`\rscheduler round ${r}/${rounds}: next tick ${fmt(nextTickMs.at(-1) ?? NaN)} ms after the kill    `)
  }
  process.stderr.write('\n')
  const ticks = members.flatMap(ticksOf).map(e => e.tick as number)
  return { nextTickMs, missedTicks, ticksFired: ticks.length, firedTwice: ticks.length - new Set(ticks).size, failed }
}

async function filterCase (): Promise<Record<string, number>> {
  const member = await createMember({ cluster: `bm-filter-${process.pid}`, name: 'solo' })
  const items = Array.from({ length: 2_000_000 }, (_, i) => i)
  const rate = async (label: string, run: () => Promise<number> | number): Promise<[string, number]> => {
    await run() // warm up
    const samples: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      const count = await run()
      if (count !== items.length) throw new Error(`${label}: passed ${count} of ${items.length}`)
      samples.push(items.length / ((performance.now() - t0) / 1000))
    }
    return [label, summarize(samples).median]
  }
  const results = Object.fromEntries([
    await rate('isMaster() check alone', () => { let c = 0; for (const _ of items) if (member.isMaster()) c++; return c }),
    await rate('masterOnlySync (generator)', () => { let c = 0; for (const _ of masterOnlySync(member, items)) c++; return c }),
    await rate('masterOnly (async iterator)', async () => { let c = 0; for await (const _ of masterOnly(member, items)) c++; return c }),
    await rate('masterOnlyStream (Transform)', async () => {
      let c = 0
      await pipeline(Readable.from(items), masterOnlyStream(member), new Writable({ objectMode: true, write (_x, _e, done) { c++; done() } }))
      return c
    })
  ])
  await member.stop()
  return results
}

async function main (): Promise<void> {
  const started = Date.now()
  const report: Record<string, unknown> = {}
  try {
    if (cases.includes('route')) report.route = await routeCase()
    if (cases.includes('resume')) report.resume = await resumeCase()
    if (cases.includes('scheduler')) report.scheduler = await schedulerCase()
    if (cases.includes('filter')) report.filter = await filterCase()
  } finally {
    await Promise.all(all.map(async p => { if (p.running) { p.kill('SIGCONT'); await p.stop(2000) } }))
  }
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadavg: loadavg() }
  const out = { bench: 'mastership', date: new Date().toISOString(), durationS: (Date.now() - started) / 1000, settings: { rounds, cases }, machine, ...report }
  mkdirSync(dirname(values.out as string), { recursive: true })
  writeFileSync(values.out as string, JSON.stringify(out, null, 2))

  const lines = [`mastership; ${machine.cores} cores, ${machine.node}, load ${machine.loadavg.map(l => l.toFixed(2)).join(' ')}`]
  const row = (label: string, s: Summary): string => `| ${label.padEnd(44)} | ${fmt(s.median).padStart(7)} | ${fmt(s.p99).padStart(7)} | ${String(s.n).padStart(3)} |`
  const route = report.route as Awaited<ReturnType<typeof routeCase>> | undefined
  if (route !== undefined) {
    lines.push('| figure (ms)                                  |  median |     p99 |   n |', '|----------------------------------------------|--------:|--------:|----:|')
    lines.push(row('SIGKILL master → successor prints "master"', summarize(route.masterLineMs)))
    lines.push(row('SIGKILL master → successor route start()', summarize(route.routeStartMs)))
    if (route.failed > 0) lines.push(`(${route.failed} route rounds failed)`)
  }
  const resume = report.resume as Awaited<ReturnType<typeof resumeCase>> | undefined
  if (resume !== undefined) {
    const total = resume.passedAfterResume.reduce((a, b) => a + b, 0)
    lines.push(`SIGSTOP+SIGCONT of the master: items its filter passed after the resume: ${total} in ${resume.passedAfterResume.length} rounds (per round: ${resume.passedAfterResume.join(' ')})${resume.failed > 0 ? `; ${resume.failed} rounds failed` : ''}`)
  }
  const sched = report.scheduler as Awaited<ReturnType<typeof schedulerCase>> | undefined
  if (sched !== undefined) {
    const gap = summarize(sched.nextTickMs)
    const missed = summarize(sched.missedTicks)
    lines.push(`scheduler (${TICK_MS} ms ticks), SIGKILL of the firing process → a survivor fires: median ${fmt(gap.median)} ms, p99 ${fmt(gap.p99)} ms; ticks missed: median ${missed.median}, max ${Math.max(...sched.missedTicks)}; tick times fired twice: ${sched.firedTwice} of ${sched.ticksFired}${sched.failed > 0 ? `; ${sched.failed} rounds failed` : ''}`)
  }
  const filter = report.filter as Record<string, number> | undefined
  if (filter !== undefined) {
    for (const [label, perS] of Object.entries(filter)) lines.push(`filter: ${label.padEnd(32)} ${(perS / 1e6).toFixed(1)} million items/s`)
  }
  process.stdout.write(lines.join('\n') + `\n\nsamples: ${values.out}\n`)
}

main().catch(err => {
  process.stderr.write(`mastership bench: ${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
