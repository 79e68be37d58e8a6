/**
 * A chaos run: `members` member processes, one per test host (network namespaces, see
 * testing/netns.ts), under a random schedule of one fault at a time: kill (SIGKILL, then a
 * fresh process in its place), hang (SIGSTOP, then SIGCONT) and partition (a random cut,
 * then the heal). Every member's JSON events are kept; analyze.ts judges them afterwards.
 */
import { MemberProcess } from '../testing/member-process.js'
import { NetnsLab, type TestHost } from '../testing/netns.js'
import { seededRandom } from '../testing/random.js'
import type { Fault, FaultType, ProcessLog } from './analyze.js'

export interface ChaosOptions {
  readonly members: number
  readonly durationMs: number
  readonly splitBrain: 'allow' | 'majority'
  readonly seed: number
  readonly signal: AbortSignal
  /** A cluster key file every member gets (`--key-file`). */
  readonly keyFile?: string
  /** Called with each fault as it begins, for progress output. */
  readonly onFault?: (fault: { type: FaultType, detail: string, at: number }) => void
}

export interface ChaosRecord {
  readonly logs: ProcessLog[]
  readonly faults: Fault[]
  readonly start: number
  readonly end: number
}

const PORT = 7200

interface Slot {
  readonly host: TestHost
  readonly index: number
  proc: MemberProcess
  generation: number
  frozenSince: number | undefined
  readonly frozen: Array<[number, number]>
  killedAt: number | undefined
}

export async function runChaos (opts: ChaosOptions): Promise<ChaosRecord> {
  const rnd = seededRandom(opts.seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T
  const between = (lo: number, hi: number): number => lo + rnd() * (hi - lo)
  const lab = await NetnsLab.create(opts.members)
  const slots: Slot[] = []
  const logs: ProcessLog[] = []
  const faults: Fault[] = []
  const seeds = lab.hosts.map(h => `${h.address}:${PORT}`)
  const spawnAt = (host: TestHost, index: number, generation: number): MemberProcess => new MemberProcess({
    cluster: 'chaos',
    name: `m${index}${generation > 0 ? `.${generation}` : ''}`,
    listen: `${host.address}:${PORT}`,
    seeds: seeds.filter((_, i) => i !== index),
    extraArgs: ['--split-brain', opts.splitBrain, ...(opts.keyFile !== undefined ? ['--key-file', opts.keyFile] : [])],
    prefix: lab.execPrefix(host)
  })
  const sleep = async (ms: number): Promise<void> => {
    if (opts.signal.aborted) return
    await new Promise<void>(resolve => {
      const t = setTimeout(done, ms)
      function done (): void { clearTimeout(t); opts.signal.removeEventListener('abort', done); resolve() }
      opts.signal.addEventListener('abort', done, { once: true })
    })
  }
  /** Files a process's log; `killed`: the run killed it (else it should still be running). */
  const retire = (slot: Slot, endedAt: number, killed: boolean): void => {
    const p = slot.proc
    logs.push({
      label: p.name,
      events: p.events,
      startedAt: p.spawnedAt,
      endedAt,
      frozen: slot.frozen.splice(0),
      crashed: (!killed && !p.running) || /Unhandled|uncaught|FATAL/i.test(p.stderr)
    })
  }
  let start = Date.now()
  try {
    // Stagger the start: libp2p start-up is CPU-bound.
    for (let i = 0; i < opts.members; i++) {
      const host = lab.hosts[i] as TestHost
      const proc = spawnAt(host, i, 0)
      slots.push({ host, index: i, proc, generation: 0, frozenSince: undefined, frozen: [], killedAt: undefined })
      await proc.waitReady(30_000)
      await proc.waitFor(e => e.type === 'view', 30_000)
    }
    start = Date.now()
    const end = start + opts.durationMs
    while (Date.now() < end && !opts.signal.aborted) {
      // At least 2.5 s between faults: the re-convergence target (2 s) must fit in the window.
      await sleep(between(2500, 5000))
      if (Date.now() >= end || opts.signal.aborted) break
      const roll = rnd()
      const at = Date.now()
      if (roll < 0.3) {
        const slot = pick(slots)
        const detail = `kill ${slot.proc.name}`
        opts.onFault?.({ type: 'kill', detail, at })
        slot.proc.kill('SIGKILL')
        slot.killedAt = at
        await slot.proc.exited
        await sleep(between(500, 2500))
        retire(slot, at, true)
        slot.generation++
        slot.proc = spawnAt(slot.host, slot.index, slot.generation)
        const endAt = Date.now()
        await slot.proc.waitReady(30_000).catch(() => {})
        faults.push({ type: 'kill', at, endAt, detail })
      } else if (roll < 0.6) {
        const slot = pick(slots)
        const detail = `hang ${slot.proc.name}`
        opts.onFault?.({ type: 'hang', detail, at })
        slot.proc.kill('SIGSTOP')
        await sleep(between(500, 4000))
        slot.proc.kill('SIGCONT')
        const endAt = Date.now()
        slot.frozen.push([at, endAt])
        faults.push({ type: 'hang', at, endAt, detail })
      } else {
        const sides = randomSplit(opts.members, rnd)
        const detail = `partition ${sides.map(s => `{${s.map(i => `m${i}`).join(',')}}`).join(' | ')}`
        opts.onFault?.({ type: 'partition', detail, at })
        await lab.partition(sides)
        await sleep(between(1000, 5000))
        await lab.heal()
        faults.push({ type: 'partition', at, endAt: Date.now(), detail })
      }
    }
    // Time for the last fault to settle, so that its re-convergence is measured too.
    await sleep(5000)
    const stopAt = Date.now()
    for (const slot of slots) retire(slot, stopAt, false)
    return { logs, faults, start, end: stopAt }
  } finally {
    await Promise.all(slots.map(async s => {
      if (s.proc.running) { s.proc.kill('SIGCONT'); await s.proc.stop(3000) }
    }))
    await lab.destroy()
  }
}

/** Two sides (sometimes three), each non-empty: a random cut of `n` hosts. */
function randomSplit (n: number, rnd: () => number): number[][] {
  const order = Array.from({ length: n }, (_, i) => i).sort(() => rnd() - 0.5)
  const three = n >= 5 && rnd() < 0.25
  if (three) {
    const a = 1 + Math.floor(rnd() * (n - 2))
    const b = a + 1 + Math.floor(rnd() * (n - a - 1))
    return [order.slice(0, a), order.slice(a, b), order.slice(b)].filter(s => s.length > 0)
  }
  const cut = 1 + Math.floor(rnd() * (n - 1))
  return [order.slice(0, cut), order.slice(cut)]
}
