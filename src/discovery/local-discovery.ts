/**
 * What local discovery (multicast DNS, the `mdns` option) has heard: TCP addresses of nodes
 * that answered this cluster's service name, each forgotten when it has not answered for three
 * query intervals (a member that stopped). The member treats them as seed addresses: dialled
 * while it is alone, dialled by the coordinator when no view member has them (groups that
 * started at the same instant and founded apart meet and merge).
 *
 * An answer is a claim by anyone on the network segment; the handshake (cluster name, wire
 * version, cluster key) decides whether the node at an address is one of ours, as for seeds.
 */
import { createHash } from 'node:crypto'

/** Addresses kept at most (further ones are ignored until some expire). */
export const MAX_DISCOVERED = 1024

const TCP_ADDR = /^\/(ip4|ip6)\/[^/]+\/tcp\/\d+$/

/**
 * The DNS-SD service name members of `cluster` query and answer: a hash of the name, since a
 * cluster name may hold dots and be longer than a DNS label allows. Clusters of another name
 * use another service name and never hear of each other.
 */
export function mdnsServiceTag (cluster: string): string {
  return `_conclave-${createHash('sha256').update(cluster).digest('hex').slice(0, 16)}._udp.local`
}

interface Entry { seenAt: number, dialedAt: number }

export class LocalDiscovery {
  private readonly entries = new Map<string, Entry>()

  constructor (private readonly intervalMs: number, private readonly now: () => number) {}

  /**
   * Records an answer. Returns the addresses worth dialling now: those not dialled within the
   * last query interval (every member answers every query, so the same address is heard often).
   */
  heard (addresses: readonly string[]): string[] {
    const now = this.now()
    this.expire(now)
    const fresh: string[] = []
    for (const a of addresses) {
      if (!TCP_ADDR.test(a)) continue
      let e = this.entries.get(a)
      if (e === undefined) {
        if (this.entries.size >= MAX_DISCOVERED) continue
        e = { seenAt: now, dialedAt: -Infinity }
        this.entries.set(a, e)
      }
      e.seenAt = now
      if (now - e.dialedAt >= this.intervalMs) fresh.push(a)
    }
    return fresh
  }

  /** `addresses` were dialled now (see `heard`). */
  dialed (addresses: readonly string[]): void {
    const now = this.now()
    for (const a of addresses) { const e = this.entries.get(a); if (e !== undefined) e.dialedAt = now }
  }

  /** The addresses heard within the last three query intervals. */
  addresses (): string[] {
    this.expire(this.now())
    return [...this.entries.keys()]
  }

  private expire (now: number): void {
    const ttl = 3 * this.intervalMs
    for (const [a, e] of this.entries) if (now - e.seenAt > ttl) this.entries.delete(a)
  }
}
