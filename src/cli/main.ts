/** The `conclave` command: dispatches to subcommands. */
import { UsageError } from './usage.js'

const HELP = `conclave — agree on a coordinator among peer processes, with no lock store

Usage:
  conclave member --cluster <name> --listen <host:port> [--seed <host:port>]... [--name <name>] [--json]
  conclave status --seed <host:port> [--cluster <name>] [--json] [--watch]
  conclave host --cluster <name> --count <K> [--seed <host:port>]...
  conclave bench <failover|join|cold-start|scale|broadcast|rpc|filter|all|report> [flags]
  conclave chaos [--duration 10m] [--members 5] [--split-brain majority|allow] [--faults all]
  conclave keygen [--out <file>]
  conclave fuzz [--frames 100000]
  conclave <command> --help

Commands:
  member    run a cluster member and print its view changes
  status    show a cluster's view, endpoints and masters (joins as a client, never a member)
  host      run K members in one process (own node, key and port each), for scale runs
  bench     measure failover, joins, start-up, scale, broadcast, request/response and the filter on this machine
  chaos     kill, hang, cut, starve and restart members on test hosts of their own, then check the events
  keygen    make a cluster key: only processes holding it can connect (--key-file)
  fuzz      send hostile frames at a cluster of three on 127.0.0.1; check nothing crashed or changed
`

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP)
      return 0
    // Each command loads only its own modules: a member process must not carry the benchmark's
    // charting libraries in its memory (RSS per member is one of the figures).
    case 'member':
      return await (await import('./member-command.js')).runMember(rest)
    case 'host':
      return await (await import('./host-command.js')).runHost(rest)
    case 'status':
      return await (await import('./status-command.js')).runStatus(rest)
    case 'bench':
      return await (await import('./bench-command.js')).runBench(rest)
    case 'chaos':
      return await (await import('./chaos-command.js')).runChaosCommand(rest)
    case 'fuzz':
      return await (await import('./fuzz-command.js')).runFuzzCommand(rest)
    case 'keygen':
      return (await import('./keygen-command.js')).runKeygen(rest)
    default:
      throw new UsageError(`unknown command "${command}"; commands: member, host, status, bench, chaos, keygen, fuzz (see conclave --help)`)
  }
}

main(process.argv.slice(2)).then(code => { process.exitCode = code }, (err: unknown) => {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`conclave: ${message}\n`)
  process.exitCode = err instanceof UsageError || (err instanceof Error && 'option' in err) ? 2 : 1
})
