/**
 * The benchmark agent: a member process (same flags and JSON lines as `conclave member --json`)
 * that also takes commands on stdin, one JSON object per line:
 *   { "cmd": "blast", "count": N, "size": B, "rate": R }  broadcast N messages of about B bytes,
 *        R per second (0: as fast as the process can); prints {"type":"blasted",…} when done
 *   { "cmd": "peek" }    prints {"type":"peek", received} (no reset)
 *   { "cmd": "report" }  prints {"type":"report", received, firstAt, lastAt, latency: {…}} for
 *        the group messages received since the last report, then resets
 *   { "cmd": "digest" }  prints {"type":"digest", senders: { id: { count, first, last, gaps,
 *        wrongView } }}: per sender, since the start, how many of its blast messages arrived,
 *        the first and last sequence numbers, how often one did not follow the one before it
 *        (a loss, a duplicate or a reorder) and how many carried an epoch other than the one the
 *        sender stamped in it
 *   { "cmd": "request", "target": "master"|id, "count": N, "inflight": K, "rate": R, "retry": bool,
 *     "timeoutMs": T }  N requests of method "whoami" (K outstanding at most, or R per second),
 *        prints {"type":"requested", ok, errors: {name: n}, servedBy: {id: {count, epochs}},
 *        latency: {median, p99, max, n} of the successful round trips, startedAt, endedAt}
 *   { "cmd": "requestAll", "mode": M, "timeoutMs": T }  one requestAll of "whoami"; prints
 *        {"type":"requestedAll", ms, entries: [{id, ok, reason, error}]}
 *   { "cmd": "rss" }     prints {"type":"rss", maxRssBytes, rssBytes}: peak and current resident memory
 * With `--state-mb N` the agent has the `state` option (a streamed state of N MiB, see
 * `streamedState`) and prints {"type":"state", restored, from, bytes, ms, attempts, maxRssBytes}
 * once it holds the state (or {"type":"state-error", name, message}); {"type":"state-progress",
 * call} when a restore takes its first chunk, {"type":"state-interrupted", call, chunks, name,
 * reason} when its stream throws. `--state-chunk-delay-ms D` makes the restore take D ms a chunk.
 *   { "cmd": "served" }  prints {"type":"served", count, lastAt}: "whoami" requests it ran
 * Every agent serves "whoami": it answers { id, epoch } (its id, the fencing epoch of its view).
 * Latency is the receive time minus the send time stamped in the message (one machine's
 * wall clock, so both ends read the same clock).
 */
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises'
import { createMember } from '../member.js'
import { ClusterKey } from '../security/cluster-key.js'
import { wallClockMs } from '../clock.js'
import { summarize } from './stats.js'
import { performance } from 'node:perf_hooks'

const { values } = parseArgs({
  options: {
    cluster: { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:0' },
    seed: { type: 'string', multiple: true, default: [] },
    name: { type: 'string', default: 'agent' },
    'key-file': { type: 'string' },
    'state-mb': { type: 'string' },
    'state-chunk-delay-ms': { type: 'string', default: '0' }
  }
})
const out = (obj: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ ts: wallClockMs(), ...obj }) + '\n') }
const keyFile = values['key-file']
const stateMb = values['state-mb'] === undefined ? undefined : Number(values['state-mb'])
const member = await createMember({
  ...(stateMb !== undefined ? { state: streamedState(stateMb, Number(values['state-chunk-delay-ms'])) } : {}),
  cluster: values.cluster as string,
  listen: values.listen as string,
  seeds: values.seed as string[],
  name: values.name as string,
  ...(keyFile !== undefined ? { clusterKey: ClusterKey.read(keyFile) } : {})
})
out({ type: 'ready', id: member.id, name: member.name, listen: member.addresses })
if (stateMb !== undefined) {
  member.waitForState({ timeoutMs: 600_000 }).then(
    r => { out({ type: 'state', ...r, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) },
    (err: Error) => { out({ type: 'state-error', name: err.name, message: err.message }) }
  )
}
const printView = (): void => {
  const view = member.view
  if (view === undefined) return
  out({ type: 'view', epoch: view.id.epoch, coordinator: view.id.coordinator, members: view.members.map(m => ({ id: m.id, name: m.name })), self: member.id, isCoordinator: member.isCoordinator })
}
printView()
member.on('view', printView)
member.on('suspect', s => out({ type: 'suspect', id: s.id, reason: s.reason }))

const MAX_LATENCIES = 1_000_000
let received = 0
let firstAt = 0
let lastAt = 0
let latencies: number[] = []
/** The slowest deliveries since the last report, as [receive time, latency]: when did the tail happen. */
let worst: Array<[number, number]> = []
/** Per sender, the order and views of its blast messages (the `digest` command). */
const digest = new Map<string, { count: number, first: number, last: number, gaps: number, wrongView: number }>()
member.on('message', m => {
  if (m.channel !== 'group') return
  const { n: seq, e: sentIn } = (m.payload as { n?: unknown, e?: unknown } | null) ?? {}
  if (typeof seq === 'number') {
    const d = digest.get(m.from)
    if (d === undefined) digest.set(m.from, { count: 1, first: seq, last: seq, gaps: 0, wrongView: sentIn === m.epoch ? 0 : 1 })
    else {
      d.count++
      if (seq !== d.last + 1) d.gaps++
      d.last = seq
      if (sentIn !== m.epoch) d.wrongView++
    }
  }
  const sentAt = (m.payload as { s?: unknown } | null)?.s
  if (typeof sentAt !== 'number') return
  const now = wallClockMs()
  if (received === 0) firstAt = now
  received++
  lastAt = now
  const latency = now - sentAt
  if (latencies.length < MAX_LATENCIES) latencies.push(latency)
  if (worst.length < 20 || latency > (worst[worst.length - 1] as [number, number])[1]) {
    worst.push([now, latency])
    worst.sort((a, b) => b[1] - a[1])
    if (worst.length > 20) worst.pop()
  }
})

/**
 * With `--state-mb N`: a state of N MiB produced as it is streamed (1 MiB chunks of a simple
 * generator) and, on a joiner, consumed as it arrives (summed), so neither side holds it whole.
 */
function streamedState (mb: number, delayMs: number): { snapshot: () => Iterable<Uint8Array>, restore: (s: unknown) => Promise<void> } {
  let call = 0
  return {
    snapshot: () => (function * () {
      for (let i = 0; i < mb; i++) yield new Uint8Array(1024 * 1024).fill(i & 0xff)
    })(),
    restore: async (s: unknown) => {
      const n = ++call
      let chunks = 0
      try {
        for await (const _chunk of s as AsyncIterable<Uint8Array>) {
          if (++chunks === 1) out({ type: 'state-progress', call: n, chunks })
          if (delayMs > 0) await sleep(delayMs)
        }
      } catch (err) {
        out({ type: 'state-interrupted', call: n, chunks, name: (err as Error).name, reason: (err as { reason?: string }).reason })
        throw err
      }
    }
  }
}

/** How many of `count` sends at `rate` per second from `startedAt` are due by now. */
function dueBy (startedAt: number, rate: number, count: number): number {
  return Math.min(count, Math.floor(((wallClockMs() - startedAt) / 1000) * rate) + 1)
}

/** Requests this agent's "whoami" handler ran, and when the last one ran. */
let served = 0
let lastServedAt = 0
member.handle('whoami', (_payload, ctx) => {
  served++
  lastServedAt = wallClockMs()
  return { id: member.id, epoch: ctx.epoch }
})

interface RequestCmd { target: string, count: number, inflight: number, rate: number, retry: boolean, timeoutMs: number }

/** Runs `count` requests to `target`, `inflight` at a time, or paced at `rate` per second. */
async function requests (c: RequestCmd): Promise<void> {
  const errors: Record<string, number> = {}
  const servedBy: Record<string, { count: number, epochs: number[] }> = {}
  const rtts: number[] = []
  let ok = 0
  let issued = 0
  const startedAt = wallClockMs()
  const one = async (): Promise<void> => {
    const n = issued++
    const t0 = performance.now()
    try {
      const r = await member.request(c.target, 'whoami', n, { timeoutMs: c.timeoutMs, retry: c.retry }) as { id: string, epoch: number }
      rtts.push(performance.now() - t0)
      ok++
      const s = servedBy[r.id] ?? (servedBy[r.id] = { count: 0, epochs: [] })
      s.count++
      if (!s.epochs.includes(r.epoch)) s.epochs.push(r.epoch)
    } catch (err) {
      const name = (err as Error).name
      errors[name] = (errors[name] ?? 0) + 1
    }
  }
  if (c.rate > 0) {
    const pending: Array<Promise<void>> = []
    while (issued < c.count) {
      const due = dueBy(startedAt, c.rate, c.count)
      while (issued < due) pending.push(one())
      await new Promise(resolve => setTimeout(resolve, 1))
    }
    await Promise.all(pending)
  } else {
    const worker = async (): Promise<void> => { while (issued < c.count) await one() }
    await Promise.all(Array.from({ length: Math.max(1, c.inflight) }, worker))
  }
  const s = summarize(rtts)
  out({ type: 'requested', count: c.count, ok, errors, servedBy, latency: { median: s.median, p99: s.p99, max: s.max, n: s.n }, startedAt, endedAt: wallClockMs() })
}

async function requestAll (mode: 'all' | 'first' | 'majority', timeoutMs: number): Promise<void> {
  const t0 = performance.now()
  const entries = await member.requestAll('whoami', null, { mode, timeoutMs })
  out({ type: 'requestedAll', ms: performance.now() - t0, entries: entries.map(e => e.ok ? { id: e.id, ok: true } : { id: e.id, ok: false, reason: e.reason, error: e.error.name }) })
}

/** Sequence numbers of this agent's blast messages, across blasts. */
let blasted = 0

async function blast (count: number, size: number, rate: number): Promise<void> {
  const pad = new Uint8Array(Math.max(0, size - 34)) // the stamp, the sequence number and the epoch take the rest
  const startedAt = wallClockMs()
  let sent = 0
  while (sent < count) {
    // Paced: send what is due by now, then wait a little. Unpaced: batches, yielding to the
    // event loop between them; awaiting each broadcast is the back-pressure (the send window).
    const due = rate > 0 ? dueBy(startedAt, rate, count) : Math.min(count, sent + 1000)
    for (; sent < due; sent++) await member.broadcast({ s: wallClockMs(), n: blasted++, e: member.epoch, p: pad })
    if (rate > 0) await new Promise(resolve => setTimeout(resolve, 2))
    else await yieldToLoop()
  }
  out({ type: 'blasted', count, startedAt, endedAt: wallClockMs() })
}

const commands = createInterface({ input: process.stdin })
commands.on('line', line => {
  let cmd: Record<string, unknown>
  try { cmd = JSON.parse(line) as Record<string, unknown> } catch { return }
  if (cmd.cmd === 'blast') {
    blast(Number(cmd.count), Number(cmd.size), Number(cmd.rate)).catch(err => out({ type: 'error', error: String(err) }))
  } else if (cmd.cmd === 'request') {
    requests({ target: String(cmd.target ?? 'master'), count: Number(cmd.count ?? 1), inflight: Number(cmd.inflight ?? 1), rate: Number(cmd.rate ?? 0), retry: cmd.retry === true, timeoutMs: Number(cmd.timeoutMs ?? 5000) })
      .catch(err => out({ type: 'error', error: String(err) }))
  } else if (cmd.cmd === 'requestAll') {
    requestAll(cmd.mode as 'all', Number(cmd.timeoutMs ?? 5000)).catch(err => out({ type: 'error', error: String(err) }))
  } else if (cmd.cmd === 'rss') {
    out({ type: 'rss', maxRssBytes: process.resourceUsage().maxRSS * 1024, rssBytes: process.memoryUsage().rss })
  } else if (cmd.cmd === 'served') {
    out({ type: 'served', count: served, lastAt: lastServedAt })
  } else if (cmd.cmd === 'digest') {
    out({ type: 'digest', senders: Object.fromEntries(digest) })
  } else if (cmd.cmd === 'peek') {
    out({ type: 'peek', received })
  } else if (cmd.cmd === 'report') {
    const s = summarize(latencies)
    out({ type: 'report', received, firstAt, lastAt, latency: { median: s.median, p99: s.p99, max: s.max, n: s.n }, worst })
    received = 0
    latencies = []
    worst = []
  }
})

await new Promise<void>(resolve => {
  process.once('SIGTERM', () => resolve())
  process.once('SIGINT', () => resolve())
})
await member.stop()
commands.close()
process.stdin.destroy() // nothing else keeps the process: it exits once stdout is flushed
out({ type: 'left' })
