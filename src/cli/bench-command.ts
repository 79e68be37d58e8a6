/**
 * `conclave bench <scenario>`: runs a benchmark scenario with real member processes on
 * 127.0.0.1, shows progress, prints the figures, and writes every sample (JSON), charts (SVG)
 * and RESULTS.md. Ctrl-C (or the time limit) kills every process it started and still writes
 * what was collected.
 */
import { ClusterKey } from '../security/cluster-key.js'
import { dirname, join } from 'node:path'
import { SCENARIOS } from '../bench/index.js'
import { AbortedRun, BenchContext, type Progress, type ScenarioReport } from '../bench/context.js'
import { machine } from '../bench/machine.js'
import { section, writeResult, writeResultsMarkdown } from '../bench/report.js'
import type { Scenario } from '../bench/scenario.js'
import { UsageError, interruptible, parseCommandLine } from './usage.js'

const NAMES = SCENARIOS.map(s => s.name)

export const BENCH_HELP = `Usage: conclave bench <scenario> [flags]
       conclave bench all [--smoke]
       conclave bench report [--dir bench/results] [--out bench/RESULTS.md]

Runs real member processes on 127.0.0.1 (started one at a time), prints the figures
with their targets, and writes <out-dir>/<scenario>-<time>.json (every sample, the
machine, the settings), SVG charts, and RESULTS.md from the newest result of each
scenario. Ctrl-C stops every process it started and still writes what it collected.

Scenarios:
${SCENARIOS.map(s => `  ${s.name.padEnd(11)} ${s.summary}\n${Object.entries(s.flags).map(([k, f]) => `${' '.repeat(14)}--${k} <${f.default}>  ${f.describe}`).join('\n')}`).join('\n')}

Flags for every scenario:
  --out-dir <dir>       where results go (default bench/results)
  --results <file>      the RESULTS.md to regenerate (default: next to the out-dir,
                        bench/RESULTS.md); "none" to skip
  --max-minutes <m>     stop the run after this long (default 30), keeping the samples
  --key-file <file>     run every member with this cluster key
  --smoke               tiny counts (what the test suite runs)
`

export async function runBench (args: string[]): Promise<number> {
  const [name, ...rest] = args
  if (name === undefined || name === '-h' || name === '--help') { process.stdout.write(BENCH_HELP); return name === undefined ? 2 : 0 }
  if (name === 'report') return report(rest)
  const scenarios = name === 'all' ? SCENARIOS : SCENARIOS.filter(s => s.name === name)
  if (scenarios.length === 0) throw new UsageError(`unknown scenario "${name}"; scenarios: ${NAMES.join(', ')}, all, report`)
  const own = name === 'all' ? {} : (scenarios[0] as Scenario).flags
  const values = parse(rest, Object.fromEntries(Object.keys(own).map(k => [k, { type: 'string' as const }])))
  const maxMinutes = Number(values['max-minutes'] ?? '30')
  if (!(maxMinutes > 0 && maxMinutes <= 24 * 60)) throw new UsageError(`--max-minutes: expected a number of minutes from 0 to 1440, got "${String(values['max-minutes'])}"`)
  const outDir = String(values['out-dir'] ?? join('bench', 'results'))
  const resultsMd = String(values.results ?? join(dirname(outDir), 'RESULTS.md'))
  const keyFile = typeof values['key-file'] === 'string' ? values['key-file'] : undefined
  if (keyFile !== undefined) ClusterKey.read(keyFile) // a bad file fails here, not in every member

  const run = interruptible()
  const limit = new AbortController()
  const deadline = setTimeout(() => limit.abort(new Error('time limit')), maxMinutes * 60_000)
  const signal = AbortSignal.any([run.signal, limit.signal])
  let failed = false
  try {
    for (const scenario of scenarios) {
      if (signal.aborted) break
      const flags = flagValues(scenario, values, values.smoke === true)
      failed = !await runOne(scenario, flags, signal, outDir, keyFile) || failed
    }
  } finally {
    clearTimeout(deadline)
    run.dispose()
  }
  if (resultsMd !== 'none') {
    writeResultsMarkdown(outDir, resultsMd)
    process.stdout.write(`results: ${resultsMd}\n`)
  }
  return run.interrupted() ? 130 : failed ? 1 : 0
}

function parse (args: string[], scenarioFlags: Record<string, { type: 'string' }>): Record<string, string | boolean | undefined> {
  return parseCommandLine(args, {
    ...scenarioFlags,
    'out-dir': { type: 'string' },
    results: { type: 'string' },
    'max-minutes': { type: 'string' },
    'key-file': { type: 'string' },
    smoke: { type: 'boolean', default: false }
  })
}

function flagValues (scenario: Scenario, values: Record<string, string | boolean | undefined>, smoke: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, spec] of Object.entries(scenario.flags)) {
    const text = typeof values[key] === 'string' ? values[key] as string : smoke ? scenario.smoke[key] ?? spec.default : spec.default
    try {
      out[key] = spec.parse(text)
    } catch (err) {
      throw new UsageError(`--${key}: expected ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return out
}

/** Runs one scenario; writes its result even when interrupted. Returns false if it failed. */
async function runOne (scenario: Scenario, flags: Record<string, unknown>, signal: AbortSignal, outDir: string, keyFile: string | undefined): Promise<boolean> {
  const report: ScenarioReport = { settings: {}, figures: [], samples: {}, charts: [], notes: [] }
  const progress = await makeProgress()
  const ctx = new BenchContext(signal, progress, report, `${process.pid}`, keyFile)
  const onAbort = (): void => ctx.killAll()
  signal.addEventListener('abort', onAbort, { once: true })
  const started = Date.now()
  const date = new Date().toISOString()
  const host = machine()
  let ok = true
  try {
    await scenario.run(ctx, flags)
  } catch (err) {
    if (!(err instanceof AbortedRun) && !signal.aborted) {
      ok = false
      report.notes.push(`failed: ${err instanceof Error ? err.message : String(err)}`)
      process.stderr.write(`conclave bench ${scenario.name}: ${err instanceof Error ? err.message : String(err)}\n`)
    }
  } finally {
    progress.stop()
    signal.removeEventListener('abort', onAbort)
    await ctx.cleanUp()
  }
  if (keyFile !== undefined) report.notes.push('members ran with a cluster key (--key-file): every connection under pnet as well as Noise')
  if (signal.aborted) report.notes.push(`stopped early (${String((signal.reason as Error | undefined)?.message ?? 'aborted')}): the samples are those collected until then`)
  const { jsonPath, result } = await writeResult(outDir, { bench: scenario.name, date, durationS: (Date.now() - started) / 1000, interrupted: signal.aborted, machine: host, ...report })
  process.stdout.write(`${section(result, outDir)}\n\nsamples: ${jsonPath}\n\n`)
  return ok
}

/**
 * A progress bar on a terminal (cli-progress); on a pipe, nothing but the final table.
 * cli-progress is a development dependency: where it is not installed, a terminal gets one line
 * per phase instead of a bar.
 */
async function makeProgress (): Promise<Progress & { stop: () => void }> {
  const quiet = { start () {}, tick () {}, log () {}, stop () {} }
  if (process.stderr.isTTY !== true) return quiet
  const cliProgress = await import('cli-progress').then(m => m.default, () => undefined)
  if (cliProgress === undefined) {
    return { ...quiet, start (label, total) { process.stderr.write(`${label}: ${total} steps\n`) }, log (line) { process.stderr.write(`${line}\n`) } }
  }
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: '{label} [{bar}] {value}/{total} {detail}',
    hideCursor: true,
    clearOnComplete: true
  }, cliProgress.Presets.shades_classic)
  let active = false
  return {
    start (label, total) {
      if (active) bar.stop()
      bar.start(total, 0, { label, detail: '' })
      active = true
    },
    tick (detail = '') { if (active) bar.increment(1, { detail }) },
    log (line) { process.stderr.write(`${line}\n`) },
    stop () { if (active) bar.stop(); active = false }
  }
}

function report (args: string[]): number {
  const values = parseCommandLine(args, { dir: { type: 'string', default: join('bench', 'results') }, out: { type: 'string', default: join('bench', 'RESULTS.md') } })
  const benches = writeResultsMarkdown(values.dir as string, values.out as string)
  process.stdout.write(`${values.out as string}: ${benches.length === 0 ? 'no results found' : benches.join(', ')}\n`)
  return 0
}
