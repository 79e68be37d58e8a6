/**
 * Random fault schedules for the simulation: one seed gives one run of a cluster through a
 * random sequence of the faults deployments meet, with the invariants checked after every step,
 * then a heal of everything and a check that the members agree again. `npm test` runs a fixed
 * set of seeds (test/schedules.test.ts); `bench/simulate.ts` runs thousands.
 *
 * Faults: crash (and later a restart: from durable state, from empty state under the same id,
 * or as a new member), hang and resume, graceful leave, join, clean partition into two or three
 * sides, bridge (two sides and one member that reaches both), ring (each member reaches only its
 * neighbours), one-way loss (a member that cannot send, or cannot receive), single cut links,
 * bursts of message loss and duplication, wall-clock steps. Every member's clock runs at its own
 * rate (within ±200 ppm) and offset.
 */
import { Simulation } from './simulation.js'
import { ALL_INVARIANTS, MAJORITY_INVARIANTS, epochsGrowAcrossRestarts } from './invariants.js'
import { seededRandom } from './random.js'
import type { QuorumRule } from '../core/quorum.js'

export type FaultKind = 'crash' | 'restart' | 'hang' | 'resume' | 'leave' | 'join' | 'partition' | 'bridge' | 'ring' | 'one-way' | 'cut' | 'loss' | 'clock-step'

export interface FaultScheduleOptions {
  readonly seed: number
  readonly splitBrain: 'allow' | 'majority'
  /** Members at the start. @default 5 */
  readonly members?: number
  /** Faults in the run. @default 10 */
  readonly faults?: number
  /** Whether members keep durable state (restarts then come back with it). @default true */
  readonly durable?: boolean
  /** Simulated time the members get to agree once every fault is undone. @default 20000 */
  readonly settleMs?: number
}

export interface ScheduleResult {
  readonly seed: number
  /** Undefined when every invariant held and the members agreed again; else what went wrong. */
  readonly problem: string | undefined
  readonly faults: readonly string[]
  /** Simulated time from the last heal to one view of all running members, in ms. */
  readonly settledMs: number | undefined
  /** Simulated time of the whole run, in ms. */
  readonly simulatedMs: number
}

const WALL_CLOCK_BASE = 1_800_000_000_000

export function runSchedule (opts: FaultScheduleOptions): ScheduleResult {
  const rnd = seededRandom(opts.seed * 2654435761)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T
  const between = (lo: number, hi: number): number => lo + rnd() * (hi - lo)
  const durable = opts.durable ?? true
  const quorum: QuorumRule = { splitBrain: opts.splitBrain, quorum: 1 }
  const sim = new Simulation({ seed: opts.seed, quorum, delayMs: [0.2, 5], wallClock: WALL_CLOCK_BASE })
  const invariants = opts.splitBrain === 'majority' ? [...MAJORITY_INVARIANTS, epochsGrowAcrossRestarts] : [...ALL_INVARIANTS, epochsGrowAcrossRestarts]
  let problem: string | undefined
  sim.onStep = s => {
    if (problem !== undefined) return
    for (const inv of invariants) {
      const p = inv(s)
      if (p !== undefined) { problem = `invariant ${inv.name}: ${p}`; return }
    }
  }
  const size = opts.members ?? 5
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`)
  const clock = (): { offsetMs: number, rate: number, wallOffsetMs: number } => ({ offsetMs: between(0, 1e6), rate: 1 + between(-2e-4, 2e-4), wallOffsetMs: between(-50, 50) })
  const start = (id: string, seeds: readonly string[]): void => { sim.addNode(id, seeds, { durable, clock: clock() }) }
  start(ids[0] as string, [])
  for (const id of ids.slice(1)) { sim.runFor(between(5, 60)); start(id, ids) }
  const faults: string[] = []
  if (!sim.runUntilTrue(() => sim.converged(), 15_000)) return { seed: opts.seed, problem: 'no initial agreement', faults, settledMs: undefined, simulatedMs: sim.now }
  const hung: string[] = []
  const down: string[] = []
  let joined = 0
  for (let step = 0; step < (opts.faults ?? 10) && problem === undefined; step++) {
    sim.runFor(between(100, 2000))
    const up = sim.upNodes().map(n => n.id)
    const all = [...sim.nodes.values()].filter(n => n.state !== 'crashed' && !n.left).map(n => n.id)
    const kind: FaultKind = up.length <= 3
      ? (down.length > 0 ? 'restart' : hung.length > 0 ? 'resume' : 'join')
      : pick(['crash', 'restart', 'hang', 'resume', 'leave', 'join', 'partition', 'bridge', 'ring', 'one-way', 'cut', 'loss', 'clock-step'] as const)
    const victim = pick(up)
    switch (kind) {
      case 'crash': sim.crash(victim); down.push(victim); faults.push(`crash ${victim}`); break
      case 'restart': {
        const id = down.shift()
        if (id === undefined) break
        const how = pick(['durable', 'empty', 'new-id'] as const)
        // As deployed: a restarted member gets the cluster's seed list (the founder too; only
        // a member started without seeds founds a cluster, and that is the operator's act).
        if (how === 'new-id') { const fresh = `${id}r${step}`; start(fresh, ids) } else sim.restart(id, durable && how === 'durable' ? 'durable' : 'empty', { clock: { ...clock(), wallOffsetMs: -between(0, 3_600_000) } }, ids)
        faults.push(`restart ${id} (${how}, wall clock set back)`)
        break
      }
      case 'hang': sim.hang(victim); hung.push(victim); faults.push(`hang ${victim}`); break
      case 'resume': { const id = hung.shift(); if (id !== undefined) { sim.resume(id); faults.push(`resume ${id}`) } break }
      case 'leave': sim.leave(victim); faults.push(`leave ${victim}`); break
      case 'join': { const id = `x${++joined}`; start(id, [pick(up)]); faults.push(`join ${id}`); break }
      case 'partition': {
        const cut = all.filter(() => rnd() < 0.5)
        const rest = all.filter(id => !cut.includes(id))
        const sides = rnd() < 0.3 && rest.length > 1 ? [cut, rest.slice(1), rest.slice(0, 1)] : [cut, rest]
        sim.partition(sides)
        faults.push(`partition ${sides.map(s => `{${s.join(',')}}`).join(' | ')}`)
        sim.runFor(between(300, 4000))
        sim.heal()
        break
      }
      case 'bridge': {
        const middle = pick(all)
        const others = all.filter(id => id !== middle)
        const left = others.filter(() => rnd() < 0.5)
        const right = others.filter(id => !left.includes(id))
        sim.cut(left.flatMap(a => right.map(b => [a, b] as const)))
        faults.push(`bridge {${left.join(',')}} | ${middle} | {${right.join(',')}}`)
        sim.runFor(between(1000, 6000))
        sim.heal()
        break
      }
      case 'ring': {
        if (all.length < 4) break
        const order = [...all].sort(() => rnd() - 0.5)
        const near = (a: number, b: number): boolean => Math.abs(a - b) === 1 || Math.abs(a - b) === order.length - 1
        const pairs: Array<readonly [string, string]> = []
        for (let a = 0; a < order.length; a++) for (let b = a + 1; b < order.length; b++) if (!near(a, b)) pairs.push([order[a] as string, order[b] as string])
        sim.cut(pairs)
        faults.push(`ring ${order.join('-')}`)
        sim.runFor(between(1000, 6000))
        sim.heal()
        break
      }
      case 'one-way': {
        const send = rnd() < 0.5
        sim.cut(all.filter(id => id !== victim).map((id): readonly [string, string] => send ? [victim, id] : [id, victim]), { oneWay: true })
        faults.push(`one-way ${victim} cannot ${send ? 'send' : 'receive'}`)
        sim.runFor(between(500, 4000))
        sim.heal()
        break
      }
      case 'cut': {
        const other = pick(all.filter(id => id !== victim))
        if (other === undefined) break
        sim.cut([[victim, other]], { oneWay: rnd() < 0.5 })
        faults.push(`cut ${victim}-${other}`)
        sim.runFor(between(300, 3000))
        sim.heal()
        break
      }
      case 'loss':
        sim.lossRate = between(0.02, 0.2)
        sim.duplicateRate = between(0, 0.05)
        faults.push(`loss ${(sim.lossRate * 100).toFixed(0)} %, duplicates ${(sim.duplicateRate * 100).toFixed(0)} %`)
        sim.runFor(between(500, 3000))
        sim.lossRate = 0
        sim.duplicateRate = 0
        break
      case 'clock-step': {
        const delta = between(-7_200_000, 7_200_000)
        sim.stepWallClock(victim, delta)
        faults.push(`wall clock of ${victim} stepped ${(delta / 1000).toFixed(0)} s`)
        break
      }
    }
  }
  // The faults stop: every hung member resumes, crashed ones restart, the network heals.
  for (const id of hung) sim.resume(id)
  for (const id of down) sim.restart(id, durable ? 'durable' : 'empty', {}, ids)
  sim.heal()
  sim.lossRate = 0
  sim.duplicateRate = 0
  const healedAt = sim.now
  if (problem === undefined && !sim.runUntilTrue(() => problem !== undefined || sim.converged(), opts.settleMs ?? 20_000)) {
    const states = [...sim.nodes.values()].map(n => `${n.id}:${n.state}:${n.core.status}:e${n.core.view?.id.epoch}:[${n.core.view?.members.map(m => m.id).join(',') ?? ''}]`)
    problem = `no agreement ${opts.settleMs ?? 20_000} ms after the faults stopped: ${states.join(' ')}`
  }
  const settledMs = problem === undefined ? sim.now - healedAt : undefined
  if (problem === undefined) {
    // One coordinator once the lease has had time to form, if the view may have masters.
    const quorate = sim.upNodes()[0]?.core.quorumProblem === undefined
    const coordinators = (): number => sim.upNodes().filter(n => n.core.isCoordinator(n.now())).length
    sim.runUntilTrue(() => coordinators() === (quorate ? 1 : 0), 3000)
    if (problem === undefined && coordinators() !== (quorate ? 1 : 0)) problem = `${coordinators()} coordinators 3 s after agreement (view ${quorate ? 'quorate' : 'without quorum'})`
  }
  return { seed: opts.seed, problem, faults, settledMs, simulatedMs: sim.now }
}
