/**
 * The seeds a member or an observer dials, with their DNS names resolved (discovery/seed-spec.ts
 * says what a seed may name). Addresses are kept as multiaddrs; a name's answer replaces the
 * previous one on every successful resolution, so pods that come and go come and go here too.
 *
 * Resolution:
 *  - without `servers`, a host name goes through the operating system (`getaddrinfo`: the hosts
 *    file, the search domains of resolv.conf, as any program on that host); an SRV name through
 *    the system's DNS servers;
 *  - with `servers` (`["10.0.0.2", "127.0.0.1:5353"]`), every query goes to them.
 * A name that does not exist (or has no record of the type asked) has no addresses; any other
 * failure (a timeout, a server failure, a refused query) keeps the last answer, and is
 * reported (`onFailed`) when it starts and whenever its code changes; nothing is fatal.
 */
import { promises as dns } from 'node:dns'
import type { LookupAddress } from 'node:dns'
import { networkInterfaces } from 'node:os'
import type { SeedSpec } from './seed-spec.js'
import { tcpMultiaddr } from './seed-spec.js'

export interface DnsOptions {
  /** DNS servers to ask instead of the system's: `"ip"` or `"ip:port"` (`"[v6]:port"`). */
  readonly servers?: readonly string[]
  /** How often a member that may need its seeds resolves them again. */
  readonly refreshMs: number
  /** A resolution that takes longer fails (ETIMEOUT). */
  readonly timeoutMs: number
}

export const DEFAULT_DNS: DnsOptions = { refreshMs: 2000, timeoutMs: 2000 }

/** At most this many addresses from one name (an answer larger than that is cut). */
export const MAX_ADDRESSES_PER_SEED = 1024
/** SRV targets resolved from one answer, at most. */
const MAX_SRV_TARGETS = 256

/** Codes of a definite "no such records": the name's addresses are none. */
const ABSENT = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME', 'EAI_NONAME', 'EAI_NODATA'])

export interface SeedResolutionFailure { readonly seed: string, readonly code: string, readonly message: string }

export interface SeedSetHooks {
  /** A name's answer changed (also the first answer). */
  resolved?: (seed: string, addresses: readonly string[]) => void
  /** A name failed to resolve (reported once per run of the same code). */
  failed?: (failure: SeedResolutionFailure) => void
}

export class SeedSet {
  private readonly answers = new Map<string, readonly string[]>()
  private readonly failing = new Map<string, string>()
  private readonly resolver: InstanceType<typeof dns.Resolver>
  private inFlight: Promise<void> | undefined
  private stopped = false
  /** Resolutions done (each name counts once per refresh), and how many failed. */
  resolutions = 0
  failures = 0

  constructor (readonly specs: readonly SeedSpec[], readonly dnsOptions: DnsOptions = DEFAULT_DNS, private readonly hooks: SeedSetHooks = {}) {
    // c-ares retries once after `timeout`: half the budget each.
    this.resolver = new dns.Resolver({ timeout: Math.max(1, Math.floor(dnsOptions.timeoutMs / 2)), tries: 2 })
    if (dnsOptions.servers !== undefined && dnsOptions.servers.length > 0) this.resolver.setServers([...dnsOptions.servers])
  }

  /** Whether any seed is configured at all (resolved to addresses or not). */
  get configured (): boolean { return this.specs.length > 0 }

  /** Whether a seed names a host or an SRV record (so resolving again can change the addresses). */
  get usesDns (): boolean { return this.specs.some(s => s.kind !== 'address') }

  /** Every seed address known now: the literal ones and the last answer of each name, without repeats. */
  addresses (): string[] {
    const out = new Set<string>()
    for (const s of this.specs) {
      if (s.kind === 'address') out.add(s.address)
      else for (const a of this.answers.get(s.text) ?? []) out.add(a)
    }
    return [...out]
  }

  /** Resolves every name again (one refresh at a time; a call during one waits for it). Never rejects. */
  async refresh (): Promise<void> {
    if (this.stopped || !this.usesDns) return
    if (this.inFlight !== undefined) return await this.inFlight
    this.inFlight = Promise.all(this.specs.map(async s => { if (s.kind !== 'address') await this.resolveOne(s) }))
      .then(() => {}, () => {})
      .finally(() => { this.inFlight = undefined })
    return await this.inFlight
  }

  /** Cancels queries in flight; later refreshes do nothing. */
  stop (): void {
    this.stopped = true
    this.resolver.cancel()
  }

  private async resolveOne (s: Exclude<SeedSpec, { kind: 'address' }>): Promise<void> {
    this.resolutions++
    let addresses: string[]
    try {
      addresses = s.kind === 'host' ? (await this.hostAddresses(s.host, s.family)).map(ip => tcpMultiaddr(ip, s.port)) : await this.srvAddresses(s.name)
    } catch (err) {
      if (this.stopped) return
      const code = codeOf(err)
      this.failures++
      if (this.failing.get(s.text) !== code) {
        this.failing.set(s.text, code)
        this.hooks.failed?.({ seed: s.text, code, message: (err as Error).message })
      }
      if (ABSENT.has(code)) this.setAnswer(s.text, [])
      return
    }
    if (this.stopped) return
    this.failing.delete(s.text)
    this.setAnswer(s.text, [...new Set(addresses)].slice(0, MAX_ADDRESSES_PER_SEED))
  }

  private setAnswer (seed: string, addresses: readonly string[]): void {
    const before = this.answers.get(seed)
    this.answers.set(seed, addresses)
    if (before === undefined || before.length !== addresses.length || before.some((a, i) => a !== addresses[i])) this.hooks.resolved?.(seed, addresses)
  }

  /** Every address of `host` of the family asked (0: both); throws when it has none of them. */
  private async hostAddresses (host: string, family: 0 | 4 | 6): Promise<string[]> {
    if (this.dnsOptions.servers === undefined || this.dnsOptions.servers.length === 0) {
      const found = await withTimeout(dns.lookup(host, { all: true, family, verbatim: true }), this.dnsOptions.timeoutMs, host)
      return (found as LookupAddress[]).map(a => a.address).sort()
    }
    const asks: Array<Promise<string[]>> = []
    if (family !== 6) asks.push(this.resolver.resolve4(host))
    if (family !== 4) asks.push(this.resolver.resolve6(host))
    const results = await Promise.allSettled(asks)
    const found = results.flatMap(r => r.status === 'fulfilled' ? r.value : [])
    if (found.length > 0) return found.sort()
    // Neither answered with an address: the first (A's) error says why.
    const reason = results.find(r => r.status === 'rejected') as PromiseRejectedResult | undefined
    if (reason !== undefined) throw reason.reason
    throw Object.assign(new Error(`${host} has no address`), { code: 'ENODATA' })
  }

  private async srvAddresses (name: string): Promise<string[]> {
    const records = (await this.resolver.resolveSrv(name)).slice(0, MAX_SRV_TARGETS)
    const per = await Promise.all(records.map(async r => {
      try {
        return (await this.hostAddresses(r.name, 0)).map(ip => tcpMultiaddr(ip, r.port))
      } catch {
        return [] // one target without an address does not spoil the others
      }
    }))
    return per.flat()
  }
}

/**
 * `addresses` without this node's own: those it advertises (`own`, ending in /p2p/<id>), and
 * any address of one of this host's interfaces on a port it advertises (it listens there: a
 * wildcard listen, or a DNS answer naming this pod).
 */
export function withoutOwn (addresses: readonly string[], own: readonly string[]): string[] {
  const ports = new Set(own.map(a => /\/tcp\/(\d+)/.exec(a)?.[1]).filter(p => p !== undefined))
  const local = new Set(Object.values(networkInterfaces()).flatMap(list => (list ?? []).map(i => i.address)))
  return addresses.filter(a => {
    if (own.some(o => o === a || o.startsWith(`${a}/p2p/`))) return false
    const m = /^\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(a)
    return m === null || !(ports.has(m[2] as string) && local.has(m[1] as string))
  })
}

/** At most `n` of `items`, chosen at random when there are more (all of them, in order, otherwise). */
export function pick<T> (items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items]
  const copy = [...items]
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i))
    const t = copy[i] as T
    copy[i] = copy[j] as T
    copy[j] = t
  }
  return copy.slice(0, n)
}

function codeOf (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'EUNKNOWN'
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(Object.assign(new Error(`resolving ${what} took longer than ${ms} ms`), { code: 'ETIMEOUT' })) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}
