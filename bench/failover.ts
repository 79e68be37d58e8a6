/**
 * Failover benchmark: real `conclave member` processes on 127.0.0.1.
 *
 * For each case (SIGKILL, SIGSTOP, graceful SIGTERM of the coordinator) and each round: bring
 * the cluster back to N agreed members (the replacement's join is measured too), wait a random
 * pause, signal the coordinator, and time
 *   - first:  signal → the first survivor reporting itself coordinator,
 *   - agreed: signal → every survivor holding the same view.
 * Times come from the members' own JSON lines (Unix ms, one machine's clock).
 *
 *   node dist/bench/failover.js [--rounds 20] [--members 3] [--cases kill,stop,graceful] [--out FILE]
 */
import '../src/polyfill.js'
import { parseArgs } from 'node:util'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname } from 'node:path'
import { MemberProcess, agreed, waitUntil as until, type MemberEvent, type ViewEvent } from '../src/testing/member-process.js'
import { wallClockMs } from '../src/clock.js'
import { fmt, summarize, type Summary } from './stats.js'

type Case = 'kill' | 'stop' | 'graceful'
const SIGNALS: Record<Case, NodeJS.Signals> = { kill: 'SIGKILL', stop: 'SIGSTOP', graceful: 'SIGTERM' }
const CASES: readonly Case[] = ['kill', 'stop', 'graceful']

interface Round { case: Case, round: number, pauseMs: number, firstMs?: number, agreedMs?: number, error?: string }
interface Join { fromSpawnMs: number, fromReadyMs: number }

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    members: { type: 'string', default: '3' },
    cases: { type: 'string', default: CASES.join(',') },
    out: { type: 'string', default: `bench/results/failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const rounds = Number(values.rounds)
const size = Number(values.members)
const cases = (values.cases ?? '').split(',') as Case[]
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a positive integer, got ${values.rounds}`)
if (!Number.isInteger(size) || size < 2 || size > 20) fail(`--members must be an integer from 2 to 20, got ${values.members}`)
for (const c of cases) if (!CASES.includes(c)) fail(`--cases: unknown case "${c}"; valid: ${CASES.join(', ')}`)

function fail (msg: string): never {
  process.stderr.write(`failover bench: ${msg}\n`)
  process.exit(2)
}

const all: MemberProcess[] = []
let running: MemberProcess[] = []
let serial = 0
const cluster = `bench-${process.pid}`

async function spawnMember (): Promise<MemberProcess> {
  const seeds = running.map(p => p.address).filter((a): a is string => a !== undefined)
  const p = new MemberProcess({ cluster, name: `m${++serial}`, seeds })
  all.push(p)
  await p.waitReady(30_000)
  return p
}


/** The ts at which `procs` came to agree: the latest of their current views' timestamps. */
function agreedAt (procs: readonly MemberProcess[]): number {
  return Math.max(...procs.map(p => p.lastView()?.ts ?? Number.NaN))
}

/** Spawns members one at a time (start-up is CPU-bound) until `size` agree; returns join samples. */
async function refill (): Promise<Join[]> {
  const joins: Join[] = []
  while (running.length < size) {
    const p = await spawnMember()
    running.push(p)
    await until(() => agreed(running, running.length), 15_000, `${running.length} members to agree`)
    // The founder has no one to join; every later member's join is a sample.
    if (running.length > 1) {
      joins.push({ fromSpawnMs: agreedAt(running) - p.spawnedAt, fromReadyMs: agreedAt(running) - (p.ready()?.ts as number) })
    }
  }
  return joins
}

async function runRound (c: Case, round: number): Promise<Round> {
  const pauseMs = 200 + Math.random() * 800
  await new Promise(resolve => setTimeout(resolve, pauseMs))
  const victim = running.find(p => p.lastView()?.isCoordinator === true)
  if (victim === undefined) return { case: c, round, pauseMs, error: 'no coordinator before the action' }
  const survivors = running.filter(p => p !== victim)
  const marks = new Map(survivors.map(p => [p, p.events.length]))
  const since = (p: MemberProcess): MemberEvent[] => p.events.slice(marks.get(p))
  const claims = (e: MemberEvent): boolean => (e.type === 'view' && (e as ViewEvent).isCoordinator) || (e.type === 'coordinator' && e.isCoordinator === true)
  const t0 = wallClockMs()
  victim.kill(SIGNALS[c])
  running = survivors
  try {
    await until(() => survivors.some(p => since(p).some(claims)), 10_000, 'a new coordinator')
    const first = Math.min(...survivors.map(p => since(p).find(claims)?.ts ?? Number.POSITIVE_INFINITY))
    await until(() => agreed(survivors, survivors.length) && survivors.every(p => since(p).some(e => e.type === 'view')), 10_000, 'the survivors to agree')
    return { case: c, round, pauseMs, firstMs: first - t0, agreedMs: agreedAt(survivors) - t0 }
  } catch (err) {
    return { case: c, round, pauseMs, error: err instanceof Error ? err.message : String(err) }
  } finally {
    if (c === 'stop') victim.kill('SIGKILL')
    if (c === 'graceful') await victim.stop(3000)
  }
}

async function main (): Promise<void> {
  const started = Date.now()
  const results: Round[] = []
  const joins: Join[] = []
  let interrupted = false
  process.once('SIGINT', () => { interrupted = true })
  try {
    await refill()
    for (const c of cases) {
      for (let r = 1; r <= rounds && !interrupted; r++) {
        const res = await runRound(c, r)
        results.push(res)
        process.stderr.write(`\r${c.padEnd(8)} round ${String(r).padStart(3)}/${rounds}  ${res.error ?? `first ${fmt(res.firstMs ?? NaN)} ms, all ${fmt(res.agreedMs ?? NaN)} ms`}      `)
        joins.push(...await refill())
      }
      process.stderr.write('\n')
    }
  } finally {
    await Promise.all(all.map(async p => { if (p.running) { p.kill('SIGCONT'); await p.stop(2000) } }))
  }
  const table: Record<string, { first?: Summary, agreed?: Summary, failed: number }> = {}
  for (const c of cases) {
    const rs = results.filter(r => r.case === c)
    const ok = rs.filter(r => r.error === undefined)
    table[c] = { first: summarize(ok.map(r => r.firstMs as number)), agreed: summarize(ok.map(r => r.agreedMs as number)), failed: rs.length - ok.length }
  }
  const join = { fromReady: summarize(joins.map(j => j.fromReadyMs)), fromSpawn: summarize(joins.map(j => j.fromSpawnMs)) }
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadavg: loadavg() }
  const report = { bench: 'failover', date: new Date().toISOString(), durationS: (Date.now() - started) / 1000, settings: { rounds, members: size, cases }, machine, table, join, samples: { rounds: results, joins } }
  mkdirSync(dirname(values.out as string), { recursive: true })
  writeFileSync(values.out as string, JSON.stringify(report, null, 2))

  const line = (label: string, s: Summary | undefined, extra = ''): string =>
    `| ${label.padEnd(38)} | ${fmt(s?.median ?? NaN).padStart(7)} | ${fmt(s?.p99 ?? NaN).padStart(7)} | ${fmt(s?.min ?? NaN).padStart(6)} | ${fmt(s?.max ?? NaN).padStart(6)} | ${String(s?.n ?? 0).padStart(3)}${extra} |`
  const label: Record<Case, string> = { kill: 'SIGKILL', stop: 'SIGSTOP', graceful: 'graceful stop' }
  const out = [
    `failover, ${size} members, ${rounds} rounds per case; ${machine.cores} cores, ${machine.node}, load ${machine.loadavg.map(l => l.toFixed(2)).join(' ')}`,
    '| figure (ms)                            |  median |     p99 |    min |    max |   n |',
    '|----------------------------------------|--------:|--------:|-------:|-------:|----:|'
  ]
  for (const c of cases) {
    const row = table[c]
    const failed = row?.failed !== undefined && row.failed > 0 ? ` (${row.failed} failed)` : ''
    out.push(line(`${label[c]} → first new coordinator`, row?.first, failed))
    out.push(line(`${label[c]} → all survivors agree`, row?.agreed))
  }
  out.push(line('join: ready → all agree', join.fromReady))
  out.push(line('join: spawn → all agree', join.fromSpawn))
  process.stdout.write(out.join('\n') + `\n\nsamples: ${values.out}\n`)
}

main().catch(err => {
  process.stderr.write(`failover bench: ${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
})
