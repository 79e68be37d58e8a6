/**
 * The libp2p implementation of the `Transport` contract (transport.ts).
 *
 * This is the only file of the project that imports libp2p packages. It runs one libp2p node
 * (tcp + noise + yamux + identify + gossipsub) and offers:
 *  - a direct channel: `/conclave/<cluster>/direct/1.0.0`, ONE persistent outbound stream per
 *    peer for sending (opened on first send or dial, reused, reopened on the next send after it
 *    breaks), carrying varint-length-prefixed frames; every inbound stream of that protocol is
 *    read and each frame handed to `onDirect`;
 *  - a group channel: gossipsub topic `conclave/<cluster>/v1`, signed (StrictSign);
 *  - a handshake, `/conclave/handshake/1.0.0` (the one protocol not namespaced by cluster): a
 *    node that dials a bare address (a seed) tells it its cluster and wire version and reads the
 *    seed's; on a mismatch both sides close the connection, the seed counts the attempt, and the
 *    dialler reports `onRejected`, so a member given another cluster's seeds says so at once;
 *  - a datagram channel (datagrams.ts) for frames sent `unreliable` (heartbeats): UDP with a
 *    per-peer key handed over on `/conclave/<cluster>/datagram/1.0.0` when a connection opens;
 *    until a peer's invitation arrives, such frames go on the direct stream.
 *
 * Invariants:
 *  - No public method throws, and no promise started here rejects unhandled: every failure ends
 *    as a handler call (`onDialFailed`) or an `onDrop(reason)` count.
 *  - Handlers are never called synchronously from inside `send`/`dial`/`publish` (always from a
 *    later task or microtask), never after `stop()` was called, and a throwing handler is
 *    caught and counted as `onDrop('handler-error')`; nothing throws into libp2p.
 *  - Frames sent to one peer leave in `send` order on one stream; frames that were queued on a
 *    stream that broke are lost (counted), never reordered.
 *  - Frames larger than `maxFrameBytes` are neither sent nor delivered.
 *  - After `stop()` resolves the node holds no socket or timer of ours: the process can exit.
 */
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { InvalidOptionError } from '../errors.js'
import { preSharedKey } from '@libp2p/pnet'
import { StrictSign } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import { FrameQueue } from './frame-queue.js'
import { createLibp2p } from 'libp2p'
import { ensurePromiseWithResolvers } from './promise-with-resolvers.js'
import type { SendOptions, Transport, TransportHandlers } from './transport.js'
import { DatagramChannel, decodeInvitation, encodeInvitation, type DatagramDropReason } from './datagrams.js'
import { DialSlots } from './dial-slots.js'
import { decodePeerKey } from './peer-key.js'
import type { Connection, IncomingStreamData, Message, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { advertisedAddresses, type AdvertisedAddress } from './advertise.js'
import { diagnoseListen, resolveListen } from './listen-diagnosis.js'

/**
 * Why a frame (or a burst of frames) was dropped; passed to `Libp2pTransportInit.onDrop`.
 *
 * Inbound (dropped input):
 *  - `oversize-frame`: a direct frame announced more than `maxFrameBytes`; that stream is reset.
 *  - `malformed-frame`: a direct stream carried a bad length prefix or ended mid-frame; reset.
 *  - `oversize-group-frame`: a group message larger than `maxFrameBytes`.
 *  - `unsigned-group-frame`: a group message without an author (cannot happen under StrictSign).
 *  - `handler-error`: a `TransportHandlers` callback threw (the input is lost to it).
 *  - `handshake-foreign-cluster`, `handshake-wire-version`: a node that dialled us named another
 *    cluster or wire version in the handshake; its connection is closed.
 *  - `handshake-malformed`: a handshake that was not one (too long, not our JSON); closed too.
 *
 * Outbound (not sent):
 *  - `outbound-oversize`: `send`/`publish` got a frame larger than `maxFrameBytes`.
 *  - `send-not-connected`: `send(..., { onlyIfConnected: true })` to a peer with no connection.
 *  - `send-queue-full`: more than `maxQueuedBytes` were waiting for that peer's stream.
 *  - `send-failed`: the stream to the peer could not be opened, or broke, while frames were
 *    queued on it (reported once per failed stream, not per frame).
 *  - `send-invalid-peer`: `send` named something that is not a peer id, or our own id.
 *  - `publish-failed`: gossipsub rejected a publish.
 *  - `not-running`: `send`/`publish` before `start()` finished or after `stop()`.
 */
export type DropReason =
  | 'oversize-frame'
  | 'malformed-frame'
  | 'oversize-group-frame'
  | 'unsigned-group-frame'
  | 'handler-error'
  | 'outbound-oversize'
  | 'send-not-connected'
  | 'send-queue-full'
  | 'send-failed'
  | 'send-invalid-peer'
  | 'publish-failed'
  | 'not-running'
  | 'handshake-foreign-cluster'
  | 'handshake-wire-version'
  | 'handshake-malformed'
  | DatagramDropReason

export interface Libp2pTransportInit {
  /**
   * Cluster name. Namespaces the direct protocol (`/conclave/<cluster>/direct/1.0.0`) and the
   * gossipsub topic (`conclave/<cluster>/v1`), so nodes of different clusters that happen to
   * connect neither open direct streams to nor hear broadcasts of each other.
   * Must be non-empty, without whitespace or `/`.
   */
  cluster: string
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0` (port 0: the OS picks one). */
  listen: readonly string[]
  /** What `addresses` (and identify) tell peers instead of the listen addresses (see advertise.ts). */
  advertise?: readonly AdvertisedAddress[]
  /**
   * Largest frame, in bytes, on either channel. Larger inbound direct frames reset the stream
   * they came on and are dropped (the sender reopens on its next send); larger inbound group
   * frames are dropped; larger outbound frames are not sent. Default 1 MiB.
   */
  maxFrameBytes?: number
  /**
   * Time budget of one dial: TCP connect + noise + yamux, plus negotiating the direct stream
   * when the dial was made to send (one budget for both). A refused port fails at once; a
   * silent one after this long. Default 1000 ms.
   */
  dialTimeoutMs?: number
  /**
   * Bytes allowed to wait, per peer, for the direct stream (while it opens, or while the peer
   * reads slowly); frames beyond it are dropped (`send-queue-full`). Default
   * max(16 MiB, 4 × maxFrameBytes).
   */
  maxQueuedBytes?: number
  /**
   * Connections to members this node may need (the member's `maxConnections`). libp2p's own
   * limit is this plus CONNECTION_RESERVE (observers, clients, joiners, probes); past it, it
   * refuses inbound connections and prunes the lowest-valued peers, which `protect`ed peers are
   * not. Default 1023.
   */
  maxConnections?: number
  /** Called once per dropped frame (or failed stream); see `DropReason`. Must not throw (it is guarded anyway). */
  onDrop?: (reason: DropReason) => void
  /**
   * Whether to open the UDP datagram channel (heartbeats). Observers, which send no
   * heartbeats, turn it off. @default true
   */
  datagrams?: boolean
  /**
   * A swarm key file's bytes (security/cluster-key.ts): every connection is wrapped in libp2p's
   * private-network protection keyed by it, so nodes without the same key cannot connect.
   */
  psk?: Uint8Array
  /**
   * The wire version this node speaks, told to (and checked against) the seeds it dials in the
   * handshake (see `onRejected`). Default 1.
   */
  wireVersion?: number
  /**
   * The peer key to run under (protobuf bytes, transport/peer-key.ts), asked for in `start()`:
   * the same key gives the same peer id, hence the same member id, across restarts. Undefined,
   * or a function that resolves to undefined: a fresh key each start.
   */
  peerKey?: () => Promise<Uint8Array | undefined>
  /**
   * Multicast DNS discovery (off when undefined): the node answers queries for `serviceTag`
   * with its advertised private addresses and queries every `intervalMs`; what it hears is
   * passed to `onDiscovered`, never dialled by libp2p itself. `serviceTag` is a DNS-SD name such
   * as `_conclave-1a2b._udp.local`.
   */
  mdns?: { readonly serviceTag: string, readonly intervalMs: number }
}

/** Counters for diagnostics and tests (no libp2p types leak out). */
export interface Libp2pTransportStats {
  /** Direct streams this node opened for sending, since start. One per peer unless streams broke. */
  directStreamsOpened: number
  /** Direct streams peers opened to this node, since start. */
  directStreamsAccepted: number
  /** Direct-protocol streams open now on our connections (to `peer` only, when given). */
  openDirectStreams: { inbound: number, outbound: number }
  /** Open connections (to `peer` only, when given). */
  connections: number
  /** Datagrams sent, and received and authenticated, since start (all peers). */
  datagrams: { sent: number, delivered: number }
}

/** The transport plus libp2p-specific diagnostics. */
export interface Libp2pTransport extends Transport {
  stats(peer?: string): Libp2pTransportStats
}

const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
const HANDSHAKE_PROTOCOL = '/conclave/handshake/1.0.0'
const MAX_HANDSHAKE_BYTES = 256
const DEFAULT_DIAL_TIMEOUT_MS = 1000
/** New connections being set up at once (see dial-slots.ts). */
const CONCURRENT_DIALS = 4

/** Connections beyond the members' (`maxConnections`): observers, clients, joiners, status probes. */
export const CONNECTION_RESERVE = 64

/** The peer-store tag of view members: libp2p's pruner closes the lowest-valued peers first. */
const VIEW_TAG = 'conclave-view'

/**
 * The cluster key: a connection whose other end has no key, or another, fails in the noise
 * handshake (pnet's stream cipher turns its bytes into garbage) and never reaches us.
 */
function protectedBy (psk: Uint8Array | undefined): { connectionProtector?: ReturnType<typeof preSharedKey> } {
  return psk !== undefined ? { connectionProtector: preSharedKey({ psk }) } : {}
}

/** Builds the libp2p node; a function so its (inferred) type can name the node below. */
/** libp2p's error for listen addresses its transports could not bind. */
function isListenFailure (err: unknown): boolean {
  return err instanceof Error && err.name === 'UnsupportedListenAddressesError'
}

/** Multicast discovery for buildNode: its settings and where what it hears goes. */
interface Discovery { readonly serviceTag: string, readonly intervalMs: number, readonly onPeer: (addresses: string[]) => void }

/** The optional peer dependency behind the `mdns` option, pinned like the rest of libp2p. */
export const MDNS_PACKAGE = '@libp2p/mdns@11.0.47'

/** Whether `@libp2p/mdns` can be loaded here (it is an optional peer dependency). */
function mdnsInstalled (): boolean {
  try {
    import.meta.resolve('@libp2p/mdns')
    return true
  } catch {
    return false
  }
}

async function buildNode (listen: readonly string[], advertise: readonly AdvertisedAddress[], topic: string, dialTimeoutMs: number, maxConnections: number, psk: Uint8Array | undefined, peerKey: Uint8Array | undefined, discovery: Discovery | undefined) {
  ensurePromiseWithResolvers()
  // Loaded only when asked for: most deployments never multicast, and need not install it.
  const mdns = discovery === undefined ? undefined : (await import('@libp2p/mdns')).mdns
  return await createLibp2p({
    start: false,
    ...(peerKey !== undefined ? { privateKey: decodePeerKey(peerKey) } : {}),
    addresses: {
      listen: [...listen],
      // Never a wildcard, loopback only when there is nothing else, or exactly `advertise`.
      announceFilter: addrs => advertisedAddresses(addrs.map(a => a.toString()), advertise).map(a => multiaddr(a))
    },
    ...protectedBy(psk),
    // Pairs of members that are not monitors (see core/membership.ts) exchange nothing while
    // idle, and that is fine: whether a peer lives is the membership core's judgement (its
    // heartbeats and probes), not the transport's. So no inactivity timeout (0 disables it),
    // and no keep-alive traffic of libp2p's own (yamux pings, the connection monitor below):
    // at 50 members those were about 7 stream frames a second per member for nothing.
    transports: [tcp({ inboundSocketInactivityTimeout: 0, outboundSocketInactivityTimeout: 0 })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ enableKeepAlive: false })],
    // No peer discovery but opt-in mdns, no peer/content routers, no relay transport and no
    // autodial: the membership core decides whom to dial (trap 5, trap 6). mdns answers go to
    // the member as seed addresses (every answer, not only a peer's first, which is all that
    // libp2p's own peer:discovery event reports).
    peerDiscovery: discovery === undefined || mdns === undefined
      ? []
      : [components => {
          const service = mdns({ serviceTag: discovery.serviceTag, interval: discovery.intervalMs, broadcast: true })(components)
          service.addEventListener('peer', evt => { discovery.onPeer(evt.detail.multiaddrs.map(ma => ma.toString())) })
          return service
        }],
    connectionManager: {
      dialTimeout: dialTimeoutMs,
      // libp2p's default (300) would refuse and prune members' connections in a view of 300.
      maxConnections: maxConnections + CONNECTION_RESERVE,
      // Trap 4: defaults (5 inbound connections per second per host, 10 pending) make a seed
      // refuse a burst of joiners from one host (tests, containers, NAT).
      inboundConnectionThreshold: 10_000,
      maxIncomingPendingConnections: 1024,
      // Reconnects only ever apply to KEEP_ALIVE-tagged peers, which we never tag; the core
      // re-dials by itself. Zero makes that explicit.
      reconnectRetries: 0
    },
    // The connection monitor (a ping stream per connection every 10 s) is off: see above.
    connectionMonitor: { enabled: false },
    services: {
      // Gossipsub will not start without identify (UnmetServiceDependenciesError).
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictSign, // authors are authenticated: onGroup's `peer` is the signer
        emitSelf: false,
        allowPublishToZeroTopicPeers: true, // trap 9: otherwise publish rejects when alone
        floodPublish: true, // trap 10: first delivery to a new subscriber without waiting a heartbeat
        fallbackToFloodsub: false, // nobody here speaks floodsub; one protocol less to negotiate
        allowedTopics: [topic], // ignore subscriptions and messages for any other topic
        scoreParams: {
          // Trap 3: more than 10 peers on one IP (loopback, NAT, containers) would be scored
          // below the publish threshold and silently stop receiving.
          IPColocationFactorWeight: 0
        }
      })
    }
  })
}

type Node = Awaited<ReturnType<typeof buildNode>>

/** The sending half of the direct channel to one peer. */
interface Channel {
  readonly peer: string
  /** Length-prefixed frames in send order; the stream's sink drains it. Ended when the channel closes. */
  readonly out: FrameQueue
  /** Set once the stream is open and negotiated. */
  stream?: Stream
  closed: boolean
}

function describe (err: unknown): string {
  if (err instanceof Error) return err.name !== '' && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message
  return String(err)
}

/** Creates a transport; nothing touches the network before `start()`. Throws only on a bad `init`. */
export function createLibp2pTransport (init: Libp2pTransportInit): Libp2pTransport {
  return new Libp2pTransportImpl(init)
}

class Libp2pTransportImpl implements Libp2pTransport {
  private readonly protocol: string
  private readonly datagramProtocol: string
  private readonly datagrams: DatagramChannel | undefined
  private readonly topic: string
  private readonly listen: readonly string[]
  private readonly advertise: readonly AdvertisedAddress[]
  private readonly maxFrameBytes: number
  private readonly dialTimeoutMs: number
  private readonly maxConnections: number
  private readonly maxQueuedBytes: number
  private readonly onDropCb: ((reason: DropReason) => void) | undefined
  private readonly psk: Uint8Array | undefined
  private readonly peerKey: (() => Promise<Uint8Array | undefined>) | undefined
  private readonly cluster: string
  private readonly wireVersion: number
  private readonly mdns: { readonly serviceTag: string, readonly intervalMs: number } | undefined
  /** Our handshake, length-prefixed: the same for every seed. */
  private readonly handshakeFrame: Uint8Array

  private node: Node | undefined
  private handlers: TransportHandlers | undefined
  private selfId = ''
  private running = false
  private stopping: Promise<void> | undefined
  /** Peers with at least one open connection, as announced by peer:connect / peer:disconnect. */
  private readonly connected = new Set<string>()
  /** The view's members (`protect`): tagged in the peer store so that pruning spares them. */
  private protectedPeers = new Set<string>()
  /** Send channels by peer id (opening or open). Doubles as the in-flight dedupe for peer dials. */
  private readonly channels = new Map<string, Channel>()
  /** In-flight dials to bare addresses, by address string. */
  private readonly dialing = new Set<string>()
  private streamsOpened = 0
  private streamsAccepted = 0
  private readonly dialSlots = new DialSlots(CONCURRENT_DIALS)
  /** Handshake deadlines, and connections that failed the handshake, cut off if the far side does not hang up. */
  private readonly handshakeTimers = new Set<NodeJS.Timeout>()

  constructor (init: Libp2pTransportInit) {
    if (typeof init.cluster !== 'string' || !/^[^\s/]+$/.test(init.cluster)) {
      throw new TypeError(`cluster must be a non-empty name without whitespace or "/": ${JSON.stringify(init.cluster)}`)
    }
    this.protocol = `/conclave/${init.cluster}/direct/1.0.0`
    this.datagramProtocol = `/conclave/${init.cluster}/datagram/1.0.0`
    this.datagrams = init.datagrams === false
      ? undefined
      : new DatagramChannel({
        onDatagram: (peer, payload) => { this.call(() => { this.handlers?.onDatagram?.(peer, payload) }) },
        onDrop: reason => { this.drop(reason) }
      })
    this.topic = `conclave/${init.cluster}/v1`
    this.listen = [...init.listen]
    this.advertise = [...(init.advertise ?? [])]
    this.maxFrameBytes = positive(init.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes')
    this.dialTimeoutMs = positive(init.dialTimeoutMs, DEFAULT_DIAL_TIMEOUT_MS, 'dialTimeoutMs')
    this.maxConnections = positive(init.maxConnections, 1023, 'maxConnections')
    this.maxQueuedBytes = positive(init.maxQueuedBytes, Math.max(16 * 1024 * 1024, 4 * this.maxFrameBytes), 'maxQueuedBytes')
    this.onDropCb = init.onDrop
    this.psk = init.psk
    this.peerKey = init.peerKey
    this.cluster = init.cluster
    this.wireVersion = init.wireVersion ?? 1
    this.mdns = init.mdns
    if (this.mdns !== undefined && !mdnsInstalled()) {
      throw new InvalidOptionError('mdns', `the package ${MDNS_PACKAGE}, an optional peer dependency (npm install ${MDNS_PACKAGE})`, true)
    }
    this.handshakeFrame = lp.encode.single(new TextEncoder().encode(JSON.stringify({ cluster: this.cluster, wire: this.wireVersion }))).subarray()
  }

  get id (): string { return this.selfId }

  get addresses (): readonly string[] {
    if (this.node === undefined || !this.running) return []
    // Trap 11: these already end in /p2p/<id>; never append it again.
    return this.node.getMultiaddrs().map(ma => ma.toString())
  }

  async start (handlers: TransportHandlers): Promise<void> {
    if (this.node !== undefined || this.stopping !== undefined) throw new Error('transport already started or stopped')
    this.handlers = handlers
    // Host names are resolved here: libp2p's TCP transport listens on IP addresses only.
    const listen = await resolveListen(this.listen)
    const discovery = this.mdns === undefined
      ? undefined
      : { ...this.mdns, onPeer: (addresses: string[]) => { this.call(() => { this.handlers?.onDiscovered?.(addresses) }) } }
    const node = await buildNode(listen.map(a => a.resolved), this.advertise, this.topic, this.dialTimeoutMs, this.maxConnections, this.psk, await this.peerKey?.(), discovery)
    this.node = node
    this.selfId = node.peerId.toString()
    try {
      node.addEventListener('peer:connect', this.onPeerConnect)
      node.addEventListener('peer:disconnect', this.onPeerDisconnect)
      node.services.pubsub.addEventListener('message', this.onPubsubMessage)
      await node.start()
      // Registered before anyone can know our address (they learn it from `addresses`, after start()).
      await node.handle(this.protocol, this.onInboundStream, {
        // One persistent stream per peer; a few more while a broken one is replaced.
        maxInboundStreams: 16,
        maxOutboundStreams: 16
      })
      await node.handle(HANDSHAKE_PROTOCOL, this.onHandshakeStream, { maxInboundStreams: 4, maxOutboundStreams: 4 })
      node.services.pubsub.subscribe(this.topic)
      if (this.datagrams !== undefined) {
        await node.handle(this.datagramProtocol, this.onInvitationStream, { maxInboundStreams: 4, maxOutboundStreams: 4 })
        const host = node.getMultiaddrs().map(hostOf).find(h => h !== undefined)
        if (host !== undefined && await this.datagrams.start(host)) {
          // Peers that connected while we were starting get their invitation now.
          for (const conn of node.getConnections()) this.sendInvitation(conn.remotePeer)
        }
      }
      if (this.stopping !== undefined) throw new Error('transport stopped while starting')
      this.running = true
    } catch (err) {
      this.removeListeners(node)
      try { await node.stop() } catch { /* keep the start error */ }
      // Leave the transport as if never started (start() may be retried, e.g. on another port).
      this.node = undefined
      this.selfId = ''
      this.connected.clear()
      await this.datagrams?.stop()
      if (isListenFailure(err)) throw await diagnoseListen(listen, err)
      throw err
    }
  }

  stop (): Promise<void> {
    if (this.stopping !== undefined) return this.stopping
    this.running = false
    this.dialSlots.drain()
    for (const t of this.handshakeTimers) clearTimeout(t)
    this.handshakeTimers.clear()
    this.stopping = (async () => {
      for (const ch of this.channels.values()) this.closeChannel(ch, false)
      this.channels.clear()
      this.connected.clear()
      await this.datagrams?.stop()
      const node = this.node
      if (node === undefined) return
      this.removeListeners(node)
      try {
        // Trap 2: typed `void | Promise<void>`.
        await node.stop()
      } catch {
        // Nothing left to do: stop() closes what it can and must not reject.
      }
    })()
    return this.stopping
  }

  isConnected (peer: string): boolean {
    return this.connected.has(peer)
  }

  connectionCount (): number {
    return this.node === undefined || this.stopping !== undefined ? 0 : this.node.getConnections().length
  }

  protect (peers: readonly string[]): void {
    const node = this.node
    if (node === undefined || this.stopping !== undefined) return
    const next = new Set(peers)
    next.delete(this.selfId)
    const changes: Array<[string, boolean]> = []
    for (const p of next) if (!this.protectedPeers.has(p)) changes.push([p, true])
    for (const p of this.protectedPeers) if (!next.has(p)) changes.push([p, false])
    this.protectedPeers = next
    for (const [peer, on] of changes) {
      let peerId
      try { peerId = peerIdFromString(peer) } catch { continue }
      node.peerStore.merge(peerId, { tags: { [VIEW_TAG]: on ? { value: 100 } : undefined } }).catch(() => { /* stopped meanwhile */ })
    }
  }

  disconnect (peer: string): void {
    const node = this.node
    if (node === undefined || this.stopping !== undefined) return
    let peerId
    try { peerId = peerIdFromString(peer) } catch { return }
    const ch = this.channels.get(peer)
    if (ch?.stream !== undefined) this.closeChannel(ch, false)
    // Across a partition a graceful close cannot complete: abort, do not wait for the far side.
    for (const conn of node.getConnections(peerId)) {
      try { conn.abort(new Error('member removed')) } catch { /* already closed */ }
    }
  }

  stats (peer?: string): Libp2pTransportStats {
    const open = { inbound: 0, outbound: 0 }
    let connections = 0
    if (this.node !== undefined && this.stopping === undefined) {
      let conns = this.node.getConnections()
      if (peer !== undefined) conns = conns.filter(c => c.remotePeer.toString() === peer)
      connections = conns.length
      for (const conn of conns) {
        for (const s of conn.streams) {
          if (s.protocol === this.protocol && s.status === 'open') open[s.direction]++
        }
      }
    }
    const datagrams = { sent: this.datagrams?.sent ?? 0, delivered: this.datagrams?.delivered ?? 0 }
    return { directStreamsOpened: this.streamsOpened, directStreamsAccepted: this.streamsAccepted, openDirectStreams: open, connections, datagrams }
  }

  send (peer: string, frame: Uint8Array, opts: SendOptions = {}): void {
    try {
      if (!this.running) { this.drop('not-running'); return }
      if (frame.byteLength > this.maxFrameBytes) { this.drop('outbound-oversize'); return }
      if (peer === this.selfId) { this.drop('send-invalid-peer'); return }
      // Sessions exist only while connected (forgotten on disconnect): onlyIfConnected holds.
      if (opts.datagramOnly === true) { this.datagrams?.send(peer, frame); return }
      if (opts.unreliable === true && this.datagrams?.send(peer, frame) === true) return
      if (opts.onlyIfConnected === true && !this.connected.has(peer)) { this.drop('send-not-connected'); return }
      let ch = this.channels.get(peer)
      if (ch !== undefined && this.isBroken(ch)) {
        // The stream broke and its sink has not noticed yet: a push now would vanish silently.
        this.closeChannel(ch, true)
        ch = undefined
      }
      if (ch === undefined) {
        let peerId: PeerId
        try { peerId = peerIdFromString(peer) } catch { this.drop('send-invalid-peer'); return }
        ch = this.openChannel(peer, peerId, opts.addresses ?? [], true, opts.dialTimeoutMs)
      }
      if (ch.out.readableLength + frame.byteLength > this.maxQueuedBytes) { this.drop('send-queue-full'); return }
      ch.out.push(lp.encode.single(frame))
    } catch {
      this.drop('send-failed')
    }
  }

  publish (frame: Uint8Array): void {
    try {
      if (!this.running || this.node === undefined) { this.drop('not-running'); return }
      if (frame.byteLength > this.maxFrameBytes) { this.drop('outbound-oversize'); return }
      // Trap 13: resolves when queued; pacing is the caller's business. Trap 9: catch everything.
      this.node.services.pubsub.publish(this.topic, frame).catch(() => { this.drop('publish-failed') })
    } catch {
      this.drop('publish-failed')
    }
  }

  dial (target: { peer?: string, addresses: readonly string[] }, opts: { readonly dialTimeoutMs?: number } = {}): void {
    try {
      if (!this.running) return
      const addresses = [...(target.addresses ?? [])]
      if (target.peer !== undefined) {
        const peer = target.peer
        if (peer === this.selfId) return
        const existing = this.channels.get(peer)
        if (existing !== undefined && !this.isBroken(existing)) return // opening or open: deduped
        if (existing !== undefined) this.closeChannel(existing, true)
        let peerId: PeerId
        try {
          peerId = peerIdFromString(peer)
        } catch (err) {
          this.later(() => { this.handlers?.onDialFailed({ peer }, `invalid peer id: ${describe(err)}`) })
          return
        }
        this.openChannel(peer, peerId, addresses, false, opts.dialTimeoutMs)
        return
      }
      for (const address of addresses) this.dialAddress(address, opts.dialTimeoutMs ?? this.dialTimeoutMs)
    } catch (err) {
      this.later(() => { this.handlers?.onDialFailed({ peer: target.peer }, describe(err)) })
    }
  }

  // ---- direct channel: sending ----

  /**
   * Registers a channel for `peer` and starts opening its stream (dialling if needed). `urgent`:
   * a frame waits for it, so it goes before dials that only build the mesh.
   */
  private openChannel (peer: string, peerId: PeerId, addresses: readonly string[], urgent: boolean, dialTimeoutMs = this.dialTimeoutMs): Channel {
    const ch: Channel = { peer, out: new FrameQueue(), closed: false }
    this.channels.set(peer, ch)
    this.runChannel(ch, peerId, addresses, urgent, dialTimeoutMs).catch(() => { this.closeChannel(ch, true) })
    return ch
  }

  private async runChannel (ch: Channel, peerId: PeerId, addresses: readonly string[], urgent: boolean, dialTimeoutMs: number): Promise<void> {
    const node = this.node
    // Yield first: failures below call handlers, which must not run inside send()/dial().
    await Promise.resolve()
    if (node === undefined || ch.closed) return
    // A new connection waits for a dial slot; a stream on an existing connection does not.
    const release = this.connected.has(ch.peer) ? () => {} : await this.dialSlots.acquire(urgent || ch.out.readableLength > 0)
    let stream: Stream
    try {
      if (ch.closed || !this.running) return
      const addrs = parseAddresses(addresses, peerId)
      // Merged (not replaced): libp2p keeps what identify learnt. The peer store strips a
      // trailing /p2p/<id> and the dialler re-appends it exactly once (trap 11).
      if (addrs.length > 0) await node.peerStore.merge(peerId, { multiaddrs: addrs })
      if (ch.closed) return
      // Reuses an existing connection, else dials; the signal bounds dial and protocol
      // negotiation together (with a signal, libp2p does not add its own dialTimeout).
      stream = await node.dialProtocol(peerId, this.protocol, { signal: AbortSignal.timeout(dialTimeoutMs) })
    } catch (err) {
      if (ch.closed) return
      this.closeChannel(ch, true)
      this.call(() => { this.handlers?.onDialFailed({ peer: ch.peer }, describe(err)) })
      return
    } finally {
      release()
    }
    if (ch.closed) {
      stream.abort(new Error('send channel closed'))
      return
    }
    ch.stream = stream
    this.streamsOpened++
    // We never read from our sending stream; closing our read side lets the stream finish
    // cleanly once the remote closes its write side (it does so at once).
    stream.closeRead().catch(() => {})
    try {
      // Trap 14: one stream, many frames. Note: after a reset this await may stay pending until
      // the next push (libp2p wraps the source in a generator, whose return() waits for it), so
      // send() checks `isBroken` before pushing; disconnect and stop() end the queue.
      await stream.sink(ch.out)
    } catch {
      // Reset, connection closed, ... : the channel is replaced on the next send.
    }
    this.closeChannel(ch, true)
  }

  /** True when the channel's stream can no longer carry frames. */
  private isBroken (ch: Channel): boolean {
    if (ch.closed) return true
    const s = ch.stream
    return s !== undefined && (s.status !== 'open' || (s.writeStatus !== 'writing' && s.writeStatus !== 'ready'))
  }

  /** Ends a channel; frames still queued are lost (`send-failed` when `countLoss`). Idempotent. */
  private closeChannel (ch: Channel, countLoss: boolean): void {
    if (ch.closed) return
    ch.closed = true
    if (this.channels.get(ch.peer) === ch) this.channels.delete(ch.peer)
    const lost = ch.out.readableLength > 0
    ch.out.end()
    if (countLoss && lost && this.running) this.drop('send-failed')
  }

  // ---- direct channel: receiving ----

  private readonly onInboundStream = ({ stream, connection }: IncomingStreamData): void => {
    const peer = connection.remotePeer.toString()
    this.streamsAccepted++
    // Inbound streams are receive-only: close our write side so the stream can end fully.
    stream.closeWrite().catch(() => {})
    void this.readInbound(peer, stream)
  }

  private async readInbound (peer: string, stream: Stream): Promise<void> {
    try {
      // `keepOpenOnReturn`: when decode throws, its for-await would "return" the stream's source
      // first, which closes the stream locally without telling the sender (yamux sends nothing
      // for a read close), and the sender would write into the void. Keeping the stream open
      // lets the abort below send a RST, so the sender's stream breaks and it reopens.
      for await (const chunk of lp.decode(keepOpenOnReturn(stream.source), { maxDataLength: this.maxFrameBytes })) {
        if (this.stopping !== undefined) { stream.abort(new Error('transport stopped')); return }
        const frame = chunk.subarray() // one contiguous Uint8Array (may be a view, not a copy)
        this.call(() => { this.handlers?.onDirect(peer, frame) })
      }
    } catch (err) {
      const name = err instanceof Error ? err.name : ''
      if (name === 'InvalidDataLengthError') {
        // Too large: stop reading this stream before buffering it; the sender reopens.
        this.drop('oversize-frame')
        stream.abort(err as Error)
      } else if (name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError' || name === 'UnexpectedEOFError') {
        this.drop('malformed-frame')
        stream.abort(err as Error)
      }
      // Anything else is the stream or connection going away: nothing to count. Aborting an
      // already closed or reset stream is a no-op; otherwise it releases it.
      else stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  // ---- dialling bare addresses ----

  private dialAddress (address: string, dialTimeoutMs: number): void {
    if (this.dialing.has(address)) return // concurrent dials to one target do not pile up
    const node = this.node
    if (node === undefined) return
    let ma: Multiaddr
    try {
      ma = multiaddr(address)
    } catch (err) {
      this.later(() => { this.handlers?.onDialFailed({ address }, `invalid address: ${describe(err)}`) })
      return
    }
    // A seed list usually contains our own address: dialling ourselves is a no-op.
    if (ma.getPeerId() === this.selfId || this.isOwnAddress(address)) return
    this.dialing.add(address)
    void (async () => {
      let release = (): void => {}
      try {
        await Promise.resolve()
        release = await this.dialSlots.acquire(true)
        if (!this.running) return
        // No /p2p/ in a seed: libp2p learns the peer id from the noise handshake.
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(dialTimeoutMs) })
        release()
        if (!this.running) return
        const peer = conn.remotePeer.toString()
        // In parallel with opening the direct stream (a join waits for no extra round trip).
        void this.handshake(address, conn)
        // Ensure the direct stream too, as the contract says ("and direct stream").
        const existing = this.channels.get(peer)
        if (peer !== this.selfId && (existing === undefined || this.isBroken(existing))) {
          if (existing !== undefined) this.closeChannel(existing, true)
          this.openChannel(peer, conn.remotePeer, [], true)
        }
      } catch (err) {
        this.call(() => { this.handlers?.onDialFailed({ address }, describe(err)) })
      } finally {
        release()
        this.dialing.delete(address)
      }
    })()
  }

  // ---- handshake ----

  /** Tells the seed at `address` who we are and checks its answer; a mismatch closes `conn`. */
  private async handshake (address: string, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    let theirs: Handshake | undefined
    try {
      const stream = await conn.newStream(HANDSHAKE_PROTOCOL, { signal: AbortSignal.timeout(this.dialTimeoutMs) })
      theirs = await this.withDeadline(stream, async () => {
        await stream.sink([this.handshakeFrame])
        return await readHandshake(stream.source)
      })
      await stream.close()
    } catch {
      // No answer (a stream reset, a slow peer): the direct stream's own negotiation decides.
      return
    }
    // No answer we can read (the connection went away meanwhile): nothing learned.
    if (theirs === undefined || (theirs.cluster === this.cluster && theirs.wire === this.wireVersion)) return
    if (this.stopping !== undefined) return
    conn.abort(new Error('handshake mismatch'))
    const answer = theirs
    this.call(() => { this.handlers?.onRejected?.(address, peer, answer) })
  }

  private readonly onHandshakeStream = ({ stream, connection }: IncomingStreamData): void => {
    void (async () => {
      try {
        const theirs = await this.withDeadline(stream, async () => await readHandshake(stream.source))
        await stream.sink([this.handshakeFrame])
        await stream.close()
        if (theirs === undefined) this.drop('handshake-malformed')
        else if (theirs.cluster !== this.cluster) this.drop('handshake-foreign-cluster')
        else if (theirs.wire !== this.wireVersion) this.drop('handshake-wire-version')
        else return
        // The dialler closes once it has read our answer; one that does not is cut off later.
        this.afterDialTimeout(() => { if (connection.status === 'open') connection.abort(new Error('handshake mismatch')) })
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })()
  }

  /** Runs `fn` on `stream`, aborting the stream if the far side has not answered within the dial timeout. */
  private async withDeadline<T> (stream: Stream, fn: () => Promise<T>): Promise<T> {
    const cancel = this.afterDialTimeout(() => { stream.abort(new Error('handshake timed out')) })
    try {
      return await fn()
    } finally {
      cancel()
    }
  }

  /** Runs `fn` after the dial timeout unless cancelled first; stop() clears what is pending. */
  private afterDialTimeout (fn: () => void): () => void {
    const timer = setTimeout(() => { this.handshakeTimers.delete(timer); fn() }, this.dialTimeoutMs)
    this.handshakeTimers.add(timer)
    return () => { clearTimeout(timer); this.handshakeTimers.delete(timer) }
  }

  private isOwnAddress (address: string): boolean {
    const suffix = `/p2p/${this.selfId}`
    const bare = address.endsWith(suffix) ? address.slice(0, -suffix.length) : address
    for (const own of this.addresses) {
      if (own === address || own === bare + suffix || own === bare) return true
    }
    return false
  }

  // ---- libp2p events ----

  // Connection events are tracked from the moment the node starts listening (a peer may dial a
  // fixed listen port before start() resolves), not only once `running`.
  private readonly onPeerConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    if (this.stopping !== undefined || this.connected.has(peer)) return
    this.connected.add(peer)
    this.sendInvitation(evt.detail)
    this.call(() => { this.handlers?.onConnected(peer) })
  }

  private readonly onPeerDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail.toString()
    if (this.stopping !== undefined || !this.connected.delete(peer)) return
    this.datagrams?.forget(peer)
    // Its streams are gone with the connection; make the next send open a new one at once.
    const ch = this.channels.get(peer)
    if (ch?.stream !== undefined) this.closeChannel(ch, true)
    this.call(() => { this.handlers?.onDisconnected(peer) })
  }

  private readonly onPubsubMessage = (evt: CustomEvent<Message>): void => {
    if (this.stopping !== undefined) return
    const msg = evt.detail
    if (msg.topic !== this.topic) return
    if (msg.type !== 'signed') { this.drop('unsigned-group-frame'); return }
    const from = msg.from.toString()
    if (from === this.selfId) return
    if (msg.data.byteLength > this.maxFrameBytes) { this.drop('oversize-group-frame'); return }
    const data = msg.data
    this.call(() => { this.handlers?.onGroup(from, data) })
  }

  // ---- datagram invitations ----

  /** Hands `peerId` a fresh invitation to send us datagrams, over the authenticated connection. */
  private sendInvitation (peerId: PeerId): void {
    const node = this.node
    const invitation = this.datagrams?.invite(peerId.toString())
    if (node === undefined || invitation === undefined) return
    void (async () => {
      try {
        const stream = await node.dialProtocol(peerId, this.datagramProtocol, { signal: AbortSignal.timeout(this.dialTimeoutMs) })
        await stream.sink([lp.encode.single(encodeInvitation(invitation))])
        await stream.close()
      } catch {
        // No datagrams from that peer then: its heartbeats come on the direct stream.
      }
    })()
  }

  private readonly onInvitationStream = ({ stream, connection }: IncomingStreamData): void => {
    const peer = connection.remotePeer.toString()
    void (async () => {
      try {
        for await (const chunk of lp.decode(stream.source, { maxDataLength: 512 })) {
          const invitation = decodeInvitation(chunk.subarray())
          if (invitation === undefined) this.drop('invitation-malformed')
          else if (this.connected.has(peer) && this.stopping === undefined) this.datagrams?.accept(peer, invitation, hostOf(connection.remoteAddr))
          break
        }
        await stream.close()
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })()
  }

  private removeListeners (node: Node): void {
    node.removeEventListener('peer:connect', this.onPeerConnect)
    node.removeEventListener('peer:disconnect', this.onPeerDisconnect)
    node.services.pubsub.removeEventListener('message', this.onPubsubMessage)
  }

  // ---- guards ----

  /** Invokes a handler unless stop() was called; a throw is contained and counted. */
  private call (fn: () => void): void {
    if (this.stopping !== undefined || this.handlers === undefined) return
    try {
      fn()
    } catch {
      this.drop('handler-error')
    }
  }

  /** Like `call`, but on a later microtask (never inside the public method that caused it). */
  private later (fn: () => void): void {
    queueMicrotask(() => { this.call(fn) })
  }

  private drop (reason: DropReason): void {
    try {
      this.onDropCb?.(reason)
    } catch {
      // onDrop must not break the transport.
    }
  }
}

/** The IP address of a multiaddr (`/ip4/…` or `/ip6/…`), or undefined. */
function hostOf (ma: Multiaddr): string | undefined {
  const [first] = ma.stringTuples()
  return first !== undefined && (first[0] === 4 || first[0] === 41) ? first[1] : undefined
}

function positive (value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`)
  return value
}

interface Handshake { readonly cluster: string, readonly wire: number }

/** Reads one handshake frame; undefined when it is not one (too long, not our JSON, absent). */
async function readHandshake (source: Stream['source']): Promise<Handshake | undefined> {
  try {
    for await (const chunk of lp.decode(source, { maxDataLength: MAX_HANDSHAKE_BYTES })) {
      const v: unknown = JSON.parse(new TextDecoder().decode(chunk.subarray()))
      if (typeof v !== 'object' || v === null) return undefined
      const { cluster, wire } = v as Record<string, unknown>
      return typeof cluster === 'string' && cluster.length <= 64 && typeof wire === 'number' && Number.isSafeInteger(wire) ? { cluster, wire } : undefined
    }
  } catch {
    // malformed: too long, bad JSON, a broken stream
  }
  return undefined
}

/** A view of `source` whose `return()` does not end the underlying iterator. */
function keepOpenOnReturn<T> (source: AsyncIterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => {
      const it = source[Symbol.asyncIterator]()
      return {
        next: async () => await it.next(),
        return: async (value?: unknown) => ({ done: true as const, value: value as T })
      }
    }
  }
}

/** Parses multiaddr strings for `peerId`, skipping unparsable ones and ones naming another peer. */
function parseAddresses (addresses: readonly string[], peerId: PeerId): Multiaddr[] {
  const out: Multiaddr[] = []
  const id = peerId.toString()
  for (const a of addresses) {
    try {
      const ma = multiaddr(a)
      const named = ma.getPeerId()
      if (named !== null && named !== id) continue
      out.push(ma)
    } catch {
      // ignore: the dial then fails (reported) if nothing usable is left
    }
  }
  return out
}

const DIRECT_PROTOCOL = /^\/conclave\/([^/]+)\/direct\/1\.0\.0$/

/** A node that only dials (no listening, no gossip), for asking a member something and going. */
async function throwawayNode (timeoutMs: number, psk: Uint8Array | undefined) {
  ensurePromiseWithResolvers()
  return await createLibp2p({
    addresses: { listen: [] },
    ...protectedBy(psk),
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { dialTimeout: timeoutMs, reconnectRetries: 0 },
    services: { identify: identify() }
  })
}

/**
 * The cluster names a member at `address` serves (`conclave status` without `--cluster`):
 * dials it with a throwaway node and reads the direct protocols its identify lists. Rejects
 * when the address does not answer, or identify does not complete, within `timeoutMs`.
 */
export async function discoverClusters (address: string, timeoutMs = 3000, psk?: Uint8Array): Promise<string[]> {
  const node = await throwawayNode(timeoutMs, psk)
  const signal = AbortSignal.timeout(timeoutMs)
  let onIdentify: ((evt: CustomEvent<{ protocols: string[] }>) => void) | undefined
  try {
    const identified = new Promise<string[]>((resolve, reject) => {
      onIdentify = evt => resolve(evt.detail.protocols)
      node.addEventListener('peer:identify', onIdentify)
      signal.addEventListener('abort', () => reject(new Error(`${address} did not identify itself within ${timeoutMs} ms`)), { once: true })
    })
    identified.catch(() => {}) // awaited below; a dial failure must not leave it unhandled
    await node.dial(multiaddr(address), { signal })
    const protocols = await identified
    return protocols.flatMap(p => DIRECT_PROTOCOL.exec(p)?.[1] ?? []).sort()
  } finally {
    if (onIdentify !== undefined) node.removeEventListener('peer:identify', onIdentify)
    await node.stop()
  }
}

/** What a seed address answered to `probeSeeds`. */
export type SeedProbe =
  | { readonly address: string, readonly answered: true, readonly peer: string, readonly cluster: string, readonly wire: number }
  | { readonly address: string, readonly answered: false, readonly reason: string }

/**
 * Asks each address who is there (`conclave status`): one throwaway node dials it, sends the
 * handshake a joiner of `cluster` at wire version `wire` would send, and reads the answer (the
 * member's cluster and wire version). At most `concurrency` dials at a time; each gets
 * `timeoutMs`. Never rejects.
 */
export async function probeSeeds (addresses: readonly string[], cluster: string, wire: number, timeoutMs = 3000, psk?: Uint8Array, concurrency = 8): Promise<SeedProbe[]> {
  const node = await throwawayNode(timeoutMs, psk)
  const frame = lp.encode.single(new TextEncoder().encode(JSON.stringify({ cluster, wire }))).subarray()
  const probe = async (address: string): Promise<SeedProbe> => {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      const conn = await node.dial(multiaddr(address), { signal })
      const stream = await conn.newStream(HANDSHAKE_PROTOCOL, { signal })
      const onAbort = (): void => { stream.abort(new Error('no handshake answer')) }
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        await stream.sink([frame])
        const theirs = await readHandshake(stream.source)
        if (theirs === undefined) return { address, answered: false, reason: signal.aborted ? `no answer within ${timeoutMs} ms` : 'not a Conclave member' }
        return { address, answered: true, peer: conn.remotePeer.toString(), ...theirs }
      } finally {
        signal.removeEventListener('abort', onAbort)
        await conn.close().catch(() => {})
      }
    } catch (err) {
      return { address, answered: false, reason: signal.aborted ? `no answer within ${timeoutMs} ms` : describe(err) }
    }
  }
  try {
    const out: SeedProbe[] = new Array(addresses.length)
    let next = 0
    await Promise.all(Array.from({ length: Math.min(concurrency, addresses.length) }, async () => {
      while (next < addresses.length) {
        const i = next++
        out[i] = await probe(addresses[i] as string)
      }
    }))
    return out
  } finally {
    await node.stop()
  }
}
