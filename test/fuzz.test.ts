/**
 * The live fuzz run (fuzz/run.ts) in small: three member processes on 127.0.0.1 take hostile
 * frames of every kind on every channel, a flood and raw TCP garbage; none crashes, no view
 * changes, and the drops are counted by reason. `conclave fuzz` runs the full-size one.
 */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { runFuzz } from '../src/fuzz/run.js'
import { fuzzVerdict } from '../src/cli/fuzz-command.js'
import { conclaveBin } from '../src/testing/member-process.js'

describe('live fuzz', () => {
  it('3000 hostile frames, a flood and raw garbage: no crash, no view change, drops counted by reason', async () => {
    const record = await runFuzz({
      frames: 3000,
      fuzzers: 2,
      ratePerTarget: 150,
      flood: 3000,
      rawConnections: 10,
      seed: 42,
      maxMessageBytes: 16 * 1024,
      signal: new AbortController().signal
    })
    expect(record.members.map(m => m.stderrTail).join('')).not.toMatch(/Unhandled|uncaught/i)
    expect(record.crashes).toBe(0)
    expect(record.viewChanges).toBe(0)
    expect(fuzzVerdict(record)).toEqual([])
    expect(record.framesTotal).toBe(6000)
    // Every layer refused something: framing, decoding, the envelope, the schema, the limits,
    // and the identity checks of the core (claims about the members it learned from a hello).
    for (const reason of ['malformed', 'foreign-cluster', 'unknown-version', 'invalid', 'oversize-frame', 'rate-limited-outsider', 'spoofed-hello', 'spoofed-join']) {
      expect(record.dropped[reason], reason).toBeGreaterThan(0)
    }
  }, 90_000)

  it('refuses bad flags with a one-line reason', () => {
    const r = spawnSync(process.execPath, [conclaveBin(), 'fuzz', '--frames', 'lots'], { encoding: 'utf8', timeout: 20_000 })
    expect(r.status).toBe(2)
    expect(String(r.stderr).trim()).toMatch(/^conclave: --frames: expected a whole number/)
  })
})
