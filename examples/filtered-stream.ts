/**
 * A message stream that passes only on the master: camel-jgroups' dropNonCoordinatorViews, or
 * an ActiveMQ exclusive consumer, without a broker lock.
 *
 *   node dist/examples/filtered-stream.js --cluster feed --listen 127.0.0.1:0 [--seed host:port]
 *
 * Every member reads the same source (here, a counter every 20 ms); only the master passes
 * items on, each stamped with the epoch under which it passed. It also prints its
 * promotions and demotions.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { createMember } from '../src/index.js'
import { masterOnlyStamped, mastershipChanges } from '../src/policies/filter.js'
import { emit, memberArgs, reportViews, untilSignal } from './cli-args.js'

const { options } = memberArgs()
const member = await createMember(options)
emit('ready', { id: member.id, name: member.name, listen: member.addresses })
reportViews(member)

const done = new AbortController()
async function * source (): AsyncGenerator<number> {
  for (let n = 1; !done.signal.aborted; n++) {
    yield n
    await sleep(20, undefined, { signal: done.signal }).catch(() => {})
  }
}

const passing = (async () => {
  for await (const { item, epoch } of masterOnlyStamped(member, source())) emit('item', { n: item, epoch })
})()
const watching = (async () => {
  for await (const c of mastershipChanges(member, { signal: done.signal })) emit('master', { isMaster: c.isMaster, epoch: c.epoch, reason: c.reason })
})()

await untilSignal()
done.abort()
await Promise.all([passing, watching])
await member.stop()
emit('left')
