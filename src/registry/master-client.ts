/**
 * A client that always talks to the current master: the seed scenario's `fabric:FD` endpoint.
 * It resolves a service to the coordinator's URL from an EndpointSource (an Observer, or a
 * Member), follows it as views change, and sends HTTP requests there with Node's fetch.
 *
 * Retrying is opt-in per request (`retrySafe`): only the caller knows whether a request may
 * run twice. A safe request that fails to connect, or gets 502/503/504 (a standby or a master
 * stepping down), is sent again to the master of the moment: at once when the master URL has
 * changed, else after a short back-off, within `retryBudgetMs` from the first attempt.
 */
import { EventEmitter, on } from 'node:events'
import { InvalidOptionError, NoMasterError } from '../errors.js'
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

function positiveMs (option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidOptionError(option, 'a positive number of milliseconds', value)
  return value
}

export class MasterClient {
  readonly service: string
  private readonly noMasterTimeoutMs: number
  private readonly retryBudgetMs: number
  private readonly emitter = new EventEmitter()
  private readonly closed = new AbortController()
  private readonly unsubscribe: () => void
  private current: string | undefined
  private answered: string | undefined

  constructor (private readonly source: EndpointSource, service: string, opts: MasterClientOptions = {}) {
    this.service = validateService('service', service)
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('opts', 'an object', opts)
    this.noMasterTimeoutMs = positiveMs('noMasterTimeoutMs', opts.noMasterTimeoutMs ?? 5000)
    this.retryBudgetMs = positiveMs('retryBudgetMs', opts.retryBudgetMs ?? 3000)
    this.emitter.setMaxListeners(0)
    this.current = source.masterEndpoint(this.service)
    this.unsubscribe = source.onRegistryChange(() => this.refresh())
  }

  /** The master's URL for the service now, or undefined. */
  get url (): string | undefined { return this.current }
  /** The master URL that answered the last request that got a response. */
  get lastUrl (): string | undefined { return this.answered }

  on (event: 'change', listener: (change: MasterChange) => void): this { this.emitter.on(event, listener); return this }
  once (event: 'change', listener: (change: MasterChange) => void): this { this.emitter.once(event, listener); return this }
  off (event: 'change', listener: (change: MasterChange) => void): this { this.emitter.off(event, listener); return this }

  /** Every change of the master URL from now on, until `signal` aborts or the client closes. */
  async * changes (opts: { signal?: AbortSignal } = {}): AsyncIterable<MasterChange> {
    const signal = opts.signal === undefined ? this.closed.signal : AbortSignal.any([opts.signal, this.closed.signal])
    try {
      for await (const [change] of on(this.emitter, 'change', { signal })) yield change as MasterChange
    } catch (err) {
      if (!signal.aborted) throw err
    }
  }

  /** The master's URL, waiting up to `timeoutMs` for one; NoMasterError when none comes. */
  async waitForMaster (opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<string> {
    const timeoutMs = positiveMs('timeoutMs', opts.timeoutMs ?? this.noMasterTimeoutMs)
    if (this.current !== undefined) return this.current
    if (this.closed.signal.aborted) throw new NoMasterError(this.service, 'the client is closed')
    return await new Promise<string>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        this.emitter.off('change', onChange)
        this.closed.signal.removeEventListener('abort', onClosed)
        opts.signal?.removeEventListener('abort', onAbort)
      }
      const onChange = ({ url }: MasterChange): void => { if (url !== undefined) { done(); resolve(url) } }
      const onClosed = (): void => { done(); reject(new NoMasterError(this.service, 'the client was closed while waiting')) }
      const onAbort = (): void => { done(); reject(opts.signal?.reason) }
      const timer = setTimeout(() => { done(); reject(new NoMasterError(this.service, `${this.why()} (waited ${timeoutMs} ms)`)) }, timeoutMs)
      this.emitter.on('change', onChange)
      this.closed.signal.addEventListener('abort', onClosed, { once: true })
      if (opts.signal?.aborted === true) { onAbort(); return }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Sends a request to the current master: `path` is resolved against the master's URL.
   * Without `retrySafe` the first outcome is final. With it, connection failures and
   * 502/503/504 are retried on the master of the moment within the budget; then the last
   * error is thrown or the last response returned.
   */
  async fetch (path: string | URL, init: MasterFetchInit = {}): Promise<Response> {
    const { retrySafe = false, retryBudgetMs = this.retryBudgetMs, ...requestInit } = init
    positiveMs('retryBudgetMs', retryBudgetMs)
    const deadline = Date.now() + retryBudgetMs
    let backoff = FIRST_BACKOFF_MS
    for (let attempt = 1; ; attempt++) {
      const base = await this.waitForMaster({ ...(init.signal != null ? { signal: init.signal } : {}) })
      let outcome: { res: Response } | { err: unknown }
      try {
        const res = await fetch(new URL(path, base), requestInit)
        this.answered = base
        outcome = { res }
      } catch (err) {
        outcome = { err }
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

  /** Stops following; pending waits reject. Idempotent. */
  close (): void {
    if (this.closed.signal.aborted) return
    this.unsubscribe()
    this.closed.abort()
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
        this.closed.signal.removeEventListener('abort', done)
        resolve()
      }
      const onChange = ({ url }: MasterChange): void => { if (url !== from) done() }
      const timer = setTimeout(done, ms)
      this.emitter.on('change', onChange)
      signal?.addEventListener('abort', done, { once: true })
      this.closed.signal.addEventListener('abort', done, { once: true })
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

/** Follows the master's URL for `service` in `source` (an Observer or a Member). */
export function followMaster (source: EndpointSource, service: string, opts?: MasterClientOptions): MasterClient {
  return new MasterClient(source, service, opts)
}
