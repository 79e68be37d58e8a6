/**
 * Epochs from the network: how far they may go, so that no remote input can use them up.
 * Epochs only grow, and every proposal goes above the highest seen; one unchecked claim near
 * 2^53 would leave no epoch to propose (and past 2^53, `epoch + 1` no longer changes the number).
 */
import type { ProtocolMessage } from './messages.js'

/**
 * How far above our own reference a peer may name an epoch, in every state: the reference is
 * our installed epoch, or our epoch floor (the wall clock) when that is higher, as it is for a
 * member that has installed nothing yet. Two groups that merge are never 2^31 views apart, and a
 * group's epochs start at its founder's wall clock, so a joiner refuses a real group only if that
 * founder's clock ran more than 2^31 ms (24 days) ahead of its own.
 */
export const EPOCH_WINDOW = 2 ** 31

/**
 * No epoch above this is accepted or proposed, whatever the window says: far below 2^53, where
 * integer arithmetic ends, yet centuries of views above today's wall clock in milliseconds.
 * A member that keeps pushing the window up view after view (only a member can) stops here.
 */
export const MAX_EPOCH = 2 ** 50

/**
 * How far above the highest epoch seen a `persist` reserves: new epochs up to the reservation
 * need no write, so a member writes once per this many views, not at every one.
 */
export const EPOCH_RESERVATION = 1024

/** The highest epoch accepted from the network, for a member at `installed` with floor `floor`. */
export function epochLimit (installed: number, floor: number): number {
  return Math.min(MAX_EPOCH, Math.max(installed, floor) + EPOCH_WINDOW)
}

/**
 * `msg` if its epochs lie within `limit`; with a `maxEpoch` claim beyond it, a copy that claims
 * `fallback` instead (`ignored`: its sender may still join); undefined when anything else is
 * beyond it (the message is refused).
 */
export function withinEpochLimit (msg: ProtocolMessage, limit: number, fallback: number): { msg: ProtocolMessage, ignored: boolean } | undefined {
  if ('epoch' in msg && msg.epoch > limit) return undefined
  if ('view' in msg && msg.view !== undefined && msg.view.epoch > limit) return undefined
  if ('maxEpoch' in msg && msg.maxEpoch > limit) return { msg: { ...msg, maxEpoch: fallback }, ignored: true }
  return { msg, ignored: false }
}
