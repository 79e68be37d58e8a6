/**
 * Runs `conclave member --json` as a child process and follows its JSON-line events: for
 * real-process tests, benchmarks and the demo. Each process is killed when the parent exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { dirname, resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { MEMBER_NODE_FLAGS } from '../member-flags.js'

export interface MemberEvent {
  readonly type: string
  readonly ts: number
  readonly [key: string]: unknown
}

export interface ViewEvent extends MemberEvent {
  readonly type: 'view'
  readonly epoch: number
  readonly coordinator: string
  readonly members: ReadonlyArray<{ id: string, name: string }>
  readonly self: string
  readonly isCoordinator: boolean
}

export interface SpawnOptions {
  readonly cluster: string
  readonly name: string
  readonly listen?: string
  readonly seeds?: readonly string[]
  readonly extraArgs?: readonly string[]
  /**
   * A script to run instead of `conclave member --json` (an example, say). It gets the same
   * `--cluster --name --listen --seed` flags and must print the same kind of JSON lines.
   */
  readonly script?: string
  /** Extra environment variables for the child. */
  readonly env?: Readonly<Record<string, string>>
  /** Open the child's stdin, for `command()` (the benchmark agent reads commands there). */
  readonly stdin?: boolean
  /**
   * A command prefix that execs the program elsewhere, e.g. `['ip', 'netns', 'exec', ns]`
   * (testing/netns.ts). It must exec, not fork: signals go to the child's pid.
   */
  readonly prefix?: readonly string[]
}

/** Finds bin/conclave.js from the compiled or the source location of this file. */
export function conclaveBin (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = resolve(dir, 'bin', 'conclave.js')
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new Error('bin/conclave.js not found above ' + fileURLToPath(import.meta.url))
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false

/** SIGTERM to `child`, SIGKILL if it has not exited within `graceMs`; resolves once it has. */
export async function terminate (child: ChildProcess, exited: Promise<unknown>, graceMs: number): Promise<void> {
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/**
 * Follows a spawned child: SIGKILLed if this process exits first; the promise resolves with
 * its exit (after which `onExit` runs). Its stdin's errors (a child that died) are ignored.
 */
export function trackChild (child: ChildProcess, onExit: () => void): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  child.stdin?.on('error', () => {}) // a child that died: its commands are lost, its exit is reported
  live.add(child)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => { for (const c of live) c.kill('SIGKILL') })
  }
  return new Promise(resolve => child.once('exit', (code, signal) => {
    live.delete(child)
    resolve({ code, signal })
    onExit()
  }))
}

export class MemberProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly events: MemberEvent[] = []
  /** Wall-clock ms at spawn. */
  readonly spawnedAt = Date.now()
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stderr = ''
  private readonly waiters = new Set<() => void>()

  constructor (opts: SpawnOptions) {
    this.name = opts.name
    // The same V8 flag as bin/conclave.js's shebang, which a spawn through execPath skips.
    const program = [...MEMBER_NODE_FLAGS, ...(opts.script === undefined ? [conclaveBin(), 'member', '--json'] : [opts.script])]
    const args = [...program, '--cluster', opts.cluster, '--name', opts.name,
      '--listen', opts.listen ?? '127.0.0.1:0', ...(opts.seeds ?? []).flatMap(s => ['--seed', s]), ...(opts.extraArgs ?? [])]
    const [command, ...prefixArgs] = [...(opts.prefix ?? []), process.execPath]
    this.child = spawn(command as string, [...prefixArgs, ...args], { stdio: [opts.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } })
    this.exited = trackChild(this.child, () => { this.notify() })
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    if (this.child.stdout !== null) {
      createInterface({ input: this.child.stdout }).on('line', line => {
        try {
          const e = JSON.parse(line) as MemberEvent
          if (typeof e.type === 'string') this.events.push(e)
        } catch { /* not an event line */ }
        this.notify()
      })
    }
  }

  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }
  get id (): string | undefined { return this.ready()?.id as string | undefined }
  /** `host:port` of the first listen address, once ready. */
  get address (): string | undefined {
    const addr = (this.ready()?.listen as string[] | undefined)?.[0]
    const m = addr === undefined ? null : /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(addr)
    return m === null ? undefined : `${m[1]}:${m[2]}`
  }

  ready (): MemberEvent | undefined { return this.events.find(e => e.type === 'ready') }
  lastView (): ViewEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]?.type === 'view') return this.events[i] as ViewEvent
    return undefined
  }

  /** Resolves with the first event (already seen or future) matching `predicate`. */
  async waitFor (predicate: (e: MemberEvent) => boolean, timeoutMs: number, after = 0): Promise<MemberEvent> {
    return await new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.slice(after).find(predicate)
        if (found !== undefined) { finish(); resolve(found); return true }
        if (!this.running) { finish(); reject(new Error(`${this.name} exited before the awaited event; stderr: ${this.stderr.slice(-500)}`)); return true }
        return false
      }
      const timer = setTimeout(() => { finish(); reject(new Error(`${this.name}: awaited event not seen within ${timeoutMs} ms`)) }, timeoutMs)
      const finish = (): void => { clearTimeout(timer); this.waiters.delete(check) }
      if (!check()) this.waiters.add(check)
    })
  }

  async waitReady (timeoutMs = 20_000): Promise<this> {
    await this.waitFor(e => e.type === 'ready', timeoutMs)
    return this
  }

  kill (signal: NodeJS.Signals): void { this.child.kill(signal) }

  /** Writes one JSON line to the child's stdin (spawned with `stdin: true`). */
  command (obj: Record<string, unknown>): void {
    if (this.child.stdin === null) throw new Error(`${this.name} was spawned without stdin`)
    this.child.stdin.write(JSON.stringify(obj) + '\n')
  }

  /** SIGTERM (graceful leave), then SIGKILL if it has not exited within `graceMs`. */
  async stop (graceMs = 5000): Promise<void> {
    if (this.running) await terminate(this.child, this.exited, graceMs)
  }

  private notify (): void { for (const w of [...this.waiters]) w() }
}

/**
 * Polls `condition` every `intervalMs` until it holds; rejects after `timeoutMs`, naming `what`
 * (a function is asked only then, so that it can describe the state the wait ended in).
 */
export async function waitUntil (condition: () => boolean, timeoutMs: number, what: string | (() => string), intervalMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Whether every process's last view has the same epoch and the same members in order. */
export function agreed (procs: readonly MemberProcess[], size: number): boolean {
  const views = procs.map(p => p.lastView())
  const first = views[0]
  if (first === undefined || first.members.length !== size) return false
  const key = (v: ViewEvent): string => `${v.epoch}:${v.members.map(m => m.id).join(',')}`
  return views.every(v => v !== undefined && key(v) === key(first))
}

/** A TCP port on 127.0.0.1 that was free a moment ago (listen on 0, read it, close). */
export async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const s = createServer().once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}
