/**
 * A clustered scheduled job: Quartz's clustered scheduler without a database.
 *
 *   node dist/examples/scheduled-job.js --cluster jobs --listen 127.0.0.1:0 [--seed host:port]... --name <n> --every 100 [--missed skip|latest]
 *
 * Start two or three of these. Every 100 ms exactly one of them (the coordinator) prints a
 * "tick" line, stamped with the tick's scheduled time and the fencing epoch. Kill it and
 * another continues where it stopped: no tick time is printed twice. A "coordinator" line says
 * when a process becomes or stops being the one that fires.
 */
import { createMember } from '../src/index.js'
import { emit, memberArgs, reportViews, untilSignal } from './cli-args.js'

const { options, values } = memberArgs({ every: { type: 'string' }, missed: { type: 'string' } })
const member = await createMember(options)
emit('ready', { id: member.id, name: member.name, listen: member.addresses })
reportViews(member)
member.on('coordinator', c => { emit('coordinator', { isCoordinator: c.isCoordinator, epoch: c.epoch }) })

const job = member.schedule('report', { everyMs: Number(values.every ?? 1000) }, tick => {
  emit('tick', { job: tick.job, tick: tick.tick, epoch: tick.epoch, member: member.name })
}, { missed: (values.missed ?? 'skip') as 'skip' | 'latest' })
job.on('event', e => {
  if (e.type === 'skipped') emit('skipped', { ticks: e.ticks, from: e.from, to: e.to })
  if (e.type === 'error') emit('error', { tick: e.tick, error: String(e.error) })
})

await untilSignal()
await member.stop() // stops firing first, then leaves the group
emit('left')
