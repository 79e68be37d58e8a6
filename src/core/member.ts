/**
 * Member records and the age order that defines the coordinator.
 *
 * Identity is `id` (the libp2p peer id) plus `incarnation` (set at each start), as in
 * Akka's UniqueAddress. Age is `joinEpoch`: the epoch of the view that first admitted
 * this incarnation. Members admitted by the same view tie on age and are ordered by id.
 * A member excluded and admitted again gets a new, higher `joinEpoch`, so it rejoins as
 * the youngest and never displaces an older member (Akka's upNumber, JGroups' join order).
 */

export type MetadataValue = string | number | boolean
export type Metadata = Readonly<Record<string, MetadataValue>>

export interface MemberRecord {
  /** Member id: the libp2p peer id of the process. */
  readonly id: string
  /** Human-readable name; not unique, not used for ordering. */
  readonly name: string
  /** Distinguishes two runs of a process that reuse one id. Higher is newer. */
  readonly incarnation: number
  /** Epoch of the view that admitted this incarnation; 0 while not yet admitted. */
  readonly joinEpoch: number
  /** Multiaddrs other members dial. */
  readonly addrs: readonly string[]
  /** Application metadata carried with the record. */
  readonly meta: Metadata
}

/** Oldest first: lower joinEpoch, then lower id. */
export function compareAge (a: MemberRecord, b: MemberRecord): number {
  if (a.joinEpoch !== b.joinEpoch) return a.joinEpoch - b.joinEpoch
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

export function sortByAge (members: readonly MemberRecord[]): MemberRecord[] {
  return [...members].sort(compareAge)
}

export function withJoinEpoch (m: MemberRecord, joinEpoch: number): MemberRecord {
  return { ...m, joinEpoch }
}
