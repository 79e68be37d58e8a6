/**
 * The floor under `conclave bench state`: MB/s of a bare libp2p stream (tcp + noise + yamux)
 * from a running process to a freshly started one, as a joiner is, with no framing, acks or
 * window of Conclave's (src/transport/stream-floor.ts). Each round starts a new receiver
 * process with a member's Node flags; MB/s is counted from the dial and from the first byte.
 *
 *   node dist/bench/stream-floor.js [--mb 100] [--chunk-kib 256] [--rounds 5] [--out FILE]
 */
import { parseArgs } from 'node:util'
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { receiveFloor, startFloorSender, type FloorReceipt } from '../src/transport/stream-floor.js'
import { MEMBER_NODE_FLAGS } from '../src/member-flags.js'
import { fmt, summarize } from '../src/bench/stats.js'
import { describeMachine, machine } from '../src/bench/machine.js'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mb: { type: 'string', default: '100' },
    'chunk-kib': { type: 'string', default: '256' },
    rounds: { type: 'string', default: '5' },
    out: { type: 'string', default: `bench/results/stream-floor-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})

function whole (flag: string, min: number, max: number): number {
  const v = Number(values[flag as keyof typeof values])
  if (!Number.isInteger(v) || v < min || v > max) {
    process.stderr.write(`stream-floor bench: --${flag} must be a whole number from ${min} to ${max}, got ${String(values[flag as keyof typeof values])}\n`)
    process.exit(2)
  }
  return v
}
const bytes = whole('mb', 1, 100_000) * 1024 * 1024
const chunkBytes = whole('chunk-kib', 1, 16_384) * 1024

if (positionals[0] === 'receive') {
  // A receiver round: one process, one dial, one line of JSON.
  const receipt = await receiveFloor(positionals[1] as string, bytes)
  process.stdout.write(JSON.stringify(receipt) + '\n')
} else {
  const rounds = whole('rounds', 1, 1000)
  const sender = await startFloorSender(bytes, chunkBytes)
  const receipts: FloorReceipt[] = []
  try {
    for (let i = 0; i < rounds; i++) {
      const child = spawn(process.execPath, [...MEMBER_NODE_FLAGS, fileURLToPath(import.meta.url), 'receive', sender.address, '--mb', String(values.mb)], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
      const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
      if (code !== 0) throw new Error(`receiver round ${i + 1} exited with ${code}`)
      receipts.push(JSON.parse(out) as FloorReceipt)
    }
  } finally {
    await sender.stop()
  }
  const mib = bytes / (1024 * 1024)
  const fromDial = summarize(receipts.map(r => mib / (r.ms / 1000)))
  const fromFirst = summarize(receipts.map(r => mib / (r.fromFirstByteMs / 1000)))
  const result = { mb: mib, chunkBytes, rounds, machine: machine(), receipts, mbPerS: { fromDial, fromFirstByte: fromFirst } }
  mkdirSync(dirname(values.out as string), { recursive: true })
  writeFileSync(values.out as string, JSON.stringify(result, null, 1))
  process.stdout.write([
    `stream floor: ${mib} MiB in ${chunkBytes / 1024} KiB writes to a fresh process, ${rounds} rounds; ${describeMachine(result.machine)}`,
    `MB/s from the dial:       median ${fmt(fromDial.median)}, slowest ${fmt(fromDial.min)}`,
    `MB/s from the first byte: median ${fmt(fromFirst.median)}, slowest ${fmt(fromFirst.min)}`,
    `results: ${values.out as string}`
  ].join('\n') + '\n')
}
