/**
 * The lab's link faults (testing/netfilter.ts): the nft rules each builder makes, and, between
 * real network namespaces, what they do to traffic. A small agent on each host answers TCP
 * (connect and echo: needs both directions) and counts UDP datagrams (one direction at a
 * time). Needs root, iproute2 and nftables (see netns-gate.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { NetnsLab } from '../src/testing/netns.js'
import { apart, cut, loss, oneWay, ring, rulesByHost, tableScript } from '../src/testing/netfilter.js'
import { netnsGate } from './netns-gate.js'

const unavailable = await netnsGate('netfilter lab tests', { nftables: true })

const ADDR = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']

describe('link fault rules', () => {
  it('drops happen on arrival: the rule lives on the receiving host', () => {
    expect(rulesByHost(cut(0, 1, true), ADDR.slice(0, 3))).toEqual([[], ['ip saddr 10.0.0.1 drop'], []])
    expect(rulesByHost(cut(0, 1), ADDR.slice(0, 3))).toEqual([['ip saddr 10.0.0.2 drop'], ['ip saddr 10.0.0.1 drop'], []])
  })

  it('a bridge cuts every link between the groups and none of the middle host', () => {
    const rules = rulesByHost(apart([[0, 1], [3, 4]]), ADDR)
    expect(rules[2]).toEqual([])
    expect(rules[0]).toEqual(['ip saddr 10.0.0.4 drop', 'ip saddr 10.0.0.5 drop'])
    expect(rules[4]).toEqual(['ip saddr 10.0.0.1 drop', 'ip saddr 10.0.0.2 drop'])
  })

  it('a ring leaves each host its two neighbours', () => {
    const rules = rulesByHost(ring([0, 2, 4, 1, 3]), ADDR)
    // 0's neighbours are 2 and 3: it drops 1 and 4
    expect([...(rules[0] as string[])].sort()).toEqual(['ip saddr 10.0.0.2 drop', 'ip saddr 10.0.0.5 drop'])
    expect(rules.every(r => r.length === 2)).toBe(true)
    expect(() => ring([0, 1, 2])).toThrow(/at least 4/)
  })

  it('one-way loss, random loss, and what is refused', () => {
    expect(rulesByHost(oneWay(1, 'receive', 3), ADDR.slice(0, 3))).toEqual([[], ['iifname "eth0" drop'], []])
    expect(rulesByHost(oneWay(1, 'send', 3), ADDR.slice(0, 3))).toEqual([['ip saddr 10.0.0.2 drop'], [], ['ip saddr 10.0.0.2 drop']])
    expect(rulesByHost(loss([0], 25, 2), ADDR.slice(0, 2))).toEqual([
      ['iifname "eth0" numgen random mod 100 < 25 drop'],
      ['ip saddr 10.0.0.1 numgen random mod 100 < 25 drop']
    ])
    expect(() => rulesByHost([{ from: 0, to: 0 }], ADDR)).toThrow(/same host/)
    expect(() => rulesByHost([{ from: 0, to: 9 }], ADDR)).toThrow(/host index/)
    expect(() => rulesByHost([{ from: 0, to: 1, percent: 0 }], ADDR)).toThrow(/percent/)
  })

  it('each host gets one table, replaced whole; no rules remove it', () => {
    expect(tableScript([])).toBe('add table inet conclave\ndelete table inet conclave\n')
    expect(tableScript(['ip saddr 10.0.0.1 drop'])).toContain('type filter hook input priority filter; policy accept;\n    ip saddr 10.0.0.1 drop\n')
  })
})

/** Runs on a host: TCP echo on :7300, UDP counter on :7301; commands as JSON lines on stdin. */
const AGENT = `
import net from 'node:net'
import dgram from 'node:dgram'
import readline from 'node:readline'
const [addr] = process.argv.slice(1)
const say = o => process.stdout.write(JSON.stringify(o) + '\\n')
const tcp = net.createServer(s => s.pipe(s)).listen(7300, addr)
const udp = dgram.createSocket('udp4')
let received = {}
udp.on('message', (_m, r) => { received[r.address] = (received[r.address] ?? 0) + 1 })
udp.bind(7301, addr)
const sender = dgram.createSocket('udp4')
sender.bind(0, addr)
await Promise.all([new Promise(r => tcp.once('listening', r)), new Promise(r => udp.once('listening', r)), new Promise(r => sender.once('listening', r))])
readline.createInterface({ input: process.stdin }).on('line', async line => {
  const c = JSON.parse(line)
  if (c.op === 'tcp') {
    const ok = await new Promise(resolve => {
      const s = net.connect({ host: c.to, port: 7300, localAddress: addr })
      const t = setTimeout(() => { s.destroy(); resolve(false) }, c.timeoutMs)
      s.once('error', () => { clearTimeout(t); resolve(false) })
      s.once('connect', () => s.write('ping'))
      s.once('data', d => { clearTimeout(t); s.destroy(); resolve(String(d) === 'ping') })
    })
    say({ id: c.id, ok })
  } else if (c.op === 'udp') {
    for (let i = 0; i < c.count; i++) {
      await new Promise(r => sender.send('x', 7301, c.to, r))
      if (i % 50 === 49) await new Promise(r => setTimeout(r, 1))
    }
    say({ id: c.id })
  } else if (c.op === 'received') {
    say({ id: c.id, received })
    received = {}
  }
})
say({ ready: true })
`

class Agent {
  private readonly child: ChildProcess
  private readonly pending = new Map<number, (r: Record<string, unknown>) => void>()
  private nextId = 0
  readonly ready: Promise<void>

  constructor (readonly address: string, ns: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', AGENT, address], { stdio: ['pipe', 'pipe', 'inherit'] })
    let started: () => void = () => {}
    this.ready = new Promise(resolve => { started = resolve })
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', line => {
      const r = JSON.parse(line) as Record<string, unknown>
      if (r.ready === true) started()
      else this.pending.get(r.id as number)?.(r)
    })
  }

  private async ask (c: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++
    return await new Promise(resolve => {
      this.pending.set(id, resolve)
      this.child.stdin?.write(JSON.stringify({ ...c, id }) + '\n')
    })
  }

  /** Connects to `to` and gets an echo back within `timeoutMs`. */
  async reaches (to: Agent, timeoutMs = 600): Promise<boolean> { return (await this.ask({ op: 'tcp', to: to.address, timeoutMs })).ok === true }
  async sendUdp (to: Agent, count: number): Promise<void> { await this.ask({ op: 'udp', to: to.address, count }) }
  /** Datagrams received since the last call, by sender address. */
  async received (): Promise<Record<string, number>> { return (await this.ask({ op: 'received' })).received as Record<string, number> }
  stop (): void { this.child.kill('SIGKILL') }
}

describe.skipIf(unavailable !== undefined)('link faults between network namespaces', () => {
  let lab: NetnsLab
  let agents: Agent[]
  /** Datagrams `count` from a to b and from b to a; what arrived each way. */
  const udpBothWays = async (a: Agent, b: Agent, count: number): Promise<[number, number]> => {
    await Promise.all([a.sendUdp(b, count), b.sendUdp(a, count)])
    await new Promise(resolve => setTimeout(resolve, 150))
    const [atA, atB] = await Promise.all([a.received(), b.received()])
    return [atB[a.address] ?? 0, atA[b.address] ?? 0]
  }
  const pairs = (): Array<[number, number]> => [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]
  const reach = async (): Promise<string[]> => {
    const results = await Promise.all(pairs().map(async ([a, b]) => await (agents[a] as Agent).reaches(agents[b] as Agent)))
    return pairs().filter((_, i) => results[i]).map(([a, b]) => `${a}>${b}`)
  }
  const tables = (ns: string): string => execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'], { encoding: 'utf8' }).trim()

  beforeAll(async () => {
    lab = await NetnsLab.create(3)
    agents = lab.hosts.map(h => new Agent(h.address, h.ns))
    await Promise.all(agents.map(async a => await a.ready))
  })
  afterAll(async () => {
    for (const a of agents ?? []) a.stop()
    await lab?.destroy()
  })

  it('a one-way cut drops one direction only; the bridge lets the middle reach both sides; heal restores all', async () => {
    const [a0, a1, a2] = agents as [Agent, Agent, Agent]
    expect(await reach()).toEqual(['0>1', '0>2', '1>0', '1>2', '2>0', '2>1'])

    await lab.filter(cut(0, 1, true))
    expect(await udpBothWays(a0, a1, 50)).toEqual([0, 50])
    expect(tables(lab.hosts[1]?.ns as string)).toBe('table inet conclave')
    expect(tables(lab.hosts[0]?.ns as string)).toBe('')

    await lab.filter(apart([[0], [2]]))
    expect(await reach()).toEqual(['0>1', '1>0', '1>2', '2>1'])

    await lab.filter(oneWay(2, 'send', 3))
    expect(await udpBothWays(a2, a0, 50)).toEqual([0, 50])
    await lab.filter(oneWay(2, 'receive', 3))
    expect(await udpBothWays(a2, a0, 50)).toEqual([50, 0])

    await lab.heal()
    expect(await reach()).toEqual(['0>1', '0>2', '1>0', '1>2', '2>0', '2>1'])
    expect(lab.hosts.map(h => tables(h.ns))).toEqual(['', '', ''])
  })

  it('random loss drops about the share asked; clearing is idempotent; destroy takes the rules along', async () => {
    const [a0, a1] = agents as [Agent, Agent]
    await lab.filter(loss([1], 30, 3))
    const count = 600
    const [toLossy, fromLossy] = await udpBothWays(a0, a1, count)
    for (const arrived of [toLossy, fromLossy]) {
      expect(1 - arrived / count).toBeGreaterThan(0.2)
      expect(1 - arrived / count).toBeLessThan(0.4)
    }
    await lab.unfilter()
    await lab.unfilter()
    expect(await udpBothWays(a0, a1, 50)).toEqual([50, 50])
    await lab.filter(cut(0, 2))
    const names = lab.hosts.map(h => h.ns)
    await lab.destroy()
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    expect(names.filter(n => left.includes(n))).toEqual([])
  })
})
