/**
 * The programs some faults need beyond network namespaces, and a check that they are here
 * before a run starts, so that a missing one is one clear line instead of a failed fault
 * minutes into the run. The Debian package is named in each reason.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import type { FaultType } from './faults.js'
import { conclaveBin } from '../testing/member-process.js'

/** Where Debian's libfaketime package puts the library (x86_64). */
export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'

/** Faults made with nftables rules inside the hosts (testing/netfilter.ts). */
export const NEEDS_NFTABLES: readonly FaultType[] = ['bridge', 'ring', 'one-way', 'loss', 'cut-off-start']

/** Why the selected faults cannot all run here, one reason per missing program; empty if they can. */
export async function missingTools (types: readonly FaultType[], faketimeLib = FAKETIME_LIB): Promise<string[]> {
  const missing: string[] = []
  if (types.includes('cpu')) {
    try {
      await promisify(execFile)('stress-ng', ['--version'])
    } catch {
      missing.push('cpu needs stress-ng, which is not installed (Debian: apt-get install stress-ng)')
    }
  }
  if (types.includes('clock-restart') && !existsSync(faketimeLib)) {
    missing.push(`clock-restart needs libfaketime: ${faketimeLib} not found (Debian: apt-get install libfaketime)`)
  }
  return missing
}

/** Whether `conclave member` of this build takes `--state-dir` (its help lists every flag). */
export function memberTakesStateDir (): boolean {
  const help = execFileSync(process.execPath, [conclaveBin(), 'member', '--help'], { encoding: 'utf8' })
  return help.includes('--state-dir')
}
