/**
 * Request/response between members (JGroups' RpcDispatcher, Akka's ask): `handle(method, fn)`
 * on the members that serve, `request(target, method, payload)` and `requestAll(method,
 * payload)` on the callers. See docs/design.md, "Request/response", for the guarantees.
 *
 * Wire: one service channel (`rpc`) on the authenticated, ordered direct stream, so `from` is
 * the peer's authenticated id. Frames are short arrays; the payload and the result travel as
 * msgpack bytes packed here, which sizes them exactly before anything is sent:
 *  - request `[0, id, method, payload bytes, ttl ms, toMaster 0|1]`
 *  - result  `[1, id, result bytes]`
 *  - refusal `[2, id, code, error name, error message]`, code one of REFUSALS.
 * Ids are the caller's (one counter per member); a reply is matched by (peer, id), anything
 * else is dropped and counted, never thrown.
 *
 * Deadlines: no timer per request. One timer is armed for the earliest instant anything is due
 * (a caller's deadline, a parked request's next look for a master, a served request's deadline);
 * when it fires it sweeps the outstanding requests once. No timer exists while nothing is due.
 */
import { performance } from 'node:perf_hooks'
import { Packr } from 'msgpackr'
import { ConclaveError, InvalidOptionError, MessageTooLargeError, NoMasterError, NotInViewError, NotRunningError, RemoteError, TargetLostError, TimeoutError } from '../errors.js'
import { rejectUnknownKeys } from '../options.js'
import { checkPayload } from '../transport/payload.js'
import { internalsOf, type MemberInternals } from '../internal/member-internals.js'
import type { View } from '../core/view.js'
import type { ViewChange } from '../runtime/changes.js'
import type { Member } from '../member.js'

/** The service channel requests and replies travel on. */
export const RPC_SERVICE = 'rpc'
/** Requests of one peer a member runs at once; beyond, it answers `BusyError`. */
export const MAX_INBOUND_PER_PEER = 1024
/** Default `timeoutMs` of request() and requestAll(). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000
const MAX_METHOD_LENGTH = 256
/** An error message longer than this is cut in the refusal frame. */
const MAX_ERROR_MESSAGE = 2048
const FIRST_BACKOFF_MS = 10
const MAX_BACKOFF_MS = 100
/** Bytes a frame adds around the packed payload, besides the cluster and method names (see `frameBytes`). */
const FRAME_OVERHEAD = 64

const REQ = 0
const RESULT = 1
const REFUSAL = 2
/** Why a member answered with an error instead of a result. */
type Refusal = 'not-master' | 'busy' | 'unknown-method' | 'outsider' | 'stopping' | 'handler-error' | 'result' | 'malformed'

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export interface RpcContext {
  /** The id of the calling member (authenticated by the transport). */
  readonly from: string
  /** The fencing epoch of the view this member had installed when the handler was called. */
  readonly epoch: number
  readonly method: string
  /** Aborts when this member stops, or when the caller's deadline passes (NotRunningError / TimeoutError as its reason). */
  readonly signal: AbortSignal
}

export type RpcHandler = (payload: unknown, ctx: RpcContext) => unknown

export interface RequestOptions {
  /** The whole call's budget, waits for a master and resends included. @default 5000 */
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
  /**
   * For `'master'` only: the request may run twice (idempotent). When the master it went to is
   * lost before answering, it is sent again to the next master within `timeoutMs`. @default false
   */
  readonly retry?: boolean
}

export type RequestAllMode = 'all' | 'first' | 'majority'

export interface RequestAllOptions {
  /** When the call resolves: every member settled (`all`), the first result (`first`), results from a strict majority of the view (`majority`). @default 'all' */
  readonly mode?: RequestAllMode
  /** @default 5000 */
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

export type RequestAllFailure = 'left' | 'suspected' | 'timeout' | 'handler-error' | 'cancelled'

export type RequestAllEntry =
  | { readonly id: string, readonly name: string, readonly ok: true, readonly value: unknown }
  | { readonly id: string, readonly name: string, readonly ok: false, readonly error: Error, readonly reason: RequestAllFailure }

/** One outstanding request (of request(), or one member's part of a requestAll). */
class Call {
  /** Where it is outstanding; undefined while it waits for a master. */
  peer: string | undefined
  /** While parked: when to look for a master again. */
  wakeAt = Infinity
  backoff = FIRST_BACKOFF_MS
  resolve: ((value: unknown) => void) | undefined
  reject: ((error: unknown) => void) | undefined
  onAbort: (() => void) | undefined
  constructor (
    readonly id: number,
    readonly method: string,
    readonly bytes: Uint8Array,
    readonly deadline: number,
    readonly timeoutMs: number,
    readonly toMaster: boolean,
    readonly retry: boolean,
    readonly signal: AbortSignal | undefined,
    readonly group: Gather | undefined,
    readonly index: number
  ) {}
}

/** A requestAll: one slot per member of the view, in view order. */
class Gather {
  readonly results: Array<RequestAllEntry | undefined>
  readonly calls: Call[] = []
  settled = 0
  okCount = 0
  done = false
  onAbort: (() => void) | undefined
  constructor (
    readonly members: ReadonlyArray<{ readonly id: string, readonly name: string }>,
    readonly mode: RequestAllMode,
    readonly resolve: (entries: RequestAllEntry[]) => void,
    readonly reject: (error: unknown) => void,
    readonly signal: AbortSignal | undefined
  ) {
    this.results = new Array(members.length).fill(undefined)
  }
}

/** The context of a handler call; its signal is made only when the handler reads it. */
class Context implements RpcContext {
  controller: AbortController | undefined
  constructor (
    private readonly rpc: Rpc,
    readonly from: string,
    readonly epoch: number,
    readonly method: string,
    readonly deadline: number
  ) {}

  get signal (): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      this.rpc.watchContext(this)
    }
    return this.controller.signal
  }
}

function positiveMs (option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidOptionError(option, 'a positive number of milliseconds', value)
  return value
}

function checkMethod (method: unknown): string {
  if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_LENGTH) {
    throw new InvalidOptionError('method', `a method name of 1–${MAX_METHOD_LENGTH} characters`, method)
  }
  return method
}

function checkSignal (signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal
  throw new InvalidOptionError('signal', 'an AbortSignal', signal)
}

function checkObject (opts: unknown): object {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new InvalidOptionError('opts', 'an object', opts)
  return opts
}

function isSafeId (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

export class Rpc {
  private readonly internals: MemberInternals
  private readonly handlers = new Map<string, RpcHandler>()
  private readonly calls = new Map<number, Call>()
  private readonly groups = new Set<Gather>()
  /** Requests of each peer being served (for MAX_INBOUND_PER_PEER). */
  private readonly inbound = new Map<string, number>()
  /** Served requests whose handler asked for a signal: aborted on stop or at their deadline. */
  private readonly contexts = new Set<Context>()
  private nextId = 1
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private closed = false
  private readonly sweepBound = (): void => { this.sweep() }

  constructor (private readonly member: Member) {
    this.internals = internalsOf(member)
    this.internals.registerService(RPC_SERVICE, (from, data) => { this.receive(from, data) })
    member.onViewChange(change => { this.viewChanged(change.view) })
    this.internals.onSuspect(id => { if (this.groups.size > 0) this.lostInGroups(id, 'suspected') })
    // Pending requests reject as soon as stop() begins (before the leave), and handlers' signals abort.
    this.internals.onBeforeLeave(async () => { this.shutdown() })
    this.internals.stopped.addEventListener('abort', () => { this.shutdown() }, { once: true })
  }

  // ─── the API (delegated to by Member) ────────────────────────────────────

  handle (method: string, handler: RpcHandler): () => void {
    if (this.closed || this.member.stopped) throw new NotRunningError('register a request handler')
    checkMethod(method)
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', 'a function (payload, ctx) => result', handler)
    if (this.handlers.has(method)) throw new InvalidOptionError('method', `a method without a handler on this member ("${method}" has one; call the function handle() returned to remove it)`, method)
    this.handlers.set(method, handler)
    return () => { if (this.handlers.get(method) === handler) this.handlers.delete(method) }
  }

  request (target: string, method: string, payload: unknown, opts: RequestOptions = {}): Promise<unknown> {
    try {
      const { timeoutMs, signal, retry, toMaster } = this.checkRequest(target, method, opts)
      const bytes = this.pack(payload, method)
      if (signal?.aborted === true) return Promise.reject(signal.reason)
      if (!toMaster && !this.inView(target)) throw new NotInViewError('send a request', String(target))
      const call = new Call(this.nextId++, method, bytes, performance.now() + timeoutMs, timeoutMs, toMaster, retry, signal, undefined, 0)
      const promise = new Promise<unknown>((resolve, reject) => { call.resolve = resolve; call.reject = reject })
      this.start(call, toMaster ? undefined : target)
      return promise
    } catch (err) {
      return Promise.reject(err)
    }
  }

  async requestAll (method: string, payload: unknown, opts: RequestAllOptions = {}): Promise<RequestAllEntry[]> {
    rejectUnknownKeys(checkObject(opts), ['mode', 'timeoutMs', 'signal'])
    const mode = opts.mode ?? 'all'
    if (mode !== 'all' && mode !== 'first' && mode !== 'majority') throw new InvalidOptionError('mode', '"all", "first" or "majority"', mode)
    const timeoutMs = positiveMs('timeoutMs', opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
    const signal = checkSignal(opts.signal)
    checkMethod(method)
    if (!this.member.running) throw new NotRunningError('send a request')
    const bytes = this.pack(payload, method)
    const began = performance.now()
    const view = this.member.view ?? await this.member.waitForView(() => true, { timeoutMs, ...(signal !== undefined ? { signal } : {}) })
    if (signal?.aborted === true) throw signal.reason
    if (this.closed) throw new NotRunningError('send a request')
    return await new Promise<RequestAllEntry[]>((resolve, reject) => {
      const group = new Gather(view.members.map(m => ({ id: m.id, name: m.name })), mode, resolve, reject, signal)
      this.groups.add(group)
      if (signal !== undefined) {
        group.onAbort = () => { this.endGroup(group); reject(signal.reason) }
        signal.addEventListener('abort', group.onAbort, { once: true })
      }
      const deadline = began + timeoutMs
      group.members.forEach((m, i) => {
        const call = new Call(this.nextId++, method, bytes, deadline, timeoutMs, false, false, undefined, group, i)
        group.calls.push(call)
        this.start(call, m.id)
      })
    })
  }

  // ─── callers' side ───────────────────────────────────────────────────────

  private checkRequest (target: unknown, method: unknown, opts: RequestOptions): { timeoutMs: number, signal: AbortSignal | undefined, retry: boolean, toMaster: boolean } {
    rejectUnknownKeys(checkObject(opts), ['timeoutMs', 'signal', 'retry'])
    if (typeof target !== 'string' || target.length === 0) throw new InvalidOptionError('target', '"master" or a member id', target)
    checkMethod(method)
    const timeoutMs = positiveMs('timeoutMs', opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
    const retry = opts.retry ?? false
    if (typeof retry !== 'boolean') throw new InvalidOptionError('retry', 'a boolean', retry)
    const toMaster = target === 'master'
    if (retry && !toMaster) throw new InvalidOptionError('retry', 'false for a request to a member id (retry resends to the next master; a member that left does not come back)', retry)
    const signal = checkSignal(opts.signal)
    if (!this.member.running) throw new NotRunningError('send a request')
    return { timeoutMs, signal, retry, toMaster }
  }

  /** Packs a payload as send() would accept it: InvalidPayloadError, MessageTooLargeError at the call. */
  private pack (payload: unknown, method: string): Uint8Array {
    checkPayload(payload)
    const bytes = packr.pack(payload)
    const size = this.frameBytes(bytes, method)
    if (size > this.member.options.maxMessageBytes) throw new MessageTooLargeError(size, this.member.options.maxMessageBytes)
    return bytes
  }

  /** A frame's size, or a little above it: the packed bytes plus the envelope (codec.ts) and the array around them. */
  private frameBytes (bytes: Uint8Array, method: string): number {
    return bytes.byteLength + FRAME_OVERHEAD + Buffer.byteLength(this.member.options.cluster) + Buffer.byteLength(method)
  }

  private start (call: Call, target: string | undefined): void {
    this.calls.set(call.id, call)
    if (call.signal !== undefined) {
      call.onAbort = () => { this.settle(call, false, call.signal?.reason, 'cancelled') }
      call.signal.addEventListener('abort', call.onAbort, { once: true })
    }
    this.arm(call.deadline)
    if (target !== undefined) this.transmit(call, target)
    else this.toMaster(call)
  }

  /**
   * The member a request to 'master' goes to now: the coordinator (rank 0) of the installed
   * view, as followMaster picks it, if the view may have masters; this member only while it
   * holds its lease.
   */
  private masterNow (): string | undefined {
    const first = this.member.quorum === 'ok' ? this.member.view?.members[0]?.id : undefined
    if (first === undefined) return undefined
    return first !== this.member.id || this.member.isCoordinator ? first : undefined
  }

  /** Sends a request for the master to the master of the moment, or parks it until there is one. */
  private toMaster (call: Call): void {
    const master = this.masterNow()
    if (master !== undefined) { this.transmit(call, master); return }
    this.park(call)
  }

  private park (call: Call): void {
    call.peer = undefined
    call.wakeAt = performance.now() + call.backoff
    call.backoff = Math.min(call.backoff * 2, MAX_BACKOFF_MS)
    this.arm(call.wakeAt)
  }

  private transmit (call: Call, target: string): void {
    call.peer = target
    call.wakeAt = Infinity
    const ttl = Math.max(1, Math.ceil(call.deadline - performance.now()))
    const frame = [REQ, call.id, call.method, call.bytes, ttl, call.toMaster ? 1 : 0]
    if (target === this.member.id) queueMicrotask(() => { if (call.peer === target) this.serve(target, frame, true) })
    else this.internals.sendService(target, RPC_SERVICE, frame)
  }

  private receiveReply (from: string, d: unknown[]): void {
    const call = this.calls.get(d[1] as number)
    if (call === undefined || call.peer !== from) { this.internals.countDrop('rpc-unknown-reply', from); return }
    if (d[0] === RESULT) {
      const bytes = d[2]
      if (!(bytes instanceof Uint8Array)) { this.malformed(from); return }
      let value: unknown
      try { value = packr.unpack(bytes) } catch { this.malformed(from); return }
      this.settle(call, true, value, 'handler-error')
      return
    }
    const [, , code, name, message] = d
    if (typeof code !== 'string' || typeof name !== 'string' || typeof message !== 'string') { this.malformed(from); return }
    // Not master: the handler did not run, so sending it again keeps at-most-once.
    if (code === 'not-master' && call.toMaster) {
      const master = this.masterNow()
      if (master !== undefined && master !== from) this.transmit(call, master)
      else this.park(call)
      return
    }
    this.settle(call, false, new RemoteError(from, call.method, name, message), 'handler-error')
  }

  /** Ends a call: resolves or rejects its promise, or fills its slot of a requestAll. */
  private settle (call: Call, ok: boolean, outcome: unknown, reason: RequestAllFailure): void {
    if (!this.calls.delete(call.id)) return
    call.peer = undefined
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort)
    const group = call.group
    if (group === undefined) {
      if (ok) call.resolve?.(outcome)
      else call.reject?.(outcome)
      return
    }
    const m = group.members[call.index] as { id: string, name: string }
    group.results[call.index] = ok
      ? { id: m.id, name: m.name, ok: true, value: outcome }
      : { id: m.id, name: m.name, ok: false, error: outcome as Error, reason }
    group.settled++
    if (ok) group.okCount++
    const n = group.members.length
    const majority = Math.floor(n / 2) + 1
    const complete = group.settled === n ||
      (group.mode === 'first' && group.okCount > 0) ||
      (group.mode === 'majority' && (group.okCount >= majority || group.settled - group.okCount > n - majority))
    if (complete) this.finishGroup(group)
  }

  private finishGroup (group: Gather): void {
    const cancelled = new ConclaveError(`not waited for: the requestAll (mode "${group.mode}") had its answer`, 'ERR_CANCELLED')
    for (const call of group.calls) if (this.calls.has(call.id)) this.settle(call, false, cancelled, 'cancelled')
    if (group.done) return
    this.endGroup(group)
    group.resolve(group.results as RequestAllEntry[])
  }

  /** Forgets a requestAll: its calls still outstanding are dropped without filling their slots. */
  private endGroup (group: Gather): void {
    group.done = true
    for (const call of group.calls) this.calls.delete(call.id)
    if (group.onAbort !== undefined) group.signal?.removeEventListener('abort', group.onAbort)
    this.groups.delete(group)
  }

  private lostInGroups (peer: string, reason: 'left' | 'suspected'): void {
    for (const group of [...this.groups]) {
      for (const call of group.calls) {
        if (call.peer === peer && this.calls.has(call.id)) this.settle(call, false, new TargetLostError(peer, call.method, reason), reason)
      }
    }
  }

  private viewChanged (view: View): void {
    if (this.calls.size === 0) return
    const ids = new Set(view.members.map(m => m.id))
    for (const call of [...this.calls.values()]) {
      if (!this.calls.has(call.id)) continue
      if (call.peer === undefined) { this.toMaster(call); continue } // parked: a master now?
      if (ids.has(call.peer)) continue
      if (call.toMaster && call.retry) this.toMaster(call)
      else this.settle(call, false, new TargetLostError(call.peer, call.method, 'left'), 'left')
    }
  }

  // ─── the one timer ───────────────────────────────────────────────────────

  /** Makes sure the timer fires no later than `at` (ms, performance.now()). */
  private arm (at: number): void {
    if (this.closed || at >= this.timerAt) return
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(this.sweepBound, Math.max(0, Math.ceil(at - performance.now())))
  }

  private sweep (): void {
    this.timer = undefined
    this.timerAt = Infinity
    const now = performance.now()
    let next = Infinity
    for (const call of [...this.calls.values()]) {
      if (!this.calls.has(call.id)) continue
      if (call.deadline <= now) {
        this.settle(call, false, this.timedOut(call), 'timeout')
        continue
      }
      if (call.wakeAt <= now) this.toMaster(call)
      next = Math.min(next, call.deadline, call.wakeAt)
    }
    for (const ctx of this.contexts) {
      if (ctx.deadline <= now) {
        this.contexts.delete(ctx)
        ctx.controller?.abort(new TimeoutError(`the caller's answer to "${ctx.method}"`, 0))
      } else next = Math.min(next, ctx.deadline)
    }
    if (next !== Infinity) this.arm(next)
  }

  private timedOut (call: Call): Error {
    if (call.peer === undefined) return new NoMasterError(`request "${call.method}"`, `no member of the view held mastership within ${call.timeoutMs} ms`)
    return new TimeoutError(`a reply to request "${call.method}" from ${call.peer}`, call.timeoutMs)
  }

  // ─── the serving side ────────────────────────────────────────────────────

  /** Tracks a served request whose handler asked for its signal. */
  watchContext (ctx: Context): void {
    if (this.closed) { ctx.controller?.abort(new NotRunningError('serve a request')); return }
    this.contexts.add(ctx)
    this.arm(ctx.deadline)
  }

  private receive (from: string, data: unknown): void {
    if (!Array.isArray(data) || !isSafeId(data[1])) { this.malformed(from); return }
    const kind = data[0]
    if (kind === REQ) this.serve(from, data, false)
    else if (kind === RESULT || kind === REFUSAL) this.receiveReply(from, data)
    else this.malformed(from)
  }

  private malformed (from: string): void { this.internals.countDrop('rpc-malformed', from) }

  private serve (from: string, d: unknown[], local: boolean): void {
    const id = d[1] as number
    const [, , method, bytes, ttl, toMaster] = d
    if (typeof method !== 'string' || !(bytes instanceof Uint8Array) || typeof ttl !== 'number' || !(ttl > 0) || (toMaster !== 0 && toMaster !== 1)) {
      this.malformed(from)
      return
    }
    if (!local && !this.inView(from)) {
      this.internals.countDrop('rpc-outsider', from)
      this.refuse(from, id, 'outsider', 'NotInViewError', 'the caller is not in this member\'s installed view', false)
      return
    }
    const handler = this.handlers.get(method)
    if (handler === undefined) {
      this.internals.countDrop('rpc-unknown-method', from)
      this.refuse(from, id, 'unknown-method', 'UnknownMethodError', `no handler for "${method}" on this member`, local)
      return
    }
    // The lease is checked as the handler is about to run: a member whose lease lapsed never answers as master.
    if (toMaster === 1 && !this.member.isCoordinator) { this.refuse(from, id, 'not-master', 'NotMasterError', 'this member is not the master now', local); return }
    if (this.closed || !this.member.running) { this.refuse(from, id, 'stopping', 'NotRunningError', 'the member is stopping', local); return }
    const busy = this.inbound.get(from) ?? 0
    if (busy >= MAX_INBOUND_PER_PEER) {
      this.internals.countDrop('rpc-busy', from)
      this.refuse(from, id, 'busy', 'BusyError', `${MAX_INBOUND_PER_PEER} requests of this caller are in progress`, local)
      return
    }
    let payload: unknown
    try { payload = packr.unpack(bytes) } catch {
      this.malformed(from)
      this.refuse(from, id, 'malformed', 'InvalidPayloadError', 'the payload could not be decoded', local)
      return
    }
    this.inbound.set(from, busy + 1)
    const ctx = new Context(this, from, this.member.epoch, method, performance.now() + ttl)
    let result: unknown
    try {
      result = handler(payload, ctx)
    } catch (err) {
      this.answered(ctx, id, local, false, err)
      return
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      (result as PromiseLike<unknown>).then(
        value => { this.answered(ctx, id, local, true, value) },
        err => { this.answered(ctx, id, local, false, err) })
    } else {
      this.answered(ctx, id, local, true, result)
    }
  }

  /** A handler finished: sends its result, or the error it threw, by name. */
  private answered (ctx: Context, id: number, local: boolean, ok: boolean, outcome: unknown): void {
    const from = ctx.from
    const left = (this.inbound.get(from) ?? 1) - 1
    if (left === 0) this.inbound.delete(from)
    else this.inbound.set(from, left)
    if (ctx.controller !== undefined) this.contexts.delete(ctx)
    if (!ok) {
      const err = outcome instanceof Error ? outcome : undefined
      this.refuse(from, id, 'handler-error', err?.name ?? 'Error', err?.message ?? String(outcome), local)
      return
    }
    let bytes: Uint8Array
    try {
      checkPayload(outcome)
      bytes = packr.pack(outcome)
    } catch (err) {
      this.refuse(from, id, 'result', (err as Error).name, `the result of "${ctx.method}" cannot be sent: ${(err as Error).message}`, local)
      return
    }
    const size = this.frameBytes(bytes, '')
    const limit = this.member.options.maxMessageBytes
    if (size > limit) {
      this.refuse(from, id, 'result', 'MessageTooLargeError', `the result of "${ctx.method}" is ${size} bytes, over maxMessageBytes (${limit})`, local)
      return
    }
    this.reply(from, [RESULT, id, bytes], local)
  }

  private refuse (to: string, id: number, code: Refusal, name: string, message: string, local: boolean): void {
    this.reply(to, [REFUSAL, id, code, name, message.length > MAX_ERROR_MESSAGE ? message.slice(0, MAX_ERROR_MESSAGE) + '…' : message], local)
  }

  private reply (to: string, frame: unknown[], local: boolean): void {
    if (local) this.receiveReply(to, frame)
    else this.internals.sendService(to, RPC_SERVICE, frame, { onlyIfConnected: true })
  }

  private inView (peer: string): boolean {
    return this.member.view?.members.some(m => m.id === peer) ?? false
  }

  // ─── stop ────────────────────────────────────────────────────────────────

  /** Every pending request rejects with NotRunningError, handlers' signals abort, no timer stays. */
  private shutdown (): void {
    if (this.closed) return
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.timerAt = -Infinity
    const stopped = new NotRunningError('get a reply', 'the member stopped')
    for (const group of [...this.groups]) { this.endGroup(group); group.reject(stopped) }
    for (const call of [...this.calls.values()]) this.settle(call, false, stopped, 'cancelled')
    for (const ctx of this.contexts) ctx.controller?.abort(new NotRunningError('serve a request', 'the member stopped'))
    this.contexts.clear()
  }
}
