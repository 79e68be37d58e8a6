/**
 * The wire-version policy (docs/design.md, "Versions"): members interoperate only at the same
 * WIRE_VERSION. test/fixtures/wire-v2.json is a frozen copy of every frame type as version 2
 * encodes it; today's codec must read each exactly while WIRE_VERSION is 2, and drop each as
 * `unknown-version` once it is not. A member of another version is refused at the handshake,
 * reports it, and founds no group next to the live one.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { Packr } from 'msgpackr'
import { Codec, WIRE_VERSION } from '../src/transport/codec.js'
import { createLibp2pTransport } from '../src/transport/libp2p.js'
import { nextVersion } from './other-version.js'
import { Member } from '../src/index.js'
import { waitUntil } from '../src/testing/member-process.js'

interface Fixture { wireVersion: number, cluster: string, handshake: string, frames: Array<{ name: string, hex: string, message: unknown }> }
const fixture = JSON.parse(readFileSync(new URL('./fixtures/wire-v2.json', import.meta.url), 'utf8')) as Fixture
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

/** The fixture's JSON form back to what the decoder returns: `{ $bin: hex }` is a Uint8Array. */
function revive (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive)
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>
    if (typeof o.$bin === 'string') return Buffer.from(o.$bin, 'hex')
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revive(x)]))
  }
  return v
}

const members: Member[] = []
afterEach(async () => { await Promise.all(members.splice(0).map(async m => await m.stop())) })

describe('wire versions', () => {
  const codec = new Codec(fixture.cluster, 1 << 20)

  it(`frozen version-${fixture.wireVersion} frames: read exactly at the same version, dropped as unknown-version at any other`, () => {
    expect(fixture.frames.map(f => f.name)).toHaveLength(24)
    for (const f of fixture.frames) {
      const decoded = codec.decode(Buffer.from(f.hex, 'hex'))
      if (WIRE_VERSION === fixture.wireVersion) {
        expect(decoded, f.name).toEqual({ ok: true, msg: revive(f.message) })
      } else {
        expect(decoded, f.name).toEqual({ ok: false, reason: 'unknown-version' })
      }
    }
  })

  it('the same frames stamped with a neighbouring version are dropped, never read', () => {
    for (const f of fixture.frames) {
      const raw = packr.unpack(Buffer.from(f.hex, 'hex')) as Record<string, unknown>
      for (const v of [WIRE_VERSION - 1, WIRE_VERSION + 1, 0, '2']) {
        expect(codec.decode(packr.pack({ ...raw, v })), `${f.name} as v${String(v)}`).toEqual({ ok: false, reason: 'unknown-version' })
      }
    }
  })

  it('a member of another wire version is refused by the seeds, says so, and founds no group while they live', async () => {
    const cluster = `versions-${process.pid}`
    const a = new Member({ cluster, name: 'a' })
    members.push(a)
    await a.start()
    const other = WIRE_VERSION + 1
    // A member of the next version: its handshake says so, and so does every frame it sends.
    const b = new Member({ cluster, name: 'b-next', seeds: [a.addresses[0] as string] }, {
      transport: (o, onDrop) => nextVersion(createLibp2pTransport({ cluster: o.cluster, listen: [...o.listen], maxFrameBytes: o.maxMessageBytes, wireVersion: other, onDrop }), other)
    })
    const rejected: Array<{ wireVersion: number, cluster: string }> = []
    const waiting: string[] = []
    b.on('seed-rejected', r => rejected.push(r))
    b.on('waiting', w => waiting.push(w.reason))
    members.push(b)
    await b.start()
    // Several discovery rounds, each refused: well past the join timeout that would let an
    // ordinary joiner found a group of its own.
    await waitUntil(() => (b.dropped['seed-wire-version'] ?? 0) >= 6, 15_000, 'b to be refused six times')
    expect(rejected).toEqual([expect.objectContaining({ wireVersion: WIRE_VERSION, cluster })])
    expect(waiting).toContain('incompatible')
    expect(b.view).toBeUndefined()
    expect(b.waiting).toBe('incompatible') // what /ready reports
    expect(a.view?.members.map(m => m.name)).toEqual(['a'])
    expect(a.dropped['handshake-wire-version'] ?? 0).toBeGreaterThan(0)
    // The other version is gone: b may found (or join) a group of its own version now.
    await a.stop()
    await waitUntil(() => b.view !== undefined, 15_000, 'b to found its group once no seed of another version answers')
    expect(b.view?.members.map(m => m.name)).toEqual(['b-next'])
  }, 40_000)
})
