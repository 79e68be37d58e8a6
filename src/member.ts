/**
 * The shell around the membership core: the one place that owns a timer, the transport, the
 * codec and event dispatch. It feeds the core time, messages and connection changes, and
 * carries out the effects the core returns.
 *
 * Event contract: listeners are called serially, in the order the core produced the changes,
 * never concurrently and never re-entrantly with the core. Every listener of an event is called,
 * whatever an earlier one did: one that throws neither corrupts the member nor keeps the event
 * from the listeners after it. Its error is reported as a `listener-error` event, or, when
 * nobody listens for those, rethrown on a later tick as an uncaught exception (never swallowed).
 * Conclave's own parts (registry, scheduler) hear of view changes through `onViewChange`, which
 * runs before any user listener, so a user listener can never starve them.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import { performance } from 'node:perf_hooks'
import { randomInt } from 'node:crypto'
import { foundingRule, Membership } from './core/membership.js'
import type { View } from './core/view.js'
import { MemberDriver } from './runtime/driver.js'
import type { CoordinatorChange, MastershipChange, ViewChange } from './runtime/changes.js'
import type { Basis, NoQuorumReason } from './core/quorum.js'
import { MASTERSHIP_SERVICE, type DualMasterDetected } from './policies/dual-master.js'
import type { MemberRecord } from './core/member.js'
import { Codec, WIRE_VERSION, decodePayload, encodePayload, type DropReason } from './transport/codec.js'
import { peerLimits, type PeerLimits } from './security/rate-limit.js'
import { log, logEvent } from './log.js'
import type { Transport, TransportHandlers } from './transport/transport.js'
import { createLibp2pTransport } from './transport/libp2p.js'
import { newPeerKey } from './transport/peer-key.js'
import { DurableState, type StateDirError } from './state/durable-state.js'
import { Messaging } from './messaging/messaging.js'
import { boundedEvents, highWaterMarkOf, type IterateOptions } from './internal/bounded-events.js'
import { FRAME_OVERHEAD, isControlFrame, isMessagingFrame } from './messaging/wire.js'
import { rejectUnknownKeys, resolveOptions, type MemberOptions, type ResolvedOptions } from './options.js'
import { InvalidOptionError, MessageTooLargeError, NotInViewError, NotRunningError, StateTransferError, TimeoutError } from './errors.js'
import { checkPayload } from './transport/payload.js'
import { internalsOf, setInternals } from './internal/member-internals.js'
import { addRoute, type Route, type RouteDefinition } from './policies/route-policy.js'
import { masterOnly, masterOnlyStamped, mastershipChanges, type FilterOptions, type Stamped } from './policies/filter.js'
import { MemberRegistry } from './registry/registry.js'
import type { Endpoints } from './registry/endpoints.js'
import type { EndpointSource, RegistrySnapshot } from './registry/source.js'
import { StateTransfer, type StateHandlers, type StateRestored } from './messaging/state-transfer.js'
import { STATE_SERVICE } from './messaging/state-wire.js'
import type { WaitingReason } from './core/effects.js'
import { SeedSet, pick, withoutOwn, type SeedResolutionFailure } from './discovery/seed-set.js'
import { LocalDiscovery, mdnsServiceTag } from './discovery/local-discovery.js'
import { Rpc, type RequestAllEntry, type RequestAllOptions, type RequestOptions, type RpcHandler } from './messaging/rpc.js'
import { installScheduler, schedule, type ScheduledJob, type ScheduleOptions, type ScheduleSpec, type SchedulerHost, type TickContext } from './policies/scheduler.js'

export type { ViewChange, CoordinatorChange, MastershipReason, MastershipChange } from './runtime/changes.js'

export interface Message {
  readonly from: string
  readonly payload: unknown
  /** `direct` for `send()`, `group` for `broadcast()`. */
  readonly channel: 'direct' | 'group'
  /** The epoch of the sender's view when it sent the message (the view it was sent in). */
  readonly epoch: number
}

/** Options of `send()`. */
export interface SendOptions {
  /** Reject with TimeoutError when the receiver has not confirmed within this long. Default 30 s. */
  readonly timeoutMs?: number
}

export interface MemberEvents {
  /** A new view was installed. */
  view: [ViewChange]
  /** This member started or stopped coordinating. */
  coordinator: [CoordinatorChange]
  /** This member became or stopped being one of the first `masters` members (with a live lease). */
  mastership: [MastershipChange]
  /** An application message from another member. */
  message: [Message]
  /** A member is suspected (silence or closed connection) and being verified. */
  suspect: [{ readonly id: string, readonly reason: 'silence' | 'disconnect' }]
  /** A suspicion was disproved: the member answered. */
  refuted: [{ readonly id: string }]
  /** This member was removed from the group (a false suspicion or a pause) and is rejoining. */
  excluded: [{ readonly by: string, readonly previous: View | undefined }]
  /** Input from the network was dropped. */
  dropped: [{ readonly reason: string, readonly from: string | undefined }]
  /**
   * Members of an earlier view of ours, the same processes (same incarnation), are back in the
   * view: a healed partition merged, or a member excluded for silence rejoined. `rejoined`
   * lists them; on the side that was absorbed, it lists the other side's members.
   */
  merge: [{ readonly view: View, readonly rejoined: readonly MemberRecord[] }]
  /**
   * A member announced itself master where our view expects another (policies/dual-master.ts):
   * another group has masters while ours does (a split brain), or a member of our view
   * claims a rank that is not its own.
   */
  'split-brain': [DualMasterDetected]
  /**
   * The view reached this member's `maxConnections`: as coordinator it did not admit `refused`
   * (a joiner, or the coordinator of a group that asked to merge in), which keeps waiting; or
   * it was admitted to a view of `members` members by a coordinator with a higher limit
   * (`refused` undefined). Nothing in the view is dropped. At most once a second.
   */
  'connection-limit': [{ readonly limit: number, readonly members: number, readonly refused: string | undefined }]
  /**
   * A seed answered the handshake as a member of another cluster (or with another wire
   * version): this member will not join through it (docs/security.md, cluster isolation).
   */
  'seed-rejected': [{ readonly address: string, readonly peer: string, readonly cluster: string, readonly wireVersion: number }]
  /** A host-name or SRV seed resolved to other addresses than before (the first answer too). */
  'seeds-resolved': [{ readonly seed: string, readonly addresses: readonly string[] }]
  /**
   * A host-name or SRV seed could not be resolved (`code`: ENOTFOUND, ETIMEOUT, ...); reported
   * when it starts failing and when the code changes. Retried every `dns.refreshMs`; a name that
   * does not exist has no addresses, any other failure keeps the last answer.
   */
  'seed-resolve-failed': [SeedResolutionFailure]
  /**
   * A heartbeat reply arrived: `ms` since this member sent the heartbeat it answers. Emitted only
   * while someone listens (metrics do: observability/metrics.ts).
   */
  'heartbeat-rtt': [{ readonly peer: string, readonly ms: number }]
  /**
   * This member found no group to join and the bootstrap rule does not let it found one (the
   * `bootstrap` option): it has no view, hence no masters, and keeps trying its seeds.
   * `'may-not-found'`: it has seeds under `majority` or a quorum; `'expecting'`: fewer than
   * `bootstrap.expect` members that know of no group are in contact (`joiners`, besides itself);
   * `'incompatible'`: a seed of this cluster speaks another wire version (a group of another
   * Conclave version lives there; see `seed-rejected`), and founding a second group next to it
   * would give the cluster two sets of masters.
   */
  waiting: [{ readonly reason: WaitingReason, readonly joiners: number, readonly expect: number | undefined }]
  /**
   * Durable state (`stateDir`) could not be written: the member can no longer keep its promises
   * across a restart, so it stops acting as master at once and leaves the group.
   */
  'state-failed': [{ readonly error: StateDirError }]
  /** This member holds the group's state (the `state` option; see `waitForState`). */
  'state-restored': [StateRestored]
  /** State transfer to this joiner failed (a `restore` that threw, ...): it leaves the group. */
  'state-transfer-failed': [{ readonly error: StateTransferError }]
  /** The member left the group and closed its transport. */
  stopped: []
  /**
   * A listener of `event` threw `error`; the other listeners were still called. Without a
   * listener for this event, the error is rethrown on a later tick (an uncaught exception).
   */
  'listener-error': [{ readonly event: string, readonly error: unknown }]
}

export interface MemberInit {
  /** Builds the transport; defaults to libp2p. For tests and alternative networks. */
  readonly transport?: (options: ResolvedOptions, onDrop: (reason: string) => void) => Transport
  /** Monotonic milliseconds; defaults to `performance.now()`. */
  readonly clock?: () => number
  /**
   * Distinguishes restarts under the same id; defaults to the wall-clock start time (with a
   * `stateDir`, above the last run's whatever the clock says).
   */
  readonly incarnation?: number
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped'

/** How long a discovery greeting's dial may take (see the `probe` flag of a send effect): a connect and handshake take milliseconds. */
const PROBE_DIAL_TIMEOUT_MS = 300
/**
 * Seed addresses dialled per round, at most (a random choice when there are more): a DNS name
 * may answer with hundreds of records, and one of the group is enough to join it.
 */
const MAX_SEED_DIALS = 16
/** How long send() waits for the receiver's confirmation unless told otherwise. */
const DEFAULT_SEND_TIMEOUT_MS = 30_000
const RESOLVED: Promise<void> = Promise.resolve()
/** Largest chunk of a state transfer (smaller when maxMessageBytes is). */
const STATE_CHUNK_BYTES = 256 * 1024

const OUTBOUND_DROPS = new Set(['outbound-oversize', 'send-not-connected', 'send-queue-full', 'send-failed', 'send-invalid-peer', 'publish-failed', 'not-running', 'datagram-send-failed'])

/**
 * A member of a cluster: a typed EventEmitter (`MemberEvents`), so `on`, `once`, `off`,
 * `events.once(member, 'view', { signal })` and `events.on(...)` work as on any emitter.
 *
 * Events of the start are never missed by listeners attached right after `await createMember()`
 * (or `await member.start()`): everything the member emits while it starts (its founding view,
 * its first promotion) is delivered on a later turn of the event loop, after the start's promise
 * has resolved and the code that awaited it has run to its next `await`. A listener attached
 * later still sees only later changes; `view`, `isMaster()` and `isCoordinator` give the state now.
 */
export class Member extends EventEmitter<MemberEvents> implements EndpointSource {
  readonly options: ResolvedOptions
  private readonly clock: () => number
  private readonly codec: Codec
  private readonly transport: Transport
  private incarnation: number
  /** Open while running with a `stateDir`. */
  private durable: DurableState | undefined
  private core: Membership | undefined
  /** Runs the core: effects, timer, mastership (runtime/driver.ts, shared with the simulation). */
  private readonly driver: MemberDriver
  private state: State = 'new'
  /** Conclave's own consumers of view changes (see `onViewChange`). */
  private readonly viewHooks = new Set<(change: ViewChange) => void>()
  /** Conclave's own consumers of suspicions (request/response). */
  private readonly suspectHooks = new Set<(id: string) => void>()
  private readonly beforeLeave = new Set<() => Promise<void>>()
  private readonly services = new Map<string, (from: string, data: unknown) => void>()
  private seedFailures = new Set<string>()
  /** Why this member, with no view, last said it waits (the `waiting` event). */
  private lastWaiting: WaitingReason | undefined
  /** The seeds, their DNS names resolved (discovery/seed-set.ts). */
  private readonly seedSet: SeedSet
  /** What multicast DNS heard (the `mdns` option), or undefined when it is off. */
  private readonly localDiscovery: LocalDiscovery | undefined
  private seedRefreshTimer: NodeJS.Timeout | undefined
  /** The seed addresses dialled in the last round (at most MAX_SEED_DIALS of them). */
  private dialedSeeds: readonly string[] = []
  /** Seeds that answered as another cluster (reported once each). */
  private readonly rejectedSeeds = new Set<string>()
  /** When the installed view was installed (this member's clock). */
  private viewChangedAt: number | undefined
  /** The ids of `idsOf`'s view, cached per view object: rate limits ask on every frame. */
  private idsOf: { view: View | undefined, ids: Set<string> } = { view: undefined, ids: new Set() }
  private readonly limits: PeerLimits
  private stopping: Promise<void> | undefined
  private starting: Promise<void> | undefined
  /** Aborted once the member has stopped (or failed to start): waits settle, iterators end. */
  private readonly lifetime = new AbortController()
  /** Events produced while starting, delivered once the start's caller has run (see the class). */
  private held: Array<{ event: keyof MemberEvents, args: unknown[] }> | undefined
  private readonly droppedCounts: Record<string, number> = {}
  private readonly unsentCounts: Record<string, number> = {}
  /** What the scheduler needs of this member (policies/scheduler.ts). */
  private readonly schedulerHost: SchedulerHost
  private readonly registryState: MemberRegistry
  /** Reliable broadcast and acknowledged sends (messaging/). */
  private readonly messaging: Messaging
  /** View changes installed but not emitted yet: their flush is not complete (messaging/broadcast.ts). */
  private readonly unflushedViews = new Map<number, ViewChange>()
  /** Request/response (messaging/rpc.ts). */
  private readonly rpc: Rpc
  /** State transfer to a joiner (messaging/state-transfer.ts), with the `state` option. */
  private readonly stateTransfer: StateTransfer | undefined
  private readonly stateTimers = new Set<NodeJS.Timeout>()
  private readonly stateSettled = settlement<StateRestored>()
  private stateFailure: StateTransferError | undefined

  constructor (options: MemberOptions, init: MemberInit = {}) {
    super()
    this.options = resolveOptions(options)
    if (typeof init !== 'object' || init === null) throw new InvalidOptionError('init', 'an object', init)
    rejectUnknownKeys(init, ['transport', 'clock', 'incarnation'], 'init.')
    this.seedSet = new SeedSet(this.options.seeds, this.options.dns, {
      resolved: (seed, addresses) => { this.emit('seeds-resolved', { seed, addresses }) },
      failed: failure => { this.emit('seed-resolve-failed', failure) }
    })
    this.clock = init.clock ?? (() => performance.now())
    const mdns = this.options.mdns
    this.localDiscovery = mdns === undefined ? undefined : new LocalDiscovery(mdns.intervalMs, () => this.clock())
    this.incarnation = init.incarnation ?? Date.now()
    this.codec = new Codec(this.options.cluster, this.options.maxMessageBytes)
    this.limits = peerLimits(this.options.timing.retryIntervalMs)
    // The transport reports both dropped input and frames it could not send; only input counts
    // as dropped (an unsent heartbeat to a peer not yet connected is routine).
    const onDrop = (reason: string): void => {
      if (OUTBOUND_DROPS.has(reason)) this.unsentCounts[reason] = (this.unsentCounts[reason] ?? 0) + 1
      else this.#countDrop(reason, undefined)
    }
    this.transport = init.transport !== undefined
      ? init.transport(this.options, onDrop)
      : createLibp2pTransport({
        cluster: this.options.cluster,
        listen: [...this.options.listen],
        advertise: this.options.advertise,
        maxFrameBytes: this.options.maxMessageBytes,
        maxConnections: this.options.maxConnections,
        wireVersion: WIRE_VERSION,
        ...(mdns !== undefined ? { mdns: { serviceTag: mdnsServiceTag(this.options.cluster), intervalMs: mdns.intervalMs } } : {}),
        onDrop,
        // A seed that has not answered within the join timeout counts as unreachable (and the
        // joiner may found a group): a slower seed dial would be given up on too early where a
        // user raised joinTimeoutMs for a slow network or a starved CPU.
        dialTimeoutMs: Math.max(1000, this.options.timing.joinTimeoutMs),
        ...(this.options.clusterKey !== undefined ? { psk: this.options.clusterKey.fileBytes() } : {}),
        // With durable state the member keeps its peer key, hence its id (read in start()).
        peerKey: async () => {
          const state = this.durable
          return state === undefined ? undefined : (state.peerKey ?? state.keepPeerKey(await newPeerKey()))
        }
      })
    this.messaging = new Messaging({
      self: () => this.transport.id,
      now: () => this.clock(),
      encode: msg => this.codec.encode(msg),
      sendFrame: (to, frame) => { this.sendDirect(to, frame) },
      sendControl: (to, frame) => {
        this.sendDirect(to, frame)
        this.transport.send(to, frame, { datagramOnly: true })
      },
      deliver: (from, bin, epoch, channel, seq) => {
        // A joiner holds broadcasts until its state is restored, then passes those after the cut.
        if (channel === 'group' && this.stateTransfer !== undefined && !this.stateTransfer.admit(from, bin, epoch, seq)) return
        this.emitMessage(from, bin, channel, epoch)
      },
      viewReady: epoch => {
        this.stateTransfer?.deliveryView()
        const change = this.unflushedViews.get(epoch)
        if (change === undefined) return
        this.unflushedViews.delete(epoch)
        this.emit('view', change)
      },
      countDrop: (reason, from) => { this.#countDrop(reason, from) }
    }, { maxFrameBytes: this.options.maxMessageBytes - Buffer.byteLength(this.options.cluster) })
    this.setMaxListeners(0)
    this.driver = new MemberDriver({
      now: () => this.clock(),
      setTimer: (fn, ms) => {
        const timer = setTimeout(fn, ms)
        return () => { clearTimeout(timer) }
      },
      // Heartbeats may go as datagrams: repeated every period, so a lost one costs nothing.
      send: (to, msg, o) => {
        this.transport.send(to, this.codec.encode(msg), { addresses: o.addrs, onlyIfConnected: o.onlyIfConnected, unreliable: msg.t === 'hb', ...(o.probe ? { dialTimeoutMs: PROBE_DIAL_TIMEOUT_MS } : {}) })
      },
      sendService: (to, service, data) => { this.#sendService(to, service, data, { onlyIfConnected: true }) },
      dial: (peer, addrs) => { this.transport.dial({ peer, addresses: addrs }) },
      hangup: peer => { this.transport.disconnect?.(peer) },
      dialSeeds: probe => { this.dialSeeds(probe) },
      persist: (maxEpoch, basis) => this.persist(maxEpoch, basis),
      events: {
        view: change => {
          this.viewChangedAt = this.clock()
          const others = change.view.members.length - 1
          if (others > this.options.maxConnections && (change.previous === undefined || change.previous.members.length - 1 <= this.options.maxConnections)) {
            this.emit('connection-limit', { limit: this.options.maxConnections, members: change.view.members.length, refused: undefined })
          }
          this.transport.protect?.(change.view.members.map(m => m.id))
          for (const m of change.left) this.limits.members.forget(m.id)
          for (const hook of [...this.viewHooks]) this.call('view', hook, [change])
          // The view event waits until the broadcasts sent in the previous view are delivered.
          this.unflushedViews.set(change.view.id.epoch, change)
          this.messaging.install(change.view)
          this.stateTransfer?.viewInstalled(change.view.members.map(m => m.id), change.view.id.epoch)
        },
        excluded: (by, previous) => {
          this.messaging.suspend()
          this.stateTransfer?.excluded()
          this.emit('excluded', { by, previous })
        },
        suspect: (id, reason) => {
          for (const hook of [...this.suspectHooks]) this.call('suspect', hook, [id])
          this.emit('suspect', { id, reason })
        },
        refuted: id => { this.emit('refuted', { id }) },
        waiting: e => { this.lastWaiting = e.reason; this.emit('waiting', e) },
        merge: (view, rejoined) => { this.emit('merge', { view, rejoined }) },
        splitBrain: e => { this.emit('split-brain', e) },
        limit: e => { this.emit('connection-limit', { limit: this.options.maxConnections, members: e.members, refused: e.refused }) },
        dropped: reason => { this.#countDrop(reason, undefined) },
        left: () => {},
        call: (event, fn) => { this.call(event, fn, []) }
      }
    }, { masters: this.options.masters, discoveryIntervalMs: this.options.timing.discoveryIntervalMs })
    this.watchMastership(1, c => this.emit('coordinator', { isCoordinator: c.isMaster, epoch: c.epoch, view: c.view }))
    this.watchMastership(this.options.masters, c => this.emit('mastership', c))
    setInternals(this, {
      registerService: (name, handler) => this.#registerService(name, handler),
      sendService: (to, name, data, opts) => { this.#sendService(to, name, data, opts) },
      countDrop: (reason, from) => { this.#countDrop(reason, from) },
      onSuspect: hook => {
        this.suspectHooks.add(hook)
        return () => { this.suspectHooks.delete(hook) }
      },
      onBeforeLeave: hook => {
        this.beforeLeave.add(hook)
        return () => { this.beforeLeave.delete(hook) }
      },
      stopped: this.lifetime.signal,
      schedulerHost: undefined as unknown as SchedulerHost
    })
    const self = this // eslint-disable-line @typescript-eslint/no-this-alias -- getters of the host read the member
    this.schedulerHost = {
      get id () { return self.id },
      get view () { return self.view },
      get rank () { return self.rank },
      get epoch () { return self.epoch },
      options: this.options,
      watchMastership: (n, listener) => this.watchMastership(n, listener),
      onViewChange: listener => this.onViewChange(listener),
      onBeforeLeave: hook => {
        this.beforeLeave.add(hook)
        return () => { this.beforeLeave.delete(hook) }
      },
      registerService: (name, handler) => this.#registerService(name, handler),
      sendService: (to, name, data) => { this.#sendService(to, name, data) },
      countDrop: (reason, from) => { this.#countDrop(reason, from) }
    }
    internalsOf(this).schedulerHost = this.schedulerHost
    this.registryState = new MemberRegistry(this, this.options.endpoints, this.incarnation)
    installScheduler(this.schedulerHost) // every member acks claims, scheduled jobs or not
    this.#registerService(MASTERSHIP_SERVICE, (from, data) => {
      if (!this.driver.mastershipMessage(from, data)) this.#countDrop('mastership-invalid', from)
    })
    this.rpc = new Rpc(this)
    this.stateTransfer = this.options.state === undefined ? undefined : this.createStateTransfer(this.options.state)
  }

  private createStateTransfer (handlers: StateHandlers): StateTransfer {
    const transfer = new StateTransfer({
      self: () => this.transport.id,
      members: () => this.view?.members.map(m => m.id),
      position: () => this.messaging.position(),
      send: (to, data) => { this.#sendService(to, STATE_SERVICE, data) },
      countDrop: (reason, from) => { this.#countDrop(reason, from) },
      release: (from, bin, epoch) => { this.emitMessage(from, bin, 'group', epoch) },
      reportError: (where, error) => { this.reportListenerError(where, error) },
      restored: info => {
        this.stateSettled.resolve(info)
        this.emit('state-restored', info)
      },
      failed: error => {
        this.stateFailure = error
        this.stateSettled.reject(error)
        this.emit('state-transfer-failed', { error })
        setImmediate(() => { void this.stop() })
      },
      now: () => this.clock(),
      setTimer: (ms, fn) => {
        const t = setTimeout(() => { this.stateTimers.delete(t); fn() }, ms)
        this.stateTimers.add(t)
        return () => { clearTimeout(t); this.stateTimers.delete(t) }
      },
      maxChunkBytes: Math.max(256, Math.min(STATE_CHUNK_BYTES, this.options.maxMessageBytes - FRAME_OVERHEAD - 64 - Buffer.byteLength(this.options.cluster)))
    }, handlers)
    this.#registerService(STATE_SERVICE, (from, data) => { transfer.receive(from, data, this.inView(from)) })
    // A rejection nobody awaits is not an unhandled one: failures are also the event's.
    this.stateSettled.promise.catch(() => {})
    return transfer
  }

  /**
   * Resolves once this member holds the group's state (the `state` option): at once for a
   * founder, after `restore` for a joiner, also when no member of the view held state
   * (`restored: false`). Rejects with StateTransferError when the transfer failed (the member
   * then leaves), TimeoutError after `timeoutMs`, NotRunningError when the member stops first,
   * InvalidOptionError without a `state` option. Broadcasts are delivered only after it.
   */
  async waitForState (opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<StateRestored> {
    if (this.stateTransfer === undefined) throw new InvalidOptionError('state', 'a { snapshot, restore } option to wait for state', undefined)
    rejectUnknownKeys(opts, ['timeoutMs', 'signal'])
    const timeoutMs = opts.timeoutMs ?? 60_000
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidOptionError('timeoutMs', 'a positive number of milliseconds', timeoutMs)
    const ready = this.stateTransfer.ready
    if (ready !== undefined) return ready
    if (this.stateFailure !== undefined) throw this.stateFailure
    if (this.stopped) throw new NotRunningError('wait for state')
    // Stop, timeout and the caller's signal end the wait as in waitForView.
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = AbortSignal.any([opts.signal, timeout, this.lifetime.signal].filter((x): x is AbortSignal => x !== undefined))
    return await new Promise<StateRestored>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.stateFailure !== undefined) reject(this.stateFailure)
        else if (this.lifetime.signal.aborted) reject(new NotRunningError('wait for state', 'the member stopped'))
        else if (timeout.aborted) reject(new TimeoutError('waitForState', timeoutMs))
        else reject(opts.signal?.reason)
      }
      if (signal.aborted) { onAbort(); return }
      signal.addEventListener('abort', onAbort, { once: true })
      this.stateSettled.promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
    })
  }

  /** A frame on the direct stream to a member of the view (dialled at its view addresses if need be). */
  private sendDirect (to: string, frame: Uint8Array): void {
    const addrs = this.view?.members.find(m => m.id === to)?.addrs
    this.transport.send(to, frame, addrs !== undefined ? { addresses: addrs } : {})
  }

  private emitMessage (from: string, bin: Uint8Array, channel: 'direct' | 'group', epoch: number): void {
    const decoded = decodePayload(bin)
    if (!decoded.ok) { this.#countDrop('malformed-payload', from); return }
    this.emit('message', { from, payload: decoded.value, channel, epoch })
  }

  get cluster (): string { return this.options.cluster }

  // ─── endpoint registry (registry/registry.ts) ────────────────────────────

  /** The endpoints this member publishes. */
  get ownEndpoints (): Endpoints { return this.registryState.ownEndpoints }
  /** Publishes (or replaces) this member's URL for `service`; throws InvalidOptionError for a bad URL. */
  setEndpoint (service: string, url: string): void {
    this.assertNotStopped('set an endpoint')
    this.registryState.setEndpoint(service, url)
  }

  /** Stops publishing `service`. */
  removeEndpoint (service: string): void {
    this.assertNotStopped('remove an endpoint')
    this.registryState.removeEndpoint(service)
  }

  /** The view's members with their endpoints, start times and mastership epochs, in view order. */
  registry (): RegistrySnapshot { return this.registryState.snapshot() }
  /** The URLs of `service` in view order. */
  endpoints (service: string): string[] { return this.registryState.endpoints(service) }
  /** The coordinator's URL for `service`, or undefined. */
  masterEndpoint (service: string): string | undefined { return this.registryState.masterEndpoint(service) }
  /** Calls `listener` after every change of the view or of an endpoint. */
  onRegistryChange (listener: () => void): () => void {
    this.assertNotStopped('watch the registry')
    return this.registryState.onChange(listener)
  }

  /** This member's id (its libp2p peer id). Available once started. */
  get id (): string { return this.transport.id }
  get name (): string { return this.options.name }
  /** Addresses other members dial, each ending in `/p2p/<id>`. */
  get addresses (): readonly string[] { return this.transport.addresses }
  /** The installed view: settled, agreed by all its members. Undefined while joining. */
  get view (): View | undefined { return this.core?.view }
  /** Whether this member coordinates now: computed against the clock at the call (lease). */
  get isCoordinator (): boolean { return this.rank === 0 }
  /**
   * Open transport connections of this member's node: to other members, observers and clients
   * (see `maxConnections`). 0 before start and after stop.
   */
  get connections (): number {
    return this.transport.connectionCount?.() ?? 0
  }

  /**
   * This member's rank in the settled view, if it may act on it now (lease live, not leaving);
   * otherwise undefined. Computed against the clock at the call.
   */
  get rank (): number | undefined {
    return this.driver.rank
  }

  /**
   * Whether this member is one of the first `masters` members of the settled view and may act
   * on it now. Computed against the clock at the call: a process that resumes from a pause
   * longer than its lease gets false before any of its timers or handlers run. A member holds a
   * lease only while it monitors every member, which the first `masters + 1` members do (more
   * when a route or `watchMastership` asks for a larger N), so asking about a larger N than
   * those gives false.
   */
  isMaster (masters: number = this.options.masters): boolean {
    return this.driver.isMaster(masters)
  }

  /**
   * Calls `listener` whenever this member starts or stops being one of the first `masters`
   * members (serially, after the change). Returns a function that stops watching.
   */
  watchMastership (masters: number, listener: (change: MastershipChange) => void): () => void {
    this.assertNotStopped('watch mastership')
    return this.driver.watchMastership(masters, listener)
  }

  /**
   * Registers work that runs only while this member is one of the first N members (the route's
   * `masters`, else the member's): started on promotion, stopped on demotion, lease loss or
   * leave, never overlapping. See policies/route-policy.ts.
   */
  route (definition: RouteDefinition): Route {
    this.assertNotStopped('add a route')
    return addRoute(this, definition)
  }

  /**
   * Schedules `fn` so that each tick fires once in the whole cluster, on the coordinator, also
   * across failovers. Register the same job on every member. See policies/scheduler.ts.
   */
  schedule (name: string, spec: ScheduleSpec, fn: (tick: TickContext) => void | Promise<void>, opts?: ScheduleOptions): ScheduledJob {
    this.assertNotStopped('schedule a job')
    return schedule(this.schedulerHost, name, spec, fn, opts)
  }

  /** Passes the items of `source` only while this member is master, checked at each item. */
  filter<T>(source: AsyncIterable<T> | Iterable<T>, opts?: FilterOptions): AsyncIterableIterator<T>
  filter<T>(source: AsyncIterable<T> | Iterable<T>, opts: FilterOptions & { stamped: true }): AsyncIterableIterator<Stamped<T>>
  filter<T>(source: AsyncIterable<T> | Iterable<T>, opts: FilterOptions & { stamped?: boolean } = {}): AsyncIterableIterator<T | Stamped<T>> {
    this.assertNotStopped('filter a stream')
    return opts.stamped === true ? masterOnlyStamped(this, source, opts) : masterOnly(this, source, opts)
  }

  /** This member's promotions and demotions for masters(N), until `signal` aborts or it stops. */
  mastershipChanges (opts: FilterOptions & IterateOptions = {}): AsyncIterable<MastershipChange> {
    return mastershipChanges(this, opts)
  }

  /**
   * Calls `listener` with every view change as it is installed (the public `view` event follows
   * once the broadcasts of the previous view are delivered), apart from the event's listeners:
   * a user listener that throws cannot keep it from running. For Conclave's own parts
   * (registry, scheduler, metrics) and for embedders that need the same guarantee. An error
   * it throws is reported like a listener's (`listener-error`). Returns a function that stops it.
   */
  onViewChange (listener: (change: ViewChange) => void): () => void {
    this.assertNotStopped('watch views')
    const hook = (change: ViewChange): void => listener(change)
    this.viewHooks.add(hook)
    return () => { this.viewHooks.delete(hook) }
  }

  /** Counts of dropped input from the network, by reason (a copy). */
  /**
   * While this member has no view: why it does not found a group, as its last `waiting` event
   * said (`'incompatible'`: its seeds speak another wire version); undefined while it has a
   * view or has not said.
   */
  get waiting (): WaitingReason | undefined { return this.view === undefined ? this.lastWaiting : undefined }

  get dropped (): Readonly<Record<string, number>> { return Object.freeze({ ...this.droppedCounts }) }
  /** Counts of outbound frames not sent, by reason: peer not connected, queue full, ... (a copy). */
  get unsent (): Readonly<Record<string, number>> { return Object.freeze({ ...this.unsentCounts }) }

  /** A small summary for loggers and `JSON.stringify`. */
  toJSON (): { id: string | undefined, name: string, cluster: string, state: string, epoch: number, coordinator: string | undefined, members: number, rank: number | undefined, master: boolean } {
    const view = this.view
    return {
      id: this.state === 'new' || this.state === 'starting' ? undefined : this.id,
      name: this.name,
      cluster: this.cluster,
      state: this.state,
      epoch: this.epoch,
      coordinator: view?.members[0]?.id,
      members: view?.members.length ?? 0,
      rank: this.state === 'running' ? this.rank : undefined,
      master: this.state === 'running' && this.isMaster()
    }
  }

  [inspect.custom] (): string {
    return `Member ${inspect(this.toJSON())}`
  }
  /** The epoch of the installed view, or 0 while joining. */
  get epoch (): number { return this.core?.view?.id.epoch ?? 0 }
  get running (): boolean { return this.state === 'running' }
  /** Whether this member has stopped, or failed to start: it never runs again (EndpointSource). */
  get stopped (): boolean { return this.lifetime.signal.aborted }
  /**
   * Calls `listener` once when this member has stopped or its start has failed (not when that
   * has happened already: check `stopped`), after the `stopped` event. What it throws is
   * reported as `listener-error`. Returns a function that unsubscribes.
   */
  onStop (listener: () => void): () => void {
    const signal = this.lifetime.signal
    const run = (): void => { this.call('stopped', listener, []) }
    signal.addEventListener('abort', run, { once: true })
    return () => { signal.removeEventListener('abort', run) }
  }

  /** Milliseconds since this member installed its current view; undefined without one. */
  get msSinceViewChange (): number | undefined {
    return this.view === undefined || this.viewChangedAt === undefined ? undefined : this.clock() - this.viewChangedAt
  }

  /**
   * The N of every masters(N) someone watches on this member, ascending: 1 (the coordinator),
   * the member's `masters`, and those of routes and `watchMastership` callers.
   */
  mastershipLevels (): number[] {
    return this.driver.mastershipLevels()
  }

  /**
   * Starts listening, then joins through the seeds (or founds the group without seeds).
   * Idempotent while running; after `stop()` (or a failed start) it rejects with NotRunningError:
   * a member is not restarted, a new one is created.
   */
  async start (): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') throw new NotRunningError('start a member that was stopped (create a new one)')
    if (this.state === 'starting') { await this.starting; return }
    if (this.state !== 'new') return
    this.starting = this.doStart()
    await this.starting
  }

  private async doStart (): Promise<void> {
    this.state = 'starting'
    this.held = []
    const handlers: TransportHandlers = {
      onConnected: peer => {
        this.driver.connected(peer)
        this.messaging.connected(peer)
      },
      onDisconnected: peer => { this.driver.disconnected(peer) },
      onDialFailed: (target, reason) => {
        if (log.transport.enabled) log.transport('dial %s failed: %s', target.peer ?? target.address, reason)
        this.onDialFailed(target)
      },
      onRejected: (address, peer, theirs) => {
        const otherVersion = theirs.cluster === this.options.cluster
        this.#countDrop(otherVersion ? 'seed-wire-version' : 'seed-foreign-cluster', peer)
        if (otherVersion) this.driver.otherVersionSeen()
        // Seeds are re-dialled every discovery interval while alone: tell the application once.
        if (!this.rejectedSeeds.has(address)) this.emit('seed-rejected', { address, peer, cluster: theirs.cluster, wireVersion: theirs.wire })
        this.rejectedSeeds.add(address)
        this.onDialFailed({ address })
      },
      onDiscovered: addresses => { this.onDiscovered(addresses) },
      onDirect: (peer, frame) => this.onFrame(peer, frame, 'direct'),
      onGroup: (peer, frame) => this.onFrame(peer, frame, 'group'),
      onDatagram: (peer, frame) => this.onFrame(peer, frame, 'datagram')
    }
    let floor = 0
    if (this.options.stateDir !== undefined) {
      const state = this.durable = DurableState.open(this.options.stateDir)
      const last = state.restored
      // A restart is a newer incarnation even if the wall clock went back meanwhile.
      if (last !== undefined) this.incarnation = Math.max(this.incarnation, last.incarnation + 1)
      state.save({ maxEpoch: last?.maxEpoch ?? 0, incarnation: this.incarnation, basis: last?.basis ?? [] })
      this.registryState.setIncarnation(this.incarnation)
      floor = (last?.maxEpoch ?? 0) + 1
    }
    try {
      await this.transport.start(handlers)
    } catch (err) {
      this.durable?.close()
      // A member that failed to start is done: what waits on it settles, nothing restarts it.
      this.state = 'stopped'
      this.held = undefined
      this.lifetime.abort()
      throw err
    }
    const restored = this.durable?.restored
    const self: MemberRecord = {
      id: this.transport.id,
      name: this.options.name,
      incarnation: this.incarnation,
      joinEpoch: 0,
      addrs: [...this.transport.addresses],
      meta: this.options.metadata
    }
    // Bounded by dns.timeoutMs; a failure is reported (seed-resolve-failed), never fatal.
    await this.seedSet.refresh()
    const quorum = { splitBrain: this.options.splitBrain, quorum: this.options.quorum }
    const core = this.core = new Membership({
      self,
      timing: this.options.timing,
      // A DNS name counts even while it has no records: they may come (an empty answer counts
      // as "no seed answered", see dialSeeds). So does multicast discovery.
      hasSeeds: this.seedAddresses().length > 0 || this.seedSet.usesDns || this.localDiscovery !== undefined,
      founding: foundingRule(quorum, this.options.bootstrap.expect),
      random: () => randomInt(0, 2 ** 31) / 2 ** 31,
      // Epochs of a group this member founds start at the wall clock, and never below what
      // durable state says it may have used.
      epochFloor: () => Math.max(Date.now(), floor),
      durable: this.durable !== undefined,
      ...(restored !== undefined ? { restored: { maxEpoch: restored.maxEpoch, basis: restored.basis } } : {}),
      quorum,
      maxMembers: this.options.maxConnections + 1
    })
    this.state = 'running'
    this.driver.start(core)
    this.scheduleSeedRefresh()
    setImmediate(() => { this.releaseHeld() })
  }

  /**
   * Leaves gracefully: the group installs a view without this member (so a successor
   * coordinates at once), then the transport closes. Bounded by `leaveTimeoutMs`. Idempotent.
   */
  async stop (): Promise<void> {
    if (this.stopping !== undefined) return await this.stopping
    this.stopping = this.doStop()
    return await this.stopping
  }

  /**
   * Sends `payload` to one member of the installed view over its direct stream, in order with
   * this member's other sends to it. Resolves when the receiver confirms it has the message (it
   * is then delivered there exactly once). Rejects with NotDeliveredError when the receiver
   * leaves the view first, TimeoutError after `timeoutMs` (it may still arrive), NotRunningError
   * when this member stops first. Throws at the call: NotInViewError for an id outside the view,
   * InvalidPayloadError / MessageTooLargeError for a payload, NotRunningError unless running.
   * To oneself: delivered on a later turn of the event loop.
   */
  send (memberId: string, payload: unknown, opts: SendOptions = {}): Promise<void> {
    if (this.state !== 'running') throw new NotRunningError('send')
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('send options', 'an object', opts)
    rejectUnknownKeys(opts, ['timeoutMs'])
    const timeoutMs = opts.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidOptionError('timeoutMs', 'a positive number of milliseconds', timeoutMs)
    const view = this.view
    const target = view?.members.find(m => m.id === memberId)
    if (view === undefined || target === undefined) throw new NotInViewError('send', String(memberId))
    const bin = this.encodeUser(payload, 'send')
    if (memberId === this.id) {
      return new Promise(resolve => setImmediate(() => {
        this.emit('message', { from: memberId, payload: decodePayload(bin).value, channel: 'direct', epoch: view.id.epoch })
        resolve()
      }))
    }
    return this.messaging.send(memberId, target.incarnation, bin, view.id.epoch, timeoutMs)
  }

  /**
   * Sends `payload` to every other member of the view, reliably and in order per sender: every
   * member that stays in the view delivers it once, in the view it was sent in (see the
   * message's `epoch`), before the event of the next view. Resolves when the message is queued
   * for the network; while more than the send window (8 MiB) waits for acknowledgement, or
   * while this member has no view, it resolves only when the message could be queued: await it
   * to get back-pressure. Rejects with NotRunningError when the member stops first. Throws at
   * the call for a payload (InvalidPayloadError, MessageTooLargeError) and unless running.
   */
  broadcast (payload: unknown): Promise<void> {
    return this.messaging.broadcast(this.encodeUser(payload, 'broadcast')) ?? RESOLVED
  }

  /**
   * Serves `method` for requests of other members (and of this one): `handler(payload, { from,
   * epoch, method, signal })` returns the result or a promise of it. Returns a function that
   * unregisters it. Throws InvalidOptionError('method') when the method has a handler already,
   * NotRunningError once the member stops. See messaging/rpc.ts and the README's Request/response.
   */
  handle (method: string, handler: RpcHandler): () => void {
    return this.rpc.handle(method, handler)
  }

  /**
   * Sends a request to `target` (`'master'`: the coordinator of the moment, waiting for one
   * during a failover; or a member id of the view) and resolves with its handler's result.
   * Rejects with RemoteError (the handler threw, unknown method, busy), TargetLostError (the
   * target left before answering), NoMasterError or TimeoutError (`timeoutMs`), NotInViewError,
   * NotRunningError, the signal's reason; InvalidPayloadError / MessageTooLargeError at the call.
   */
  request (target: string, method: string, payload: unknown, opts?: RequestOptions): Promise<unknown> {
    return this.rpc.request(target, method, payload, opts)
  }

  /**
   * Sends a request to every member of the installed view (this one included, whose handler is
   * called directly) and resolves with one entry per member, in view order, when `mode` says.
   */
  async requestAll (method: string, payload: unknown, opts?: RequestAllOptions): Promise<RequestAllEntry[]> {
    return await this.rpc.requestAll(method, payload, opts)
  }

  /**
   * Resolves with the first view (the current one included) that satisfies `predicate`. Rejects
   * with TimeoutError after `timeoutMs`, with `signal`'s reason when it aborts, and with
   * NotRunningError when the member stops first (or has stopped).
   */
  async waitForView (predicate: (view: View) => boolean, opts: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<View> {
    if (this.lifetime.signal.aborted) throw new NotRunningError('wait for a view')
    const current = this.view
    if (current !== undefined && predicate(current)) return current
    const timeout = opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined
    const signal = AbortSignal.any([opts.signal, timeout, this.lifetime.signal].filter((s): s is AbortSignal => s !== undefined))
    return await new Promise<View>((resolve, reject) => {
      const done = (): void => { this.off('view', onView); signal.removeEventListener('abort', onAbort) }
      const onView = (change: ViewChange): void => {
        if (!predicate(change.view)) return
        done()
        resolve(change.view)
      }
      const onAbort = (): void => {
        done()
        if (this.lifetime.signal.aborted) reject(new NotRunningError('wait for a view'))
        else if (timeout?.aborted === true && opts.timeoutMs !== undefined) reject(new TimeoutError('the awaited view', opts.timeoutMs))
        else reject(opts.signal?.reason)
      }
      if (signal.aborted) { onAbort(); return }
      signal.addEventListener('abort', onAbort, { once: true })
      this.on('view', onView)
    })
  }

  /**
   * Every view change from now on, until `signal` aborts or the member stops (at once if it
   * has). At most `highWaterMark` (10,000) changes wait for a busy consumer; one more and the
   * iterator yields those and then throws IteratorOverflowError.
   */
  views (opts: IterateOptions = {}): AsyncIterable<ViewChange> {
    return this.iterate('view', opts, 'member.views()')
  }

  /**
   * Every application message from now on, until `signal` aborts or the member stops (at once
   * if it has). Bounded like `views()`: a consumer 10,000 messages behind gets
   * IteratorOverflowError after the buffered ones (listeners of 'message' still get them all).
   */
  messages (opts: IterateOptions = {}): AsyncIterable<Message> {
    return this.iterate('message', opts, 'member.messages()')
  }

  // ─── internals ───────────────────────────────────────────────────────────

  private iterate<E extends 'view' | 'message'>(event: E, opts: IterateOptions, what: string): AsyncGenerator<MemberEvents[E][0]> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('opts', 'an object such as { signal, highWaterMark }', opts)
    rejectUnknownKeys(opts, ['signal', 'highWaterMark'])
    const hwm = highWaterMarkOf(opts)
    const combined = opts.signal === undefined ? this.lifetime.signal : AbortSignal.any([opts.signal, this.lifetime.signal])
    return boundedEvents<MemberEvents[E][0]>(this, event, combined, hwm, what)
  }

  private async doStop (): Promise<void> {
    if (this.state === 'starting') await this.starting?.catch(() => {})
    if (this.state === 'new' || this.state === 'stopped') {
      this.state = 'stopped'
      this.lifetime.abort()
      return
    }
    this.state = 'stopping'
    // Work stops before the group hears of the leave: the successor cannot start first.
    this.driver.beginLeave()
    await Promise.allSettled([...this.beforeLeave].map(async hook => await hook()))
    const core = this.core
    if (core !== undefined && core.status !== 'left') {
      await this.driver.leave(this.options.leaveTimeoutMs)
      // Let the final commit leave the socket buffers before the connections close.
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    this.driver.close()
    clearTimeout(this.seedRefreshTimer)
    this.seedSet.stop()
    this.messaging.stop(new NotRunningError('broadcast or send'))
    this.stateTransfer?.stop()
    for (const t of this.stateTimers) clearTimeout(t)
    this.stateTimers.clear()
    await this.transport.stop()
    this.durable?.close()
    this.state = 'stopped'
    this.releaseHeld()
    this.emit('stopped')
    this.lifetime.abort()
  }

  /** The seed addresses known now, without this member's own (a shared seed list, a DNS name, usually names it too). */
  private seedAddresses (): string[] {
    const discovered = this.localDiscovery?.addresses() ?? []
    const all = discovered.length === 0 ? this.seedSet.addresses() : [...new Set([...this.seedSet.addresses(), ...discovered])]
    return withoutOwn(all, this.transport.addresses)
  }

  /** `addresses` without those a member of the installed view advertises. */
  private notInView (addresses: readonly string[]): string[] {
    const known = this.view?.members.flatMap(m => m.addrs) ?? []
    return addresses.filter(a => !known.some(k => k === a || k.startsWith(`${a}/p2p/`)))
  }

  /**
   * Multicast DNS heard members at `addresses`. A member that is alone dials them as seeds (it
   * joins their group); the coordinator dials those no view member has (a group founded apart,
   * which then merges); other members leave that to the coordinator.
   */
  private onDiscovered (addresses: readonly string[]): void {
    const discovery = this.localDiscovery
    if (discovery === undefined) return
    const fresh = withoutOwn(discovery.heard(addresses), this.transport.addresses)
    const view = this.view
    if (this.state !== 'running' || fresh.length === 0) return
    if (view !== undefined && view.members.length > 1 && view.members[0]?.id !== this.id) return
    const targets = pick(this.notInView(fresh), MAX_SEED_DIALS)
    discovery.dialed(targets)
    for (const t of targets) this.transport.dial({ addresses: [t] }, { dialTimeoutMs: PROBE_DIAL_TIMEOUT_MS })
  }

  private dialSeeds (probe: boolean): void {
    this.seedFailures.clear()
    this.dialedSeeds = pick(this.seedAddresses(), MAX_SEED_DIALS)
    if (this.dialedSeeds.length === 0) {
      // Seeds named, none known now (a DNS name without records yet, or only this member):
      // as if none answered, under the bootstrap rule. Later: the driver is mid-step here.
      if (this.seedSet.usesDns || this.localDiscovery !== undefined) queueMicrotask(() => { if (this.state === 'running') this.driver.seedsUnreachable() })
      return
    }
    for (const seed of this.dialedSeeds) this.transport.dial({ addresses: [seed] }, probe ? { dialTimeoutMs: PROBE_DIAL_TIMEOUT_MS } : {})
  }

  /**
   * Resolves DNS seeds again every `dns.refreshMs` while this member may need them: while it is
   * alone (it dials its seeds each discovery round), and while it coordinates a group, when it
   * dials the addresses no member of its view has: a group founded apart (its members started
   * before the DNS records of the others existed) is met, and merges.
   */
  private scheduleSeedRefresh (): void {
    if (!this.seedSet.usesDns || this.state !== 'running') return
    this.seedRefreshTimer = setTimeout(() => {
      this.seedRefreshTimer = undefined
      const view = this.view
      const alone = view === undefined || view.members.length === 1
      if (this.state !== 'running' || (!alone && view.members[0]?.id !== this.id)) { this.scheduleSeedRefresh(); return }
      this.seedSet.refresh().then(() => {
        if (!alone) this.sweepSeeds()
        this.scheduleSeedRefresh()
      }, () => { this.scheduleSeedRefresh() })
    }, this.options.dns.refreshMs)
  }

  /** The coordinator dials seed addresses that belong to no member of its view (see scheduleSeedRefresh). */
  private sweepSeeds (): void {
    const view = this.view
    if (this.state !== 'running' || view === undefined || view.members[0]?.id !== this.id) return
    for (const seed of pick(this.notInView(this.seedAddresses()), MAX_SEED_DIALS)) this.transport.dial({ addresses: [seed] }, { dialTimeoutMs: PROBE_DIAL_TIMEOUT_MS })
  }

  private onDialFailed (target: { peer?: string, address?: string }): void {
    if (target.peer !== undefined) {
      this.driver.dialFailed(target.peer)
      return
    }
    if (target.address === undefined) return
    this.seedFailures.add(target.address)
    const seeds = this.dialedSeeds
    if (seeds.length > 0 && seeds.every(s => this.seedFailures.has(s))) this.driver.seedsUnreachable()
  }

  /** Whether `peer` is a member of the installed view. */
  private inView (peer: string): boolean {
    const view = this.view
    if (this.idsOf.view !== view) this.idsOf = { view, ids: new Set(view?.members.map(m => m.id)) }
    return this.idsOf.ids.has(peer)
  }

  private onFrame (peer: string, frame: Uint8Array, channel: 'direct' | 'group' | 'datagram'): void {
    if (this.state !== 'running' && this.state !== 'stopping') return
    const now = this.clock()
    const member = this.inView(peer)
    // A peer outside the view is limited before its bytes cost a decode (security/rate-limit.ts).
    if (!member && !this.limits.outsider.take(peer, now)) { this.#countDrop('rate-limited-outsider', peer); return }
    const decoded = this.codec.decode(frame)
    if (!decoded.ok) { this.#countDrop(decoded.reason, peer); return }
    const msg = decoded.msg
    // A reply echoes the newest heartbeat timestamp of ours it had (our clock): a round trip.
    if (msg.t === 'hb' && msg.reply === true && msg.echo > 0 && this.listenerCount('heartbeat-rtt') > 0) {
      this.emit('heartbeat-rtt', { peer, ms: now - msg.echo })
    }
    if (msg.t === 'join' && !member && !this.limits.joins.take(peer, now)) { this.#countDrop('rate-limited-join', peer); return }
    if (member && msg.t !== 'svc' && !isMessagingFrame(msg) && !this.limits.members.take(peer, now)) { this.#countDrop('rate-limited-member', peer); return }
    // Datagrams carry heartbeats and the second copy of messaging control frames (io.ts
    // `sendControl`); anything else there is dropped.
    if (channel === 'datagram') {
      if (msg.t === 'hb') this.driver.receive(peer, msg)
      else if (isControlFrame(msg)) this.messaging.receive(peer, msg, member, true)
      else this.#countDrop('not-a-heartbeat-datagram', peer)
      return
    }
    if (isMessagingFrame(msg)) {
      // Only on the direct stream, where the sender is authenticated.
      if (channel === 'direct') this.messaging.receive(peer, msg, member)
      else this.#countDrop('messaging-on-group', peer)
      return
    }
    if (msg.t === 'svc') {
      const handler = channel === 'direct' ? this.services.get(msg.s) : undefined
      if (handler === undefined) { this.#countDrop('unknown-service', peer); return }
      try { handler(peer, msg.d) } catch { this.#countDrop('service-error', peer) }
      return
    }
    // Protocol messages travel only on the direct stream, where the sender is authenticated.
    if (channel !== 'direct') { this.#countDrop('protocol-on-group' as DropReason, peer); return }
    this.driver.receive(peer, msg)
  }

  /**
   * Writes durable state before the effects that rely on it run. A write that fails leaves the
   * member unable to keep its promises after a restart: it stops acting as master now (before
   * the effects that follow) and leaves.
   */
  private persist (maxEpoch: number, basis: Basis): boolean {
    const state = this.durable
    if (state === undefined) return true
    try {
      state.save({ maxEpoch, incarnation: this.incarnation, basis })
      return true
    } catch (error) {
      this.emit('state-failed', { error: error as StateDirError })
      setImmediate(() => { void this.stop() })
      return false
    }
  }

  /** Whether the installed view may have masters: `'ok'`, or why not (see `ViewChange.quorum`). */
  get quorum (): 'ok' | NoQuorumReason { return this.core?.quorumProblem ?? 'ok' }

  /** Unexpected-master announcements seen so far (policies/dual-master.ts). */
  get splitBrainsDetected (): number { return this.driver.splitBrainsDetected }

  /** The payload encoded for a data frame; throws for a payload that would not arrive as sent, or too large a one. */
  private encodeUser (payload: unknown, operation: string): Uint8Array {
    if (this.state !== 'running') throw new NotRunningError(operation)
    checkPayload(payload)
    const bin = encodePayload(payload)
    const size = bin.byteLength + FRAME_OVERHEAD + Buffer.byteLength(this.options.cluster)
    if (size > this.options.maxMessageBytes) throw new MessageTooLargeError(size, this.options.maxMessageBytes)
    return bin
  }

  /** Counts dropped input (also for policies' own channels) and emits `dropped`. */
  #countDrop (reason: string, from: string | undefined): void {
    this.droppedCounts[reason] = (this.droppedCounts[reason] ?? 0) + 1
    this.emit('dropped', { reason, from })
  }

  /** A named channel for Conclave's own parts: `handler` gets what `sendService(to, name, data)` sends. */
  #registerService (name: string, handler: (from: string, data: unknown) => void): () => void {
    this.services.set(name, handler)
    return () => { this.services.delete(name) }
  }

  #sendService (to: string, name: string, data: unknown, opts: { onlyIfConnected?: boolean } = {}): void {
    if (this.state !== 'running' && this.state !== 'stopping') return
    const addrs = this.view?.members.find(m => m.id === to)?.addrs ?? []
    this.transport.send(to, this.codec.encode({ t: 'svc', s: name, d: data }), { addresses: addrs, onlyIfConnected: opts.onlyIfConnected })
  }

  private assertNotStopped (operation: string): void {
    if (this.state === 'stopping' || this.state === 'stopped') throw new NotRunningError(operation)
  }

  /** Delivers the events held while starting, in the order they were produced. */
  private releaseHeld (): void {
    const held = this.held
    this.held = undefined
    for (const { event, args } of held ?? []) this.dispatch(event, args)
  }

  /**
   * Emits `event`: each listener is called on its own (EventEmitter's emit stops at the first that
   * throws), what one throws is reported as `listener-error`. While the member starts, events
   * are held and delivered after the start's caller has run (see the class comment).
   */
  override emit<E extends keyof MemberEvents>(event: E, ...args: MemberEvents[E]): boolean {
    if ((event as string) === 'newListener' || (event as string) === 'removeListener') return this.dispatch(event, args)
    logEvent(event, this.state === 'running' || this.state === 'stopping' ? this.transport.id : '', args[0])
    if (this.held !== undefined) {
      this.held.push({ event, args })
      return this.listenerCount(event) > 0
    }
    return this.dispatch(event, args)
  }

  /** `rawListeners` keeps `once` wrappers, so a once-listener still unregisters itself. */
  private dispatch (event: keyof MemberEvents, args: readonly unknown[]): boolean {
    const listeners = this.rawListeners(event)
    for (const listener of listeners) this.call(event, listener as (...a: unknown[]) => void, args)
    return listeners.length > 0
  }

  /** Runs one listener; what it throws is reported (`listener-error`), never lost. */
  private call (event: string, listener: (...a: never[]) => void, args: readonly unknown[]): void {
    try {
      (listener as (...a: unknown[]) => void)(...args)
    } catch (error) {
      this.reportListenerError(event, error)
    }
  }

  private reportListenerError (event: string, error: unknown): void {
    const reporters = event === 'listener-error' ? [] : this.rawListeners('listener-error')
    if (reporters.length === 0) { setImmediate(() => { throw error }); return }
    for (const r of reporters) {
      try {
        (r as (e: { event: string, error: unknown }) => void)({ event, error })
      } catch (err) {
        setImmediate(() => { throw err })
      }
    }
  }
}

/** A promise with its resolve and reject (Promise.withResolvers is not on Node 20 without the polyfill). */
function settlement<T> (): { promise: Promise<T>, resolve: (v: T) => void, reject: (e: unknown) => void } {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

/** Creates and starts a member. */
export async function createMember (options: MemberOptions, init?: MemberInit): Promise<Member> {
  const member = new Member(options, init)
  await member.start()
  return member
}
