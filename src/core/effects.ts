/**
 * What the membership core asks its shell to do (etcd-raft's Ready): the core returns these from
 * every input, in order, and never performs them itself. The shell (runtime/driver.ts) carries
 * them out in that order.
 */
import type { View } from './view.js'
import type { Basis } from './quorum.js'
import type { ProtocolMessage } from './messages.js'

export type MemberStatus = 'idle' | 'joining' | 'member' | 'leaving' | 'left'

export type Effect =
  /**
   * `probe`: a discovery greeting to a member removed earlier, which may be across a
   * partition: if it needs a new connection, the dial gives up soon (its SYN is lost while the
   * partition lasts) so that the next greeting, half a second later, dials afresh, and a healed
   * link is found within about that, not after TCP's backed-off SYN retries.
   */
  | { readonly type: 'send', readonly to: string, readonly msg: ProtocolMessage, readonly addrs: readonly string[], readonly onlyIfConnected: boolean, readonly probe?: true }
  | { readonly type: 'dial', readonly peer: string, readonly addrs: readonly string[] }
  | { readonly type: 'install', readonly view: View, readonly previous: View | undefined }
  | { readonly type: 'excluded', readonly by: string, readonly previous: View | undefined }
  | { readonly type: 'suspect', readonly peer: string, readonly reason: 'silence' | 'disconnect' }
  | { readonly type: 'refuted', readonly peer: string }
  | { readonly type: 'dead', readonly peer: string }
  /**
   * Close the connection to `peer`, a member removed without leaving (judged dead). A connection across a partition
   * survives it, with its queued frames stuck behind TCP's backed-off retransmissions for
   * seconds after the heal; a fresh connection (the discovery greeting dials one) gets
   * through at once.
   */
  | { readonly type: 'hangup', readonly peer: string }
  | { readonly type: 'left' }
  | { readonly type: 'drop', readonly reason: string }
  /**
   * The view is at this coordinator's `maxMembers` (`limit`): `refused` (a joiner, or the
   * coordinator of a group asking to merge in) was not admitted. `members`: the view's size.
   * At most once a second; each refusal is also counted as a `member-limit` drop.
   */
  | { readonly type: 'limit', readonly limit: number, readonly members: number, readonly refused: string }
  /**
   * This member found no group to join and its founding rule does not let it found one now
   * (`MembershipConfig.founding`): it keeps looking. `joiners`: members in contact that know of no
   * group either. Emitted when either changes.
   */
  | { readonly type: 'waiting', readonly reason: WaitingReason, readonly joiners: number, readonly expect: number | undefined }
  /**
   * Store this durably before carrying out the effects after it (only with `durable`): no
   * epoch this member uses or promises exceeds `maxEpoch`, and `basis` is what it knows a
   * majority must be counted against. Always the first effect of its batch.
   */
  | { readonly type: 'persist', readonly maxEpoch: number, readonly basis: Basis }

/**
 * Why a member with no view does not found a group (the `waiting` event): `may-not-found`, it has
 * seeds under `majority` or a quorum; `expecting`, fewer than `bootstrap.expect` founders are in
 * contact; `incompatible`, a seed of this cluster speaks another wire version (docs/design.md,
 * "Versions").
 */
export type WaitingReason = 'may-not-found' | 'expecting' | 'incompatible'
