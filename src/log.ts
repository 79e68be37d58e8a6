/**
 * Logging through `debug`, the convention libp2p itself uses: nothing is printed unless the
 * DEBUG environment variable names a component, e.g. `DEBUG=conclave:*` or
 * `DEBUG=conclave:membership,conclave:failure-detector`. The library never writes to the console
 * otherwise. Never log a cluster key (it prints as its fingerprint anyway) or message payloads.
 */
import createDebug from 'debug'

export const log = {
  /** Views installed, joins, leaves, merges, exclusions. */
  membership: createDebug('conclave:membership'),
  /** Suspicions, refutations, members judged dead, split-brain detections. */
  failureDetector: createDebug('conclave:failure-detector'),
  /** Dial failures, rejected seeds, dropped input (by reason). */
  transport: createDebug('conclave:transport'),
  /** Mastership changes, routes starting and stopping, scheduler ticks. */
  policies: createDebug('conclave:policies')
}

type Logger = ReturnType<typeof createDebug>

/** Which component logs each member event (the `message` event is the application's, not logged). */
const COMPONENT: Record<string, Logger | undefined> = {
  view: log.membership,
  merge: log.membership,
  excluded: log.membership,
  stopped: log.membership,
  suspect: log.failureDetector,
  refuted: log.failureDetector,
  'split-brain': log.failureDetector,
  'connection-limit': log.membership,
  'seed-rejected': log.transport,
  dropped: log.transport,
  mastership: log.policies,
  coordinator: log.policies
}

const names = (members: unknown): string =>
  Array.isArray(members) ? members.map(m => (m as { name?: string }).name ?? '?').join(', ') : ''

/** Logs a member event (member.ts calls this for every event it emits). */
export function logEvent (name: string, id: string, event: unknown): void {
  const logger = COMPONENT[name]
  if (logger === undefined || !logger.enabled) return
  const e = (event ?? {}) as Record<string, any>
  const who = id === '' ? '' : `${id.slice(-6)} `
  switch (name) {
    case 'view': logger('%sview %d [%s] quorum %s', who, e.view?.id?.epoch, names(e.view?.members), e.quorum); break
    case 'merge': logger('%smerge into view %d: back %s', who, e.view?.id?.epoch, names(e.rejoined)); break
    case 'excluded': logger('%sexcluded by %s; rejoining', who, e.by); break
    case 'suspect': logger('%ssuspect %s (%s)', who, e.id, e.reason); break
    case 'refuted': logger('%s%s is alive', who, e.id); break
    case 'split-brain': logger('%ssplit brain: %s says master (rank %d, epoch %d, foreign %s)', who, e.master, e.rank, e.epoch, e.foreign); break
    case 'connection-limit': logger('%sconnection limit %d reached: view of %d, not admitting %s', who, e.limit, e.members, e.refused ?? '(admitted above it)'); break
    case 'seed-rejected': logger('%sseed %s is in cluster %s (wire %d)', who, e.address, e.cluster, e.wireVersion); break
    case 'dropped': logger('%sdropped input: %s from %s', who, e.reason, e.from ?? '?'); break
    case 'mastership': logger('%s%s master(%d) rank %s epoch %d: %s', who, e.isMaster === true ? 'now' : 'no longer', e.masters, e.rank, e.epoch, e.reason); break
    case 'coordinator': logger('%s%s coordinator, epoch %d', who, e.isCoordinator === true ? 'now' : 'no longer', e.epoch); break
    default: logger('%s%s', who, name)
  }
}
