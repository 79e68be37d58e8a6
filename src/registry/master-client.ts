/**
 * A client that always talks to the current master: the seed scenario's `fabric:FD` endpoint.
 * It resolves a service to the coordinator's URL from an EndpointSource (an Observer, or a
 * Member), follows it as views change, and sends HTTP requests there with Node's fetch.
 *
 * Paths are resolved against the master's URL exactly as `new URL(path, masterUrl)` does: with
 * the master at `http://h/api/`, `orders` goes to `http://h/api/orders` and `/orders` to
 * `http://h/orders`. A path that would leave the master — an absolute URL (`https://other/`,
 * any `scheme:`) or a protocol-relative one (`//other/`) — is refused (InvalidOptionError
 * 'path'): the client talks to the master and nowhere else.
 *
 * Its life ends with `close()`, or when its source stops (a stopped member or observer): then
 * requests reject with NotRunningError (also those waiting for a master, or in flight: they are
 * aborted), and iterators end.
 *
 * Retrying is opt-in per request (`retrySafe`): only the caller knows whether a request may
 * run twice. A safe request that fails to connect, or gets 502/503/504 (a standby or a master
 * stepping down), is sent again to the master of the moment: at once when the master URL has
 * changed, else after a short back-off, within `retryBudgetMs` from the first attempt.
 */
import { EventEmitter } from 'node:events'
import { boundedEvents, highWaterMarkOf, type IterateOptions } from '../internal/bounded-events.js'
import { InvalidOptionError, NoMasterError, NotRunningError } from '../errors.js'
import { rejectUnknownKeys } from '../options.js'
import { validateService } from './endpoints.js'
import type { EndpointSource } from './source.js'

export interface MasterClientOptions {
  /** How long fetch() and waitForMaster() wait for a master offering the service. @default 5000 */
  readonly noMasterTimeoutMs?: number
  /** Default time budget of a retrySafe request, from its first attempt. @default 3000 */
  readonly retryBudgetMs?: number
}

export interface MasterFetchInit extends RequestInit {
  /** The request may be repeated (idempotent): retry it on the new master after a failure. @default false */
  readonly retrySafe?: boolean
  /** Overrides the client's retryBudgetMs for this request. */
  readonly retryBudgetMs?: number
}

export interface MasterChange {
  readonly url: string | undefined
  readonly previous: string | undefined
}

const RETRY_STATUSES = new Set([502, 503, 504])
const FIRST_BACKOFF_MS = 10
const MAX_BACKOFF_MS = 100

const CLOSED = 'the master client is closed'

/**
 * A path relative to the master's URL, as the URL parser will read it: it ignores leading and
 * trailing spaces and control characters, tabs and newlines anywhere, and reads `\` as `/` in
 * http(s) URLs, so `\t//evil` and `\\evil` are protocol-relative too.
 */
function checkPath (path: unknown): string {
  const expected = 'a path relative to the master\'s URL ("orders/42" or "/orders/42"), not an absolute or protocol-relative URL that would leave the master'
  if (typeof path !== 'string') throw new InvalidOptionError('path', expected, path)
  const parsed = path.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '')
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(parsed) || /^[\\/]{2}/.test(parsed)) throw new InvalidOptionError('path', expected, path)
  return path
}

function positiveMs (option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidOptionError(option, 'a positive number of milliseconds', value)
  return value
}

export class MasterClient {
  readonly service: string
  private readonly noMasterTimeoutMs: number
  private readonly retryBudgetMs: number
  private readonly emitter = new EventEmitter()
  private readonly lifetime = new AbortController()
  private readonly unsubscribe: () => void
  private readonly unsubscribeStop: () => void
  private current: string | undefined
  private answered: string | undefined

  constructor (private readonly source: EndpointSource, service: string, opts: MasterClientOptions = {}) {
    this.service = validateService('service', service)
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new InvalidOptionError('opts', 'an object', opts)
    rejectUnknownKeys(opts, ['noMasterTimeoutMs', 'retryBudgetMs'])
    this.noMasterTimeoutMs = positiveMs('noMasterTimeoutMs', opts.noMasterTimeoutMs ?? 5000)
    this.retryBudgetMs = positiveMs('retryBudgetMs', opts.retryBudgetMs ?? 3000)
    if (source.stopped === true) throw new NotRunningError('follow the master', 'the endpoint source (member or observer) has stopped')
    this.emitter.setMaxListeners(0)
    this.current = source.masterEndpoint(this.service)
    this.unsubscribe = source.onRegistryChange(() => this.refresh())
    this.unsubscribeStop = source.onStop?.(() => this.close()) ?? (() => {})
  }

  /** Whether the client has closed: by `close()`, or because its source stopped. */
  get closed (): boolean { return this.lifetime.signal.aborted }

  /** The master's URL for the service now, or undefined. */
  get url (): string | undefined { return this.current }
  /** The master URL that answered the last request that got a response. */
  get lastUrl (): string | undefined { return this.answered }

  on (event: 'change', listener: (change: MasterChange) => void): this { this.emitter.on(event, listener); return this }
  once (event: 'change', listener: (change: MasterChange) => void): this { this.emitter.once(event, listener); return this }
  off (event: 'change', listener: (change: MasterChange) => void): this { this.emitter.off(event, listener); return this }

  /**
   * Every change of the master URL from now on, until `signal` aborts or the client closes.
   * Bounded: a consumer `highWaterMark` (10,000) changes behind gets IteratorOverflowError.
   */
  changes (opts: IterateOptions = {}): AsyncIterable<MasterChange> {
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('opts', 'an object such as { signal }', opts)
    rejectUnknownKeys(opts, ['signal', 'highWaterMark'])
    const hwm = highWaterMarkOf(opts)
    const signal = opts.signal === undefined ? this.lifetime.signal : AbortSignal.any([opts.signal, this.lifetime.signal])
    return boundedEvents<MasterChange>(this.emitter, 'change', signal, hwm, 'client.changes()')
  }

  /**
   * The master's URL, waiting up to `timeoutMs` for one; NoMasterError when none comes,
   * NotRunningError when the client is closed (or closes while waiting).
   */
  async waitForMaster (opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<string> {
    const timeoutMs = positiveMs('timeoutMs', opts.timeoutMs ?? this.noMasterTimeoutMs)
    if (this.lifetime.signal.aborted) throw new NotRunningError('wait for a master', CLOSED)
    if (this.current !== undefined) return this.current
    return await new Promise<string>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        this.emitter.off('change', onChange)
        this.lifetime.signal.removeEventListener('abort', onClosed)
        opts.signal?.removeEventListener('abort', onAbort)
      }
      const onChange = ({ url }: MasterChange): void => { if (url !== undefined) { done(); resolve(url) } }
      const onClosed = (): void => { done(); reject(new NotRunningError('wait for a master', CLOSED)) }
      const onAbort = (): void => { done(); reject(opts.signal?.reason) }
      const timer = setTimeout(() => { done(); reject(new NoMasterError(this.service, `${this.why()} (waited ${timeoutMs} ms)`)) }, timeoutMs)
      this.emitter.on('change', onChange)
      this.lifetime.signal.addEventListener('abort', onClosed, { once: true })
      if (opts.signal?.aborted === true) { onAbort(); return }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Sends a request to the current master. `path` is resolved against the master's URL exactly
   * as `new URL(path, masterUrl)` does (master `http://h/api/`: `x` → `http://h/api/x`, `/x` →
   * `http://h/x`); an absolute or protocol-relative URL is refused with InvalidOptionError
   * 'path', as it would leave the master.
   * Without `retrySafe` the first outcome is final. With it, connection failures and
   * 502/503/504 are retried on the master of the moment within the budget; then the last
   * error is thrown or the last response returned. Rejects with NotRunningError once the client
   * is closed; a request waiting for a master or for its response when it closes is aborted and
   * rejects with it too (a response already returned is the caller's to read).
   */
  async fetch (path: string, init: MasterFetchInit = {}): Promise<Response> {
    checkPath(path)
    if (this.lifetime.signal.aborted) throw new NotRunningError('fetch', CLOSED)
    const { retrySafe = false, retryBudgetMs = this.retryBudgetMs, ...requestInit } = init
    positiveMs('retryBudgetMs', retryBudgetMs)
    const deadline = Date.now() + retryBudgetMs
    let backoff = FIRST_BACKOFF_MS
    for (let attempt = 1; ; attempt++) {
      const base = await this.waitForMaster({ ...(init.signal != null ? { signal: init.signal } : {}) })
      const url = new URL(path, base)
      // checkPath refuses by syntax; this refuses by outcome: no request goes to another origin.
      if (url.origin !== new URL(base).origin) throw new InvalidOptionError('path', 'a path relative to the master\'s URL', path)
      // close() aborts a request until its response arrives, not after: a body read after
      // close() is the caller's (its own signal still governs it).
      const untilResponse = new AbortController()
      const onClose = (): void => { untilResponse.abort() }
      this.lifetime.signal.addEventListener('abort', onClose, { once: true })
      let outcome: { res: Response } | { err: unknown }
      try {
        const signal = init.signal != null ? AbortSignal.any([init.signal, untilResponse.signal]) : untilResponse.signal
        const res = await fetch(url, { ...requestInit, signal })
        this.answered = base
        outcome = { res }
      } catch (err) {
        if (this.lifetime.signal.aborted) throw new NotRunningError('fetch', CLOSED, { cause: err })
        outcome = { err }
      } finally {
        this.lifetime.signal.removeEventListener('abort', onClose)
      }
      const retryable = 'err' in outcome ? !(init.signal?.aborted ?? false) : RETRY_STATUSES.has(outcome.res.status)
      if (!retrySafe || !retryable || Date.now() >= deadline) {
        if ('err' in outcome) throw outcome.err
        return outcome.res
      }
      if ('res' in outcome) await outcome.res.body?.cancel() // free the socket of a discarded answer
      // A new master: go at once. The same one: back off briefly (it may be stepping down, or
      // the view that replaces it has not reached us yet).
      if (this.current === base) {
        await this.changeOrDelay(base, Math.min(backoff, Math.max(0, deadline - Date.now())), init.signal ?? undefined)
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
      }
    }
  }

  /**
   * Stops following: pending waits and requests reject with NotRunningError (requests in flight
   * are aborted), iterators end, and later calls reject. Also called when the source stops.
   * Idempotent.
   */
  close (): void {
    if (this.lifetime.signal.aborted) return
    this.unsubscribe()
    this.unsubscribeStop()
    this.lifetime.abort()
  }

  private refresh (): void {
    const url = this.source.masterEndpoint(this.service)
    if (url === this.current) return
    const previous = this.current
    this.current = url
    try {
      this.emitter.emit('change', { url, previous })
    } catch (err) {
      setImmediate(() => { throw err })
    }
  }

  /** Resolves when the master URL differs from `from`, after `ms`, or on abort/close. */
  private async changeOrDelay (from: string, ms: number, signal: AbortSignal | undefined): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.emitter.off('change', onChange)
        signal?.removeEventListener('abort', done)
        this.lifetime.signal.removeEventListener('abort', done)
        resolve()
      }
      const onChange = ({ url }: MasterChange): void => { if (url !== from) done() }
      const timer = setTimeout(done, ms)
      this.emitter.on('change', onChange)
      signal?.addEventListener('abort', done, { once: true })
      this.lifetime.signal.addEventListener('abort', done, { once: true })
    })
  }

  /** Why there is no master URL right now, for NoMasterError. */
  private why (): string {
    const view = this.source.view
    if (view === undefined) return `no view of cluster "${this.source.cluster}" yet`
    if (this.source.endpoints(this.service).length === 0) return `no member of the view (epoch ${view.id.epoch}) offers it`
    return `the coordinator (${view.members[0]?.name ?? '?'}) does not offer it`
  }
}

/**
 * Follows the master's URL for `service` in `source` (an Observer or a Member); see
 * `MasterClient.fetch` for how paths resolve. Throws InvalidOptionError for a bad service
 * name or option (unknown keys too), NotRunningError when the source has stopped.
 */
export function followMaster (source: EndpointSource, service: string, opts?: MasterClientOptions): MasterClient {
  return new MasterClient(source, service, opts)
}
