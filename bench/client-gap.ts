/**
 * Client-visible failover gap (issue 4): servers of examples/http-server (only the master
 * serves HTTP) and, in this process, an observer with a master-following client calling the
 * master every `--interval` ms. Each round SIGKILLs the master after a random pause and
 * measures the time from the kill to the first successful answer from the new master; the
 * killed server is replaced (it rejoins as standby) before the next round.
 *
 *   node dist/bench/client-gap.js [--rounds 20] [--servers 2] [--interval 10] [--out FILE]
 */
import { parseArgs } from 'node:util'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MemberProcess, freePort, waitUntil } from '../src/testing/member-process.js'
import { createObserver, followMaster } from '../src/index.js'
import { fmt, summarize } from '../src/bench/stats.js'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    servers: { type: 'string', default: '2' },
    interval: { type: 'string', default: '10' },
    out: { type: 'string', default: `bench/results/client-gap-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const rounds = Number(values.rounds)
const servers = Number(values.servers)
const interval = Number(values.interval)
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a positive integer, got ${values.rounds}`)
if (!Number.isInteger(servers) || servers < 2 || servers > 5) fail(`--servers must be 2 to 5, got ${values.servers}`)
if (!Number.isFinite(interval) || interval < 1) fail(`--interval must be at least 1 ms, got ${values.interval}`)
function fail (msg: string): never {
  process.stderr.write(`client-gap bench: ${msg}\n`)
  process.exit(2)
}

const SERVER = fileURLToPath(new URL('../examples/http-server.js', import.meta.url))
const cluster = `bench-gap-${process.pid}`
const all: MemberProcess[] = []


const viewSize = (p: MemberProcess): number => (([...p.events].reverse().find(e => e.type === 'view')?.members as unknown[] | undefined) ?? []).length
const serving = (p: MemberProcess): boolean => [...p.events].reverse().find(e => e.type === 'route')?.event === 'started'

async function main (): Promise<void> {
  const started = Date.now()
  const group: Array<{ proc: MemberProcess, port: number }> = []
  const spawnServer = async (port: number): Promise<void> => {
    const proc = new MemberProcess({ cluster, name: `server-${port}`, seeds: group.map(g => g.proc.address as string), script: SERVER, extraArgs: ['--port', String(port)] })
    all.push(proc)
    await proc.waitReady(30_000)
    group.push({ proc, port })
    await waitUntil(() => group.every(g => viewSize(g.proc) === group.length), 15_000, 'the servers to agree')
  }
  for (let i = 0; i < servers; i++) await spawnServer(await freePort())

  const observer = await createObserver({ cluster, seeds: group.map(g => g.proc.address as string), renewIntervalMs: 500 })
  const client = followMaster(observer, 'http', { noMasterTimeoutMs: 5000, retryBudgetMs: 5000 })
  let lastAnswer: { server: string, at: number } | undefined
  let calls = 0
  let failures = 0
  let stopping = false
  const loop = (async () => {
    while (!stopping) {
      const t = Date.now()
      try {
        const res = await client.fetch('/', { retrySafe: true, signal: AbortSignal.timeout(5000) })
        const body = await res.json() as { server: string }
        calls++
        if (res.status === 200) lastAnswer = { server: body.server, at: Date.now() }
      } catch { failures++ }
      await new Promise(resolve => setTimeout(resolve, Math.max(0, interval - (Date.now() - t))))
    }
  })()

  const gapMs: number[] = []
  let failedRounds = 0
  try {
    for (let r = 1; r <= rounds; r++) {
      await waitUntil(() => lastAnswer !== undefined && Date.now() - lastAnswer.at < 200, 15_000, 'the client to be answered')
      await new Promise(resolve => setTimeout(resolve, 300 + Math.random() * 700))
      const master = group.find(g => serving(g.proc))
      if (master === undefined) { failedRounds++; continue }
      const killedAt = Date.now()
      master.proc.kill('SIGKILL')
      group.splice(group.indexOf(master), 1)
      try {
        await waitUntil(() => lastAnswer !== undefined && lastAnswer.at >= killedAt && lastAnswer.server !== master.proc.name, 15_000, 'an answer from the new master')
        gapMs.push((lastAnswer as { at: number }).at - killedAt)
      } catch { failedRounds++ }
      process.stderr.write(`\rround ${r}/${rounds}: ${fmt(gapMs.at(-1) ?? NaN)} ms    `)
      await spawnServer(master.port) // the killed server comes back as standby
    }
  } finally {
    process.stderr.write('\n')
    stopping = true
    await loop
    client.close()
    await observer.stop()
    await Promise.all(all.map(async p => { if (p.running) await p.stop(2000) }))
  }

  const machine = { cores: cpus().length, cpu: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadavg: loadavg() }
  const s = summarize(gapMs)
  const out = { bench: 'client-gap', date: new Date().toISOString(), durationS: (Date.now() - started) / 1000, settings: { rounds, servers, intervalMs: interval }, machine, gapMs, summary: s, calls, failures, failedRounds }
  mkdirSync(dirname(values.out as string), { recursive: true })
  writeFileSync(values.out as string, JSON.stringify(out, null, 2))
  process.stdout.write(`client-gap; ${machine.cores} cores, ${machine.node}, load ${machine.loadavg.map(l => l.toFixed(2)).join(' ')}\n` +
    `SIGKILL master → first answer from the new master, seen by a following client (${servers} servers, a call every ${interval} ms):\n` +
    `  median ${fmt(s.median)} ms, p99 ${fmt(s.p99)} ms, min ${fmt(s.min)}, max ${fmt(s.max)} (n=${s.n}${failedRounds > 0 ? `, ${failedRounds} rounds failed` : ''})\n` +
    `  calls answered ${calls}, calls failed after retries ${failures}\n\nsamples: ${values.out}\n`)
}

main().catch(err => {
  process.stderr.write(`client-gap bench: ${err instanceof Error ? err.stack : String(err)}\n`)
  process.exitCode = 1
}).finally(() => {
  for (const p of all) if (p.running) p.kill('SIGKILL')
})
