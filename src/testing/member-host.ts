/**
 * Runs `conclave host` (several members in one process) as a child process and follows each
 * member's JSON lines: for scale runs that need more members than separate processes fit.
 * The child is killed when the parent exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { MEMBER_NODE_FLAGS } from '../member-flags.js'
import { conclaveBin, terminate, trackChild, type MemberEvent } from './member-process.js'

/** A host's view line: the view's epoch, size, coordinator and digest of its member ids. */
export interface HostedViewEvent extends MemberEvent {
  readonly type: 'view'
  readonly epoch: number
  readonly size: number
  readonly coordinator: string
  readonly digest: string
}

export interface HostStats {
  /** Per member, by name: open connections and view size. */
  readonly members: ReadonlyMap<string, { readonly connections: number, readonly viewSize: number }>
  readonly rssMiB: number
  readonly cpuS: number
}

/** One member of a host: its lines so far. */
export class HostedMember {
  readonly events: MemberEvent[] = []
  constructor (readonly name: string, readonly host: MemberHost) {}
  ready (): MemberEvent | undefined { return this.events.find(e => e.type === 'ready') }
  get id (): string | undefined { return this.ready()?.id as string | undefined }
  /** `host:port` of its first listen address, once ready. */
  get address (): string | undefined {
    const addr = (this.ready()?.listen as string[] | undefined)?.[0]
    const m = addr === undefined ? null : /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(addr)
    return m === null ? undefined : `${m[1]}:${m[2]}`
  }

  lastView (): HostedViewEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]?.type === 'view') return this.events[i] as HostedViewEvent
    return undefined
  }
}

export interface HostOptions {
  readonly cluster: string
  readonly count: number
  /** Name prefix: members are <prefix>-0 … <prefix>-(count-1). */
  readonly prefix: string
  readonly seeds?: readonly string[]
  readonly extraArgs?: readonly string[]
}

export class MemberHost {
  readonly child: ChildProcess
  readonly members: HostedMember[]
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stderr = ''
  private readonly byName = new Map<string, HostedMember>()
  private readonly waiters = new Set<() => void>()
  private statsWaiter: ((s: HostStats) => void) | undefined
  private pendingStats = new Map<string, { connections: number, viewSize: number }>()

  constructor (readonly opts: HostOptions) {
    this.members = Array.from({ length: opts.count }, (_, i) => new HostedMember(`${opts.prefix}-${i}`, this))
    for (const m of this.members) this.byName.set(m.name, m)
    const args = [...MEMBER_NODE_FLAGS, conclaveBin(), 'host', '--cluster', opts.cluster, '--count', String(opts.count),
      '--name', opts.prefix, ...(opts.seeds ?? []).flatMap(s => ['--seed', s]), ...(opts.extraArgs ?? [])]
    this.child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    this.exited = trackChild(this.child, () => { this.notify() })
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.stderr = (this.stderr + chunk).slice(-10_000) })
    if (this.child.stdout !== null) {
      createInterface({ input: this.child.stdout }).on('line', line => {
        let e: MemberEvent & { member?: string }
        try { e = JSON.parse(line) } catch { return }
        if (e.type === 'stats') {
          this.pendingStats.set(String(e.member), { connections: Number(e.connections), viewSize: Number(e.viewSize) })
        } else if (e.type === 'host-stats') {
          const done = this.statsWaiter
          this.statsWaiter = undefined
          done?.({ members: this.pendingStats, rssMiB: Number(e.rssMiB), cpuS: Number(e.cpuS) })
          this.pendingStats = new Map()
        } else {
          this.byName.get(String(e.member))?.events.push(e)
        }
        this.notify()
      })
    }
  }

  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }

  /** Resolves once every member printed `ready`; rejects after `timeoutMs` or if the host exits. */
  async waitReady (timeoutMs = 60_000): Promise<this> {
    await this.waitFor(() => this.members.every(m => m.ready() !== undefined), timeoutMs, 'every member ready')
    return this
  }

  /** Each member's connections and view size, and the process's RSS and CPU time. */
  async stats (timeoutMs = 10_000): Promise<HostStats> {
    if (this.statsWaiter !== undefined) throw new Error('a stats request is already pending')
    const result = new Promise<HostStats>(resolve => { this.statsWaiter = resolve })
    this.child.stdin?.write('{"cmd":"stats"}\n')
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${this.opts.prefix}: no stats within ${timeoutMs} ms`)) }, timeoutMs) })
    try {
      return await Promise.race([result, timeout])
    } finally {
      clearTimeout(timer)
      this.statsWaiter = undefined
    }
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void { this.child.kill(signal) }

  /** SIGTERM (every member leaves), SIGKILL after `graceMs`. */
  async stop (graceMs = 5000): Promise<void> {
    if (this.running) await terminate(this.child, this.exited, graceMs)
  }

  private async waitFor (condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { finish(); reject(new Error(`${this.opts.prefix}: timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${this.stderr.slice(-500)}`)) }, timeoutMs)
      const check = (): void => {
        if (condition()) { finish(); resolve(); return }
        if (!this.running) { finish(); reject(new Error(`${this.opts.prefix} exited before ${what}; stderr: ${this.stderr.slice(-500)}`)) }
      }
      const finish = (): void => { clearTimeout(timer); this.waiters.delete(check) }
      this.waiters.add(check)
    })
  }

  private notify (): void { for (const w of [...this.waiters]) w() }
}

/** Whether every member's last view is the same view (epoch and digest) of `size` members. */
export function hostedAgreed (members: readonly HostedMember[], size: number): boolean {
  const first = members[0]?.lastView()
  if (first === undefined || first.size !== size) return false
  return members.every(m => { const v = m.lastView(); return v !== undefined && v.epoch === first.epoch && v.digest === first.digest })
}
