/**
 * The registry table: each member's own record (endpoints, start time, mastership), newest
 * version wins, looked up in view order. Members and observers keep one each.
 *
 * A record is owned and versioned by its member alone, so merging needs no agreement: the
 * higher (incarnation, version) wins, and the view decides who is listed and in which order.
 * Endpoints are therefore eventually consistent with the view: a joiner's endpoints arrive a
 * moment after the view that admits it, which is harmless for masters, who are the oldest.
 */
import type { View } from '../core/view.js'
import { parseEndpoints, type Endpoints } from './endpoints.js'
import type { RegistryEntry, RegistrySnapshot } from './source.js'

/** One member's record as it travels (plain map; see codec.ts on msgpackr records). */
export interface RegistryRecord {
  /** The member's incarnation: a restart with the same id starts over with a higher one. */
  readonly i: number
  /** Version, counted up by the member at each change. */
  readonly v: number
  /** Endpoints: service → URL. */
  readonly e: Endpoints
  /** When the member started, Unix ms. */
  readonly s: number
  /** The epoch of its current mastership grant, or null when it is not master. */
  readonly m: number | null
}

const MAX_RECORDS = 4096

export function parseRecord (raw: unknown): RegistryRecord | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined
  const r = raw as Record<string, unknown>
  const int = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  if (!int(r.i) || !int(r.v) || !int(r.s) || !(r.m === null || int(r.m))) return undefined
  const e = parseEndpoints(r.e)
  return e === undefined ? undefined : { i: r.i, v: r.v, e, s: r.s, m: r.m }
}

export function newer (a: RegistryRecord, b: RegistryRecord | undefined): boolean {
  return b === undefined || a.i > b.i || (a.i === b.i && a.v > b.v)
}

export class RegistryTable {
  private readonly records = new Map<string, RegistryRecord>()

  get (id: string): RegistryRecord | undefined { return this.records.get(id) }

  /** Keeps `record` if it is newer than what we hold; returns whether it changed anything. */
  merge (id: string, record: RegistryRecord): boolean {
    if (!newer(record, this.records.get(id))) return false
    // Bounded: records of ids that never make it into a view cannot grow without limit.
    if (!this.records.has(id) && this.records.size >= MAX_RECORDS) return false
    this.records.set(id, record)
    return true
  }

  /** Forgets the records of members not in `view` (they left or were excluded). */
  retain (view: View): void {
    const ids = new Set(view.members.map(m => m.id))
    for (const id of this.records.keys()) if (!ids.has(id)) this.records.delete(id)
  }

  /** The records of `view`'s members, for a snapshot on the wire. */
  recordsOf (view: View): Record<string, RegistryRecord> {
    const out: Record<string, RegistryRecord> = {}
    for (const m of view.members) {
      const r = this.records.get(m.id)
      if (r !== undefined) out[m.id] = r
    }
    return out
  }

  snapshot (cluster: string, view: View | undefined): RegistrySnapshot {
    const members: RegistryEntry[] = (view?.members ?? []).map((m, rank) => {
      const r = this.records.get(m.id)
      return { id: m.id, name: m.name, rank, addrs: m.addrs, endpoints: r?.e ?? {}, startedAt: r?.s, masterEpoch: r?.m ?? undefined }
    })
    return { cluster, view, members }
  }

  endpoints (view: View | undefined, service: string): string[] {
    const out: string[] = []
    for (const m of view?.members ?? []) {
      const url = this.records.get(m.id)?.e[service]
      if (url !== undefined) out.push(url)
    }
    return out
  }

  /** The coordinator's URL for `service`: the master of `masters: 1`. */
  masterEndpoint (view: View | undefined, service: string): string | undefined {
    const first = view?.members[0]
    return first === undefined ? undefined : this.records.get(first.id)?.e[service]
  }
}
