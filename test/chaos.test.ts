/**
 * The chaos run's judge (chaos/analyze.ts) on made-up logs, and a short real run of
 * `conclave chaos` between network namespaces (skipped, with the reason, where they cannot be
 * made): it exits 0 and writes the figures and every event.
 */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { agreementAfter, analyze, masterIntervals, overlaps, uncovered, RESUME_GRACE_MS, type ProcessLog } from '../src/chaos/analyze.js'
import { conclaveBin, type MemberEvent } from '../src/testing/member-process.js'
import { netnsUnavailable } from '../src/testing/netns.js'
import { MEMBER_NODE_FLAGS } from '../src/member-flags.js'

const unavailable = await netnsUnavailable()
if (unavailable !== undefined) console.warn(`chaos run skipped: ${unavailable}`)

const ev = (ts: number, type: string, extra: Record<string, unknown> = {}): MemberEvent => ({ ts, type, ...extra })
const view = (ts: number, epoch: number, ids: string[]): MemberEvent => ev(ts, 'view', { epoch, members: ids.map(id => ({ id, name: id })) })
const log = (label: string, events: MemberEvent[], more: Partial<ProcessLog> = {}): ProcessLog =>
  ({ label, events: [ev(0, 'ready', { id: label }), ...events], startedAt: 0, endedAt: undefined, frozen: [], crashed: false, ...more })

describe('chaos analysis', () => {
  it('mastership intervals end at a kill and skip frozen time', () => {
    const a = log('a', [ev(10, 'master', { isMaster: true })], { endedAt: 100 })
    const b = log('b', [ev(20, 'master', { isMaster: true }), ev(300, 'master', { isMaster: false })], { frozen: [[50, 80]] })
    expect(masterIntervals([a, b], 1000)).toEqual([
      { label: 'a', from: 10, to: 100 },
      { label: 'b', from: 20, to: 50 },
      { label: 'b', from: 80 + RESUME_GRACE_MS, to: 300 }
    ])
  })

  it('finds overlaps of masters and time without one', () => {
    const intervals = [{ label: 'a', from: 0, to: 100 }, { label: 'b', from: 90, to: 200 }, { label: 'c', from: 300, to: 400 }]
    expect(overlaps(intervals)).toEqual([{ label: 'overlap', from: 90, to: 100 }])
    expect(overlaps([{ label: 'a', from: 0, to: 100 }, { label: 'b', from: 100, to: 200 }])).toEqual([])
    expect(uncovered(intervals, 0, 500)).toBe(200)
    expect(uncovered(intervals, 150, 350)).toBe(100)
  })

  it('agreement: every live process on one view that holds exactly them', () => {
    const a = log('a', [view(10, 1, ['a', 'b']), view(500, 2, ['a'])])
    const b = log('b', [view(12, 1, ['a', 'b']), view(600, 3, ['b'])])
    expect(agreementAfter([a, b], 0, 1000)).toBe(12)
    expect(agreementAfter([a, b], 400, 1000)).toBeUndefined()
    const a2 = log('a', [...a.events.slice(1), view(800, 4, ['a', 'b'])])
    const b2 = log('b', [...b.events.slice(1), view(810, 4, ['a', 'b'])])
    expect(agreementAfter([a2, b2], 400, 1000)).toBe(810)
  })

  it('sums up faults, dual masters, gaps, re-convergence and crashes', () => {
    const a = log('a', [view(5, 1, ['a', 'b']), ev(6, 'master', { isMaster: true }), ev(1000, 'master', { isMaster: false }), view(1300, 3, ['a', 'b'])])
    const b = log('b', [view(6, 1, ['a', 'b']), view(900, 2, ['b']), ev(950, 'master', { isMaster: true }), view(1310, 3, ['a', 'b'])], { crashed: true })
    const f = analyze([a, b], [{ type: 'partition', at: 500, endAt: 1200, detail: 'cut' }], 0, 2000)
    expect(f.faults).toEqual({ kill: 0, hang: 0, partition: 1 })
    expect(f.dualMasters).toEqual([{ label: 'overlap', from: 950, to: 1000 }])
    expect(f.leaderlessMs.partition.median).toBe(0)
    expect(f.reconvergeMs.partition.median).toBe(110)
    expect(f.crashes).toBe(1)
    expect(f.notReconverged).toBe(0)
  })
})

describe('conclave chaos: bad flags', () => {
  it('refuses bad flags with a one-line reason', () => {
    for (const args of [['--duration', 'soon'], ['--members', '2'], ['--split-brain', 'maybe'], ['--seed', '-1']]) {
      const r = spawnSync(process.execPath, [conclaveBin(), 'chaos', ...args], { encoding: 'utf8', timeout: 20_000 })
      expect(r.status).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})

describe.skipIf(unavailable !== undefined)('conclave chaos', () => {
  it('a 15 s run of 5 members under majority: PASS, with the figures and events in the JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-chaos-'))
    try {
      const out = join(dir, 'chaos.json')
      const r = spawnSync(process.execPath, [...MEMBER_NODE_FLAGS, conclaveBin(), 'chaos', '--duration', '15s', '--seed', '7', '--out', out], { encoding: 'utf8', timeout: 120_000 })
      expect(r.stdout).toContain('verdict: PASS')
      expect(r.status).toBe(0)
      const result = JSON.parse(readFileSync(out, 'utf8'))
      expect(result.settings).toMatchObject({ members: 5, splitBrain: 'majority', seed: 7 })
      const faults = result.figures.faults.kill + result.figures.faults.hang + result.figures.faults.partition
      expect(faults).toBeGreaterThan(0)
      expect(result.faults).toHaveLength(faults)
      expect(result.figures.dualMasters).toEqual([])
      expect(result.figures.crashes).toBe(0)
      expect(result.logs.length).toBeGreaterThanOrEqual(5)
      expect(result.logs.every((l: ProcessLog) => l.events.some(e => e.type === 'view'))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 150_000)
})
