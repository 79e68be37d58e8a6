/** The wire codec: round trips, and every kind of bad frame dropped with its reason. */
import { describe, expect, it } from 'vitest'
import { Packr } from 'msgpackr'
import { Codec, WIRE_VERSION, decodePayload, encodePayload } from '../src/transport/codec.js'
import type { ProtocolMessage } from '../src/core/messages.js'

const codec = new Codec('c1', 4096)
const rec = { id: 'peer1', name: 'a', incarnation: 5, joinEpoch: 2, addrs: ['/ip4/127.0.0.1/tcp/1/p2p/peer1'], meta: { role: 'x', n: 1, on: true } }
const packr = new Packr({ useRecords: false })

describe('codec', () => {
  const good: ProtocolMessage[] = [
    { t: 'hello', from: rec, maxEpoch: 3, view: { epoch: 3, members: [rec] } },
    { t: 'hello', from: rec, maxEpoch: 0 },
    { t: 'join', from: rec, maxEpoch: 7 },
    { t: 'propose', epoch: 4, members: [rec], ts: 123.5 },
    { t: 'ack', epoch: 4, echo: 123.5 },
    { t: 'ack', epoch: 4, echo: 1, known: [{ ids: ['peer1', 'peer2'], epoch: 3, settled: true }, { ids: ['peer1'], epoch: 4, settled: false }] },
    { t: 'commit', epoch: 4, members: [rec], basis: [{ ids: ['peer1', 'peer2'], epoch: 3, settled: true }] },
    { t: 'merge', view: { epoch: 3, members: [rec], basis: [] } },
    { t: 'nack', epoch: 4 },
    { t: 'commit', epoch: 4, members: [rec] },
    { t: 'leave', epoch: 4 },
    { t: 'hb', epoch: 4, ts: 1, echo: Number.NEGATIVE_INFINITY },
    { t: 'probe', nonce: 9 },
    { t: 'probe-ack', nonce: 9, epoch: 4 },
    { t: 'not-member', view: { epoch: 3, members: [rec] } },
    { t: 'suspect', id: 'peer2' },
    { t: 'merge', view: { epoch: 3, members: [rec] } },
    { t: 'foreign', view: { epoch: 3, members: [rec] } }
  ]
  for (const msg of good) {
    it(`round-trips ${msg.t}`, () => {
      expect(codec.decode(codec.encode(msg))).toEqual({ ok: true, msg })
    })
  }

  const bin = new Uint8Array([0x92, 1, 2])
  const messaging = [
    { t: 'rb', e: 7, s: 1, m: [bin, bin] },
    { t: 'rba', e: 7, s: 0 },
    { t: 'rba', e: 7, s: 12, f: true },
    { t: 'rbn', e: 7, s: 3 },
    { t: 'rbf', e: 7, n: 0 },
    { t: 'uc', i: 99, e: 7, n: 4, m: [bin] },
    { t: 'uca', i: 99, n: 4 }
  ] as const
  for (const msg of messaging) {
    it(`round-trips the messaging frame ${msg.t}${'f' in msg ? ' (flushed)' : ''}`, () => {
      const decoded = codec.decode(codec.encode(msg))
      expect(decoded.ok).toBe(true)
      const plain = (v: object | undefined): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => x instanceof Uint8Array ? [...x] : (typeof x === 'object' && x !== null && (x as { type?: unknown }).type === 'Buffer' ? (x as { data: number[] }).data : x)))
      expect(plain(decoded.ok ? decoded.msg : undefined)).toEqual(plain(msg))
    })
  }

  it('refuses a data frame of more than 10,000 payloads', () => {
    const big = new Codec('c1', 1 << 20)
    const m = Array.from({ length: 10_001 }, () => new Uint8Array(0))
    expect(big.decode(packr.pack({ v: WIRE_VERSION, c: 'c1', t: 'uc', i: 1, e: 1, n: 1, m }))).toEqual({ ok: false, reason: 'invalid' })
    expect(big.decode(packr.pack({ v: WIRE_VERSION, c: 'c1', t: 'uc', i: 1, e: 1, n: 1, m: m.slice(1) })).ok).toBe(true)
  })

  it('round-trips application payloads, and reports a malformed one', () => {
    expect(decodePayload(encodePayload({ a: [1, 'x', null] }))).toEqual({ ok: true, value: { a: [1, 'x', null] } })
    expect(decodePayload(new Uint8Array([0x92, 1])).ok).toBe(false) // an array of two that ends after one
  })

  const raw = (obj: unknown): Uint8Array => packr.pack(obj)
  const bad: Array<[string, Uint8Array, string]> = [
    ['oversized', new Uint8Array(5000), 'oversized'],
    ['not msgpack', new Uint8Array([0xc1, 0xc1]), 'malformed'],
    ['not a map', raw([1, 2, 3]), 'malformed'],
    ['wrong version', raw({ v: WIRE_VERSION + 1, c: 'c1', t: 'leave', epoch: 1 }), 'unknown-version'],
    ['other cluster', raw({ v: WIRE_VERSION, c: 'c2', t: 'leave', epoch: 1 }), 'foreign-cluster'],
    ['unknown type', raw({ v: WIRE_VERSION, c: 'c1', t: 'explode' }), 'unknown-type'],
    ['a user frame of wire version 1', raw({ v: WIRE_VERSION, c: 'c1', t: 'user', payload: 1 }), 'unknown-type'],
    ['data without payloads', raw({ v: WIRE_VERSION, c: 'c1', t: 'rb', e: 1, s: 1, m: [] }), 'invalid'],
    ['data at sequence 0', raw({ v: WIRE_VERSION, c: 'c1', t: 'rb', e: 1, s: 0, m: [new Uint8Array(1)] }), 'invalid'],
    ['data that is not binary', raw({ v: WIRE_VERSION, c: 'c1', t: 'rb', e: 1, s: 1, m: ['text'] }), 'invalid'],
    ['an ack with a bad flag', raw({ v: WIRE_VERSION, c: 'c1', t: 'rba', e: 1, s: 1, f: 1 }), 'invalid'],
    ['a fractional sequence number', raw({ v: WIRE_VERSION, c: 'c1', t: 'rbn', e: 1, s: 1.5 }), 'invalid'],
    ['negative epoch', raw({ v: WIRE_VERSION, c: 'c1', t: 'leave', epoch: -1 }), 'invalid'],
    ['fractional epoch', raw({ v: WIRE_VERSION, c: 'c1', t: 'ack', epoch: 1.5, echo: 0 }), 'invalid'],
    ['member without id', raw({ v: WIRE_VERSION, c: 'c1', t: 'commit', epoch: 1, members: [{ ...rec, id: '' }] }), 'invalid'],
    ['duplicate members', raw({ v: WIRE_VERSION, c: 'c1', t: 'commit', epoch: 1, members: [rec, rec] }), 'invalid'],
    ['metadata object', raw({ v: WIRE_VERSION, c: 'c1', t: 'join', maxEpoch: 1, from: { ...rec, meta: { x: {} } } }), 'invalid'],
    ['empty view', raw({ v: WIRE_VERSION, c: 'c1', t: 'merge', view: { epoch: 1, members: [] } }), 'invalid'],
    ['a candidate without settled', raw({ v: WIRE_VERSION, c: 'c1', t: 'commit', epoch: 1, members: [rec], basis: [{ ids: ['a'], epoch: 1 }] }), 'invalid'],
    ['a candidate listing a member twice', raw({ v: WIRE_VERSION, c: 'c1', t: 'ack', epoch: 1, echo: 0, known: [{ ids: ['a', 'a'], epoch: 1, settled: true }] }), 'invalid'],
    ['too many candidates', raw({ v: WIRE_VERSION, c: 'c1', t: 'ack', epoch: 1, echo: 0, known: Array.from({ length: 17 }, (_, i) => ({ ids: ['a'], epoch: i, settled: false })) }), 'invalid'],
    ['a basis that is not a list', raw({ v: WIRE_VERSION, c: 'c1', t: 'merge', view: { epoch: 1, members: [rec], basis: 'all' } }), 'invalid'],
    ['addrs not strings', raw({ v: WIRE_VERSION, c: 'c1', t: 'join', maxEpoch: 1, from: { ...rec, addrs: [1] } }), 'invalid']
  ]
  for (const [label, frame, reason] of bad) {
    it(`drops ${label} as ${reason}`, () => {
      expect(codec.decode(frame)).toEqual({ ok: false, reason })
    })
  }

  it('never throws on random bytes', () => {
    for (let i = 0; i < 2000; i++) {
      const frame = new Uint8Array(Math.floor(Math.random() * 64)).map(() => Math.floor(Math.random() * 256))
      expect(() => codec.decode(frame)).not.toThrow()
    }
  })
})
