/**
 * Failure-detection and agreement timings, and the pure timeout math derived from them.
 *
 * Detection of a hang (SIGSTOP, cut link) takes at most
 *   suspectAfterMs + verifyTimeoutMs (+ timer slack)             (silence, then an unanswered probe)
 * after the last message heard; heartbeats arrive every heartbeatIntervalMs, so the hang itself
 * is detected suspectAfterMs − heartbeatIntervalMs to suspectAfterMs + verifyTimeoutMs after it began.
 * Detection of a crash is the connection close plus a refused re-dial (tens of ms on loopback).
 *
 * The coordinator's lease (self-demotion, see docs/design.md) must end before any other member
 * can exclude it. A peer excludes the coordinator no earlier than
 *   lastHeard + suspectAfterMs + verifyTimeoutMs,
 * and the lease is based on the *send* time of the coordinator's newest heartbeat that the peer
 * echoed, which is never later than lastHeard. So leaseMs < suspectAfterMs + verifyTimeoutMs is
 * safe, with the difference as the margin for clock-rate differences and a paused process.
 */

export interface Timing {
  /**
   * The core's timers wake at their own deadlines (Membership.nextDeadline); this is the delay
   * before work that is due but waits on a condition is looked at again, and before the tick
   * that follows a late one (a pause). Also sets the lag threshold (lagThresholdMs). @default 25
   */
  readonly tickIntervalMs: number
  /**
   * Heartbeat period on each monitored pair: the older member sends one this often and the
   * younger answers at once, so the older member's lease is renewed every period and both hear
   * from each other every period. Halving it doubles the idle traffic. @default 200
   */
  readonly heartbeatIntervalMs: number
  /** Silence from a member before it is probed. @default 500 */
  readonly suspectAfterMs: number
  /** A probe unanswered this long makes the suspect dead. @default 250 */
  readonly verifyTimeoutMs: number
  /** A closed connection whose re-dial neither succeeds nor fails this long makes the member dead. @default 1000 */
  readonly redialTimeoutMs: number
  /** The coordinator's lease after the newest heartbeat every member echoed. @default 500 */
  readonly leaseMs: number
  /** A joiner that learned of no group this long after start forms its own. @default 1000 */
  readonly joinTimeoutMs: number
  /** Resend period for join, leave, proposals and merge requests. @default 200 */
  readonly retryIntervalMs: number
  /** How often a member greets members it removed (to merge after a partition heals). @default 500 */
  readonly discoveryIntervalMs: number
  /** How long removed members are remembered for re-discovery. @default 60000 */
  readonly rememberRemovedMs: number
}

export const DEFAULT_TIMING: Timing = Object.freeze({
  tickIntervalMs: 25,
  heartbeatIntervalMs: 200,
  suspectAfterMs: 500,
  verifyTimeoutMs: 250,
  redialTimeoutMs: 1000,
  leaseMs: 500,
  joinTimeoutMs: 1000,
  retryIntervalMs: 200,
  discoveryIntervalMs: 500,
  rememberRemovedMs: 60000
})

/** Worst-case time from a member's last message to its exclusion by silence. */
export function silenceDetectionMs (t: Timing): number {
  return t.suspectAfterMs + t.verifyTimeoutMs
}

/** The margin by which the lease ends before the earliest possible exclusion. */
export function leaseMarginMs (t: Timing): number {
  return t.suspectAfterMs + t.verifyTimeoutMs - t.leaseMs
}

/**
 * A timer that fires this much later than its deadline means this process was paused
 * or its event loop was blocked: its view of others' silence is stale (their messages may
 * be queued unread), so the detector passes judgement only on the next tick.
 */
export function lagThresholdMs (t: Timing): number {
  return Math.max(3 * t.tickIntervalMs, 100)
}
