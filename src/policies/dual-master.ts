/**
 * The dual-master detector. Masters announce their mastership (rank and epoch) on promotion to
 * every peer they are connected to, then once a second to connected peers outside their view
 * and every ten seconds to their view, and at once to a newly connected peer, which after a
 * partition heals is how the two sides first hear of each other. A member reports a master it
 * did not expect:
 *  - a master of another group (the announcer is not in our view) while our own view may have
 *    masters: two groups with masters at once, which `allow` permits during a partition and
 *    `majority` must never let happen;
 *  - a member of our own view claiming, at our epoch, a rank that our view gives someone else.
 * Announcements for another epoch of our own view are stale or early (a view change in flight)
 * and are ignored. An announcement can be old news (a TCP connection that survived a cut
 * delivers what was queued before it): before reporting, we ask the announcer whether it is
 * master now, and report only an answer that comes within CONFIRM_TIMEOUT_MS. Each announcer is
 * reported once per epoch.
 */
import type { View } from '../core/view.js'

export const MASTERSHIP_SERVICE = 'conclave.mastership'

/** Every this often a master announces itself to connected peers outside its view. */
export const ANNOUNCE_INTERVAL_MS = 1000
/** Every this many announcements it also tells its own view. */
export const ANNOUNCE_TO_VIEW_EVERY = 10
/** How long an answer to "are you master now?" may take to count. */
export const CONFIRM_TIMEOUT_MS = 500

export interface DualMasterDetected {
  /** The member that announced itself master. */
  readonly master: string
  /** Its epoch and rank, as it announced them. */
  readonly epoch: number
  readonly rank: number
  /** Whether it belongs to another group (not in our view). */
  readonly foreign: boolean
  /** The masters our own view has. */
  readonly expected: readonly string[]
}

export interface DetectorHost {
  /** Our installed view, or undefined while joining. */
  view: () => View | undefined
  /** Whether our view may have masters (split-brain policy and quorum). */
  viewHasMasters: () => boolean
  /** How many masters a view has. */
  readonly masters: number
  /** Our acting rank, or undefined. */
  rank: () => number | undefined
  send: (peer: string, data: unknown) => void
  report: (event: DualMasterDetected) => void
  /** Monotonic milliseconds. */
  clock: () => number
}

export class DualMasterDetector {
  private readonly reported = new Map<string, number>()
  /** Questions asked, by announcer: the nonce and when. */
  private readonly asked = new Map<string, { nonce: number, at: number }>()
  private nonce = 0
  private count = 0

  constructor (private readonly host: DetectorHost) {}

  /** How many unexpected masters were reported so far. */
  get detected (): number { return this.count }

  /** Announces our mastership to `peers`, if we are master. */
  announce (peers: Iterable<string>): void {
    const rank = this.host.rank()
    const view = this.host.view()
    if (rank === undefined || rank >= this.host.masters || view === undefined) return
    const data = { k: 'am', epoch: view.id.epoch, rank }
    for (const peer of peers) this.host.send(peer, data)
  }

  /** A message of the service from `from`; returns false when it is malformed (the caller counts it). */
  onMessage (from: string, data: unknown): boolean {
    if (typeof data !== 'object' || data === null) return false
    const d = data as Record<string, unknown>
    if (d.k === 'ask') {
      // "Are you master now?": answer only if so, echoing the nonce.
      if (!Number.isSafeInteger(d.nonce)) return false
      const rank = this.host.rank()
      const view = this.host.view()
      if (rank !== undefined && rank < this.host.masters && view !== undefined) this.host.send(from, { k: 'yes', nonce: d.nonce, epoch: view.id.epoch, rank })
      return true
    }
    const { epoch, rank } = d
    if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(rank) || (rank as number) < 0 || (epoch as number) < 0) return false
    if (d.k === 'am') return this.onAnnouncement(from, epoch as number, rank as number, undefined)
    if (d.k === 'yes' && Number.isSafeInteger(d.nonce)) return this.onAnnouncement(from, epoch as number, rank as number, d.nonce as number)
    return false
  }

  /** An announcement (`nonce` undefined) or a confirmation of one. */
  private onAnnouncement (from: string, epoch: number, rank: number, nonce: number | undefined): boolean {
    const view = this.host.view()
    if (view === undefined || !this.host.viewHasMasters()) return true
    const index = view.members.findIndex(m => m.id === from)
    const expected = view.members.slice(0, this.host.masters).map(m => m.id)
    const foreign = index < 0
    if (!foreign && (epoch !== view.id.epoch || index === rank)) return true
    if ((this.reported.get(from) ?? -1) >= epoch) return true
    const now = this.host.clock()
    const question = this.asked.get(from)
    if (nonce === undefined || question === undefined || question.nonce !== nonce || now - question.at > CONFIRM_TIMEOUT_MS) {
      // Not confirmed yet: ask (at most once per timeout per announcer).
      if (nonce === undefined && (question === undefined || now - question.at > CONFIRM_TIMEOUT_MS)) {
        const ask = { nonce: ++this.nonce, at: now }
        this.asked.set(from, ask)
        if (this.asked.size > 1024) this.asked.delete(this.asked.keys().next().value as string)
        this.host.send(from, { k: 'ask', nonce: ask.nonce })
      }
      return true
    }
    this.asked.delete(from)
    this.reported.set(from, epoch)
    // Bounded: announcers come and go over a long run.
    if (this.reported.size > 1024) this.reported.delete(this.reported.keys().next().value as string)
    this.count++
    this.host.report({ master: from, epoch, rank, foreign, expected })
    return true
  }
}
