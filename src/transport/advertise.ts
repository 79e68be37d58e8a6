/**
 * Which of a node's addresses other members are told (its member record, identify): never a
 * wildcard, and loopback only when the node has no other address. With `advertise`, exactly
 * those (a container or pod listens on 0.0.0.0 but is dialled at its own address); one given
 * without a port takes each port the node listens on.
 */
import { isIP } from 'node:net'

export interface AdvertisedAddress { readonly ip: string, readonly port?: number }

const TCP_ADDR = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)(\/p2p\/[^/]+)?$/

export function advertisedAddresses (addrs: readonly string[], advertise: readonly AdvertisedAddress[]): string[] {
  const parsed = addrs.map(a => TCP_ADDR.exec(a)).filter((m): m is RegExpExecArray => m !== null)
  if (advertise.length > 0) {
    const suffix = parsed.find(m => m[4] !== undefined)?.[4] ?? ''
    const ports = [...new Set(parsed.map(m => Number(m[3])))]
    const out = advertise.flatMap(a => (a.port !== undefined ? [a.port] : ports).map(p => `/${isIP(a.ip) === 6 ? 'ip6' : 'ip4'}/${a.ip}/tcp/${p}${suffix}`))
    return [...new Set(out)]
  }
  const usable = addrs.filter(a => { const m = TCP_ADDR.exec(a); return m === null || !isWildcard(m[2] as string) })
  const routable = usable.filter(a => { const m = TCP_ADDR.exec(a); return m === null || !isLoopback(m[2] as string) })
  return routable.length > 0 ? routable : usable
}

export function isWildcard (ip: string): boolean { return ip === '0.0.0.0' || ip === '::' }

export function isLoopback (ip: string): boolean { return ip.startsWith('127.') || ip === '::1' }
