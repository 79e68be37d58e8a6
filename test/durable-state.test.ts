/**
 * Durable state (`stateDir`): the directory's files, lock and errors; and real libp2p members on
 * 127.0.0.1 that keep their id across restarts and never start below the epochs they used, even
 * when the wall clock is behind them.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Member, createMember, InvalidOptionError } from '../src/index.js'
import { DurableState, StateDirError } from '../src/state/durable-state.js'

const dirs: string[] = []
const members: Member[] = []
afterEach(async () => {
  await Promise.all(members.splice(0).map(async m => await m.stop()))
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
function tempDir (): string {
  const d = mkdtempSync(join(tmpdir(), 'conclave-state-'))
  dirs.push(d)
  return d
}
const basis = [{ ids: ['a', 'b', 'c'], epoch: 7, settled: true }]

describe('the state directory', () => {
  it('keeps what was saved, with private files, and releases its lock on close', () => {
    const dir = tempDir()
    const first = DurableState.open(join(dir, 'm1'))
    expect(first.restored).toBeUndefined()
    expect(first.peerKey).toBeUndefined()
    first.save({ maxEpoch: 1234, incarnation: 5, basis })
    const key = Uint8Array.from([1, 2, 3])
    expect(first.keepPeerKey(key)).toEqual(key)
    // A key is written once: a second one does not replace it.
    expect(first.keepPeerKey(Uint8Array.from([9]))).toEqual(key)
    first.close()
    const again = DurableState.open(join(dir, 'm1'))
    expect(again.restored).toEqual({ maxEpoch: 1234, incarnation: 5, basis })
    expect(again.peerKey).toEqual(Buffer.from(key))
    for (const f of ['state.json', 'peer.key']) expect(statSync(join(dir, 'm1', f)).mode & 0o777, f).toBe(0o600)
    again.close()
  })

  it('refuses a directory that a running process holds, and takes over the lock of one that is gone', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`)
    let caught: unknown
    try { DurableState.open(dir) } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(StateDirError)
    expect((caught as StateDirError).code).toBe('ERR_STATE_DIR')
    expect((caught as Error).message).toContain(`in use by process ${process.ppid}`)
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    writeFileSync(join(dir, 'lock'), `${gone.stdout}\n`)
    const state = DurableState.open(dir)
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid))
    state.close()
  })

  it('a state file it cannot read is an error that says so, never silently replaced', () => {
    const cases: Array<[string, RegExp]> = [
      ['{not json', /state\.json is not JSON/],
      [JSON.stringify({ version: 2, maxEpoch: 1, incarnation: 1, basis: [] }), /version 2, expected 1/],
      [JSON.stringify({ version: 1, maxEpoch: -1, incarnation: 1, basis: [] }), /maxEpoch is not a non-negative integer/],
      [JSON.stringify({ version: 1, maxEpoch: 1, incarnation: 1, basis: [{ ids: [1] }] }), /basis holds something/]
    ]
    for (const [body, message] of cases) {
      const dir = tempDir()
      writeFileSync(join(dir, 'state.json'), body)
      expect(() => DurableState.open(dir), body).toThrow(message)
      expect(readFileSync(join(dir, 'state.json'), 'utf8')).toBe(body)
      // the failed open released its lock: the operator can fix the file and try again
      expect(() => readFileSync(join(dir, 'lock'))).toThrow()
    }
  })
})

describe('members with a state directory', () => {
  it('a restarted member keeps its id, and its first epoch is above every epoch it used, even with the clock behind them', async () => {
    const dir = join(tempDir(), 'member')
    const a = await createMember({ cluster: `durable-${process.pid}`, listen: '127.0.0.1:0', stateDir: dir })
    const id = a.id
    const firstEpoch = a.epoch
    expect(firstEpoch).toBeGreaterThan(0)
    await a.stop()
    const saved = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { maxEpoch: number, incarnation: number }
    expect(saved.maxEpoch).toBeGreaterThanOrEqual(firstEpoch)
    // As if the wall clock had since gone back by a day: the stored epochs are far ahead of it.
    const ahead = Date.now() + 86_400_000
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...saved, version: 1, maxEpoch: ahead, incarnation: ahead }))
    const b = await createMember({ cluster: `durable-${process.pid}`, listen: '127.0.0.1:0', stateDir: dir })
    members.push(b)
    expect(b.id).toBe(id)
    expect(b.epoch).toBeGreaterThan(ahead)
    expect(b.view?.members[0]?.incarnation).toBeGreaterThan(ahead)
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).maxEpoch).toBeGreaterThanOrEqual(b.epoch)
  })

  it('two members cannot share one directory; the second start() fails with StateDirError and leaves nothing running', async () => {
    const dir = join(tempDir(), 'shared')
    const a = await createMember({ cluster: `durable2-${process.pid}`, listen: '127.0.0.1:0', stateDir: dir })
    members.push(a)
    const b = new Member({ cluster: `durable2-${process.pid}`, listen: '127.0.0.1:0', stateDir: dir })
    await expect(b.start()).rejects.toBeInstanceOf(StateDirError)
    expect(a.running).toBe(true)
  })

  it('rejects a stateDir that is not a path', () => {
    expect(() => new Member({ cluster: 'x', stateDir: '' })).toThrow(InvalidOptionError)
    expect(() => new Member({ cluster: 'x', stateDir: 5 as unknown as string })).toThrow(/stateDir/)
  })
})
