/** `npm run demo` runs end to end and leaves no process behind. */
import { expect, it } from 'vitest'
import { spawn, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

it('the failover demo kills the coordinator, shows the takeover and the rejoin, and cleans up', async () => {
  const script = fileURLToPath(new URL('../dist/examples/demo.js', import.meta.url))
  const child = spawn(process.execPath, [script, '--cluster', `demotest${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d })
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  expect(code, out).toBe(0)
  expect(out).toMatch(/all three agree on view \d+: alpha \(coordinator\), bravo, charlie/)
  expect(out).toMatch(/bravo took over \d+ ms after the kill: view \d+: bravo \(coordinator\), charlie/)
  expect(out).toMatch(/alpha rejoined as the youngest: view \d+: bravo \(coordinator\), charlie, alpha/)
  expect(out).toContain('done.')
  const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter(l => l.includes(`demotest${process.pid}`))
  expect(left).toEqual([])
}, 60_000)
