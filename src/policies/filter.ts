/**
 * The coordinator filter (camel-jgroups' JGroupsFilters.dropNonCoordinatorViews, ActiveMQ's
 * exclusive consumer): items pass only while this member is a master, checked at each item
 * against the clock — so after a pause longer than the lease, nothing passes, even before any
 * timer of this process has run.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { EventEmitter } from 'node:events'
import type { Member, MastershipChange } from '../member.js'
import { rejectUnknownKeys, validateMasters } from '../options.js'
import { tokenString } from '../core/fencing.js'
import { InvalidOptionError } from '../errors.js'
import { internalsOf } from '../internal/member-internals.js'
import { boundedEvents, highWaterMarkOf, type IterateOptions } from '../internal/bounded-events.js'

export interface FilterOptions {
  /** Pass items while this member is one of the first N. @default the member's `masters` option */
  readonly masters?: number
}

/** An item with the epoch of the view under which it passed, and the grant's fencing token (core/fencing.ts). */
export interface Stamped<T> {
  readonly item: T
  readonly epoch: number
  readonly token: string
}

/** Passes the items of `source` that arrive while this member is master; drops the rest. */
export function masterOnly<T> (member: Member, source: AsyncIterable<T> | Iterable<T>, opts: FilterOptions = {}): AsyncIterableIterator<T> {
  return new MasterFilter(member, mastersOf(member, opts), source, item => item)
}

/** As `masterOnly`, with each passed item stamped with the epoch under which it passed. */
export function masterOnlyStamped<T> (member: Member, source: AsyncIterable<T> | Iterable<T>, opts: FilterOptions = {}): AsyncIterableIterator<Stamped<T>> {
  return new MasterFilter(member, mastersOf(member, opts), source, item => stamp(member, item))
}

function stamp<T> (member: Member, item: T): Stamped<T> {
  const epoch = member.epoch
  return { item, epoch, token: tokenString({ epoch, holder: member.id }) }
}

/**
 * A hand-written async iterator rather than an async generator: a generator costs a promise
 * chain per item (about 4 million items/s here); this returns settled promises for
 * synchronous sources and awaits only what the source itself makes async.
 */
class MasterFilter<T, R> implements AsyncIterableIterator<R> {
  private readonly syncIt: Iterator<T> | undefined
  private readonly asyncIt: AsyncIterator<T> | undefined

  constructor (private readonly member: Member, private readonly n: number, source: AsyncIterable<T> | Iterable<T>, private readonly map: (item: T) => R) {
    if (typeof (source as AsyncIterable<T>)[Symbol.asyncIterator] === 'function') {
      this.asyncIt = (source as AsyncIterable<T>)[Symbol.asyncIterator]()
    } else {
      this.syncIt = (source as Iterable<T>)[Symbol.iterator]()
    }
  }

  [Symbol.asyncIterator] (): this { return this }

  next (): Promise<IteratorResult<R>> {
    const it = this.syncIt
    if (it === undefined) return this.nextAsync()
    try {
      for (;;) {
        const r = it.next()
        if (r.done === true) return Promise.resolve({ done: true, value: undefined })
        if (this.member.isMaster(this.n)) return Promise.resolve({ done: false, value: this.map(r.value) })
      }
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private async nextAsync (): Promise<IteratorResult<R>> {
    const it = this.asyncIt as AsyncIterator<T>
    for (;;) {
      const r = await it.next()
      if (r.done === true) return { done: true, value: undefined }
      if (this.member.isMaster(this.n)) return { done: false, value: this.map(r.value) }
    }
  }

  /** The consumer stopped early (break, throw): close the source too. */
  async return (): Promise<IteratorResult<R>> {
    await (this.asyncIt?.return?.() ?? this.syncIt?.return?.())
    return { done: true, value: undefined }
  }
}

/** The synchronous variant, for in-memory batches on a hot path. */
export function * masterOnlySync<T> (member: Member, source: Iterable<T>, opts: FilterOptions = {}): Generator<T> {
  const n = mastersOf(member, opts)
  for (const item of source) {
    if (member.isMaster(n)) yield item
  }
}

/** A Node object-mode Transform that forwards chunks only while this member is master. */
export function masterOnlyStream (member: Member, opts: FilterOptions & { readonly stamped?: boolean } = {}): Transform {
  const n = mastersOf(member, opts)
  const stamped = opts.stamped === true
  return new Transform({
    objectMode: true,
    transform (chunk: unknown, _enc: BufferEncoding, done: TransformCallback) {
      if (member.isMaster(n)) done(null, stamped ? stamp(member, chunk) : chunk)
      else done()
    }
  })
}

/**
 * This member's promotions and demotions for masters(N), as they happen (Camel's view messages
 * on the coordinator yield promotions only). Ends when `signal` aborts or the member stops.
 */
export function mastershipChanges (member: Member, opts: FilterOptions & IterateOptions = {}): AsyncGenerator<MastershipChange> {
  const n = mastersOf(member, opts)
  const hwm = highWaterMarkOf(opts)
  const stopped = internalsOf(member).stopped
  const signal = opts.signal === undefined ? stopped : AbortSignal.any([opts.signal, stopped])
  return relayChanges(member, n, signal, hwm)
}

async function * relayChanges (member: Member, n: number, signal: AbortSignal, hwm: number): AsyncGenerator<MastershipChange> {
  if (signal.aborted) return
  const relay = new EventEmitter()
  const unwatch = member.watchMastership(n, change => relay.emit('change', change))
  try {
    yield * boundedEvents<MastershipChange>(relay, 'change', signal, hwm, 'member.mastershipChanges()')
  } finally {
    unwatch()
  }
}

/** The N the options ask for; an unknown option key (a misspelt `masters`) is refused. */
function mastersOf (member: Member, opts: FilterOptions): number {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('opts', 'an object such as { masters: 2 }', opts)
  rejectUnknownKeys(opts, ['masters', 'stamped', 'signal', 'highWaterMark'])
  return opts.masters === undefined ? member.options.masters : validateMasters('masters', opts.masters)
}
