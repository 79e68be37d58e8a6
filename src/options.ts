/**
 * Member options: one documented place, with defaults and validation that names the option,
 * what was expected and what came (InvalidOptionError).
 */
import type { StateHandlers } from './messaging/state-transfer.js'
import { hostname } from 'node:os'
import { isIP } from 'node:net'
import { InvalidOptionError } from './errors.js'
import { DEFAULT_TIMING, type Timing } from './core/timing.js'
import type { Metadata } from './core/member.js'
import type { SplitBrainPolicy } from './core/quorum.js'
import { validateEndpoints, type Endpoints } from './registry/endpoints.js'
import { ClusterKey } from './security/cluster-key.js'
import { parseSeed, type SeedSpec } from './discovery/seed-spec.js'
import { DEFAULT_DNS, type DnsOptions } from './discovery/seed-set.js'
import { isWildcard, type AdvertisedAddress } from './transport/advertise.js'

export interface MemberOptions {
  /** Cluster name: members of different clusters never join each other. Letters, digits, `.`, `_`, `-`; 1–64. */
  cluster: string
  /** Where to listen: `host:port` or a multiaddr, one or several. Port 0 picks a free port. @default '127.0.0.1:0' */
  listen?: string | readonly string[]
  /**
   * Members to join through: addresses (`10.0.0.5:7000`, multiaddrs), host names with a port
   * (`orders.default.svc.cluster.local:7000`: every A/AAAA record, a Kubernetes headless
   * service) or SRV names (`_conclave._tcp.orders.default.svc.cluster.local`), resolved again
   * while the member runs (`dns`). Without seeds, a member founds its group at once. @default []
   */
  seeds?: readonly string[]
  /**
   * The address other members dial, when it is not the one listened on: listen on
   * `0.0.0.0:7000`, advertise the pod's `10.1.2.3` (or `10.1.2.3:7000`; without a port, the
   * port listened on). IP addresses only. Without it a member advertises its listen addresses,
   * never a wildcard, and loopback ones only when it has no other. @default none
   */
  advertise?: string | readonly string[]
  /**
   * How host-name and SRV seeds are resolved: `servers` to ask instead of the system's
   * (`"10.0.0.2"`, `"127.0.0.1:5353"`), how often a member that may need its seeds (one that is
   * alone, or the coordinator, which dials new addresses so that groups founded apart merge)
   * resolves them again, and how long one resolution may take.
   * @default { refreshMs: 2000, timeoutMs: 2000 } and the system's servers
   */
  dns?: { servers?: readonly string[], refreshMs?: number, timeoutMs?: number }
  /**
   * Find members on the local network by multicast DNS (local development: several members on
   * a laptop, or containers on one bridge), besides `seeds`. Off by default: it sends multicast
   * to 224.0.0.251:5353 on every interface. Members of one cluster query each other's service
   * name every `intervalMs`; what they find is dialled as a seed would be (the handshake keeps
   * other clusters out). `true` is `{ intervalMs: 2000 }`. Needs the optional peer dependency
   * `@libp2p/mdns` (without it: InvalidOptionError). @default false
   */
  mdns?: boolean | { intervalMs?: number }
  /** Human-readable name shown in views and logs. @default `<hostname>-<pid>` */
  name?: string
  /** Application metadata published with this member's record. Values: string, number or boolean. @default {} */
  metadata?: Metadata
  /** Failure-detection and agreement timings; see core/timing.ts for each and the lease margin. */
  timing?: Partial<Timing>
  /** Largest frame accepted or sent, in bytes; larger input is dropped and counted. @default 1048576 */
  maxMessageBytes?: number
  /** How long `stop()` waits for the group to acknowledge the leave before closing anyway. @default 2000 */
  leaveTimeoutMs?: number
  /**
   * Connections to other members this member may hold. Every member holds one to every other,
   * so as coordinator it admits no joiner (and no merging group) that would make the view
   * larger than this plus one: the joiner keeps waiting and a `connection-limit` event says
   * so. A member in a larger view (admitted by a coordinator with a higher limit) emits the
   * event too. Connections of observers and clients come on top (a reserve of 64), and the
   * transport sheds those before any view member's. Each connection is a socket: the process's
   * file-descriptor limit must allow them. @default 1023 (a view holds at most 1024 members)
   */
  maxConnections?: number
  /**
   * How many members are masters: the first N of the view (Camel's ZooKeeper route policy
   * allows more than one). Routes and filters may ask for their own N. @default 1
   */
  masters?: number
  /**
   * Endpoints this member publishes to the cluster: service name → URL, e.g.
   * `{ http: 'http://127.0.0.1:9090' }`. Changeable at run time (`member.setEndpoint`); clients
   * find the master's with `masterEndpoint(service)`. @default {}
   */
  endpoints?: Readonly<Record<string, string>>
  /**
   * What a side of a network partition may do (docs/design.md, "Split brain"):
   *  - `'allow'`: each side elects its own masters; the sides merge into one view when the
   *    partition heals (JGroups). No member is ever without a master for long, but during a
   *    partition there are two.
   *  - `'majority'`: only a view holding a strict majority of the last majority membership
   *    (graceful leavers excluded) has masters; a minority side has none, and its masters stop
   *    on their own (the lease) before the majority promotes new ones. An even split leaves
   *    no side with masters. With two members, a crash of either leaves the other without a
   *    master (no arbiter can tell a crash from a cut link); a graceful leave does not.
   * Every member of a cluster must use the same policy. @default 'allow'
   */
  splitBrain?: SplitBrainPolicy
  /**
   * A static quorum: masters only while the view has at least this many members (after
   * Camel/ZooKeeper ensembles that refuse to serve below a size). Combines with `splitBrain`.
   * @default 1 (none)
   */
  quorum?: number
  /**
   * The cluster key (docs/security.md): a `ClusterKey`, or the contents of a key file made by
   * `conclave keygen` (`ClusterKey.read(path)` reads one). With a key, a process without the
   * same key cannot complete a connection to this member. Every member, observer and status
   * client of a cluster uses the same key. Never printed: it shows as its fingerprint.
   * @default none (any process that reaches the port may join)
   */
  clusterKey?: ClusterKey | string | Uint8Array
  /**
   * How a new cluster forms (docs/design.md, "Bootstrap"). Under `splitBrain: 'majority'` or a
   * `quorum` above 1, a member that has seeds never founds a group on its own: cut off from its
   * seeds at start, it waits (event `waiting`) instead of founding a group of one that would
   * count as a majority of nothing. A cluster then forms around a member started without seeds,
   * or, with `expect: N`, once N members that know of no group reach each other (the lowest id
   * founds; the group has masters once a majority of those N are in it). Give every member the
   * same N, at most the cluster's size. Under `'allow'` a member founds alone after discovery
   * unless `expect` is set. @default {} (no expect)
   */
  bootstrap?: { readonly expect?: number }
  /**
   * A directory for durable state (docs/design.md, "Durable state"): the peer key, so the member
   * keeps its id across restarts; the highest epoch it may have used, so that epochs (fencing
   * tokens) never go back across restarts and wall-clock steps; and the memberships a majority
   * is counted against, so that a member restarted while cut off knows it is not a majority
   * alone. Written and fsynced before they are relied on. One member per directory (locked).
   * Without it, a restarted process is a new member with a new id, its first epochs follow the
   * wall clock, and it remembers nothing of earlier groups. @default none
   */
  stateDir?: string
  /**
   * State transfer to a joiner (docs/design.md, "State transfer"): `snapshot()` runs on a
   * member that holds the state, at a cut of the broadcast stream; `restore(state)` on a joiner
   * before it delivers any broadcast. See `StateHandlers` and `Member.waitForState`. @default none
   */
  state?: StateHandlers
}

export interface ResolvedOptions {
  readonly cluster: string
  readonly listen: readonly string[]
  readonly seeds: readonly SeedSpec[]
  readonly advertise: readonly AdvertisedAddress[]
  readonly dns: DnsOptions
  readonly mdns: MdnsOptions | undefined
  readonly name: string
  readonly metadata: Metadata
  readonly timing: Timing
  readonly maxMessageBytes: number
  readonly leaveTimeoutMs: number
  readonly maxConnections: number
  readonly masters: number
  readonly endpoints: Endpoints
  readonly splitBrain: SplitBrainPolicy
  readonly quorum: number
  readonly clusterKey: ClusterKey | undefined
  readonly bootstrap: { readonly expect?: number }
  readonly stateDir: string | undefined
  readonly state: StateHandlers | undefined
}

const CLUSTER_NAME = /^[A-Za-z0-9._-]{1,64}$/
/** The most members a view can hold (the codec refuses larger ones). */
export const MAX_VIEW_MEMBERS = 1024

/** Every key `MemberOptions` has: a misspelt one (`seed`) would otherwise be ignored in silence. */
const MEMBER_OPTION_KEYS: Record<keyof MemberOptions, true> = {
  cluster: true, listen: true, seeds: true, advertise: true, dns: true, mdns: true, name: true, metadata: true, timing: true, maxMessageBytes: true, leaveTimeoutMs: true, maxConnections: true, masters: true, endpoints: true, splitBrain: true, quorum: true, clusterKey: true, bootstrap: true, stateDir: true, state: true
}

export function resolveOptions (input: MemberOptions): ResolvedOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidOptionError('options', 'an object', input)
  rejectUnknownKeys(input, Object.keys(MEMBER_OPTION_KEYS))
  const { cluster } = input
  if (typeof cluster !== 'string' || !CLUSTER_NAME.test(cluster)) {
    throw new InvalidOptionError('cluster', '1–64 letters, digits, ".", "_" or "-"', cluster)
  }
  const listenIn = input.listen ?? '127.0.0.1:0'
  const listenList = typeof listenIn === 'string' ? [listenIn] : listenIn
  if (!Array.isArray(listenList) || listenList.length === 0) throw new InvalidOptionError('listen', 'an address or a non-empty array of addresses', listenIn)
  const listen = listenList.map((a, i) => toMultiaddr(a, `listen[${i}]`, true))
  const seedsIn = input.seeds ?? []
  if (!Array.isArray(seedsIn)) throw new InvalidOptionError('seeds', 'an array of "host:port", SRV-name or multiaddr strings', seedsIn)
  const seeds = seedsIn.map((a, i) => parseSeed(a, `seeds[${i}]`))
  const advertise = resolveAdvertise(input.advertise)
  const dns = resolveDns(input.dns)
  const mdns = resolveMdns(input.mdns)
  const name = input.name ?? `${hostname()}-${process.pid}`
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw new InvalidOptionError('name', 'a string of 1–128 characters', name)
  const metadata = input.metadata ?? {}
  validateMetadata(metadata)
  const timing = resolveTiming(input.timing ?? {})
  const maxMessageBytes = input.maxMessageBytes ?? 1024 * 1024
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024 || maxMessageBytes > 64 * 1024 * 1024) {
    throw new InvalidOptionError('maxMessageBytes', 'an integer from 1024 to 67108864', maxMessageBytes)
  }
  const leaveTimeoutMs = input.leaveTimeoutMs ?? 2000
  positive('leaveTimeoutMs', leaveTimeoutMs)
  const maxConnections = input.maxConnections ?? MAX_VIEW_MEMBERS - 1
  if (typeof maxConnections !== 'number' || !Number.isInteger(maxConnections) || maxConnections < 1 || maxConnections > MAX_VIEW_MEMBERS - 1) {
    throw new InvalidOptionError('maxConnections', `an integer from 1 to ${MAX_VIEW_MEMBERS - 1} (a view holds at most ${MAX_VIEW_MEMBERS} members)`, maxConnections)
  }
  const masters = validateMasters('masters', input.masters ?? 1)
  const endpoints = validateEndpoints('endpoints', input.endpoints ?? {})
  const splitBrain = input.splitBrain ?? 'allow'
  if (splitBrain !== 'allow' && splitBrain !== 'majority') throw new InvalidOptionError('splitBrain', '"allow" or "majority"', splitBrain)
  const quorum = input.quorum ?? 1
  if (typeof quorum !== 'number' || !Number.isInteger(quorum) || quorum < 1 || quorum > MAX_VIEW_MEMBERS) {
    throw new InvalidOptionError('quorum', `an integer from 1 to ${MAX_VIEW_MEMBERS} (no view holds more members)`, quorum)
  }
  if (quorum > 1 && masters > quorum) {
    throw new InvalidOptionError('masters', `at most quorum (${quorum}): the smallest view that may have masters has ${quorum} members, and masters(N) would claim more than it holds`, masters)
  }
  const keyIn = input.clusterKey
  const clusterKey = keyIn === undefined || keyIn instanceof ClusterKey ? keyIn : ClusterKey.parse(keyIn, 'clusterKey')
  const bootstrap = resolveBootstrap(input.bootstrap ?? {})
  const stateDir = input.stateDir
  if (stateDir !== undefined && (typeof stateDir !== 'string' || stateDir.length === 0)) throw new InvalidOptionError('stateDir', 'a directory path', stateDir)
  const state = resolveStateHandlers(input.state)
  return { cluster, listen, seeds, advertise, dns, mdns, name, metadata, timing, maxMessageBytes, leaveTimeoutMs, maxConnections, masters, endpoints, splitBrain, quorum, clusterKey, bootstrap, stateDir, state }
}

function resolveAdvertise (input: unknown): AdvertisedAddress[] {
  if (input === undefined) return []
  const list = typeof input === 'string' ? [input] : input
  if (!Array.isArray(list)) throw new InvalidOptionError('advertise', 'an IP address ("10.1.2.3", "10.1.2.3:7000", "[fd00::3]:7000") or an array of them', input)
  return list.map((a, i) => parseAdvertised(a, Array.isArray(input) ? `advertise[${i}]` : 'advertise'))
}

function parseAdvertised (a: unknown, option: string): AdvertisedAddress {
  const expected = 'an IP address other members can reach, with or without a port ("10.1.2.3", "10.1.2.3:7000", "[fd00::3]:7000", "/ip4/10.1.2.3/tcp/7000"); not a host name, not 0.0.0.0 or ::'
  if (typeof a !== 'string') throw new InvalidOptionError(option, expected, a)
  const m = /^\/(?:ip4|ip6)\/([^/]+)\/tcp\/(\d{1,5})$/.exec(a) ?? /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(a) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(a) ?? (isIP(a) === 6 ? [a, a] : null)
  const ip = m?.[1]
  if (m === null || ip === undefined || isIP(ip) === 0 || isWildcard(ip)) throw new InvalidOptionError(option, expected, a)
  if (a.startsWith('/ip4/') !== (isIP(ip) === 4) && a.startsWith('/')) throw new InvalidOptionError(option, expected, a)
  if (m[2] === undefined) return { ip }
  const port = Number(m[2])
  if (port < 1 || port > 65535) throw new InvalidOptionError(option, 'a port from 1 to 65535', a)
  return { ip, port }
}

function resolveDns (input: unknown): DnsOptions {
  if (input === undefined) return DEFAULT_DNS
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidOptionError('dns', 'an object { servers?, refreshMs?, timeoutMs? }', input)
  rejectUnknownKeys(input as Record<string, unknown>, ['servers', 'refreshMs', 'timeoutMs'], 'dns.')
  const { servers, refreshMs = DEFAULT_DNS.refreshMs, timeoutMs = DEFAULT_DNS.timeoutMs } = input as { servers?: unknown, refreshMs?: unknown, timeoutMs?: unknown }
  if (servers !== undefined) {
    if (!Array.isArray(servers) || servers.length === 0) throw new InvalidOptionError('dns.servers', 'a non-empty array of DNS server addresses ("10.0.0.2", "127.0.0.1:5353", "[fd00::2]:53")', servers)
    servers.forEach((s, i) => {
      const m = typeof s === 'string' ? (/^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(s) ?? (isIP(s) === 6 ? [s, s] : null)) : null
      const port = m?.[2] === undefined ? 53 : Number(m[2])
      if (m === null || isIP(m[1] as string) === 0 || port < 1 || port > 65535) throw new InvalidOptionError(`dns.servers[${i}]`, 'an IP address with an optional port ("10.0.0.2", "127.0.0.1:5353", "[fd00::2]:53")', s)
    })
  }
  for (const [k, v, min] of [['refreshMs', refreshMs, 50], ['timeoutMs', timeoutMs, 10]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 3_600_000) throw new InvalidOptionError(`dns.${k}`, `an integer from ${min} to 3600000 (ms)`, v)
  }
  return { ...(servers !== undefined ? { servers: [...servers as string[]] } : {}), refreshMs: refreshMs as number, timeoutMs: timeoutMs as number }
}

export interface MdnsOptions { readonly intervalMs: number }

export const DEFAULT_MDNS: MdnsOptions = { intervalMs: 2000 }

function resolveMdns (input: unknown): MdnsOptions | undefined {
  if (input === undefined || input === false) return undefined
  if (input === true) return DEFAULT_MDNS
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidOptionError('mdns', 'true, false or an object { intervalMs? }', input)
  rejectUnknownKeys(input as Record<string, unknown>, ['intervalMs'], 'mdns.')
  const { intervalMs = DEFAULT_MDNS.intervalMs } = input as { intervalMs?: unknown }
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < 100 || intervalMs > 3_600_000) throw new InvalidOptionError('mdns.intervalMs', 'an integer from 100 to 3600000 (ms)', intervalMs)
  return { intervalMs }
}

function resolveStateHandlers (input: unknown): StateHandlers | undefined {
  if (input === undefined) return undefined
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidOptionError('state', 'an object { snapshot, restore }', input)
  rejectUnknownKeys(input as Record<string, unknown>, ['snapshot', 'restore'], 'state.')
  const { snapshot, restore } = input as Record<string, unknown>
  if (typeof snapshot !== 'function') throw new InvalidOptionError('state.snapshot', 'a function returning the state (or a stream of Uint8Array chunks)', snapshot)
  if (typeof restore !== 'function') throw new InvalidOptionError('state.restore', 'a function taking the state', restore)
  return { snapshot: snapshot as StateHandlers['snapshot'], restore: restore as StateHandlers['restore'] }
}

function resolveBootstrap (input: unknown): { readonly expect?: number } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidOptionError('bootstrap', 'an object such as { expect: 3 }', input)
  rejectUnknownKeys(input, ['expect'], 'bootstrap.')
  const { expect } = input as { expect?: unknown }
  if (expect === undefined) return Object.freeze({})
  if (typeof expect !== 'number' || !Number.isInteger(expect) || expect < 1 || expect > MAX_VIEW_MEMBERS) {
    throw new InvalidOptionError('bootstrap.expect', `an integer from 1 to ${MAX_VIEW_MEMBERS}: the number of members that found the cluster together`, expect)
  }
  return Object.freeze({ expect })
}

export function resolveTiming (partial: Partial<Timing>): Timing {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) throw new InvalidOptionError('timing', 'an object', partial)
  rejectUnknownKeys(partial, Object.keys(DEFAULT_TIMING), 'timing.')
  const t: Timing = { ...DEFAULT_TIMING, ...partial }
  for (const [key, value] of Object.entries(t)) positive(`timing.${key}`, value)
  if (t.leaseMs >= t.suspectAfterMs + t.verifyTimeoutMs) {
    throw new InvalidOptionError('timing.leaseMs', `less than suspectAfterMs + verifyTimeoutMs (${t.suspectAfterMs + t.verifyTimeoutMs}), so a paused coordinator's lease ends before it can be excluded`, t.leaseMs)
  }
  if (t.heartbeatIntervalMs >= Math.min(t.suspectAfterMs, t.leaseMs)) {
    throw new InvalidOptionError('timing.heartbeatIntervalMs', `less than suspectAfterMs (${t.suspectAfterMs}) and leaseMs (${t.leaseMs}), so that heartbeats keep both silence and the lease at bay`, t.heartbeatIntervalMs)
  }
  return Object.freeze(t)
}

/**
 * Throws InvalidOptionError for the first key of `input` that is not in `known`, with the known
 * key it was most likely meant to be (`seed` → `seeds`). `prefix` names the enclosing option.
 */
export function rejectUnknownKeys (input: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(input)) {
    if (known.includes(key)) continue
    const near = nearest(key, known)
    const hint = near === undefined ? '' : `did you mean "${prefix}${near}"? `
    throw new InvalidOptionError(`${prefix}${key}`, `no such option; ${hint}known: ${known.join(', ')}`, (input as Record<string, unknown>)[key])
  }
}

/** The known key within a small edit distance of `key` (case ignored), if one is clearly nearest. */
function nearest (key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase()
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(k.length / 3)) + 1
  for (const candidate of known) {
    const d = editDistance(k, candidate.toLowerCase())
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = row
  }
  return previous[b.length] as number
}

/** A count of masters: an integer of at least 1. */
export function validateMasters (option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 10_000) {
    throw new InvalidOptionError(option, 'an integer from 1 to 10000', value)
  }
  return value
}

function positive (option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidOptionError(option, 'a positive number of milliseconds', value)
}

function validateMetadata (meta: unknown): void {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new InvalidOptionError('metadata', 'an object of string, number or boolean values', meta)
  for (const [k, v] of Object.entries(meta)) {
    if (!['string', 'number', 'boolean'].includes(typeof v)) throw new InvalidOptionError(`metadata.${k}`, 'a string, number or boolean', v)
  }
}

/** `host:port` (IPv4, `[IPv6]`, or `localhost`) or a multiaddr string, as a multiaddr string. */
export function toMultiaddr (address: unknown, option: string, allowPortZero: boolean): string {
  const expected = '"host:port" (e.g. "127.0.0.1:7000") or a multiaddr (e.g. "/ip4/127.0.0.1/tcp/7000")'
  if (typeof address !== 'string' || address.length === 0) throw new InvalidOptionError(option, expected, address)
  if (address.startsWith('/')) {
    if (!/^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d{1,5}(\/.*)?$/.test(address)) throw new InvalidOptionError(option, expected, address)
    return address
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address)
  if (m === null) throw new InvalidOptionError(option, expected, address)
  const port = Number(m[3])
  if (port > 65535 || (port === 0 && !allowPortZero)) throw new InvalidOptionError(option, allowPortZero ? 'a port from 0 to 65535' : 'a port from 1 to 65535', address)
  const host = m[1] ?? (m[2] === 'localhost' ? '127.0.0.1' : m[2] as string)
  const family = isIP(host)
  if (family === 4) return `/ip4/${host}/tcp/${port}`
  if (family === 6) return `/ip6/${host}/tcp/${port}`
  if (/^[A-Za-z0-9.-]+$/.test(host)) return `/dns4/${host}/tcp/${port}`
  throw new InvalidOptionError(option, expected, address)
}
