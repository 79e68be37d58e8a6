/**
 * Property-based tests (fast-check) of what a stranger's bytes can do.
 *
 * Codec: arbitrary bytes, arbitrary msgpack values and mutated real frames never throw, and
 * whatever decodes satisfies the schema (it survives a re-encode unchanged).
 *
 * Core, in the simulation: a stable three-member cluster receives arbitrary protocol messages
 * from a peer outside it. Claims about others (records that are not the sender's, suspicions,
 * leaves, commits nobody promised, views without the sender) never change any member's view; a
 * peer that takes part in the protocol (joins, proposes) may change views, but never breaks
 * the safety invariants, and the three always end in one view of their own once it is gone.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { Codec, WIRE_VERSION, type WireMessage } from '../src/transport/codec.js'
import { MESSAGE_TYPES, type ProtocolMessage, type ViewSummary } from '../src/core/messages.js'
import type { MemberRecord } from '../src/core/member.js'
import { EPOCH_WINDOW } from '../src/core/membership.js'
import { Simulation } from '../src/testing/simulation.js'
import { ALL_INVARIANTS, checkInvariants } from '../src/testing/invariants.js'

const CLUSTER = 'prop'
/** Fixed, so a failure repeats; FC_SEED and FC_RUNS explore further (a scratch loop does). */
const SEED = Number(process.env.FC_SEED ?? 20261203)
const RUNS = Number(process.env.FC_RUNS ?? 150)
const codec = new Codec(CLUSTER, 64 * 1024)
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })
const REASONS = new Set(['oversized', 'malformed', 'unknown-version', 'foreign-cluster', 'unknown-type', 'invalid'])

// ─── arbitraries ─────────────────────────────────────────────────────────────

const MEMBERS = ['n1', 'n2', 'n3']
const STRANGER = 'zz-stranger'
/** Ids a message may name: the members, the stranger, someone nobody knows. */
const anyId = fc.constantFrom(...MEMBERS, STRANGER, 'ghost')
/** Epochs near the cluster's and far from it (the window, and the end of the safe integers). */
const anyEpoch = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(EPOCH_WINDOW, EPOCH_WINDOW + 50, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER))
const anyTs = fc.oneof(fc.double({ min: -1e6, max: 1e9, noNaN: true }).map(x => x + 0), fc.constant(0)) // msgpack has no -0

const recordOf = (id: fc.Arbitrary<string>): fc.Arbitrary<MemberRecord> => fc.record({
  id,
  name: fc.string({ maxLength: 12 }),
  incarnation: fc.integer({ min: 0, max: 5 }),
  joinEpoch: fc.integer({ min: 0, max: 40 }),
  addrs: fc.array(fc.constant('sim://x'), { maxLength: 2 }),
  meta: fc.constant({})
})
const uniqueRecords = (id: fc.Arbitrary<string>): fc.Arbitrary<MemberRecord[]> => fc.uniqueArray(recordOf(id), { selector: r => r.id, minLength: 1, maxLength: 5 })
const basis = fc.array(fc.record({ ids: fc.uniqueArray(anyId, { maxLength: 5 }), epoch: anyEpoch, settled: fc.boolean() }), { maxLength: 3 })
const summaryOf = (id: fc.Arbitrary<string>): fc.Arbitrary<ViewSummary> => fc.record({ epoch: anyEpoch, members: uniqueRecords(id), basis }, { requiredKeys: ['epoch', 'members'] })

/** Any protocol message, naming anyone. */
const anyMessage: fc.Arbitrary<ProtocolMessage> = fc.oneof(
  fc.record({ t: fc.constant('hello' as const), from: recordOf(anyId), view: summaryOf(anyId), maxEpoch: anyEpoch }, { requiredKeys: ['t', 'from', 'maxEpoch'] }),
  fc.record({ t: fc.constant('join' as const), from: recordOf(anyId), maxEpoch: anyEpoch }),
  fc.record({ t: fc.constant('merge' as const), view: summaryOf(anyId) }),
  fc.record({ t: fc.constant('propose' as const), epoch: anyEpoch, members: uniqueRecords(anyId), ts: anyTs }),
  fc.record({ t: fc.constant('ack' as const), epoch: anyEpoch, echo: anyTs, known: basis }, { requiredKeys: ['t', 'epoch', 'echo'] }),
  fc.record({ t: fc.constant('nack' as const), epoch: anyEpoch, view: summaryOf(anyId) }, { requiredKeys: ['t', 'epoch'] }),
  fc.record({ t: fc.constant('commit' as const), epoch: anyEpoch, members: uniqueRecords(anyId), basis }, { requiredKeys: ['t', 'epoch', 'members'] }),
  fc.record({ t: fc.constant('leave' as const), epoch: anyEpoch }),
  fc.record({ t: fc.constant('hb' as const), epoch: anyEpoch, ts: anyTs, echo: anyTs }),
  fc.record({ t: fc.constant('probe' as const), nonce: fc.integer() }),
  fc.record({ t: fc.constant('probe-ack' as const), nonce: fc.integer(), epoch: anyEpoch }),
  fc.record({ t: fc.constant('not-member' as const), view: summaryOf(anyId) }),
  fc.record({ t: fc.constant('suspect' as const), id: anyId }),
  fc.record({ t: fc.constant('foreign' as const), view: summaryOf(anyId) })
) as fc.Arbitrary<ProtocolMessage>

/** Ids other than the stranger's: what a stranger's claims about others name. */
const othersId = fc.constantFrom(...MEMBERS, 'ghost')
/**
 * Claims a peer makes about others, or that no protocol step lets it make: records that are not
 * its own, suspicions, leaves and heartbeats from a non-member, commits it was never promised,
 * views it is not in.
 */
const claimAboutOthers: fc.Arbitrary<ProtocolMessage> = fc.oneof(
  fc.record({ t: fc.constant('hello' as const), from: recordOf(othersId), view: summaryOf(othersId), maxEpoch: anyEpoch }, { requiredKeys: ['t', 'from', 'maxEpoch'] }),
  fc.record({ t: fc.constant('join' as const), from: recordOf(othersId), maxEpoch: anyEpoch }),
  fc.record({ t: fc.constant('merge' as const), view: summaryOf(othersId) }),
  fc.record({ t: fc.constant('propose' as const), epoch: anyEpoch, members: uniqueRecords(othersId), ts: anyTs }),
  fc.record({ t: fc.constant('commit' as const), epoch: anyEpoch, members: uniqueRecords(anyId), basis }, { requiredKeys: ['t', 'epoch', 'members'] }),
  fc.record({ t: fc.constant('leave' as const), epoch: anyEpoch }),
  fc.record({ t: fc.constant('hb' as const), epoch: anyEpoch, ts: anyTs, echo: anyTs }),
  fc.record({ t: fc.constant('ack' as const), epoch: anyEpoch, echo: anyTs }),
  fc.record({ t: fc.constant('nack' as const), epoch: anyEpoch, view: summaryOf(othersId) }, { requiredKeys: ['t', 'epoch'] }),
  fc.record({ t: fc.constant('not-member' as const), view: summaryOf(othersId) }),
  fc.record({ t: fc.constant('suspect' as const), id: anyId })
) as fc.Arbitrary<ProtocolMessage>

// ─── codec ───────────────────────────────────────────────────────────────────

function decodesSafely (frame: Uint8Array): void {
  const r = codec.decode(frame)
  if (!r.ok) { expect(REASONS.has(r.reason)).toBe(true); return }
  // Whatever decodes is schema-valid: re-encoding it gives a frame that decodes to the same.
  const again = codec.decode(codec.encode(r.msg))
  expect(again.ok).toBe(true)
  if (again.ok) expect(again.msg).toEqual(r.msg)
}

/** A real frame with bytes flipped, cut, inserted or duplicated. */
const mutated = fc.tuple(anyMessage, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert', 'dup')), { minLength: 1, maxLength: 6 }))
  .map(([msg, edits]) => {
    let bytes = Array.from(codec.encode(msg))
    for (const [at, value, kind] of edits) {
      const i = bytes.length === 0 ? 0 : at % bytes.length
      if (kind === 'flip') bytes[i] = value
      else if (kind === 'cut') bytes = bytes.slice(0, i)
      else if (kind === 'insert') bytes.splice(i, 0, value)
      else bytes = [...bytes.slice(0, i), ...bytes.slice(i, i + 16), ...bytes.slice(i)]
    }
    return Uint8Array.from(bytes)
  })

describe('codec under arbitrary input (fast-check)', () => {
  it('every valid message round-trips', () => {
    fc.assert(fc.property(anyMessage, msg => {
      const r = codec.decode(codec.encode(msg as WireMessage))
      expect(r.ok).toBe(true)
      if (r.ok) expect(r.msg).toEqual(msg)
    }), { numRuns: 2000, seed: SEED })
  })

  it('arbitrary bytes never throw; anything that decodes is schema-valid', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), decodesSafely), { numRuns: 5000, seed: SEED })
  })

  it('mutated real frames never throw; anything that decodes is schema-valid', () => {
    fc.assert(fc.property(mutated, decodesSafely), { numRuns: 5000, seed: SEED })
  })

  it('arbitrary msgpack values, also with our envelope, never throw', () => {
    const envelope = fc.record({
      v: fc.oneof(fc.constant(WIRE_VERSION), fc.anything()),
      c: fc.oneof(fc.constant(CLUSTER), fc.string()),
      t: fc.oneof(fc.constantFrom(...MESSAGE_TYPES, 'user', 'svc', 'batch'), fc.anything())
    }).chain(head => fc.dictionary(fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 3 })).map(rest => ({ ...rest, ...head })))
    fc.assert(fc.property(fc.oneof(fc.anything({ maxDepth: 4 }), envelope), value => {
      let frame: Uint8Array
      try { frame = packr.pack(value) } catch { return } // not encodable: nothing to send
      decodesSafely(frame)
    }), { numRuns: 5000, seed: SEED })
  })

  it('frames of another cluster or wire version are refused by name, and oversized ones before decoding', () => {
    fc.assert(fc.property(anyMessage, fc.string({ minLength: 1, maxLength: 20 }).filter(c => c !== CLUSTER), fc.integer({ min: 0, max: 1000 }).filter(v => v !== WIRE_VERSION), (msg, cluster, version) => {
      expect(codec.decode(new Codec(cluster, 64 * 1024).encode(msg as WireMessage))).toEqual({ ok: false, reason: 'foreign-cluster' })
      expect(codec.decode(packr.pack({ ...msg, v: version, c: CLUSTER }))).toEqual({ ok: false, reason: 'unknown-version' })
    }), { numRuns: 500, seed: SEED })
    expect(codec.decode(new Uint8Array(64 * 1024 + 1))).toEqual({ ok: false, reason: 'oversized' })
  })
})

// ─── core ────────────────────────────────────────────────────────────────────

function stableCluster (seed: number): Simulation {
  const sim = new Simulation({ seed })
  sim.addNode('n1')
  sim.runFor(20)
  sim.addNode('n2', ['n1'])
  sim.runFor(20)
  sim.addNode('n3', ['n1'])
  if (!sim.runUntilTrue(() => sim.converged() && sim.nodes.get('n1')?.core.view?.members.length === 3, 10_000)) throw new Error('cluster did not form')
  sim.runFor(500)
  return sim
}

const memberIdsOf = (sim: Simulation, id: string): string[] => (sim.nodes.get(id)?.core.view?.members ?? []).map(m => m.id).sort()

/** A sequence of (target, message, pause) a stranger sends. */
const attack = (messages: fc.Arbitrary<ProtocolMessage>): fc.Arbitrary<Array<[string, ProtocolMessage, number]>> =>
  fc.array(fc.tuple(fc.constantFrom(...MEMBERS), messages, fc.integer({ min: 0, max: 200 })), { minLength: 1, maxLength: 40 })

describe('the core under a stranger\'s messages (fast-check, simulation)', () => {
  it('claims about others never change any member\'s view', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 10_000 }), attack(claimAboutOthers), (seed, steps) => {
      const sim = stableCluster(seed)
      checkInvariants(sim, ALL_INVARIANTS)
      const before = MEMBERS.map(id => sim.nodes.get(id)?.installs.length)
      const epoch = sim.nodes.get('n1')?.core.view?.id.epoch
      for (const [to, msg, pause] of steps) {
        sim.inject(STRANGER, to, msg)
        sim.runFor(pause)
      }
      sim.runFor(3000)
      expect(MEMBERS.map(id => sim.nodes.get(id)?.installs.length)).toEqual(before)
      for (const id of MEMBERS) {
        expect(memberIdsOf(sim, id)).toEqual(MEMBERS)
        expect(sim.nodes.get(id)?.core.view?.id.epoch).toBe(epoch)
      }
    }), { numRuns: RUNS, seed: SEED })
  })

  it('every refusal is counted by name', () => {
    const sim = stableCluster(11)
    const n2 = sim.nodes.get('n2')?.core.view?.members.find(m => m.id === 'n2') as MemberRecord
    const epoch = sim.nodes.get('n1')?.core.view?.id.epoch as number
    const cases: Array<[ProtocolMessage, string]> = [
      [{ t: 'hello', from: n2, maxEpoch: 0 }, 'spoofed-hello'],
      [{ t: 'join', from: n2, maxEpoch: 0 }, 'spoofed-join'],
      [{ t: 'merge', view: { epoch, members: [n2] } }, 'spoofed-merge'],
      [{ t: 'commit', epoch: epoch + 1, members: [n2] }, 'foreign-exclusion'],
      [{ t: 'propose', epoch: epoch + 1, members: sim.nodes.get('n1')?.core.view?.members ?? [], ts: 0 }, 'stranger-proposal'],
      [{ t: 'hb', epoch: EPOCH_WINDOW + epoch + 1, ts: 0, echo: 0 }, 'epoch-out-of-range']
    ]
    for (const [msg, reason] of cases) {
      const before = sim.nodes.get('n1')?.drops[reason] ?? 0
      sim.inject(STRANGER, 'n1', msg)
      sim.runFor(50)
      expect(sim.nodes.get('n1')?.drops[reason], reason).toBe(before + 1)
    }
    sim.inject(STRANGER, 'n3', { t: 'commit', epoch: epoch + 1, members: sim.nodes.get('n3')?.core.view?.members ?? [] })
    sim.runFor(50)
    expect(sim.nodes.get('n3')?.drops['unpromised-commit']).toBe(1)
  })

  it('a stranger\'s epoch near 2^53 does not use up the epochs: the next view change still goes one up', () => {
    const sim = stableCluster(7)
    const epoch = sim.nodes.get('n1')?.core.view?.id.epoch as number
    const far = Number.MAX_SAFE_INTEGER - 1
    const record = { id: STRANGER, name: 's', incarnation: 1, joinEpoch: 0, addrs: [], meta: {} }
    for (const msg of [
      { t: 'hello', from: record, maxEpoch: far },
      { t: 'join', from: record, maxEpoch: far },
      { t: 'hb', epoch: far, ts: 1, echo: 0 },
      { t: 'propose', epoch: far, members: [record, ...(sim.nodes.get('n1')?.core.view?.members ?? [])], ts: 1 },
      { t: 'foreign', view: { epoch: far, members: [record] } }
    ] as ProtocolMessage[]) for (const to of MEMBERS) sim.inject(STRANGER, to, msg)
    sim.runFor(5000) // the stranger joined, fell silent and was removed again
    sim.addNode('n4', ['n1'])
    expect(sim.runUntilTrue(() => sim.converged() && memberIdsOf(sim, 'n1').includes('n4'), 10_000)).toBe(true)
    const now = sim.nodes.get('n1')?.core.view?.id.epoch as number
    expect(now).toBeGreaterThan(epoch)
    expect(now).toBeLessThan(epoch + 10)
    for (const id of [...MEMBERS, 'n4']) expect((sim.nodes.get(id)?.drops['epoch-out-of-range'] ?? 0) + (sim.nodes.get(id)?.drops['epoch-claim-ignored'] ?? 0)).toBeGreaterThanOrEqual(id === 'n4' ? 0 : 1)
  })

  it('any message sequence keeps the invariants, and the three end in one view of their own', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 10_000 }), attack(anyMessage), (seed, steps) => {
      const sim = stableCluster(seed)
      checkInvariants(sim, ALL_INVARIANTS)
      for (const [to, msg, pause] of steps) {
        sim.inject(STRANGER, to, msg)
        sim.runFor(pause)
      }
      // The stranger falls silent; whatever it got into, the failure detector takes it out.
      const healed = sim.runUntilTrue(() => sim.converged() && MEMBERS.every(id => memberIdsOf(sim, id).join() === MEMBERS.join()), 30_000)
      expect(healed, MEMBERS.map(id => `${id}: ${memberIdsOf(sim, id).join(',')} @${sim.nodes.get(id)?.core.view?.id.epoch} ${sim.nodes.get(id)?.core.status}`).join('; ')).toBe(true)
      // Each message may lift the epoch by at most the window: 40 of them stay far below 2^53.
      for (const id of MEMBERS) expect(sim.nodes.get(id)?.core.view?.id.epoch).toBeLessThan(steps.length * EPOCH_WINDOW + 1000)
    }), { numRuns: RUNS, seed: SEED })
  })
})
