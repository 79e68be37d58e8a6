/** The `conclave` command as a person or a script uses it. */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemberProcess, conclaveBin } from '../src/testing/member-process.js'

const run = (...args: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [conclaveBin(), ...args], { encoding: 'utf8', timeout: 20_000 })

describe('conclave CLI', () => {
  it('documents every member flag in --help', () => {
    const r = run('member', '--help')
    expect(r.status).toBe(0)
    for (const flag of ['--cluster', '--listen', '--seed', '--name', '--split-brain', '--quorum', '--timing', '--json', '--help']) expect(r.stdout).toContain(flag)
    expect(run('--help').stdout).toContain('conclave member')
  })

  const bad: Array<[string, string[], RegExp]> = [
    ['missing --cluster', ['member'], /--cluster/],
    ['bad --listen', ['member', '--cluster', 'x', '--listen', 'nowhere'], /listen/],
    ['bad --seed', ['member', '--cluster', 'x', '--seed', '1.2.3.4:99999'], /seeds\[0\]/],
    ['bad cluster name', ['member', '--cluster', 'a b'], /cluster/],
    ['unknown flag', ['member', '--cluster', 'x', '--colour'], /colour/],
    ['unknown command', ['frobnicate'], /unknown command/],
    ['--masters 0', ['member', '--cluster', 'x', '--masters', '0'], /masters/],
    ['--masters -1', ['member', '--cluster', 'x', '--masters', '-1'], /masters/],
    ['--masters 1.5', ['member', '--cluster', 'x', '--masters', '1.5'], /masters/],
    ['an --endpoint that is not a URL', ['member', '--cluster', 'x', '--endpoint', 'http=localhost:80'], /endpoints\.http/],
    ['an --endpoint without =', ['member', '--cluster', 'x', '--endpoint', 'http'], /--endpoint expects NAME=value/],
    ['a placeholder with no value', ['member', '--cluster', 'x', '--endpoint', 'http=http://h:{{NO_SUCH_VAR_X}}/'], /NO_SUCH_VAR_X/],
    ['--split-brain maybe', ['member', '--cluster', 'x', '--split-brain', 'maybe'], /--split-brain must be allow or majority/],
    ['--quorum 0', ['member', '--cluster', 'x', '--quorum', '0'], /quorum/],
    ['--masters 3 --quorum 2', ['member', '--cluster', 'x', '--masters', '3', '--quorum', '2'], /masters/],
    ['a missing --config file', ['member', '--config', '/nonexistent/conclave.json'], /--config/],
    ['a missing --key-file', ['member', '--cluster', 'x', '--key-file', '/nonexistent/key'], /--key-file.*\/nonexistent\/key \(ENOENT\)/],
    ['a --key-file that is no key', ['member', '--cluster', 'x', '--key-file', '/etc/hostname'], /--key-file \/etc\/hostname.*conclave keygen/],
    ['an unknown --timing name', ['member', '--cluster', 'x', '--timing', 'suspectMs=900'], /timing\.suspectMs/],
    ['a --timing that is no number', ['member', '--cluster', 'x', '--timing', 'suspectAfterMs=soon'], /--timing suspectAfterMs: expected a whole number/],
    ['a --timing lease at or above suspicion plus probe', ['member', '--cluster', 'x', '--timing', 'leaseMs=5000'], /leaseMs/],
    ['keygen with a stray flag', ['keygen', '--bits', '9'], /bits/]
  ]
  for (const [label, args, pattern] of bad) {
    it(`exits non-zero with a one-line reason on ${label}`, () => {
      const r = run(...args)
      expect(r.status).toBe(2)
      const lines = String(r.stderr).trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^conclave: /)
      expect(lines[0]).toMatch(pattern)
    })
  }

  it('prints ready, view and, on SIGTERM, left as JSON lines, then exits 0', async () => {
    const p = new MemberProcess({ cluster: `cli-${process.pid}`, name: 'solo' })
    await p.waitReady()
    await p.waitFor(e => e.type === 'view', 10_000)
    await p.stop()
    expect((await p.exited).code).toBe(0)
    const types = p.events.map(e => e.type)
    expect(types[0]).toBe('ready')
    expect(types).toContain('view')
    expect(types[types.length - 1]).toBe('left')
    for (const e of p.events) expect(typeof e.ts).toBe('number')
    const ready = p.ready()
    expect(ready).toMatchObject({ id: expect.any(String), name: 'solo', listen: [expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)] })
    expect(p.lastView()).toMatchObject({ epoch: expect.any(Number), coordinator: ready?.id, self: ready?.id, isCoordinator: true, members: [{ id: ready?.id, name: 'solo' }] })
    // one master line per mastership change: elected at start, leaving at the end
    const masters = p.events.filter(e => e.type === 'master')
    expect(masters).toMatchObject([
      { isMaster: true, reason: 'elected', epoch: p.lastView()?.epoch },
      { isMaster: false, reason: 'leaving' }
    ])
  })

  it('one --config file serves two servers: {{placeholders}} from --set and the environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-cli-'))
    const file = join(dir, 'cluster.json')
    writeFileSync(file, JSON.stringify({ cluster: `cfg-${process.pid}`, name: 'server-{{PORT}}', endpoints: { http: 'http://{{HOST:-127.0.0.1}}:{{PORT}}/' } }))
    const a = new MemberProcess({ cluster: `cfg-${process.pid}`, name: 'ignored', extraArgs: ['--config', file, '--set', 'PORT=9090'] })
    await a.waitReady()
    const b = new MemberProcess({ cluster: `cfg-${process.pid}`, name: 'ignored-too', seeds: [a.address as string], extraArgs: ['--config', file], env: { PORT: '9191', HOST: '127.0.0.2' } })
    await b.waitReady()
    expect(a.ready()?.endpoints).toEqual({ http: 'http://127.0.0.1:9090/' })
    expect(b.ready()?.endpoints).toEqual({ http: 'http://127.0.0.2:9191/' })
    await Promise.all([a.stop(), b.stop()])
  })

  it('keygen writes a key that two members share; the key shows only as its fingerprint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conclave-key-'))
    const file = join(dir, 'cluster.key')
    const made = run('keygen', '--out', file)
    expect(made.status).toBe(0)
    const fingerprint = /cluster key ([0-9a-f]{8}) written/.exec(String(made.stderr))?.[1]
    expect(fingerprint).toBeDefined()
    const secret = readFileSync(file, 'utf8').split('\n')[2] as string
    expect(secret).toMatch(/^[0-9a-f]{64}$/)
    expect(String(made.stdout)).toBe('')
    expect(run('keygen', '--out', file).status).toBe(2) // never overwrites a key
    const cluster = `key-${process.pid}`
    const a = new MemberProcess({ cluster, name: 'a', extraArgs: ['--key-file', file] })
    await a.waitReady()
    const b = new MemberProcess({ cluster, name: 'b', seeds: [a.address as string], extraArgs: ['--key-file', file] })
    try {
      await b.waitFor(e => e.type === 'view' && (e.members as unknown[]).length === 2, 15_000)
      expect(a.ready()?.keyFingerprint).toBe(fingerprint)
      const status = spawnSync(process.execPath, [conclaveBin(), 'status', '--seed', a.address as string, '--key-file', file, '--json'], { encoding: 'utf8', timeout: 20_000 })
      expect(status.status).toBe(0)
      expect(JSON.parse(status.stdout).members).toHaveLength(2)
      for (const text of [JSON.stringify(a.events), JSON.stringify(b.events), a.stderr, b.stderr, status.stdout, status.stderr]) expect(text).not.toContain(secret)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('--masters 2: the second member of the view prints a master line too', async () => {
    const cluster = `cli2-${process.pid}`
    const a = new MemberProcess({ cluster, name: 'a', extraArgs: ['--masters', '2'] })
    await a.waitReady()
    const b = new MemberProcess({ cluster, name: 'b', seeds: [a.address as string], extraArgs: ['--masters', '2'] })
    try {
      await b.waitReady()
      const line = await b.waitFor(e => e.type === 'master' && e.isMaster === true, 10_000)
      expect(line.reason).toBe('elected')
      expect(b.lastView()?.isCoordinator).toBe(false)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
