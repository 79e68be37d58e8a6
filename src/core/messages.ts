/**
 * Protocol messages between members, as the core sees them after decoding and
 * validation (see transport/codec.ts for the wire form). The view protocol is a
 * coordinator-driven two-phase install, after JGroups GMS with Paxos-style promises:
 *
 *   joiner ──join──▶ coordinator ──propose(E)──▶ every member of the next view
 *   members ──ack(E)──▶ coordinator  (a member acks only epochs above all it promised)
 *   coordinator ──commit(E)──▶ members + removed members   (install = settled)
 */
import type { MemberRecord } from './member.js'
import type { Basis } from './quorum.js'

/** A view as carried on the wire: epoch and full member records. */
export interface ViewSummary {
  readonly epoch: number
  readonly members: readonly MemberRecord[]
  /** The view's basis (core/quorum.ts); absent: none. */
  readonly basis?: Basis
}

export type ProtocolMessage =
  /** First frame on every new connection: who I am, and the view I am in (or, while joining, the one I am joining). */
  | { readonly t: 'hello', readonly from: MemberRecord, readonly view?: ViewSummary, readonly maxEpoch: number }
  /** Ask the coordinator to be admitted. `maxEpoch` lifts the next epoch above any the joiner saw. */
  | { readonly t: 'join', readonly from: MemberRecord, readonly maxEpoch: number }
  /** A coordinator that lost the merge asks the winner to admit its whole view. */
  | { readonly t: 'merge', readonly view: ViewSummary }
  /** Phase 1: the next view. `ts` is the proposer's clock, echoed by acks (lease base). */
  | { readonly t: 'propose', readonly epoch: number, readonly members: readonly MemberRecord[], readonly ts: number }
  /** `known`: the memberships the acker knows a majority must be counted against (core/quorum.ts). */
  | { readonly t: 'ack', readonly epoch: number, readonly echo: number, readonly known?: Basis }
  /** Refusal: the receiver promised or installed `epoch` already; `view` is its installed view. */
  | { readonly t: 'nack', readonly epoch: number, readonly view?: ViewSummary }
  /** Phase 2: every member of the view acked; install it. Also sent to removed members. */
  | { readonly t: 'commit', readonly epoch: number, readonly members: readonly MemberRecord[], readonly basis?: Basis }
  /** Graceful leave, sent to the coordinator. */
  | { readonly t: 'leave', readonly epoch: number }
  /**
   * Point-to-point liveness. `echo` is the newest `ts` received from the recipient (lease). A
   * heartbeat without `reply` is answered at once by one with `reply: true`; a reply is never
   * answered (see docs/design.md, "Failure detection").
   */
  | { readonly t: 'hb', readonly epoch: number, readonly ts: number, readonly echo: number, readonly reply?: true }
  /** Verification of a suspected member; any answer proves it alive. */
  | { readonly t: 'probe', readonly nonce: number }
  | { readonly t: 'probe-ack', readonly nonce: number, readonly epoch: number }
  /** Reply to a heartbeat from someone outside my view: here is the view that excludes you. */
  | { readonly t: 'not-member', readonly view: ViewSummary }
  /** A report (never a fact) that `id` seems dead; the coordinator verifies it itself. */
  | { readonly t: 'suspect', readonly id: string }
  /** A non-coordinator met a member of another view; the coordinator decides on a merge. */
  | { readonly t: 'foreign', readonly view: ViewSummary }

export type MessageType = ProtocolMessage['t']

export const MESSAGE_TYPES: readonly MessageType[] = [
  'hello', 'join', 'merge', 'propose', 'ack', 'nack', 'commit', 'leave',
  'hb', 'probe', 'probe-ack', 'not-member', 'suspect', 'foreign'
]
