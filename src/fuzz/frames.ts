/**
 * Hostile frames for `conclave fuzz`: seeded, so a run can be repeated. Every kind is one a
 * member must drop (and count) without changing its view:
 *  - random: bytes that are not msgpack, or msgpack that is not a map;
 *  - truncated / mutated: real protocol frames cut short or with bytes changed;
 *  - oversized: larger than the cluster's maxMessageBytes;
 *  - wrong-version / foreign-cluster: well-formed frames of another wire version or cluster;
 *  - garbage-map: msgpack maps with our envelope and fields of the wrong kinds;
 *  - claims: well-formed protocol messages that make claims about others (joins and hellos
 *    with a member's record, suspicions, leaves, commits nobody promised, proposals without
 *    their sender), which the protocol refuses by identity.
 */
import { Packr } from 'msgpackr'
import { Codec, WIRE_VERSION } from '../transport/codec.js'
import type { ProtocolMessage } from '../core/messages.js'
import type { MemberRecord } from '../core/member.js'

export const FRAME_KINDS = ['random', 'truncated', 'mutated', 'oversized', 'wrong-version', 'foreign-cluster', 'garbage-map', 'claims'] as const
export type FrameKind = typeof FRAME_KINDS[number]

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export class FrameFactory {
  private readonly codec: Codec

  constructor (
    private readonly rnd: () => number,
    readonly cluster: string,
    readonly maxBytes: number,
    /** The cluster's members as the fuzzer learned them (a member's hello), for claims about them. */
    private readonly members: readonly MemberRecord[],
    /** The cluster's epoch as learned: claims name epochs around it (and some far beyond). */
    private readonly baseEpoch: number
  ) {
    this.codec = new Codec(cluster, maxBytes)
  }

  make (kind: FrameKind): Uint8Array {
    switch (kind) {
      case 'random': return this.rnd() < 0.5 ? this.bytes(this.int(0, 512)) : packr.pack(this.value(3))
      case 'truncated': {
        const frame = this.codec.encode(this.message())
        return frame.subarray(0, this.int(0, frame.byteLength - 1))
      }
      case 'mutated': {
        const frame = Uint8Array.from(this.codec.encode(this.message()))
        for (let i = this.int(1, 6); i > 0; i--) frame[this.int(0, frame.byteLength - 1)] = this.int(0, 255)
        return frame
      }
      case 'oversized': return this.bytes(this.maxBytes + this.int(1, 2048))
      case 'wrong-version': return packr.pack({ ...this.message(), v: this.pick([0, 2, 3, 99, -1, '1', null]), c: this.cluster })
      case 'foreign-cluster': return packr.pack({ ...this.message(), v: WIRE_VERSION, c: `${this.cluster}-${this.pick(['x', 'other', ''])}` })
      case 'garbage-map': {
        const t = this.pick(['hello', 'join', 'merge', 'propose', 'ack', 'nack', 'commit', 'leave', 'hb', 'probe', 'probe-ack', 'not-member', 'suspect', 'foreign', 'batch', 'svc', 'nope'])
        const fields: Record<string, unknown> = {}
        for (const k of ['from', 'view', 'epoch', 'members', 'ts', 'echo', 'maxEpoch', 'basis', 'known', 'nonce', 'id', 'frames', 's', 'd']) {
          if (this.rnd() < 0.5) fields[k] = this.value(3)
        }
        return packr.pack({ v: WIRE_VERSION, c: this.cluster, t, ...fields })
      }
      case 'claims': return this.codec.encode(this.message())
    }
  }

  /** A well-formed message claiming something about the members (never about the sender). */
  private message (): ProtocolMessage {
    const member = this.pick(this.members)
    const r = this.rnd()
    const epoch = r < 0.8 ? Math.max(0, this.baseEpoch + this.int(-3, 5)) : r < 0.9 ? this.int(0, 1000) : this.pick([this.baseEpoch + 2 ** 31 + 1, Number.MAX_SAFE_INTEGER])
    // Mostly the member's real record (as a hello showed it), sometimes one with other fields.
    const someone = (): MemberRecord => this.rnd() < 0.7 ? this.pick(this.members) : { ...this.pick(this.members), incarnation: this.int(0, 2 ** 40), joinEpoch: this.int(0, 50) }
    const records = (): MemberRecord[] => {
      const out = new Map<string, MemberRecord>()
      for (let i = this.int(1, this.members.length); i > 0; i--) { const r = someone(); out.set(r.id, r) }
      return [...out.values()]
    }
    switch (this.int(0, 9)) {
      case 0: return { t: 'hello', from: someone(), maxEpoch: epoch }
      case 1: return { t: 'join', from: someone(), maxEpoch: epoch }
      case 2: return { t: 'suspect', id: member.id }
      case 3: return { t: 'leave', epoch }
      case 4: return { t: 'commit', epoch, members: records() }
      case 5: return { t: 'propose', epoch, members: records(), ts: this.rnd() * 1e9 }
      case 6: return { t: 'hb', epoch, ts: this.rnd() * 1e9, echo: this.rnd() * 1e9 }
      case 7: return { t: 'merge', view: { epoch, members: records() } }
      case 8: return { t: 'not-member', view: { epoch, members: records() } }
      default: return { t: 'nack', epoch, view: { epoch, members: records() } }
    }
  }

  private value (depth: number): unknown {
    const r = this.rnd()
    if (depth <= 0 || r < 0.4) return this.pick([0, -1, 1.5, 2 ** 60, Number.NaN, '', 'x'.repeat(this.int(0, 2000)), true, null, this.bytes(this.int(0, 64))])
    if (r < 0.7) return Array.from({ length: this.int(0, 8) }, () => this.value(depth - 1))
    const out: Record<string, unknown> = {}
    for (let i = this.int(0, 6); i > 0; i--) out[this.pick(['id', 'epoch', 'members', 'ids', 't', 'v', 'c', String(i)])] = this.value(depth - 1)
    return out
  }

  private bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.rnd() * 256)
    return out
  }

  private int (lo: number, hi: number): number { return lo + Math.floor(this.rnd() * (hi - lo + 1)) }
  private pick<T> (items: readonly T[]): T { return items[Math.floor(this.rnd() * items.length)] as T }
}
