/**
 * Random fault schedules in the simulation, many of them (testing/schedules.ts): every
 * invariant checked after every step of every run, then agreement after the faults stop.
 * Reports the runs per configuration, the seeds that failed (with their faults), the time to
 * agree after the last heal (simulated), and how long it all took.
 *
 *   node dist/bench/simulate.js [--runs 1000] [--from 1] [--members 5] [--out FILE]
 *
 * Configurations: majority with durable state, majority without, allow. A failing seed
 * replays exactly: runSchedule({ seed, splitBrain, durable, members }).
 */
import { parseArgs } from 'node:util'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { runSchedule } from '../src/testing/schedules.js'
import { fmt, summarize } from '../src/bench/stats.js'
import { describeMachine, machine } from '../src/bench/machine.js'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    members: { type: 'string', default: '5' },
    out: { type: 'string' }
  }
})
const runs = Number(values.runs)
const from = Number(values.from)
const members = Number(values.members)
for (const [flag, v, lo, hi] of [['--runs', runs, 1, 1_000_000], ['--from', from, 0, 2 ** 31], ['--members', members, 3, 30]] as const) {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    process.stderr.write(`simulate: ${flag} must be a whole number from ${lo} to ${hi}, got ${String(v)}\n`)
    process.exit(2)
  }
}

const configs = [
  { label: 'majority, durable state', splitBrain: 'majority', durable: true },
  { label: 'majority, no durable state', splitBrain: 'majority', durable: false },
  { label: 'allow', splitBrain: 'allow', durable: true }
] as const

const started = Date.now()
const report = []
let failed = 0
for (const c of configs) {
  const t0 = Date.now()
  const settled: number[] = []
  const failures: Array<{ seed: number, problem: string, faults: readonly string[] }> = []
  let faults = 0
  let simulatedMs = 0
  for (let seed = from; seed < from + runs; seed++) {
    const r = runSchedule({ seed, splitBrain: c.splitBrain, durable: c.durable, members })
    faults += r.faults.length
    simulatedMs += r.simulatedMs
    if (r.settledMs !== undefined) settled.push(r.settledMs)
    if (r.problem !== undefined) failures.push({ seed, problem: r.problem, faults: r.faults })
  }
  failed += failures.length
  const agree = summarize(settled)
  const wallMs = Date.now() - t0
  process.stdout.write(`${c.label}: ${runs} runs, ${faults} faults, ${failures.length} failed; agree after the last heal ${fmt(agree.median)} ms median, ${fmt(agree.p99)} ms p99 (simulated); ${(simulatedMs / 3_600_000).toFixed(1)} h simulated in ${(wallMs / 1000).toFixed(1)} s\n`)
  for (const f of failures.slice(0, 10)) process.stdout.write(`  seed ${f.seed}: ${f.problem.slice(0, 300)}\n    faults: ${f.faults.join('; ')}\n`)
  report.push({ ...c, runs, members, faults, failures, agreeAfterHealMs: agree, simulatedMs, wallMs })
}
const out = values.out
if (out !== undefined) {
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, JSON.stringify({ kind: 'simulate', from, machine: machine(), startedAt: new Date(started).toISOString(), configs: report }, null, 2) + '\n')
  process.stdout.write(`written: ${out}\n`)
}
process.stdout.write(`${describeMachine(machine())}\n`)
process.exitCode = failed > 0 ? 1 : 0
