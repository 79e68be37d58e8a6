import { describe, expect, it } from 'vitest'
import { checkPayload, MAX_PAYLOAD_DEPTH } from '../src/transport/payload.js'
import { InvalidPayloadError } from '../src/errors.js'

function pathOfError (payload: unknown): string | undefined {
  try { checkPayload(payload) } catch (err) {
    expect(err).toBeInstanceOf(InvalidPayloadError)
    return (err as InvalidPayloadError).path
  }
  return undefined
}

describe('checkPayload', () => {
  it('accepts what arrives as sent, a value shared by two branches included (not a cycle)', () => {
    const shared = { k: [1, 2] }
    for (const ok of [null, undefined, 0, 'x', true, 12n, new Date(0), new Uint8Array(2), Buffer.from('a'),
      { a: shared, b: shared }, [shared, shared], Object.assign(Object.create(null) as object, { k: 1 })]) {
      expect(pathOfError(ok)).toBeUndefined()
    }
  })

  it('names the path of the first bad value, through arrays and objects', () => {
    expect(pathOfError(() => 1)).toBe('payload')
    expect(pathOfError({ a: [{ b: 1 }, { c: [0, Symbol('s')] }] })).toBe('payload.a[1].c[1]')
    expect(pathOfError({ a: { b: -(2n ** 64n) } })).toBe('payload.a.b')
    const cyc: unknown[] = [1]
    cyc.push({ back: cyc })
    expect(pathOfError({ list: cyc })).toBe('payload.list[1].back')
  })

  it(`refuses nesting deeper than ${MAX_PAYLOAD_DEPTH} levels, and takes ${MAX_PAYLOAD_DEPTH}`, () => {
    const nest = (depth: number): unknown => { let v: unknown = 1; for (let i = 0; i < depth; i++) v = [v]; return v }
    expect(pathOfError(nest(MAX_PAYLOAD_DEPTH))).toBeUndefined()
    const path = pathOfError(nest(MAX_PAYLOAD_DEPTH + 1))
    expect(path).toBe('payload' + '[0]'.repeat(MAX_PAYLOAD_DEPTH))
  })
})
