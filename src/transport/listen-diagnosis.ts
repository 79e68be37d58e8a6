/**
 * Why a listen address could not be listened on. libp2p reports only that "some configured
 * addresses failed", naming an option of its own the user cannot set; after such a failure we
 * find the cause ourselves, by resolving the host and binding the port as the TCP transport
 * would, and report it as a ListenError. Runs only after a failed start: the success path pays
 * nothing.
 */
import { lookup } from 'node:dns/promises'
import { createServer } from 'node:net'
import { ListenError, type ListenFailure } from '../errors.js'

const ADDRESS = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d{1,5})/

/** The first of `addresses` (multiaddr strings) that cannot be listened on, as a ListenError. */
export async function diagnoseListen (addresses: readonly string[], cause: unknown): Promise<ListenError> {
  for (const address of addresses) {
    const m = ADDRESS.exec(address)
    if (m === null) continue
    const [, proto, name, portText] = m as unknown as [string, string, string, string]
    let host = name
    if (proto.startsWith('dns')) {
      try {
        host = (await lookup(name, { family: proto === 'dns6' ? 6 : proto === 'dns4' ? 4 : 0 })).address
      } catch (err) {
        return new ListenError(address, 'not-resolvable', err)
      }
      // The TCP transport listens on IP addresses only; a name that resolves is still refused.
      return new ListenError(address, 'other', cause, `a host name; listen on an IP address (${name} resolves to ${host})`)
    }
    const problem = await tryBind(host, Number(portText))
    if (problem !== undefined) return new ListenError(address, reasonOf(problem), problem)
  }
  return new ListenError(addresses.join(', '), 'other', cause)
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
