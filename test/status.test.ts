/**
 * `conclave status` against a real 3-member cluster on 127.0.0.1 (members in this process, the
 * command as a child process, so it crosses the network like a person's would).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { Member as MemberClass, createMember, type Member } from '../src/index.js'
import { createLibp2pTransport } from '../src/transport/libp2p.js'
import { WIRE_VERSION } from '../src/transport/codec.js'
import { nextVersion } from './other-version.js'
import { conclaveBin, freePort, waitUntil } from '../src/testing/member-process.js'

const members: Member[] = []
const children: ChildProcess[] = []
let n = 0

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await Promise.all(members.splice(0).map(async m => await m.stop()))
})

const hostPort = (m: Member): string => {
  const match = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')
  return `${match?.[1]}:${match?.[2]}`
}

async function trio (): Promise<{ cluster: string, ms: Member[] }> {
  const cluster = `status-${process.pid}-${++n}`
  const ms: Member[] = []
  for (const [i, name] of ['alpha', 'bravo', 'charlie'].entries()) {
    const m = await createMember({ cluster, name, listen: '127.0.0.1:0', seeds: ms.slice(0, 1).map(hostPort), endpoints: { http: `http://127.0.0.1:${9090 + i}/` } })
    members.push(m)
    ms.push(m)
    // one at a time, so the view order is alpha, bravo, charlie
    await waitUntil(() => ms.every(x => x.view?.members.length === ms.length), 15_000, `${name} to join`)
  }
  return { cluster, ms }
}

/** Runs `conclave …` without blocking this process's event loop (the members live here). */
function cli (args: string[]): { child: ChildProcess, out: () => string, err: () => string, done: Promise<number | null> } {
  const child = spawn(process.execPath, [conclaveBin(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  let err = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d })
  const done = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  return { child, out: () => out, err: () => err, done }
}

describe('conclave status', () => {
  it('prints the view as a table: ranks in view order, endpoints, the master mark and its epoch', async () => {
    const { cluster, ms } = await trio()
    const run = cli(['status', '--seed', hostPort(ms[1] as Member), '--cluster', cluster])
    expect(await run.done, run.err()).toBe(0)
    const lines = run.out().trim().split('\n')
    const epoch = (ms[0] as Member).epoch
    expect(lines[0]).toBe(`cluster ${cluster} · view epoch ${epoch} · 3 members · coordinator alpha`)
    expect(lines[1]).toMatch(/^RANK\s+NAME\s+ID\s+AGE\s+ENDPOINTS\s+MASTER\s+EPOCH$/)
    expect(lines).toHaveLength(5)
    expect(lines[2]).toMatch(/^0\s+alpha\s+12D3KooW…\S{6}\s+\d+s\s+http=http:\/\/127\.0\.0\.1:9090\/\s+\*\s+\d+$/)
    expect(lines[3]).toMatch(/^1\s+bravo\s+\S+\s+\d+s\s+http=http:\/\/127\.0\.0\.1:9091\/$/)
    expect(lines[4]).toMatch(/^2\s+charlie\s+\S+\s+\d+s\s+http=http:\/\/127\.0\.0\.1:9092\/$/)
  })

  it('--json prints one object; without --cluster it finds the cluster from the seed', async () => {
    const { cluster, ms } = await trio()
    const run = cli(['status', '--seed', hostPort(ms[2] as Member), '--json'])
    expect(await run.done, run.err()).toBe(0)
    const lines = run.out().trim().split('\n')
    expect(lines).toHaveLength(1)
    const status = JSON.parse(lines[0] as string) as { cluster: string, epoch: number, coordinator: { name: string }, members: Array<Record<string, unknown>> }
    expect(status.cluster).toBe(cluster)
    expect(status.epoch).toBe((ms[0] as Member).epoch)
    expect(status.coordinator.name).toBe('alpha')
    expect(status.members.map(m => [m.rank, m.name, m.master])).toEqual([[0, 'alpha', true], [1, 'bravo', false], [2, 'charlie', false]])
    expect(status.members.map(m => m.endpoints)).toEqual([{ http: 'http://127.0.0.1:9090/' }, { http: 'http://127.0.0.1:9091/' }, { http: 'http://127.0.0.1:9092/' }])
    // the master's grant: since it founded the group, at its founding view's epoch (its joinEpoch)
    expect(status.members[0]?.epoch).toBe((ms[0] as Member).view?.members[0]?.joinEpoch)
    expect(status.members.slice(1).every(m => m.epoch === null)).toBe(true)
    expect(status.members.every(m => typeof m.ageMs === 'number' && m.ageMs >= 0)).toBe(true)
    expect(status.members.map(m => m.id)).toEqual(ms.map(m => m.id))
  })

  it('--watch --json prints again after a member leaves; the client is never in a view; SIGTERM ends it with 0', async () => {
    const { cluster, ms } = await trio()
    const run = cli(['status', '--seed', hostPort(ms[0] as Member), '--cluster', cluster, '--watch', '--json'])
    const objects = (): Array<{ members: unknown[] }> => run.out().trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { members: unknown[] })
    await waitUntil(() => objects().length >= 1, 15_000, 'the first status')
    expect(objects()[0]?.members).toHaveLength(3)
    for (const m of ms) expect(m.view?.members).toHaveLength(3) // the watcher is connected, and not a member
    await (ms[2] as Member).stop()
    await waitUntil(() => objects().some(o => o.members.length === 2), 15_000, 'a status with two members')
    run.child.kill('SIGTERM')
    expect(await run.done).toBe(0)
  })
})

describe('conclave status during a rollout', () => {
  it('lists seed addresses that are not in the view: one of this cluster waiting to join, one of another wire version', async () => {
    const { cluster, ms } = await trio()
    const port = await freePort()
    // Waits to join for ever: under majority its only seed (a closed port) never answers.
    const waiting = new MemberClass({ cluster, name: 'delta', splitBrain: 'majority', seeds: [`127.0.0.1:${port}`] })
    // Answers the handshake at the next wire version (a member of a newer release).
    const newer = new MemberClass({ cluster, name: 'echo' }, {
      transport: (o, onDrop) => nextVersion(createLibp2pTransport({ cluster: o.cluster, listen: [...o.listen], maxFrameBytes: o.maxMessageBytes, wireVersion: WIRE_VERSION + 1, onDrop }), WIRE_VERSION + 1)
    })
    members.push(waiting, newer)
    await waiting.start()
    await newer.start()
    const seeds = [...ms, waiting, newer].flatMap(m => ['--seed', hostPort(m)])
    const json = cli(['status', ...seeds, '--cluster', cluster, '--json'])
    expect(await json.done, json.err()).toBe(0)
    const status = JSON.parse(json.out().trim()) as { members: unknown[], seeds: Array<{ address: string, state: string, peer: string, wire: number }> }
    expect(status.members).toHaveLength(3)
    const at = (m: Member): { state: string, peer: string, wire: number } | undefined => status.seeds.find(s => s.address === `/ip4/${hostPort(m).replace(':', '/tcp/')}`)
    expect(ms.map(m => at(m)?.state)).toEqual(['member', 'member', 'member'])
    expect(at(waiting)).toMatchObject({ state: 'not-in-view', peer: waiting.id, wire: WIRE_VERSION })
    expect(at(newer)).toMatchObject({ state: 'other-version', peer: newer.id, wire: WIRE_VERSION + 1 })
    const table = cli(['status', ...seeds, '--cluster', cluster])
    expect(await table.done, table.err()).toBe(0)
    const lines = table.out().trim().split('\n')
    expect(lines, table.out()).toHaveLength(8)
    expect(lines[5]).toBe('at the seeds, not in the view:')
    expect(lines.slice(6).join('\n')).toMatch(/this cluster, not in the view: .*\n.*other version: wire \d+/)
  })
})

describe('conclave status, bad input', () => {
  it('exits 2 without --seed, or with an unknown flag', async () => {
    for (const args of [['status'], ['status', '--seed', '127.0.0.1:1', '--colour']]) {
      const run = cli(args)
      expect(await run.done).toBe(2)
      expect(run.err().trim().split('\n')).toHaveLength(1)
    }
  })

  it('exits 1 with one line when nothing answers at the seed', async () => {
    const port = await freePort()
    for (const extra of [[], ['--cluster', 'nobody']]) {
      const t0 = Date.now()
      const run = cli(['status', '--seed', `127.0.0.1:${port}`, '--timeout', '1500', ...extra])
      expect(await run.done).toBe(1)
      const lines = run.err().trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^conclave( status)?: (no Conclave member answered|no view of cluster "nobody")/)
      expect(Date.now() - t0).toBeLessThan(15_000)
    }
  })
})
