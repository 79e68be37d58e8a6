/**
 * An observer: a process that joins a cluster as a client. It sees the view and every member's
 * endpoints, and is never a candidate: it is not in any view, so it never becomes master and
 * never counts for mastership or quorum, however long it has been running (JGroups clients,
 * Akka's cluster client).
 *
 * It dials the seeds, subscribes to every member it can reach (registry.ts) and keeps the
 * newest view it hears of (highest epoch). Subscribing to all members, not one, means the loss
 * of any member — the master included — leaves others to report the view without it. It renews
 * the subscriptions every `renewIntervalMs` and dials the view's members it is not connected
 * to; while it reaches no one it re-dials the seeds.
 */
import { EventEmitter } from 'node:events'
import { boundedEvents, highWaterMarkOf, type IterateOptions } from '../internal/bounded-events.js'
import { Codec, WIRE_VERSION, parseViewSummary } from '../transport/codec.js'
import { createLibp2pTransport } from '../transport/libp2p.js'
import type { Transport } from '../transport/transport.js'
import { makeView, type View } from '../core/view.js'
import { rejectUnknownKeys, resolveOptions, type MemberOptions } from '../options.js'
import { SeedSet, pick } from '../discovery/seed-set.js'
import type { ClusterKey } from '../security/cluster-key.js'
import { InvalidOptionError, NotRunningError, TimeoutError } from '../errors.js'
import { parseRecord, RegistryTable } from './table.js'
import { REGISTRY_SERVICE } from './registry.js'
import type { EndpointSource, RegistrySnapshot } from './source.js'

export interface ObserverOptions {
  /** The cluster to observe. */
  cluster: string
  /** Members to reach it through, as a member's `seeds` (addresses, host names, SRV names); at least one. */
  seeds: readonly string[]
  /** How host-name and SRV seeds are resolved, as a member's `dns` option. */
  dns?: MemberOptions['dns']
  /** Where to listen (members may dial back). @default '127.0.0.1:0' */
  listen?: string | readonly string[]
  /** How often subscriptions are renewed and unreached members dialled, ms. @default 1000 */
  renewIntervalMs?: number
  /** Largest frame accepted, in bytes. @default 1048576 */
  maxMessageBytes?: number
  /** The cluster's key, when it has one (see MemberOptions.clusterKey). */
  clusterKey?: ClusterKey | string | Uint8Array
}

export interface ObserverEvents {
  /** A newer view arrived. */
  view: [{ readonly view: View, readonly previous: View | undefined }]
  /** The view or an endpoint changed. */
  registry: [RegistrySnapshot]
  dropped: [{ readonly reason: string, readonly from: string | undefined }]
}

type Listener<A extends unknown[]> = (...args: A) => void

/** Every key ObserverOptions has: a misspelt one (`seed`) would otherwise be ignored in silence. */
const OBSERVER_OPTION_KEYS: Record<keyof ObserverOptions, true> = { cluster: true, seeds: true, dns: true, listen: true, renewIntervalMs: true, maxMessageBytes: true, clusterKey: true }

const STOPPED = 'the observer has stopped (create a new one)'

export class Observer implements EndpointSource {
  readonly cluster: string
  private readonly seeds: SeedSet
  private readonly renewIntervalMs: number
  private readonly codec: Codec
  private readonly transport: Transport
  private readonly table = new RegistryTable()
  private readonly emitter = new EventEmitter()
  private readonly connected = new Set<string>()
  private currentView: View | undefined
  /** Whether the view we follow may have masters, as its members say (false: a side without quorum). */
  private viewHasMasters = true
  private timer: NodeJS.Timeout | undefined
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new'
  private starting: Promise<void> | undefined
  private stopping: Promise<void> | undefined
  /** Set by stop() during start(): the start stops what it started and rejects. */
  private stopRequested = false
  /** Aborted once the observer has stopped (or failed to start): waits settle, iterators end. */
  private readonly lifetime = new AbortController()
  /** Counts of dropped input by reason. */
  readonly dropped: Record<string, number> = {}

  constructor (options: ObserverOptions) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new InvalidOptionError('options', 'an object', options)
    rejectUnknownKeys(options, Object.keys(OBSERVER_OPTION_KEYS))
    const { renewIntervalMs = 1000, seeds, ...rest } = options
    if (!Array.isArray(seeds) || seeds.length === 0) throw new InvalidOptionError('seeds', 'at least one "host:port" or multiaddr of a member', seeds)
    if (typeof renewIntervalMs !== 'number' || !Number.isFinite(renewIntervalMs) || renewIntervalMs < 10 || renewIntervalMs > 60_000) {
      throw new InvalidOptionError('renewIntervalMs', 'a number of milliseconds from 10 to 60000', renewIntervalMs)
    }
    // Same validation as a member's options, so both name bad input the same way.
    const resolved = resolveOptions({ ...rest, seeds })
    this.cluster = resolved.cluster
    this.seeds = new SeedSet(resolved.seeds, resolved.dns)
    this.renewIntervalMs = renewIntervalMs
    this.codec = new Codec(resolved.cluster, resolved.maxMessageBytes)
    this.transport = createLibp2pTransport({
      cluster: resolved.cluster,
      listen: [...resolved.listen],
      maxFrameBytes: resolved.maxMessageBytes,
      datagrams: false, // an observer sends no heartbeats
      wireVersion: WIRE_VERSION,
      ...(resolved.clusterKey !== undefined ? { psk: resolved.clusterKey.fileBytes() } : {}),
      onDrop: reason => { if (!reason.startsWith('send') && !reason.startsWith('publish') && !reason.startsWith('outbound')) this.countDrop(reason, undefined) }
    })
    this.emitter.setMaxListeners(0)
  }

  get id (): string { return this.transport.id }
  get view (): View | undefined { return this.currentView }
  get running (): boolean { return this.state === 'running' }
  /** Whether this observer has stopped, or failed to start: it never runs again (EndpointSource). */
  get stopped (): boolean { return this.lifetime.signal.aborted }

  registry (): RegistrySnapshot { return this.table.snapshot(this.cluster, this.currentView) }
  endpoints (service: string): string[] { return this.table.endpoints(this.currentView, service) }
  masterEndpoint (service: string): string | undefined { return this.viewHasMasters ? this.table.masterEndpoint(this.currentView, service) : undefined }

  /** Calls `listener` after every change of the view or of an endpoint; NotRunningError once stopped. */
  onRegistryChange (listener: () => void): () => void {
    if (this.state === 'stopping' || this.state === 'stopped') throw new NotRunningError('watch the registry', STOPPED)
    this.emitter.on('registry', listener)
    return () => { this.emitter.off('registry', listener) }
  }

  /**
   * Calls `listener` once when this observer has stopped or its start has failed (not when that
   * has happened already: check `stopped`). Returns a function that unsubscribes.
   */
  onStop (listener: () => void): () => void {
    const signal = this.lifetime.signal
    const run = (): void => {
      try { listener() } catch (err) { setImmediate(() => { throw err }) }
    }
    signal.addEventListener('abort', run, { once: true })
    return () => { signal.removeEventListener('abort', run) }
  }

  on<E extends keyof ObserverEvents>(event: E, listener: Listener<ObserverEvents[E]>): this {
    this.emitter.on(event, listener as Listener<unknown[]>)
    return this
  }

  off<E extends keyof ObserverEvents>(event: E, listener: Listener<ObserverEvents[E]>): this {
    this.emitter.off(event, listener as Listener<unknown[]>)
    return this
  }

  /**
   * Starts listening and dials the seeds. Idempotent while starting or running. Rejects with
   * ListenError when it cannot listen, and with NotRunningError after stop() (also a stop()
   * that came while it was starting): an observer is not restarted, a new one is created.
   */
  async start (): Promise<void> {
    if (this.state === 'starting') { await this.starting; return }
    if (this.state === 'running') return
    if (this.state !== 'new') throw new NotRunningError('start an observer', STOPPED)
    this.starting = this.doStart()
    await this.starting
  }

  private async doStart (): Promise<void> {
    this.state = 'starting'
    try {
      await this.transport.start({
        onConnected: peer => { this.connected.add(peer); this.subscribe(peer) },
        onDisconnected: peer => { this.connected.delete(peer) },
        onDialFailed: () => {},
        onDirect: (peer, frame) => this.onFrame(peer, frame),
        onGroup: () => {} // broadcasts are for members; an observer only reads the registry
      })
    } catch (err) {
      this.finish()
      throw err
    }
    if (this.stopRequested) {
      await this.transport.stop()
      this.finish()
      throw new NotRunningError('start an observer', 'it was stopped while starting')
    }
    await this.seeds.refresh()
    this.state = 'running'
    this.dialSeeds()
    this.timer = setInterval(() => this.renew(), this.renewIntervalMs)
  }

  /**
   * Unsubscribes and closes every connection; leaves no timer or socket. Pending waits reject
   * with NotRunningError and iterators end. During start(), the start rejects. Idempotent.
   */
  async stop (): Promise<void> {
    this.stopping ??= this.doStop()
    await this.stopping
  }

  private async doStop (): Promise<void> {
    if (this.state === 'starting') {
      // The start sees the request once its transport is up, and stops it (see doStart).
      this.stopRequested = true
      await this.starting?.catch(() => {})
    }
    if (this.state === 'running') {
      this.state = 'stopping'
      this.seeds.stop()
      if (this.timer !== undefined) clearInterval(this.timer)
      this.timer = undefined
      for (const peer of this.connected) this.sendRegistry(peer, { k: 'unsub' })
      await new Promise(resolve => setTimeout(resolve, 10)) // let the unsubscriptions leave
      await this.transport.stop()
    }
    this.finish()
  }

  /** The end of the observer's life, after a stop or a failed start. */
  private finish (): void {
    this.state = 'stopped'
    this.connected.clear()
    this.lifetime.abort()
  }

  /**
   * Resolves with the first view (the current one included) that satisfies `predicate`. Rejects
   * with TimeoutError after `timeoutMs`, with `signal`'s reason when it aborts, and with
   * NotRunningError when the observer stops first (or has stopped).
   */
  async waitForView (predicate: (view: View) => boolean = () => true, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<View> {
    if (this.lifetime.signal.aborted || this.state === 'stopping') throw new NotRunningError('wait for a view', STOPPED)
    const current = this.currentView
    if (current !== undefined && predicate(current)) return current
    const lifetime = this.lifetime.signal
    return await new Promise<View>((resolve, reject) => {
      let timeout: NodeJS.Timeout | undefined
      const done = (): void => {
        this.off('view', onView)
        clearTimeout(timeout)
        opts.signal?.removeEventListener('abort', onAbort)
        lifetime.removeEventListener('abort', onStopped)
      }
      const onView = ({ view }: { view: View }): void => { if (predicate(view)) { done(); resolve(view) } }
      const onAbort = (): void => { done(); reject(opts.signal?.reason) }
      const onStopped = (): void => { done(); reject(new NotRunningError('wait for a view', STOPPED)) }
      if (opts.signal?.aborted === true) { onAbort(); return }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      lifetime.addEventListener('abort', onStopped, { once: true })
      if (opts.timeoutMs !== undefined) timeout = setTimeout(() => { done(); reject(new TimeoutError(`a view of cluster "${this.cluster}"`, opts.timeoutMs as number)) }, opts.timeoutMs)
      this.on('view', onView)
    })
  }

  /**
   * Every newer view from now on, until `signal` aborts or the observer stops (at once if it
   * has). Bounded: a consumer `highWaterMark` (10,000) views behind gets IteratorOverflowError.
   */
  views (opts: IterateOptions = {}): AsyncGenerator<{ readonly view: View, readonly previous: View | undefined }> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('opts', 'an object such as { signal }', opts)
    rejectUnknownKeys(opts, ['signal', 'highWaterMark'])
    const hwm = highWaterMarkOf(opts)
    const signal = opts.signal === undefined ? this.lifetime.signal : AbortSignal.any([opts.signal, this.lifetime.signal])
    return boundedEvents<{ readonly view: View, readonly previous: View | undefined }>(this.emitter, 'view', signal, hwm, 'observer.views()')
  }

  private subscribe (peer: string): void { this.sendRegistry(peer, { k: 'sub' }) }

  private sendRegistry (peer: string, data: unknown): void {
    this.transport.send(peer, this.codec.encode({ t: 'svc', s: REGISTRY_SERVICE, d: data }), { onlyIfConnected: true })
  }

  private renew (): void {
    if (this.state !== 'running') return
    for (const peer of this.connected) this.subscribe(peer)
    for (const m of this.currentView?.members ?? []) {
      if (!this.connected.has(m.id)) this.transport.dial({ peer: m.id, addresses: m.addrs })
    }
    if (this.connected.size === 0) {
      this.seeds.refresh().then(() => { if (this.connected.size === 0) this.dialSeeds() }, () => {})
    }
  }

  /** A few of the seed addresses (a DNS name may answer with hundreds). */
  private dialSeeds (): void {
    if (this.state !== 'running') return
    for (const seed of pick(this.seeds.addresses(), 16)) this.transport.dial({ addresses: [seed] })
  }

  private onFrame (peer: string, frame: Uint8Array): void {
    if (this.state !== 'running') return
    const decoded = this.codec.decode(frame)
    if (!decoded.ok) { this.countDrop(decoded.reason, peer); return }
    const msg = decoded.msg
    // Members greet every connection with protocol messages (hello); an observer ignores them.
    if (msg.t !== 'svc') return
    if (msg.s !== REGISTRY_SERVICE) { this.countDrop('unknown-service', peer); return }
    const d = msg.d as Record<string, unknown> | null
    if (typeof d !== 'object' || d === null || d.k !== 'snap') { this.countDrop('registry-invalid', peer); return }
    this.applySnapshot(peer, d)
  }

  private applySnapshot (peer: string, d: Record<string, unknown>): void {
    const summary = parseViewSummary({ epoch: d.epoch, members: d.members, basis: d.basis })
    const recs = typeof d.recs === 'object' && d.recs !== null && !Array.isArray(d.recs) ? d.recs as Record<string, unknown> : undefined
    if (summary === undefined || recs === undefined) { this.countDrop('registry-invalid', peer); return }
    let changed = false
    const previous = this.currentView
    // Only a newer view replaces ours: a member resuming from a pause reports an old one.
    if (previous === undefined || summary.epoch > previous.id.epoch) {
      this.currentView = makeView(summary.epoch, summary.members, summary.basis)
      this.viewHasMasters = d.masters !== false
      changed = true
    }
    if (summary.epoch >= (this.currentView?.id.epoch ?? 0)) {
      for (const [id, raw] of Object.entries(recs)) {
        const record = parseRecord(raw)
        if (record === undefined) { this.countDrop('registry-invalid', peer); return }
        if (this.table.merge(id, record)) changed = true
      }
    }
    if (!changed) return
    const view = this.currentView as View
    if (view !== previous) {
      this.table.retain(view)
      // Reach every member, so any survivor can report the next view.
      for (const m of view.members) if (!this.connected.has(m.id)) this.transport.dial({ peer: m.id, addresses: m.addrs })
      this.emit('view', { view, previous })
    }
    this.emit('registry', this.registry())
  }

  private countDrop (reason: string, from: string | undefined): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1
    this.emit('dropped', { reason, from })
  }

  private emit<E extends keyof ObserverEvents>(event: E, ...args: ObserverEvents[E]): void {
    try {
      this.emitter.emit(event, ...args)
    } catch (err) {
      setImmediate(() => { throw err })
    }
  }
}

/** Creates and starts an observer of `cluster`. */
export async function createObserver (options: ObserverOptions): Promise<Observer> {
  const observer = new Observer(options)
  await observer.start()
  return observer
}
