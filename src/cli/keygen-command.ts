/**
 * `conclave keygen`: writes a new cluster key (security/cluster-key.ts) to a file readable by
 * its owner only, or to stdout, and prints its fingerprint (never the key) on stderr.
 */
import { ClusterKey } from '../security/cluster-key.js'
import { UsageError, parseCommandLine } from './usage.js'

export const KEYGEN_HELP = `Usage: conclave keygen [--out <file>]

Makes a new cluster key. Give the same file to every member (conclave member
--key-file <file>, or the clusterKey option): a process without it cannot connect.

Options:
  --out <file>   where to write it (mode 0600; an existing file is not overwritten).
                 Without it, the key goes to stdout
  -h, --help     show this help
`

export function runKeygen (args: string[]): number {
  const values = parseCommandLine(args, { out: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } })
  if (values.help === true) { process.stdout.write(KEYGEN_HELP); return 0 }
  const key = ClusterKey.generate()
  if (values.out === undefined) {
    process.stdout.write(key.fileContents())
  } else {
    try {
      key.write(values.out)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new UsageError(`--out ${values.out}: ${code === 'EEXIST' ? 'the file exists (a key is not overwritten; remove it first)' : (err as Error).message}`)
    }
  }
  process.stderr.write(`cluster key ${key.fingerprint}${values.out !== undefined ? ` written to ${values.out}` : ''}\n`)
  return 0
}
