/**
 * examples/kubernetes: the manifests parse and say what the notes say, and the StatefulSet's
 * container command line, exactly as written (the pod's environment filled in), forms a cluster
 * of three on test hosts (network namespaces) whose only way to find each other is the
 * Service's DNS name, served by a DNS server of this test's own through the hosts' resolv.conf
 * (as a pod's points at the cluster DNS). Needs root and iproute2 for the second part.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { waitUntil } from '../src/testing/member-process.js'
import { NetnsLab, type TestHost } from '../src/testing/netns.js'
import { netnsGate } from './netns-gate.js'

const run = promisify(execFile)
const dir = new URL('../examples/kubernetes/', import.meta.url)
const manifest = (file: string): Record<string, any> => parse(readFileSync(new URL(file, dir), 'utf8')) as Record<string, any>
const BIN = fileURLToPath(new URL('../bin/conclave.js', import.meta.url))
const DNS_SERVER = fileURLToPath(new URL('../dist/src/testing/dns-server.js', import.meta.url))

const service = manifest('service.yaml')
const sts = manifest('statefulset.yaml')
const pdb = manifest('pdb.yaml')
const container = sts.spec.template.spec.containers[0]

/** The container's command line as the kubelet runs it: $(VAR) filled from `env`, the CLI at this checkout. */
function commandLine (env: Record<string, string>): string[] {
  const fill = (s: string): string => s.replace(/\$\(([A-Z_]+)\)/g, (_m, name: string) => {
    if (env[name] === undefined) throw new Error(`the manifest uses $(${name}), which the test does not set`)
    return env[name]
  })
  const [node, ...flags] = container.command as string[]
  expect(node).toBe('node')
  return [...flags.map(f => f === 'node_modules/conclave/bin/conclave.js' ? BIN : f), ...(container.args as string[]).map(fill)]
}

describe('examples/kubernetes manifests', () => {
  it('a headless Service with not-ready addresses published; a StatefulSet probing /ready and /health; a PDB of one', () => {
    expect(service.kind).toBe('Service')
    expect(service.spec.clusterIP).toBe('None')
    expect(service.spec.publishNotReadyAddresses).toBe(true)
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toEqual([7000, 9464])
    expect(sts.kind).toBe('StatefulSet')
    expect(sts.spec.serviceName).toBe(service.metadata.name)
    expect(sts.spec.updateStrategy.type).toBe('OnDelete') // rollout.sh orders the restarts
    expect(sts.spec.template.metadata.labels).toEqual(service.spec.selector)
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'metrics' })
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'metrics' })
    expect(container.env.map((e: { name: string, valueFrom: { fieldRef: { fieldPath: string } } }) => [e.name, e.valueFrom.fieldRef.fieldPath]))
      .toEqual([['POD_IP', 'status.podIP'], ['POD_NAME', 'metadata.name'], ['POD_NAMESPACE', 'metadata.namespace']])
    expect(pdb.kind).toBe('PodDisruptionBudget')
    expect(pdb.spec.maxUnavailable).toBe(1)
    expect(pdb.spec.selector).toEqual(sts.spec.selector)
  })

  it('the container command line is one the CLI takes', async () => {
    const args = commandLine({ POD_IP: '10.1.2.3', POD_NAME: 'orders-0', POD_NAMESPACE: 'default' })
    expect(args).toContain('--advertise')
    expect(args).toContain('orders.default.svc.cluster.local:7000')
    const { stdout } = await run(process.execPath, [...args, '--help'])
    expect(stdout).toContain('Usage: conclave member')
  })

  it('the README shows the same command line', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const shown = /```sh\n(  node --max-semi-space-size[^`]*?)```/.exec(readme)?.[1]
    expect(shown, 'the README\'s container command').toBeDefined()
    const words = (shown as string).replace(/\\\n/g, ' ').trim().split(/\s+/)
    expect(words).toEqual([...container.command as string[], ...container.args as string[]])
  })
})

const unavailable = await netnsGate('Kubernetes example in network namespaces')

let lab: NetnsLab | undefined
const children: ChildProcess[] = []
const resolvDirs: string[] = []
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of resolvDirs.splice(0)) rmSync(d, { recursive: true, force: true })
  await lab?.destroy()
  lab = undefined
})

interface Pod { readonly name: string, readonly child: ChildProcess, readonly lines: Array<Record<string, any>>, readonly exited: Promise<number | null> }

describe.skipIf(unavailable !== undefined)('the StatefulSet\'s command line in network namespaces', () => {
  it('three pods find each other through the Service name, are ready, and a SIGTERMed master hands over', async () => {
    lab = await NetnsLab.create(4)
    const [dnsHost, ...hosts] = lab.hosts as [TestHost, ...TestHost[]]
    // A pod's resolv.conf points at the cluster DNS; `ip netns exec` mounts /etc/netns/<ns>/resolv.conf.
    for (const h of hosts) {
      const d = `/etc/netns/${h.ns}`
      mkdirSync(d, { recursive: true })
      writeFileSync(`${d}/resolv.conf`, `nameserver ${dnsHost.address}\noptions timeout:1 attempts:2\n`)
      resolvDirs.push(d)
    }
    const dns = spawn('ip', ['netns', 'exec', dnsHost.ns, process.execPath, DNS_SERVER, '--listen', `${dnsHost.address}:53`], { stdio: ['pipe', 'pipe', 'inherit'] })
    children.push(dns)
    const dnsLines: string[] = []
    createInterface({ input: dns.stdout as NodeJS.ReadableStream }).on('line', l => dnsLines.push(l))
    await waitUntil(() => dnsLines.length > 0, 10_000, 'the DNS server')
    dns.stdin?.write(JSON.stringify({ set: 'orders.default.svc.cluster.local', a: hosts.map(h => h.address) }) + '\n')
    await waitUntil(() => dnsLines.length > 1, 10_000, 'the records')

    const pods: Pod[] = hosts.map((h, i) => {
      const name = `orders-${i}`
      const child = spawn('ip', ['netns', 'exec', h.ns, process.execPath, ...commandLine({ POD_IP: h.address, POD_NAME: name, POD_NAMESPACE: 'default' })], { stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(child)
      const lines: Array<Record<string, any>> = []
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', l => { try { lines.push(JSON.parse(l)) } catch {} })
      return { name, child, lines, exited: new Promise(resolve => child.once('exit', code => resolve(code))) }
    })
    const lastView = (p: Pod): Record<string, any> | undefined => p.lines.filter(l => l.type === 'view').at(-1)
    const together = (list: Pod[]): boolean => list.every(p => lastView(p)?.members.length === list.length && lastView(p)?.epoch === lastView(list[0] as Pod)?.epoch)
    await waitUntil(() => together(pods), 30_000, 'the three pods in one view')
    for (const [i, p] of pods.entries()) {
      expect(p.lines.find(l => l.type === 'ready')?.listen).toEqual([expect.stringMatching(new RegExp(`^/ip4/${hosts[i]?.address}/tcp/7000/p2p/`))])
    }
    // The readiness probe, from the pod's own network.
    const ready = await run('ip', ['netns', 'exec', hosts[0]?.ns as string, process.execPath, '-e',
      `fetch('http://${hosts[0]?.address}:9464/ready').then(async r => console.log(JSON.stringify({ status: r.status, body: await r.json() })))`])
    expect(JSON.parse(ready.stdout)).toMatchObject({ status: 200, body: { ready: true, members: 3 } })

    // kubectl delete pod: SIGTERM; the master leaves and another takes over; the process exits 0.
    const master = pods.find(p => lastView(p)?.isCoordinator === true) as Pod
    const others = pods.filter(p => p !== master)
    master.child.kill('SIGTERM')
    expect(await master.exited).toBe(0)
    await waitUntil(() => together(others), 10_000, 'the other two in one view')
    expect(others.filter(p => lastView(p)?.isCoordinator === true)).toHaveLength(1)
  })
})
