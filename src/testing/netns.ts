/**
 * Test hosts on one machine: Linux network namespaces, each with its own address on a private
 * switch, so that tests can cut real links between real member processes. The switch is a
 * namespace of its own holding one bridge per side of a partition; a host's link is a veth
 * pair from its namespace to a bridge port. `partition` moves ports between bridges, `heal`
 * moves them all back: packets between sides are dropped silently, as on a cut cable, and
 * TCP connections survive a short cut (their retransmissions get through after the heal).
 * Nothing touches the machine's own namespace; `destroy()` (also run on exit) deletes the
 * namespaces, which deletes every link and bridge in them.
 *
 * Needs root and iproute2 (`ip`). `netnsUnavailable()` says why it cannot run here.
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'

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

/** Undefined when network namespaces can be made here; otherwise the reason they cannot. */
export async function netnsUnavailable (): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const probe = `cnvprobe${process.pid % 100000}`
  try {
    await run('ip', ['netns', 'add', probe])
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    return e.code === 'ENOENT' ? 'iproute2 (`ip`) is not installed' : `ip netns add failed: ${(e.stderr ?? e.message).trim()}`
  }
  await run('ip', ['netns', 'del', probe]).catch(() => {})
  return undefined
}

export class NetnsLab {
  readonly hosts: readonly TestHost[]
  private readonly switchNs: string
  private readonly namespaces: string[]
  private destroyed = false

  private constructor (private readonly tag: string, count: number) {
    this.switchNs = `${tag}sw`
    this.hosts = Array.from({ length: count }, (_, i) => ({ ns: `${tag}h${i}`, address: `10.77.0.${i + 1}` }))
    this.namespaces = [this.switchNs, ...this.hosts.map(h => h.ns)]
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

  /** Reconnects every host. */
  async heal (): Promise<void> {
    for (let i = 0; i < this.hosts.length; i++) await ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'master', 'br0')
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

async function ip (...args: string[]): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`)
  }
}
