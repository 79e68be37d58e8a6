/**
 * `conclave status`: joins a cluster as an observer (never a member), prints its view as a
 * table (or one JSON object) and exits; `--watch` prints again after every change.
 */
import { createObserver, type Observer } from '../registry/observer.js'
import type { RegistrySnapshot } from '../registry/source.js'
import { discoverClusters, probeSeeds, type SeedProbe } from '../transport/libp2p.js'
import { WIRE_VERSION } from '../transport/codec.js'
import { parseSeed } from '../discovery/seed-spec.js'
import { DEFAULT_DNS, SeedSet, pick } from '../discovery/seed-set.js'
import { UsageError, parseCommandLine } from './usage.js'
import { ClusterKey } from '../security/cluster-key.js'

export const STATUS_HELP = `Usage: conclave status --seed <host:port> [--seed …] [--cluster <name>] [--json] [--watch]

Joins the cluster as a client (an observer: never a member, never master),
prints its view with every member's endpoints, and exits.

Options:
  --seed <host:port>   a member to ask; repeat for several (required). A host
                       name gives every address it has; an SRV name
                       (_conclave._tcp.orders.svc) every target
  --dns-server <ip[:port]>  DNS server for host-name and SRV seeds; repeat
  --cluster <name>     the cluster; found from the first seed when omitted
  --json               one JSON object: {cluster, epoch, coordinator, members:[{rank,
                       name, id, startedAt, ageMs, endpoints, master, epoch, addrs}],
                       seeds:[{address, state, peer, wire, cluster, reason}], ts}

Every seed address (every record of a DNS name, up to 64) is asked who is there,
and listed unless it is a member of the view: not-in-view (this cluster, not in
the view: joining, or in a group apart), other-version (this cluster at another wire version: it cannot join),
other-cluster, or unreachable. During a rollout that shows who is on the way in.
  --watch              keep printing after every change, until SIGINT or SIGTERM
  --timeout <ms>       how long to wait for a view (default 5000)
  --key-file <file>    the cluster key, when the cluster has one
  -h, --help           show this help
`

/** Waits this long after the view for members' records that have not arrived yet. */
const RECORD_GRACE_MS = 1000
/** Seed addresses asked who is there, at most; how long each may take; how often under --watch. */
const MAX_PROBED = 64
const PROBE_TIMEOUT_MS = 2000
const WATCH_PROBE_MS = 5000

/** A seed address and what is there, relative to the view. */
export interface SeedState {
  readonly address: string
  readonly state: 'member' | 'not-in-view' | 'other-version' | 'other-cluster' | 'unreachable'
  readonly peer: string | null
  readonly wire: number | null
  readonly cluster: string | null
  readonly reason: string | null
}

export function seedStates (probes: readonly SeedProbe[], cluster: string, snap: RegistrySnapshot | undefined): SeedState[] {
  const inView = new Set(snap?.members.map(m => m.id) ?? [])
  return probes.map(p => {
    if (!p.answered) return { address: p.address, state: 'unreachable', peer: null, wire: null, cluster: null, reason: p.reason }
    const state = p.cluster !== cluster ? 'other-cluster' : p.wire !== WIRE_VERSION ? 'other-version' : inView.has(p.peer) ? 'member' : 'not-in-view'
    return { address: p.address, state, peer: p.peer, wire: p.wire, cluster: p.cluster, reason: null }
  })
}

function describeSeed (s: SeedState): string {
  switch (s.state) {
    case 'member': return `member ${shortId(s.peer ?? '')}`
    case 'not-in-view': return `this cluster, not in the view: ${shortId(s.peer ?? '')} (joining, or in a group apart)`
    case 'other-version': return `other version: wire ${s.wire ?? '?'} (this conclave speaks ${WIRE_VERSION}); it cannot join this group`
    case 'other-cluster': return `another cluster: ${s.cluster ?? '?'}`
    case 'unreachable': return `unreachable: ${s.reason ?? ''}`
  }
}

function seedTable (states: readonly SeedState[]): string {
  const shown = states.filter(s => s.state !== 'member')
  if (shown.length === 0) return ''
  const width = Math.max(...shown.map(s => s.address.length))
  return 'at the seeds, not in the view:\n' + shown.map(s => `  ${s.address.padEnd(width)}  ${describeSeed(s)}\n`).join('')
}

function shortId (id: string): string { return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id }

export async function runStatus (args: string[]): Promise<number> {
  const values = parseCommandLine(args, {
    seed: { type: 'string', multiple: true },
    cluster: { type: 'string' },
    json: { type: 'boolean', default: false },
    watch: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '5000' },
    'key-file': { type: 'string' },
    'dns-server': { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h', default: false }
  })
  if (values.help === true) { process.stdout.write(STATUS_HELP); return 0 }
  const dnsServers = values['dns-server']
  const seeds = values.seed ?? []
  if (seeds.length === 0) throw new UsageError('--seed <host:port> is required (see conclave status --help)')
  const timeoutMs = Number(values.timeout)
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError(`--timeout must be a whole number of milliseconds, got "${values.timeout}"`)
  const dns = dnsServers !== undefined ? { servers: dnsServers } : undefined
  const key = values['key-file'] !== undefined ? ClusterKey.read(values['key-file']) : undefined
  const addresses = await resolveSeeds(seeds, dns)
  const cluster = values.cluster ?? await findCluster(pick(addresses, 16), timeoutMs, key)
  const probe = async (): Promise<SeedProbe[]> => await probeSeeds(addresses, cluster, WIRE_VERSION, Math.min(timeoutMs, PROBE_TIMEOUT_MS), key?.fileBytes())

  const observer = await createObserver({ cluster, seeds, renewIntervalMs: 500, ...(dns !== undefined ? { dns } : {}), ...(key !== undefined ? { clusterKey: key } : {}) })
  try {
    try {
      await observer.waitForView(() => true, { timeoutMs })
    } catch {
      process.stderr.write(`conclave status: no view of cluster "${cluster}" from ${seeds.join(', ')} within ${timeoutMs} ms\n`)
      // Say what answers at the seeds instead (another version, another cluster, nobody).
      for (const s of seedStates(await probe(), cluster, undefined)) if (s.state !== 'unreachable') process.stderr.write(`  ${s.address}  ${describeSeed(s)}\n`)
      return 1
    }
    await recordsOrGrace(observer)
    let states = seedStates(await probe(), cluster, observer.registry())
    const print = (): void => {
      const snap = observer.registry()
      process.stdout.write(values.json === true ? JSON.stringify({ ...toJson(snap), seeds: states }) + '\n' : table(snap) + seedTable(states))
    }
    print()
    if (values.watch === true) {
      // Members joining or of another version show up in the view or at the seeds: ask again now and then.
      const again = setInterval(() => {
        probe().then(p => { states = seedStates(p, cluster, observer.registry()) }, () => {})
      }, WATCH_PROBE_MS)
      try { await watch(observer, print) } finally { clearInterval(again) }
    }
    return 0

  } finally {
    await observer.stop()
  }
}

/** The seeds' addresses now (at most MAX_PROBED of them, when a DNS name gives many). */
async function resolveSeeds (seeds: readonly string[], dns: { servers: string[] } | undefined): Promise<string[]> {
  const set = new SeedSet(seeds.map((s, i) => parseSeed(s, `seeds[${i}]`)), dns !== undefined ? { ...DEFAULT_DNS, ...dns } : DEFAULT_DNS)
  try {
    await set.refresh()
    return pick(set.addresses(), MAX_PROBED)
  } finally {
    set.stop()
  }
}

async function findCluster (addresses: readonly string[], timeoutMs: number, key: ClusterKey | undefined): Promise<string> {
  for (const address of addresses) {
    let names: string[]
    try { names = await discoverClusters(address, timeoutMs, key?.fileBytes()) } catch { continue }
    if (names.length === 1) return names[0] as string
    if (names.length > 1) throw new UsageError(`${address} serves several clusters (${names.join(', ')}); pick one with --cluster`)
  }
  throw new Error(`no Conclave member answered at ${addresses.join(', ')} within ${timeoutMs} ms` +
    (key === undefined ? ' (a cluster with a key answers only with --key-file)' : ' (or it has another key)'))
}

/** Resolves once every member of the view has sent its record, or after a grace period. */
async function recordsOrGrace (observer: Observer): Promise<void> {
  const complete = (): boolean => observer.registry().members.every(m => m.startedAt !== undefined)
  if (complete()) return
  await new Promise<void>(resolve => {
    const done = (): void => { clearTimeout(timer); off(); resolve() }
    const timer = setTimeout(done, RECORD_GRACE_MS)
    const off = observer.onRegistryChange(() => { if (complete()) done() })
  })
}

/** Prints after every change (debounced) until SIGINT or SIGTERM. */
async function watch (observer: Observer, print: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const off = observer.onRegistryChange(() => {
    clearTimeout(timer)
    timer = setTimeout(print, 50)
  })
  await new Promise<void>(resolve => {
    const onSignal = (): void => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); resolve() }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  off()
  clearTimeout(timer)
}

function toJson (snap: RegistrySnapshot): Record<string, unknown> {
  const now = Date.now()
  const first = snap.members[0]
  return {
    cluster: snap.cluster,
    epoch: snap.view?.id.epoch ?? null,
    coordinator: first === undefined ? null : { id: first.id, name: first.name },
    members: snap.members.map(m => ({
      rank: m.rank,
      name: m.name,
      id: m.id,
      startedAt: m.startedAt ?? null,
      ageMs: m.startedAt === undefined ? null : Math.max(0, now - m.startedAt),
      endpoints: m.endpoints,
      master: m.masterEpoch !== undefined,
      epoch: m.masterEpoch ?? null,
      addrs: m.addrs
    })),
    ts: now
  }
}

function table (snap: RegistrySnapshot): string {
  const now = Date.now()
  const rows = snap.members.map(m => [
    String(m.rank),
    m.name,
    shortId(m.id),
    m.startedAt === undefined ? '?' : age(now - m.startedAt),
    Object.keys(m.endpoints).length === 0 ? '-' : Object.entries(m.endpoints).map(([s, u]) => `${s}=${u}`).join(', '),
    m.masterEpoch !== undefined ? '*' : '',
    m.masterEpoch !== undefined ? String(m.masterEpoch) : ''
  ])
  const header = ['RANK', 'NAME', 'ID', 'AGE', 'ENDPOINTS', 'MASTER', 'EPOCH']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] as string).length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd() + '\n'
  const title = `cluster ${snap.cluster} · view epoch ${snap.view?.id.epoch ?? '-'} · ${snap.members.length} member${snap.members.length === 1 ? '' : 's'} · coordinator ${snap.members[0]?.name ?? '-'}\n`
  return title + line(header) + rows.map(line).join('')
}

function age (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`
}
