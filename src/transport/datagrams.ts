/**
 * Authenticated UDP datagrams between members: the cheap path for heartbeats.
 *
 * Why: a frame on the libp2p stream path (length prefix, yamux, noise, it-* async iterators)
 * costs about 0.4 ms of CPU per side on this project's 2-core machine; a UDP datagram about
 * 0.07 ms. Heartbeats are most of an idle member's traffic and are repeated anyway, so losing
 * one is harmless. This is memberlist's and JGroups' choice too (UDP for failure detection).
 *
 * Trust: datagrams carry no libp2p identity, so each member hands every peer, over the
 * authenticated and encrypted libp2p connection, an *invitation*: a port, a random token and a
 * random 32-byte key for that peer alone. The peer prefixes its datagrams with the token and
 * appends HMAC-SHA256(key, header + payload) (truncated to 16 bytes). A datagram is delivered
 * as coming from the peer the token was issued to only if its MAC verifies and its sequence
 * number is above every one seen in that session (a replayed or reordered-older datagram is
 * dropped). Nobody else knows the key, so nobody else can speak for that peer, and a key lives
 * only as long as one connection.
 *
 * Packet: [0x43][token: 8][seq: uint32 hi, uint32 lo][payload][mac: 16]
 *
 * Invariants: no method throws; a bad datagram is dropped and counted (`onDrop`), never
 * delivered; `stop()` closes the socket.
 */
import { createSocket, type Socket } from 'node:dgram'
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'

export type DatagramDropReason =
  | 'datagram-malformed'
  | 'datagram-unknown-session'
  | 'datagram-bad-mac'
  | 'datagram-replay'
  | 'datagram-send-failed'
  | 'invitation-malformed'

export interface DatagramChannelInit {
  /** An authenticated datagram from `peer`. */
  onDatagram: (peer: string, payload: Uint8Array) => void
  onDrop: (reason: DatagramDropReason) => void
  /** Payloads above this go on the stream instead (one UDP datagram, no fragmentation). @default 1200 */
  maxPayloadBytes?: number
}

/** What a member hands a peer so that the peer may send it datagrams. */
export interface Invitation {
  readonly port: number
  /** Where to send; when absent, the address the libp2p connection comes from. */
  readonly host: string | undefined
  readonly token: Uint8Array
  readonly key: Uint8Array
}

const MAGIC = 0x43
const TOKEN_BYTES = 8
const KEY_BYTES = 32
const MAC_BYTES = 16
const HEADER_BYTES = 1 + TOKEN_BYTES + 8
const INVITATION_VERSION = 1

interface Inbound { readonly peer: string, readonly key: Uint8Array, lastSeq: number }
interface Outbound { readonly host: string, readonly port: number, readonly token: Uint8Array, readonly key: Uint8Array, seq: number }

export class DatagramChannel {
  private socket: Socket | undefined
  private boundHost: string | undefined
  private readonly maxPayloadBytes: number
  /** Sessions we issued, by token (hex), and the token of each peer. */
  private readonly inbound = new Map<string, Inbound>()
  private readonly inboundOf = new Map<string, string>()
  /** Invitations we accepted: where and how to send to each peer. */
  private readonly outbound = new Map<string, Outbound>()
  /** Datagrams sent and delivered (authenticated) since start. */
  sent = 0
  delivered = 0

  constructor (private readonly init: DatagramChannelInit) {
    this.maxPayloadBytes = init.maxPayloadBytes ?? 1200
  }

  /** The bound UDP port, or undefined when the channel is not running. */
  get port (): number | undefined {
    return this.socket === undefined ? undefined : this.socket.address().port
  }

  /** Binds a UDP socket on `host` (the member's listen address). Resolves false if it cannot. */
  async start (host: string): Promise<boolean> {
    const family = isIP(host)
    if (family === 0 || this.socket !== undefined) return false
    // Peers' addresses are IPs already: skip dgram's per-send dns.lookup (a tick and a callback).
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: (address, _options, callback) => { callback(null, address, family) } })
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(0, host, () => { socket.off('error', reject); resolve() })
      })
    } catch {
      try { socket.close() } catch { /* not bound */ }
      return false
    }
    // A monitor gets one reply from every member at once each heartbeat period: room for bursts
    // (capped by the kernel at net.core.rmem_max; the default 208 KiB overflowed at 50 members).
    try { socket.setRecvBufferSize(4 * 1024 * 1024) } catch { /* keep the default */ }
    // After bind, an error (ICMP unreachable on some systems) must not crash the process.
    socket.on('error', () => { this.init.onDrop('datagram-send-failed') })
    socket.on('message', (msg: Buffer) => { this.receive(msg) })
    this.socket = socket
    this.boundHost = host === '0.0.0.0' || host === '::' ? undefined : host
    return true
  }

  async stop (): Promise<void> {
    const socket = this.socket
    this.socket = undefined
    this.inbound.clear()
    this.inboundOf.clear()
    this.outbound.clear()
    if (socket === undefined) return
    await new Promise<void>(resolve => { try { socket.close(() => resolve()) } catch { resolve() } })
  }

  /** Issues (or re-issues, invalidating the old one) the invitation for `peer`. Undefined when not running. */
  invite (peer: string): Invitation | undefined {
    const port = this.port
    if (port === undefined) return undefined
    this.revoke(peer)
    const token = randomBytes(TOKEN_BYTES)
    const key = randomBytes(KEY_BYTES)
    const hex = token.toString('hex')
    this.inbound.set(hex, { peer, key, lastSeq: 0 })
    this.inboundOf.set(peer, hex)
    return { port, host: this.boundHost, token, key }
  }

  /** Accepts `peer`'s invitation; `fallbackHost` is where its connection comes from. */
  accept (peer: string, invitation: Invitation, fallbackHost: string | undefined): void {
    const host = invitation.host ?? fallbackHost
    if (host === undefined || isIP(host) === 0) { this.init.onDrop('invitation-malformed'); return }
    this.outbound.set(peer, { host, port: invitation.port, token: invitation.token, key: invitation.key, seq: 0 })
  }

  /** Ends both directions of `peer`'s sessions (its connection closed). */
  forget (peer: string): void {
    this.revoke(peer)
    this.outbound.delete(peer)
  }

  /** Whether a datagram to `peer` can go now. */
  canSend (peer: string, bytes: number): boolean {
    return this.socket !== undefined && bytes <= this.maxPayloadBytes && this.outbound.has(peer)
  }

  /** Sends `payload` to `peer`; false (nothing sent) when `canSend` is false. */
  send (peer: string, payload: Uint8Array): boolean {
    const out = this.outbound.get(peer)
    const socket = this.socket
    if (out === undefined || socket === undefined || payload.byteLength > this.maxPayloadBytes) return false
    out.seq++
    const packet = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength + MAC_BYTES)
    packet[0] = MAGIC
    packet.set(out.token, 1)
    packet.writeUInt32BE(Math.floor(out.seq / 2 ** 32), 1 + TOKEN_BYTES)
    packet.writeUInt32BE(out.seq % 2 ** 32, 1 + TOKEN_BYTES + 4)
    packet.set(payload, HEADER_BYTES)
    const body = packet.subarray(0, HEADER_BYTES + payload.byteLength)
    createHmac('sha256', out.key).update(body).digest().copy(packet, body.byteLength, 0, MAC_BYTES)
    this.sent++
    try {
      socket.send(packet, out.port, out.host, err => { if (err != null) this.init.onDrop('datagram-send-failed') })
    } catch {
      this.init.onDrop('datagram-send-failed')
    }
    return true
  }

  private receive (msg: Buffer): void {
    if (msg.byteLength < HEADER_BYTES + MAC_BYTES || msg[0] !== MAGIC) { this.init.onDrop('datagram-malformed'); return }
    const session = this.inbound.get(msg.toString('hex', 1, 1 + TOKEN_BYTES))
    if (session === undefined) { this.init.onDrop('datagram-unknown-session'); return }
    const bodyEnd = msg.byteLength - MAC_BYTES
    const mac = createHmac('sha256', session.key).update(msg.subarray(0, bodyEnd)).digest().subarray(0, MAC_BYTES)
    if (!timingSafeEqual(mac, msg.subarray(bodyEnd))) { this.init.onDrop('datagram-bad-mac'); return }
    const seq = msg.readUInt32BE(1 + TOKEN_BYTES) * 2 ** 32 + msg.readUInt32BE(1 + TOKEN_BYTES + 4)
    if (seq <= session.lastSeq) { this.init.onDrop('datagram-replay'); return }
    session.lastSeq = seq
    this.delivered++
    // A copy: the payload outlives this callback (the socket may reuse its buffer).
    this.init.onDatagram(session.peer, new Uint8Array(msg.subarray(HEADER_BYTES, bodyEnd)))
  }

  private revoke (peer: string): void {
    const hex = this.inboundOf.get(peer)
    if (hex === undefined) return
    this.inbound.delete(hex)
    this.inboundOf.delete(peer)
  }
}

/** Invitation wire form: [version][port: u16][token: 8][key: 32][host length: u8][host: utf-8]. */
export function encodeInvitation (inv: Invitation): Uint8Array {
  const host = Buffer.from(inv.host ?? '', 'utf8')
  const out = Buffer.alloc(1 + 2 + TOKEN_BYTES + KEY_BYTES + 1 + host.byteLength)
  out[0] = INVITATION_VERSION
  out.writeUInt16BE(inv.port, 1)
  out.set(inv.token, 3)
  out.set(inv.key, 3 + TOKEN_BYTES)
  out[3 + TOKEN_BYTES + KEY_BYTES] = host.byteLength
  out.set(host, 4 + TOKEN_BYTES + KEY_BYTES)
  return out
}

/** Parses an invitation; undefined when it is malformed. */
export function decodeInvitation (bytes: Uint8Array): Invitation | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const fixed = 4 + TOKEN_BYTES + KEY_BYTES
  if (b.byteLength < fixed || b[0] !== INVITATION_VERSION) return undefined
  const port = b.readUInt16BE(1)
  const hostLength = b[fixed - 1] as number
  if (port === 0 || b.byteLength !== fixed + hostLength) return undefined
  const host = hostLength === 0 ? undefined : b.toString('utf8', fixed, fixed + hostLength)
  if (host !== undefined && isIP(host) === 0) return undefined
  return {
    port,
    host,
    token: new Uint8Array(b.subarray(3, 3 + TOKEN_BYTES)), // copies
    key: new Uint8Array(b.subarray(3 + TOKEN_BYTES, 3 + TOKEN_BYTES + KEY_BYTES))
  }
}
