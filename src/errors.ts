/**
 * Named errors with stable codes (after undici and libp2p's errors.ts). They are thrown only at
 * API boundaries; input from the network never throws — it is dropped and counted.
 */

export class ConclaveError extends Error {
  readonly code: string
  constructor (message: string, code: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'ConclaveError'
    this.code = code
  }
}

/** An option had a value of the wrong kind or out of range. */
export class InvalidOptionError extends ConclaveError {
  readonly option: string
  readonly expected: string
  readonly received: unknown
  constructor (option: string, expected: string, received: unknown) {
    super(`invalid option "${option}": expected ${expected}, received ${describe(received)}`, 'ERR_INVALID_OPTION')
    this.name = 'InvalidOptionError'
    this.option = option
    this.expected = expected
    this.received = received
  }
}

/**
 * What was asked needs a running member, observer or client, and this one is not running (not
 * started yet, stopped, or closed). `state` says which, e.g. "the observer has stopped".
 */
export class NotRunningError extends ConclaveError {
  constructor (operation: string, state = 'the member is not running', options?: ErrorOptions) {
    super(`cannot ${operation}: ${state}`, 'ERR_NOT_RUNNING', options)
    this.name = 'NotRunningError'
  }
}

export type ListenFailure = 'address-in-use' | 'address-not-local' | 'not-resolvable' | 'permission-denied' | 'other'

const LISTEN_PROBLEMS: Record<ListenFailure, string> = {
  'address-in-use': 'address in use (another process listens on this port)',
  'address-not-local': 'not an address of this host',
  'not-resolvable': 'the host name does not resolve',
  'permission-denied': 'permission denied (a port below 1024 needs privileges)',
  other: 'the transport refused it'
}

/**
 * A listen address could not be listened on. `address` is the listen address as configured (a
 * multiaddr), `hostPort` the same as `host:port`; `reason` says why; `cause` is the underlying
 * error (the resolver's, the operating system's bind error, or the transport's). The message is
 * one line: `cannot listen on <host:port>: <reason>[; <detail>]`.
 */
export class ListenError extends ConclaveError {
  readonly address: string
  readonly hostPort: string
  readonly reason: ListenFailure
  constructor (address: string, reason: ListenFailure, cause: unknown, detail?: string) {
    const hostPort = address.split(', ').map(hostPortOf).join(', ')
    super(`cannot listen on ${hostPort}: ${LISTEN_PROBLEMS[reason]}${detail !== undefined ? `; ${oneLine(detail)}` : ''}`, 'ERR_LISTEN', { cause })
    this.name = 'ListenError'
    this.address = address
    this.hostPort = hostPort
    this.reason = reason
  }
}

/** `/ip4/1.2.3.4/tcp/7000` → `1.2.3.4:7000`, `/ip6/::1/tcp/7000` → `[::1]:7000`; anything else as it is. */
function hostPortOf (multiaddr: string): string {
  const m = /^\/(ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/(\d{1,5})/.exec(multiaddr)
  if (m === null) return multiaddr
  return m[1] === 'ip6' ? `[${m[2] as string}]:${m[3] as string}` : `${m[2] as string}:${m[3] as string}`
}

function oneLine (text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim()
}

/** A message was addressed to a member that is not in this member's installed view. */
export class NotInViewError extends ConclaveError {
  readonly memberId: string
  constructor (operation: string, memberId: string) {
    super(`cannot ${operation} to ${JSON.stringify(memberId)}: no member of the installed view has this id`, 'ERR_NOT_IN_VIEW')
    this.name = 'NotInViewError'
    this.memberId = memberId
  }
}

/**
 * A payload holds a value that would not arrive as it was sent (a function, a symbol, a cycle,
 * a Map or a class instance that msgpack turns into a plain object, ...). `path` says where,
 * e.g. `payload.items[2].at`.
 */
export class InvalidPayloadError extends ConclaveError {
  readonly path: string
  constructor (path: string, problem: string) {
    super(`cannot encode ${path}: ${problem}`, 'ERR_INVALID_PAYLOAD')
    this.name = 'InvalidPayloadError'
    this.path = path
  }
}

/** A payload is larger than `maxMessageBytes`. */
export class MessageTooLargeError extends ConclaveError {
  constructor (size: number, limit: number) {
    super(`message of ${size} bytes exceeds maxMessageBytes (${limit})`, 'ERR_MESSAGE_TOO_LARGE')
    this.name = 'MessageTooLargeError'
  }
}

/** A wait ended by its timeout. */
export class TimeoutError extends ConclaveError {
  constructor (what: string, ms: number) {
    super(`${what} did not happen within ${ms} ms`, 'ERR_TIMEOUT')
    this.name = 'TimeoutError'
  }
}

export function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value)
  if (value === null || value === undefined || typeof value !== 'object') return String(value)
  if (Array.isArray(value)) return `an array of ${value.length}`
  return 'an object'
}

/** No master offers the service: the cluster has no view yet, or its coordinator does not publish it. */
export class NoMasterError extends ConclaveError {
  readonly service: string
  constructor (service: string, detail: string, options?: ErrorOptions) {
    super(`no master for service "${service}": ${detail}`, 'ERR_NO_MASTER', options)
    this.name = 'NoMasterError'
    this.service = service
  }
}

/**
 * A message sent with `send()` was not confirmed: the receiver left the view (crashed,
 * excluded, left) before it acknowledged. It may or may not have received it.
 */
export class NotDeliveredError extends ConclaveError {
  readonly memberId: string
  readonly reason: 'left'
  constructor (memberId: string, reason: 'left') {
    super(`message to ${JSON.stringify(memberId)} not confirmed: the member left the view first (it may have received it)`, 'ERR_NOT_DELIVERED')
    this.name = 'NotDeliveredError'
    this.memberId = memberId
    this.reason = reason
  }
}

/**
 * An async iterator's consumer fell `highWaterMark` events behind: the iterator yielded what it
 * had buffered and ended with this error (the events after that were not buffered).
 */
export class IteratorOverflowError extends ConclaveError {
  readonly highWaterMark: number
  constructor (what: string, highWaterMark: number) {
    super(`${what}: the consumer fell ${highWaterMark} events behind, so the iterator ended (consume faster, or pass a larger highWaterMark)`, 'ERR_ITERATOR_OVERFLOW')
    this.name = 'IteratorOverflowError'
    this.highWaterMark = highWaterMark
  }
}

/**
 * A request was answered with an error by the member that got it (messaging/rpc.ts): its handler
 * threw or rejected (`remoteName`/`remoteMessage` are that error's `name` and `message`), or the
 * member refused the request before any handler ran: `UnknownMethodError` (no handler of that
 * name), `BusyError` (too many of the caller's requests in progress there), `NotInViewError`
 * (the caller is not in that member's view), `NotRunningError` (that member is stopping), or a
 * result that could not be sent (`InvalidPayloadError`, `MessageTooLargeError`). `memberId` is
 * the member that answered, `method` the method asked for.
 */
export class RemoteError extends ConclaveError {
  readonly remoteName: string
  readonly remoteMessage: string
  readonly memberId: string
  readonly method: string
  constructor (memberId: string, method: string, remoteName: string, remoteMessage: string) {
    super(`request "${method}" to ${memberId} failed there: ${remoteName}: ${remoteMessage}`, 'ERR_REMOTE')
    this.name = 'RemoteError'
    this.remoteName = remoteName
    this.remoteMessage = remoteMessage
    this.memberId = memberId
    this.method = method
  }
}

/**
 * The member a request was sent to left the view (`reason` 'left': it stopped, crashed or was
 * excluded) or, in a requestAll, was suspected (`reason` 'suspected') before it answered. The
 * request may or may not have run there.
 */
export class TargetLostError extends ConclaveError {
  readonly memberId: string
  readonly method: string
  readonly reason: 'left' | 'suspected'
  constructor (memberId: string, method: string, reason: 'left' | 'suspected') {
    super(`request "${method}" to ${memberId}: the member ${reason === 'left' ? 'left the view' : 'was suspected'} before it answered; the request may or may not have run there`, 'ERR_TARGET_LOST')
    this.name = 'TargetLostError'
    this.memberId = memberId
    this.method = method
    this.reason = reason
  }
}

export type StateTransferFailure = 'restore-failed' | 'held-overflow' | 'no-provider' | 'interrupted'

/**
 * State transfer to this joiner did not complete (messaging/state-transfer.ts). `reason`:
 * 'restore-failed' (the `restore` callback threw; `cause` is what it threw), 'held-overflow'
 * (more broadcasts arrived meanwhile than a joiner holds), 'no-provider' (no member served the
 * state), 'interrupted' (the stream a `restore` read was cut: it is called again with a new one,
 * or the member stopped). Apart from 'interrupted', the member leaves the group after it.
 */
export class StateTransferError extends ConclaveError {
  readonly reason: StateTransferFailure
  constructor (reason: StateTransferFailure, message: string, options?: ErrorOptions) {
    super(`state transfer: ${message}`, 'ERR_STATE_TRANSFER', options)
    this.name = 'StateTransferError'
    this.reason = reason
  }
}
