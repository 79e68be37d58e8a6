/** Conclave: agree on a coordinator among peer processes over libp2p, with no lock store. */
import './polyfill.js'
export { Member, createMember, type MemberEvents, type MemberInit, type ViewChange, type CoordinatorChange, type Message } from './member.js'
export { resolveOptions, type MemberOptions, type ResolvedOptions } from './options.js'
export { ConclaveError, InvalidOptionError, NotRunningError, MessageTooLargeError, TimeoutError } from './errors.js'
export { DEFAULT_TIMING, silenceDetectionMs, leaseMarginMs, type Timing } from './core/timing.js'
export { coordinatorOf, mastersOf, sameView, type View, type ViewId } from './core/view.js'
export type { MemberRecord, Metadata, MetadataValue } from './core/member.js'
export type { Transport, TransportHandlers } from './transport/transport.js'
