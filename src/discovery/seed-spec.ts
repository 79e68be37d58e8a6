/**
 * What a seed string names (the `seeds` option, `--seed`, a config file's `seeds`):
 *
 *  - an address: `10.0.0.5:7000`, `[fd00::5]:7000`, `localhost:7000`, or a multiaddr
 *    `/ip4/10.0.0.5/tcp/7000` (with or without `/p2p/<id>`): dialled as it is;
 *  - a host name and port: `orders.default.svc.cluster.local:7000`, or `/dns4/…/tcp/7000`
 *    (A records only), `/dns6/…` (AAAA only), `/dns/…` (both): every address the name has,
 *    each with that port, resolved again while the member runs (a Kubernetes headless
 *    service answers with one A record per pod);
 *  - an SRV name: `_conclave._tcp.orders.default.svc.cluster.local` (a name whose first label
 *    starts with `_`, and no port): every target's addresses, each with the target's port.
 *
 * Parsing only; discovery/seed-set.ts resolves them.
 */
import { isIP } from 'node:net'
import { InvalidOptionError } from '../errors.js'

export type SeedSpec =
  | { readonly kind: 'address', readonly text: string, readonly address: string }
  | { readonly kind: 'host', readonly text: string, readonly host: string, readonly port: number, readonly family: 0 | 4 | 6 }
  | { readonly kind: 'srv', readonly text: string, readonly name: string }

const EXPECTED = '"host:port" (e.g. "10.0.0.5:7000" or "orders.default.svc.cluster.local:7000"), an SRV name ("_conclave._tcp.orders.default.svc.cluster.local") or a multiaddr ("/ip4/10.0.0.5/tcp/7000")'
/** A DNS name: labels of letters, digits, `-` and `_`, dot-separated, at most 253 characters. */
const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/

export function parseSeed (input: unknown, option: string): SeedSpec {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidOptionError(option, EXPECTED, input)
  const text = input
  if (text.startsWith('/')) {
    const m = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d{1,5})(\/p2p\/[A-Za-z0-9]+)?$/.exec(text)
    if (m === null) throw new InvalidOptionError(option, EXPECTED, input)
    const [, proto, host, portText] = m as unknown as [string, string, string, string]
    const port = toPort(portText, option, input)
    if (proto === 'ip4' || proto === 'ip6') {
      if (isIP(host) !== (proto === 'ip4' ? 4 : 6)) throw new InvalidOptionError(option, EXPECTED, input)
      return { kind: 'address', text, address: text }
    }
    if (!DNS_NAME.test(host)) throw new InvalidOptionError(option, EXPECTED, input)
    return { kind: 'host', text, host, port, family: proto === 'dns4' ? 4 : proto === 'dns6' ? 6 : 0 }
  }
  if (text.startsWith('_') && !text.includes(':')) {
    if (!DNS_NAME.test(text) || !/^_[^.]+\._(tcp|udp)\./.test(text)) throw new InvalidOptionError(option, EXPECTED, input)
    return { kind: 'srv', text, name: text }
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text)
  if (m === null) throw new InvalidOptionError(option, EXPECTED, input)
  const port = toPort(m[3] as string, option, input)
  const host = m[1] ?? (m[2] === 'localhost' ? '127.0.0.1' : m[2] as string)
  const family = isIP(host)
  if (family === 4) return { kind: 'address', text, address: `/ip4/${host}/tcp/${port}` }
  if (family === 6) return { kind: 'address', text, address: `/ip6/${host}/tcp/${port}` }
  if (m[1] !== undefined || !DNS_NAME.test(host)) throw new InvalidOptionError(option, EXPECTED, input)
  return { kind: 'host', text, host, port, family: 0 }
}

function toPort (text: string, option: string, input: string): number {
  const port = Number(text)
  if (port < 1 || port > 65535) throw new InvalidOptionError(option, 'a port from 1 to 65535', input)
  return port
}

/** `/ip4/a/tcp/p` or `/ip6/a/tcp/p` for an address and port. */
export function tcpMultiaddr (ip: string, port: number): string {
  return `${isIP(ip) === 6 ? '/ip6' : '/ip4'}/${ip}/tcp/${port}`
}
