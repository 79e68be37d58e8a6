/**
 * A route that runs only on the master: Camel's ZooKeeper RoutePolicy without ZooKeeper.
 *
 *   node dist/examples/master-route.js --cluster orders --listen 127.0.0.1:0 [--seed host:port] [--masters 1]
 *
 * Start two or three of these. One works (a "work" line every 100 ms, stamped with the epoch
 * of its grant); the others wait. Kill the worker and another takes over with a higher epoch.
 */
import { createMember } from '../src/index.js'
import { addRoute } from '../src/policies/route-policy.js'
import { emit, memberArgs, reportViews, untilSignal } from './cli-args.js'

const { options } = memberArgs()
const member = await createMember(options)
emit('ready', { id: member.id, name: member.name, listen: member.addresses })
reportViews(member)
member.on('mastership', c => emit('master', { isMaster: c.isMaster, epoch: c.epoch, reason: c.reason }))

const route = addRoute(member, {
  name: 'orders',
  start (ctx) {
    emit('route', { event: 'started', epoch: ctx.epoch, rank: ctx.rank })
    let n = 0
    const timer = setInterval(() => {
      // Check before acting on the outside world: the lease may have lapsed (a pause).
      if (!ctx.isMaster()) return
      emit('work', { epoch: ctx.epoch, n: ++n })
    }, 100)
    ctx.signal.addEventListener('abort', () => clearInterval(timer), { once: true })
  },
  stop (reason) {
    emit('route', { event: 'stopped', reason })
  }
})
route.on('event', e => { if (e.type === 'error' || e.type === 'stop-timeout') emit('route-problem', { problem: e.type }) })

await untilSignal()
await member.stop() // stops the route first, then leaves the group
emit('left')
