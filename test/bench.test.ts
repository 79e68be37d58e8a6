/**
 * `conclave bench`: a smoke run of every scenario with tiny counts (the files exist, parse and
 * hold the expected fields and sample counts; no timing is asserted), an interrupted run, and
 * bad input. No process may outlive a run.
 */
import { describe, expect, it } from 'vitest'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { conclaveBin, waitUntil } from '../src/testing/member-process.js'

interface Result { bench: string, interrupted: boolean, machine: Record<string, unknown>, settings: Record<string, unknown>, figures: Array<{ figure: string }>, samples: Record<string, unknown>, chartFiles: Record<string, string> }

function run (args: string[]): { done: Promise<number | null>, out: () => string, pid: number } {
  const child = spawn(process.execPath, [conclaveBin(), 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d })
  return { done: new Promise(resolve => child.once('exit', code => resolve(code))), out: () => out, pid: child.pid as number }
}

/** Processes whose command line names this run's clusters (bench-<label>-<pid>). */
const orphans = (pid: number): string[] => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter(l => new RegExp(`bench-[a-z0-9-]+-${pid}\\b`).test(l))

function results (dir: string): Map<string, Result> {
  const out = new Map<string, Result>()
  for (const f of readdirSync(dir).filter(f => f.endsWith('.json'))) {
    const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Result
    out.set(r.bench, r)
  }
  return out
}

describe('conclave bench', () => {
  it('runs every scenario with tiny counts and writes JSON, charts and RESULTS.md', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-bench-'))
    const r = run(['all', '--smoke', '--out-dir', join(dir, 'results'), '--results', join(dir, 'RESULTS.md')])
    expect(await r.done, r.out()).toBe(0)
    expect(orphans(r.pid)).toEqual([])
    const all = results(join(dir, 'results'))
    expect([...all.keys()].sort()).toEqual(['broadcast', 'cold-start', 'dns', 'failover', 'filter', 'join', 'rolling', 'rpc', 'scale', 'state'])
    for (const res of all.values()) {
      expect(res.interrupted).toBe(false)
      expect(res.machine).toMatchObject({ cores: expect.any(Number), memoryGiB: expect.any(Number), node: process.version, loadavg: expect.any(Array) })
      expect(res.figures.length).toBeGreaterThan(0)
    }
    const failover = all.get('failover') as Result
    expect(failover.settings).toEqual({ rounds: 1, members: 2, cases: ['kill', 'graceful'] })
    expect((failover.samples.rounds as unknown[]).length).toBe(2)
    expect((failover.samples.rounds as Array<{ firstMs?: number }>).every(x => typeof x.firstMs === 'number')).toBe(true)
    expect((all.get('join')?.samples.joins as unknown[]).length).toBe(1)
    expect((all.get('cold-start')?.samples.fromSpawnMs as unknown[]).length).toBe(1)
    const scale = all.get('scale')?.samples.sizes as Array<{ size: number, cpuPercent: number[], rssMiB: number[], suspicions: number }>
    expect(scale).toHaveLength(1)
    expect(scale[0]?.cpuPercent).toHaveLength(2)
    expect(scale[0]?.rssMiB.every(x => x > 0)).toBe(true)
    expect((all.get('broadcast')?.samples.throughput as unknown[]).length).toBe(1)
    expect(all.get('rpc')?.samples.throughput).toMatchObject({ count: 200, ok: 200, errors: {} })
    expect(Object.keys(all.get('filter')?.samples.itemsPerSecond as object)).toHaveLength(4)
    expect(all.get('state')?.samples.rounds).toMatchObject([{ restored: true }])
    expect(all.get('rolling')?.samples.restarts).toMatchObject([{ order: 'master-last', moves: 1, overlapMs: 0 }])
    expect(all.get('dns')?.samples.records).toMatchObject([{ case: 'start', ms: expect.any(Number) }, { case: 'late', ms: expect.any(Number) }])
    for (const name of ['failover', 'scale']) {
      const file = Object.values((all.get(name) as Result).chartFiles)[0] as string
      expect(readFileSync(join(dir, 'results', file), 'utf8')).toMatch(/^<svg /)
    }
    const md = readFileSync(join(dir, 'RESULTS.md'), 'utf8')
    for (const name of all.keys()) expect(md).toContain(`## ${name}`)
    expect(md).toContain('| figure')
  }, 240_000)

  it('an interrupted run kills every process it started and still writes its samples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-bench-int-'))
    const r = run(['failover', '--rounds', '200', '--out-dir', dir, '--results', 'none'])
    await waitUntil(() => orphans(r.pid).length >= 3, 60_000, 'the bench to start its members', 100)
    process.kill(r.pid, 'SIGINT')
    expect(await r.done).toBe(130)
    const res = results(dir).get('failover') as Result
    expect(res.interrupted).toBe(true)
    expect(res.settings).toMatchObject({ rounds: 200 })
    await waitUntil(() => orphans(r.pid).length === 0, 5000, 'no member process left')
  }, 120_000)

  const bad: Array<[string, string[], RegExp]> = [
    ['an unknown scenario', ['nosuch'], /unknown scenario "nosuch"; scenarios: failover, join, cold-start, scale, broadcast, rpc, state, filter, rolling, dns, all, report/],
    ['a bad count', ['failover', '--rounds', '0'], /--rounds: expected a whole number from 1 to 1000, got "0"/],
    ['an unknown case', ['failover', '--cases', 'kill,explode'], /--cases: expected a comma-separated list of kill, stop, graceful/],
    ['a flag of another scenario', ['join', '--sizes', '5'], /sizes/]
  ]
  for (const [label, args, pattern] of bad) {
    it(`exits 2 with one line on ${label}`, async () => {
      const r = run(args)
      expect(await r.done).toBe(2)
      const lines = r.out().trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(pattern)
    })
  }

  it('regenerates RESULTS.md from a directory of results', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-bench-rep-'))
    const r = run(['report', '--dir', dir, '--out', join(dir, 'R.md')])
    expect(await r.done).toBe(0)
    expect(existsSync(join(dir, 'R.md'))).toBe(true)
  })
})
