/**
 * Durable member state (`stateDir`): what a member must remember across restarts so that its
 * promises hold (docs/design.md, "Durable state"):
 *  - `peer.key`: its peer key, so that it keeps its member id;
 *  - `state.json`: the highest epoch it may have used (a reservation above it, so that not
 *    every view costs a write), its last incarnation, and the memberships a majority must be
 *    counted against (core/quorum.ts).
 *
 * Writes are synchronous and durable before the caller goes on: the new file is written under a
 * temporary name, fsynced, renamed over the old one, and the directory is fsynced. The membership
 * core asks for a write before any effect that relies on the new values (a proposal, an ack, an
 * install), so a crash at any point leaves a state that is at least as new as anything the
 * member told anyone.
 *
 * One process at a time: `lock` holds the owner's pid. A lock whose process no longer runs is
 * taken over; one held by a running process is a `StateDirError`. A state file that cannot be
 * read is an error too, never silently replaced: forgetting it would forfeit what it protects.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ConclaveError } from '../errors.js'
import type { Basis, Candidate } from '../core/quorum.js'

export const STATE_VERSION = 1

/** Directories this process holds: the pid in a lock file cannot tell two members of one process apart. */
const heldHere = new Set<string>()

/** What `state.json` holds. */
export interface PersistedState {
  /** No epoch this member used or promised is above this; new ones start above it. */
  readonly maxEpoch: number
  /** The incarnation of the last run: the next run's is higher, whatever the wall clock says. */
  readonly incarnation: number
  /** The memberships a group this member founds or joins must count (core/quorum.ts). */
  readonly basis: Basis
}

/** A state directory could not be used: locked by another process, unreadable, or not writable. */
export class StateDirError extends ConclaveError {
  readonly dir: string
  constructor (dir: string, detail: string, options?: ErrorOptions) {
    super(`state directory ${dir}: ${detail}`, 'ERR_STATE_DIR', options)
    this.name = 'StateDirError'
    this.dir = dir
  }
}

export class DurableState {
  /** What the last run left, or undefined for a new directory. */
  readonly restored: PersistedState | undefined
  private closed = false

  private constructor (readonly dir: string, restored: PersistedState | undefined, private peerKeyBytes: Uint8Array | undefined) {
    this.restored = restored
  }

  /** Opens (creating, mode 0700) and locks `dir`, and reads what it holds. */
  static open (dir: string): DurableState {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
    } catch (err) {
      throw new StateDirError(dir, `cannot create it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err })
    }
    lock(dir)
    try {
      return new DurableState(dir, readState(dir), readOptional(dir, 'peer.key'))
    } catch (err) {
      unlock(dir)
      throw err
    }
  }

  /** The stored peer key (protobuf bytes), if any. */
  get peerKey (): Uint8Array | undefined { return this.peerKeyBytes }

  /** Stores the peer key, durably, unless one is stored already; returns the stored one. */
  keepPeerKey (bytes: Uint8Array): Uint8Array {
    if (this.peerKeyBytes !== undefined) return this.peerKeyBytes
    writeDurably(this.dir, 'peer.key', bytes, 0o600)
    this.peerKeyBytes = bytes
    return bytes
  }

  /** Replaces `state.json`, durably, before returning. */
  save (state: PersistedState): void {
    if (this.closed) return
    const body = JSON.stringify({ version: STATE_VERSION, maxEpoch: state.maxEpoch, incarnation: state.incarnation, basis: state.basis })
    writeDurably(this.dir, 'state.json', Buffer.from(body + '\n'), 0o600)
  }

  /** Releases the lock. Idempotent; later saves are ignored. */
  close (): void {
    if (this.closed) return
    this.closed = true
    unlock(this.dir)
  }
}

function lock (dir: string): void {
  const key = resolve(dir)
  if (heldHere.has(key)) throw new StateDirError(dir, 'in use by another member of this process (two members must not share one state directory)')
  const path = join(dir, 'lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      heldHere.add(key)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StateDirError(dir, `cannot lock it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err })
    }
    const owner = Number.parseInt(readFileSync(path, 'utf8'), 10)
    if (Number.isInteger(owner) && owner !== process.pid && processRuns(owner)) {
      throw new StateDirError(dir, `in use by process ${owner} (two members must not share one state directory)`)
    }
    try { unlinkSync(path) } catch { /* taken by someone else meanwhile: the next attempt tells */ }
  }
  throw new StateDirError(dir, 'another process took its lock at the same moment')
}

function unlock (dir: string): void {
  heldHere.delete(resolve(dir))
  try {
    const path = join(dir, 'lock')
    if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) unlinkSync(path)
  } catch { /* already gone */ }
}

function processRuns (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readOptional (dir: string, name: string): Buffer | undefined {
  try {
    return readFileSync(join(dir, name))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new StateDirError(dir, `cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err })
  }
}

function readState (dir: string): PersistedState | undefined {
  const raw = readOptional(dir, 'state.json')
  if (raw === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(raw.toString('utf8'))
  } catch {
    throw new StateDirError(dir, 'state.json is not JSON; move the directory away to start as a new member (with a new id)')
  }
  const problem = stateProblem(parsed)
  if (problem !== undefined) throw new StateDirError(dir, `state.json: ${problem}; move the directory away to start as a new member (with a new id)`)
  const s = parsed as { maxEpoch: number, incarnation: number, basis: Candidate[] }
  return { maxEpoch: s.maxEpoch, incarnation: s.incarnation, basis: s.basis.map(c => ({ ids: [...c.ids], epoch: c.epoch, settled: c.settled })) }
}

/** Why a parsed state.json is not one, or undefined. */
export function stateProblem (value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not an object'
  const s = value as Record<string, unknown>
  if (s.version !== STATE_VERSION) return `version ${JSON.stringify(s.version)}, expected ${STATE_VERSION}`
  const count = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  if (!count(s.maxEpoch)) return 'maxEpoch is not a non-negative integer'
  if (!count(s.incarnation)) return 'incarnation is not a non-negative integer'
  if (!Array.isArray(s.basis)) return 'basis is not an array'
  for (const c of s.basis as unknown[]) {
    const k = c as Record<string, unknown>
    if (typeof c !== 'object' || c === null || !Array.isArray(k.ids) || !k.ids.every(id => typeof id === 'string') || !count(k.epoch) || typeof k.settled !== 'boolean') {
      return 'basis holds something that is not a candidate { ids, epoch, settled }'
    }
  }
  return undefined
}

/** Writes `name` in `dir` so that after a crash it holds either the old or the new bytes. */
function writeDurably (dir: string, name: string, bytes: Uint8Array, mode: number): void {
  const path = join(dir, name)
  const temp = `${path}.${process.pid}.tmp`
  try {
    const fd = openSync(temp, 'w', mode)
    try {
      writeSync(fd, bytes)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, path)
    const dirFd = openSync(dir, 'r')
    try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
  } catch (err) {
    throw new StateDirError(dir, `cannot write ${name} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err })
  }
}
