/**
 * `conclave member`: runs one member until SIGTERM/SIGINT, then leaves gracefully.
 * With `--json`, prints one JSON object per line (each with `type` and `ts`, Unix ms) for
 * scripts and benchmarks; without it, readable lines for people.
 */
import { Member } from '../member.js'
import type { View } from '../core/view.js'
import { UsageError, parseCommandLine } from './usage.js'
import { wallClockMs } from '../clock.js'
import { expandTemplate } from '../registry/endpoints.js'
import { loadConfig, parseAssignments } from './config.js'
import { ClusterKey } from '../security/cluster-key.js'

export const MEMBER_HELP = `Usage: conclave member --cluster <name> [options]

Runs a cluster member and prints its view changes until SIGTERM or SIGINT,
then leaves the group gracefully (the successor takes over at once) and exits 0.

Options:
  --cluster <name>      cluster to join (required); letters, digits, . _ -
  --listen <host:port>  address to listen on (default 127.0.0.1:0, a free port);
                        any local address, e.g. the one of a network namespace
  --seed <host:port>    a member to join through; repeat for several. Without
                        seeds, or when none answers, this member founds the group
                        (under --split-brain majority or --quorum, a member with
                        seeds never founds one alone: it waits to join). A host
                        name gives every address it has (a Kubernetes headless
                        service: orders.default.svc.cluster.local:7000); an SRV
                        name (_conclave._tcp.orders.default.svc.cluster.local)
                        every target; both are resolved again while running
  --advertise <ip[:port]>  the address other members dial, when it is not the
                        one listened on (listen 0.0.0.0:7000, advertise the pod's
                        IP); without a port, the port listened on. Repeatable
  --dns-server <ip[:port]>  DNS server for host-name and SRV seeds instead of
                        the system's; repeat for several
  --dns-refresh-ms <ms>  how often a member that is alone, or coordinates,
                        resolves its DNS seeds again (default 2000)
  --mdns                also find members on the local network by multicast DNS
                        (local development; sends to 224.0.0.251:5353)
  --bootstrap-expect <N>  found the cluster once N members that know of no
                        group reach each other (same N on every member)
  --state-dir <dir>     durable state: the same member id across restarts,
                        epochs that never go back, and what a majority counts
                        (one directory per member)
  --name <name>         name shown in views (default <hostname>-<pid>)
  --masters <N>         how many members are masters: the first N of the view
                        (default 1); each change prints a "master" line
  --split-brain <p>     allow (default): each side of a partition elects its own
                        master, and the sides merge when it heals; majority: only
                        a side holding a strict majority of the last quorate view
                        has masters (an even split has none). Same on every member
  --quorum <K>          masters only while the view has at least K members
  --key-file <file>     the cluster key (made by conclave keygen): only processes
                        holding the same key can connect to this member
  --max-message-bytes <n>  largest frame accepted or sent (default 1048576)
  --max-connections <n> connections to other members this member may hold (default
                        1023): as coordinator it admits nobody beyond n + 1
                        members, and says so (a connection-limit line)
  --timing <name=ms>    a failure-detection or protocol timing, e.g.
                        suspectAfterMs=2000 (default 500) for a host whose CPU is
                        often starved; repeat for several (README, "Timing")
  --metrics <host:port> serve Prometheus metrics on /metrics, and /health and
                        /ready for probes (503 until started / in a settled view)
  --endpoint <svc=url>  publish an endpoint (e.g. http=http://127.0.0.1:9090/);
                        repeat for several. Clients find the master's with
                        masterEndpoint(svc); \`conclave status\` lists them
  --config <file.json>  cluster, listen, seeds, advertise, dnsServers,
                        dnsRefreshMs, mdns, name, masters, splitBrain, quorum,
                        keyFile, endpoints, stateDir, bootstrapExpect and timing
                        from a file; flags override it. Strings may hold {{NAME}} or
                        {{NAME:-default}} placeholders, filled from --set, then
                        the environment, so one file serves every server
  --set <NAME=value>    a placeholder value for --config and --endpoint; repeat
  --json                one JSON object per line on stdout:
                          {"type":"ready","ts":…,"id":…,"name":…,"listen":[…],"endpoints":{…},"metrics":"host:port"}
                          {"type":"view","ts":…,"epoch":…,"coordinator":…,"members":[{"id":…,"name":…}],"self":…,"isCoordinator":…,"quorum":"ok"|"no-majority"|"below-quorum"}
                          {"type":"coordinator","ts":…,"isCoordinator":…,"epoch":…}
                          {"type":"master","ts":…,"isMaster":…,"epoch":…,"reason":…,"token":…}
                          {"type":"merge","ts":…,"epoch":…,"rejoined":[{"id":…,"name":…}]}
                          {"type":"split-brain","ts":…,"master":…,"epoch":…,"rank":…,"foreign":…}
                          {"type":"seed-rejected","ts":…,"address":…,"cluster":…,"wireVersion":…}
                          {"type":"waiting","ts":…,"reason":"may-not-found"|"expecting","joiners":…,"expect":…}
                          {"type":"state-failed","ts":…,"error":…}
                          {"type":"suspect"|"refuted"|"excluded",…}
                          {"type":"left","ts":…,"dropped":{reason:count,…}}
  -h, --help            show this help
`

export async function runMember (args: string[]): Promise<number> {
  const values = parseCommandLine(args, {
    cluster: { type: 'string' },
    listen: { type: 'string' },
    seed: { type: 'string', multiple: true },
    advertise: { type: 'string', multiple: true },
    'dns-server': { type: 'string', multiple: true },
    'dns-refresh-ms': { type: 'string' },
    mdns: { type: 'boolean' },
    name: { type: 'string' },
    masters: { type: 'string' },
    'split-brain': { type: 'string' },
    quorum: { type: 'string' },
    'key-file': { type: 'string' },
    'max-message-bytes': { type: 'string' },
    'max-connections': { type: 'string' },
    'bootstrap-expect': { type: 'string' },
    'state-dir': { type: 'string' },
    timing: { type: 'string', multiple: true },
    metrics: { type: 'string' },
    endpoint: { type: 'string', multiple: true },
    config: { type: 'string' },
    set: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false }
  })
  if (values.help === true) {
    process.stdout.write(MEMBER_HELP)
    return 0
  }
  const vars = parseAssignments('--set', values.set ?? [])
  const config = values.config !== undefined ? loadConfig(values.config, vars) : {}
  const cluster = values.cluster ?? config.cluster
  if (cluster === undefined) throw new UsageError('--cluster <name> is required (see conclave member --help)')
  const json = values.json === true
  const flagEndpoints = parseAssignments('--endpoint', values.endpoint ?? [])
  for (const [service, url] of Object.entries(flagEndpoints)) flagEndpoints[service] = expandTemplate(`endpoints.${service}`, url, vars)
  const masters = values.masters !== undefined ? parseCount('--masters', values.masters) : config.masters
  const name = values.name ?? config.name
  const splitBrain = values['split-brain'] ?? config.splitBrain
  if (splitBrain !== undefined && splitBrain !== 'allow' && splitBrain !== 'majority') {
    throw new UsageError(`--split-brain must be allow or majority, got "${splitBrain}"`)
  }
  const quorum = values.quorum !== undefined ? parseCount('--quorum', values.quorum) : config.quorum
  const keyFile = values['key-file'] ?? config.keyFile
  const maxMessageBytes = values['max-message-bytes'] !== undefined ? parseCount('--max-message-bytes', values['max-message-bytes']) : undefined
  const maxConnections = values['max-connections'] !== undefined ? parseCount('--max-connections', values['max-connections']) : undefined
  const expect = values['bootstrap-expect'] !== undefined ? parseCount('--bootstrap-expect', values['bootstrap-expect']) : config.bootstrapExpect
  const stateDir = values['state-dir'] ?? config.stateDir
  const timing = { ...config.timing, ...parseTiming(values.timing ?? []) }
  const advertise = values.advertise ?? config.advertise
  const dnsServers = values['dns-server'] ?? config.dnsServers
  const dnsRefreshMs = values['dns-refresh-ms'] !== undefined ? parseCount('--dns-refresh-ms', values['dns-refresh-ms']) : config.dnsRefreshMs
  const dnsOption = dnsServers === undefined && dnsRefreshMs === undefined
    ? undefined
    : { ...(dnsServers !== undefined ? { servers: dnsServers } : {}), ...(dnsRefreshMs !== undefined ? { refreshMs: dnsRefreshMs } : {}) }
  const mdns = values.mdns ?? config.mdns
  const member = new Member({
    ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}),
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    ...(keyFile !== undefined ? { clusterKey: ClusterKey.read(keyFile) } : {}),
    cluster,
    listen: values.listen ?? config.listen ?? '127.0.0.1:0',
    seeds: values.seed ?? config.seeds ?? [],
    ...(advertise !== undefined ? { advertise } : {}),
    ...(dnsOption !== undefined ? { dns: dnsOption } : {}),
    ...(mdns !== undefined ? { mdns } : {}),
    endpoints: { ...config.endpoints, ...flagEndpoints },
    ...(masters !== undefined ? { masters } : {}),
    ...(splitBrain !== undefined ? { splitBrain } : {}),
    ...(quorum !== undefined ? { quorum } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(expect !== undefined ? { bootstrap: { expect } } : {}),
    ...(stateDir !== undefined ? { stateDir } : {}),
    ...(Object.keys(timing).length > 0 ? { timing } : {})
  })
  // Lines produced while starting (a founder's first view) wait until "ready" is printed.
  let held: string[] | undefined = []
  const out = (obj: Record<string, unknown>, text: string): void => {
    const line = json ? JSON.stringify({ ts: wallClockMs(), ...obj }) + '\n' : `${new Date().toISOString()} ${text}\n`
    if (held !== undefined && obj.type !== 'ready') held.push(line)
    else process.stdout.write(line)
  }
  const nameOf = (id: string): string => member.view?.members.find(m => m.id === id)?.name ?? id
  const names = (view: View): string => view.members.map(m => `${m.name}${m.id === member.id ? ' (me)' : ''}`).join(', ')

  member.on('view', change => {
    const { view } = change
    out({
      type: 'view',
      epoch: view.id.epoch,
      coordinator: view.id.coordinator,
      members: view.members.map(m => ({ id: m.id, name: m.name })),
      self: member.id,
      isCoordinator: change.isCoordinator,
      quorum: change.quorum
    }, `view ${view.id.epoch}: [${names(view)}] coordinator ${view.members[0]?.name}` +
      (change.isCoordinator ? ' — this member coordinates' : '') +
      (change.quorum !== 'ok' ? ` — no masters (${change.quorum === 'no-majority' ? 'no majority' : 'below quorum'})` : '') +
      (change.joined.length > 0 && change.previous !== undefined ? `; joined ${change.joined.map(m => m.name).join(', ')}` : '') +
      (change.left.length > 0 ? `; gone ${change.left.map(m => m.name).join(', ')}` : ''))
  })
  member.on('coordinator', c => out({ type: 'coordinator', isCoordinator: c.isCoordinator, epoch: c.epoch },
    c.isCoordinator ? `now coordinator (epoch ${c.epoch})` : 'no longer coordinator'))
  member.on('mastership', c => out({ type: 'master', isMaster: c.isMaster, epoch: c.epoch, reason: c.reason, ...(c.token !== undefined ? { token: c.token } : {}) },
    c.isMaster ? `now master (rank ${c.rank}, epoch ${c.epoch}, ${c.reason})` : `no longer master (${c.reason})`))
  member.on('suspect', s => out({ type: 'suspect', id: s.id, reason: s.reason }, `suspecting ${nameOf(s.id)} (${s.reason === 'disconnect' ? 'connection closed' : 'silent'})`))
  member.on('refuted', s => out({ type: 'refuted', id: s.id }, `${nameOf(s.id)} is alive after all`))
  member.on('merge', m => out({ type: 'merge', epoch: m.view.id.epoch, rejoined: m.rejoined.map(r => ({ id: r.id, name: r.name })) },
    `merge: ${m.rejoined.map(r => r.name).join(', ')} back in view ${m.view.id.epoch}`))
  member.on('split-brain', d => out({ type: 'split-brain', master: d.master, epoch: d.epoch, rank: d.rank, foreign: d.foreign },
    `split brain: ${d.master} announces itself master (rank ${d.rank}, epoch ${d.epoch})${d.foreign ? ' in another group' : ''}`))
  member.on('seed-rejected', r => out({ type: 'seed-rejected', address: r.address, cluster: r.cluster, wireVersion: r.wireVersion },
    `seed ${r.address} is a member of cluster "${r.cluster}" (wire ${r.wireVersion}), not of this one: not joining through it`))
  member.on('connection-limit', l => out({ type: 'connection-limit', limit: l.limit, members: l.members, refused: l.refused ?? null },
    l.refused !== undefined
      ? `connection limit: the view has ${l.members} members, --max-connections ${l.limit}; not admitting ${nameOf(l.refused)}`
      : `connection limit: admitted to a view of ${l.members} members, above --max-connections ${l.limit}`))
  member.on('excluded', e => out({ type: 'excluded', by: e.by }, `excluded from the group (told by ${nameOf(e.by)}); rejoining`))
  member.on('waiting', w => out({ type: 'waiting', reason: w.reason, joiners: w.joiners, expect: w.expect ?? null },
    w.reason === 'expecting'
      ? `waiting: ${w.joiners + 1} of ${w.expect ?? '?'} founding members in contact`
      : 'waiting: no group answers through the seeds, and a member with seeds does not found one alone under this split-brain policy'))
  member.on('state-failed', f => out({ type: 'state-failed', error: f.error.message }, `durable state failed: ${f.error.message}; leaving`))

  // Before start(): probes see /health and /ready answer 503 while the member starts and joins.
  const operator = values.metrics !== undefined ? await serveMetrics(member, values.metrics) : undefined
  try {
    await member.start()
  } catch (err) {
    // The metrics server would keep the process alive: a member that failed to start exits.
    await operator?.close()
    throw err
  }
  const key = member.options.clusterKey
  out({ type: 'ready', id: member.id, name: member.name, listen: member.addresses, endpoints: member.ownEndpoints, ...(key !== undefined ? { keyFingerprint: key.fingerprint } : {}), ...(operator !== undefined ? { metrics: operator.address } : {}) },
    `ready: ${member.name} ${member.id} listening on ${member.addresses.join(', ')}${key !== undefined ? ` (cluster key ${key.fingerprint})` : ''}`)
  for (const line of held ?? []) process.stdout.write(line)
  held = undefined

  await new Promise<void>(resolve => {
    const onSignal = (): void => {
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      resolve()
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
  await member.stop()
  await operator?.close()
  const drops = Object.entries(member.dropped)
  out({ type: 'left', dropped: member.dropped }, 'left the group' + (drops.length > 0 ? `; dropped input: ${drops.map(([k, v]) => `${k} ${v}`).join(', ')}` : ''))
  return 0
}

/** `--metrics host:port`: a registry of this member's metrics plus the process's, and the server. */
async function serveMetrics (member: Member, address: string): Promise<{ address: string, close: () => Promise<void> }> {
  const m = /^(.+):(\d{1,5})$/.exec(address)
  if (m === null || Number(m[2]) > 65535) throw new UsageError(`--metrics expects host:port (port 0 picks one), got "${address}"`)
  // Loaded only here: a member without --metrics carries no prom-client (an optional peer dependency).
  const promClient = await import('prom-client').catch((err: unknown) => {
    throw new UsageError(`--metrics needs prom-client, which is not installed here (npm install prom-client): ${err instanceof Error ? err.message : String(err)}`)
  })
  const { Registry, collectDefaultMetrics } = promClient
  const { instrument, serveOperatorEndpoints } = await import('../observability/index.js')
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  instrument(member, { registry })
  try {
    return await serveOperatorEndpoints(member, registry, (m[1] as string).replace(/^\[(.*)\]$/, '$1'), Number(m[2]))
  } catch (err) {
    throw new UsageError(`--metrics ${address}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

function parseCount (flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number of at least 1, got "${text}"`)
  return Number(text)
}

/** `--timing name=ms` flags as numbers; the member's own option check names a bad name or value. */
function parseTiming (items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, text] of Object.entries(parseAssignments('--timing', items))) {
    if (!/^\d+$/.test(text)) throw new UsageError(`--timing ${name}: expected a whole number of milliseconds, got "${text}"`)
    out[name] = Number(text)
  }
  return out
}
