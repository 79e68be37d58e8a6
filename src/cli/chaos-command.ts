/**
 * `conclave chaos`: members on test hosts of their own (network namespaces) under a random
 * schedule of faults (chaos/faults.ts); afterwards the events are checked (chaos/analyze.ts):
 * a verdict, the figures, and every event in a JSON file. Exits 1 when an invariant broke (two
 * masters at once, a fencing epoch that went back or a member started cut off that acted as
 * master, all three under `majority`; a crash; members that never agreed again after a
 * fault), 130 when interrupted.
 */
import { ClusterKey } from '../security/cluster-key.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { UsageError, interruptible, parseCommandLine, wholeNumber } from './usage.js'
import { defaultFaults, runChaos } from '../chaos/run.js'
import { analyze, timeline, type ChaosFigures } from '../chaos/analyze.js'
import { FAULT_TYPES, NON_TRANSITIVE, parseFaultTypes, type FaultType } from '../chaos/faults.js'
import { NEEDS_NFTABLES, memberTakesStateDir, missingTools } from '../chaos/tools.js'
import { netnsUnavailable } from '../testing/netns.js'
import { describeMachine, machine } from '../bench/machine.js'
import { fmt, type Summary } from '../bench/stats.js'

export const CHAOS_HELP = `Usage: conclave chaos [--duration 10m] [--members 5] [--split-brain majority] [--faults all] [--state-dir] [--seed N] [--out file.json]

Runs member processes, each on a test host of its own (a Linux network namespace
this command creates and removes; needs root and iproute2, and nftables for the
link faults), for the given time under a random schedule of one fault at a time.
After each fault is undone the run waits until the members agree on one view again
(at most 20 s), then 2.5–5 s before the next. Then it checks every member's events:
intervals with two masters at once, leaderless time and the time to agree again
after each fault by type, views installed during bridge and ring faults, fencing
epochs of mastership grants that go back, cut-off starts that acted as master,
crashes.

Faults (--faults, comma-separated; default all):
  kill           SIGKILL a member, then a fresh process in its place
  hang           SIGSTOP a member for 0.5–4 s, then SIGCONT
  partition      a random 2- or 3-way cut of the switch for 1–5 s, then the heal
  bridge         two groups that cannot reach each other and one host that
                 reaches both ({m0,m1} | m2 | {m3,m4}), 2–5 s
  ring           each host reaches only its two neighbours in a ring, 2–5 s
                 (4 members or more)
  one-way        one host cannot send, or cannot receive, for 1–5 s
  loss           10–40 % random packet loss to and from one or more hosts, 2–5 s
  cpu            every core saturated by stress-ng for 2–5 s
  cut-off-start  kill a member, cut its host off, start it again, keep it cut
                 off 3–5 s, then heal
  clock-restart  kill a member and start it again with its wall clock 3 h back
                 (libfaketime)

Options:
  --duration <t>        how long to inject faults: 90s, 10m, or milliseconds (default 10m)
  --members <n>         members, 3 to 9 (default 5)
  --split-brain <p>     majority (default) or allow; under allow, two masters during a
                        partition are expected and not a failure
  --faults <list>       the fault types to draw from (default all), in shuffled rounds
  --state-dir           give each member a state directory of its own host slot
                        (conclave member --state-dir), kept across its restarts
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
    faults: { type: 'string', default: 'all' },
    'state-dir': { type: 'boolean', default: false },
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
  const faults = parseFaultsFlag(values.faults, members)
  if (values.seed !== undefined && !/^\d+$/.test(values.seed)) throw new UsageError(`--seed: expected a whole number, got "${values.seed}"`)
  const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000
  const out = values.out ?? `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`
  const keyFile = values['key-file']
  const stateDir = values['state-dir'] === true
  if (keyFile !== undefined) ClusterKey.read(keyFile) // a bad file fails here, not in every member
  if (stateDir && !memberTakesStateDir()) throw new UsageError('--state-dir: conclave member of this build has no --state-dir flag')
  const why = await netnsUnavailable({ nftables: faults.some(t => NEEDS_NFTABLES.includes(t)) })
  if (why !== undefined) throw new UsageError(`chaos needs network namespaces: ${why}`)
  const missing = await missingTools(faults)
  if (missing.length > 0) throw new UsageError(`${missing.join('; ')}; or leave these faults out with --faults`)

  const run = interruptible()
  const host = machine()
  process.stdout.write(`chaos: ${members} members, ${splitBrain}, ${Math.round(durationMs / 1000)} s, seed ${seed}, faults ${faults.join(',')}${stateDir ? ', state dirs' : ''}; ${describeMachine(host)}\n`)
  let t0 = 0
  try {
    const record = await runChaos({
      members,
      durationMs,
      splitBrain,
      seed,
      faults,
      stateDir,
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
    writeFileSync(out, JSON.stringify({ settings: { members, durationMs, splitBrain, seed, faults, stateDir }, machine: host, interrupted: run.interrupted(), start: record.start, end: record.end, figures, faults: record.faults, logs: record.logs }, null, 1))
    const clock = t0 === 0 ? record.start : t0
    process.stdout.write(report(figures, splitBrain, faults, clock) + `\nverdict: ${broken.length === 0 ? 'PASS' : `FAIL — ${broken.join('; ')}`}\nevents: ${out}\n`)
    if (splitBrain === 'majority') {
      for (const o of figures.dualMasters) {
        process.stdout.write(`\n${o.who.join(' and ')} both master ${secs(o.from, clock)}–${secs(o.to, clock)} s; their events from 3 s before:\n`)
        process.stdout.write(timeline(record.logs, o.who, o.from - 3000, o.to + 1000, clock).map(l => `  ${l}\n`).join(''))
      }
    }
    return run.interrupted() ? 130 : broken.length === 0 ? 0 : 1
  } finally {
    run.dispose()
  }
}

/** `--faults`: the listed types (or all that fit `members`), every one makeable with that many. */
export function parseFaultsFlag (text: string, members: number): FaultType[] {
  if (text.trim() === 'all') return defaultFaults(members)
  let types: FaultType[]
  try {
    types = parseFaultTypes(text)
  } catch (err) {
    throw new UsageError(`--faults: ${(err as Error).message}`)
  }
  if (types.includes('ring') && members < 4) throw new UsageError(`--faults: a ring needs at least 4 members, got --members ${members}`)
  return types
}

/** The invariants that broke, in words. */
export function verdict (f: ChaosFigures, splitBrain: 'majority' | 'allow'): string[] {
  const broken: string[] = []
  if (splitBrain === 'majority' && f.dualMasters.length > 0) broken.push(`${f.dualMasters.length} intervals with two masters`)
  if (f.crashes > 0) broken.push(`${f.crashes} crashed processes`)
  if (f.notReconverged > 0) broken.push(`${f.notReconverged} faults after which the members did not agree again before the next`)
  if (splitBrain === 'majority' && f.fencing.violations.length > 0) broken.push(`${f.fencing.violations.length} grants whose fencing epoch went back`)
  const cutOffMasters = f.cutOffStarts.filter(c => c.masterMs > 0).length
  if (splitBrain === 'majority' && cutOffMasters > 0) broken.push(`${cutOffMasters} members started cut off acted as master`)
  return broken
}

const AFTER: Record<FaultType, string> = {
  kill: 'restart',
  hang: 'resume',
  partition: 'heal',
  bridge: 'heal',
  ring: 'heal',
  'one-way': 'heal',
  loss: 'heal',
  cpu: 'load ends',
  'cut-off-start': 'heal',
  'clock-restart': 'restart'
}

/** `at` in seconds after `t0`, to the millisecond. */
function secs (at: number, t0: number): string { return ((at - t0) / 1000).toFixed(3) }

function report (f: ChaosFigures, splitBrain: string, selected: readonly FaultType[], t0: number): string {
  const types = FAULT_TYPES.filter(t => selected.includes(t) || f.faults[t] > 0)
  const total = FAULT_TYPES.reduce((n, t) => n + f.faults[t], 0)
  const dual = f.dualMasters.reduce((ms, i) => ms + i.to - i.from, 0)
  const lines = [
    '',
    `faults: ${total} (${types.map(t => `${f.faults[t]} ${t}`).join(', ')}) in ${(f.durationMs / 1000).toFixed(0)} s`,
    `dual-master intervals: ${f.dualMasters.length}${f.dualMasters.length > 0 ? ` (${fmt(dual)} ms in all)` : ''}${splitBrain === 'allow' ? ' (allowed under allow)' : ''}`,
    ...f.dualMasters.slice(0, 10).map(o => `  ${o.who.join(' and ')}: ${secs(o.from, t0)}–${secs(o.to, t0)} s`),
    `fencing: ${f.fencing.grants} grants, ${f.fencing.violations.length} with an epoch not above every earlier grant's${splitBrain === 'allow' ? ' (expected under allow)' : ''}`,
    ...f.fencing.violations.slice(0, 10).map(v => `  ${v.grant.label} granted epoch ${v.grant.epoch} after ${v.highest.label}'s ${v.highest.epoch}; cause: ${v.cause ?? 'no restart before it'}`),
    ...f.cutOffStarts.map(c => `cut-off start ${c.label}: ${c.masterMs > 0 ? `acted as master for ${fmt(c.masterMs)} ms while cut off` : 'never master while cut off'}`),
    `crashes: ${f.crashes}`,
    '',
    `${'ms'.padEnd(14)} ${'n'.padStart(3)}  ${'agree after'.padEnd(16)} ${'median'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}   leaderless ${'median'.padStart(7)} ${'p99'.padStart(7)}`,
    ...types.map(t => `${t.padEnd(14)} ${String(f.faults[t]).padStart(3)}  ${AFTER[t].padEnd(16)} ${cells(f.reconvergeMs[t], ['median', 'p99', 'max'])}   ${''.padEnd(10)} ${cells(f.leaderlessMs[t], ['median', 'p99'])}`)
  ]
  const nonTransitive = NON_TRANSITIVE.filter(t => f.faults[t] > 0)
  if (nonTransitive.length > 0) {
    lines.push('', 'distinct views installed across members   during the fault      until agreed again',
      `${''.padEnd(14)} ${'n'.padStart(3)}  ${'median'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}   ${'median'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)}`)
    for (const t of nonTransitive) {
      lines.push(`${t.padEnd(14)} ${String(f.viewsDuringFault[t].n).padStart(3)}  ${cells(f.viewsDuringFault[t], ['median', 'p99', 'max'])}   ${cells(f.viewsUntilAgreed[t], ['median', 'p99', 'max'])}`)
    }
  }
  if (f.notReconverged > 0) lines.push(`not agreed again before the next fault: ${f.notReconverged}`)
  return lines.join('\n')
}

function cells (s: Summary, keys: ReadonlyArray<'median' | 'p99' | 'max'>): string {
  return keys.map(k => fmt(s[k]).padStart(7)).join(' ')
}

/** `90s`, `10m`, `1h` or plain milliseconds. */
export function parseDuration (text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const ms = m === null ? Number.NaN : Number(m[1]) * unit[(m[2] ?? 'ms') as keyof typeof unit]
  if (!(ms >= 5000 && ms <= 24 * 3_600_000)) throw new UsageError(`--duration: expected 5s to 24h (e.g. 90s, 10m), got "${text}"`)
  return ms
}
