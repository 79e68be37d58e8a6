/**
 * The transport contract: what the cluster shell needs from a network.
 *
 * Two channels:
 *  - direct: ordered, reliable frames to one peer over one persistent stream per peer
 *    (join, view agreement, heartbeats, point-to-point user messages);
 *  - group: one-to-all frames on the cluster's topic (user broadcasts).
 *
 * Frames are opaque bytes here; encoding and validation live in `codec.ts`.
 * Implementations never throw out of event handlers and never reject unhandled:
 * every failure is reported through `TransportHandlers`.
 */

/** Callbacks a transport invokes. They are called serially, never concurrently. */
export interface TransportHandlers {
  /** A direct stream to `peer` is open (we dialled it, or it dialled us). */
  onConnected(peer: string): void
  /** The last connection to `peer` closed. */
  onDisconnected(peer: string): void
  /** A dial we asked for failed (refused, timed out, or the handshake failed). `peer` is set when the dial named a peer id. */
  onDialFailed(target: { peer?: string, address?: string }, reason: string): void
  /** A frame arrived on the direct stream from `peer`. */
  onDirect(peer: string, frame: Uint8Array): void
  /** A frame arrived on the group topic, published by `peer` (signed by it). */
  onGroup(peer: string, frame: Uint8Array): void
  /**
   * A frame sent `unreliable` arrived as a datagram from `peer` (authenticated as from it; it
   * may have been preceded by lost ones, never by a newer one). Optional: a transport without
   * datagrams delivers such frames through `onDirect`.
   */
  onDatagram?(peer: string, frame: Uint8Array): void
  /**
   * A seed we dialled at `address` answered the handshake as a member of another cluster, or
   * speaking another wire version; the connection is closed (the dial also fails). Optional.
   */
  onRejected?(address: string, peer: string, theirs: { readonly cluster: string, readonly wire: number }): void
  /**
   * Local discovery (multicast DNS) heard a node at `addresses` (TCP multiaddrs without a peer
   * id); nothing is dialled. It may be of another cluster. Optional.
   */
  onDiscovered?(addresses: readonly string[]): void
}

export interface SendOptions {
  readonly addresses?: readonly string[]
  readonly onlyIfConnected?: boolean
  readonly unreliable?: boolean
  /** Send as a datagram or not at all (no session, too large): a second copy of a frame also sent on the stream. */
  readonly datagramOnly?: boolean
  /** If this send opens a connection, give the dial up after this long (a probe across a possible partition). */
  readonly dialTimeoutMs?: number
}

export interface Transport {
  /** This node's peer id (also the member id). Available after `start()`. */
  readonly id: string
  /** Addresses others can dial, each ending in `/p2p/<id>`. Available after `start()`. */
  readonly addresses: readonly string[]
  start(handlers: TransportHandlers): Promise<void>
  /** Closes every connection, stream, timer and socket. Idempotent. */
  stop(): Promise<void>
  /**
   * Queues `frame` on the direct stream to `peer`, opening a connection first if needed
   * (using `addresses`, or addresses learned earlier). With `onlyIfConnected`, drops the
   * frame instead of dialling. With `unreliable`, the frame may go as a datagram (cheaper; may
   * be lost or overtake earlier frames): for frames that are repeated anyway, like heartbeats.
   * Never throws; failures surface as `onDialFailed`.
   */
  send(peer: string, frame: Uint8Array, opts?: SendOptions): void
  /** Publishes `frame` on the group topic. Never throws. */
  publish(frame: Uint8Array): void
  /** Ensures a connection (and direct stream) to a peer or to a bare address (a seed, `/ip4/…/tcp/…`). */
  dial(target: { peer?: string, addresses: readonly string[] }, opts?: { readonly dialTimeoutMs?: number }): void
  isConnected(peer: string): boolean
  /** Closes every connection to `peer` (a member removed as dead). Optional; never throws. */
  disconnect?(peer: string): void
  /**
   * The members of the installed view: when the transport must shed connections (its limit),
   * theirs go last. Replaces the previous set. Optional; never throws.
   */
  protect?(peers: readonly string[]): void
  /** Open connections, to anyone. Optional. */
  connectionCount?(): number
}
