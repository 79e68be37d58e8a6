/**
 * What a member tells its application about its view and its mastership: the values of the
 * `view`, `coordinator` and `mastership` events, computed by the driver (driver.ts) as diffs of
 * the core's state, so that the real member and the simulation report the same changes.
 */
import type { View } from '../core/view.js'
import type { MemberRecord } from '../core/member.js'
import type { NoQuorumReason } from '../core/quorum.js'

export interface ViewChange {
  readonly view: View
  readonly previous: View | undefined
  readonly joined: readonly MemberRecord[]
  readonly left: readonly MemberRecord[]
  /** Whether this member coordinates this view. */
  readonly isCoordinator: boolean
  /**
   * Whether this view may have masters under the split-brain policy: `'ok'`, or why not
   * (`'no-majority'`: a minority of the last majority membership; `'below-quorum'`: fewer
   * members than `quorum`). A view without quorum has no coordinator and no masters.
   */
  readonly quorum: 'ok' | NoQuorumReason
}

export interface CoordinatorChange {
  readonly isCoordinator: boolean
  /** The view's epoch at the change: a fencing token while coordinating. */
  readonly epoch: number
  readonly view: View | undefined
}

export type MastershipReason =
  /** the first view this member installed ranks it a master (it founded the group or joined a small one) */
  | 'elected'
  /** an older member failed (crash, hang, cut off) and was excluded */
  | 'failover'
  /** an older member left gracefully */
  | 'handover'
  /** the view lost quorum (a minority side of a partition under `majority`, or below `quorum`) */
  | 'no-quorum'
  /** a view change for another reason (a merge, members joining) */
  | 'view'
  /** the lease lapsed: some member has not echoed a heartbeat within leaseMs (self-demotion) */
  | 'lease-expired'
  /** the lease holds again in the same view */
  | 'lease-renewed'
  /** the group removed this member (it was paused or cut off); it rejoins as the youngest */
  | 'excluded'
  /** stop() was called */
  | 'leaving'

export interface MastershipChange {
  readonly isMaster: boolean
  /** The epoch of the view at the change. */
  readonly epoch: number
  /** On a promotion, the grant's fencing token (core/fencing.ts: epoch and this member's id). */
  readonly token: string | undefined
  /** This member's acting rank after the change (undefined when it may not act at all). */
  readonly rank: number | undefined
  /** The N of masters(N) this change is about. */
  readonly masters: number
  readonly reason: MastershipReason
  readonly view: View | undefined
}
