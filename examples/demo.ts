/**
 * `npm run demo`: the seed scenario, live on this machine. Two servers of cluster "FD" publish
 * http://127.0.0.1:9090/ and :9191/; only the master serves its HTTP route. A client follows
 * the master and calls it every 200 ms, printing which server answered. The demo kills the
 * master with SIGKILL, the client moves to the other server by itself, the demo prints the gap,
 * restarts the killed server (it rejoins as standby) and ends with a summary. Every process it
 * starts is stopped before it exits.
 *
 *   node dist/examples/demo.js [--ports 9090,9191] [--warmup-ms 3000] [--after-ms 3000] [--interval 200]
 */
import { parseArgs } from 'node:util'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { MemberProcess, waitUntil as until, type MemberEvent } from '../src/testing/member-process.js'
import { wallClockMs } from '../src/clock.js'

const { values } = parseArgs({
  options: {
    ports: { type: 'string', default: '9090,9191' },
    cluster: { type: 'string', default: 'FD' },
    'warmup-ms': { type: 'string', default: '3000' },
    'after-ms': { type: 'string', default: '3000' },
    interval: { type: 'string', default: '200' }
  }
})
const ports = (values.ports ?? '').split(',').map(Number)
const warmupMs = Number(values['warmup-ms'])
const afterMs = Number(values['after-ms'])
const interval = String(values.interval)
if (ports.length !== 2 || !ports.every(p => Number.isInteger(p) && p > 0 && p < 65536)) fail(`--ports needs two ports, e.g. 9090,9191; got "${values.ports}"`)
if (!(warmupMs >= 0) || !(afterMs >= 0)) fail('--warmup-ms and --after-ms need a number of milliseconds')
// The cluster name is made unique per run, so a stray process of an earlier run cannot join.
const cluster = `${values.cluster ?? 'FD'}-${process.pid}`
const SERVER = fileURLToPath(new URL('./http-server.js', import.meta.url))
const CLIENT = fileURLToPath(new URL('./http-client.js', import.meta.url))
const procs: MemberProcess[] = []
const t0 = Date.now()
const clock = (ts: number = Date.now()): string => `${((ts - t0) / 1000).toFixed(1).padStart(5)}s`
const say = (text: string): void => { process.stdout.write(`${clock()}  ${text}\n`) }

function fail (message: string): never {
  process.stderr.write(`demo: ${message}\n`)
  process.exit(2)
}

async function portFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const probe = createServer().once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

function server (port: number, seeds: string[]): MemberProcess {
  const p = new MemberProcess({ cluster, name: `server-${port}`, seeds, script: SERVER, extraArgs: ['--port', String(port)] })
  procs.push(p)
  return p
}

const viewSize = (p: MemberProcess): number => (([...p.events].reverse().find(e => e.type === 'view')?.members as unknown[] | undefined) ?? []).length
const serving = (p: MemberProcess): boolean => {
  const last = [...p.events].reverse().find(e => e.type === 'route')
  return last?.event === 'started'
}

async function main (): Promise<void> {
  for (const port of ports) if (!await portFree(port)) fail(`port ${port} is in use; pick others with --ports, e.g. --ports 9290,9391`)
  process.stdout.write(`Conclave failover demo: cluster "${cluster}", two servers and a client on 127.0.0.1\n\n`)

  const [portA, portB] = ports as [number, number]
  const a = server(portA, [])
  await a.waitReady()
  await until(() => serving(a), 10_000, `${a.name} to serve`)
  say(`${a.name} started: master, serving http://127.0.0.1:${portA}/`)
  const b = server(portB, [a.address as string])
  await b.waitReady()
  await until(() => viewSize(a) === 2 && viewSize(b) === 2, 10_000, `${b.name} to join`)
  say(`${b.name} started: standby (port ${portB} closed until it is master)`)

  const client = new MemberProcess({ cluster, name: 'client', seeds: [a.address as string, b.address as string], script: CLIENT, extraArgs: ['--interval', interval] })
  procs.push(client)
  let printed = 0
  const answers = (): MemberEvent[] => client.events.filter(e => e.type === 'answer' || e.type === 'failed')
  const printer = setInterval(() => {
    for (const e of answers().slice(printed)) {
      process.stdout.write(`${clock(e.ts)}  client: ${e.type === 'answer' ? `${String(e.status)} from ${String(e.server)} (fencing epoch ${String(e.epoch)})` : `call failed: ${String(e.error)}`}\n`)
    }
    printed = answers().length
  }, 50)
  try {
    await client.waitReady()
    await until(() => answers().length > 0, 10_000, 'the client\'s first answer')
    await new Promise(resolve => setTimeout(resolve, warmupMs))

    const master = [a, b].find(serving) as MemberProcess
    const standby = master === a ? b : a
    say(`killing the master, ${master.name}, with SIGKILL`)
    const killedAt = wallClockMs()
    master.kill('SIGKILL')
    await until(() => client.events.some(e => e.type === 'answer' && e.server === standby.name && e.ts >= killedAt), 15_000, `an answer from ${standby.name}`)
    const first = client.events.find(e => e.type === 'answer' && e.server === standby.name && e.ts >= killedAt) as MemberEvent
    await new Promise(resolve => setTimeout(resolve, 100))
    say(`the client now talks to ${standby.name}: ${(first.ts - killedAt).toFixed(0)} ms from the kill to its first answer from the new master`)

    const port = master === a ? portA : portB
    const again = server(port, [standby.address as string])
    await again.waitReady()
    await until(() => viewSize(again) === 2 && viewSize(standby) === 2, 10_000, `${again.name} to rejoin`)
    say(`${again.name} restarted: it rejoined as standby (${standby.name} stays master)`)
    await new Promise(resolve => setTimeout(resolve, afterMs))

    await client.stop()
    clearInterval(printer)
    for (const e of answers().slice(printed)) process.stdout.write(`${clock(e.ts)}  client: ${e.type === 'answer' ? `${String(e.status)} from ${String(e.server)}` : `call failed: ${String(e.error)}`}\n`)
    const ok = client.events.filter(e => e.type === 'answer')
    const failed = client.events.filter(e => e.type === 'failed')
    const by = (name: string): number => ok.filter(e => e.server === name).length
    process.stdout.write(`\nsummary: ${ok.length} calls answered (${master.name}: ${by(master.name)} before the kill, ${standby.name}: ${by(standby.name)} after), ${failed.length} failed;\n` +
      `         failover seen by the client: ${(first.ts - killedAt).toFixed(0)} ms; master now ${standby.name}; ${again.name} is standby.\n`)
    say('stopping the servers gracefully')
    await Promise.all([again.stop(), standby.stop()])
    say('done.')
  } finally {
    clearInterval(printer)
  }
}

main().catch(err => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}).finally(() => {
  for (const p of procs) if (p.running) p.kill('SIGKILL')
})
