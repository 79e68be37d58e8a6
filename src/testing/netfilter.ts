/**
 * Link faults between test hosts (testing/netns.ts) that a partition on the switch cannot make:
 * non-transitive ones (a bridge, a ring), one-way ones, and random loss. Each is a set of
 * directed drops, "packets from A arriving at B", carried out by nftables inside B's own
 * namespace; this file turns drops into nft scripts and holds the builders of the usual
 * shapes. Pure: `NetnsLab.filter` applies the scripts.
 *
 * A drop happens where the packet arrives (the input hook of the receiving host), never on its
 * way out: a packet refused by the sender's own output hook fails its send() at once with
 * EPERM, which no cut cable or lossy link does. Dropped on arrival, the sender learns nothing
 * and its TCP retransmits as it would on a real link. Only IP packets are matched, so ARP
 * still resolves neighbours: addresses stay known, as with a fault beyond the first hop.
 *
 * Each host has at most one table (`inet conclave`, one input chain), always rewritten whole in
 * one `nft -f` transaction, so a change never passes through a state between the old rule set
 * and the new one. The script first adds the table and then deletes it: `add` is a no-op on an
 * existing table, so the delete never fails and clearing is idempotent.
 */

/** The nft table every host's rules live in. */
export const NFT_TABLE = 'inet conclave'

/** The hosts' link to the switch (see netns.ts): the interface "from any host" matches. */
const LINK = 'eth0'

export interface Drop {
  /** The sending host's index, or `'any'`: every IP packet arriving on the host's link. */
  readonly from: number | 'any'
  /** The receiving host's index: where the rule lives. */
  readonly to: number
  /** The share of these packets dropped, a whole percentage 1..100 (default 100: all). */
  readonly percent?: number
}

/** The link a–b cut: both directions, or with `oneWay` only a's packets to b (b's reach a). */
export function cut (a: number, b: number, oneWay = false): Drop[] {
  if (a === b) throw new RangeError(`cut: a host cannot be cut from itself (host ${a})`)
  return oneWay ? [{ from: a, to: b }] : [{ from: a, to: b }, { from: b, to: a }]
}

/**
 * The groups cannot reach each other (every link between hosts of different groups cut both
 * ways); a host in no group reaches everyone. `apart([[0, 1], [3, 4]])` on 5 hosts is the
 * bridge `{0,1} | 2 | {3,4}`.
 */
export function apart (groups: ReadonlyArray<readonly number[]>): Drop[] {
  const seen = new Set<number>()
  for (const g of groups) for (const h of g) {
    if (seen.has(h)) throw new RangeError(`apart: host ${h} is in two groups`)
    seen.add(h)
  }
  const out: Drop[] = []
  groups.forEach((g, i) => groups.forEach((other, j) => {
    if (j <= i) return
    for (const a of g) for (const b of other) out.push(...cut(a, b))
  }))
  return out
}

/**
 * The majorities ring: each host of `order` reaches only its two neighbours in it (the last
 * and the first are neighbours). At least 4 hosts: in 3, neighbours are everyone.
 */
export function ring (order: readonly number[]): Drop[] {
  const n = order.length
  if (n < 4 || new Set(order).size !== n) throw new RangeError(`ring: expected at least 4 distinct hosts, got [${order.join(', ')}]`)
  const out: Drop[] = []
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const adjacent = j === i + 1 || (i === 0 && j === n - 1)
      if (!adjacent) out.push(...cut(order[i] as number, order[j] as number))
    }
  }
  return out
}

/**
 * One-way loss of host `h` among `count` hosts: with `'send'` nothing it sends arrives
 * anywhere (it still hears everyone); with `'receive'` nothing reaches it (what it sends
 * arrives).
 */
export function oneWay (h: number, side: 'send' | 'receive', count: number): Drop[] {
  if (side === 'receive') return [{ from: 'any', to: h }]
  return others(h, count).map(to => ({ from: h, to }))
}

/**
 * Random loss on each host of `hosts`: `percent` of what it receives and of what it sends is
 * dropped, packet by packet (a packet between two such hosts crosses two lossy links).
 */
export function loss (hosts: readonly number[], percent: number, count: number): Drop[] {
  return hosts.flatMap(h => [{ from: 'any' as const, to: h, percent }, ...others(h, count).map(to => ({ from: h, to, percent }))])
}

function others (h: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => i).filter(i => i !== h)
}

/** The nft rules of each host (by index) for `drops` between hosts at `addresses`. */
export function rulesByHost (drops: readonly Drop[], addresses: readonly string[]): string[][] {
  const rules: string[][] = addresses.map(() => [])
  const host = (i: number, what: string): void => {
    if (!Number.isInteger(i) || i < 0 || i >= addresses.length) throw new RangeError(`${what}: expected a host index 0..${addresses.length - 1}, got ${i}`)
  }
  for (const d of drops) {
    host(d.to, 'drop.to')
    if (d.from !== 'any') host(d.from, 'drop.from')
    if (d.from === d.to) throw new RangeError(`drop: from and to are the same host (${d.to})`)
    const percent = d.percent ?? 100
    if (!Number.isInteger(percent) || percent < 1 || percent > 100) throw new RangeError(`drop.percent: expected a whole number 1..100, got ${percent}`)
    const match = d.from === 'any' ? `iifname "${LINK}"` : `ip saddr ${addresses[d.from] as string}`
    const rule = `${match}${percent < 100 ? ` numgen random mod 100 < ${percent}` : ''} drop`
    const list = rules[d.to] as string[]
    if (!list.includes(rule)) list.push(rule)
  }
  return rules
}

/** The nft script that makes `rules` the host's whole rule set (none: the table is removed). */
export function tableScript (rules: readonly string[]): string {
  const lines = [`add table ${NFT_TABLE}`, `delete table ${NFT_TABLE}`]
  if (rules.length > 0) {
    lines.push(`table ${NFT_TABLE} {`, '  chain input {', '    type filter hook input priority filter; policy accept;',
      ...rules.map(r => `    ${r}`), '  }', '}')
  }
  return lines.join('\n') + '\n'
}
