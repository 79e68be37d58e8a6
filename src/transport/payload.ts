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
  // The common payload is a flat object of primitives: no allocation on that path. The keys
  // walked so far are kept on a stack and joined into a path only for the error.
  if (typeof payload !== 'object' || payload === null) { checkLeaf(payload, []); return }
  check(payload, [], [])
}

/** Throws for a non-object value that does not arrive as sent. */
function checkLeaf (value: unknown, keys: ReadonlyArray<string | number>): void {
  switch (typeof value) {
    case 'bigint':
      if (value < INT64_MIN || value > UINT64_MAX) throw new InvalidPayloadError(pathOf(keys), 'a bigint outside the 64-bit range msgpack carries')
      return
    case 'function': throw new InvalidPayloadError(pathOf(keys), 'a function cannot be sent (it would arrive as undefined)')
    case 'symbol': throw new InvalidPayloadError(pathOf(keys), 'a symbol cannot be sent')
  }
}

/** `payload.a[3].b` for the keys a, 3, b. */
function pathOf (keys: ReadonlyArray<string | number>): string {
  let path = 'payload'
  for (const k of keys) path += typeof k === 'number' ? `[${k}]` : `.${k}`
  return path
}

/** `ancestors` holds the objects that contain `obj` (a cycle check; as deep as `keys` is long). */
function check (obj: object, keys: Array<string | number>, ancestors: object[]): void {
  if (obj instanceof Date || obj instanceof Uint8Array) return
  if (ancestors.includes(obj)) throw new InvalidPayloadError(pathOf(keys), 'a cycle: the value contains itself')
  if (keys.length >= MAX_PAYLOAD_DEPTH) throw new InvalidPayloadError(pathOf(keys), `nested deeper than ${MAX_PAYLOAD_DEPTH} levels`)
  ancestors.push(obj)
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) visit(obj[i], i, keys, ancestors)
  } else {
    const proto: unknown = Object.getPrototypeOf(obj)
    if (proto !== Object.prototype && proto !== null) {
      const kind = typeof (obj as { constructor?: { name?: unknown } }).constructor?.name === 'string' ? (obj as { constructor: { name: string } }).constructor.name : 'an object with a prototype'
      throw new InvalidPayloadError(pathOf(keys), `a ${kind} would arrive as a plain object or an array, not as a ${kind}; send plain objects, arrays, strings, numbers, booleans, bigints, Dates or Uint8Arrays`)
    }
    for (const key in obj) {
      if (Object.prototype.hasOwnProperty.call(obj, key)) visit((obj as Record<string, unknown>)[key], key, keys, ancestors)
    }
  }
  ancestors.pop()
}

function visit (value: unknown, key: string | number, keys: Array<string | number>, ancestors: object[]): void {
  const t = typeof value
  if (t === 'string' || t === 'number' || t === 'boolean' || t === 'undefined' || value === null) return
  keys.push(key)
  if (t === 'object') check(value as object, keys, ancestors)
  else checkLeaf(value, keys)
  keys.pop()
}
