/**
 * Listen addresses as libp2p's TCP transport can take them, and why one could not be listened
 * on.
 *
 * The TCP transport listens on IP addresses only, so a host name (`/dns4/…`, from `host:port`
 * with a name) is resolved here, before libp2p sees it: a name that does not resolve is a
 * ListenError `not-resolvable` at once, and one that does is listened on at the address it
 * resolves to (the first the system resolver gives, as `dns.lookup` orders them).
 *
 * libp2p reports a failure to listen only as "some configured addresses failed", naming an
 * option of its own the user cannot set; after such a failure we find the cause ourselves, by
 * binding the port as the TCP transport would, and report it as a ListenError. That runs only
 * after a failed start: the success path pays nothing.
 */
import dns from 'node:dns'
import { createServer } from 'node:net'
import { ListenError, type ListenFailure } from '../errors.js'

const ADDRESS = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d{1,5})(.*)$/

/** A listen address as configured, and what libp2p is given for it. */
export interface ListenAddress {
  readonly configured: string
  /** An `/ip4/` or `/ip6/` multiaddr (the configured one when it names an IP already). */
  readonly resolved: string
  /** The host name it was resolved from, if any. */
  readonly name?: string
}

/**
 * Resolves the host names of `addresses` (multiaddr strings). Throws ListenError `not-resolvable`
 * (its cause the resolver's error) for the first name that does not resolve.
 */
export async function resolveListen (addresses: readonly string[]): Promise<ListenAddress[]> {
  const out: ListenAddress[] = []
  for (const configured of addresses) {
    const m = ADDRESS.exec(configured)
    if (m === null || !(m[1] as string).startsWith('dns')) { out.push({ configured, resolved: configured }); continue }
    const [, proto, name, port, rest] = m as unknown as [string, string, string, string, string]
    let found: { address: string, family: number }
    try {
      found = await lookup(name, proto === 'dns6' ? 6 : proto === 'dns4' ? 4 : 0)
    } catch (err) {
      throw new ListenError(configured, 'not-resolvable', err, err instanceof Error ? err.message : String(err))
    }
    out.push({ configured, name, resolved: `/${found.family === 6 ? 'ip6' : 'ip4'}/${found.address}/tcp/${port}${rest}` })
  }
  return out
}

/**
 * Through the `dns` module object, looked up at each call, not a binding taken at import: a
 * process may replace `dns.lookup` (a test's offline resolver, an embedder's own), and the
 * listen addresses must resolve as the rest of the process does.
 */
async function lookup (name: string, family: 0 | 4 | 6): Promise<{ address: string, family: number }> {
  return await new Promise((resolve, reject) => {
    dns.lookup(name, { family }, (err, address, resolvedFamily) => {
      if (err !== null) reject(err)
      else resolve({ address, family: resolvedFamily })
    })
  })
}

/** The first of `addresses` that cannot be listened on, as a ListenError; `cause` is libp2p's error. */
export async function diagnoseListen (addresses: readonly ListenAddress[], cause: unknown): Promise<ListenError> {
  for (const { configured, resolved, name } of addresses) {
    const m = ADDRESS.exec(resolved)
    if (m === null) continue
    const [, , host, portText] = m as unknown as [string, string, string, string]
    const problem = await tryBind(host, Number(portText))
    if (problem === undefined) continue
    return new ListenError(configured, reasonOf(problem), problem, name !== undefined ? `${name} resolves to ${host}` : undefined)
  }
  return new ListenError(addresses.map(a => a.configured).join(', '), 'other', cause)
}

function reasonOf (err: NodeJS.ErrnoException): ListenFailure {
  switch (err.code) {
    case 'EADDRINUSE': return 'address-in-use'
    case 'EADDRNOTAVAIL': return 'address-not-local'
    case 'EACCES': case 'EPERM': return 'permission-denied'
    default: return 'other'
  }
}

async function tryBind (host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', err => { resolve(err as NodeJS.ErrnoException) })
    server.listen({ host, port, exclusive: true }, () => { server.close(() => { resolve(undefined) }) })
  })
}
