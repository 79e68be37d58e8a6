/**
 * Listener isolation: a user listener that throws neither starves the other listeners of the
 * event nor Conclave's own consumers (registry, scheduler hooks), and its error is reported.
 * One member on a transport with no network (it founds its group alone), on a manual clock:
 * nothing here waits on real time.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Member } from '../src/index.js'
import type { Transport, TransportHandlers } from '../src/transport/transport.js'

/** A transport with no peers: a member on it founds its group at once and stays alone. */
function loneTransport (): Transport {
  return {
    id: 'lone',
    addresses: ['/ip4/127.0.0.1/tcp/1/p2p/lone'],
    async start (_handlers: TransportHandlers) {},
    async stop () {},
    send () {},
    publish () {},
    dial () {},
    isConnected: () => false
  }
}

const members: Member[] = []
afterEach(async () => { await Promise.all(members.splice(0).map(async m => await m.stop())) })

function lone (): Member {
  let now = 0
  const m = new Member({ cluster: 'listeners' }, { transport: () => loneTransport(), clock: () => ++now })
  members.push(m)
  return m
}

describe('listener isolation', () => {
  it('a throwing view listener does not keep the event from later listeners or from onViewChange hooks, and is reported', async () => {
    const m = lone()
    const order: string[] = []
    const reported: Array<{ event: string, error: unknown }> = []
    const boom = new Error('user listener failed')
    m.on('view', () => { order.push('user-1'); throw boom })
    m.on('view', () => { order.push('user-2') })
    m.once('view', () => { order.push('once') })
    m.onViewChange(() => { order.push('hook') })
    m.on('listener-error', e => reported.push(e))
    await m.start()
    await new Promise(resolve => setImmediate(resolve)) // the start's events are delivered after it resolves
    expect(m.view?.members.map(x => x.id)).toEqual(['lone'])
    // Hooks first, then every user listener in registration order, the thrower included.
    expect(order).toEqual(['hook', 'user-1', 'user-2', 'once'])
    expect(reported).toEqual([{ event: 'view', error: boom }])
    // The once-listener unregistered itself although it was called outside EventEmitter.emit.
    expect(m.listenerCount('view')).toBe(2)
  })

  it('a throwing mastership listener does not starve the registry: the master record still gets its epoch', async () => {
    const m = lone()
    const reported: string[] = []
    m.on('mastership', () => { throw new Error('mastership listener failed') })
    m.on('coordinator', () => { throw new Error('coordinator listener failed') })
    m.on('listener-error', e => reported.push(e.event))
    let changes = 0
    m.onRegistryChange(() => { changes++ })
    await m.start()
    await new Promise(resolve => setImmediate(resolve)) // the start's events are delivered after it resolves
    expect(m.isMaster()).toBe(true)
    expect(m.registry().members[0]?.masterEpoch).toBe(m.epoch)
    expect(changes).toBeGreaterThanOrEqual(1)
    expect(reported.sort()).toEqual(['coordinator', 'mastership'])
  })

  it('without a listener-error listener the error is rethrown on a later tick, not swallowed', async () => {
    const m = lone()
    const boom = new Error('nobody catches this')
    m.on('view', () => { throw boom })
    const seen: unknown[] = []
    const onUncaught = (err: unknown): void => { seen.push(err) }
    // vitest installs its own handler; take the error before it does and give it back after.
    const previous = process.listeners('uncaughtException')
    process.removeAllListeners('uncaughtException')
    process.on('uncaughtException', onUncaught)
    try {
      await m.start()
    await new Promise(resolve => setImmediate(resolve)) // the start's events are delivered after it resolves
      expect(seen).toEqual([]) // not thrown into start(): later
      await new Promise(resolve => setImmediate(resolve))
      await new Promise(resolve => setImmediate(resolve))
    } finally {
      process.off('uncaughtException', onUncaught)
      for (const l of previous) process.on('uncaughtException', l)
    }
    expect(seen).toEqual([boom])
  })
})
