/**
 * The floor under state transfer's throughput: a bare libp2p stream (tcp + noise + yamux, the
 * stack members use) carrying raw chunks from a running process to one that has just started,
 * with none of Conclave's framing, acknowledgements or window. A state transfer cannot beat it,
 * so the benchmark reports it next to `conclave bench state` (bench/stream-floor.ts).
 */
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { performance } from 'node:perf_hooks'
import { ensurePromiseWithResolvers } from './promise-with-resolvers.js'

const PROTOCOL = '/conclave-floor/1'

async function node (): Promise<Awaited<ReturnType<typeof createLibp2p>>> {
  ensurePromiseWithResolvers()
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ enableKeepAlive: false })],
    connectionMonitor: { enabled: false }
  })
  await n.start()
  return n
}

export interface FloorSender { readonly address: string, stop: () => Promise<void> }

/** Serves `bytes` bytes in `chunkBytes` writes to every receiver that opens the stream. */
export async function startFloorSender (bytes: number, chunkBytes: number): Promise<FloorSender> {
  const n = await node()
  const chunk = new Uint8Array(chunkBytes).fill(7)
  await n.handle(PROTOCOL, ({ stream }) => {
    // A fresh copy per write, as a snapshot's chunks would be.
    stream.sink((function * () { for (let s = 0; s < bytes; s += chunkBytes) yield chunk.slice(0, Math.min(chunkBytes, bytes - s)) })())
      .catch(() => { stream.abort(new Error('floor receiver went away')) })
  })
  return { address: (n.getMultiaddrs()[0] as { toString: () => string }).toString(), stop: async () => { await n.stop() } }
}

export interface FloorReceipt { readonly bytes: number, readonly ms: number, readonly fromFirstByteMs: number }

/** Dials `address`, reads until `bytes` arrived: time from the dial and from the first byte. */
export async function receiveFloor (address: string, bytes: number): Promise<FloorReceipt> {
  const n = await node()
  try {
    const t0 = performance.now()
    const stream = await n.dialProtocol(multiaddr(address), PROTOCOL)
    await stream.closeWrite()
    let got = 0
    let first: number | undefined
    for await (const c of stream.source) {
      first ??= performance.now()
      got += c.byteLength
      if (got >= bytes) break
    }
    const end = performance.now()
    return { bytes: got, ms: end - t0, fromFirstByteMs: end - (first ?? end) }
  } finally {
    await n.stop()
  }
}
