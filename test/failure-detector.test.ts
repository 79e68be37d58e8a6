/**
 * FailureDetector.deadlines offers, on a member that is not a monitor, only the monitors'
 * deadlines plus those of members being verified or without a connection (so an input costs
 * O(K), not O(N)). Property, through random connects, disconnects, silences, verdicts and
 * revivals: its earliest deadline is never later than a scan of the whole view finds among
 * the deadlines that do something (`strict`), and never earlier than the scan finds with the
 * members whose plan is stale counted too (`all`, what the detector offered before).
 */
import { describe, expect, it } from 'vitest'
import { FailureDetector, type Health } from '../src/core/failure-detector.js'
import type { CoreContext } from '../src/core/context.js'
import type { MemberRecord } from '../src/core/member.js'
import { makeView, type View } from '../src/core/view.js'
import { DEFAULT_TIMING } from '../src/core/timing.js'
import { seededRandom } from '../src/testing/random.js'

const N = 24
const K = 3

function record (i: number): MemberRecord {
  return { id: `m${String(i).padStart(2, '0')}`, name: `m${i}`, incarnation: 1, joinEpoch: i + 1, addrs: [], meta: {} }
}

/** A scan of the whole view over the same health state; `strict` leaves out stale plans. */
function fullScan (d: FailureDetector, core: CoreContext, view: View, health: ReadonlyMap<string, Health>, strict: boolean): number {
  const t = core.timing
  let min = Number.POSITIVE_INFINITY
  const at = (w: number): void => { min = Math.min(min, w) }
  const cutoff = (d as unknown as { monitorCutoff: (v: View) => number }).monitorCutoff(view)
  view.members.forEach((m, i) => {
    if (m.id === core.me.id) return
    const h = health.get(m.id)
    if (h === undefined || h.dead) return
    if (!core.connected.has(m.id) && h.verify === undefined && i < core.myRank) at(h.lastDial + t.retryIntervalMs)
    if (h.verify !== undefined) at(h.verify.since + (h.verify.kind === 'probe' ? t.verifyTimeoutMs : t.redialTimeoutMs))
    // A member planned before the cutoff moved is re-planned at the next tick: its deadline
    // then does nothing, so only what `plan` would decide now counts.
    if (!h.planned || (strict && !(core.myRank <= cutoff || i <= cutoff))) return
    const period = t.heartbeatIntervalMs
    at(i > core.myRank ? h.lastSent + (h.echo >= h.lastSent ? period : period / 2) : Math.max(h.lastSent + period, h.lastHeard + 1.5 * period))
    if (h.verify === undefined) at(h.lastHeard + t.suspectAfterMs)
  })
  return min
}

describe('failure detector deadlines', () => {
  for (const rank of [1, 5, 17, N - 1]) {
    it(`rank ${rank} of ${N} (K ${K}): the earliest deadline is the whole view's, through 3000 random inputs`, () => {
      const random = seededRandom(100 + rank)
      const members = Array.from({ length: N }, (_, i) => record(i))
      const view = makeView(1, members)
      const me = members[rank] as MemberRecord
      const connected = new Set<string>()
      const core: CoreContext = {
        timing: DEFAULT_TIMING,
        me,
        status: 'member',
        view,
        myRank: rank,
        connected,
        send: () => {},
        emit: () => {},
        dropped: () => {},
        learn: () => {},
        recordOf: () => undefined,
        addrsOf: () => [],
        isMe: m => m.id === me.id,
        summary: () => { throw new Error('unused') },
        helloMessage: () => { throw new Error('unused') },
        allow: () => true
      }
      const d = new FailureDetector(core, K, { dead: () => {}, revived: () => {} })
      const health = (d as unknown as { health: Map<string, Health> }).health
      let now = 1000
      d.trackView(view, now)
      d.heartbeatPlanned(now)
      const others = members.filter(m => m.id !== me.id).map(m => m.id)
      const pick = (): string => others[Math.floor(random() * others.length)] as string
      let compared = 0
      for (let step = 0; step < 3000; step++) {
        now += random() * 60
        const r = random()
        const peer = pick()
        if (r < 0.3) { connected.add(peer); d.connectedTo(peer, now) }
        else if (r < 0.4) { connected.delete(peer); d.disconnectedFrom(peer, now, true) }
        else if (r < 0.55) d.heard(peer, now)
        else if (r < 0.6) d.dialFailed(peer, now)
        else d.tick(now, false)
        let min = Number.POSITIVE_INFINITY
        d.deadlines(view, w => { min = Math.min(min, w) })
        const strict = fullScan(d, core, view, health, true)
        const all = fullScan(d, core, view, health, false)
        expect(min, `step ${step}: not later than what matters`).toBeLessThanOrEqual(strict)
        expect(min, `step ${step}: not earlier than the whole scan`).toBeGreaterThanOrEqual(all)
        if (strict === all) expect(min, `step ${step}`).toBe(strict)
        if (Number.isFinite(min)) compared++
      }
      // The walk went through verdicts and revivals, not only quiet states.
      expect(compared).toBeGreaterThan(1000)
      expect([...health.values()].some(h => h.dead)).toBe(true)
    })
  }
})
