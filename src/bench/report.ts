/**
 * Benchmark output: the terminal table, the JSON file with every sample, SVG charts rendered
 * headlessly (Vega-Lite compiled to Vega, rendered to SVG in Node, no browser), and
 * bench/RESULTS.md regenerated from the newest JSON of each scenario.
 *
 * vega and vega-lite are development dependencies, loaded only when a chart is drawn: a service
 * that installs conclave does not carry them. Without them the table and the JSON are still
 * written and a note says how to get the charts.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import type { TopLevelSpec } from 'vega-lite'
import { describeMachine, type Machine } from './machine.js'
import type { Figure, ScenarioReport } from './context.js'
import { fmt } from './stats.js'

export interface BenchResult extends ScenarioReport {
  readonly bench: string
  readonly date: string
  readonly durationS: number
  readonly interrupted: boolean
  readonly machine: Machine
  /** SVG files written next to the JSON, by chart name. */
  readonly chartFiles: Record<string, string>
}

function cell (f: Figure): [string, string, string] {
  if (f.value !== undefined) return [fmt(f.value), '', f.n !== undefined ? String(f.n) : '']
  return [fmt(f.median ?? Number.NaN), fmt(f.p99 ?? Number.NaN), String(f.n ?? '')]
}

const mark = (f: Figure): string => f.met === undefined ? '' : f.met ? 'yes' : 'NO'

/** The figures as a Markdown table (also what the terminal shows). */
export function figureTable (figures: readonly Figure[]): string {
  const rows = figures.map(f => {
    const [a, b, n] = cell(f)
    return [f.figure, f.unit, a, b, n, f.target ?? '', mark(f)]
  })
  const header = ['figure', 'unit', 'median / value', 'p99', 'n', 'target', 'met']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  const line = (cells: string[]): string => `| ${cells.map((c, i) => i >= 2 && i <= 4 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)).join(' | ')} |`
  const rule = `|${widths.map((w, i) => i >= 2 && i <= 4 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

/** Thrown by renderSvg when vega or vega-lite is not installed. */
export class ChartsUnavailableError extends Error {
  constructor (cause: unknown) {
    super('charts need vega and vega-lite, which are not installed here (npm install --no-save vega@5 vega-lite@5)', { cause })
    this.name = 'ChartsUnavailableError'
  }
}

type Vega = typeof import('vega')
type VegaLite = typeof import('vega-lite')
let renderer: Promise<{ vega: Vega, compile: VegaLite['compile'] }> | undefined

async function loadRenderer (): Promise<{ vega: Vega, compile: VegaLite['compile'] }> {
  renderer ??= Promise.all([import('vega'), import('vega-lite')]).then(
    ([vega, vl]) => ({ vega, compile: vl.compile }),
    (err: unknown) => { renderer = undefined; throw new ChartsUnavailableError(err) })
  return await renderer
}

/** Renders a Vega-Lite spec (inline data only) to an SVG string. */
export async function renderSvg (spec: Record<string, unknown>): Promise<string> {
  const { vega, compile } = await loadRenderer()
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', background: 'white', ...spec } as unknown as TopLevelSpec
  // No loader access: charts carry their data inline, so rendering never touches the network.
  const view = new vega.View(vega.parse(compile(full).spec), { renderer: 'none', loader: vega.loader({ mode: 'file', baseURL: '/nonexistent' }) })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** Writes `<dir>/<bench>-<stamp>.json` and its charts; returns the JSON path. */
export async function writeResult (dir: string, result: Omit<BenchResult, 'chartFiles'>): Promise<{ jsonPath: string, result: BenchResult }> {
  mkdirSync(dir, { recursive: true })
  const stamp = result.date.replace(/[:.]/g, '-')
  const chartFiles: Record<string, string> = {}
  for (const chart of result.charts) {
    const file = `${result.bench}-${stamp}-${chart.name}.svg`
    try {
      writeFileSync(join(dir, file), await renderSvg(chart.spec))
      chartFiles[chart.name] = file
    } catch (err) {
      if (err instanceof ChartsUnavailableError) {
        result.notes.push(`charts not drawn: ${err.message}`)
        break
      }
      result.notes.push(`chart ${chart.name} not rendered: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  const full: BenchResult = { ...result, chartFiles }
  const jsonPath = join(dir, `${result.bench}-${stamp}.json`)
  writeFileSync(jsonPath, JSON.stringify(full, null, 2))
  return { jsonPath, result: full }
}

/** The terminal (and RESULTS.md) section of one result. */
export function section (r: BenchResult, chartDir?: string): string {
  const charts = Object.values(r.chartFiles).map(f => `![${r.bench}](${chartDir === undefined ? f : `${chartDir}/${f}`})`)
  return [
    `## ${r.bench}${r.interrupted ? ' (interrupted: partial samples)' : ''}`,
    '',
    `${r.date.slice(0, 19).replace('T', ' ')} UTC · ${describeMachine(r.machine)} · ${r.durationS.toFixed(0)} s · settings: ${Object.entries(r.settings).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`,
    '',
    figureTable(r.figures),
    ...(r.notes.length > 0 ? ['', ...r.notes.map(n => `- ${n}`)] : []),
    ...(charts.length > 0 ? ['', ...charts] : [])
  ].join('\n')
}

/** Regenerates RESULTS.md from the newest result of each scenario in `dir`. */
export function writeResultsMarkdown (dir: string, out: string): string[] {
  const newest = new Map<string, { file: string, result: BenchResult }>()
  for (const file of readdirSync(dir).filter(f => f.endsWith('.json')).sort()) {
    let result: BenchResult
    try { result = JSON.parse(readFileSync(join(dir, file), 'utf8')) as BenchResult } catch { continue }
    if (typeof result.bench !== 'string' || !Array.isArray(result.figures) || result.chartFiles === undefined) continue // older formats
    const seen = newest.get(result.bench)
    if (seen === undefined || seen.result.date < result.date) newest.set(result.bench, { file, result })
  }
  const chartDir = relative(dirname(out), dir) || '.'
  const order = ['failover', 'join', 'cold-start', 'scale', 'broadcast', 'rpc', 'filter']
  const benches = [...newest.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))
  const text = [
    '# Benchmark results',
    '',
    `Generated by \`conclave bench report\` from the newest result of each scenario in \`${relative(dirname(out), dir) || '.'}\`. Every sample is in the JSON file named under each section. Run \`npm run bench\` (all scenarios) or \`conclave bench <scenario>\` to measure your machine.`,
    '',
    ...benches.flatMap(b => {
      const { file, result } = newest.get(b) as { file: string, result: BenchResult }
      return [section(result, chartDir), '', `Samples: [${basename(file)}](${chartDir}/${file})`, '']
    })
  ].join('\n')
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, text)
  return benches
}
