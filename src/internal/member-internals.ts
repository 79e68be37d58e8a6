/**
 * What Conclave's own parts (registry, scheduler, routes, filters, metrics) need from a member
 * and users must not call: named service channels, drop counting, leave hooks, the stop signal.
 * Kept off the public class, in a table keyed by the member, so that the typed surface a user
 * sees is the documented API only. Not exported from the package.
 */
import type { SchedulerHost } from '../policies/scheduler.js'

export interface MemberInternals {
  /** A named channel on the direct stream: `handler` gets what `sendService(to, name, data)` sends. */
  registerService: (name: string, handler: (from: string, data: unknown) => void) => () => void
  sendService: (to: string, name: string, data: unknown, opts?: { onlyIfConnected?: boolean }) => void
  /** Counts dropped input (also on the policies' own channels) and emits `dropped`. */
  countDrop: (reason: string, from: string | undefined) => void
  /** Calls `hook` when this member suspects a peer (the `suspect` event, isolated from user listeners). */
  onSuspect: (hook: (id: string) => void) => () => void
  /** Runs `hook` at the start of `stop()`, before the group is told: policies stop their work here. */
  onBeforeLeave: (hook: () => Promise<void>) => () => void
  /** Aborted once the member has stopped (or failed to start): iterators and waits end on it. */
  readonly stopped: AbortSignal
  /** The member as the scheduler sees it (policies/scheduler.ts). */
  schedulerHost: SchedulerHost
}

const table = new WeakMap<object, MemberInternals>()

export function setInternals (member: object, internals: MemberInternals): void {
  table.set(member, internals)
}

/** The internals of `obj` if it is a member, else undefined. */
export function maybeInternalsOf (obj: object): MemberInternals | undefined {
  return table.get(obj)
}

export function internalsOf (member: object): MemberInternals {
  const internals = table.get(member)
  if (internals === undefined) throw new TypeError('not a Conclave member')
  return internals
}
