/**
 * The package as a user gets it: `npm pack`, then `npm install` of the tarball into a fresh ESM
 * project with no lock file, as a service would. From that install: what was installed (size,
 * count, versions against the lock file the tests ran with), what the package points to
 * (LICENSE, README links, source maps), imports from ESM, CommonJS and TypeScript (NodeNext),
 * and the README's "Install in your service" snippet run as three processes, its master killed.
 *
 * Runs with CONCLAVE_PACK_TEST=1 (`.ci/run` and `npm run test:pack` set it; about a minute):
 * `npm install` asks the npm registry for package metadata (`--prefer-offline`: npm's cache
 * first), the one request of the suite that leaves the machine, because a consumer's install
 * does. The members themselves listen on 127.0.0.1 only. Needs `npm run build` first (as
 * `npm test` does); it packs the built files and never rebuilds them, since other test files
 * run them at the same time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const enabled = process.env.CONCLAVE_PACK_TEST === '1'
if (!enabled) console.warn('package.pack.test.ts skipped: set CONCLAVE_PACK_TEST=1 (npm run test:pack) to pack and install the package')

/** Packages that belong to the repository's development only: a consumer must not get them. */
const DEV_ONLY = ['vega', 'vega-lite', 'd3-scale', 'd3-geo', 'prom-client', 'cli-progress', 'typescript', 'vitest', 'fast-check', '@types/node']

interface Installed { readonly name: string, readonly version: string, readonly dir: string }

let work = ''
let project = ''
let pkgDir = ''

function run (cmd: string, args: readonly string[], cwd: string, timeoutMs = 120_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${String(r.status ?? r.signal)}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** Every package under `node_modules` (hoisted and nested), read from its package.json. */
function installedPackages (root: string): Installed[] {
  const out: Installed[] = []
  const visit = (modules: string): void => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue
      const dirs = entry.startsWith('@') ? readdirSync(join(modules, entry)).map(e => join(modules, entry, e)) : [join(modules, entry)]
      for (const dir of dirs) {
        const manifest = join(dir, 'package.json')
        if (!existsSync(manifest)) continue
        const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string, version: string }
        out.push({ name, version, dir })
        visit(join(dir, 'node_modules'))
      }
    }
  }
  visit(join(root, 'node_modules'))
  return out
}

function apparentBytes (dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += apparentBytes(path)
    else if (entry.isFile()) total += statSync(path).size
  }
  return total
}

/** The README's service snippet: the TypeScript block that starts with `// service.ts:`. */
function readmeService (): string {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8')
  const m = /```ts\n(\/\/ service\.ts:[\s\S]*?)```/.exec(readme)
  if (m === null) throw new Error('README.md has no "// service.ts:" snippet')
  return m[1] as string
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

interface ServiceLine { readonly event: string, readonly id: string, readonly [k: string]: unknown }

/** One `node service.js` process and the JSON lines it printed. */
class Service {
  readonly lines: ServiceLine[] = []
  stderr = ''
  readonly exited: Promise<number | null>
  private readonly waiters = new Set<() => void>()
  readonly child: ChildProcess

  constructor (cwd: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, ['service.js'], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.stderr += d })
    createInterface({ input: this.child.stdout! }).on('line', line => {
      try { this.lines.push(JSON.parse(line) as ServiceLine) } catch { this.lines.push({ event: 'text', id: '', line }) }
      for (const w of this.waiters) w()
    })
    this.exited = new Promise(resolve => this.child.once('exit', code => { resolve(code); for (const w of this.waiters) w() }))
  }

  get id (): string | undefined { return this.lines.find(l => l.id !== '')?.id }
  /** Whether its route runs now: a `started` after the last `stopped`. */
  get master (): boolean {
    const last = [...this.lines].reverse().find(l => l.event === 'started' || l.event === 'stopped')
    return last?.event === 'started'
  }

  lastView (): ServiceLine | undefined { return [...this.lines].reverse().find(l => l.event === 'view') }

  async until (what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
    if (ok()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(check); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; lines: ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`)) }, timeoutMs)
      const check = (): void => { if (ok()) { clearTimeout(timer); this.waiters.delete(check); resolve() } }
      this.waiters.add(check)
    })
  }
}

describe.skipIf(!enabled)('the package, packed and installed into a fresh project', () => {
  const services: Service[] = []

  beforeAll(() => {
    if (!existsSync(join(repo, 'dist', 'src', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first')
    work = mkdtempSync(join(tmpdir(), 'conclave-pack-'))
    // The files were built by `npm run build`; prepack would rebuild them under running tests.
    const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], repo)) as Array<{ filename: string }>
    const tarball = join(work, (packed[0] as { filename: string }).filename)
    project = join(work, 'service')
    run('mkdir', ['-p', project], work)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'orders-service', version: '1.0.0', private: true, type: 'module' }, null, 2))
    run('npm', ['install', '--prefer-offline', '--no-package-lock', tarball], project, 150_000)
    pkgDir = join(project, 'node_modules', 'conclave')
  }, 180_000)

  afterAll(async () => {
    for (const s of services) s.child.kill('SIGKILL')
    await Promise.all(services.map(async s => await s.exited))
    if (work !== '') rmSync(work, { recursive: true, force: true })
  })

  it('installs the runtime only, and only versions the tests ran with', () => {
    const installed = installedPackages(project)
    const bytes = apparentBytes(join(project, 'node_modules'))
    console.log(`pack test: the install holds ${installed.length} packages, ${(bytes / 1e6).toFixed(1)} MB (apparent size)`)
    for (const name of DEV_ONLY) expect(installed.map(p => p.name), name).not.toContain(name)
    // libp2p's own tree is about 100 packages and 27.5 MB; conclave adds its own few.
    expect(installed.length).toBeLessThanOrEqual(115)
    expect(bytes).toBeLessThan(36e6)
    // The libp2p family (what the protocol runs on) resolves to exactly the versions of the
    // repository's lock file, which `npm ci` and so every test installs: no range opens onto a
    // version set nobody tested. Other packages may move within their ranges; they are listed.
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string, dev?: boolean }> }
    const tested = new Set(Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.dev !== true && p.version !== undefined)
      .map(([path, p]) => `${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${p.version as string}`))
    const family = /^(libp2p|@libp2p\/.*|@chainsafe\/.*|@multiformats\/.*|multiformats|msgpackr)$/
    const moved = installed.filter(p => p.name !== 'conclave' && !tested.has(`${p.name}@${p.version}`)).map(p => `${p.name}@${p.version}`)
    if (moved.length > 0) console.log(`pack test: outside the libp2p family, moved within their ranges since the lock file: ${moved.join(', ')}`)
    expect(moved.filter(id => family.test(id.slice(0, id.lastIndexOf('@'))))).toEqual([])
    expect(installed.filter(p => p.name === '@libp2p/interface').map(p => p.version)).toEqual(['2.11.0'])
  })

  it('ships what it points to: LICENSE, the files README links to, the sources of its maps', () => {
    expect(readFileSync(join(pkgDir, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
    const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8')
    const links = [...readme.matchAll(/\]\(([^)#:]+)(#[^)]*)?\)/g)].map(m => m[1] as string)
    expect(links.length).toBeGreaterThan(3)
    for (const link of links) expect(existsSync(join(pkgDir, link)), `README link ${link}`).toBe(true)
    const maps = readdirSync(join(pkgDir, 'dist', 'src'), { recursive: true, encoding: 'utf8' }).filter(f => f.endsWith('.js.map'))
    expect(maps.length).toBeGreaterThan(20)
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(pkgDir, 'dist', 'src', map), 'utf8')) as { sources: string[] }
      for (const source of sources) expect(existsSync(resolve(dirname(join(pkgDir, 'dist', 'src', map)), source)), `${map} → ${source}`).toBe(true)
    }
  })

  it('imports from ESM without patching globals; CommonJS require works on this Node; the bin runs', () => {
    const esm = run(process.execPath, ['--input-type=module', '-e', `
      const before = Object.getOwnPropertyDescriptor(Promise, 'withResolvers')
      const c = await import('conclave')
      const after = Object.getOwnPropertyDescriptor(Promise, 'withResolvers')
      console.log(JSON.stringify({ createMember: typeof c.createMember, patched: before?.value !== after?.value }))`], project)
    expect(JSON.parse(esm)).toEqual({ createMember: 'function', patched: false })
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
    const cjs = spawnSync(process.execPath, ['-e', "console.log(typeof require('conclave').createMember)"], { cwd: project, encoding: 'utf8' })
    if (major > 20 || minor >= 19) expect(cjs.stdout.trim()).toBe('function')
    else expect(cjs.stderr).toMatch(/ERR_REQUIRE_ESM/)
    const help = spawnSync(join(project, 'node_modules', '.bin', 'conclave'), ['--help'], { cwd: project, encoding: 'utf8' })
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/conclave member/)
  })

  it('without the optional @libp2p/mdns, mdns: true is a named error that says what to install', () => {
    expect(existsSync(join(project, 'node_modules', '@libp2p', 'mdns'))).toBe(false)
    const out = run(process.execPath, ['--input-type=module', '-e', `
      const { Member } = await import('conclave')
      try { new Member({ cluster: 'x', mdns: true }); console.log('no error') } catch (e) { console.log(JSON.stringify({ name: e.name, option: e.option, message: e.message })) }`], project)
    const err = JSON.parse(out) as { name: string, option: string, message: string }
    expect(err).toMatchObject({ name: 'InvalidOptionError', option: 'mdns' })
    expect(err.message).toContain('npm install @libp2p/mdns@11.0.47')
  })

  it('type-checks the README service (NodeNext, strict) and a CommonJS (.cts) import', () => {
    writeFileSync(join(project, 'service.ts'), readmeService())
    writeFileSync(join(project, 'check.cts'), "import { createMember, InvalidOptionError } from 'conclave'\nexport const names: string[] = [createMember.name, InvalidOptionError.name]\n")
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, outDir: '.', rootDir: '.', skipLibCheck: false, types: ['node'], typeRoots: [join(repo, 'node_modules', '@types')] },
      files: ['service.ts', 'check.cts']
    }))
    run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project)
    expect(existsSync(join(project, 'service.js'))).toBe(true)
    expect(run(process.execPath, ['-e', "console.log(require('./check.cjs').names.join(' '))"], project).trim()).toBe('createMember InvalidOptionError')
  }, 60_000)

  it('runs the README service as three members; SIGKILL of the master moves the route; SIGTERM exits cleanly', async () => {
    expect(existsSync(join(project, 'service.js')), 'compiled by the test before').toBe(true)
    const ports = [await freePort(), await freePort(), await freePort()]
    const seeds = ports.slice(0, 2).map(p => `127.0.0.1:${p}`).join(',')
    for (const port of ports) {
      const s = new Service(project, { LISTEN: `127.0.0.1:${port}`, SEEDS: seeds })
      services.push(s)
      await s.until('its first view', () => s.lastView() !== undefined)
    }
    for (const s of services) await s.until('a view of three', () => s.lastView()?.members === 3)
    await Promise.all(services.map(async s => await s.until('one master', () => services.filter(x => x.master).length === 1)))
    const master = services.find(s => s.master) as Service
    const survivors = services.filter(s => s !== master)

    master.child.kill('SIGKILL')
    await master.exited
    for (const s of survivors) await s.until('a view of two', () => s.lastView()?.members === 2)
    await survivors[0]!.until('a new master', () => survivors.filter(s => s.master).length === 1)
    const successor = survivors.find(s => s.master) as Service
    const startedAt = successor.lines.filter(l => l.event === 'started').at(-1) as ServiceLine
    expect(startedAt.epoch as number).toBeGreaterThan(master.lines.filter(l => l.event === 'started').at(-1)?.epoch as number)

    for (const s of survivors) s.child.kill('SIGTERM')
    const codes = await Promise.all(survivors.map(async s => await s.exited))
    expect(codes).toEqual([0, 0])
    expect(successor.lines.at(-1)?.event).toBe('stopped')
    for (const s of services) expect(s.stderr, `stderr of ${s.id ?? '?'}`).toBe('')
  }, 90_000)
})
