/**
 * A server of a failover cluster: the seed scenario's `master:FD:jetty:http://0.0.0.0:9090`.
 * Every server publishes its URL under the service "http"; only the master runs the HTTP route
 * (listens and answers), the others stand by with the port closed. When the master dies, the
 * next-oldest server starts its route, and clients that follow the master move to it.
 *
 *   node dist/examples/http-server.js --cluster FD --listen 127.0.0.1:7401 --port 9090 [--seed host:port] [--name server-9090]
 *
 * Prints JSON lines: ready, view, master, route (started/stopped), listening, left.
 */
import { createServer } from 'node:http'
import { once } from 'node:events'
import { createMember } from '../src/index.js'
import { emit, memberArgs, reportViews, untilSignal } from './cli-args.js'

const { options, values } = memberArgs({ port: { type: 'string' }, host: { type: 'string' } })
const host = typeof values.host === 'string' ? values.host : '127.0.0.1'
const port = Number(values.port ?? 9090)
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`http-server: --port must be a port from 1 to 65535, got ${String(values.port)}\n`)
  process.exit(2)
}
const url = `http://${host}:${port}/`
const member = await createMember({ ...options, endpoints: { http: url } })
emit('ready', { id: member.id, name: member.name, listen: member.addresses, endpoints: member.ownEndpoints })
reportViews(member)
member.on('mastership', c => emit('master', { isMaster: c.isMaster, epoch: c.epoch, reason: c.reason }))

member.route({
  name: 'http',
  async start (ctx) {
    const server = createServer((req, res) => {
      // Answer only while still master: a paused-and-resumed process must not serve stale.
      if (!ctx.isMaster()) { res.writeHead(503).end(); return }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ server: member.name, epoch: ctx.epoch, path: req.url }))
    })
    server.listen(port, host)
    await once(server, 'listening')
    emit('route', { event: 'started', epoch: ctx.epoch })
    emit('listening', { url })
    // Stop serving the moment mastership is lost: close the port and every open connection.
    ctx.signal.addEventListener('abort', () => {
      server.close()
      server.closeAllConnections()
    }, { once: true })
  },
  stop (reason) {
    emit('route', { event: 'stopped', reason })
  }
}).on('event', e => { if (e.type === 'error') emit('route-problem', { phase: e.phase, error: String(e.error) }) })

await untilSignal()
await member.stop() // stops the route (closes the port) first, then leaves the group
emit('left')
