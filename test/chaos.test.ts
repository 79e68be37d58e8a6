/**
 * The chaos run's judge (chaos/analyze.ts) on made-up logs, and two short real runs of
 * `conclave chaos` between network namespaces (see netns-gate.ts): the first faults (kill,
 * hang, partition) pass; a run of the nftables faults writes their figures, with no two
 * masters and no crash.
 */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { agreementAfter, analyze, fencingViolations, grants, masterIntervals, onRunClock, overlaps, timeline, uncovered, viewsBetween, RESUME_GRACE_MS, type ProcessLog } from '../src/chaos/analyze.js'
import type { Fault } from '../src/chaos/faults.js'
import { conclaveBin, type MemberEvent } from '../src/testing/member-process.js'
import { MEMBER_NODE_FLAGS } from '../src/member-flags.js'
import { netnsGate } from './netns-gate.js'

const unavailable = await netnsGate('chaos runs', { nftables: true })

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
    expect(overlaps(intervals)).toEqual([{ label: 'overlap', from: 90, to: 100, who: ['a', 'b'] }])
    expect(overlaps([{ label: 'a', from: 0, to: 100 }, { label: 'b', from: 100, to: 200 }])).toEqual([])
    const three = [{ label: 'a', from: 0, to: 100 }, { label: 'b', from: 50, to: 70 }, { label: 'c', from: 60, to: 200 }]
    expect(overlaps(three)).toEqual([{ label: 'overlap', from: 50, to: 100, who: ['a', 'b', 'c'] }])
    expect(uncovered(intervals, 0, 500)).toBe(200)
    expect(uncovered(intervals, 150, 350)).toBe(100)
  })

  it('a timeline of the master and view events of the named processes, with freezes and ends', () => {
    const a = log('a', [view(1000, 1, ['a', 'b']), ev(1010, 'master', { isMaster: true, epoch: 1 })], { endedAt: 3000, frozen: [[1500, 2000]] })
    const b = log('b', [view(1005, 1, ['a', 'b']), ev(2500, 'master', { isMaster: true, epoch: 2 })])
    expect(timeline([a, b], ['a', 'b'], 1001, 3000, 1000)).toEqual([
      '    0.005 s  b view 1 [a,b]',
      '    0.010 s  a master true epoch 1',
      '    0.500 s  a frozen',
      '    1.000 s  a resumed',
      '    1.500 s  b master true epoch 2',
      '    2.000 s  a ended'
    ])
    expect(timeline([a, b], ['b'], 0, 10_000, 0)).toHaveLength(2)
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
    expect(f.faults).toMatchObject({ kill: 0, hang: 0, partition: 1, bridge: 0, 'clock-restart': 0 })
    expect(f.dualMasters).toEqual([{ label: 'overlap', from: 950, to: 1000, who: ['a', 'b'] }])
    expect(f.leaderlessMs.partition.median).toBe(0)
    expect(f.reconvergeMs.partition.median).toBe(110)
    expect(f.crashes).toBe(1)
    expect(f.notReconverged).toBe(0)
    expect(f.perFault).toEqual([{ type: 'partition', detail: 'cut', at: 500, endAt: 1200, leaderlessMs: 0, reconvergeMs: 110, views: 1, viewsUntilAgreed: 2 }])
  })

  it('a process with a shifted clock is read on the run\'s clock', () => {
    const late = log('b', [view(1000 - 3_600_000, 2, ['a', 'b'])], { clockOffsetMs: -3_600_000 })
    expect(onRunClock([late])[0]?.events.map(e => e.ts)).toEqual([3_600_000, 1000])
    const a = log('a', [view(990, 2, ['a', 'b'])])
    expect(analyze([a, late], [{ type: 'clock-restart', at: 500, endAt: 900, detail: 'b restarted', process: 'b' }], 0, 2000).reconvergeMs['clock-restart'].median).toBe(100)
  })

  it('counts the distinct views installed across members during a fault', () => {
    const a = log('a', [view(10, 1, ['a', 'b', 'c']), view(120, 2, ['a', 'c']), view(300, 4, ['a', 'b', 'c'])])
    const b = log('b', [view(11, 1, ['a', 'b', 'c']), view(150, 3, ['b']), view(301, 4, ['a', 'b', 'c'])])
    const c = log('c', [view(12, 1, ['a', 'b', 'c']), view(121, 2, ['a', 'c']), view(302, 4, ['a', 'b', 'c'])])
    expect(viewsBetween([a, b, c], 100, 250)).toBe(2)
    const f = analyze([a, b, c], [{ type: 'bridge', at: 100, endAt: 290, detail: 'bridge' }], 0, 1000)
    expect(f.viewsDuringFault.bridge).toMatchObject({ n: 1, median: 2 })
    expect(f.viewsUntilAgreed.bridge).toMatchObject({ n: 1, median: 3 })
    expect(f.reconvergeMs.bridge.median).toBe(12)
  })

  it('fencing: a grant must carry an epoch above every earlier grant, and the restart behind a violation is named', () => {
    const restart: Fault = { type: 'clock-restart', at: 400, endAt: 450, detail: 'clock-restart a → a.1', process: 'a.1' }
    const a = log('a', [ev(10, 'master', { isMaster: true, epoch: 100 }), ev(200, 'master', { isMaster: false, epoch: 100 }),
      ev(250, 'master', { isMaster: true, epoch: 100 })], { endedAt: 400 })
    const b = log('b', [ev(300, 'master', { isMaster: true, epoch: 105 })], { endedAt: 450 })
    // set back 3 h: its grant at run time 600 carries an epoch from its clock
    const a1 = log('a.1', [ev(600 - 10_800_000, 'master', { isMaster: true, epoch: 90 })], { startedAt: 450, clockOffsetMs: -10_800_000 })
    const ordered = grants(onRunClock([a, b, a1]))
    expect(ordered.map(g => `${g.label}@${g.epoch}`)).toEqual(['a@100', 'a@100', 'b@105', 'a.1@90'])
    // a's lease renewed in the same view keeps its token: not a violation
    const violations = fencingViolations(ordered, [restart])
    expect(violations).toEqual([{ grant: { label: 'a.1', at: 600, epoch: 90 }, highest: { label: 'b', at: 300, epoch: 105 }, cause: 'clock-restart a → a.1' }])
    // the same epoch granted to another process is one
    expect(fencingViolations([{ label: 'x', at: 1, epoch: 7 }, { label: 'y', at: 2, epoch: 7 }], [])).toHaveLength(1)
    const f = analyze([a, b, a1], [restart], 0, 1000)
    expect(f.fencing).toEqual({ grants: 4, violations })
  })

  it('cut-off start: how long the member started cut off acted as master while cut off', () => {
    const main = log('a', [ev(5, 'master', { isMaster: true, epoch: 3 })])
    const cutOff = log('b.1', [ev(300, 'master', { isMaster: true, epoch: 9 }), ev(900, 'master', { isMaster: false, epoch: 9 })], { startedAt: 200 })
    const fault: Fault = { type: 'cut-off-start', at: 100, endAt: 700, detail: 'cut-off-start b → b.1', process: 'b.1' }
    const f = analyze([main, cutOff], [fault], 0, 1000)
    expect(f.cutOffStarts).toEqual([{ detail: fault.detail, label: 'b.1', masterMs: 400 }])
    expect(f.dualMasters).toEqual([{ label: 'overlap', from: 300, to: 900, who: ['a', 'b.1'] }])
  })
})

describe('conclave chaos: bad flags', () => {
  it('refuses bad flags with a one-line reason', () => {
    for (const args of [['--duration', 'soon'], ['--members', '2'], ['--split-brain', 'maybe'], ['--seed', '-1'], ['--faults', 'flood'], ['--members', '3', '--faults', 'ring']]) {
      const r = spawnSync(process.execPath, [conclaveBin(), 'chaos', ...args], { encoding: 'utf8', timeout: 20_000 })
      expect(r.status).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})

describe.skipIf(unavailable !== undefined)('conclave chaos', () => {
  it('a 15 s run of 5 members under majority, kill, hang and partition: PASS, with the figures and events in the JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-chaos-'))
    try {
      const out = join(dir, 'chaos.json')
      const r = spawnSync(process.execPath, [...MEMBER_NODE_FLAGS, conclaveBin(), 'chaos', '--duration', '15s', '--seed', '7', '--faults', 'kill,hang,partition', '--out', out], { encoding: 'utf8', timeout: 120_000 })
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

  it('a 15 s run of the nftables faults (bridge, one-way, loss): the faults happen, their figures are written, no two masters, no crash', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-chaos-'))
    try {
      const out = join(dir, 'chaos.json')
      // seed 10: the first fault is a bridge
      const r = spawnSync(process.execPath, [...MEMBER_NODE_FLAGS, conclaveBin(), 'chaos', '--duration', '15s', '--seed', '10', '--faults', 'bridge,one-way,loss', '--out', out], { encoding: 'utf8', timeout: 120_000 })
      expect(r.stdout).toContain('verdict:')
      const result = JSON.parse(readFileSync(out, 'utf8'))
      expect(result.settings).toMatchObject({ members: 5, splitBrain: 'majority', faults: ['bridge', 'one-way', 'loss'], stateDir: false })
      const types = (result.faults as Fault[]).map(f => f.type)
      expect(types[0]).toBe('bridge')
      expect(types.every(t => ['bridge', 'one-way', 'loss'].includes(t))).toBe(true)
      expect(result.figures.perFault).toHaveLength(types.length)
      expect(result.figures.viewsDuringFault.bridge.n).toBeGreaterThan(0)
      expect(result.figures.reconvergeMs.bridge).toHaveProperty('p99')
      expect(result.figures.fencing.violations).toEqual([])
      expect(result.figures.dualMasters).toEqual([])
      expect(result.figures.crashes).toBe(0)
      expect(result.figures.viewsUntilAgreed.bridge.n).toBeGreaterThan(0)
      expect(r.stdout).toContain('distinct views installed across members')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 150_000)
})
