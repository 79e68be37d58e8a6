/**
 * `conclave chaos`: members on test hosts of their own (network namespaces) under a random
 * schedule of kill, hang, resume, partition and heal; afterwards the events are checked
 * (chaos/analyze.ts): a verdict, the figures, and every event in a JSON file. Exits 1 when an
 * invariant broke (two masters at once under `majority`, a crash, members that never agreed
 * again after a fault), 130 when interrupted.
 */
import { ClusterKey } from '../security/cluster-key.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { UsageError, interruptible, parseCommandLine, wholeNumber } from './usage.js'
import { runChaos } from '../chaos/run.js'
import { analyze, type ChaosFigures, type FaultType } from '../chaos/analyze.js'
import { netnsUnavailable } from '../testing/netns.js'
import { describeMachine, machine } from '../bench/machine.js'
import { fmt } from '../bench/stats.js'

export const CHAOS_HELP = `Usage: conclave chaos [--duration 10m] [--members 5] [--split-brain majority] [--seed N] [--out file.json]

Runs member processes, each on a test host of its own (a Linux network namespace
this command creates and removes; needs root and iproute2), for the given time under a
random schedule of one fault at a time, 2.5–5 s apart: kill (then a fresh process), hang (SIGSTOP,
then SIGCONT) and partition (a random cut, then the heal). Then it checks every
member's events: intervals with two masters at once, leaderless time after each
fault, time to agree on one view again after each heal, resume and restart, crashes.

Options:
  --duration <t>        how long to inject faults: 90s, 10m, or milliseconds (default 10m)
  --members <n>         members, 3 to 9 (default 5)
  --split-brain <p>     majority (default) or allow; under allow, two masters during a
                        partition are expected and not a failure
  --seed <n>            the schedule's random seed (default: from the clock)
  --out <file.json>     where the events and figures go (default chaos-<time>.json)
  --key-file <file>     run the members with this cluster key
  -h, --help            show this help
`

export async function runChaosCommand (args: string[]): Promise<number> {
  const values = parseCommandLine(args, {
    duration: { type: 'string', default: '10m' },
    members: { type: 'string', default: '5' },
    'split-brain': { type: 'string', default: 'majority' },
    seed: { type: 'string' },
    out: { type: 'string' },
    'key-file': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  })
  if (values.help === true) { process.stdout.write(CHAOS_HELP); return 0 }
  const durationMs = parseDuration(values.duration)
  const members = wholeNumber('members', values.members, 3, 9)
  const splitBrain = values['split-brain']
  if (splitBrain !== 'majority' && splitBrain !== 'allow') throw new UsageError(`--split-brain must be majority or allow, got "${splitBrain}"`)
  if (values.seed !== undefined && !/^\d+$/.test(values.seed)) throw new UsageError(`--seed: expected a whole number, got "${values.seed}"`)
  const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000
  const out = values.out ?? `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`
  const keyFile = values['key-file']
  if (keyFile !== undefined) ClusterKey.read(keyFile) // a bad file fails here, not in every member
  const why = await netnsUnavailable()
  if (why !== undefined) throw new UsageError(`chaos needs network namespaces: ${why}`)

  const run = interruptible()
  const host = machine()
  process.stdout.write(`chaos: ${members} members, ${splitBrain}, ${Math.round(durationMs / 1000)} s, seed ${seed}; ${describeMachine(host)}\n`)
  let t0 = 0
  try {
    const record = await runChaos({
      members,
      durationMs,
      splitBrain,
      seed,
      signal: run.signal,
      ...(keyFile !== undefined ? { keyFile } : {}),
      onFault: f => {
        if (t0 === 0) t0 = f.at
        process.stdout.write(`  ${((f.at - t0) / 1000).toFixed(1).padStart(7)} s  ${f.detail}\n`)
      }
    })
    const figures = analyze(record.logs, record.faults, record.start, record.end)
    const broken = verdict(figures, splitBrain)
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, JSON.stringify({ settings: { members, durationMs, splitBrain, seed }, machine: host, interrupted: run.interrupted(), figures, faults: record.faults, logs: record.logs }, null, 1))
    process.stdout.write(report(figures, splitBrain) + `\nverdict: ${broken.length === 0 ? 'PASS' : `FAIL — ${broken.join('; ')}`}\nevents: ${out}\n`)
    return run.interrupted() ? 130 : broken.length === 0 ? 0 : 1
  } finally {
    run.dispose()
  }
}

/** The invariants that broke, in words. */
export function verdict (f: ChaosFigures, splitBrain: 'majority' | 'allow'): string[] {
  const broken: string[] = []
  if (splitBrain === 'majority' && f.dualMasters.length > 0) broken.push(`${f.dualMasters.length} intervals with two masters`)
  if (f.crashes > 0) broken.push(`${f.crashes} crashed processes`)
  if (f.notReconverged > 0) broken.push(`${f.notReconverged} faults after which the members did not agree again before the next`)
  return broken
}

function report (f: ChaosFigures, splitBrain: string): string {
  const types: FaultType[] = ['kill', 'hang', 'partition']
  const total = types.reduce((n, t) => n + f.faults[t], 0)
  const dual = f.dualMasters.reduce((ms, i) => ms + i.to - i.from, 0)
  const lines = [
    '',
    `faults: ${total} (${types.map(t => `${f.faults[t]} ${t}`).join(', ')}) in ${(f.durationMs / 1000).toFixed(0)} s`,
    `dual-master intervals: ${f.dualMasters.length}${f.dualMasters.length > 0 ? ` (${fmt(dual)} ms in all)` : ''}${splitBrain === 'allow' ? ' (allowed under allow)' : ''}`,
    `crashes: ${f.crashes}`,
    '',
    'ms                      n   median      p99      max',
    ...types.map(t => row(`leaderless after ${t}`, f.leaderlessMs[t])),
    ...types.map(t => row(`agree after ${t === 'partition' ? 'heal' : t === 'hang' ? 'resume' : 'restart'}`, f.reconvergeMs[t]))
  ]
  if (f.notReconverged > 0) lines.push(`not agreed again before the next fault: ${f.notReconverged}`)
  return lines.join('\n')
}

function row (label: string, s: { n: number, median: number, p99: number, max: number }): string {
  return `${label.padEnd(22)} ${String(s.n).padStart(3)} ${fmt(s.median).padStart(8)} ${fmt(s.p99).padStart(8)} ${fmt(s.max).padStart(8)}`
}

/** `90s`, `10m`, `1h` or plain milliseconds. */
export function parseDuration (text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const ms = m === null ? Number.NaN : Number(m[1]) * unit[(m[2] ?? 'ms') as keyof typeof unit]
  if (!(ms >= 5000 && ms <= 24 * 3_600_000)) throw new UsageError(`--duration: expected 5s to 24h (e.g. 90s, 10m), got "${text}"`)
  return ms
}
