/**
 * The member side of the endpoint registry (Fuse's fabric registry, without ZooKeeper).
 *
 * Each member owns one record: its endpoints, its start time and its current mastership epoch,
 * versioned by itself. It sends the record to every member of its view when it changes, and to
 * the members a new view adds. Observers (clients that are never candidates, observer.ts)
 * subscribe to members and get a snapshot (view + records) at once and after every change.
 *
 * Messages, on the service channel `conclave.registry` (direct, ordered, authenticated):
 *   { k: 'rec', r: RegistryRecord }          member → member: my record
 *   { k: 'sub' }                             observer → member: subscribe, or renew (every ~1 s)
 *   { k: 'unsub' }                           observer → member
 *   { k: 'snap', epoch, members, basis, masters, recs }  member → observer: my view, whether it may have masters, the records
 *
 * A subscription lapses when not renewed for SUBSCRIPTION_TTL_MS; snapshots go out only over
 * an existing connection, so a vanished observer costs nothing but a map entry until then.
 */
import type { Member } from '../member.js'
import type { View } from '../core/view.js'
import { diffMembers } from '../core/view.js'
import { validateEndpoints, validateService, validateUrl, type Endpoints } from './endpoints.js'
import { parseRecord, RegistryTable, type RegistryRecord } from './table.js'
import type { RegistrySnapshot } from './source.js'
import { internalsOf, type MemberInternals } from '../internal/member-internals.js'

export const REGISTRY_SERVICE = 'conclave.registry'
export const SUBSCRIPTION_TTL_MS = 5000
const MAX_SUBSCRIBERS = 1024

export class MemberRegistry {
  private readonly table = new RegistryTable()
  private readonly listeners = new Set<() => void>()
  /** Observer peer id → when it last subscribed or renewed (wall clock, ms). */
  private readonly subscribers = new Map<string, number>()
  private own: RegistryRecord
  private readonly internals: MemberInternals

  constructor (private readonly member: Member, endpoints: Endpoints, incarnation: number) {
    this.own = { i: incarnation, v: 1, e: endpoints, s: Date.now(), m: null }
    this.internals = internalsOf(member)
    this.internals.registerService(REGISTRY_SERVICE, (from, data) => this.receive(from, data))
    member.onViewChange(change => this.onView(change.view, change.previous))
    member.watchMastership(member.options.masters, change => {
      this.update({ m: change.isMaster ? change.epoch : null })
    })
  }

  get ownEndpoints (): Endpoints { return this.own.e }

  /** The member's incarnation as decided at start (durable state may raise it); before any record goes out. */
  setIncarnation (incarnation: number): void {
    this.own = { ...this.own, i: incarnation }
  }

  setEndpoint (service: string, url: string): void {
    validateService('service', service)
    const href = validateUrl(`endpoints.${service}`, url)
    if (this.own.e[service] === href) return
    this.update({ e: Object.freeze({ ...this.own.e, [service]: href }) })
  }

  removeEndpoint (service: string): void {
    validateService('service', service)
    if (!(service in this.own.e)) return
    const { [service]: _gone, ...rest } = this.own.e
    this.update({ e: Object.freeze(rest) })
  }

  setEndpoints (endpoints: Readonly<Record<string, string>>): void {
    this.update({ e: validateEndpoints('endpoints', endpoints) })
  }

  snapshot (): RegistrySnapshot { return this.table.snapshot(this.member.options.cluster, this.member.view) }
  endpoints (service: string): string[] { return this.table.endpoints(this.member.view, service) }
  /** Undefined also while the view may not have masters (a minority side under `majority`). */
  masterEndpoint (service: string): string | undefined {
    return this.member.quorum === 'ok' ? this.table.masterEndpoint(this.member.view, service) : undefined
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private update (change: Partial<Pick<RegistryRecord, 'e' | 'm'>>): void {
    this.own = { ...this.own, ...change, v: this.own.v + 1 }
    const view = this.member.view
    if (view === undefined || !this.member.running) return
    this.table.merge(this.member.id, this.own)
    for (const m of view.members) if (m.id !== this.member.id) this.internals.sendService(m.id, REGISTRY_SERVICE, { k: 'rec', r: this.own })
    this.changed()
  }

  private onView (view: View, previous: View | undefined): void {
    this.table.merge(this.member.id, this.own)
    this.table.retain(view)
    // Members new to us get our record; a joiner's first view makes everyone new to it.
    for (const m of diffMembers(previous, view).joined) {
      if (m.id !== this.member.id) this.internals.sendService(m.id, REGISTRY_SERVICE, { k: 'rec', r: this.own })
    }
    this.changed()
  }

  private receive (from: string, data: unknown): void {
    if (typeof data !== 'object' || data === null) { this.internals.countDrop('registry-invalid', from); return }
    const msg = data as Record<string, unknown>
    switch (msg.k) {
      case 'rec': {
        const record = parseRecord(msg.r)
        if (record === undefined) { this.internals.countDrop('registry-invalid', from); return }
        if (this.table.merge(from, record)) this.changed()
        return
      }
      case 'sub':
        if (!this.subscribers.has(from) && this.subscribers.size >= MAX_SUBSCRIBERS) { this.internals.countDrop('registry-subscribers-full', from); return }
        this.subscribers.set(from, Date.now())
        this.sendSnapshot(from)
        return
      case 'unsub':
        this.subscribers.delete(from)
        return
      default:
        this.internals.countDrop('registry-invalid', from)
    }
  }

  private changed (): void {
    const now = Date.now()
    for (const [peer, seen] of this.subscribers) {
      if (now - seen > SUBSCRIPTION_TTL_MS) this.subscribers.delete(peer)
      else this.sendSnapshot(peer)
    }
    for (const listener of [...this.listeners]) {
      try { listener() } catch (err) { setImmediate(() => { throw err }) }
    }
  }

  private sendSnapshot (peer: string): void {
    const view = this.member.view
    if (view === undefined) return
    this.internals.sendService(peer, REGISTRY_SERVICE, { k: 'snap', epoch: view.id.epoch, members: view.members, basis: view.basis, masters: this.member.quorum === 'ok', recs: this.table.recordsOf(view) }, { onlyIfConnected: true })
  }
}
