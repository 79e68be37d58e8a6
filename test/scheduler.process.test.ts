/**
 * The scheduled-job example as three real processes on 127.0.0.1, with `missed: 'latest'`:
 * SIGKILL the firing process right after it fired a tick, so that the successor takes over
 * before the next tick is due. Its catch-up then reaches the killed master's last tick: the
 * newest tick that passed before its takeover. Only its record of that tick's claim, which the
 * killed master waited for before firing, keeps it from firing that tick a second time. Checks
 * that no tick time fires twice, that one other process carries on, and that the gap is small.
 */
import { afterEach, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { waitUntil } from '../src/testing/member-process.js'
import { wallClockMs } from '../src/clock.js'

const script = fileURLToPath(new URL('../dist/examples/scheduled-job.js', import.meta.url))
/** The tick period: long enough that a SIGKILL failover (tens of ms) ends before the next tick. */
const EVERY_MS = 300

interface Line { readonly type: string, readonly [key: string]: unknown }
interface Tick { readonly tick: number, readonly member: string, readonly epoch: number, readonly ts: number }

/** One example process and the JSON lines it printed. */
class JobProcess {
  readonly child: ChildProcess
  readonly lines: Line[] = []
  stderr = ''
  /** Called with each line as it arrives (the kill must follow a tick line at once). */
  onLine: ((line: Line) => void) | undefined

  constructor (readonly name: string, cluster: string, seeds: readonly string[]) {
    const args = [script, '--cluster', cluster, '--listen', '127.0.0.1:0', '--name', name, '--every', String(EVERY_MS), '--missed', 'latest', ...seeds.flatMap(s => ['--seed', s])]
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    if (this.child.stdout !== null) {
      createInterface({ input: this.child.stdout }).on('line', line => {
        let parsed: Line
        try { parsed = JSON.parse(line) as Line } catch { return /* not a JSON line */ }
        this.lines.push(parsed)
        this.onLine?.(parsed)
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

it('after a SIGKILL of the firing process right after a fire, another continues: no tick twice, a small gap', async () => {
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

  // about 3.6 s of ticks, then kill the firing process as soon as it prints its next tick
  const settled = all().length
  await waitUntil(() => all().length >= settled + 12, 10_000, '12 ticks')
  const firing = all().reduce((a, b) => (b.tick > a.tick ? b : a)).member
  const victim = procs.find(p => p.name === firing) as JobProcess
  const exited = new Promise(resolve => victim.child.once('exit', resolve))
  let killedAt = 0
  victim.onLine = line => {
    if (line.type !== 'tick' || killedAt !== 0) return
    victim.child.kill('SIGKILL')
    killedAt = wallClockMs() // the clock of the lines' ts
  }
  await exited
  const lastBefore = Math.max(...victim.ticks.map(t => t.tick))

  // about 3.6 s more, from the survivors
  const after = (): Tick[] => all().filter(t => t.member !== firing)
  const survivorsBefore = after().length
  await waitUntil(() => after().length >= survivorsBefore + 12, 10_000, '12 ticks from a survivor')

  const ticks = all().map(t => t.tick)
  const duplicates = ticks.filter((t, i) => ticks.indexOf(t) !== i)
  expect(duplicates, 'tick times fired twice').toEqual([])
  expect(ticks.every(t => t % EVERY_MS === 0)).toBe(true)
  const later = all().filter(t => t.tick > lastBefore)
  expect(later.length).toBeGreaterThanOrEqual(12)
  expect(later.every(t => t.member !== firing), 'ticks after the kill come from another process').toBe(true)
  // one successor, with a higher fencing epoch
  const successors = new Set(later.map(t => t.member))
  expect(successors.size).toBe(1)
  expect(Math.min(...later.map(t => t.epoch))).toBeGreaterThan(Math.max(...victim.ticks.map(t => t.epoch)))
  // The scenario came about: the kill followed the fire at once, and the successor took over
  // before the next tick was due, so the newest tick it could catch up was the victim's last.
  const successor = procs.find(p => successors.has(p.name)) as JobProcess
  const promotedAt = successor.lines.find(l => l.type === 'coordinator' && l.isCoordinator === true && (l.ts as number) >= killedAt - 50)?.ts as number
  expect(killedAt - lastBefore, 'the kill came right after the last fire').toBeLessThan(EVERY_MS / 2)
  expect(promotedAt - lastBefore, 'the successor took over before the next tick was due').toBeLessThan(EVERY_MS)
  const firstAfter = Math.min(...later.map(t => t.tick))
  const missing = (firstAfter - lastBefore) / EVERY_MS - 1
  expect(missing, `missing ticks between ${lastBefore} and ${firstAfter}`).toBeLessThanOrEqual(3)
  expect(procs.filter(p => p !== victim).every(p => p.running)).toBe(true)
}, 60_000)
