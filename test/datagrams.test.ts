/**
 * The authenticated datagram channel on real UDP sockets on 127.0.0.1: delivery, and that a
 * tampered, replayed, foreign or malformed datagram is dropped and counted, never delivered.
 * A capturing relay between sender and receiver stands for an attacker on the path.
 */
import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { DatagramChannel, decodeInvitation, encodeInvitation, type Invitation } from '../src/transport/datagrams.js'

interface End { ch: DatagramChannel, got: Array<{ peer: string, payload: string }>, drops: string[] }

const open: Array<{ stop: () => Promise<void> }> = []

async function end (): Promise<End> {
  const e: End = { ch: undefined as unknown as DatagramChannel, got: [], drops: [] }
  e.ch = new DatagramChannel({
    onDatagram: (peer, payload) => { e.got.push({ peer, payload: Buffer.from(payload).toString() }) },
    onDrop: reason => { e.drops.push(reason) }
  })
  expect(await e.ch.start('127.0.0.1')).toBe(true)
  open.push(e.ch)
  return e
}

/** A UDP relay: records every packet and forwards it to `port` unless told to hold. */
async function relay (port: number): Promise<{ socket: Socket, port: number, packets: Buffer[], forward: boolean }> {
  const socket = createSocket('udp4')
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  const r = { socket, port: socket.address().port, packets: [] as Buffer[], forward: true }
  socket.on('message', msg => {
    r.packets.push(Buffer.from(msg))
    if (r.forward) socket.send(msg, port, '127.0.0.1')
  })
  open.push({ stop: async () => { await new Promise<void>(resolve => socket.close(() => resolve())) } })
  return r
}

async function until (cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

const text = (s: string): Uint8Array => Buffer.from(s)

afterEach(async () => {
  await Promise.all(open.splice(0).map(async o => await o.stop()))
})

describe('datagram channel', () => {
  it('delivers datagrams as coming from the peer its invitation was issued to', async () => {
    const a = await end()
    const b = await end()
    b.ch.accept('A', a.ch.invite('B') as Invitation, '127.0.0.1')
    expect(b.ch.canSend('A', 10)).toBe(true)
    expect(a.ch.canSend('B', 10)).toBe(false) // nobody invited a to send to b
    for (let i = 0; i < 20; i++) expect(b.ch.send('A', text(`hb ${i}`))).toBe(true)
    await until(() => a.got.length === 20, '20 datagrams')
    expect(a.got.every(g => g.peer === 'B')).toBe(true)
    expect(a.got.map(g => g.payload)).toEqual(Array.from({ length: 20 }, (_, i) => `hb ${i}`))
    expect(a.drops).toEqual([])
    expect(a.ch.send('B', text('x'))).toBe(false)
  })

  it('drops a tampered, replayed, unknown or malformed datagram and counts why', async () => {
    const a = await end()
    const b = await end()
    const path = await relay(a.ch.port as number)
    const invitation = a.ch.invite('B') as Invitation
    b.ch.accept('A', { ...invitation, port: path.port }, '127.0.0.1')
    b.ch.send('A', text('first'))
    await until(() => a.got.length === 1, 'the first datagram')
    const original = path.packets[0] as Buffer
    path.forward = false
    const raw = path.socket
    const inject = (packet: Buffer): void => { raw.send(packet, a.ch.port as number, '127.0.0.1') }
    inject(original) // replay
    const tampered = Buffer.from(original)
    tampered[tampered.length - 20] = (tampered[tampered.length - 20] as number) ^ 0xff
    inject(tampered) // a changed payload byte: the MAC fails
    const foreign = Buffer.from(original)
    foreign[3] = (foreign[3] as number) ^ 0xff
    inject(foreign) // a token nobody issued
    inject(Buffer.from([0x43, 1, 2, 3])) // too short
    inject(Buffer.from('GET / HTTP/1.1\r\n\r\n')) // not ours at all
    await until(() => a.drops.length === 5, 'five drops')
    expect(a.drops.sort()).toEqual(['datagram-bad-mac', 'datagram-malformed', 'datagram-malformed', 'datagram-replay', 'datagram-unknown-session'])
    expect(a.got.map(g => g.payload)).toEqual(['first'])
    // the session still works for what comes next
    path.forward = true
    b.ch.send('A', text('second'))
    await until(() => a.got.length === 2, 'the second datagram')
  })

  it('a new invitation or forget() ends the old session: its datagrams are dropped', async () => {
    const a = await end()
    const b = await end()
    b.ch.accept('A', a.ch.invite('B') as Invitation, '127.0.0.1')
    b.ch.send('A', text('one'))
    await until(() => a.got.length === 1, 'one')
    a.ch.invite('B') // re-issued (a reconnect): b still holds the old one
    b.ch.send('A', text('stale'))
    await until(() => a.drops.length === 1, 'a drop')
    expect(a.drops).toEqual(['datagram-unknown-session'])
    b.ch.forget('A')
    expect(b.ch.send('A', text('after forget'))).toBe(false)
  })

  it('invitations round-trip, and malformed ones are refused', () => {
    const inv: Invitation = { port: 4242, host: '127.0.0.5', token: new Uint8Array(8).fill(7), key: new Uint8Array(32).fill(9) }
    expect(decodeInvitation(encodeInvitation(inv))).toEqual(inv)
    expect(decodeInvitation(encodeInvitation({ ...inv, host: undefined }))).toEqual({ ...inv, host: undefined })
    const bytes = encodeInvitation(inv)
    expect(decodeInvitation(bytes.subarray(0, 20))).toBeUndefined()
    expect(decodeInvitation(new Uint8Array([2, ...bytes.subarray(1)]))).toBeUndefined()
    expect(decodeInvitation(encodeInvitation({ ...inv, host: 'not-an-ip' }))).toBeUndefined()
    expect(decodeInvitation(encodeInvitation({ ...inv, port: 0 }))).toBeUndefined()
  })

  it('payloads above the datagram limit are not sent as datagrams', async () => {
    const a = await end()
    const b = await end()
    b.ch.accept('A', a.ch.invite('B') as Invitation, '127.0.0.1')
    expect(b.ch.canSend('A', 1200)).toBe(true)
    expect(b.ch.send('A', new Uint8Array(1201))).toBe(false)
  })
})
