/**
 * Which application payloads arrive as they were sent. The wire is msgpack (codec.ts), which
 * silently turns some values into others: a function into nothing, a Map into a plain object, a
 * class instance into an object without its class, an Error into an array. A payload holding such
 * a value is refused at the call (InvalidPayloadError, naming where), so a receiver never sees
 * data the sender did not mean. A cycle is refused too, before the encoder would overflow its stack.
 *
 * Faithful: null, undefined, booleans, numbers, strings, bigints within 64 bits, Date,
 * Uint8Array (Buffer included; it arrives as a Buffer), arrays and plain objects of those
 * (string keys; a null prototype is fine).
 */
import { InvalidPayloadError } from '../errors.js'

/** Deeper than this is refused: the encoder recurses once per level. */
export const MAX_PAYLOAD_DEPTH = 256
const INT64_MIN = -(2n ** 63n)
const UINT64_MAX = 2n ** 64n - 1n

export function checkPayload (payload: unknown): void {
  check(payload, 'payload', new Set(), 0)
}

function check (value: unknown, path: string, ancestors: Set<object>, depth: number): void {
  switch (typeof value) {
    case 'string': case 'number': case 'boolean': case 'undefined': return
    case 'bigint':
      if (value < INT64_MIN || value > UINT64_MAX) throw new InvalidPayloadError(path, 'a bigint outside the 64-bit range msgpack carries')
      return
    case 'function': throw new InvalidPayloadError(path, 'a function cannot be sent (it would arrive as undefined)')
    case 'symbol': throw new InvalidPayloadError(path, 'a symbol cannot be sent')
  }
  if (value === null) return
  const obj = value as object
  if (obj instanceof Date || obj instanceof Uint8Array) return
  if (ancestors.has(obj)) throw new InvalidPayloadError(path, 'a cycle: the value contains itself')
  if (depth >= MAX_PAYLOAD_DEPTH) throw new InvalidPayloadError(path, `nested deeper than ${MAX_PAYLOAD_DEPTH} levels`)
  ancestors.add(obj)
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) check(obj[i], `${path}[${i}]`, ancestors, depth + 1)
  } else {
    const proto: unknown = Object.getPrototypeOf(obj)
    if (proto !== Object.prototype && proto !== null) {
      const kind = typeof (obj as { constructor?: { name?: unknown } }).constructor?.name === 'string' ? (obj as { constructor: { name: string } }).constructor.name : 'an object with a prototype'
      throw new InvalidPayloadError(path, `a ${kind} would arrive as a plain object or an array, not as a ${kind}; send plain objects, arrays, strings, numbers, booleans, bigints, Dates or Uint8Arrays`)
    }
    for (const key of Object.keys(obj)) check((obj as Record<string, unknown>)[key], `${path}.${key}`, ancestors, depth + 1)
  }
  ancestors.delete(obj)
}
