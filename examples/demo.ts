/**
 * `npm run demo`: a live failover on this machine. Three `conclave member` processes join on
 * 127.0.0.1; the demo kills the coordinator with SIGKILL, shows the survivors' new view and how
 * long the takeover took, restarts the killed member (it rejoins as the youngest), and stops
 * everything gracefully. Every process it starts is stopped before it exits.
 *
 *   node dist/examples/demo.js [--cluster demo] [--base-port 7401]
 */
import '../src/polyfill.js'
import { parseArgs } from 'node:util'
import { MemberProcess, agreed, waitUntil as until, type ViewEvent } from '../src/testing/member-process.js'
import { wallClockMs } from '../src/clock.js'

const { values } = parseArgs({ options: { cluster: { type: 'string', default: 'demo' }, 'base-port': { type: 'string', default: '0' } } })
const basePort = Number(values['base-port'])
const cluster = `${values.cluster ?? 'demo'}-${process.pid}`
const procs: MemberProcess[] = []
const say = (text: string): void => { process.stdout.write(`${text}\n`) }

function start (name: string, index: number, seeds: string[]): MemberProcess {
  const listen = basePort > 0 ? `127.0.0.1:${basePort + index}` : '127.0.0.1:0'
  const p = new MemberProcess({ cluster, name, listen, seeds })
  procs.push(p)
  return p
}


function show (v: ViewEvent | undefined): string {
  if (v === undefined) return '(no view)'
  return `view ${v.epoch}: ${v.members.map((m, i) => i === 0 ? `${m.name} (coordinator)` : m.name).join(', ')}`
}

async function main (): Promise<void> {
  say(`Conclave demo: cluster "${cluster}" on 127.0.0.1\n`)
  const a = start('alpha', 0, [])
  await a.waitReady()
  say(`started alpha   ${a.address}`)
  const seed = [a.address as string]
  for (const [i, name] of [[1, 'bravo'], [2, 'charlie']] as const) {
    const p = start(name, i, seed)
    await p.waitReady()
    say(`started ${name.padEnd(7)} ${p.address}`)
    await until(() => agreed(procs, procs.length), 10_000, `${name} to join`)
  }
  say(`\nall three agree on ${show(a.lastView())}\n`)
  await new Promise(resolve => setTimeout(resolve, 1000))

  const [victim, ...survivors] = procs as [MemberProcess, ...MemberProcess[]]
  const marks = survivors.map(p => p.events.length)
  say(`killing the coordinator, ${victim.name}, with SIGKILL ...`)
  const t0 = wallClockMs()
  victim.kill('SIGKILL')
  await until(() => survivors.some((p, i) => p.events.slice(marks[i]).some(e => e.type === 'view' && (e as ViewEvent).isCoordinator)), 10_000, 'a new coordinator')
  const winner = survivors.find((p, i) => p.events.slice(marks[i]).some(e => e.type === 'view' && (e as ViewEvent).isCoordinator)) as MemberProcess
  const claim = winner.events.find((e, i) => i >= (marks[survivors.indexOf(winner)] ?? 0) && e.type === 'view' && (e as ViewEvent).isCoordinator) as ViewEvent
  await until(() => agreed(survivors, survivors.length), 10_000, 'the survivors to agree')
  say(`${winner.name} took over ${(claim.ts - t0).toFixed(0)} ms after the kill: ${show(winner.lastView())}\n`)

  say(`restarting ${victim.name} ...`)
  const again = start(victim.name, 0, survivors.map(p => p.address as string))
  await again.waitReady()
  const group = [...survivors, again]
  await until(() => agreed(group, group.length), 10_000, `${victim.name} to rejoin`)
  say(`${victim.name} rejoined as the youngest: ${show(again.lastView())}\n`)

  say('stopping everyone gracefully (each leaves the group first) ...')
  for (const p of group) await p.stop()
  say('done.')
}

main().catch(err => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}).finally(() => {
  for (const p of procs) if (p.running) p.kill('SIGKILL')
})
