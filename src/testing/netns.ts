/**
 * Test hosts on one machine: Linux network namespaces, each with its own address on a private
 * switch, so that tests can cut real links between real member processes. The switch is a
 * namespace of its own holding one bridge per side of a partition; a host's link is a veth
 * pair from its namespace to a bridge port. `partition` moves ports between bridges, `heal`
 * moves them all back: packets between sides are dropped silently, as on a cut cable, and
 * TCP connections survive a short cut (their retransmissions get through after the heal).
 * Faults a switch cannot make (one-way, non-transitive, lossy links) are nftables drop rules
 * inside the host namespaces (`filter`, see testing/netfilter.ts); `heal` removes those too.
 * Nothing touches the machine's own namespace; `destroy()` (also run on exit) deletes the
 * namespaces, which deletes every link, bridge and rule in them.
 *
 * Needs root and iproute2 (`ip`), and nftables (`nft`) for `filter`. `netnsUnavailable()` says
 * why it cannot run here.
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { rulesByHost, tableScript, type Drop } from './netfilter.js'

const run = promisify(execFile)

export interface TestHost {
  /** The namespace name, for `ip netns exec`. */
  readonly ns: string
  /** This host's IPv4 address on the switch. */
  readonly address: string
}

let counter = 0
const live = new Set<NetnsLab>()
let exitHook = false

/**
 * Undefined when network namespaces can be made here (and with `nftables`, given rules in
 * them: `NetnsLab.filter`); otherwise the reason they cannot.
 */
export async function netnsUnavailable (opts: { nftables?: boolean } = {}): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const probe = `cnvprobe${process.pid % 100000}`
  try {
    await run('ip', ['netns', 'add', probe])
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    return e.code === 'ENOENT' ? 'iproute2 (`ip`) is not installed' : `ip netns add failed: ${(e.stderr ?? e.message).trim()}`
  }
  try {
    if (opts.nftables === true) await nft(probe, tableScript(['ip saddr 10.77.0.1 drop']))
    return undefined
  } catch (err) {
    const e = err as Error
    return /ENOENT|not found|No such file/i.test(e.message) ? 'nftables (`nft`) is not installed' : e.message
  } finally {
    await run('ip', ['netns', 'del', probe]).catch(() => {})
  }
}

export class NetnsLab {
  readonly hosts: readonly TestHost[]
  private readonly switchNs: string
  private readonly namespaces: string[]
  /** Each host's nft rules as last applied (testing/netfilter.ts); empty: no table. */
  private rules: string[][]
  private destroyed = false

  private constructor (private readonly tag: string, count: number) {
    this.switchNs = `${tag}sw`
    this.hosts = Array.from({ length: count }, (_, i) => ({ ns: `${tag}h${i}`, address: `10.77.0.${i + 1}` }))
    this.namespaces = [this.switchNs, ...this.hosts.map(h => h.ns)]
    this.rules = this.hosts.map(() => [])
  }

  /** Creates `count` hosts (at most 200) on one switch, all connected. */
  static async create (count: number): Promise<NetnsLab> {
    if (!Number.isInteger(count) || count < 1 || count > 200) throw new RangeError(`count must be 1..200, got ${count}`)
    const lab = new NetnsLab(`cnv${process.pid % 100000}n${counter++}`, count)
    live.add(lab)
    if (!exitHook) {
      exitHook = true
      process.once('exit', () => { for (const l of live) l.destroySync() })
    }
    try {
      await lab.build()
    } catch (err) {
      await lab.destroy()
      throw err
    }
    return lab
  }

  private async build (): Promise<void> {
    const sw = this.switchNs
    for (const ns of this.namespaces) await ip('netns', 'add', ns)
    await ip('-n', sw, 'link', 'set', 'lo', 'up')
    // One bridge per possible side; every port starts on br0.
    for (let b = 0; b < this.hosts.length; b++) {
      await ip('-n', sw, 'link', 'add', `br${b}`, 'type', 'bridge')
      await ip('-n', sw, 'link', 'set', `br${b}`, 'up')
    }
    for (let i = 0; i < this.hosts.length; i++) {
      const host = this.hosts[i] as TestHost
      await ip('-n', sw, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns)
      await ip('-n', sw, 'link', 'set', `p${i}`, 'master', 'br0')
      await ip('-n', sw, 'link', 'set', `p${i}`, 'up')
      await ip('-n', host.ns, 'link', 'set', 'lo', 'up')
      await ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0')
      await ip('-n', host.ns, 'link', 'set', 'eth0', 'up')
      // Multicast (mDNS) needs a route; the switch is the only place it can go.
      await ip('-n', host.ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
    }
  }

  /**
   * Cuts the switch into sides: `sides` lists host indexes; hosts in no side form one more side
   * together. Hosts reach only the hosts of their own side.
   */
  async partition (sides: ReadonlyArray<readonly number[]>): Promise<void> {
    const sideOf = new Map<number, number>()
    sides.forEach((side, s) => { for (const i of side) sideOf.set(i, s) })
    for (let i = 0; i < this.hosts.length; i++) {
      await ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'master', `br${sideOf.get(i) ?? sides.length}`)
    }
  }

  /**
   * Makes `drops` the whole set of link faults (testing/netfilter.ts builds them: `cut`,
   * `apart`, `ring`, `oneWay`, `loss`): every host whose rules change gets its new rule set in
   * one transaction, all hosts at once. `filter([])` removes every rule the lab set.
   */
  async filter (drops: readonly Drop[]): Promise<void> {
    const next = rulesByHost(drops, this.hosts.map(h => h.address))
    await Promise.all(this.hosts.map(async (host, i) => {
      const rules = next[i] as string[]
      if (rules.join('\n') === (this.rules[i] as string[]).join('\n')) return
      await nft(host.ns, tableScript(rules))
      this.rules[i] = rules
    }))
  }

  /** Removes the nft rules of every host, whatever this lab believes is there. Idempotent. */
  async unfilter (): Promise<void> {
    await Promise.all(this.hosts.map(async (host, i) => {
      await nft(host.ns, tableScript([]))
      this.rules[i] = []
    }))
  }

  /** Reconnects every host: every port back on one bridge, and the nft rules set by `filter` gone. */
  async heal (): Promise<void> {
    for (let i = 0; i < this.hosts.length; i++) await ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'master', 'br0')
    if (this.rules.some(r => r.length > 0)) await this.filter([])
  }

  /** Deletes the namespaces and with them every link and bridge. Idempotent. */
  async destroy (): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    live.delete(this)
    for (const ns of this.namespaces) await run('ip', ['netns', 'del', ns]).catch(() => {})
  }

  private destroySync (): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const ns of this.namespaces) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* already gone */ }
    }
  }

  /** The command prefix that runs a program on `host`. */
  execPrefix (host: TestHost): string[] {
    return ['ip', 'netns', 'exec', host.ns]
  }

  toString (): string { return `NetnsLab(${this.tag}, ${this.hosts.length} hosts)` }
}

/** Runs an nft script inside namespace `ns`. */
async function nft (ns: string, script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], (err, _stdout, stderr) => {
      if (err === null) resolve()
      else reject(new Error(`nft in ${ns}: ${(stderr.trim() !== '' ? stderr : err.message).trim()}`))
    })
    child.stdin?.end(script)
  })
}

async function ip (...args: string[]): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`)
  }
}
