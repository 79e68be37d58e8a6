/**
 * Observability: `conclave member --metrics` scraped and parsed (Prometheus text format) across
 * a failover of real member processes; /health and /ready as probes see them; metrics injected
 * into the caller's registry only; logs through `debug` only, and never the key.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { createServer, type Server, type Socket } from 'node:net'
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry, register as globalRegistry } from 'prom-client'
import { MemberProcess, agreed, freePort, waitUntil } from '../src/testing/member-process.js'
import { ClusterKey, createMember } from '../src/index.js'
import { instrument } from '../src/observability/index.js'
import { internalsOf } from '../src/internal/member-internals.js'

interface Sample { readonly name: string, readonly labels: Record<string, string>, readonly value: number }

/** Parses the Prometheus text exposition format (comments skipped). */
function parseMetrics (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string
    out.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return out
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined =>
  samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

async function scrape (port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
  return parseMetrics(await res.text())
}

async function probe (port: number, path: string): Promise<{ status: number, body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  } catch {
    return undefined // not listening yet
  }
}

const procs: MemberProcess[] = []
afterAll(async () => { await Promise.all(procs.map(async p => await p.stop())) })

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('metrics and probes of conclave member --metrics', () => {
  it('/ready is 503 while joining and 200 in a settled view; across a failover is_master moves and the counters rise by reason', async () => {
    // A seed that accepts TCP and never answers: the first member spends its dial timeout joining.
    const held: Socket[] = []
    const silent: Server = createServer(s => { held.push(s) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as { port: number }).port
    const cluster = `obs-${process.pid}`
    const ports = [await freePort(), await freePort(), await freePort()] as [number, number, number]
    try {
      const a = new MemberProcess({ cluster, name: 'a', seeds: [`127.0.0.1:${silentPort}`], extraArgs: ['--metrics', `127.0.0.1:${ports[0]}`] })
      procs.push(a)
      const answers: Array<{ status: number, reason: unknown }> = []
      const end = Date.now() + 20_000
      while (Date.now() < end) {
        const r = await probe(ports[0], '/ready')
        if (r !== undefined) answers.push({ status: r.status, reason: r.body.reason })
        if (r?.status === 200) break
        await sleep(10)
      }
      expect(answers.some(x => x.status === 503 && x.reason === 'joining'), JSON.stringify(answers.slice(0, 5))).toBe(true)
      expect(answers[answers.length - 1]?.status).toBe(200)
      expect((await probe(ports[0], '/health'))?.status).toBe(200)
      expect((await probe(ports[0], '/nope'))?.status).toBe(404)

      const b = new MemberProcess({ cluster, name: 'b', seeds: [a.address as string], extraArgs: ['--metrics', `127.0.0.1:${ports[1]}`] })
      procs.push(b)
      await b.waitReady()
      const c = new MemberProcess({ cluster, name: 'c', seeds: [a.address as string], extraArgs: ['--metrics', `127.0.0.1:${ports[2]}`] })
      procs.push(c)
      await waitUntil(() => agreed([a, b, c], 3), 20_000, 'the three to agree')
      // What an operator reads during a rollout: who coordinates, and where this member stands.
      expect((await probe(ports[1], '/ready'))?.body).toMatchObject({ ready: true, members: 3, coordinator: { name: 'a' }, rank: 1 })
      const [ma, mb, mc] = await Promise.all(ports.map(scrape))
      expect([ma, mb, mc].map(m => value(m as Sample[], 'conclave_is_master', { masters: '1' }))).toEqual([1, 0, 0])
      expect(value(ma as Sample[], 'conclave_rank')).toBe(0)
      expect(value(mb as Sample[], 'conclave_view_members')).toBe(3)
      expect(value(mb as Sample[], 'conclave_connections')).toBeGreaterThanOrEqual(2)
      expect(value(ma as Sample[], 'conclave_mastership_changes_total', { reason: 'elected', is_master: '1' })).toBe(1)
      const before = { views: value(mb as Sample[], 'conclave_view_changes_total') as number, epoch: value(mb as Sample[], 'conclave_epoch') as number }

      a.kill('SIGKILL')
      let after: Sample[] = []
      const deadline = Date.now() + 10_000
      while (Date.now() < deadline) {
        after = await scrape(ports[1])
        if (value(after, 'conclave_is_master', { masters: '1' }) === 1) break
        await sleep(20)
      }
      const afterC = await scrape(ports[2])
      expect(value(after, 'conclave_is_master', { masters: '1' })).toBe(1)
      expect(value(afterC, 'conclave_is_master', { masters: '1' })).toBe(0)
      expect(value(after, 'conclave_rank')).toBe(0)
      expect(value(after, 'conclave_mastership_changes_total', { reason: 'failover', is_master: '1' })).toBe(1)
      expect(value(after, 'conclave_view_changes_total')).toBeGreaterThan(before.views)
      expect(value(after, 'conclave_epoch')).toBeGreaterThan(before.epoch)
      expect(value(after, 'conclave_view_members')).toBe(2)
      expect(value(after, 'conclave_time_since_view_change_seconds')).toBeLessThan(10)
      const suspected = [after, afterC].reduce((n, m) => n + (value(m, 'conclave_suspicions_total', { reason: 'disconnect' }) ?? 0) + (value(m, 'conclave_suspicions_total', { reason: 'silence' }) ?? 0), 0)
      expect(suspected).toBeGreaterThanOrEqual(1)
      expect(value(after, 'conclave_heartbeat_rtt_seconds_count')).toBeGreaterThan(0)
      expect(value(after, 'conclave_false_suspicions_total')).toBe(0)
      expect(value(after, 'conclave_split_brain_detected_total')).toBe(0)
      // The process metrics come along (collectDefaultMetrics on the CLI's own registry).
      expect(value(after, 'process_resident_memory_bytes')).toBeGreaterThan(0)
    } finally {
      for (const s of held) s.destroy()
      silent.close()
    }
  }, 90_000)
})

describe('metrics in the API', () => {
  it('go into the registry passed, never the global one; close() stops counting', async () => {
    const globalBefore = globalRegistry.getMetricsAsArray().length
    const registry = new Registry()
    const m = await createMember({ cluster: `obs-api-${process.pid}`, name: 'solo' })
    try {
      const route = m.route({ name: 'worker', start: () => {}, stop: () => { throw new Error('stop failed') } })
      const metrics = instrument(m, { registry, routes: [route] })
      expect(globalRegistry.getMetricsAsArray().length).toBe(globalBefore)
      await waitUntil(() => route.running, 5000, 'the route to start')
      const samples = parseMetrics(await registry.metrics())
      expect(value(samples, 'conclave_is_master', { masters: '1' })).toBe(1)
      expect(value(samples, 'conclave_route_running', { route: 'worker' })).toBe(1)
      await route.remove()
      const removed = parseMetrics(await registry.metrics())
      expect(value(removed, 'conclave_route_running', { route: 'worker' })).toBe(0)
      expect(value(removed, 'conclave_route_errors_total', { route: 'worker', phase: 'stop' })).toBe(1)
      expect(value(samples, 'conclave_member_info', { name: 'solo' })).toBe(1)
      metrics.close()
      internalsOf(m).countDrop('test-reason', undefined)
      expect(value(parseMetrics(await registry.metrics()), 'conclave_dropped_messages_total', { reason: 'test-reason' })).toBeUndefined()
    } finally {
      await m.stop()
    }
  })
})

describe('logs', () => {
  it('go through debug (DEBUG=conclave:*), component by component, and never show the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-log-'))
    const key = ClusterKey.generate()
    key.write(join(dir, 'k'))
    const p = new MemberProcess({ cluster: `log-${process.pid}`, name: 'logger', extraArgs: ['--key-file', join(dir, 'k')], env: { DEBUG: 'conclave:*', DEBUG_COLORS: '0' } })
    procs.push(p)
    await p.waitFor(e => e.type === 'view', 15_000)
    await p.stop()
    expect(p.stderr).toMatch(/conclave:membership .*view \d+ \[logger\]/)
    expect(p.stderr).toMatch(/conclave:policies .*now master\(1\)/)
    expect(p.stderr).not.toContain(key.fileContents().split('\n')[2] as string)
  }, 30_000)

  it('the library never writes to the console itself', () => {
    const files: string[] = []
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const path = join(d, f)
        if (statSync(path).isDirectory()) walk(path)
        else if (path.endsWith('.ts')) files.push(path)
      }
    }
    walk(join(import.meta.dirname, '..', 'src'))
    const offenders = files.filter(f => /\bconsole\.(log|info|warn|error|debug)\(/.test(readFileSync(f, 'utf8')))
    expect(offenders).toEqual([])
  })
})
