/**
 * The faults `conclave chaos` injects, by name, and what a fault leaves on record for the
 * judge (chaos/analyze.ts). How each is made: chaos/inject.ts.
 */

export const FAULT_TYPES = [
  /** SIGKILL a member, then a fresh process in its place. */
  'kill',
  /** SIGSTOP a member, then SIGCONT. */
  'hang',
  /** A clean 2- or 3-way cut on the switch (transitive: each side reaches all of itself). */
  'partition',
  /** Two groups that cannot reach each other and one host that reaches both. */
  'bridge',
  /** Each host reaches only its two neighbours in a ring. */
  'ring',
  /** One host's packets reach nobody, or nobody's reach it. */
  'one-way',
  /** Random loss of a share of the packets to and from one or more hosts. */
  'loss',
  /** Every core saturated for a few seconds (stress-ng). */
  'cpu',
  /** A member killed and started again while its host is cut off from everyone. */
  'cut-off-start',
  /** A member killed and started again with its wall clock set back (libfaketime). */
  'clock-restart'
] as const

export type FaultType = typeof FAULT_TYPES[number]

/** Faults whose reachability is not transitive: the views they cause are counted. */
export const NON_TRANSITIVE: readonly FaultType[] = ['bridge', 'ring']

/** Faults that end with a fresh process in place of a killed one. */
export const RESTARTS: readonly FaultType[] = ['kill', 'cut-off-start', 'clock-restart']

export interface Fault {
  readonly type: FaultType
  /** When it began and when it was undone (restart, SIGCONT, heal, load gone), wall-clock ms. */
  readonly at: number
  readonly endAt: number
  readonly detail: string
  /** The label of the process the fault started (the restarts). */
  readonly process?: string
}

/** Reads `--faults`: a comma-separated list of fault types, or `all`. */
export function parseFaultTypes (text: string): FaultType[] {
  if (text.trim() === 'all') return [...FAULT_TYPES]
  const names = text.split(',').map(s => s.trim()).filter(s => s !== '')
  const known = new Set<string>(FAULT_TYPES)
  const bad = names.filter(n => !known.has(n))
  if (names.length === 0 || bad.length > 0) {
    throw new RangeError(`expected fault types from ${FAULT_TYPES.join(', ')} (comma-separated) or all, got "${text}"`)
  }
  return FAULT_TYPES.filter(t => names.includes(t))
}
