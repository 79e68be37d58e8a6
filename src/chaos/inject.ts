/**
 * How each chaos fault is made and undone, one function per fault type over what the run
 * provides (`Chaos`). Each returns when its fault is undone, with the record the judge reads.
 * Link faults other than the clean partition are nftables drops inside the hosts
 * (testing/netfilter.ts); each ends with `lab.heal()`, which lifts them all.
 */
import { spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import type { MemberProcess } from '../testing/member-process.js'
import type { NetnsLab } from '../testing/netns.js'
import { apart, loss, oneWay, ring } from '../testing/netfilter.js'
import type { Fault, FaultType } from './faults.js'
import { randomBridge, randomLoss, randomRing, randomSplit } from './schedule.js'

/** One host slot of the run: the process running there now and its history. */
export interface Slot {
  readonly index: number
  proc: MemberProcess
  generation: number
  /** The current process's wall-clock shift (clock-restart), ms. */
  clockOffsetMs: number
  /** SIGSTOP → SIGCONT periods of the current process. */
  readonly frozen: Array<[number, number]>
}

export interface Chaos {
  readonly lab: NetnsLab
  readonly slots: readonly Slot[]
  readonly rnd: () => number
  readonly signal: AbortSignal
  /** How far clock-restart shifts the clock, ms. */
  readonly clockOffsetMs: number
  /** Waits, or less if the run is interrupted. */
  sleep: (ms: number) => Promise<void>
  /** Says a fault begins now; returns the time. */
  begin: (type: FaultType, detail: string) => number
  /** SIGKILLs the slot's process and files its log; resolves once it has exited. */
  kill: (slot: Slot) => Promise<void>
  /** Starts the slot's next process, seeded with every other host, its clock shifted by `clockOffsetMs`. */
  restart: (slot: Slot, clockOffsetMs?: number) => MemberProcess
}

type Injector = (c: Chaos) => Promise<Fault>

const between = (c: Chaos, lo: number, hi: number): number => lo + c.rnd() * (hi - lo)
const pick = (c: Chaos): Slot => c.slots[Math.floor(c.rnd() * c.slots.length)] as Slot
const hostName = (i: number): string => `m${i}`
const group = (hosts: readonly number[]): string => `{${hosts.map(hostName).join(',')}}`

/** A link fault: installed, held for a while, healed. */
async function linkFault (c: Chaos, type: FaultType, detail: string, apply: () => Promise<void>, holdMs: number): Promise<Fault> {
  const at = c.begin(type, detail)
  await apply()
  await c.sleep(holdMs)
  await c.lab.heal()
  return { type, at, endAt: Date.now(), detail }
}

export const INJECT: Record<FaultType, Injector> = {
  async kill (c) {
    const slot = pick(c)
    const detail = `kill ${slot.proc.name}`
    const at = c.begin('kill', detail)
    await c.kill(slot)
    await c.sleep(between(c, 500, 2500))
    const proc = c.restart(slot)
    const endAt = Date.now()
    await proc.waitReady(30_000).catch(() => {})
    return { type: 'kill', at, endAt, detail, process: proc.name }
  },

  async hang (c) {
    const slot = pick(c)
    const detail = `hang ${slot.proc.name}`
    const at = c.begin('hang', detail)
    slot.proc.kill('SIGSTOP')
    await c.sleep(between(c, 500, 4000))
    slot.proc.kill('SIGCONT')
    const endAt = Date.now()
    slot.frozen.push([at, endAt])
    return { type: 'hang', at, endAt, detail }
  },

  async partition (c) {
    const sides = randomSplit(c.slots.length, c.rnd)
    const hold = between(c, 1000, 5000)
    return await linkFault(c, 'partition', `partition ${sides.map(group).join(' | ')}`, async () => await c.lab.partition(sides), hold)
  },

  async bridge (c) {
    const { groups, middle } = randomBridge(c.slots.length, c.rnd)
    const hold = between(c, 2000, 5000)
    return await linkFault(c, 'bridge', `bridge ${group(groups[0])} | ${hostName(middle)} | ${group(groups[1])}`,
      async () => await c.lab.filter(apart(groups)), hold)
  },

  async ring (c) {
    const order = randomRing(c.slots.length, c.rnd)
    const hold = between(c, 2000, 5000)
    return await linkFault(c, 'ring', `ring ${[...order, order[0] as number].map(hostName).join('-')}`,
      async () => await c.lab.filter(ring(order)), hold)
  },

  async 'one-way' (c) {
    const slot = pick(c)
    const side = c.rnd() < 0.5 ? 'send' : 'receive'
    const hold = between(c, 1000, 5000)
    return await linkFault(c, 'one-way', `one-way ${hostName(slot.index)} cannot ${side}`,
      async () => await c.lab.filter(oneWay(slot.index, side, c.slots.length)), hold)
  },

  async loss (c) {
    const { hosts, percent } = randomLoss(c.slots.length, c.rnd)
    const hold = between(c, 2000, 5000)
    return await linkFault(c, 'loss', `loss ${percent} % on ${hosts.map(hostName).join(',')}`,
      async () => await c.lab.filter(loss(hosts, percent, c.slots.length)), hold)
  },

  async cpu (c) {
    const cores = availableParallelism()
    const seconds = 2 + Math.floor(c.rnd() * 4)
    const at = c.begin('cpu', `cpu: stress-ng on ${cores} cores for ${seconds} s`)
    await stressCpu(cores, seconds, c.signal)
    return { type: 'cpu', at, endAt: Date.now(), detail: `cpu: stress-ng on ${cores} cores for ${seconds} s` }
  },

  async 'cut-off-start' (c) {
    const slot = pick(c)
    const hold = between(c, 3000, 5000)
    const others = c.slots.map(s => s.index).filter(i => i !== slot.index)
    const old = slot.proc.name
    const at = c.begin('cut-off-start', `cut-off-start ${old}: killed, restarted with its host cut off`)
    await c.kill(slot)
    await c.lab.filter(apart([[slot.index], others]))
    const proc = c.restart(slot)
    // Cut off for `hold` once it runs: its start-up (loading libp2p) is not part of the test.
    await proc.waitReady(15_000).catch(() => {})
    await c.sleep(hold)
    await c.lab.heal()
    const detail = `cut-off-start ${old} → ${proc.name}, cut off for ${(hold / 1000).toFixed(1)} s after its start`
    return { type: 'cut-off-start', at, endAt: Date.now(), detail, process: proc.name }
  },

  async 'clock-restart' (c) {
    const slot = pick(c)
    const old = slot.proc.name
    const shift = `${Math.abs(c.clockOffsetMs) / 3_600_000} h ${c.clockOffsetMs < 0 ? 'back' : 'ahead'}`
    const at = c.begin('clock-restart', `clock-restart ${old}: killed, restarted with its clock ${shift}`)
    await c.kill(slot)
    await c.sleep(between(c, 500, 2500))
    const proc = c.restart(slot, c.clockOffsetMs)
    const endAt = Date.now()
    const ready = await proc.waitReady(30_000).then(p => p.ready(), () => undefined)
    if (ready !== undefined) {
      const seen = ready.ts - Date.now()
      // From its line to the parent reading it takes well under a minute.
      if (Math.abs(seen - c.clockOffsetMs) > 60_000) {
        throw new Error(`clock-restart: ${proc.name}'s clock is ${Math.round(seen / 1000)} s off, not ${c.clockOffsetMs / 1000} s: libfaketime did not take effect (LD_PRELOAD)`)
      }
    }
    return { type: 'clock-restart', at, endAt, detail: `clock-restart ${old} → ${proc.name}, clock ${shift}`, process: proc.name }
  }
}

/** Saturates `cores` cores for `seconds` (stress-ng in this machine's namespace: CPU is not namespaced). */
async function stressCpu (cores: number, seconds: number, signal: AbortSignal): Promise<void> {
  const child = spawn('stress-ng', ['--cpu', String(cores), '--timeout', `${seconds}s`, '--quiet'], { stdio: 'ignore' })
  const stop = (): void => { child.kill('SIGTERM') }
  signal.addEventListener('abort', stop, { once: true })
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', () => resolve())
    })
  } finally {
    signal.removeEventListener('abort', stop)
  }
}
