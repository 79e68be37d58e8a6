/**
 * What a master-following client needs from the cluster: the view and everyone's endpoints.
 * A Member (a candidate) and an Observer (a client that is never a candidate) both provide it.
 */
import type { View } from '../core/view.js'
import type { Endpoints } from './endpoints.js'

/** One member of the view as the registry sees it. */
export interface RegistryEntry {
  readonly id: string
  readonly name: string
  /** Index in the view: 0 is the coordinator. */
  readonly rank: number
  /** Listen addresses (multiaddrs). */
  readonly addrs: readonly string[]
  /** Its published endpoints; empty until they arrive. */
  readonly endpoints: Endpoints
  /** When the member process started, Unix ms; undefined until its registry record arrives. */
  readonly startedAt: number | undefined
  /** The fencing epoch of its current mastership grant, as it last reported; undefined when not master. */
  readonly masterEpoch: number | undefined
}

export interface RegistrySnapshot {
  readonly cluster: string
  readonly view: View | undefined
  readonly members: readonly RegistryEntry[]
}

export interface EndpointSource {
  readonly cluster: string
  readonly view: View | undefined
  /** The view's members with their endpoints, in view order. */
  registry (): RegistrySnapshot
  /** The URLs of `service`, in view order (the coordinator's first, when it offers it). */
  endpoints (service: string): string[]
  /** The coordinator's URL for `service`; undefined when there is no view or it does not offer it. */
  masterEndpoint (service: string): string | undefined
  /** Called after every change of the view or of any endpoint; returns an unsubscribe function. */
  onRegistryChange (listener: () => void): () => void
  /**
   * Whether the source has stopped for good (a stopped member or observer): its view and
   * endpoints will not change again. A source without it never stops.
   */
  readonly stopped?: boolean
  /**
   * Calls `listener` once when the source stops (never when it has already: check `stopped`);
   * returns an unsubscribe function. A client following the master closes itself on it.
   */
  onStop? (listener: () => void): () => void
}
