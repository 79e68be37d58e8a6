/**
 * The wire format: one versioned msgpackr map per frame, validated after decoding.
 *
 * Frame: `{ v: WIRE_VERSION, c: <cluster>, t: <type>, ...fields }`. Plain maps only: msgpackr's
 * record extension assumes the decoder saw earlier frames, which gossip cannot promise (trap 16).
 * Decoding never throws: a bad frame comes back as `{ ok: false, reason }` for counting.
 */
import { Packr } from 'msgpackr'
import type { MemberRecord, Metadata } from '../core/member.js'
import { MESSAGE_TYPES, type ProtocolMessage, type ViewSummary } from '../core/messages.js'
import { MAX_CANDIDATES, type Candidate } from '../core/quorum.js'
import { MESSAGING_TYPES, validateMessaging, type MessagingFrame } from '../messaging/wire.js'

export const WIRE_VERSION = 2

/** A message of one of Conclave's own services (the scheduler), by service name. */
export interface ServiceMessage { readonly t: 'svc', readonly s: string, readonly d: unknown }

/** Application messages travel in messaging frames (messaging/wire.ts), their payloads encoded by encodePayload. */
export type WireMessage = ProtocolMessage | ServiceMessage | MessagingFrame

export type DecodeResult =
  | { readonly ok: true, readonly msg: WireMessage }
  | { readonly ok: false, readonly reason: DropReason }

export type DropReason = 'oversized' | 'malformed' | 'unknown-version' | 'foreign-cluster' | 'unknown-type' | 'invalid'

const LIMITS = { members: 1024, addrs: 32, string: 1024, metaKeys: 64 }

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

/** Encodes an application payload (checked by payload.ts first) for a data frame. */
export function encodePayload (value: unknown): Uint8Array {
  return packr.pack(value)
}

export function decodePayload (bin: Uint8Array): { readonly ok: true, readonly value: unknown } | { readonly ok: false, readonly value?: undefined } {
  try {
    return { ok: true, value: packr.unpack(bin) }
  } catch {
    return { ok: false }
  }
}

export class Codec {
  constructor (readonly cluster: string, readonly maxBytes: number) {}

  encode (msg: WireMessage): Uint8Array {
    return packr.pack({ v: WIRE_VERSION, c: this.cluster, ...msg })
  }

  decode (frame: Uint8Array): DecodeResult {
    if (frame.byteLength > this.maxBytes) return { ok: false, reason: 'oversized' }
    let raw: unknown
    try {
      raw = packr.unpack(frame)
    } catch {
      return { ok: false, reason: 'malformed' }
    }
    if (!isObject(raw)) return { ok: false, reason: 'malformed' }
    if (raw.v !== WIRE_VERSION) return { ok: false, reason: 'unknown-version' }
    if (raw.c !== this.cluster) return { ok: false, reason: 'foreign-cluster' }
    const t = raw.t
    if (t === 'svc') return str(raw.s) ? { ok: true, msg: { t: 'svc', s: raw.s, d: raw.d } } : { ok: false, reason: 'invalid' }
    if ((MESSAGING_TYPES as readonly unknown[]).includes(t)) {
      const m = validateMessaging(t as MessagingFrame['t'], raw)
      return m === undefined ? { ok: false, reason: 'invalid' } : { ok: true, msg: m }
    }
    if (typeof t !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(t)) return { ok: false, reason: 'unknown-type' }
    const msg = validate(t as ProtocolMessage['t'], raw)
    return msg === undefined ? { ok: false, reason: 'invalid' } : { ok: true, msg }
  }
}

function validate (t: ProtocolMessage['t'], r: Record<string, unknown>): ProtocolMessage | undefined {
  switch (t) {
    case 'hello': {
      const from = record(r.from)
      const view = r.view === undefined ? undefined : summary(r.view)
      if (from === undefined || !epoch(r.maxEpoch) || (r.view !== undefined && view === undefined)) return undefined
      return { t, from, maxEpoch: r.maxEpoch, ...(view !== undefined ? { view } : {}) }
    }
    case 'join': {
      const from = record(r.from)
      return from !== undefined && epoch(r.maxEpoch) ? { t, from, maxEpoch: r.maxEpoch } : undefined
    }
    case 'merge':
    case 'foreign':
    case 'not-member': {
      const view = summary(r.view)
      return view === undefined ? undefined : { t, view }
    }
    case 'propose': {
      const members = records(r.members)
      return members !== undefined && epoch(r.epoch) && finite(r.ts) ? { t, epoch: r.epoch, members, ts: r.ts } : undefined
    }
    case 'commit': {
      const members = records(r.members)
      const b = r.basis === undefined ? undefined : basis(r.basis)
      if (members === undefined || !epoch(r.epoch) || b === false) return undefined
      return { t, epoch: r.epoch, members, ...(b !== undefined ? { basis: b } : {}) }
    }
    case 'ack': {
      const known = r.known === undefined ? undefined : basis(r.known)
      if (!epoch(r.epoch) || !finite(r.echo) || known === false) return undefined
      return { t, epoch: r.epoch, echo: r.echo, ...(known !== undefined ? { known } : {}) }
    }
    case 'nack': {
      const view = r.view === undefined ? undefined : summary(r.view)
      if (!epoch(r.epoch) || (r.view !== undefined && view === undefined)) return undefined
      return { t, epoch: r.epoch, ...(view !== undefined ? { view } : {}) }
    }
    case 'leave': return epoch(r.epoch) ? { t, epoch: r.epoch } : undefined
    case 'hb':
      if (!epoch(r.epoch) || !finite(r.ts) || !finiteOrNever(r.echo) || (r.reply !== undefined && r.reply !== true)) return undefined
      return r.reply === true ? { t, epoch: r.epoch, ts: r.ts, echo: r.echo, reply: true } : { t, epoch: r.epoch, ts: r.ts, echo: r.echo }
    case 'probe': return finite(r.nonce) ? { t, nonce: r.nonce } : undefined
    case 'probe-ack': return finite(r.nonce) && epoch(r.epoch) ? { t, nonce: r.nonce, epoch: r.epoch } : undefined
    case 'suspect': return str(r.id) ? { t, id: r.id } : undefined
  }
}

/** Validates a view summary from outside the protocol (a registry snapshot); undefined when invalid. */
export function parseViewSummary (v: unknown): ViewSummary | undefined {
  return summary(v)
}

function summary (v: unknown): ViewSummary | undefined {
  if (!isObject(v) || !epoch(v.epoch)) return undefined
  const members = records(v.members)
  const b = v.basis === undefined ? undefined : basis(v.basis)
  if (members === undefined || members.length === 0 || b === false) return undefined
  return { epoch: v.epoch, members, ...(b !== undefined ? { basis: b } : {}) }
}

/** A basis: at most MAX_CANDIDATES candidates, each distinct member ids, an epoch and a settled flag; false when malformed. */
function basis (v: unknown): Candidate[] | false {
  if (!Array.isArray(v) || v.length > MAX_CANDIDATES) return false
  const out: Candidate[] = []
  for (const c of v) {
    if (!isObject(c) || !epoch(c.epoch) || typeof c.settled !== 'boolean') return false
    const ids = c.ids
    if (!Array.isArray(ids) || ids.length > LIMITS.members || !ids.every(id => str(id) && id.length > 0)) return false
    if (new Set(ids).size !== ids.length) return false
    out.push({ ids: ids as string[], epoch: c.epoch, settled: c.settled })
  }
  return out
}

function records (v: unknown): MemberRecord[] | undefined {
  if (!Array.isArray(v) || v.length > LIMITS.members) return undefined
  const out: MemberRecord[] = []
  const seen = new Set<string>()
  for (const item of v) {
    const m = record(item)
    if (m === undefined || seen.has(m.id)) return undefined
    seen.add(m.id)
    out.push(m)
  }
  return out
}

function record (v: unknown): MemberRecord | undefined {
  if (!isObject(v)) return undefined
  const { id, name, incarnation, joinEpoch, addrs, meta } = v
  if (!str(id) || id.length === 0 || typeof name !== 'string' || name.length > LIMITS.string) return undefined
  if (!finite(incarnation) || !epoch(joinEpoch)) return undefined
  if (!Array.isArray(addrs) || addrs.length > LIMITS.addrs || !addrs.every(str)) return undefined
  const metadata = meta === undefined ? {} : metaOf(meta)
  if (metadata === undefined) return undefined
  return { id, name, incarnation, joinEpoch, addrs: addrs as string[], meta: metadata }
}

function metaOf (v: unknown): Metadata | undefined {
  if (!isObject(v)) return undefined
  const keys = Object.keys(v)
  if (keys.length > LIMITS.metaKeys) return undefined
  const out: Record<string, string | number | boolean> = {}
  for (const k of keys) {
    const x = v[k]
    if (typeof x === 'string' ? x.length > LIMITS.string : typeof x !== 'number' && typeof x !== 'boolean') return undefined
    out[k] = x as string | number | boolean
  }
  return out
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}
function str (v: unknown): v is string { return typeof v === 'string' && v.length <= LIMITS.string }
function finite (v: unknown): v is number { return typeof v === 'number' && Number.isFinite(v) }
function finiteOrNever (v: unknown): v is number { return typeof v === 'number' && (Number.isFinite(v) || v === Number.NEGATIVE_INFINITY) }
function epoch (v: unknown): v is number { return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 }
