/**
 * `conclave status`: joins a cluster as an observer (never a member), prints its view as a
 * table (or one JSON object) and exits; `--watch` prints again after every change.
 */
import { createObserver, type Observer } from '../registry/observer.js'
import type { RegistrySnapshot } from '../registry/source.js'
import { discoverClusters } from '../transport/libp2p.js'
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
                       name, id, startedAt, ageMs, endpoints, master, epoch, addrs}], ts}
  --watch              keep printing after every change, until SIGINT or SIGTERM
  --timeout <ms>       how long to wait for a view (default 5000)
  --key-file <file>    the cluster key, when the cluster has one
  -h, --help           show this help
`

/** Waits this long after the view for members' records that have not arrived yet. */
const RECORD_GRACE_MS = 1000

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
  const cluster = values.cluster ?? await findCluster(await resolveSeeds(seeds, dns), timeoutMs, key)

  const observer = await createObserver({ cluster, seeds, renewIntervalMs: 500, ...(dns !== undefined ? { dns } : {}), ...(key !== undefined ? { clusterKey: key } : {}) })
  try {
    try {
      await observer.waitForView(() => true, { timeoutMs })
    } catch {
      process.stderr.write(`conclave status: no view of cluster "${cluster}" from ${seeds.join(', ')} within ${timeoutMs} ms\n`)
      return 1
    }
    await recordsOrGrace(observer)
    const print = (): void => { process.stdout.write(values.json === true ? JSON.stringify(toJson(observer.registry())) + '\n' : table(observer.registry())) }
    print()
    if (values.watch === true) await watch(observer, print)
    return 0
  } finally {
    await observer.stop()
  }
}

/** The seeds' addresses now (a few of them, when a DNS name gives many). */
async function resolveSeeds (seeds: readonly string[], dns: { servers: string[] } | undefined): Promise<string[]> {
  const set = new SeedSet(seeds.map((s, i) => parseSeed(s, `seeds[${i}]`)), dns !== undefined ? { ...DEFAULT_DNS, ...dns } : DEFAULT_DNS)
  try {
    await set.refresh()
    return pick(set.addresses(), 16)
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
    m.id.length > 16 ? `${m.id.slice(0, 8)}…${m.id.slice(-6)}` : m.id,
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
