/**
 * `conclave host`: several members in one process, for scale runs on one machine. Each member
 * is what `conclave member` runs (its own libp2p node, key, port and timers); the process only
 * shares the event loop and the heap's fixed cost among them. Members start one after another
 * (libp2p start-up is CPU-bound). Every line is JSON and names its member (`member`).
 *
 * View lines carry the view's size and a digest of its members instead of the member list: in
 * a cluster of N, N members each printing every view of N would be O(N²) bytes per change.
 */
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { cpuUsage, memoryUsage } from 'node:process'
import { createMember } from '../member.js'
import type { Member } from '../member.js'
import { wallClockMs } from '../clock.js'
import { ClusterKey } from '../security/cluster-key.js'
import { MAX_VIEW_MEMBERS } from '../options.js'
import { UsageError, parseCommandLine, wholeNumber } from './usage.js'

export const HOST_HELP = `Usage: conclave host --cluster <name> --count <K> [--seed <host:port>]... [--name <prefix>]

Runs K members in this one process, each with its own libp2p node, key and port
(on --listen-host, port chosen by the system), each started once the one before
is in a view (or after 30 s): for
scale runs where K separate processes would not fit the machine. Member i is
named <prefix>-<i>; the first is also a seed of the others.

Prints JSON lines, each with "member" (its name): ready (id, listen), view
(epoch, size, coordinator, digest: a hash of the member ids in view order),
suspect, master, connection-limit, excluded. Commands on stdin, one JSON object a
line: {"cmd":"stats"} prints {"type":"stats", member, connections, viewSize} for
each member, then {"type":"host-stats", members, rssMiB, cpuS}. On SIGTERM or
SIGINT every member leaves, then the process exits 0.

Options:
  --cluster <name>        cluster name (required)
  --count <K>             members in this process, 1 to 256 (required)
  --seed <host:port>      a member to join through; repeat for several
  --name <prefix>         name prefix (default host-<pid>)
  --listen-host <ip>      address to listen on (default 127.0.0.1)
  --max-connections <n>   each member's maxConnections (default 1023)
  --key-file <file>       the cluster key
  -h, --help              show this help
`

/** How long a member may take to join before the host starts the next anyway. */
const JOIN_WAIT_MS = 30_000

/** The view line's digest: the first 12 hex digits of SHA-256 over the member ids in order. */
export function viewDigest (ids: readonly string[]): string {
  return createHash('sha256').update(ids.join(',')).digest('hex').slice(0, 12)
}

export async function runHost (args: string[]): Promise<number> {
  const values = parseCommandLine(args, {
    cluster: { type: 'string' },
    count: { type: 'string' },
    seed: { type: 'string', multiple: true },
    name: { type: 'string' },
    'listen-host': { type: 'string', default: '127.0.0.1' },
    'max-connections': { type: 'string' },
    'key-file': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  })
  if (values.help === true) { process.stdout.write(HOST_HELP); return 0 }
  if (values.cluster === undefined) throw new UsageError('--cluster is required')
  if (values.count === undefined) throw new UsageError('--count is required')
  const count = wholeNumber('count', values.count, 1, 256)
  const maxConnections = values['max-connections'] === undefined ? undefined : wholeNumber('max-connections', values['max-connections'], 1, MAX_VIEW_MEMBERS - 1)
  const prefix = values.name ?? `host-${process.pid}`
  const clusterKey = values['key-file'] === undefined ? undefined : ClusterKey.read(values['key-file'])
  const seeds = values.seed ?? []
  const out = (member: string, obj: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify({ ts: wallClockMs(), member, ...obj }) + '\n')
  }

  const members: Member[] = []
  let stopping = false
  const stopAll = async (): Promise<void> => {
    stopping = true
    await Promise.all(members.map(async m => { await m.stop().catch(() => {}) }))
  }
  const signalled = new Promise<void>(resolve => {
    const onSignal = (): void => { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); resolve() }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
  const commands = createInterface({ input: process.stdin })
  commands.on('line', line => {
    let cmd: unknown
    try { cmd = (JSON.parse(line) as { cmd?: unknown }).cmd } catch { return }
    if (cmd !== 'stats') return
    for (const m of members) out(m.name, { type: 'stats', connections: m.connections, viewSize: m.view?.members.length ?? 0 })
    const cpu = cpuUsage()
    out(prefix, { type: 'host-stats', members: members.length, rssMiB: memoryUsage.rss() / 2 ** 20, cpuS: (cpu.user + cpu.system) / 1e6 })
  }).on('error', () => {})

  const hostPort = (m: Member): string => {
    const match = /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(m.addresses[0] ?? '')
    return match === null ? '' : `${match[1]}:${match[2]}`
  }
  for (let i = 0; i < count && !stopping; i++) {
    const name = `${prefix}-${i}`
    const first = members[0]
    const m = await createMember({
      cluster: values.cluster,
      name,
      listen: `${values['listen-host']}:0`,
      seeds: first === undefined ? seeds : [...seeds, hostPort(first)],
      ...(maxConnections !== undefined ? { maxConnections } : {}),
      ...(clusterKey !== undefined ? { clusterKey } : {})
    })
    members.push(m)
    m.on('view', c => {
      const ids = c.view.members.map(x => x.id)
      out(name, { type: 'view', epoch: c.view.id.epoch, size: ids.length, coordinator: ids[0], digest: viewDigest(ids) })
    })
    m.on('suspect', s => { out(name, { type: 'suspect', id: s.id, reason: s.reason }) })
    m.on('excluded', e => { out(name, { type: 'excluded', by: e.by }) })
    m.on('mastership', c => { out(name, { type: 'master', isMaster: c.isMaster, epoch: c.epoch }) })
    m.on('connection-limit', l => { out(name, { type: 'connection-limit', limit: l.limit, members: l.members, refused: l.refused ?? null }) })
    await m.start()
    out(name, { type: 'ready', id: m.id, listen: m.addresses })
    // The next starts once this one is in a view: joins that arrive together through one
    // process set up all their connections on one event loop at once, which starves the
    // heartbeats of every member it hosts (see docs/design.md, "Scale").
    await m.waitForView(() => true, { timeoutMs: JOIN_WAIT_MS }).catch(() => {})
  }
  await signalled
  await stopAll()
  commands.close()
  process.stdin.destroy()
  return 0
}
