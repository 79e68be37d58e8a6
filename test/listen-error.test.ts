/**
 * A listen address that cannot be listened on: a named ListenError with the reason, from the
 * API (member and observer) and as one line from the CLI. Real libp2p on 127.0.0.1; the
 * non-local address is TEST-NET-1 (192.0.2.1), refused by bind() before any packet is sent, and
 * the unresolvable name is in `.invalid`, which the resolver answers locally.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:net'
import { spawnSync } from 'node:child_process'
import { createMember, createObserver, ListenError, NotRunningError, type ListenFailure } from '../src/index.js'
import { conclaveBin } from '../src/testing/member-process.js'

let busy: Server
let busyPort = 0

beforeAll(async () => {
  busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  busyPort = (busy.address() as { port: number }).port
})

afterAll(async () => {
  await new Promise(resolve => busy.close(resolve))
})

const cases = (): Array<[string, string, ListenFailure]> => [
  ['a port in use', `127.0.0.1:${busyPort}`, 'address-in-use'],
  ['an address of no interface here', '192.0.2.1:0', 'address-not-local'],
  ['a host name that does not resolve', 'nosuchhost.invalid:7000', 'not-resolvable']
]

describe('listen failures', () => {
  it('createMember rejects with ListenError naming the address and the reason; the member is done', async () => {
    for (const [label, listen, reason] of cases()) {
      let caught: unknown
      try { await createMember({ cluster: 'listen-err', listen }) } catch (err) { caught = err }
      expect(caught, label).toBeInstanceOf(ListenError)
      const err = caught as ListenError
      expect(err.code).toBe('ERR_LISTEN')
      expect(err.reason, label).toBe(reason)
      expect(err.address).toContain(listen.split(':')[0] as string)
      expect(err.message).not.toContain('faultTolerance')
      expect(err.cause).toBeDefined()
    }
  })

  it('a member whose start failed cannot be started again, and its waits settle', async () => {
    const { Member } = await import('../src/index.js')
    const m = new Member({ cluster: 'listen-err', listen: `127.0.0.1:${busyPort}` })
    await expect(m.start()).rejects.toBeInstanceOf(ListenError)
    await expect(m.waitForView(() => true)).rejects.toBeInstanceOf(NotRunningError)
    await expect(m.start()).rejects.toBeInstanceOf(NotRunningError)
    await m.stop()
  })

  it('an observer gets the same error', async () => {
    await expect(createObserver({ cluster: 'listen-err', seeds: ['127.0.0.1:1'], listen: `127.0.0.1:${busyPort}` } as never)).rejects.toMatchObject({ name: 'ListenError', reason: 'address-in-use' })
  })

  it('the CLI prints one line and exits non-zero, with no stack trace', () => {
    for (const [label, listen, reason] of cases()) {
      const run = spawnSync(process.execPath, [conclaveBin(), 'member', '--cluster', 'listen-err', '--listen', listen], { encoding: 'utf8', timeout: 20_000 })
      expect(run.status, label).not.toBe(0)
      const lines = run.stderr.trim().split('\n')
      expect(lines, label).toHaveLength(1)
      expect(lines[0]).toMatch(/^conclave: cannot listen on /)
      expect(lines[0]).toContain({ 'address-in-use': 'address in use', 'address-not-local': 'not an address of this host', 'not-resolvable': 'does not resolve' }[reason as 'address-in-use'])
      expect(run.stderr).not.toMatch(/\n\s+at /)
    }
  })
})
