/**
 * What the parts of the membership core share: the member's own record and status, its
 * installed view, its connections and address book, and the effect queue of the input being
 * handled. The facade (membership.ts) owns this state and implements the interface; the parts
 * (failure detection, view agreement, joining, merging) read it and queue effects through it.
 */
import type { Effect, MemberStatus } from './effects.js'
import type { MemberRecord } from './member.js'
import type { View } from './view.js'
import type { ProtocolMessage, ViewSummary } from './messages.js'
import type { Timing } from './timing.js'

export interface CoreContext {
  readonly timing: Timing
  /** The largest view this member proposes (MembershipConfig.maxMembers). */
  readonly maxMembers: number
  /** This member's record as it is now (its joinEpoch is its age in the installed view). */
  readonly me: MemberRecord
  readonly status: MemberStatus
  /** The installed (settled) view, or undefined while joining. */
  readonly view: View | undefined
  /** Our index in the installed view (-1 when not in one). */
  readonly myRank: number
  /** Peers with an open connection. */
  readonly connected: ReadonlySet<string>
  /** Queues a message; `onlyIfConnected`: dropped rather than dialled for. */
  send: (to: string, msg: ProtocolMessage, onlyIfConnected: boolean) => void
  /** Queues an effect. */
  emit: (effect: Effect) => void
  /** Counts dropped input (an effect among the others of this input). */
  dropped: (reason: string) => void
  /** Remembers the newest record of a member (the address book). */
  learn: (m: MemberRecord) => void
  /** The newest record we know for `id` (the address book), if any. */
  recordOf: (id: string) => MemberRecord | undefined
  /** The addresses we know for `id`. */
  addrsOf: (id: string) => readonly string[]
  /** Whether a record is this very process: same id and same incarnation. */
  isMe: (m: MemberRecord) => boolean
  summary: (view: View) => ViewSummary
  /** The `hello` this member greets with now. */
  helloMessage: () => ProtocolMessage
  /** Counts and reports a joiner (or a merging group's coordinator) not admitted because the view is at `maxMembers`. */
  refuseAtLimit: (refused: string, members: number, now: number) => void
  /** True, and remembers `now`, when nothing was sent under `key` within the last `intervalMs`. */
  allow: (key: string, now: number, intervalMs: number) => boolean
}
