/**
 * `conclave fuzz`: hostile frames at a three-member cluster of its own on 127.0.0.1
 * (fuzz/run.ts), then a verdict: no crash, no view change. Exits 1 when either happened, 130
 * when interrupted.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { interruptible, parseCommandLine, wholeNumber } from './usage.js'
import { runFuzz, type FuzzRecord } from '../fuzz/run.js'
import { describeMachine, machine } from '../bench/machine.js'

export const FUZZ_HELP = `Usage: conclave fuzz [--frames 100000] [--fuzzers 8] [--seed N] [--out file.json]

Starts three members on 127.0.0.1 and, from peers outside their view, sends them
hostile frames on every channel (direct streams, the group topic, datagrams):
random bytes, truncated and mutated protocol frames, oversized frames, frames of
another wire version or cluster, maps with fields of the wrong kinds, and claims
about other members (spoofed joins, suspicions, commits nobody promised). Then a
flood from one peer at full speed, and raw TCP garbage at the ports. Passes when
no member crashed and no view changed; prints the members' drop counters.

Options:
  --frames <n>          hostile frames in the paced phase (default 100000)
  --fuzzers <n>         fuzzing peers, each with its own identity (default 8)
  --rate <n>            frames per second from each fuzzer to each member (default 120)
  --flood <n>           frames of the flood phase (default 20000)
  --raw <n>             raw TCP connections sending garbage (default 200)
  --seed <n>            the random seed (default: from the clock)
  --out <file.json>     where the figures go (default fuzz-<time>.json)
  -h, --help            show this help
`

export async function runFuzzCommand (args: string[]): Promise<number> {
  const values = parseCommandLine(args, {
    frames: { type: 'string', default: '100000' },
    fuzzers: { type: 'string', default: '8' },
    rate: { type: 'string', default: '120' },
    flood: { type: 'string', default: '20000' },
    raw: { type: 'string', default: '200' },
    seed: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  })
  if (values.help === true) { process.stdout.write(FUZZ_HELP); return 0 }
  const frames = wholeNumber('frames', values.frames, 1, 10_000_000)
  const fuzzers = wholeNumber('fuzzers', values.fuzzers, 1, 32)
  const rate = wholeNumber('rate', values.rate, 1, 10_000)
  const flood = wholeNumber('flood', values.flood, 0, 10_000_000)
  const raw = wholeNumber('raw', values.raw, 0, 100_000)
  const seed = values.seed !== undefined ? wholeNumber('seed', values.seed, 0, Number.MAX_SAFE_INTEGER) : Date.now() % 1_000_000
  const out = values.out ?? `fuzz-${new Date().toISOString().replace(/[:.]/g, '-')}.json`

  const run = interruptible()
  const host = machine()
  process.stdout.write(`fuzz: ${frames} frames from ${fuzzers} peers, then a flood of ${flood} and ${raw} raw connections; seed ${seed}; ${describeMachine(host)}\n`)
  let lastPrint = 0
  try {
    const record = await runFuzz({
      frames,
      fuzzers,
      ratePerTarget: rate,
      flood,
      rawConnections: raw,
      seed,
      maxMessageBytes: 16 * 1024,
      signal: run.signal,
      onProgress: (sent, total) => {
        if (Date.now() - lastPrint < 5000) return
        lastPrint = Date.now()
        process.stdout.write(`  ${sent} / ${total} frames\n`)
      }
    })
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, JSON.stringify({ settings: { frames, fuzzers, rate, flood, raw, seed }, machine: host, interrupted: run.interrupted(), ...record }, null, 1))
    const broken = fuzzVerdict(record)
    process.stdout.write(fuzzReport(record) + `\nverdict: ${broken.length === 0 ? 'PASS' : `FAIL — ${broken.join('; ')}`}\nfigures: ${out}\n`)
    return run.interrupted() ? 130 : broken.length === 0 ? 0 : 1
  } finally {
    run.dispose()
  }
}

export function fuzzVerdict (r: FuzzRecord): string[] {
  const broken: string[] = []
  if (r.crashes > 0) broken.push(`${r.crashes} members crashed (${r.members.filter(m => m.crashed).map(m => m.name).join(', ')})`)
  if (r.viewChanges > 0) broken.push(`${r.viewChanges} view changes`)
  return broken
}

export function fuzzReport (r: FuzzRecord): string {
  const kinds = Object.entries(r.sent).map(([k, v]) => `${k} ${v}`).join(', ')
  const drops = Object.entries(r.dropped).sort((a, b) => b[1] - a[1])
  const received = drops.reduce((n, [, v]) => n + v, 0)
  return [
    '',
    `frames sent: ${r.framesTotal} in ${(r.durationMs / 1000).toFixed(0)} s (${kinds})`,
    `channels: direct ${r.byChannel.direct}, group ${r.byChannel.group} (to every member), datagram ${r.byChannel.datagram}; raw TCP connections ${r.rawConnections}`,
    `crashes: ${r.crashes}`,
    `view changes: ${r.viewChanges}`,
    `input dropped by the members: ${received}`,
    ...drops.map(([k, v]) => `  ${k.padEnd(28)} ${String(v).padStart(8)}`)
  ].join('\n')
}
