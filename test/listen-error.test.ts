/**
 * A listen address that cannot be listened on: a named ListenError with the reason, from the
 * API (member and observer) and as one line from the CLI, also with --metrics. Real libp2p on
 * 127.0.0.1; the non-local address is TEST-NET-1 (192.0.2.1), refused by bind() before any
 * packet is sent. No test asks a DNS server: names are answered by test/fixtures/offline-dns.mjs
 * (`*.invalid` fails with ENOTFOUND at once, `*.localhost` is 127.0.0.1), imported here and
 * preloaded with `--import` into the CLI children.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:net'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createMember, createObserver, ListenError, Member, NotRunningError, type ListenFailure } from '../src/index.js'
import { conclaveBin } from '../src/testing/member-process.js'
import { lookups, restore } from './fixtures/offline-dns.mjs'

const OFFLINE_DNS = fileURLToPath(new URL('./fixtures/offline-dns.mjs', import.meta.url))

let busy: Server
let busyPort = 0

beforeAll(async () => {
  busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  busyPort = (busy.address() as { port: number }).port
})

afterAll(async () => {
  restore()
  await new Promise(resolve => busy.close(resolve))
})

const cases = (): Array<[string, string, ListenFailure, string]> => [
  ['a port in use', `127.0.0.1:${busyPort}`, 'address-in-use', 'address in use'],
  ['an address of no interface here', '192.0.2.1:0', 'address-not-local', 'not an address of this host'],
  ['a host name that does not resolve', 'nosuchhost.invalid:7000', 'not-resolvable', 'the host name does not resolve'],
  ['a name that resolves, to a port in use', `busy.localhost:${busyPort}`, 'address-in-use', 'address in use']
]

async function startError (listen: string): Promise<unknown> {
  try {
    const m = await createMember({ cluster: 'listen-err', listen })
    await m.stop()
  } catch (err) {
    return err
  }
  return undefined
}

describe('listen failures', () => {
  it('createMember rejects with ListenError: one line naming host:port and the reason, the underlying error as cause', async () => {
    for (const [label, listen, reason, text] of cases()) {
      const err = await startError(listen)
      expect(err, label).toBeInstanceOf(ListenError)
      const e = err as ListenError
      expect(e.code).toBe('ERR_LISTEN')
      expect(e.reason, label).toBe(reason)
      expect(e.hostPort, label).toBe(listen)
      expect(e.message, label).toMatch(new RegExp(`^cannot listen on ${listen.replace(/\./g, '\\.')}: ${text}`))
      expect(e.message, label).not.toContain('\n')
      expect(e.message).not.toContain('faultTolerance')
      expect(e.cause, label).toBeInstanceOf(Error)
    }
  })

  it('the cause is the resolver\'s or the system\'s own error', async () => {
    const unresolvable = await startError('nosuchhost.invalid:7000') as ListenError
    expect(unresolvable.cause).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo' })
    const inUse = await startError(`127.0.0.1:${busyPort}`) as ListenError
    expect(inUse.cause).toMatchObject({ code: 'EADDRINUSE' })
  })

  it('a host name is resolved by Conclave (libp2p listens on IP addresses only): once, and a name that resolves is listened on at its address', async () => {
    const before = lookups.length
    const err = await startError('elsewhere.invalid:7000') as ListenError
    expect(err.reason).toBe('not-resolvable')
    expect(err.address).toBe('/dns4/elsewhere.invalid/tcp/7000')
    expect(lookups.slice(before)).toEqual(['elsewhere.invalid'])

    const m = await createMember({ cluster: 'listen-name', listen: 'member.localhost:0' })
    try {
      expect(lookups).toContain('member.localhost')
      expect(m.addresses.length).toBeGreaterThan(0)
      for (const a of m.addresses) expect(a).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*\/p2p\//)
      await m.waitForView(v => v.members.length === 1, { timeoutMs: 10_000 })
    } finally {
      await m.stop()
    }
  })

  it('a member whose start failed cannot be started again, and its waits settle', async () => {
    const m = new Member({ cluster: 'listen-err', listen: `127.0.0.1:${busyPort}` })
    await expect(m.start()).rejects.toBeInstanceOf(ListenError)
    await expect(m.waitForView(() => true)).rejects.toBeInstanceOf(NotRunningError)
    await expect(m.start()).rejects.toBeInstanceOf(NotRunningError)
    await m.stop()
  })

  it('an observer gets the same errors', async () => {
    await expect(createObserver({ cluster: 'listen-err', seeds: ['127.0.0.1:1'], listen: `127.0.0.1:${busyPort}` })).rejects.toMatchObject({ name: 'ListenError', reason: 'address-in-use' })
    await expect(createObserver({ cluster: 'listen-err', seeds: ['127.0.0.1:1'], listen: 'nosuchhost.invalid:0' })).rejects.toMatchObject({ name: 'ListenError', reason: 'not-resolvable' })
  })
})

/** Runs the CLI with the offline resolver preloaded; resolves with its exit and output, or rejects after `ms`. */
async function cli (args: string[], ms = 20_000): Promise<{ status: number | null, stderr: string }> {
  const child = spawn(process.execPath, ['--import', OFFLINE_DNS, conclaveBin(), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`conclave ${args.join(' ')} did not exit within ${ms} ms; stderr: ${stderr}`)) }, ms)
    child.once('exit', status => { clearTimeout(timer); resolve({ status, stderr }) })
  })
}

describe('the CLI', () => {
  it('prints one line and exits non-zero, with no stack trace', async () => {
    for (const [label, listen, , text] of cases()) {
      const run = await cli(['member', '--cluster', 'listen-err', '--listen', listen])
      expect(run.status, label).toBe(1)
      const lines = run.stderr.trim().split('\n')
      expect(lines, label).toHaveLength(1)
      expect(lines[0], label).toMatch(new RegExp(`^conclave: cannot listen on ${listen.replace(/\./g, '\\.')}: ${text}`))
      expect(run.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('with --metrics, a failed start exits instead of hanging on the metrics server', async () => {
    for (const listen of [`127.0.0.1:${busyPort}`, 'nosuchhost.invalid:7000']) {
      const run = await cli(['member', '--cluster', 'listen-err', '--listen', listen, '--metrics', '127.0.0.1:0'], 15_000)
      expect(run.status, listen).toBe(1)
      expect(run.stderr.trim().split('\n'), listen).toHaveLength(1)
      expect(run.stderr).toMatch(/^conclave: cannot listen on /)
    }
  })
})
