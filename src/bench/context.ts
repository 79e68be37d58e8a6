/**
 * What every scenario gets: a way to spawn member processes that are all cleaned up, an
 * AbortSignal for Ctrl-C and the run's time limit, progress reporting, and a report object it
 * fills as it goes, so an interrupted run still writes the samples collected so far.
 */
import { MemberProcess, type SpawnOptions } from '../testing/member-process.js'
import { MemberHost, type HostOptions } from '../testing/member-host.js'

/** One figure of a result table: a distribution (median/p99) or a single value. */
export interface Figure {
  readonly figure: string
  readonly unit: string
  readonly median?: number
  readonly p99?: number
  readonly value?: number
  readonly n?: number
  /** The target, as text, e.g. "≤ 150 / 400 ms". */
  readonly target?: string
  /** Whether the target was met; undefined when there is none. */
  readonly met?: boolean
}

/** What a scenario leaves behind: figures for the table, every sample, and charts. */
export interface ScenarioReport {
  settings: Record<string, unknown>
  figures: Figure[]
  samples: Record<string, unknown>
  /** Vega-Lite specs (without data URLs: inline values only), rendered to SVG by the command. */
  charts: Array<{ readonly name: string, readonly spec: Record<string, unknown> }>
  notes: string[]
}

export interface Progress {
  /** Starts a phase of `total` steps. */
  start: (label: string, total: number) => void
  /** One step done; `detail` is shown next to the bar. */
  tick: (detail?: string) => void
  /** A line for the log (above the bar on a terminal). */
  log: (line: string) => void
}

export class BenchContext {
  private readonly spawned: MemberProcess[] = []
  private readonly hosts: MemberHost[] = []
  private serial = 0

  constructor (
    readonly signal: AbortSignal,
    readonly progress: Progress,
    readonly report: ScenarioReport,
    /** Unique per run, so stray processes of another run cannot join. */
    readonly tag: string,
    /** `--key-file`: every member spawned gets it (a keyed cluster's figures). */
    readonly keyFile?: string
  ) {}

  get aborted (): boolean { return this.signal.aborted }

  /** Spawns a member process (`conclave member --json`, or `script`), tracked for clean-up. */
  spawn (opts: Omit<SpawnOptions, 'name'> & { name?: string }): MemberProcess {
    const extraArgs = [...(opts.extraArgs ?? []), ...(this.keyFile !== undefined ? ['--key-file', this.keyFile] : [])]
    const p = new MemberProcess({ ...opts, extraArgs, name: opts.name ?? `m${++this.serial}` })
    this.spawned.push(p)
    return p
  }

  /** Starts `conclave host` (several members in one process), tracked for clean-up like `spawn`. */
  host (opts: HostOptions): MemberHost {
    const extraArgs = [...(opts.extraArgs ?? []), ...(this.keyFile !== undefined ? ['--key-file', this.keyFile] : [])]
    const h = new MemberHost({ ...opts, extraArgs })
    this.hosts.push(h)
    return h
  }

  get processes (): readonly MemberProcess[] { return this.spawned }

  /** A fresh cluster name for this run. */
  cluster (label: string): string { return `bench-${label}-${this.tag}` }

  /** Resolves after `ms`, or at once when the run is aborted. */
  async sleep (ms: number): Promise<void> {
    if (this.aborted) return
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); this.signal.removeEventListener('abort', done); resolve() }
      const timer = setTimeout(done, ms)
      this.signal.addEventListener('abort', done, { once: true })
    })
  }

  /** Stops every process this run started: SIGCONT (for SIGSTOPped ones), then SIGTERM, then SIGKILL. */
  async cleanUp (graceMs = 2000): Promise<void> {
    await Promise.all([
      ...this.spawned.map(async p => {
        if (!p.running) return
        p.kill('SIGCONT')
        await p.stop(graceMs)
      }),
      ...this.hosts.map(async h => { h.kill('SIGCONT'); await h.stop(graceMs) })
    ])
  }

  /** Kills every process at once (Ctrl-C: no graceful leave, no waiting). */
  killAll (): void {
    for (const p of this.spawned) if (p.running) { p.kill('SIGCONT'); p.kill('SIGKILL') }
    for (const h of this.hosts) if (h.running) { h.kill('SIGCONT'); h.kill('SIGKILL') }
  }
}

/** Throws when the run was aborted, so a scenario's loops stop at the next step. */
export function checkAborted (ctx: BenchContext): void {
  if (ctx.aborted) throw new AbortedRun()
}

export class AbortedRun extends Error {
  override name = 'AbortedRun'
  constructor () { super('the run was interrupted') }
}
