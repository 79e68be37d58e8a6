/**
 * What a chaos run decides before it touches anything: the fault types it draws and the shape
 * of each (chaos/schedule.ts), and how it starts members (chaos/members.ts): one founder
 * without seeds, every other start and restart seeded with every other host, a state
 * directory per slot, a shifted clock through libfaketime.
 */
import { describe, expect, it } from 'vitest'
import { FAULT_TYPES, parseFaultTypes } from '../src/chaos/faults.js'
import { faketimeEnv, memberSpawnOptions, processLabel } from '../src/chaos/members.js'
import { defaultFaults } from '../src/chaos/run.js'
import { faultBag, randomBridge, randomLoss, randomRing, randomSplit } from '../src/chaos/schedule.js'
import { seededRandom } from '../src/testing/random.js'

describe('chaos schedule', () => {
  it('draws the selected types in shuffled rounds: each once per round', () => {
    const next = faultBag(['bridge', 'ring', 'loss'], seededRandom(1))
    const drawn = Array.from({ length: 9 }, next)
    for (let r = 0; r < 3; r++) expect([...drawn.slice(r * 3, r * 3 + 3)].sort()).toEqual(['bridge', 'loss', 'ring'])
    expect(() => faultBag([], seededRandom(1))).toThrow(/no fault types/)
  })

  it('shapes: splits, bridges, rings and loss cover the hosts as promised', () => {
    const rnd = seededRandom(42)
    for (let i = 0; i < 200; i++) {
      const n = 3 + (i % 7)
      const sides = randomSplit(n, rnd)
      expect(sides.flat().sort((a, b) => a - b)).toEqual([...Array(n).keys()])
      expect(sides.every(s => s.length > 0)).toBe(true)
      const { groups, middle } = randomBridge(n, rnd)
      expect([...groups[0], middle, ...groups[1]].sort((a, b) => a - b)).toEqual([...Array(n).keys()])
      expect(groups[0].length > 0 && groups[1].length > 0).toBe(true)
      if (n >= 4) expect([...randomRing(n, rnd)].sort((a, b) => a - b)).toEqual([...Array(n).keys()])
      const l = randomLoss(n, rnd)
      expect(l.percent).toBeGreaterThanOrEqual(10)
      expect(l.percent).toBeLessThanOrEqual(40)
      expect(l.hosts.length).toBeGreaterThanOrEqual(1)
      expect(l.hosts.length).toBeLessThan(n / 2)
    }
  })

  it('reads --faults; the default leaves the ring out below 4 members', () => {
    expect(parseFaultTypes('loss, bridge')).toEqual(['bridge', 'loss'])
    expect(parseFaultTypes('all')).toEqual([...FAULT_TYPES])
    expect(() => parseFaultTypes('bridge,flood')).toThrow(/expected fault types/)
    expect(() => parseFaultTypes('')).toThrow(/expected fault types/)
    expect(defaultFaults(3)).not.toContain('ring')
    expect(defaultFaults(5)).toEqual([...FAULT_TYPES])
  })
})

describe('chaos member starts', () => {
  const addresses = ['10.77.0.1:7200', '10.77.0.2:7200', '10.77.0.3:7200']
  const base = { addresses, splitBrain: 'majority' as const, prefix: ['ip', 'netns', 'exec', 'h'] }

  it('the first start of m0 founds (no seeds); every other start names every other host', () => {
    expect(memberSpawnOptions({ ...base, index: 0, generation: 0, founder: true }).seeds).toEqual([])
    const restarted = memberSpawnOptions({ ...base, index: 0, generation: 2, founder: false })
    expect(restarted).toMatchObject({ name: 'm0.2', listen: '10.77.0.1:7200', seeds: ['10.77.0.2:7200', '10.77.0.3:7200'] })
    expect(memberSpawnOptions({ ...base, index: 1, generation: 0, founder: false }).seeds).toEqual(['10.77.0.1:7200', '10.77.0.3:7200'])
    expect(processLabel(2, 0)).toBe('m2')
  })

  it('passes the slot\'s state directory and the cluster key; none by default', () => {
    expect(memberSpawnOptions({ ...base, index: 1, generation: 0, founder: false }).extraArgs).toEqual(['--split-brain', 'majority'])
    const withState = memberSpawnOptions({ ...base, index: 1, generation: 3, founder: false, stateDir: '/tmp/s/m1', keyFile: '/k' })
    expect(withState.extraArgs).toEqual(['--split-brain', 'majority', '--key-file', '/k', '--state-dir', '/tmp/s/m1'])
  })

  it('a shifted clock: libfaketime preloaded, the wall clock moved in whole seconds, the monotonic clock left alone', () => {
    const lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
    expect(faketimeEnv(-3 * 3_600_000, lib)).toEqual({ LD_PRELOAD: lib, FAKETIME: '-10800', FAKETIME_DONT_FAKE_MONOTONIC: '1' })
    expect(faketimeEnv(90_000, lib).FAKETIME).toBe('+90')
    expect(memberSpawnOptions({ ...base, index: 2, generation: 1, founder: false, clockOffsetMs: -1000, faketimeLib: lib }).env).toMatchObject({ FAKETIME: '-1' })
    expect(memberSpawnOptions({ ...base, index: 2, generation: 1, founder: false }).env).toBeUndefined()
    expect(() => memberSpawnOptions({ ...base, index: 2, generation: 1, founder: false, clockOffsetMs: -1000 })).toThrow(/faketimeLib/)
  })
})
