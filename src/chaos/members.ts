/**
 * How a chaos run starts a member process on its host slot. Under `--split-brain majority` a
 * member given seeds waits to join rather than found a group of its own, so exactly one
 * process founds the cluster: the first member of the first start, with no seeds. Every
 * other start, and every restart after a fault, names every other host as a seed.
 *
 * A slot's state directory (`conclave member --state-dir`) is the same for each process the
 * slot runs, as a server's disk outlives its process. A shifted clock is libfaketime's
 * (LD_PRELOAD): only the wall clock moves, the monotonic clock stays true, as after a
 * wrong NTP step or a restored VM snapshot.
 */
import type { SpawnOptions } from '../testing/member-process.js'

export interface MemberStart {
  /** The host slot, which is also the index of the host's address in `addresses`. */
  readonly index: number
  /** 0 for the slot's first process, then one more per restart. */
  readonly generation: number
  /** Every host's member address `ip:port`, by slot. */
  readonly addresses: readonly string[]
  readonly splitBrain: 'allow' | 'majority'
  /** This process founds the cluster: no seeds. */
  readonly founder: boolean
  readonly keyFile?: string
  /** The slot's durable state directory. */
  readonly stateDir?: string
  /** Wall-clock shift of this process in ms (negative: set back); needs `faketimeLib`. */
  readonly clockOffsetMs?: number
  readonly faketimeLib?: string
  /** The command prefix that runs it on its host (NetnsLab.execPrefix). */
  readonly prefix: readonly string[]
}

/** The label of a slot's process in names, logs and fault details: m2, then m2.1, m2.2, … */
export function processLabel (index: number, generation: number): string {
  return `m${index}${generation > 0 ? `.${generation}` : ''}`
}

export function memberSpawnOptions (s: MemberStart): SpawnOptions {
  const offset = s.clockOffsetMs ?? 0
  if (offset !== 0 && s.faketimeLib === undefined) throw new RangeError('a shifted clock needs faketimeLib')
  return {
    cluster: 'chaos',
    name: processLabel(s.index, s.generation),
    listen: s.addresses[s.index] as string,
    seeds: s.founder ? [] : s.addresses.filter((_, i) => i !== s.index),
    extraArgs: [
      '--split-brain', s.splitBrain,
      ...(s.keyFile !== undefined ? ['--key-file', s.keyFile] : []),
      ...(s.stateDir !== undefined ? ['--state-dir', s.stateDir] : [])
    ],
    ...(offset !== 0 ? { env: faketimeEnv(offset, s.faketimeLib as string) } : {}),
    prefix: s.prefix
  }
}

/** The environment that shifts a process's wall clock by `offsetMs` (whole seconds) and leaves its monotonic clock alone. */
export function faketimeEnv (offsetMs: number, lib: string): Record<string, string> {
  const seconds = Math.round(offsetMs / 1000)
  return { LD_PRELOAD: lib, FAKETIME: `${seconds >= 0 ? '+' : ''}${seconds}`, FAKETIME_DONT_FAKE_MONOTONIC: '1' }
}
