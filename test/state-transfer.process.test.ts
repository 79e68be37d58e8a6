/**
 * State transfer between member processes (the benchmark agent with `--state-mb`): a joiner
 * streaming the coordinator's state when the coordinator is SIGKILLed restarts from the next
 * member and restores the whole state from it.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { agreed, MemberProcess, waitUntil, type MemberEvent } from '../src/testing/member-process.js'

const AGENT = fileURLToPath(new URL('../dist/src/bench/agent.js', import.meta.url))
const procs: MemberProcess[] = []
afterEach(async () => { await Promise.all(procs.splice(0).map(async p => await p.stop())) })

const MB = 1024 * 1024

async function start (cluster: string, name: string, seeds: readonly MemberProcess[], extra: string[]): Promise<MemberProcess> {
  const p = new MemberProcess({ cluster, name, seeds: seeds.map(s => s.address as string), script: AGENT, stdin: true, extraArgs: extra })
  procs.push(p)
  await p.waitReady(30_000)
  return p
}

describe('state transfer between processes', () => {
  it('the provider SIGKILLed mid-stream: the joiner restarts from the next member and restores all of its state', async () => {
    const cluster = `stp-${process.pid}`
    const a = await start(cluster, 'a', [], ['--state-mb', '32'])
    const b = await start(cluster, 'b', [a], ['--state-mb', '32'])
    await waitUntil(() => agreed([a, b], 2), 20_000, 'a and b to agree')
    await b.waitFor(e => e.type === 'state', 30_000)
    // 128 chunks of 256 KiB at 20 ms each: the transfer lasts seconds, the kill lands inside it.
    const j = await start(cluster, 'j', [b], ['--state-mb', '32', '--state-chunk-delay-ms', '20'])
    const progress = await j.waitFor(e => e.type === 'state-progress', 30_000) as MemberEvent & { call: number }
    expect(progress.call).toBe(1)
    a.kill('SIGKILL')
    const done = await j.waitFor(e => e.type === 'state' || e.type === 'state-error', 60_000) as MemberEvent & { restored: boolean, from: string, bytes: number, attempts: number }
    expect(done.type).toBe('state')
    expect(done).toMatchObject({ restored: true, from: b.id, bytes: 32 * MB })
    expect(done.attempts).toBeGreaterThanOrEqual(2)
    const interrupted = j.events.filter(e => e.type === 'state-interrupted') as Array<MemberEvent & { call: number, reason: string }>
    expect(interrupted.map(e => [e.call, e.reason])).toEqual([[1, 'interrupted']])
    await waitUntil(() => agreed([b, j], 2), 20_000, 'b and j to agree without a')
  }, 120_000)
})
