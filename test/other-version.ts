/** A test's member of another Conclave wire version (wire-versions.test.ts, status.test.ts). */
import { Packr } from 'msgpackr'
import { WIRE_VERSION } from '../src/transport/codec.js'
import type { Transport, TransportHandlers } from '../src/transport/transport.js'

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

/**
 * `inner` as a member of wire version `v` speaks: its frames go out stamped `v`, and of what
 * arrives only frames stamped `v` are read (as this process's codec reads its own version);
 * every other version arrives as one it does not read.
 */
export function nextVersion (inner: Transport, v: number): Transport {
  const stamp = (frame: Uint8Array, version: number): Uint8Array => packr.pack({ ...(packr.unpack(frame) as object), v: version })
  const incoming = (frame: Uint8Array): Uint8Array => {
    const version = (packr.unpack(frame) as { v?: unknown }).v
    return stamp(frame, version === v ? WIRE_VERSION : v)
  }
  return new Proxy(inner, {
    get (target, prop, receiver) {
      if (prop === 'send') return (to: string, frame: Uint8Array, opts?: object) => { target.send(to, stamp(frame, v), opts) }
      if (prop === 'publish') return (frame: Uint8Array) => { target.publish(stamp(frame, v)) }
      if (prop === 'start') {
        return async (h: TransportHandlers) => await target.start({
          ...h,
          onDirect: (peer, frame) => { h.onDirect(peer, incoming(frame)) },
          onGroup: (peer, frame) => { h.onGroup(peer, incoming(frame)) },
          onDatagram: (peer, frame) => { h.onDatagram?.(peer, incoming(frame)) }
        })
      }
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    }
  })
}
