/**
 * Cluster-key benchmark: a keyed cluster of three `conclave member --key-file` processes on
 * 127.0.0.1; then, one at a time, outsiders try to join through all three seeds — half with no
 * key, half with another key — and a keyed member last, which must join. Reports how many
 * outsiders joined (target 0), whether the cluster's view ever changed (target: never), and how
 * long an outsider takes to learn that no seed will have it (it then founds a group of its own).
 *
 *   node dist/bench/keyless-join.js [--tries 100] [--out FILE]
 */
import { parseArgs } from 'node:util'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { MemberProcess, agreed, waitUntil } from '../src/testing/member-process.js'
import { ClusterKey, createMember, type MemberOptions } from '../src/index.js'
import { fmt, summarize, type Summary } from '../src/bench/stats.js'
import { describeMachine, machine } from '../src/bench/machine.js'

const { values } = parseArgs({
  options: {
    tries: { type: 'string', default: '100' },
    out: { type: 'string', default: `bench/results/keyless-join-${new Date().toISOString().replace(/[:.]/g, '-')}.json` }
  }
})
const tries = Number(values.tries)
if (!Number.isInteger(tries) || tries < 2 || tries > 100_000) {
  process.stderr.write(`keyless-join bench: --tries must be a whole number from 2 to 100000, got ${values.tries}\n`)
  process.exit(2)
}

const dir = mkdtempSync(join(tmpdir(), 'conclave-keyless-'))
const keyFile = join(dir, 'cluster.key')
const key = ClusterKey.generate()
key.write(keyFile)
const cluster = `keyless-${process.pid}`
const procs: MemberProcess[] = []
try {
  for (const name of ['k1', 'k2', 'k3']) {
    const p = new MemberProcess({ cluster, name, seeds: procs.map(q => q.address as string), extraArgs: ['--key-file', keyFile] })
    procs.push(p)
    await p.waitReady()
    await new Promise(resolve => setTimeout(resolve, 300))
  }
  await waitUntil(() => agreed(procs, 3), 20_000, 'the keyed cluster to agree')
  const baseline = procs.map(p => p.events.length)
  const seeds = procs.map(p => p.address as string)

  const outcomes = { noKey: { joined: 0, refused: 0 }, wrongKey: { joined: 0, refused: 0 } }
  const giveUpMs: { noKey: number[], wrongKey: number[] } = { noKey: [], wrongKey: [] }
  for (let i = 0; i < tries; i++) {
    const kind = i % 2 === 0 ? 'noKey' : 'wrongKey'
    const options: MemberOptions = { cluster, name: `outsider-${i}`, seeds, ...(kind === 'wrongKey' ? { clusterKey: ClusterKey.generate() } : {}) }
    const t0 = performance.now()
    const outsider = await createMember(options)
    try {
      await waitUntil(() => outsider.view !== undefined, 15_000, 'the outsider to settle')
      giveUpMs[kind].push(performance.now() - t0)
      const joined = (outsider.view?.members.length ?? 0) > 1
      outcomes[kind][joined ? 'joined' : 'refused']++
    } finally {
      await outsider.stop()
    }
    if ((i + 1) % 20 === 0) process.stdout.write(`  ${i + 1} / ${tries} tries\n`)
  }
  // The key holder joins (the refusals were the key's doing, not a broken cluster).
  const keyed = await createMember({ cluster, name: 'keyed', seeds, clusterKey: key })
  const t0 = performance.now()
  await waitUntil(() => keyed.view?.members.length === 4, 15_000, 'the keyed member to join')
  const keyedJoinMs = performance.now() - t0
  const viewChangesBeforeKeyed = procs.reduce((n, p, i) => {
    const events = p.events.slice(baseline[i])
    const keyedAt = events.findIndex(e => e.type === 'view' && (e.members as Array<{ name: string }>).some(m => m.name === 'keyed'))
    return n + (keyedAt < 0 ? events : events.slice(0, keyedAt)).filter(e => e.type === 'view').length
  }, 0)
  await keyed.stop()

  const summaries: Record<string, Summary> = { noKey: summarize(giveUpMs.noKey), wrongKey: summarize(giveUpMs.wrongKey) }
  const result = { tries, machine: machine(), outcomes, giveUpMs: summaries, keyedJoinMs, viewChangesBeforeKeyed, keyFingerprint: key.fingerprint }
  mkdirSync(dirname(values.out as string), { recursive: true })
  writeFileSync(values.out as string, JSON.stringify(result, null, 1))
  const line = (label: string, s: Summary): string => `${label.padEnd(22)} ${String(s.n).padStart(4)} ${fmt(s.median).padStart(8)} ${fmt(s.p99).padStart(8)} ${fmt(s.max).padStart(8)}`
  process.stdout.write([
    `keyless join: ${tries} tries against a keyed cluster of 3; ${describeMachine(result.machine)}`,
    `no key:    joined ${outcomes.noKey.joined}, refused ${outcomes.noKey.refused}`,
    `wrong key: joined ${outcomes.wrongKey.joined}, refused ${outcomes.wrongKey.refused}`,
    `cluster view changes before the keyed member: ${viewChangesBeforeKeyed}`,
    `keyed member joined in ${fmt(keyedJoinMs)} ms`,
    'ms until the outsider gave up     n   median      p99      max',
    line('no key', summaries.noKey as Summary),
    line('wrong key', summaries.wrongKey as Summary),
    `figures: ${values.out as string}`,
    ''
  ].join('\n'))
  process.exitCode = outcomes.noKey.joined + outcomes.wrongKey.joined + viewChangesBeforeKeyed === 0 ? 0 : 1
} finally {
  await Promise.all(procs.map(async p => await p.stop()))
  rmSync(dir, { recursive: true, force: true })
}
