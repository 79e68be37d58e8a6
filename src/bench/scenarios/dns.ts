/**
 * dns: members that find each other only through a DNS name (a Kubernetes headless service),
 * served by a DNS server of the benchmark's own on 127.0.0.1 whose records it changes. Each
 * member listens on its own loopback address (127.0.0.2, 127.0.0.3, …) at one port, as pods do
 * on theirs. Per round, the time from a new record to the new member in everyone's view:
 *  - `start`: the record is added and the member's process started at once (a pod created
 *    behind a service with publishNotReadyAddresses): process start, resolution and join;
 *  - `late`: the member already runs alone (it found no record and founded a group of one),
 *    and the record naming it and the others appears: the members' next re-resolution
 *    (`dns.refreshMs`) and the merge of the two groups.
 * The new member leaves (SIGTERM) and its record goes before the next round.
 *
 * Needs the development dependency `dns-packet` (the test DNS server), as in a clone.
 */
import { agreed, freePort, waitUntil, type MemberProcess } from '../../testing/member-process.js'
import { agreedAt } from '../cluster.js'
import { medianP99, summarize } from '../stats.js'
import { checkAborted } from '../context.js'
import { int, listOf, type Scenario } from '../scenario.js'

const CASES = ['start', 'late'] as const
type Case = typeof CASES[number]

interface DnsServer { readonly address: string, set: (name: string, records: { a: readonly string[] }) => void, stop: () => Promise<void> }

async function startDnsServer (): Promise<DnsServer> {
  try {
    const { TestDnsServer } = await import('../../testing/dns-server.js')
    return await TestDnsServer.start('127.0.0.1')
  } catch (err) {
    throw new Error(`the dns scenario needs the test DNS server and its development dependency dns-packet (npm ci in a clone): ${(err as Error).message}`)
  }
}

export const dns: Scenario = {
  name: 'dns',
  summary: 'members found through DNS: a new record → the new member in everyone\'s view',
  flags: {
    members: { default: '3', describe: 'members already running', parse: int(1, 20) },
    rounds: { default: '10', describe: 'new members per case', parse: int(1, 200) },
    cases: { default: 'start,late', describe: `cases: ${CASES.join(', ')}`, parse: listOf(CASES) },
    'refresh-ms': { default: '2000', describe: 'the members\' dns.refreshMs', parse: int(50, 60_000) }
  },
  smoke: { members: '1', rounds: '1', cases: 'start,late', 'refresh-ms': '500' },
  async run (ctx, flags) {
    const size = flags.members as number
    const rounds = flags.rounds as number
    const cases = flags.cases as Case[]
    const refreshMs = flags['refresh-ms'] as number
    const cluster = ctx.cluster('dns')
    const name = `${cluster}.conclave.test`
    const port = await freePort()
    const server = await startDnsServer()
    const samples: Array<{ case: Case, round: number, ms: number }> = []
    ctx.report.settings = { members: size, rounds, cases, refreshMs }
    ctx.report.samples = { records: samples }
    try {
      const spawn = (ip: string): MemberProcess => ctx.spawn({
        cluster,
        listen: `${ip}:${port}`,
        seeds: [`${name}:${port}`],
        extraArgs: ['--dns-server', server.address, '--dns-refresh-ms', String(refreshMs)]
      })
      const ips: string[] = []
      const group: MemberProcess[] = []
      for (let i = 0; i < size; i++) {
        checkAborted(ctx)
        const ip = `127.0.0.${2 + i}`
        ips.push(ip)
        server.set(name, { a: ips })
        const p = spawn(ip)
        await p.waitReady(30_000)
        group.push(p)
        await waitUntil(() => agreed(group, group.length) || ctx.aborted, 15_000, `${group.length} members to agree`)
      }
      ctx.progress.start('dns', rounds * cases.length)
      let serial = 0
      for (const c of cases) {
        for (let r = 1; r <= rounds; r++) {
          checkAborted(ctx)
          const ip = `127.0.0.${100 + (serial++ % 150)}`
          let t0: number
          let joiner: MemberProcess
          if (c === 'start') {
            t0 = Date.now()
            server.set(name, { a: [...ips, ip] })
            joiner = spawn(ip)
          } else {
            // No record yet that the joiner could use: the name exists and is empty.
            server.set(name, { a: [] })
            joiner = spawn(ip)
            await waitUntil(() => joiner.lastView()?.members.length === 1 || ctx.aborted, 15_000, 'the new member to found a group of its own')
            // The record appears at a random point of the members' refresh cycles: the joiner's
            // cycle began at its start, a fixed time before it founded.
            await ctx.sleep(Math.random() * refreshMs)
            checkAborted(ctx)
            t0 = Date.now()
            server.set(name, { a: [...ips, ip] })
          }
          const all = [...group, joiner]
          await waitUntil(() => agreed(all, all.length) || ctx.aborted, 20_000, 'the new member in every view')
          checkAborted(ctx)
          const ms = agreedAt(all) - t0
          samples.push({ case: c, round: r, ms })
          ctx.progress.tick(`${c}: ${ms} ms`)
          await joiner.stop(3000)
          server.set(name, { a: ips })
          await waitUntil(() => agreed(group, group.length) || ctx.aborted, 10_000, 'the new member to leave')
          await ctx.sleep(100 + Math.random() * 200)
        }
      }
    } finally {
      await server.stop()
    }
    ctx.report.figures = cases.map(c => ({
      figure: c === 'start'
        ? `new DNS record + member start → in every view (${size} + 1 members)`
        : `new DNS record for a member running alone → in every view (refreshMs ${refreshMs})`,
      unit: 'ms',
      ...medianP99(summarize(samples.filter(s => s.case === c).map(s => s.ms)))
    }))
  }
}
