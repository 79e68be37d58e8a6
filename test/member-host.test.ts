/**
 * `conclave host`: several real members (each its own libp2p node on 127.0.0.1) in one process,
 * followed from the parent by testing/member-host.ts. Two hosts form one cluster; a host's
 * stats give each member's connections; a SIGKILLed host's members leave the others' view; a
 * SIGTERMed host's members leave gracefully and the process exits 0. Bad flags: one line, exit 2.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { MemberHost, hostedAgreed } from '../src/testing/member-host.js'
import { conclaveBin, waitUntil } from '../src/testing/member-process.js'
import { viewDigest } from '../src/cli/host-command.js'

const hosts: MemberHost[] = []
afterEach(async () => { await Promise.all(hosts.splice(0).map(async h => { h.kill('SIGKILL'); await h.exited })) })

const start = (cluster: string, prefix: string, count: number, seeds: string[] = []): MemberHost => {
  const h = new MemberHost({ cluster, count, prefix, seeds })
  hosts.push(h)
  return h
}

describe('conclave host', () => {
  it('two hosts of three members form one view of six; stats count connections; a killed host leaves, a stopped one exits 0', async () => {
    const cluster = `host-${process.pid}`
    const a = await start(cluster, 'a', 3).waitReady()
    const b = await start(cluster, 'b', 3, [a.members[0]?.address as string]).waitReady()
    const all = [...a.members, ...b.members]
    await waitUntil(() => hostedAgreed(all, 6), 20_000, () => `six agree: ${all.map(m => `${m.name} ${m.lastView()?.size ?? '-'}`).join(', ')}`)
    // The digest is over the member ids in view order, the coordinator first.
    const view = a.members[0]?.lastView()
    expect(view?.coordinator).toBe(a.members[0]?.id)
    expect(all.every(m => m.lastView()?.digest === view?.digest)).toBe(true)
    expect(viewDigest(['x', 'y'])).not.toBe(viewDigest(['y', 'x']))

    const stats = await b.stats()
    expect([...stats.members.keys()].sort()).toEqual(['b-0', 'b-1', 'b-2'])
    for (const s of stats.members.values()) {
      expect(s.viewSize).toBe(6)
      expect(s.connections).toBeGreaterThanOrEqual(2) // at least to the two monitors
    }
    expect(stats.rssMiB).toBeGreaterThan(0)

    b.kill('SIGKILL')
    await waitUntil(() => hostedAgreed(a.members, 3), 20_000, 'the first host alone')
    expect(a.members[0]?.lastView()?.coordinator).toBe(a.members[0]?.id)

    await a.stop(10_000)
    expect(await a.exited).toEqual({ code: 0, signal: null })
  }, 60_000)

  it('refuses bad flags with one line and exit 2', () => {
    for (const args of [['--count', '3'], ['--cluster', 'x'], ['--cluster', 'x', '--count', '0'], ['--cluster', 'x', '--count', '300'], ['--cluster', 'x', '--count', '2', '--max-connections', '5000']]) {
      const r = spawnSync(process.execPath, [conclaveBin(), 'host', ...args], { encoding: 'utf8', timeout: 20_000 })
      expect(r.status).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})
