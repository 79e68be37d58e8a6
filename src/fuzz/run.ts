/**
 * `conclave fuzz`: a live fuzz run. Three `conclave member` processes form a cluster on
 * 127.0.0.1; fuzzers — libp2p nodes of their own (through our transport adapter), outside the
 * view — send them hostile frames (frames.ts) on every channel: direct streams, the group topic
 * and datagrams; then a flood from one fuzzer at full speed, and raw TCP garbage at the ports.
 * Afterwards the members leave, and their last line reports their drop counters.
 *
 * Judged: crashes (a member that exited by itself, or an unhandled error on stderr) and view
 * changes after the cluster formed, both of which must be 0.
 */
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemberProcess, agreed, waitUntil } from '../testing/member-process.js'
import { seededRandom } from '../testing/random.js'
import { createLibp2pTransport } from '../transport/libp2p.js'
import type { Transport } from '../transport/transport.js'
import type { ViewSummary } from '../core/messages.js'
import { Codec } from '../transport/codec.js'
import { FRAME_KINDS, FrameFactory, type FrameKind } from './frames.js'

export interface FuzzOptions {
  /** Hostile frames in the paced phase. */
  readonly frames: number
  /** Fuzzer identities (each its own peer id and connections). */
  readonly fuzzers: number
  /** Frames per second each fuzzer sends to each member in the paced phase. */
  readonly ratePerTarget: number
  /** Frames of the flood phase (one fuzzer, one member, as fast as the stream takes them). */
  readonly flood: number
  /** Raw TCP connections that send random bytes (no libp2p at all). */
  readonly rawConnections: number
  readonly seed: number
  /** The members' maxMessageBytes: oversized frames are just above it. */
  readonly maxMessageBytes: number
  readonly signal: AbortSignal
  readonly onProgress?: (sent: number, total: number) => void
}

export interface FuzzMemberReport {
  readonly name: string
  readonly crashed: boolean
  readonly viewChanges: number
  readonly dropped: Record<string, number>
  readonly stderrTail: string
}

export interface FuzzRecord {
  readonly seed: number
  readonly durationMs: number
  /** Frames sent, by kind (paced phase) and in the flood. */
  readonly sent: Record<FrameKind, number> & { readonly flood: number }
  readonly framesTotal: number
  readonly byChannel: { readonly direct: number, readonly group: number, readonly datagram: number }
  readonly rawConnections: number
  readonly members: readonly FuzzMemberReport[]
  readonly crashes: number
  readonly viewChanges: number
  /** The members' drop counters, summed. */
  readonly dropped: Record<string, number>
}

const CHANNELS = ['direct', 'group', 'datagram'] as const

export async function runFuzz (opts: FuzzOptions): Promise<FuzzRecord> {
  const rnd = seededRandom(opts.seed)
  const cluster = `fuzz-${process.pid}`
  const procs: MemberProcess[] = []
  const fuzzers: Transport[] = []
  const spawn = (name: string, seeds: string[]): MemberProcess => {
    // A failure detector that tolerates a starved CPU (the fuzzers and the members share a few
    // cores): a view change then means hostile input changed a view, not that a member was slow.
    const p = new MemberProcess({ cluster, name, seeds, extraArgs: ['--max-message-bytes', String(opts.maxMessageBytes), '--timing', 'suspectAfterMs=3000'] })
    procs.push(p)
    return p
  }
  const started = Date.now()
  try {
    const first = await spawn('m1', []).waitReady()
    for (const name of ['m2', 'm3']) {
      await sleep(300) // libp2p start-up is CPU-bound: stagger
      await spawn(name, [first.address as string]).waitReady()
    }
    await waitUntil(() => agreed(procs, 3), 20_000, 'the three members to agree')
    const baseline = procs.map(p => p.events.length)
    const targets = procs.map(p => ({ id: p.id as string, addrs: [(p.ready()?.listen as string[])[0] as string] }))

    // What an attacker can learn: a member answers a hello from a peer that knows of no group
    // with its view, full records included.
    const codec = new Codec(cluster, opts.maxMessageBytes)
    let learned: ViewSummary | undefined
    const onDirect = (_peer: string, frame: Uint8Array): void => {
      const r = codec.decode(frame)
      if (learned === undefined && r.ok && r.msg.t === 'hello' && r.msg.view !== undefined) learned = r.msg.view
    }
    for (let i = 0; i < opts.fuzzers; i++) {
      const t = createLibp2pTransport({ cluster, listen: ['/ip4/127.0.0.1/tcp/0'], maxFrameBytes: opts.maxMessageBytes * 4 + 4096, onDrop: () => {} })
      await t.start({ onConnected: () => {}, onDisconnected: () => {}, onDialFailed: () => {}, onDirect, onGroup: () => {} })
      fuzzers.push(t)
      for (const target of targets) t.dial({ peer: target.id, addresses: target.addrs })
    }
    await waitUntil(() => fuzzers.every(f => targets.every(t => f.isConnected(t.id))), 10_000, 'the fuzzers to connect')
    const scout = fuzzers[0] as Transport
    scout.send(targets[0]?.id as string, codec.encode({ t: 'hello', from: { id: scout.id, name: 'fuzzer', incarnation: 1, joinEpoch: 0, addrs: [], meta: {} }, maxEpoch: 0 }))
    await waitUntil(() => learned !== undefined, 10_000, 'a member to answer the hello with its view')
    await sleep(500) // gossipsub meshes the fuzzers in; datagram invitations arrive

    const view = learned as ViewSummary
    const factory = new FrameFactory(rnd, cluster, opts.maxMessageBytes, view.members, view.epoch)
    const sent = Object.fromEntries(FRAME_KINDS.map(k => [k, 0])) as Record<FrameKind, number>
    const byChannel = { direct: 0, group: 0, datagram: 0 }
    let total = 0
    // Paced: each fuzzer, every 10 ms, sends its share to each member.
    const perTick = Math.max(1, Math.round(opts.ratePerTarget / 100))
    while (total < opts.frames && !opts.signal.aborted) {
      for (const f of fuzzers) {
        for (const target of targets) {
          for (let k = 0; k < perTick && total < opts.frames; k++) {
            const kind = FRAME_KINDS[Math.floor(rnd() * FRAME_KINDS.length)] as FrameKind
            const frame = factory.make(kind)
            const r = rnd()
            const channel = r < 0.75 ? CHANNELS[0] : r < 0.9 ? CHANNELS[1] : CHANNELS[2]
            if (channel === 'group') f.publish(frame)
            else f.send(target.id, frame, { unreliable: channel === 'datagram' })
            sent[kind]++
            byChannel[channel]++
            total++
          }
        }
      }
      opts.onProgress?.(total, opts.frames + opts.flood)
      await sleep(10)
    }
    // Flood: one fuzzer, one member (the coordinator), as fast as the stream drains.
    let flood = 0
    const flooder = fuzzers[0]
    const coordinator = targets[0]
    while (flooder !== undefined && coordinator !== undefined && flood < opts.flood && !opts.signal.aborted) {
      for (let k = 0; k < 500 && flood < opts.flood; k++, flood++) flooder.send(coordinator.id, factory.make('claims'))
      opts.onProgress?.(total + flood, opts.frames + opts.flood)
      await sleep(1)
    }
    // Raw TCP: bytes that are not even a libp2p handshake.
    const ports = procs.map(p => Number(/:(\d+)$/.exec(p.address as string)?.[1]))
    for (let i = 0; i < opts.rawConnections && !opts.signal.aborted; i++) {
      const garbage = Buffer.from(Array.from({ length: Math.floor(rnd() * 4096) }, () => Math.floor(rnd() * 256)))
      await new Promise<void>(resolve => {
        const socket = connect(ports[i % ports.length] as number, '127.0.0.1', () => { socket.end(garbage) })
        socket.setTimeout(2000, () => socket.destroy())
        socket.on('error', () => resolve())
        socket.on('close', () => resolve())
        socket.resume()
      })
    }
    await sleep(2000) // let queued frames arrive and any consequence show
    for (const f of fuzzers.splice(0)) await f.stop()
    await sleep(1500) // the members notice the fuzzers gone; a view change would show now
    const crashedBeforeStop = procs.map(p => !p.running)
    // Up to here; the leaves below change views, as they should.
    const beforeStop = procs.map(p => p.events.length)
    await Promise.all(procs.map(async p => await p.stop()))
    const members = procs.map((p, i): FuzzMemberReport => {
      const during = p.events.slice(baseline[i], beforeStop[i])
      const left = p.events.slice(beforeStop[i]).find(e => e.type === 'left')
      return {
        name: p.name,
        crashed: crashedBeforeStop[i] === true || left === undefined || /Unhandled|uncaught|FATAL/i.test(p.stderr),
        viewChanges: during.filter(e => e.type === 'view').length,
        dropped: (left?.dropped as Record<string, number> | undefined) ?? {},
        stderrTail: p.stderr.slice(-500)
      }
    })
    const dropped: Record<string, number> = {}
    for (const m of members) for (const [k, v] of Object.entries(m.dropped)) dropped[k] = (dropped[k] ?? 0) + v
    return {
      seed: opts.seed,
      durationMs: Date.now() - started,
      sent: { ...sent, flood },
      framesTotal: total + flood,
      byChannel,
      rawConnections: opts.rawConnections,
      members,
      crashes: members.filter(m => m.crashed).length,
      viewChanges: members.reduce((n, m) => n + m.viewChanges, 0),
      dropped
    }
  } finally {
    await Promise.all(fuzzers.map(async f => await f.stop()))
    await Promise.all(procs.map(async p => await p.stop()))
  }
}
