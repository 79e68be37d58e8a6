/**
 * A chaos run: `members` member processes, one per test host (network namespaces, see
 * testing/netns.ts), under a random schedule of one fault at a time (chaos/faults.ts lists
 * them, chaos/inject.ts makes them). After each fault is undone the run waits until the members
 * agree on one view again (at most SETTLE_LIMIT_MS), then 2.5–5 s more, so that every fault's
 * re-agreement is measured on its own. Every member's JSON events are kept; analyze.ts judges
 * them afterwards.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemberProcess, agreed } from '../testing/member-process.js'
import { NetnsLab } from '../testing/netns.js'
import { seededRandom } from '../testing/random.js'
import type { ProcessLog } from './analyze.js'
import { FAULT_TYPES, type Fault, type FaultType } from './faults.js'
import { INJECT, type Chaos, type Slot } from './inject.js'
import { memberSpawnOptions } from './members.js'
import { faultBag } from './schedule.js'
import { FAKETIME_LIB } from './tools.js'

export interface ChaosOptions {
  readonly members: number
  readonly durationMs: number
  readonly splitBrain: 'allow' | 'majority'
  readonly seed: number
  readonly signal: AbortSignal
  /** The fault types to draw from. Default: all (`ring` only from 4 members). */
  readonly faults?: readonly FaultType[]
  /** A cluster key file every member gets (`--key-file`). */
  readonly keyFile?: string
  /**
   * Give each host slot a durable state directory (`conclave member --state-dir`), the same
   * for every process of the slot, in a temporary directory removed at the end. Default false.
   */
  readonly stateDir?: boolean
  /** How far `clock-restart` shifts a member's wall clock, ms. Default −3 h. */
  readonly clockOffsetMs?: number
  /** libfaketime, for `clock-restart`. Default: where Debian installs it (chaos/tools.ts). */
  readonly faketimeLib?: string
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

/** The longest wait for the members to agree after a fault before the next one comes anyway. */
export const SETTLE_LIMIT_MS = 20_000

/** The default fault types for `members` members: every one that can be made with that many. */
export function defaultFaults (members: number): FaultType[] {
  return FAULT_TYPES.filter(t => t !== 'ring' || members >= 4)
}

export async function runChaos (opts: ChaosOptions): Promise<ChaosRecord> {
  const types = opts.faults ?? defaultFaults(opts.members)
  if (types.includes('ring') && opts.members < 4) throw new RangeError(`a ring needs at least 4 members, got ${opts.members}`)
  const rnd = seededRandom(opts.seed)
  const next = faultBag(types, rnd)
  const lab = await NetnsLab.create(opts.members)
  const stateRoot = opts.stateDir === true ? mkdtempSync(join(tmpdir(), 'conclave-chaos-state-')) : undefined
  const slots: Slot[] = []
  const logs: ProcessLog[] = []
  const faults: Fault[] = []
  const addresses = lab.hosts.map(h => `${h.address}:${PORT}`)
  const spawnAt = (index: number, generation: number, clockOffsetMs: number): MemberProcess => {
    let stateDir: string | undefined
    if (stateRoot !== undefined) {
      stateDir = join(stateRoot, `m${index}`)
      mkdirSync(stateDir, { recursive: true })
    }
    return new MemberProcess(memberSpawnOptions({
      index,
      generation,
      addresses,
      splitBrain: opts.splitBrain,
      founder: index === 0 && generation === 0,
      ...(opts.keyFile !== undefined ? { keyFile: opts.keyFile } : {}),
      ...(stateDir !== undefined ? { stateDir } : {}),
      ...(clockOffsetMs !== 0 ? { clockOffsetMs, faketimeLib: opts.faketimeLib ?? FAKETIME_LIB } : {}),
      prefix: lab.execPrefix(lab.hosts[index] as (typeof lab.hosts)[number])
    }))
  }
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
      crashed: (!killed && !p.running) || /Unhandled|uncaught|FATAL/i.test(p.stderr),
      ...(slot.clockOffsetMs !== 0 ? { clockOffsetMs: slot.clockOffsetMs } : {})
    })
  }
  /** Until every member runs and all hold one view of all of them, or `limitMs`. */
  const settle = async (limitMs: number): Promise<void> => {
    const until = Date.now() + limitMs
    while (!opts.signal.aborted && Date.now() < until) {
      const procs = slots.map(s => s.proc)
      if (procs.every(p => p.running) && agreed(procs, procs.length)) return
      await sleep(50)
    }
  }
  const chaos: Chaos = {
    lab,
    slots,
    rnd,
    signal: opts.signal,
    clockOffsetMs: opts.clockOffsetMs ?? -3 * 3_600_000,
    sleep,
    begin: (type, detail) => {
      const at = Date.now()
      opts.onFault?.({ type, detail, at })
      return at
    },
    kill: async slot => {
      const at = Date.now()
      slot.proc.kill('SIGKILL')
      await slot.proc.exited
      retire(slot, at, true)
    },
    restart: (slot, clockOffsetMs = 0) => {
      slot.generation++
      slot.clockOffsetMs = clockOffsetMs
      slot.proc = spawnAt(slot.index, slot.generation, clockOffsetMs)
      return slot.proc
    }
  }
  let start = Date.now()
  try {
    // Stagger the start: libp2p start-up is CPU-bound. m0 founds the cluster; the others join it.
    for (let i = 0; i < opts.members; i++) {
      const proc = spawnAt(i, 0, 0)
      slots.push({ index: i, proc, generation: 0, clockOffsetMs: 0, frozen: [] })
      await proc.waitReady(30_000)
      await proc.waitFor(e => e.type === 'view', 30_000)
    }
    await settle(SETTLE_LIMIT_MS)
    start = Date.now()
    const end = start + opts.durationMs
    while (Date.now() < end && !opts.signal.aborted) {
      await sleep(2500 + rnd() * 2500)
      if (Date.now() >= end || opts.signal.aborted) break
      faults.push(await INJECT[next()](chaos))
      await settle(SETTLE_LIMIT_MS)
    }
    const stopAt = Date.now()
    for (const slot of slots) retire(slot, stopAt, false)
    return { logs, faults, start, end: stopAt }
  } finally {
    await Promise.all(slots.map(async s => {
      if (s.proc.running) { s.proc.kill('SIGCONT'); await s.proc.stop(3000) }
    }))
    await lab.destroy()
    if (stateRoot !== undefined) rmSync(stateRoot, { recursive: true, force: true })
  }
}
