/**
 * The scheduled-job example as three real processes on 127.0.0.1: SIGKILL the process whose
 * ticks are arriving, and check that no tick time fires twice, that another process carries
 * on, and that the gap is small. With `missed: 'latest'` the successor would fire the newest
 * tick before its takeover, so only the claims it learned keep it from firing a tick twice.
 */
import { afterEach, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { waitUntil } from '../src/testing/member-process.js'

const script = fileURLToPath(new URL('../dist/examples/scheduled-job.js', import.meta.url))

interface Line { readonly type: string, readonly [key: string]: unknown }
interface Tick { readonly tick: number, readonly member: string, readonly epoch: number, readonly ts: number }

/** One example process and the JSON lines it printed. */
class JobProcess {
  readonly child: ChildProcess
  readonly lines: Line[] = []
  stderr = ''

  constructor (readonly name: string, cluster: string, seeds: readonly string[]) {
    const args = [script, '--cluster', cluster, '--listen', '127.0.0.1:0', '--name', name, '--every', '100', '--missed', 'latest', ...seeds.flatMap(s => ['--seed', s])]
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    if (this.child.stdout !== null) {
      createInterface({ input: this.child.stdout }).on('line', line => {
        try { this.lines.push(JSON.parse(line) as Line) } catch { /* not a JSON line */ }
      })
    }
  }

  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }
  get ticks (): Tick[] { return this.lines.filter(l => l.type === 'tick') as unknown as Tick[] }
  /** `host:port` of the first listen address, once ready. */
  get address (): string | undefined {
    const listen = this.lines.find(l => l.type === 'ready')?.listen as string[] | undefined
    return /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(listen?.[0] ?? '')?.slice(1).join(':')
  }

  lastViewSize (): number {
    const views = this.lines.filter(l => l.type === 'view')
    return (views[views.length - 1]?.members as unknown[] | undefined)?.length ?? 0
  }

  async ready (): Promise<this> {
    await waitUntil(() => this.address !== undefined || !this.running, 20_000, `${this.name} ready`)
    if (this.address === undefined) throw new Error(`${this.name} exited: ${this.stderr.slice(-500)}`)
    return this
  }
}

const procs: JobProcess[] = []

afterEach(async () => {
  await Promise.all(procs.splice(0).map(async p => {
    if (!p.running) return
    const exited = new Promise(resolve => p.child.once('exit', resolve))
    p.child.kill('SIGKILL')
    await exited
  }))
})

it('after a SIGKILL of the firing process, another continues: no tick twice, a small gap', async () => {
  const cluster = `schedproc${process.pid}`
  const first = new JobProcess('p1', cluster, [])
  procs.push(first)
  await first.ready()
  const seed = first.address as string
  for (const name of ['p2', 'p3']) {
    const p = new JobProcess(name, cluster, [seed])
    procs.push(p)
    await p.ready()
  }
  await waitUntil(() => procs.every(p => p.lastViewSize() === 3), 20_000, 'a view of three')
  const all = (): Tick[] => procs.flatMap(p => p.ticks)

  // about 4 s of ticks, then kill the process whose ticks are arriving
  const settled = all().length
  await waitUntil(() => all().length >= settled + 40, 10_000, '40 ticks')
  const ticksNow = all()
  const firing = ticksNow.reduce((a, b) => (b.tick > a.tick ? b : a)).member
  const victim = procs.find(p => p.name === firing) as JobProcess
  victim.child.kill('SIGKILL')
  await new Promise(resolve => victim.child.once('exit', resolve))
  const lastBefore = Math.max(...victim.ticks.map(t => t.tick))

  // about 4 s more, from the survivors
  const after = (): Tick[] => all().filter(t => t.member !== firing)
  const survivorsBefore = after().length
  await waitUntil(() => after().length >= survivorsBefore + 40, 10_000, '40 ticks from a survivor')

  const ticks = all().map(t => t.tick)
  const duplicates = ticks.filter((t, i) => ticks.indexOf(t) !== i)
  expect(duplicates, 'tick times fired twice').toEqual([])
  expect(ticks.every(t => t % 100 === 0)).toBe(true)
  const later = all().filter(t => t.tick > lastBefore)
  expect(later.length).toBeGreaterThanOrEqual(40)
  expect(later.every(t => t.member !== firing), 'ticks after the kill come from another process').toBe(true)
  // one successor, with a higher fencing epoch
  expect(new Set(later.map(t => t.member)).size).toBe(1)
  expect(Math.min(...later.map(t => t.epoch))).toBeGreaterThan(Math.max(...victim.ticks.map(t => t.epoch)))
  const firstAfter = Math.min(...later.map(t => t.tick))
  const missing = (firstAfter - lastBefore) / 100 - 1
  expect(missing, `missing ticks between ${lastBefore} and ${firstAfter}`).toBeLessThanOrEqual(15)
  expect(procs.filter(p => p !== victim).every(p => p.running)).toBe(true)
}, 60_000)
