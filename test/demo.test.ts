/**
 * `npm run demo` (the seed scenario) runs end to end with short timings: the client follows the
 * master across a SIGKILL, the killed server rejoins as standby, and no process is left behind.
 */
import { expect, it } from 'vitest'
import { spawn, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '../src/testing/member-process.js'


it('the demo: the client switches to the new master after a kill, the killed server rejoins as standby, all cleaned up', async () => {
  const script = fileURLToPath(new URL('../dist/examples/demo.js', import.meta.url))
  const [p1, p2] = [await freePort(), await freePort()]
  const tag = `demotest${process.pid}`
  const child = spawn(process.execPath, [script, '--cluster', tag, '--ports', `${p1},${p2}`, '--warmup-ms', '1000', '--after-ms', '600'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  expect(code, out).toBe(0)
  expect(out).toContain(`server-${p1} started: master, serving http://127.0.0.1:${p1}/`)
  expect(out).toContain(`server-${p2} started: standby`)
  expect(out).toMatch(new RegExp(`client: 200 from server-${p1} \\(fencing epoch \\d+\\)`))
  expect(out).toContain(`killing the master, server-${p1}, with SIGKILL`)
  expect(out).toMatch(new RegExp(`the client now talks to server-${p2}: \\d+ ms from the kill`))
  expect(out).toMatch(new RegExp(`client: 200 from server-${p2}`))
  expect(out).toContain(`server-${p1} restarted: it rejoined as standby (server-${p2} stays master)`)
  // calls are retried on the new master: none fails across the failover
  expect(out).toMatch(/summary: \d+ calls answered \(.*\), 0 failed;/)
  expect(out).toContain('done.')
  const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter(l => l.includes(tag))
  expect(left).toEqual([])
}, 60_000)
