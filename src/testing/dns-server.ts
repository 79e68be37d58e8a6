/**
 * A small authoritative DNS server for this project's tests and benchmarks: A, AAAA and SRV
 * records that the test changes while members run (scale up, scale down, a pod that comes
 * back at another address). Answers with TTL 0; a name it does not hold gets NXDOMAIN, a name
 * without records of the type asked an empty answer. UDP only (answers stay small: at most
 * what one datagram carries; a larger answer is cut, as real servers set TC).
 *
 * In-process (`TestDnsServer.start`), or as a process of its own inside a test host's network
 * namespace: `node dist/src/testing/dns-server.js --listen 10.77.0.1:53`, which prints
 * `{"type":"ready","address":…}` and takes JSON lines on stdin:
 *   {"set":"orders.test","a":["10.77.0.2"],"aaaa":[],"srv":[{"target":"m1.test","port":7000}]}
 *   {"remove":"orders.test"}
 *
 * Needs the dev dependency `dns-packet` (not part of the package's runtime dependencies).
 */
import { createSocket, type Socket } from 'node:dgram'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as dnsPacket from 'dns-packet'

export interface TestRecords {
  readonly a?: readonly string[]
  readonly aaaa?: readonly string[]
  readonly srv?: ReadonlyArray<{ readonly target: string, readonly port: number }>
}

/** Answers beyond this many records are cut (a 512-byte-safe size is not the point; a datagram is). */
const MAX_ANSWERS = 2000

export class TestDnsServer {
  private readonly records = new Map<string, TestRecords>()
  /** Queries answered, by name (lower case). */
  readonly queries = new Map<string, number>()

  private constructor (private readonly socket: Socket, readonly address: string) {}

  static async start (host = '127.0.0.1', port = 0): Promise<TestDnsServer> {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4')
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, host, () => { socket.off('error', reject); resolve() })
    })
    const bound = socket.address()
    const server = new TestDnsServer(socket, host.includes(':') ? `[${host}]:${bound.port}` : `${host}:${bound.port}`)
    socket.on('message', (msg, rinfo) => { server.answer(msg, rinfo.port, rinfo.address) })
    socket.on('error', () => {})
    return server
  }

  /** Sets (replaces) the records of `name`. */
  set (name: string, records: TestRecords): void { this.records.set(normal(name), records) }

  /** `name` no longer exists (NXDOMAIN). */
  remove (name: string): void { this.records.delete(normal(name)) }

  async stop (): Promise<void> {
    await new Promise<void>(resolve => { this.socket.close(() => { resolve() }) })
  }

  private answer (msg: Buffer, port: number, address: string): void {
    let query: dnsPacket.Packet
    try { query = dnsPacket.decode(msg) } catch { return }
    const q = query.questions?.[0]
    if (q === undefined || query.type !== 'query') return
    const name = normal(q.name)
    this.queries.set(name, (this.queries.get(name) ?? 0) + 1)
    const held = this.records.get(name)
    const answers: dnsPacket.Answer[] = []
    if (held !== undefined) {
      if (q.type === 'A') for (const ip of held.a ?? []) answers.push({ type: 'A', name: q.name, ttl: 0, data: ip })
      if (q.type === 'AAAA') for (const ip of held.aaaa ?? []) answers.push({ type: 'AAAA', name: q.name, ttl: 0, data: ip })
      if (q.type === 'SRV') for (const s of held.srv ?? []) answers.push({ type: 'SRV', name: q.name, ttl: 0, data: { target: s.target, port: s.port, priority: 0, weight: 1 } })
    }
    const rd = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED
    const response = dnsPacket.encode({
      id: query.id,
      type: 'response',
      // RCODE 3 (NXDOMAIN) in the flags' low bits for a name this server does not hold.
      flags: dnsPacket.AUTHORITATIVE_ANSWER | rd | (held === undefined ? 3 : 0),
      questions: [q],
      answers: answers.slice(0, MAX_ANSWERS)
    })
    this.socket.send(response, port, address)
  }
}

function normal (name: string): string { return name.toLowerCase().replace(/\.$/, '') }

// As a process of its own (see the header).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:0' } } })
  const m = /^(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(values.listen)
  if (m === null) { process.stderr.write(`dns-server: --listen must be host:port, got ${values.listen}\n`); process.exit(2) }
  const server = await TestDnsServer.start(m[1] ?? m[2], Number(m[3]))
  process.stdout.write(JSON.stringify({ type: 'ready', address: server.address }) + '\n')
  const lines = createInterface({ input: process.stdin })
  lines.on('line', line => {
    let cmd: { set?: string, remove?: string } & TestRecords
    try { cmd = JSON.parse(line) } catch { return }
    if (typeof cmd.set === 'string') server.set(cmd.set, cmd)
    if (typeof cmd.remove === 'string') server.remove(cmd.remove)
    process.stdout.write(JSON.stringify({ type: 'ok' }) + '\n')
  })
  lines.on('close', () => { void server.stop() })
}
